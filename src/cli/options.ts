// Parsers of option values. Each throws commander's InvalidArgumentError, so a bad value is a usage
// error like any other: one line naming the option, exit 2 (program.ts).
import { InvalidArgumentError } from 'commander';
import { IANAZone } from 'luxon';
import type { z } from 'zod';
import { parseSpeed } from '../campaign/speed.js';
import type { CallingSpeed } from '../flow/schema.js';

/** A parser from a zod schema: the first issue's message is the reason. */
export function schemaOption<T>(schema: z.ZodType<T>): (value: string) => T {
  return (value) => {
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw new InvalidArgumentError(parsed.error.issues[0]?.message ?? 'invalid value');
    return parsed.data;
  };
}

export function portOption(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new InvalidArgumentError('a port is a whole number from 1 to 65535');
  return n;
}

export function positiveSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('a number of seconds above 0');
  return n;
}

export function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a whole number ≥ 1');
  return n;
}

export function speedOption(value: string): CallingSpeed {
  try {
    return parseSpeed(value);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    throw new InvalidArgumentError(err.message);
  }
}

/** `3/30d`: at most 3 contacts per recipient in 30 days, across campaigns. */
export function contactCapOption(value: string): { max: number; windowDays: number } {
  const m = /^(\d+)\s*\/\s*(\d+)\s*d(ays?)?$/.exec(value.trim());
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new InvalidArgumentError('expected N/Dd, e.g. 3/30d');
  return { max: Number(m[1]), windowDays: Number(m[2]) };
}

/** An ISO-8601 date-time, as epoch milliseconds. */
export function isoDateTime(value: string): number {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new InvalidArgumentError('an ISO date-time such as 2026-03-02T09:00:00Z');
  return ms;
}

export function ianaZone(value: string): string {
  if (!IANAZone.isValidZone(value)) throw new InvalidArgumentError('an IANA time zone such as Europe/Zagreb or UTC');
  return value;
}
