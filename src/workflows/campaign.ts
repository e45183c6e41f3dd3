// campaignWorkflow: feeds a campaign's recipients to call workflows at the calling speed.
//
// The decisions are the pure dispatcher's (src/campaign/dispatcher.ts) and the dial budget's
// (src/campaign/budget.ts); this is their durable shell: it runs the activity or timer a decision
// names, applies pause/cancel/resume between them, and answers calls that ask for the slot of a
// retry (requestDialSlot), so that every dial counts against the calling speed.
//
// History stays small: one activity places a batch of calls (each call workflow sleeps until its
// own slot), another counts completions from the call records, and the workflow continues as new
// long before 4,096 events (also while it waits: retries' updates are history events too).
//
// Core v2 and runs started before it. Core v2 changes the command sequence (placeCalls and
// countCompletions instead of dispatchBatch and collectRecords, other timers), so it sits behind
// patched(CAMPAIGN_V2) rather than a new workflow type, because:
// - a campaign is one workflow id (`campaign:{id}`) that the CLI, clients and its own calls address
//   for days, across continue-as-new; a new type would leave every running campaign on the old code
//   for the rest of its life (never counting retries) and need both codes and both activity sets
//   for as long as any old campaign runs;
// - continue-as-new gives a clean cut: a run from before v2 replays on the frozen v1 loop below
//   (patched() is false on its history) and, at its next loop iteration after the upgrade (where
//   patched() is true), continues as new; the new run is v2 from its first command and reads the
//   old progress. v2 code never runs on v1 history.
// Once no run from before v2 is left, the patch becomes deprecatePatch(CAMPAIGN_V2) and the v1
// loop goes, then the deprecation too.
import {
  ApplicationFailure,
  condition,
  continueAsNew,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
  allHandlersFinished,
  log,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { ContactCap, DispatchResult } from '../activities/index.js';
import type { CallingSpeed, Flow } from '../flow/schema.js';
import { formatSpeed, slotIntervalMs } from '../campaign/pacing.js';
import { bitmapCount, bitmapFrom } from '../campaign/bitmap.js';
import { lastFirstDialEstimate, paceOf, reserveFirstDials, type Pace } from '../campaign/budget.js';
import {
  applyCompletions,
  applyPlacement,
  applyWithdrawal,
  decide,
  grantRetry,
  horizonMs,
  inFlight,
  MAX_BATCH,
  readProgress,
  startNextPass,
  withdrawable,
  type CampaignPlan,
  type CampaignProgress,
  type CampaignProgressV1,
  type Decision,
} from '../campaign/dispatcher.js';
import { metrics } from './sinks.js';
import {
  CAMPAIGN_NOT_DIALLING,
  CAMPAIGN_UPGRADING,
  cancelCampaignUpdate,
  campaignStatusQuery,
  pauseCampaignUpdate,
  requestDialSlotUpdate,
  resumeCampaignUpdate,
  type CampaignStatus,
} from './messages.js';

export type { CampaignProgress, CampaignProgressV1 } from '../campaign/dispatcher.js';

export interface CampaignWorkflowInput {
  campaignId: string;
  flow: Flow;
  /** Staged pages of recipients and how many recipients they hold. */
  pages: number;
  total: number;
  speed: CallingSpeed;
  maxConcurrent: number;
  callTaskQueue: string;
  contactCap?: ContactCap;
  /** Carried across continue-as-new; runs from before core v2 carried the v1 form. */
  progress?: CampaignProgress | CampaignProgressV1;
}

/** The core v2 dispatcher (see the header): set in every run started since. */
export const CAMPAIGN_V2 = 'campaign-v2-dispatcher';

/** Continue as new well before Temporal's 4,096-event warning, keeping replays short. */
const MAX_EVENTS_PER_RUN = 2_000;
/** The longest the dispatcher sleeps without counting completions (status stays current). */
const MAX_WAIT_MS = 10 * 60_000;

// A placement lost with its worker is retried after the heartbeat timeout: keep it short.
const { placeCalls, countCompletions, dispatchBatch, collectRecords } = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '20 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});
const { withdrawCalls } = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

export async function campaignWorkflow(input: CampaignWorkflowInput): Promise<CampaignStatus> {
  if (patched(CAMPAIGN_V2)) return dispatch(input);
  return campaignV1(input, input.progress as CampaignProgressV1 | undefined);
}

async function dispatch(input: CampaignWorkflowInput): Promise<CampaignStatus> {
  let p: CampaignProgress = readProgress(input.progress, input.speed);
  p = { ...p, run: p.run + 1 };
  const pace: Pace = paceOf(input.speed, p.budget.mode);
  const plan: CampaignPlan = { pages: input.pages, maxConcurrent: input.maxConcurrent, pace };
  const speed = formatSpeed({ calls: input.speed.calls, per: input.speed.per, spread: pace.mode === 'spread' });
  let control: 'pause' | 'cancel' | undefined;
  let lastWithdrawn = 0;
  const historyFull = () => {
    const info = workflowInfo();
    return info.historyLength > MAX_EVENTS_PER_RUN || info.continueAsNewSuggested;
  };

  const status = (): CampaignStatus => {
    const now = Date.now();
    const waitingForWindow = Object.values(p.deferred).reduce((n, b) => n + bitmapCount(b), 0);
    const remaining = Math.max(0, input.total - p.placed);
    return {
      campaignId: input.campaignId,
      state: p.state,
      total: input.total,
      placed: p.placed,
      completed: p.completed,
      inFlight: inFlight(p),
      remaining,
      byOutcome: p.byOutcome,
      waitingForWindow,
      pass: p.pass,
      speed,
      maxConcurrent: input.maxConcurrent,
      ...(p.firstSlot !== undefined ? { firstSlotAt: new Date(p.firstSlot).toISOString() } : {}),
      ...(p.lastSlot !== undefined ? { lastSlotAt: new Date(p.lastSlot).toISOString() } : {}),
      ...(p.state === 'running' || p.state === 'paused'
        ? { eta: new Date(lastFirstDialEstimate(p.budget, pace, now, remaining)).toISOString() }
        : {}),
      run: p.run,
      retrySlots: p.retriesGranted,
    };
  };
  setHandler(campaignStatusQuery, status);

  const settle = async (what: 'pause' | 'cancel') => {
    control = what;
    // The main loop applies it between activities; the update returns once it has.
    await condition(() => control === undefined);
    return { state: p.state, withdrawn: lastWithdrawn };
  };
  setHandler(pauseCampaignUpdate, () => settle('pause'), {
    validator: () => {
      if (p.state !== 'running') throw new Error(`campaign is ${p.state}, not running`);
    },
  });
  setHandler(cancelCampaignUpdate, () => settle('cancel'), {
    validator: () => {
      if (p.state === 'cancelling' || p.state === 'cancelled' || p.state === 'completed')
        throw new Error(`campaign is already ${p.state}`);
    },
  });
  setHandler(
    resumeCampaignUpdate,
    () => {
      p = { ...p, state: 'running' };
      return { state: p.state };
    },
    {
      validator: () => {
        if (p.state !== 'paused') throw new Error(`campaign is ${p.state}, not paused`);
      },
    },
  );
  // A retry's dial: granted at once (synchronous, so continue-as-new never waits for it) while the
  // campaign runs or is paused — a pause stops first dials, a call already under way finishes;
  // refused in the validator (no history event) once the campaign is cancelled or over.
  setHandler(
    requestDialSlotUpdate,
    () => {
      const granted = grantRetry(p, pace, Date.now());
      p = granted.progress;
      return granted.slot;
    },
    {
      validator: (req) => {
        if (typeof req?.workflowId !== 'string' || !Number.isInteger(req.dial) || req.dial < 1)
          throw ApplicationFailure.nonRetryable('a dial slot request names its call workflow and dial number');
        if (p.state === 'cancelling' || p.state === 'cancelled' || p.state === 'completed')
          throw ApplicationFailure.nonRetryable(`campaign is ${p.state}: no more dials`, CAMPAIGN_NOT_DIALLING);
      },
    },
  );

  const count = async () => {
    const counted = await countCompletions({ campaignId: input.campaignId, recordsSeq: p.recordsSeq });
    p = applyCompletions(p, counted);
  };

  /** Withdraw the calls still waiting for their slot; on pause they go to the next pass. */
  const withdraw = async (requeue: boolean) => {
    const pending = withdrawable(p, Date.now());
    const ids =
      pending.length > 0
        ? await withdrawCalls({ calls: pending.map((w) => ({ workflowId: w.workflowId, slotAt: w.slotAt })) })
        : [];
    const applied = applyWithdrawal(p, pace, ids, requeue, Date.now());
    p = applied.progress;
    lastWithdrawn = applied.withdrawn;
  };

  const applyControl = async () => {
    if (control === 'pause') {
      await withdraw(true);
      p = { ...p, state: 'paused' };
      control = undefined;
      log.info('campaign paused', { campaignId: input.campaignId, withdrawn: lastWithdrawn });
    } else if (control === 'cancel') {
      await withdraw(false);
      p = { ...p, state: 'cancelling' };
      control = undefined;
      log.info('campaign cancelled', { campaignId: input.campaignId, withdrawn: lastWithdrawn });
    }
  };

  /** Sleep, woken by pause/cancel, or by a history long enough to continue as new. */
  const sleepFor = (ms: number, why: 'speed' | 'concurrency' | 'window') => {
    const wait = Math.min(MAX_WAIT_MS, Math.max(1, Math.ceil(ms)));
    metrics.campaignWait(input.campaignId, why, wait / 1000);
    return condition(() => control !== undefined || historyFull(), wait);
  };
  const report = () => {
    const s = status();
    metrics.campaignProgress(input.campaignId, {
      state: s.state,
      placed: s.placed,
      completed: s.completed,
      inFlight: s.inFlight,
      remaining: s.remaining,
      waitingForWindow: s.waitingForWindow,
      callsPerMinute: (60_000 * pace.calls) / pace.periodMs,
    });
  };

  const place = async (d: Extract<Decision, { kind: 'place' }>) => {
    const reserved = reserveFirstDials(p.budget, pace, Date.now(), d.calls, horizonMs(pace));
    p = { ...p, budget: reserved.budget };
    const placed = await placeCalls({
      campaignId: input.campaignId,
      campaignWorkflowId: workflowInfo().workflowId,
      flow: input.flow,
      callTaskQueue: input.callTaskQueue,
      page: d.page,
      fromRow: d.fromRow,
      ...(d.only !== undefined ? { only: d.only } : {}),
      slots: reserved.reservation.slots,
      ...(input.contactCap ? { contactCap: input.contactCap } : {}),
    });
    // Retries granted while the calls were being placed are in `p` already; the reservation's
    // unused slots go back to the budget.
    p = applyPlacement(p, pace, d, reserved.reservation, placed, Date.now());
  };

  for (;;) {
    report();
    await applyControl();
    if (historyFull()) {
      // Every handler done first (a pause or cancel waits for the loop: apply it, then continue).
      await condition(() => allHandlersFinished() || control !== undefined);
      if (control === undefined) return continueAsNew<typeof campaignWorkflow>({ ...input, progress: p });
      continue;
    }
    const d = decide(p, plan, Date.now());
    switch (d.kind) {
      case 'paused':
        await condition(() => p.state !== 'paused' || control !== undefined || historyFull());
        break;
      case 'place':
        await place(d);
        break;
      case 'drain': {
        await count();
        const still = decide(p, plan, Date.now());
        if (still.kind === 'drain') await sleepFor(still.pollMs, 'concurrency');
        break;
      }
      case 'waitForSpeed':
        await count();
        await sleepFor(d.until - Date.now(), 'speed');
        break;
      case 'waitForWindow':
        await count();
        await sleepFor(d.until - Date.now(), 'window');
        break;
      case 'nextPass':
        p = startNextPass(p);
        break;
      case 'done': {
        if (inFlight(p) < 0)
          log.warn('more call records than placed calls', {
            campaignId: input.campaignId,
            placed: p.placed,
            completed: p.completed,
          });
        p = { ...p, state: d.state };
        report();
        await condition(allHandlersFinished);
        log.info('campaign finished', { campaignId: input.campaignId, state: p.state, completed: p.completed });
        return status();
      }
    }
  }
}

// --- core v1, frozen ------------------------------------------------------------------------------
// The loop of campaign runs started before core v2, as it was, so that their histories replay
// (test/histories/campaign-v1-pause-resume.json). Changes that emit no command of their own: it
// hands over to v2 at its next iteration (patched(CAMPAIGN_V2), then continue-as-new), and a call
// that asks it for a dial slot wakes it to do so and is told to ask again (CAMPAIGN_UPGRADING).

async function campaignV1(
  input: CampaignWorkflowInput,
  progress: CampaignProgressV1 | undefined,
): Promise<CampaignStatus> {
  const p: CampaignProgressV1 = progress ?? {
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
  };
  p.run += 1;
  const interval = slotIntervalMs(input.speed);
  // Slots are given out up to this far ahead: ten slots, at least 5 s, at most 15 min.
  const horizon = Math.min(15 * 60_000, Math.max(5_000, 10 * interval));
  const pollMs = Math.min(30_000, Math.max(1_000, interval));
  let control: 'pause' | 'cancel' | undefined;
  let lastWithdrawn = 0;
  /** A call asked for a dial slot: hand over to v2 now, even from a pause. */
  let upgradeWanted = false;

  const inFlight = () => p.placed - p.completed;
  /** Rows of a page for the next pass. */
  const deferRows = (page: number, rows: number[]) => {
    p.deferred[String(page)] = bitmapFrom(rows, p.deferred[String(page)] ?? '');
  };
  const status = (): CampaignStatus => {
    const waitingForWindow = Object.values(p.deferred).reduce((n, b) => n + bitmapCount(b), 0);
    const remaining = Math.max(0, input.total - p.placed);
    const etaFrom = Math.max(Date.now(), p.lastSlot ?? Date.now());
    return {
      campaignId: input.campaignId,
      state: p.state,
      total: input.total,
      placed: p.placed,
      completed: p.completed,
      inFlight: inFlight(),
      remaining,
      byOutcome: p.byOutcome,
      waitingForWindow,
      pass: p.pass,
      speed: formatSpeed(input.speed),
      maxConcurrent: input.maxConcurrent,
      ...(p.firstSlot !== undefined ? { firstSlotAt: new Date(p.firstSlot).toISOString() } : {}),
      ...(p.lastSlot !== undefined ? { lastSlotAt: new Date(p.lastSlot).toISOString() } : {}),
      ...(p.state === 'running' || p.state === 'paused'
        ? { eta: new Date(etaFrom + remaining * interval).toISOString() }
        : {}),
      run: p.run,
    };
  };
  setHandler(campaignStatusQuery, status);

  const settle = async (what: 'pause' | 'cancel') => {
    control = what;
    // The main loop applies it between activities; the update returns once it has.
    await condition(() => control === undefined);
    return { state: p.state, withdrawn: lastWithdrawn };
  };
  setHandler(pauseCampaignUpdate, () => settle('pause'), {
    validator: () => {
      if (p.state !== 'running') throw new Error(`campaign is ${p.state}, not running`);
    },
  });
  setHandler(cancelCampaignUpdate, () => settle('cancel'), {
    validator: () => {
      if (p.state === 'cancelling' || p.state === 'cancelled' || p.state === 'completed')
        throw new Error(`campaign is already ${p.state}`);
    },
  });
  setHandler(requestDialSlotUpdate, () => {
    upgradeWanted = true;
    throw ApplicationFailure.retryable('the campaign is moving to core v2: ask again', CAMPAIGN_UPGRADING);
  });
  setHandler(
    resumeCampaignUpdate,
    () => {
      p.state = 'running';
      return { state: p.state };
    },
    {
      validator: () => {
        if (p.state !== 'paused') throw new Error(`campaign is ${p.state}, not paused`);
      },
    },
  );

  const absorb = (r: Pick<DispatchResult, 'completed' | 'byOutcome' | 'recordsSeq'>) => {
    p.completed += r.completed;
    p.recordsSeq = r.recordsSeq;
    for (const [k, v] of Object.entries(r.byOutcome)) p.byOutcome[k] = (p.byOutcome[k] ?? 0) + v;
  };

  /** Withdraw the calls still waiting for their slot; they go to the next pass. */
  const withdraw = async (requeue: boolean) => {
    const now = Date.now();
    // Calls due within two seconds are already on their way.
    const pending = p.waiting.filter(([, , , slot]) => slot > now + 2_000);
    const ids = new Set(
      pending.length > 0 ? await withdrawCalls({ calls: pending.map(([id, , , slot]) => [id, slot]) }) : [],
    );
    const gone = p.waiting.filter(([id]) => ids.has(id));
    p.placed -= gone.length;
    if (requeue) {
      for (const [, page, row] of gone) deferRows(page, [row]);
      if (gone.length > 0) p.nextWindowAt = Math.min(p.nextWindowAt ?? now, now);
    }
    // The spacing continues from the last call that really goes out.
    const kept = p.waiting.filter(([id]) => !ids.has(id)).map(([, , , slot]) => slot);
    if (gone.length > 0) p.lastSlot = kept.length > 0 ? Math.max(...kept) : Math.min(p.lastSlot ?? now, now);
    p.waiting = [];
    lastWithdrawn = gone.length;
  };

  const applyControl = async () => {
    if (control === 'pause') {
      await withdraw(true);
      p.state = 'paused';
      control = undefined;
      log.info('campaign paused', { campaignId: input.campaignId, withdrawn: lastWithdrawn });
    } else if (control === 'cancel') {
      await withdraw(false);
      p.state = 'cancelling';
      control = undefined;
      log.info('campaign cancelled', { campaignId: input.campaignId, withdrawn: lastWithdrawn });
    }
  };

  const sleepOrControl = (ms: number, why: 'speed' | 'concurrency' | 'window') => {
    metrics.campaignWait(input.campaignId, why, ms / 1000);
    return condition(() => control !== undefined || upgradeWanted, Math.max(1, Math.ceil(ms)));
  };
  const report = () => {
    const s = status();
    metrics.campaignProgress(input.campaignId, {
      state: s.state,
      placed: s.placed,
      completed: s.completed,
      inFlight: s.inFlight,
      remaining: s.remaining,
      waitingForWindow: s.waitingForWindow,
      callsPerMinute: 60_000 / interval,
    });
  };

  for (;;) {
    report();
    await applyControl();
    // False while replaying history from before core v2; true at the first live iteration.
    if (patched(CAMPAIGN_V2)) {
      await condition(() => allHandlersFinished() || control !== undefined);
      if (control === undefined) return continueAsNew<typeof campaignWorkflow>({ ...input, progress: p });
      continue;
    }
    if (p.state === 'paused') {
      await condition(() => p.state !== 'paused' || control !== undefined || upgradeWanted);
      continue;
    }
    const info = workflowInfo();
    if (info.historyLength > MAX_EVENTS_PER_RUN || info.continueAsNewSuggested) {
      await condition(allHandlersFinished);
      if (control === undefined) return continueAsNew<typeof campaignWorkflow>({ ...input, progress: p });
      continue;
    }

    const placing = p.state === 'running' && p.page < input.pages;
    if (!placing) {
      const nextPass = p.state === 'running' && Object.keys(p.deferred).length > 0;
      if (nextPass) {
        // Another pass over the rows whose window was closed, once the first of them opens.
        if (p.nextWindowAt !== undefined && p.nextWindowAt > Date.now()) {
          absorb(await collectRecords({ campaignId: input.campaignId, recordsSeq: p.recordsSeq }));
          await sleepOrControl(Math.min(p.nextWindowAt - Date.now(), 10 * 60_000), 'window');
          continue;
        }
        p.only = p.deferred;
        p.deferred = {};
        delete p.nextWindowAt;
        p.pass += 1;
        p.page = Math.min(...Object.keys(p.only).map(Number));
        p.row = 0;
        continue;
      }
      if (inFlight() <= 0) {
        if (inFlight() < 0)
          log.warn('more call records than placed calls', {
            campaignId: input.campaignId,
            placed: p.placed,
            completed: p.completed,
          });
        break;
      }
      absorb(await collectRecords({ campaignId: input.campaignId, recordsSeq: p.recordsSeq }));
      if (inFlight() > 0) await sleepOrControl(pollMs, 'concurrency');
      continue;
    }

    // Later passes visit only pages with deferred rows.
    if (p.only && p.only[String(p.page)] === undefined) {
      const next = Object.keys(p.only)
        .map(Number)
        .filter((n) => n > p.page);
      p.page = next.length > 0 ? Math.min(...next) : input.pages;
      p.row = 0;
      continue;
    }
    const allowance = Math.min(MAX_BATCH, input.maxConcurrent - inFlight());
    if (allowance <= 0) {
      absorb(await collectRecords({ campaignId: input.campaignId, recordsSeq: p.recordsSeq }));
      if (input.maxConcurrent - inFlight() <= 0) await sleepOrControl(pollMs, 'concurrency');
      continue;
    }
    const only = p.only?.[String(p.page)];
    const r = await dispatchBatch({
      campaignId: input.campaignId,
      campaignWorkflowId: info.workflowId,
      flow: input.flow,
      callTaskQueue: input.callTaskQueue,
      page: p.page,
      fromRow: p.row,
      ...(only !== undefined ? { only } : {}),
      ...(p.lastSlot !== undefined ? { lastSlot: p.lastSlot } : {}),
      intervalMs: interval,
      horizonMs: horizon,
      maxPlace: allowance,
      recordsSeq: p.recordsSeq,
      ...(input.contactCap ? { contactCap: input.contactCap } : {}),
      now: Date.now(),
    });
    absorb(r);
    // Calls an interrupted attempt of this batch placed are placed all the same: their records come.
    p.placed += r.placed + r.alreadyPlaced;
    if (r.lastSlot !== undefined) {
      p.lastSlot = r.lastSlot;
      p.firstSlot ??= r.waiting[0]?.[2] ?? r.lastSlot;
    }
    const now = Date.now();
    p.waiting = [
      ...p.waiting.filter(([, , , slot]) => slot > now),
      ...r.waiting.map(([id, row, slot]): [string, number, number, number] => [id, p.page, row, slot]),
    ];
    if (r.deferredRows.length > 0) {
      deferRows(p.page, r.deferredRows);
      if (r.nextWindowAt !== undefined) p.nextWindowAt = Math.min(p.nextWindowAt ?? r.nextWindowAt, r.nextWindowAt);
    }
    if (r.pageDone) {
      p.page += 1;
      p.row = 0;
    } else {
      p.row = r.nextRow;
    }
    // Sleep until the batch's slots are half used up (the next batch continues the spacing).
    if (r.placed > 0 && p.lastSlot !== undefined) {
      const wake = p.lastSlot - horizon / 2 - Date.now();
      if (wake > 0) await sleepOrControl(wake, 'speed');
    }
  }

  p.state = p.state === 'cancelling' ? 'cancelled' : 'completed';
  report();
  await condition(allHandlersFinished);
  log.info('campaign finished', { campaignId: input.campaignId, state: p.state, completed: p.completed });
  return status();
}
