// The campaign dispatcher as a pure decision function: given a campaign's progress and `now`, what
// does the campaign workflow do next — place calls, drain (wait for running calls to finish), start
// the next pass over rows whose delivery window was closed, wait for the calling speed or for a
// window, or finish. The workflow (src/workflows/campaign.ts) is the durable shell around it: it
// runs the activity or timer a decision names and feeds the result back through the transitions
// below. Everything here is pure and serialisable, and unit-tested without Temporal.
// No zod here: the campaign workflow imports this module.
import type { CallingSpeed } from '../flow/schema.js';
import { bitmapFrom } from './bitmap.js';
import {
  firstDialsAvailable,
  grantDial,
  newBudget,
  releaseWithdrawn,
  settleReservation,
  type DialBudget,
  type DialSlot,
  type Pace,
  type Reservation,
} from './budget.js';

export type CampaignState = 'running' | 'paused' | 'cancelling' | 'cancelled' | 'completed';

/** A call placed recently, which may still wait for its slot (a pause or cancel can withdraw it). */
export interface WaitingCall {
  workflowId: string;
  page: number;
  /** Index of the row within its page. */
  row: number;
  slotAt: number;
}

/** Carried across continue-as-new. */
export interface CampaignProgress {
  /** Written by the v2 dispatcher; runs before it carried `CampaignProgressV1`. */
  version: 2;
  run: number;
  state: CampaignState;
  pass: number;
  page: number;
  row: number;
  /** This pass: rows to consider per page (later passes only). */
  only?: Record<string, string>;
  /** Next pass: rows deferred by their delivery window, per page. */
  deferred: Record<string, string>;
  nextWindowAt?: number;
  /** Slots of the first and the latest first dial placed (for status). */
  firstSlot?: number;
  lastSlot?: number;
  placed: number;
  completed: number;
  byOutcome: Record<string, number>;
  recordsSeq: number;
  waiting: WaitingCall[];
  budget: DialBudget;
  /** Dials granted to calls for their retries. */
  retriesGranted: number;
  /** Counts in a row that found no completion: the dispatcher then looks less often. */
  quietCounts?: number;
}

/** Progress as campaign runs carried it before core v2: read (old runs continue as new), never written. */
export interface CampaignProgressV1 {
  run: number;
  state: CampaignState;
  pass: number;
  page: number;
  row: number;
  only?: Record<string, string>;
  deferred: Record<string, string>;
  nextWindowAt?: number;
  firstSlot?: number;
  lastSlot?: number;
  placed: number;
  completed: number;
  byOutcome: Record<string, number>;
  recordsSeq: number;
  /** [workflowId, page, row, slot] */
  waiting: Array<[string, number, number, number]>;
}

export function initialProgress(speed: CallingSpeed): CampaignProgress {
  return {
    version: 2,
    run: 0,
    state: 'running',
    pass: 0,
    page: 0,
    row: 0,
    deferred: {},
    placed: 0,
    completed: 0,
    byOutcome: {},
    recordsSeq: 0,
    waiting: [],
    budget: newBudget(speed.spread ? 'spread' : 'burst'),
    retriesGranted: 0,
  };
}

function waitingCall(w: WaitingCall | [string, number, number, number]): WaitingCall {
  if (!Array.isArray(w)) return w;
  const [workflowId, page, row, slotAt] = w;
  return { workflowId, page, row, slotAt };
}

/**
 * The progress a run starts from: none (a new campaign), its own form, or the form of a run from
 * before core v2. Such a campaign keeps the pacing it was started with, even spacing: its budget
 * continues from its last slot (how many of its calls fall in the current period of a burst
 * count is not known, so switching could overshoot).
 */
export function readProgress(
  raw: CampaignProgress | CampaignProgressV1 | undefined,
  speed: CallingSpeed,
): CampaignProgress {
  if (raw === undefined) return initialProgress(speed);
  if ('budget' in raw) return { ...raw, waiting: raw.waiting.map(waitingCall) };
  const { waiting, ...rest } = raw;
  const budget: DialBudget = {
    mode: 'spread',
    periods: [],
    ...(raw.firstSlot !== undefined ? { anchor: raw.firstSlot } : {}),
    ...(raw.lastSlot !== undefined ? { lastSlot: raw.lastSlot } : {}),
  };
  return { ...rest, version: 2, waiting: waiting.map(waitingCall), budget, retriesGranted: 0 };
}

/** What the dispatcher knows of a campaign besides its progress. */
export interface CampaignPlan {
  pages: number;
  maxConcurrent: number;
  pace: Pace;
}

/** Calls placed by one activity at most (one page is 500 rows). */
export const MAX_BATCH = 500;

/** Spread: slots are given out up to this far ahead: ten slots, at least 5 s, at most 15 min. */
export function horizonMs(pace: Pace): number {
  return pace.mode === 'spread' ? Math.min(15 * 60_000, Math.max(5_000, 10 * pace.intervalMs)) : 0;
}

/**
 * How often running calls are counted while the dispatcher waits for them. Burst places a
 * period's calls as fast as concurrency lets it, so it looks more often; each count that found
 * nothing doubles the wait, up to 30 s (calls waiting hours for a retry cost few history events).
 */
export function pollMs(pace: Pace, quietCounts = 0): number {
  const base =
    pace.mode === 'spread'
      ? Math.min(30_000, Math.max(1_000, pace.intervalMs))
      : Math.min(5_000, Math.max(1_000, pace.intervalMs));
  return Math.min(Math.max(base, 30_000), base * 2 ** Math.min(quietCounts, 10));
}

export type Decision =
  /** Wait for resume (or cancel). */
  | { kind: 'paused' }
  /** Place up to `calls` calls from this page, from this row. */
  | { kind: 'place'; page: number; fromRow: number; only?: string; calls: number }
  /** Count completions; still blocked, wait `pollMs` for more. */
  | { kind: 'drain'; pollMs: number; why: 'concurrency' | 'finishing' }
  /** The calling speed allows no call before `until`. */
  | { kind: 'waitForSpeed'; until: number }
  /** The rows left wait for their delivery window, the first of which opens at `until`. */
  | { kind: 'waitForWindow'; until: number }
  | { kind: 'nextPass' }
  | { kind: 'done'; state: 'completed' | 'cancelled' };

export function inFlight(p: CampaignProgress): number {
  return p.placed - p.completed;
}

/** The page the dispatcher is at: later passes skip pages without deferred rows. */
function pageToVisit(p: CampaignProgress, pages: number): number {
  if (!p.only || p.only[String(p.page)] !== undefined) return p.page;
  const later = Object.keys(p.only)
    .map(Number)
    .filter((n) => n > p.page);
  return later.length > 0 ? Math.min(...later) : pages;
}

export function decide(p: CampaignProgress, plan: CampaignPlan, now: number): Decision {
  if (p.state === 'paused') return { kind: 'paused' };
  const page = p.state === 'running' ? pageToVisit(p, plan.pages) : plan.pages;
  if (page < plan.pages) {
    const allowance = Math.min(MAX_BATCH, plan.maxConcurrent - inFlight(p));
    if (allowance <= 0) return { kind: 'drain', pollMs: pollMs(plan.pace, p.quietCounts), why: 'concurrency' };
    const budget = firstDialsAvailable(p.budget, plan.pace, now, horizonMs(plan.pace));
    if (budget.calls <= 0) return { kind: 'waitForSpeed', until: budget.nextAt };
    const only = p.only?.[String(page)];
    return {
      kind: 'place',
      page,
      fromRow: page === p.page ? p.row : 0,
      ...(only !== undefined ? { only } : {}),
      calls: Math.min(allowance, budget.calls),
    };
  }
  if (p.state === 'running' && Object.keys(p.deferred).length > 0) {
    // Another pass over the rows whose window was closed, once the first of them opens.
    if (p.nextWindowAt !== undefined && p.nextWindowAt > now) return { kind: 'waitForWindow', until: p.nextWindowAt };
    return { kind: 'nextPass' };
  }
  if (inFlight(p) > 0) return { kind: 'drain', pollMs: pollMs(plan.pace, p.quietCounts), why: 'finishing' };
  return { kind: 'done', state: p.state === 'cancelling' ? 'cancelled' : 'completed' };
}

/** Completions counted from the call records. */
export interface Completions {
  completed: number;
  byOutcome: Record<string, number>;
  recordsSeq: number;
}

export function applyCompletions(p: CampaignProgress, c: Completions): CampaignProgress {
  const byOutcome = { ...p.byOutcome };
  for (const [k, v] of Object.entries(c.byOutcome)) byOutcome[k] = (byOutcome[k] ?? 0) + v;
  return {
    ...p,
    completed: p.completed + c.completed,
    byOutcome,
    recordsSeq: c.recordsSeq,
    quietCounts: c.completed > 0 ? 0 : (p.quietCounts ?? 0) + 1,
  };
}

/** What placing calls did (the placeCalls activity's result). */
export interface Placement {
  /**
   * Calls holding a slot, in slot order: the i-th got the reservation's i-th slot. Includes calls an
   * interrupted attempt of the same placement already started (same input, same slots).
   */
  placed: Array<{ workflowId: string; row: number; slotAt: number }>;
  /** Rows whose delivery window is closed at their slot: placed in a later pass. */
  deferredRows: number[];
  nextWindowAt?: number;
  nextRow: number;
  pageDone: boolean;
}

function deferRows(deferred: Record<string, string>, page: number, rows: number[]): Record<string, string> {
  return { ...deferred, [String(page)]: bitmapFrom(rows, deferred[String(page)] ?? '') };
}

export function applyPlacement(
  p: CampaignProgress,
  pace: Pace,
  d: Extract<Decision, { kind: 'place' }>,
  reservation: Reservation,
  r: Placement,
  now: number,
): CampaignProgress {
  const used = Math.min(r.placed.length, reservation.slots.length);
  const next: CampaignProgress = {
    ...p,
    budget: settleReservation(p.budget, pace, reservation, used),
    placed: p.placed + r.placed.length,
    waiting: [
      ...p.waiting.filter((w) => w.slotAt > now),
      ...r.placed.map((c) => ({ workflowId: c.workflowId, page: d.page, row: c.row, slotAt: c.slotAt })),
    ],
    page: r.pageDone ? d.page + 1 : d.page,
    row: r.pageDone ? 0 : r.nextRow,
  };
  const first = r.placed[0]?.slotAt;
  const last = r.placed.at(-1)?.slotAt;
  if (first !== undefined) next.firstSlot = Math.min(p.firstSlot ?? first, first);
  if (last !== undefined) next.lastSlot = Math.max(p.lastSlot ?? last, last);
  if (r.deferredRows.length > 0) {
    next.deferred = deferRows(p.deferred, d.page, r.deferredRows);
    if (r.nextWindowAt !== undefined) next.nextWindowAt = Math.min(p.nextWindowAt ?? r.nextWindowAt, r.nextWindowAt);
  }
  return next;
}

export function startNextPass(p: CampaignProgress): CampaignProgress {
  const { nextWindowAt: _next, ...rest } = p;
  return {
    ...rest,
    only: p.deferred,
    deferred: {},
    pass: p.pass + 1,
    page: Math.min(...Object.keys(p.deferred).map(Number)),
    row: 0,
  };
}

/** Calls due within two seconds are already on their way: only later ones can be withdrawn. */
export function withdrawable(p: CampaignProgress, now: number): WaitingCall[] {
  return p.waiting.filter((w) => w.slotAt > now + 2_000);
}

/**
 * Calls withdrawn before their slot (pause: their rows go to the next pass; cancel: they are
 * dropped) are no longer placed and give their slots back.
 */
export function applyWithdrawal(
  p: CampaignProgress,
  pace: Pace,
  withdrawnIds: string[],
  requeue: boolean,
  now: number,
): { progress: CampaignProgress; withdrawn: number } {
  const ids = new Set(withdrawnIds);
  const gone = p.waiting.filter((w) => ids.has(w.workflowId));
  const kept = p.waiting.filter((w) => !ids.has(w.workflowId));
  const keptLatest = kept.length > 0 ? Math.max(...kept.map((w) => w.slotAt)) : undefined;
  const next: CampaignProgress = {
    ...p,
    placed: p.placed - gone.length,
    waiting: [],
    budget: releaseWithdrawn(
      p.budget,
      pace,
      gone.map((w) => w.slotAt),
      keptLatest,
      now,
    ),
  };
  if (requeue && gone.length > 0) {
    next.deferred = gone.reduce((deferred, w) => deferRows(deferred, w.page, [w.row]), p.deferred);
    next.nextWindowAt = Math.min(p.nextWindowAt ?? now, now);
  }
  // The latest first dial is the latest that really goes out.
  if (gone.length > 0) next.lastSlot = keptLatest ?? Math.min(p.lastSlot ?? now, now);
  return { progress: next, withdrawn: gone.length };
}

/** A call under way asks for the slot of its next dial (a retry): always granted, counted. */
export function grantRetry(
  p: CampaignProgress,
  pace: Pace,
  now: number,
): { progress: CampaignProgress; slot: DialSlot } {
  const { budget, slot } = grantDial(p.budget, pace, now);
  return { progress: { ...p, budget, retriesGranted: p.retriesGranted + 1 }, slot };
}
