// The dial budget of a campaign: the instants dials may start at, so that each period of the
// calling speed, counted from the first call, holds at most N dial starts — first dials placed by
// the dispatcher and the retries calls ask for alike.
//
// Periods are aligned to the anchor (the first call's slot): period k is [anchor + k·P, anchor +
// (k+1)·P). Two ways to hand out a period's N dials:
// - burst (the default, our documented semantics): up to N at the start of each period (or as soon
//   as concurrency lets them go), the next N when the next period starts. The budget counts what
//   it granted per period, so no period ever holds more than N, retries included.
// - spread: one slot every P/N, each slot at least one interval after the last one granted. Any
//   window of one period (aligned or not) then holds at most N.
// A dial starts a little after its slot (the call wakes, checks do-not-call, sends the dial), so a
// slot also says `until`: the end of the period it is counted in. A call that could not start its
// dial by then asks for another slot rather than dial into a period that did not count it. And
// burst keeps its grants a guard (5 % of the period, at most 30 s) inside both ends of each period
// but the first call's: periods then hold the same dials whether they are counted from the first
// call's slot or from the moment it really dialled (if that is within the guard).
//
// Pure and serialisable: the budget is part of the campaign's progress, carried across
// continue-as-new, and it is unit-tested without Temporal. No zod here: the campaign workflow
// imports this module.
import type { CallingSpeed } from '../flow/schema.js';
import { PERIOD_MS, nextSlot, slotIntervalMs } from './pacing.js';

export type PacingMode = 'burst' | 'spread';

export interface PeriodUse {
  /** Index from the anchor: period k is [anchor + k·P, anchor + (k+1)·P). */
  period: number;
  /** Dials granted in it: first dials placed and retries. */
  granted: number;
}

export interface DialBudget {
  /** Fixed when the campaign starts: a running campaign keeps the pacing it started with. */
  mode: PacingMode;
  /** Start of period 0: the slot of the first call placed. Unset until then. */
  anchor?: number;
  /** Burst: dials granted per period, for the current period and later ones only, by period. */
  periods: PeriodUse[];
  /** Spread: the latest slot granted; the next one is at least one interval later. */
  lastSlot?: number;
  /** Spread: the latest slot granted to a retry; withdrawing waiting calls never rewinds before it. */
  lastRetrySlot?: number;
}

export interface DialSlot {
  /** The dial may start at this instant (epoch ms)… */
  at: number;
  /** …and must have started before this one: the end of the period it is counted in. */
  until: number;
}

/** The calling speed as the budget uses it. */
export interface Pace {
  mode: PacingMode;
  calls: number;
  periodMs: number;
  /** Spread: slot spacing, P/N (fractional). */
  intervalMs: number;
  /**
   * Burst: nothing is granted this close to either end of a period (5 % of it, at most 30 s), the
   * first call's slot (the anchor) apart: a dial starts a little after its slot, and so does the
   * first call, from which the periods are counted.
   */
  guardMs: number;
}

export function paceOf(speed: CallingSpeed, mode: PacingMode = speed.spread ? 'spread' : 'burst'): Pace {
  const periodMs = PERIOD_MS[speed.per];
  return {
    mode,
    calls: speed.calls,
    periodMs,
    intervalMs: slotIntervalMs(speed),
    guardMs: Math.min(periodMs / 20, 30_000),
  };
}

export function newBudget(mode: PacingMode): DialBudget {
  return { mode, periods: [] };
}

/** First dials handed to one placement; what it does not use is given back with `settleReservation`. */
export interface Reservation {
  slots: DialSlot[];
  /** The reservation set the anchor (nothing had been placed before). */
  anchored: boolean;
  /** Spread: the budget's last slot before the reservation. */
  lastSlotBefore?: number;
}

export function periodIndex(anchor: number, pace: Pace, t: number): number {
  return Math.floor((t - anchor) / pace.periodMs);
}

/** The end of the period `t` is in; before the first call, periods would start at `t`. */
export function periodEnd(budget: DialBudget, pace: Pace, t: number): number {
  const anchor = budget.anchor ?? t;
  return anchor + (periodIndex(anchor, pace, t) + 1) * pace.periodMs;
}

function grantedIn(budget: DialBudget, period: number): number {
  return budget.periods.find((u) => u.period === period)?.granted ?? 0;
}

function withGranted(budget: DialBudget, period: number, delta: number): DialBudget {
  const granted = Math.max(0, grantedIn(budget, period) + delta);
  const periods = budget.periods.filter((u) => u.period !== period);
  if (granted > 0) periods.push({ period, granted });
  periods.sort((a, b) => a.period - b.period);
  return { ...budget, periods };
}

/** Periods before the current one no longer matter: they are over. */
function prune(budget: DialBudget, pace: Pace, now: number): DialBudget {
  if (budget.anchor === undefined) return budget;
  const current = periodIndex(budget.anchor, pace, now);
  return budget.periods.some((u) => u.period < current)
    ? { ...budget, periods: budget.periods.filter((u) => u.period >= current) }
    : budget;
}

/** Burst: the first instant of period k, from `now`, that may still be granted, if any. */
function burstOpening(anchor: number, pace: Pace, k: number, now: number): number | undefined {
  const start = anchor + k * pace.periodMs;
  const at = Math.max(now, k === 0 ? start : start + pace.guardMs);
  return at < start + pace.periodMs - pace.guardMs ? at : undefined;
}

/**
 * How many first dials the dispatcher may place now, or when it may place the next one. Spread:
 * slots are given out at most `horizonMs` ahead, and the next batch is due once half of that is left.
 */
export function firstDialsAvailable(
  budget: DialBudget,
  pace: Pace,
  now: number,
  horizonMs: number,
): { calls: number; nextAt: number } {
  if (pace.mode === 'spread') {
    if (budget.lastSlot !== undefined && budget.lastSlot - now > horizonMs / 2)
      return { calls: 0, nextAt: Math.ceil(budget.lastSlot - horizonMs / 2) };
    const first = nextSlot(budget.lastSlot, pace.intervalMs, now);
    return { calls: Math.max(1, Math.floor((now + horizonMs - first) / pace.intervalMs) + 1), nextAt: first };
  }
  if (budget.anchor === undefined) return { calls: pace.calls, nextAt: now };
  const b = prune(budget, pace, now);
  const current = periodIndex(b.anchor ?? now, pace, now);
  const opening = burstOpening(b.anchor ?? now, pace, current, now);
  const left = pace.calls - grantedIn(b, current);
  if (opening !== undefined && left > 0)
    return opening > now ? { calls: 0, nextAt: opening } : { calls: left, nextAt: now };
  let k = current + 1;
  while (grantedIn(b, k) >= pace.calls) k += 1;
  return { calls: 0, nextAt: (b.anchor ?? now) + k * pace.periodMs + pace.guardMs };
}

/**
 * Reserve up to `max` first dials, earliest first. Burst: in the current period only (all at `now`);
 * spread: spaced slots up to `horizonMs` ahead (at least one).
 */
export function reserveFirstDials(
  budget: DialBudget,
  pace: Pace,
  now: number,
  max: number,
  horizonMs: number,
): { budget: DialBudget; reservation: Reservation } {
  const available = firstDialsAvailable(budget, pace, now, horizonMs);
  const n = Math.min(max, available.calls);
  if (n <= 0) return { budget, reservation: { slots: [], anchored: false } };
  const anchored = budget.anchor === undefined;
  if (pace.mode === 'spread') {
    const at: number[] = [];
    let slot = available.nextAt;
    while (at.length < n && (at.length === 0 || slot <= now + horizonMs)) {
      at.push(slot);
      slot = Math.ceil(slot + pace.intervalMs);
    }
    const anchor = budget.anchor ?? (at[0] as number);
    const next: DialBudget = { ...budget, anchor, lastSlot: at.at(-1) as number };
    return {
      budget: next,
      reservation: {
        slots: at.map((t) => ({ at: t, until: periodEnd(next, pace, t) })),
        anchored,
        ...(budget.lastSlot !== undefined ? { lastSlotBefore: budget.lastSlot } : {}),
      },
    };
  }
  const anchor = budget.anchor ?? now;
  const b = prune({ ...budget, anchor }, pace, now);
  const k = periodIndex(anchor, pace, now);
  const slot = { at: now, until: anchor + (k + 1) * pace.periodMs };
  return {
    budget: withGranted(b, k, n),
    reservation: { slots: Array.from({ length: n }, () => ({ ...slot })), anchored },
  };
}

/**
 * A placement used the first `used` slots of its reservation (calls are given slots in order);
 * the rest goes back to the budget.
 */
export function settleReservation(budget: DialBudget, pace: Pace, reservation: Reservation, used: number): DialBudget {
  const unused = reservation.slots.slice(used);
  if (unused.length === 0) return budget;
  let b = budget;
  if (pace.mode === 'spread') {
    // Only when nothing was granted after the reservation (a retry) can the spacing resume earlier.
    if (b.lastSlot === reservation.slots.at(-1)?.at) {
      const last = used > 0 ? reservation.slots[used - 1]?.at : reservation.lastSlotBefore;
      b = { ...b };
      if (last === undefined) delete b.lastSlot;
      else b.lastSlot = last;
    }
    if (reservation.anchored && used === 0 && b.lastSlot === undefined) b = withoutAnchor(b);
    return b;
  }
  const anchor = b.anchor;
  if (anchor !== undefined) for (const s of unused) b = withGranted(b, periodIndex(anchor, pace, s.at), -1);
  // The anchor is the first call's slot: a reservation that placed nothing must not set it.
  if (reservation.anchored && used === 0 && b.periods.length === 0) b = withoutAnchor(b);
  return b;
}

function withoutAnchor(b: DialBudget): DialBudget {
  const { anchor: _anchor, ...rest } = b;
  return rest;
}

/**
 * One dial for a call that is already under way (a retry): the earliest instant from `now` in a
 * period that still has budget (burst), or the next spaced slot (spread). Always granted: a later
 * period always has room. Retries come from calls placed, so the anchor is set by then.
 */
export function grantDial(budget: DialBudget, pace: Pace, now: number): { budget: DialBudget; slot: DialSlot } {
  if (pace.mode === 'spread') {
    const at = nextSlot(budget.lastSlot, pace.intervalMs, now);
    const next: DialBudget = { ...budget, anchor: budget.anchor ?? at, lastSlot: at, lastRetrySlot: at };
    return { budget: next, slot: { at, until: periodEnd(next, pace, at) } };
  }
  const anchor = budget.anchor ?? now;
  const b = prune({ ...budget, anchor }, pace, now);
  for (let k = Math.max(0, periodIndex(anchor, pace, now)); ; k++) {
    const at = burstOpening(anchor, pace, k, now);
    if (at !== undefined && grantedIn(b, k) < pace.calls)
      return { budget: withGranted(b, k, 1), slot: { at, until: anchor + (k + 1) * pace.periodMs } };
  }
}

/**
 * Calls withdrawn before their slot (a pause or a cancel) give their slots back. Spread: the
 * spacing resumes after the latest slot still in use: a kept call's, a retry's, or now.
 */
export function releaseWithdrawn(
  budget: DialBudget,
  pace: Pace,
  withdrawn: number[],
  keptLatest: number | undefined,
  now: number,
): DialBudget {
  if (withdrawn.length === 0) return budget;
  if (pace.mode === 'spread') {
    if (budget.lastSlot === undefined) return budget;
    const lastSlot = Math.max(
      Math.min(budget.lastSlot, now),
      keptLatest ?? -Infinity,
      budget.lastRetrySlot ?? -Infinity,
    );
    return { ...budget, lastSlot };
  }
  let b = prune(budget, pace, now);
  const anchor = b.anchor;
  if (anchor === undefined) return b;
  const current = periodIndex(anchor, pace, now);
  for (const at of withdrawn) {
    const k = periodIndex(anchor, pace, at);
    if (k >= current) b = withGranted(b, k, -1);
  }
  return b;
}

/**
 * When the last of `remaining` first dials could start, from the budget alone (concurrency and
 * delivery windows can only make it later).
 */
export function lastFirstDialEstimate(budget: DialBudget, pace: Pace, now: number, remaining: number): number {
  if (remaining <= 0) return now;
  if (pace.mode === 'spread')
    return nextSlot(budget.lastSlot, pace.intervalMs, now) + Math.ceil((remaining - 1) * pace.intervalMs);
  const anchor = budget.anchor ?? now;
  const b = prune({ ...budget, anchor }, pace, now);
  const current = periodIndex(anchor, pace, now);
  const lastTracked = b.periods.at(-1)?.period ?? current;
  let left = remaining;
  for (let k = current; k <= lastTracked; k++) {
    const at = burstOpening(anchor, pace, k, now);
    if (at === undefined) continue;
    left -= Math.max(0, pace.calls - grantedIn(b, k));
    if (left <= 0) return at;
  }
  // Every later period is untouched: N each.
  return anchor + (lastTracked + Math.ceil(left / pace.calls)) * pace.periodMs + pace.guardMs;
}
