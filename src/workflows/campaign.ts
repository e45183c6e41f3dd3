// campaignWorkflow: feeds a campaign's recipients to call workflows at the calling speed.
//
// History stays small: one activity places a whole batch of calls (each call workflow sleeps until
// its own slot), completions are counted from the call records in batches, and the workflow
// continues as new long before 4,096 events. Per recipient that is well under 3 events.
import {
  condition,
  continueAsNew,
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
import { metrics } from './sinks.js';
import {
  cancelCampaignUpdate,
  campaignStatusQuery,
  pauseCampaignUpdate,
  resumeCampaignUpdate,
  type CampaignState,
  type CampaignStatus,
} from './messages.js';

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
  /** Carried across continue-as-new. */
  progress?: CampaignProgress;
}

export interface CampaignProgress {
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
  firstSlot?: number;
  lastSlot?: number;
  placed: number;
  completed: number;
  byOutcome: Record<string, number>;
  recordsSeq: number;
  /** Calls placed recently, which may still wait for their slot: [workflowId, page, row, slot]. */
  waiting: Array<[string, number, number, number]>;
}

/** Continue as new well before Temporal's 4,096-event warning, keeping replays short. */
const MAX_EVENTS_PER_RUN = 2_000;
const MAX_BATCH = 500;

// A dispatcher lost with its worker is retried after the heartbeat timeout: keep it short.
const { dispatchBatch, collectRecords } = proxyActivities<Activities>({
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
  const p: CampaignProgress = input.progress ?? {
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
    return condition(() => control !== undefined, Math.max(1, Math.ceil(ms)));
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
    if (p.state === 'paused') {
      await condition(() => p.state !== 'paused' || control !== undefined);
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
