// The campaign dispatcher and its dial budget, without Temporal: what the campaign workflow does
// next, and that no period of the calling speed, counted from the first call, holds more than N
// dial starts — first dials and retries alike.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  firstDialsAvailable,
  grantDial,
  lastFirstDialEstimate,
  newBudget,
  paceOf,
  releaseWithdrawn,
  reserveFirstDials,
  settleReservation,
  type DialBudget,
  type Pace,
} from '../../src/campaign/budget.js';
import {
  applyCompletions,
  applyPlacement,
  applyWithdrawal,
  decide,
  grantRetry,
  horizonMs,
  initialProgress,
  readProgress,
  startNextPass,
  withdrawable,
  type CampaignPlan,
  type CampaignProgress,
  type CampaignProgressV1,
  type Decision,
} from '../../src/campaign/dispatcher.js';
import { bitmapFrom, bitmapHas } from '../../src/campaign/bitmap.js';
import type { CallingSpeed } from '../../src/flow/schema.js';

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 10, 23, 9, 0, 0);

/** Dial starts per period, the periods counted from the first dial. */
function perPeriod(dials: number[], periodMs: number): number[] {
  if (dials.length === 0) return [];
  const first = Math.min(...dials);
  const counts: number[] = [];
  for (const d of dials) {
    const k = Math.floor((d - first) / periodMs);
    counts[k] = (counts[k] ?? 0) + 1;
  }
  return Array.from(counts, (c) => c ?? 0);
}

describe('dial budget, burst (the default): up to N at the start of each period', () => {
  const pace = paceOf({ calls: 1000, per: 'day' });

  it('gives a period’s N at once, then nothing until the next period starts', () => {
    let b = newBudget('burst');
    const slots: number[] = [];
    // Concurrency lets 50 go at a time: the dispatcher asks again as calls finish.
    for (let t = T0; slots.length < 1000; t += 5_000) {
      const r = reserveFirstDials(b, pace, t, 50, 0);
      b = settleReservation(r.budget, pace, r.reservation, r.reservation.slots.length);
      for (const s of r.reservation.slots) {
        expect(s).toEqual({ at: t, until: T0 + DAY });
        slots.push(s.at);
      }
    }
    expect(slots.at(-1)! - T0).toBeLessThan(2 * MINUTE);
    // The next period's dials start a guard (30 s) after it starts.
    expect(firstDialsAvailable(b, pace, T0 + HOUR, 0)).toEqual({ calls: 0, nextAt: T0 + DAY + 30_000 });
    expect(reserveFirstDials(b, pace, T0 + HOUR, 50, 0).reservation.slots).toEqual([]);
    expect(firstDialsAvailable(b, pace, T0 + DAY, 0)).toEqual({ calls: 0, nextAt: T0 + DAY + 30_000 });
    expect(firstDialsAvailable(b, pace, T0 + DAY + 30_000, 0)).toEqual({ calls: 1000, nextAt: T0 + DAY + 30_000 });
    expect(lastFirstDialEstimate(b, pace, T0 + HOUR, 1100)).toBe(T0 + 2 * DAY + 30_000);
  });

  it('a retry takes the earliest period with budget, and the dispatcher gets what is left of it', () => {
    let b = newBudget('burst');
    const r = reserveFirstDials(b, pace, T0, 1000, 0);
    b = settleReservation(r.budget, pace, r.reservation, 1000);
    const retry = grantDial(b, pace, T0 + 30 * MINUTE);
    expect(retry.slot).toEqual({ at: T0 + DAY + 30_000, until: T0 + 2 * DAY });
    b = retry.budget;
    expect(firstDialsAvailable(b, pace, T0 + DAY + 30_000, 0).calls).toBe(999);
    // With room in the current period, a retry goes now.
    const room = grantDial(b, pace, T0 + DAY + HOUR);
    expect(room.slot).toEqual({ at: T0 + DAY + HOUR, until: T0 + 2 * DAY });
    expect(firstDialsAvailable(room.budget, pace, T0 + DAY + HOUR, 0).calls).toBe(998);
  });

  it('grants nothing in the first and last moments of a period but the first call’s (a dial starts a little after its slot)', () => {
    const b = settleReservation(
      reserveFirstDials(newBudget('burst'), pace, T0, 1, 0).budget,
      pace,
      reserveFirstDials(newBudget('burst'), pace, T0, 1, 0).reservation,
      1,
    );
    expect(grantDial(b, pace, T0 + DAY - 10_000).slot.at).toBe(T0 + DAY + 30_000);
    expect(firstDialsAvailable(b, pace, T0 + DAY - 10_000, 0)).toEqual({ calls: 0, nextAt: T0 + DAY + 30_000 });
    expect(grantDial(b, pace, T0 + DAY - 60_000).slot.at).toBe(T0 + DAY - 60_000);
    expect(grantDial(b, pace, T0 + DAY + 5_000).slot.at).toBe(T0 + DAY + 30_000);
    expect(grantDial(b, pace, T0 + 5_000).slot.at).toBe(T0 + 5_000);
  });

  it('the first call anchors the periods: a placement that placed nothing does not', () => {
    const r = reserveFirstDials(newBudget('burst'), pace, T0, 10, 0);
    expect(r.reservation.anchored).toBe(true);
    const none = settleReservation(r.budget, pace, r.reservation, 0);
    expect(none).toEqual(newBudget('burst'));
    const later = reserveFirstDials(none, pace, T0 + 5 * HOUR, 10, 0);
    const b = settleReservation(later.budget, pace, later.reservation, 3);
    expect(b.anchor).toBe(T0 + 5 * HOUR);
    expect(b.periods).toEqual([{ period: 0, granted: 3 }]);
  });

  it('forgets periods that are over', () => {
    const r = reserveFirstDials(newBudget('burst'), pace, T0, 1000, 0);
    const b = settleReservation(r.budget, pace, r.reservation, 1000);
    const next = grantDial(b, pace, T0 + 3 * DAY + 5);
    expect(next.budget.periods).toEqual([{ period: 3, granted: 1 }]);
  });
});

describe('dial budget, spread: one slot every period/N', () => {
  const pace = paceOf({ calls: 100, per: 'minute', spread: true });

  it('spaces slots 600 ms apart up to the horizon, and retries continue the spacing', () => {
    const r = reserveFirstDials(newBudget('spread'), pace, T0, 500, 5_000);
    expect(r.reservation.slots.map((s) => s.at - T0)).toEqual([0, 600, 1200, 1800, 2400, 3000, 3600, 4200, 4800]);
    const b = settleReservation(r.budget, pace, r.reservation, 9);
    const retry = grantDial(b, pace, T0 + 100);
    expect(retry.slot).toEqual({ at: T0 + 5400, until: T0 + MINUTE });
    expect(firstDialsAvailable(retry.budget, pace, T0 + 100, 5_000)).toEqual({ calls: 0, nextAt: T0 + 2900 });
  });

  it('a placement that used only part of its slots gives the rest back, unless a retry came after them', () => {
    const r = reserveFirstDials(newBudget('spread'), pace, T0, 5, 5_000);
    expect(settleReservation(r.budget, pace, r.reservation, 2).lastSlot).toBe(T0 + 600);
    const retried = grantDial(r.budget, pace, T0);
    expect(settleReservation(retried.budget, pace, r.reservation, 2).lastSlot).toBe(T0 + 3000);
  });

  it('withdrawn calls give their slots back, never before a kept call or a retry', () => {
    const r = reserveFirstDials(newBudget('spread'), pace, T0, 10, 10_000);
    const b = settleReservation(r.budget, pace, r.reservation, 10);
    const withdrawn = r.reservation.slots.slice(5).map((s) => s.at);
    expect(releaseWithdrawn(b, pace, withdrawn, T0 + 2400, T0 + 100).lastSlot).toBe(T0 + 2400);
    const retry = grantDial(b, pace, T0 + 100);
    expect(releaseWithdrawn(retry.budget, pace, withdrawn, T0 + 2400, T0 + 100).lastSlot).toBe(retry.slot.at);
  });
});

/** A random life of a budget: placements (some of their slots used), retries, withdrawals, time. */
type Op =
  | { op: 'advance'; ms: number }
  | { op: 'place'; max: number; usedPercent: number; retriesMeanwhile: number }
  | { op: 'retry' }
  | { op: 'withdraw'; everyNth: number };

const opArb = (periodMs: number) =>
  fc.oneof(
    {
      weight: 3,
      arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: periodMs }) }),
    },
    {
      weight: 4,
      arbitrary: fc.record({
        op: fc.constant('place' as const),
        max: fc.integer({ min: 1, max: 40 }),
        usedPercent: fc.integer({ min: 0, max: 100 }),
        retriesMeanwhile: fc.integer({ min: 0, max: 3 }),
      }),
    },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('retry' as const) }) },
    {
      weight: 1,
      arbitrary: fc.record({ op: fc.constant('withdraw' as const), everyNth: fc.integer({ min: 1, max: 3 }) }),
    },
  );

function run(pace: Pace, ops: Op[]): { dials: number[]; budget: DialBudget } {
  const horizon = pace.mode === 'spread' ? Math.min(15 * MINUTE, Math.max(5_000, 10 * pace.intervalMs)) : 0;
  let b = newBudget(pace.mode);
  let now = T0;
  // Dial starts (first dials placed and retries), and first dials that may still be withdrawn.
  const dials: number[] = [];
  let placed: number[] = [];
  // Retries come from calls placed: never before the first one.
  let called = false;
  const retry = () => {
    if (!called) return;
    const g = grantDial(b, pace, now);
    expect(g.slot.at).toBeGreaterThanOrEqual(now);
    expect(g.slot.at).toBeLessThan(g.slot.until);
    b = g.budget;
    dials.push(g.slot.at);
  };
  for (const o of ops) {
    if (o.op === 'advance') now += o.ms;
    else if (o.op === 'retry') retry();
    else if (o.op === 'place') {
      const r = reserveFirstDials(b, pace, now, o.max, horizon);
      b = r.budget;
      for (let i = 0; i < o.retriesMeanwhile; i++) retry();
      const used = Math.floor((r.reservation.slots.length * o.usedPercent) / 100);
      b = settleReservation(b, pace, r.reservation, used);
      for (const s of r.reservation.slots.slice(0, used)) {
        called = true;
        expect(s.at).toBeGreaterThanOrEqual(now);
        expect(s.at).toBeLessThan(s.until);
        dials.push(s.at);
        placed.push(s.at);
      }
    } else {
      // Only calls whose slot is more than 2 s away can be withdrawn (as the dispatcher does).
      const candidates = placed.filter((at) => at > now + 2_000);
      const gone = candidates.filter((_, i) => i % o.everyNth === 0);
      const kept = placed.filter((at) => at > now && !gone.includes(at));
      b = releaseWithdrawn(b, pace, gone, kept.length > 0 ? Math.max(...kept) : undefined, now);
      for (const at of gone) dials.splice(dials.indexOf(at), 1);
      placed = kept;
    }
  }
  return { dials, budget: b };
}

describe('no period from the first call holds more than N dials (property)', () => {
  for (const speed of [
    { calls: 7, per: 'minute' },
    { calls: 100, per: 'hour' },
    { calls: 1000, per: 'day' },
  ] satisfies CallingSpeed[]) {
    it(`burst ${speed.calls}/${speed.per}`, () => {
      const pace = paceOf(speed);
      fc.assert(
        fc.property(fc.array(opArb(pace.periodMs), { maxLength: 120 }), (ops) => {
          const { dials, budget } = run(pace, ops);
          for (const n of perPeriod(dials, pace.periodMs)) expect(n).toBeLessThanOrEqual(speed.calls);
          // The periods the budget counts are the periods from the first dial.
          if (dials.length > 0) expect(budget.anchor).toBe(Math.min(...dials));
          // Every dial is inside the period it was counted in, clear of its ends but the first call's:
          // counted from the first call's slot or from a moment up to a guard later, periods hold
          // the same dials.
          const first = Math.min(...dials);
          for (const d of dials) {
            expect((d - first) % pace.periodMs).toBeLessThan(pace.periodMs - pace.guardMs);
            if (d - first >= pace.periodMs) expect((d - first) % pace.periodMs).toBeGreaterThanOrEqual(pace.guardMs);
          }
        }),
        { numRuns: 300 },
      );
    });
    it(`spread ${speed.calls}/${speed.per}: evenly spaced, so any window of one period holds at most N`, () => {
      const pace = paceOf({ ...speed, spread: true });
      fc.assert(
        fc.property(fc.array(opArb(pace.periodMs), { maxLength: 120 }), (ops) => {
          const { dials } = run(pace, ops);
          const sorted = [...dials].sort((a, b) => a - b);
          for (let i = 1; i < sorted.length; i++)
            expect(sorted[i]! - sorted[i - 1]!).toBeGreaterThanOrEqual(pace.intervalMs - 1e-6);
          for (let i = 0; i + speed.calls < sorted.length; i++)
            expect(sorted[i + speed.calls]! - sorted[i]!).toBeGreaterThanOrEqual(pace.periodMs);
          for (const n of perPeriod(dials, pace.periodMs)) expect(n).toBeLessThanOrEqual(speed.calls);
        }),
        { numRuns: 300 },
      );
    });
  }
});

describe('the dispatcher’s decisions', () => {
  const plan = (speed: CallingSpeed, pages = 3, maxConcurrent = 50): CampaignPlan => ({
    pages,
    maxConcurrent,
    pace: paceOf(speed),
  });
  const burst = plan({ calls: 1000, per: 'day' });

  /** Place as decided, using every reserved slot, as if every row were callable. */
  const placeAll = (p: CampaignProgress, pl: CampaignPlan, d: Decision, now: number, rowsPerPage = 500) => {
    if (d.kind !== 'place') throw new Error(`expected place, got ${d.kind}`);
    const r = reserveFirstDials(p.budget, pl.pace, now, d.calls, horizonMs(pl.pace));
    const next = { ...p, budget: r.budget };
    const n = r.reservation.slots.length;
    const rows = Array.from({ length: Math.min(n, rowsPerPage - d.fromRow) }, (_, i) => d.fromRow + i);
    return applyPlacement(
      next,
      pl.pace,
      d,
      r.reservation,
      {
        placed: rows.map((row, i) => ({
          workflowId: `call:c:p${d.page}r${row}`,
          row,
          slotAt: r.reservation.slots[i]!.at,
        })),
        deferredRows: [],
        nextRow: d.fromRow + rows.length,
        pageDone: d.fromRow + rows.length >= rowsPerPage,
      },
      now,
    );
  };

  it('places what concurrency and the period allow, drains when calls fill concurrency, waits for the next period', () => {
    let p = initialProgress({ calls: 1000, per: 'day' });
    expect(decide(p, burst, T0)).toEqual({ kind: 'place', page: 0, fromRow: 0, calls: 50 });
    p = placeAll(p, burst, decide(p, burst, T0), T0);
    expect(p).toMatchObject({ placed: 50, page: 0, row: 50, firstSlot: T0, lastSlot: T0 });
    expect(decide(p, burst, T0)).toEqual({ kind: 'drain', pollMs: 5_000, why: 'concurrency' });
    // Calls finish, the rest of the period's 1,000 go out as concurrency lets them.
    for (let t = T0; p.placed < 1000; t += 5_000) {
      p = applyCompletions(p, {
        completed: p.placed - p.completed,
        byOutcome: { busy: p.placed - p.completed },
        recordsSeq: p.placed,
      });
      p = placeAll(p, burst, decide(p, burst, t), t);
    }
    expect(p).toMatchObject({ placed: 1000, page: 2, row: 0 });
    p = applyCompletions(p, { completed: 50, byOutcome: { busy: 50 }, recordsSeq: 1000 });
    expect(decide(p, burst, T0 + HOUR)).toEqual({ kind: 'waitForSpeed', until: T0 + DAY + 30_000 });
    expect(decide(p, burst, T0 + DAY + 30_000)).toEqual({ kind: 'place', page: 2, fromRow: 0, calls: 50 });
  });

  it('drains looking less often while nothing completes (calls waiting hours for a retry cost few events)', () => {
    let p: CampaignProgress = { ...initialProgress({ calls: 1000, per: 'day' }), page: 3, placed: 5 };
    const polls: number[] = [];
    for (let i = 0; i < 5; i++) {
      p = applyCompletions(p, { completed: 0, byOutcome: {}, recordsSeq: 0 });
      const d = decide(p, burst, T0);
      if (d.kind !== 'drain') throw new Error(d.kind);
      polls.push(d.pollMs);
    }
    expect(polls).toEqual([10_000, 20_000, 30_000, 30_000, 30_000]);
    p = applyCompletions(p, { completed: 1, byOutcome: { answered: 1 }, recordsSeq: 1 });
    expect(decide(p, burst, T0)).toMatchObject({ kind: 'drain', pollMs: 5_000 });
  });

  it('spread: places the horizon’s slots, then waits until half of it is used', () => {
    const pl = plan({ calls: 100, per: 'minute', spread: true }, 3, 1000);
    let p = initialProgress({ calls: 100, per: 'minute', spread: true });
    const d = decide(p, pl, T0);
    // Ten intervals ahead (6 s): slots at 0, 0.6 … 6 s.
    expect(d).toEqual({ kind: 'place', page: 0, fromRow: 0, calls: 11 });
    p = placeAll(p, pl, d, T0);
    expect(p.lastSlot).toBe(T0 + 6000);
    expect(decide(p, pl, T0 + 100)).toEqual({ kind: 'waitForSpeed', until: T0 + 3000 });
    expect(decide(p, pl, T0 + 3000)).toEqual({ kind: 'place', page: 0, fromRow: 11, calls: 5 });
  });

  it('rows whose window is closed wait for a later pass, which visits only their pages', () => {
    let p: CampaignProgress = {
      ...initialProgress({ calls: 1000, per: 'day' }),
      page: 3,
      placed: 1,
      completed: 1,
      deferred: { '0': bitmapFrom([4]), '2': bitmapFrom([7, 9]) },
      nextWindowAt: T0 + HOUR,
    };
    expect(decide(p, burst, T0)).toEqual({ kind: 'waitForWindow', until: T0 + HOUR });
    expect(decide(p, burst, T0 + HOUR)).toEqual({ kind: 'nextPass' });
    p = startNextPass(p);
    expect(p).toMatchObject({ pass: 1, page: 0, row: 0, deferred: {} });
    expect(p.nextWindowAt).toBeUndefined();
    expect(decide(p, burst, T0 + HOUR)).toMatchObject({ kind: 'place', page: 0, fromRow: 0, only: bitmapFrom([4]) });
    p = { ...p, page: 1 };
    expect(decide(p, burst, T0 + HOUR)).toMatchObject({ kind: 'place', page: 2, fromRow: 0, only: bitmapFrom([7, 9]) });
  });

  it('finishes when nothing is left and nothing runs; a cancelled campaign drains and ends cancelled', () => {
    const p: CampaignProgress = { ...initialProgress({ calls: 10, per: 'hour' }), page: 3, placed: 5, completed: 4 };
    expect(decide(p, burst, T0)).toMatchObject({ kind: 'drain', why: 'finishing' });
    expect(decide({ ...p, completed: 5 }, burst, T0)).toEqual({ kind: 'done', state: 'completed' });
    const cancelling: CampaignProgress = { ...p, page: 0, state: 'cancelling', deferred: { '1': bitmapFrom([1]) } };
    expect(decide(cancelling, burst, T0)).toMatchObject({ kind: 'drain' });
    expect(decide({ ...cancelling, completed: 5 }, burst, T0)).toEqual({ kind: 'done', state: 'cancelled' });
    expect(decide({ ...p, state: 'paused' }, burst, T0)).toEqual({ kind: 'paused' });
  });

  it('pause withdraws calls waiting for their slot: they go to the next pass and their slots back to the budget', () => {
    const pl = plan({ calls: 10, per: 'hour', spread: true }, 1, 100);
    let p = initialProgress({ calls: 10, per: 'hour', spread: true });
    // 15 minutes ahead at most: three slots, six minutes apart.
    p = placeAll(p, pl, decide(p, pl, T0), T0);
    expect(p.waiting.map((w) => w.slotAt - T0)).toEqual([0, 360_000, 720_000]);
    const now = T0 + 100_000;
    const pending = withdrawable(p, now);
    expect(pending).toHaveLength(2);
    const { progress, withdrawn } = applyWithdrawal(
      p,
      pl.pace,
      pending.map((w) => w.workflowId),
      true,
      now,
    );
    expect(withdrawn).toBe(2);
    expect(progress).toMatchObject({ placed: 1, waiting: [], lastSlot: T0, nextWindowAt: now });
    expect([1, 2].map((r) => bitmapHas(progress.deferred['0']!, r))).toEqual([true, true]);
    expect(progress.budget.lastSlot).toBe(now);
    expect(reserveFirstDials(progress.budget, pl.pace, now, 1, horizonMs(pl.pace)).reservation.slots[0]!.at).toBe(
      now + 360_000,
    );
  });

  it('a retry asked while the period is full waits for the next one, and is counted in status', () => {
    let p = initialProgress({ calls: 1000, per: 'day' });
    p = placeAll(p, { ...burst, maxConcurrent: 1000 }, decide(p, { ...burst, maxConcurrent: 1000 }, T0), T0);
    p = placeAll(p, { ...burst, maxConcurrent: 1000 }, decide(p, { ...burst, maxConcurrent: 1000 }, T0), T0);
    expect(p.placed).toBe(1000);
    const g = grantRetry(p, burst.pace, T0 + HOUR);
    expect(g.slot.at).toBe(T0 + DAY + 30_000);
    expect(g.progress.retriesGranted).toBe(1);
  });
});

describe('progress from campaign runs before core v2', () => {
  const v1: CampaignProgressV1 = {
    run: 3,
    state: 'running',
    pass: 0,
    page: 1,
    row: 20,
    deferred: {},
    firstSlot: T0,
    lastSlot: T0 + 10 * HOUR,
    placed: 120,
    completed: 110,
    byOutcome: { answered: 110 },
    recordsSeq: 110,
    waiting: [['call:c:r119', 1, 19, T0 + 10 * HOUR]],
  };

  it('is read: waiting tuples become records, and the campaign keeps its even spacing from its last slot', () => {
    const p = readProgress(v1, { calls: 10, per: 'hour' });
    expect(p).toMatchObject({
      version: 2,
      run: 3,
      placed: 120,
      waiting: [{ workflowId: 'call:c:r119', page: 1, row: 19, slotAt: T0 + 10 * HOUR }],
      budget: { mode: 'spread', anchor: T0, lastSlot: T0 + 10 * HOUR, periods: [] },
      retriesGranted: 0,
    });
    const pace = paceOf({ calls: 10, per: 'hour' }, p.budget.mode);
    expect(reserveFirstDials(p.budget, pace, T0 + 10 * HOUR, 1, horizonMs(pace)).reservation.slots[0]!.at).toBe(
      T0 + 10 * HOUR + 360_000,
    );
    // Its own form is read as it is.
    expect(readProgress(p, { calls: 10, per: 'hour' })).toEqual(p);
    expect(readProgress(undefined, { calls: 10, per: 'hour' })).toEqual(initialProgress({ calls: 10, per: 'hour' }));
  });
});

describe('the whole dispatcher, simulated: 2,100 calls at 1,000/day with retries', () => {
  it('every day from the first call holds at most 1,000 dials, and the first 1,000 go out within minutes', () => {
    const pl: CampaignPlan = { pages: 5, maxConcurrent: 1000, pace: paceOf({ calls: 1000, per: 'day' }) };
    let p = initialProgress({ calls: 1000, per: 'day' });
    let now = T0;
    const dials: number[] = [];
    // Calls in flight: when each asks for its retry (every third recipient retries once, an hour on).
    let running: Array<{ endsAt: number; retryAt?: number }> = [];
    for (let steps = 0; steps < 100_000; steps++) {
      for (const c of running)
        if (c.retryAt !== undefined && c.retryAt <= now) {
          const g = grantRetry(p, pl.pace, now);
          p = g.progress;
          dials.push(g.slot.at);
          c.endsAt = g.slot.at + 60_000;
          delete c.retryAt;
        }
      const done = running.filter((c) => c.retryAt === undefined && c.endsAt <= now).length;
      running = running.filter((c) => !(c.retryAt === undefined && c.endsAt <= now));
      if (done > 0)
        p = applyCompletions(p, { completed: done, byOutcome: { answered: done }, recordsSeq: p.recordsSeq + done });
      const d = decide(p, pl, now);
      if (d.kind === 'done') break;
      if (d.kind === 'place') {
        const before = p.placed;
        p = placeAll(p, pl, d, now, 500);
        for (let i = before; i < p.placed; i++) {
          dials.push(now);
          running.push(i % 3 === 0 ? { endsAt: Infinity, retryAt: now + HOUR } : { endsAt: now + 60_000 });
        }
      } else if (d.kind === 'waitForSpeed') now = Math.min(d.until, now + 10 * MINUTE);
      else if (d.kind === 'drain') now += d.pollMs;
      else throw new Error(`unexpected ${d.kind}`);
    }
    expect(p.placed).toBe(2100);
    expect(p.retriesGranted).toBe(700);
    expect(dials).toHaveLength(2800);
    const counts = perPeriod(dials, DAY);
    expect(Math.max(...counts)).toBeLessThanOrEqual(1000);
    expect(counts[0]).toBe(1000);
    const sorted = [...dials].sort((a, b) => a - b);
    expect(sorted[999]! - T0).toBeLessThan(10 * MINUTE);
  });

  function placeAll(p: CampaignProgress, pl: CampaignPlan, d: Decision, now: number, rowsPerPage: number) {
    if (d.kind !== 'place') throw new Error(`expected place, got ${d.kind}`);
    const r = reserveFirstDials(p.budget, pl.pace, now, d.calls, horizonMs(pl.pace));
    // 2,100 recipients: four full pages and 100 on the last.
    const pageRows = d.page === pl.pages - 1 ? 100 : rowsPerPage;
    const n = Math.min(r.reservation.slots.length, pageRows - d.fromRow);
    return applyPlacement(
      { ...p, budget: r.budget },
      pl.pace,
      d,
      r.reservation,
      {
        placed: Array.from({ length: n }, (_, i) => ({
          workflowId: `call:sim:${d.page}-${d.fromRow + i}`,
          row: d.fromRow + i,
          slotAt: r.reservation.slots[i]!.at,
        })),
        deferredRows: [],
        nextRow: d.fromRow + n,
        pageDone: d.fromRow + n >= pageRows,
      },
      now,
    );
  }
});
