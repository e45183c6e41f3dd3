// Calling speed as operators type it (CLI), validated with the flow schema's own rule.
import type { CallingSpeed } from '../flow/schema.js';
import { callingSpeedSchema } from '../flow/schema.js';

/**
 * `100/minute`, `5000/hour`, `1000/day` (also `per minute`, `/min`, `/h`, `/d`): up to N dials at
 * the start of each period. A trailing `spread` (`1000/day spread`, `1000/day,spread`) spaces them
 * evenly instead, period/N apart; a trailing `burst` says the default explicitly.
 */
export function parseSpeed(spec: string): CallingSpeed {
  const m = /^\s*(\d+)\s*(?:\/|per\s+)\s*(minute|min|m|hour|h|day|d)\s*(?:[,;]?\s*(spread|burst))?\s*$/i.exec(spec);
  const unit = m?.[2]?.toLowerCase();
  const per = unit === undefined ? undefined : unit.startsWith('m') ? 'minute' : unit.startsWith('h') ? 'hour' : 'day';
  const spread = m?.[3]?.toLowerCase() === 'spread';
  const parsed = callingSpeedSchema.safeParse({ calls: Number(m?.[1]), per, ...(spread ? { spread } : {}) });
  if (!m || !parsed.success)
    throw new RangeError(
      `calling speed "${spec}": expected N/minute, N/hour or N/day with N from 1 to 1,000,000, optionally followed by "spread"`,
    );
  return parsed.data;
}
