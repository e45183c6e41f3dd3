// Calling speed and per-recipient windows for campaigns. Pure.
//
// A calling speed is N dials per period, the periods counted from the first call. How the dials of
// a period are handed out (all at its start, or spread evenly) is the dial budget's business
// (budget.ts); this module holds the units, the even spacing and the delivery-window check.
// No zod here: the campaign workflow imports this module.
import type { CallingSpeed, Flow, StartOutgoingCall } from '../flow/schema.js';
import { nextWindowOpening } from '../flow/window.js';

export const PERIOD_MS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;

/** As operators type it (parseSpeed reads it back): `1000/day`, or `1000/day spread` for even spacing. */
export function formatSpeed(s: CallingSpeed): string {
  return `${s.calls}/${s.per}${s.spread ? ' spread' : ''}`;
}

/** Spacing of slots in ms when spread. Fractional: 100/minute is 600 ms, 7/minute 8571.43 ms. */
export function slotIntervalMs(s: CallingSpeed): number {
  return PERIOD_MS[s.per] / s.calls;
}

/** The slot for the next call: now, or one interval after the last slot, whichever is later. */
export function nextSlot(lastSlot: number | undefined, intervalMs: number, now: number): number {
  return lastSlot === undefined ? now : Math.max(now, Math.ceil(lastSlot + intervalMs));
}

/** The calling speed of a flow (the first startOutgoingCall that sets one), else the campaign's default. */
export function flowSpeed(flow: Flow): CallingSpeed | undefined {
  return outgoingStarts(flow).find((e) => e.callingSpeed)?.callingSpeed;
}

function outgoingStarts(flow: Flow): StartOutgoingCall[] {
  const first = flow.elements.find((e) => e.id === flow.start);
  const rest = flow.elements.filter((e): e is StartOutgoingCall => e.type === 'startOutgoingCall' && e !== first);
  return [...(first?.type === 'startOutgoingCall' ? [first] : []), ...rest];
}

/**
 * When the first dial of this recipient may happen, at or after `at`: the first element's delivery
 * window in the recipient's (or the window's) zone. `undefined` when the zone is unknown: the call
 * will end as notCalled, which it may do at any time.
 */
export function dialableFrom(flow: Flow, recipient: { timeZone?: string | undefined }, at: number): number | undefined {
  const start = outgoingStarts(flow)[0];
  const window = start?.deliveryWindow;
  if (!window) return at;
  const zone = window.timeZone === 'recipient' ? recipient.timeZone : window.timeZone;
  if (!zone) return undefined;
  return nextWindowOpening(window, zone, at);
}
