// Campaign forecast: when will a campaign finish, given its calling speed, concurrency, the flow's
// delivery window in each recipient's zone and its retry settings? Pure; it replays the
// dispatcher's rules (up to N first dials at the start of each period as concurrency lets them go,
// or spaced slots when spread; rows whose window is closed wait for a later pass) over the
// recipients' zones, so the forecast and the campaign agree by construction. Retries are left out
// of the first dials' schedule (they take budget only when calls fail).
import type { CallingSpeed, Flow, StartOutgoingCall } from '../flow/schema.js';
import { nextWindowOpening } from '../flow/window.js';
import { nextSlot, slotIntervalMs } from './pacing.js';
import { paceOf } from './budget.js';

export interface ForecastOptions {
  speed: CallingSpeed;
  maxConcurrent: number;
  /** Campaign start (epoch ms). */
  start: number;
  /** Average length of a call, first dial to hang-up. */
  avgCallSeconds: number;
}

export interface Forecast {
  recipients: number;
  /** Recipients that will not be dialled: their zone is unknown and the window is the recipient's. */
  notCallable: number;
  firstDialAt?: string;
  /** The last first dial. */
  lastFirstDialAt?: string;
  /** Every call done if nobody needs a retry. */
  finishAt?: string;
  /** Every call done if the last ones use all their retries, each at the longest wait. */
  finishWorstCaseAt?: string;
  /** Effective placement rate (the calling speed, or lower if concurrency binds). */
  effectiveCallsPerHour: number;
  passes: number;
  /** First dials per UTC day. */
  perDay: Array<{ date: string; dials: number }>;
  /** Recipients per zone (top 10). */
  zones: Array<{ zone: string; recipients: number }>;
}

const MAX_PASSES = 400;

function firstStart(flow: Flow): StartOutgoingCall | undefined {
  const start = flow.elements.find((e) => e.id === flow.start);
  return start?.type === 'startOutgoingCall' ? start : undefined;
}

/** `zones[i]` is recipient i's zone ('' when unknown), in file order. */
export function forecastCampaign(flow: Flow, zones: string[], o: ForecastOptions): Forecast {
  const start = firstStart(flow);
  const window = start?.deliveryWindow;
  const callMs = o.avgCallSeconds * 1000;
  // Concurrency binds when calls last longer than maxConcurrent slots.
  const interval = Math.max(slotIntervalMs(o.speed), callMs / Math.max(1, o.maxConcurrent));
  const zoneOf = (z: string) => (window?.timeZone === 'recipient' || window === undefined ? z : window.timeZone);
  // The open interval each zone was last seen in: consecutive slots rarely cross a boundary.
  const openCache = new Map<string, { from: number; to: number }>();
  const opensAt = (zone: string, t: number): number => {
    if (!window) return t;
    const c = openCache.get(zone);
    if (c && t >= c.from && t < c.to) return t;
    const open = nextWindowOpening(window, zone, t);
    if (open === t) {
      // Find where this opening ends (the window's `to` on the same local day), by halving.
      let lo = t;
      let hi = t + 86_400_000;
      while (hi - lo > 60_000) {
        const mid = Math.floor((lo + hi) / 2);
        if (nextWindowOpening(window, zone, mid) === mid) lo = mid;
        else hi = mid;
      }
      openCache.set(zone, { from: t, to: lo });
    }
    return open;
  };

  const zoneCounts = new Map<string, number>();
  let pending: number[] = [];
  let notCallable = 0;
  zones.forEach((z, i) => {
    zoneCounts.set(z || '(unknown)', (zoneCounts.get(z || '(unknown)') ?? 0) + 1);
    if (window?.timeZone === 'recipient' && !z) notCallable += 1;
    else pending.push(i);
  });

  const perDay = new Map<string, number>();
  let lastSlot: number | undefined;
  let first: number | undefined;
  let now = o.start;
  let passes = 0;
  // Burst: calls go in waves of maxConcurrent, one wave per average call, at most N per period,
  // clear of the period's ends by the budget's guard (the first call's period apart).
  const { periodMs, guardMs } = paceOf(o.speed);
  let burstAt = o.start;
  let period = 0;
  let inPeriod = 0;
  let inWave = 0;
  const burstSlot = (from: number): number => {
    if (from > burstAt) {
      burstAt = from;
      inWave = 0;
    }
    for (;;) {
      const k = first === undefined ? 0 : Math.floor((burstAt - first) / periodMs);
      if (k !== period) {
        period = k;
        inPeriod = 0;
        inWave = 0;
      }
      const start = (first ?? burstAt) + k * periodMs;
      if (k > 0 && burstAt < start + guardMs) burstAt = start + guardMs;
      else if (inPeriod >= o.speed.calls || burstAt >= start + periodMs - guardMs) burstAt = start + periodMs;
      else if (inWave >= o.maxConcurrent) {
        burstAt += callMs;
        inWave = 0;
      } else return burstAt;
    }
  };
  while (pending.length > 0 && passes < MAX_PASSES) {
    passes += 1;
    const deferred: number[] = [];
    let nextOpen = Infinity;
    for (const i of pending) {
      const slot = o.speed.spread ? nextSlot(lastSlot, interval, now) : burstSlot(now);
      const zone = zoneOf(zones[i] ?? '');
      const open = opensAt(zone, slot);
      if (open > slot) {
        deferred.push(i);
        nextOpen = Math.min(nextOpen, open);
        continue;
      }
      lastSlot = slot;
      first ??= slot;
      inPeriod += 1;
      inWave += 1;
      const day = new Date(slot).toISOString().slice(0, 10);
      perDay.set(day, (perDay.get(day) ?? 0) + 1);
    }
    pending = deferred;
    if (pending.length > 0) now = Math.max(nextOpen, lastSlot ?? now);
  }

  const out: Forecast = {
    recipients: zones.length,
    notCallable,
    effectiveCallsPerHour: Math.round(3_600_000 / interval),
    passes,
    perDay: [...perDay.entries()].sort().map(([date, dials]) => ({ date, dials })),
    zones: [...zoneCounts.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 10)
      .map(([zone, recipients]) => ({ zone, recipients })),
  };
  if (first === undefined || lastSlot === undefined) return out;
  let worst = lastSlot + callMs;
  const retry = start?.retry;
  if (retry) {
    // The last recipient busy every time: each retry after the longest wait, inside its window.
    const lastZone = zoneOf(zones.at(-1) ?? '') || 'UTC';
    let t = lastSlot;
    for (let k = 0; k < retry.count; k++) t = opensAt(lastZone, t + retry.maxMinutes * 60_000);
    worst = t + callMs;
  }
  return {
    ...out,
    firstDialAt: new Date(first).toISOString(),
    lastFirstDialAt: new Date(lastSlot).toISOString(),
    finishAt: new Date(lastSlot + callMs).toISOString(),
    finishWorstCaseAt: new Date(worst).toISOString(),
  };
}
