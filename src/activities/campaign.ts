// Campaign activities: place calls at the slots the campaign reserved, count completions from the
// call records, withdraw calls that still wait for their slot, ask a campaign for a retry's dial
// slot, the compliance gate of every outbound call, and the call record of each campaign call.
import { ApplicationFailure, heartbeat, log } from '@temporalio/activity';
import {
  ServiceError,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowExecutionInfo,
} from '@temporalio/client';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/common';
import { decodeArrayFromPayloads } from '@temporalio/common/lib/internal-non-workflow/index.js';
import type { Flow } from '../flow/schema.js';
import { dialableFrom, nextSlot } from '../campaign/pacing.js';
import { bitmapHas } from '../campaign/bitmap.js';
import type { PageRow } from '../campaign/recipients.js';
import {
  readAllRecords,
  isCallRecord,
  type CallRecord,
  type ComplianceStore,
  type PageStore,
  type RecordStore,
} from '../store/campaigns.js';
import {
  CAMPAIGN_NOT_DIALLING,
  CAMPAIGN_UPGRADING,
  callWorkflowId,
  requestDialSlotUpdate,
} from '../workflows/messages.js';
import type { CampaignPlacement, CallWorkflowInput } from '../workflows/call.js';
import type { Completions, Placement } from '../campaign/dispatcher.js';
import type { DialSlot } from '../campaign/budget.js';

export interface CampaignDeps {
  client: Client;
  store: PageStore & RecordStore & ComplianceStore;
}

export interface ContactCap {
  max: number;
  windowDays: number;
}

export interface PlaceCallsInput {
  campaignId: string;
  campaignWorkflowId: string;
  flow: Flow;
  callTaskQueue: string;
  page: number;
  /** First row index (within the page) to consider. */
  fromRow: number;
  /** Rows of this page to consider (later passes); all rows when absent. */
  only?: string;
  /**
   * Dial slots the campaign reserved from its budget, earliest first: the i-th call placed gets the
   * i-th; rows whose delivery window is closed at the slot they would get are deferred instead.
   */
  slots: DialSlot[];
  contactCap?: ContactCap;
}

export interface PlaceCallsResult extends Placement {
  /** Of `placed`: calls an interrupted attempt of this placement had already started. */
  alreadyPlaced: number;
}

export interface CountCompletionsInput {
  campaignId: string;
  /** Records up to this sequence are counted already. */
  recordsSeq: number;
}

export interface RequestDialSlotInput {
  /** The campaign workflow's id (`CampaignPlacement.workflowId`). */
  campaignWorkflowId: string;
  /** The asking call workflow's id. */
  workflowId: string;
  /** The dial number about to be placed (the dial command's `dialIndex`). */
  dial: number;
  /** 1 for the first request for this dial, 2 when asking again after missing `until`, … */
  request?: number;
}

/** What a call does about its next dial. */
export type DialSlotAnswer =
  | { granted: true; at: number; until: number }
  /** No more dials: the campaign was cancelled or is over (or gone). */
  | { granted: false; reason: 'campaignStopped' | 'campaignClosed'; message: string };

/** dispatchBatch's input: campaign runs from before core v2 place calls through it until they hand over. */
export interface DispatchInput {
  campaignId: string;
  campaignWorkflowId: string;
  flow: Flow;
  callTaskQueue: string;
  page: number;
  /** First row index (within the page) to consider. */
  fromRow: number;
  /** Rows of this page to consider (later passes); all rows when absent. */
  only?: string;
  lastSlot?: number;
  intervalMs: number;
  /** How far ahead slots may be given out. */
  horizonMs: number;
  /** At most this many calls placed (the concurrency allowance, also capped per batch). */
  maxPlace: number;
  recordsSeq: number;
  contactCap?: ContactCap;
  /** The workflow's clock: slots are in workflow time (which a time-skipping test server moves). */
  now: number;
}

/** dispatchBatch's result (campaign runs from before core v2). */
export interface DispatchResult {
  nextRow: number;
  pageDone: boolean;
  lastSlot?: number;
  placed: number;
  /** Calls placed in this batch: [workflowId, row, slot]. */
  waiting: Array<[string, number, number]>;
  /** Rows whose delivery window is closed at their slot: placed in a later pass. */
  deferredRows: number[];
  nextWindowAt?: number;
  /** Recipients already placed by an earlier (interrupted) attempt. */
  alreadyPlaced: number;
  completed: number;
  byOutcome: Record<string, number>;
  recordsSeq: number;
}

/** What a campaign's call workflow carries in its memo: enough to write its record if it never can. */
export interface CallMemo {
  campaignId: string;
  recipientId: string;
  row: number;
  slotAt: number;
}

/** A call workflow that closed this way ran none of its own code to the end: it wrote no record. */
const ABNORMAL_CLOSE: Record<string, string> = { TERMINATED: 'terminated', TIMED_OUT: 'timed out', FAILED: 'failed' };
/** Closed calls are looked for at most this often per campaign (each collect would be too often). */
const SWEEP_EVERY_MS = 10_000;
/**
 * A record written for a call closed this recently is deduplicated by the records stream (its
 * window is 10 minutes) against one the call wrote itself; an older one is checked against the
 * campaign's records first.
 */
const DEDUPE_TRUSTED_MS = 8 * 60_000;

const PAGE_CACHE = 8;
/** Concurrent workflow starts per batch: the dev server takes them in parallel. */
const START_CONCURRENCY = 16;

export function createCampaignActivities(deps: CampaignDeps) {
  const pageCache = new Map<string, PageRow[]>();
  async function page(campaignId: string, n: number): Promise<PageRow[]> {
    const key = `${campaignId}/${n}`;
    const hit = pageCache.get(key);
    if (hit) return hit;
    const rows = await deps.store.getPage(campaignId, n);
    pageCache.set(key, rows);
    if (pageCache.size > PAGE_CACHE) pageCache.delete(pageCache.keys().next().value as string);
    return rows;
  }

  // Call workflows terminated or timed out run no code of their own, so no record would ever come
  // and their campaign would wait for them for ever: the collector writes one for them.
  const lastSweep = new Map<string, number>();
  /** Abnormally closed calls known to have their record, per campaign (few: only those). */
  const settled = new Map<string, Set<string>>();

  async function memoOf(info: WorkflowExecutionInfo): Promise<CallMemo | undefined> {
    const memo = info.memo?.call as CallMemo | undefined;
    if (memo) return memo;
    // Calls placed before the memo existed: their input says the same.
    const history = await deps.client.workflow.getHandle(info.workflowId, info.runId).fetchHistory();
    const payloads = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads;
    const [input] = (await decodeArrayFromPayloads(deps.client.options.loadedDataConverter, payloads)) as Array<
      CallWorkflowInput | undefined
    >;
    if (!input?.campaign) return undefined;
    return {
      campaignId: input.campaignId,
      recipientId: input.recipient.id,
      row: input.campaign.row,
      slotAt: input.campaign.slotAt,
    };
  }

  /** Write the records of this campaign's calls that closed without one. Returns how many. */
  async function sweepClosedCalls(campaignId: string): Promise<number> {
    const now = Date.now();
    if ((lastSweep.get(campaignId) ?? 0) > now - SWEEP_EVERY_MS) return 0;
    lastSweep.set(campaignId, now);
    const prefix = callWorkflowId(campaignId, '');
    // Campaign ids are plain names; one that cannot be quoted safely is not swept.
    if (/["\\]/.test(prefix)) return 0;
    const query = `WorkflowType IN ("outboundCall", "callWorkflow") AND WorkflowId STARTS_WITH "${prefix}" AND ExecutionStatus IN ("Terminated", "TimedOut", "Failed")`;
    const known = settled.get(campaignId) ?? new Set<string>();
    settled.set(campaignId, known);
    const found: WorkflowExecutionInfo[] = [];
    try {
      for await (const info of deps.client.workflow.list({ query })) if (!known.has(info.workflowId)) found.push(info);
    } catch (err) {
      // A server without advanced visibility (the time-skipping test server) cannot list: the
      // campaign then counts only the records calls write themselves, as before.
      if (err instanceof ServiceError) {
        log.debug('cannot list closed calls: counting only the records calls write', {
          campaignId,
          reason: err.message,
        });
        return 0;
      }
      throw err;
    }
    if (found.length === 0) return 0;
    // Only calls whose latest run closed this way (an id may have been placed again since).
    const closed: Array<{ info: WorkflowExecutionInfo; memo: CallMemo }> = [];
    for (const info of found) {
      const latest = await deps.client.workflow.getHandle(info.workflowId).describe();
      if (latest.runId !== info.runId) continue;
      const memo = await memoOf(info);
      if (memo) closed.push({ info, memo });
    }
    let recorded: Set<string> | undefined;
    if (closed.some(({ info }) => (info.closeTime?.getTime() ?? 0) < now - DEDUPE_TRUSTED_MS)) {
      recorded = new Set((await readAllRecords(deps.store, campaignId)).map((r) => r.recipientId));
    }
    let written = 0;
    for (const { info, memo } of closed) {
      if (!recorded?.has(memo.recipientId)) {
        const how = ABNORMAL_CLOSE[info.status.name] ?? info.status.name.toLowerCase();
        const record: CallRecord = {
          campaignId,
          recipientId: memo.recipientId,
          row: memo.row,
          outcome: 'failed',
          dials: 0,
          durationMs: 0,
          slotAt: memo.slotAt,
          endedAt: info.closeTime?.getTime() ?? now,
          responses: [],
          error: `the call workflow ${how}`,
        };
        // The call's own dedupe id: a record the call wrote itself before closing wins.
        await deps.store.publish(record, info.workflowId);
        written += 1;
      }
      known.add(info.workflowId);
    }
    return written;
  }

  /** Completions since `afterSeq`, counted by outcome. */
  async function collect(campaignId: string, afterSeq: number): Promise<Completions> {
    await sweepClosedCalls(campaignId);
    const read = await deps.store.readAfter(campaignId, afterSeq);
    const byOutcome: Record<string, number> = {};
    // Calls only: a recording that came after its call closed is not another completion.
    const calls = read.records.filter(isCallRecord);
    for (const r of calls) byOutcome[r.outcome] = (byOutcome[r.outcome] ?? 0) + 1;
    return { completed: calls.length, byOutcome, recordsSeq: read.lastSeq };
  }

  /**
   * Which rows of a page get which slot: rows in order, the i-th call planned gets `slotFor(i)`
   * (none: the placement is full); a row whose delivery window is closed at that slot is deferred
   * and the slot goes to the next row. Pure given the page, so a retried attempt plans the same.
   */
  function planRows(
    rows: PageRow[],
    o: { flow: Flow; fromRow: number; only?: string | undefined },
    slotFor: (i: number) => number | undefined,
  ) {
    const planned: Array<{ row: number; entry: PageRow; slot: number; index: number }> = [];
    const deferredRows: number[] = [];
    let nextWindowAt: number | undefined;
    let row = o.fromRow;
    for (; row < rows.length; row++) {
      if (o.only !== undefined && !bitmapHas(o.only, row)) continue;
      const slot = slotFor(planned.length);
      if (slot === undefined) break;
      const entry = rows[row] as PageRow;
      const opens = dialableFrom(o.flow, entry.recipient, slot);
      if (opens !== undefined && opens > slot) {
        deferredRows.push(row);
        nextWindowAt = Math.min(nextWindowAt ?? opens, opens);
        continue;
      }
      planned.push({ row, entry, slot, index: planned.length });
    }
    return { planned, deferredRows, nextWindowAt, nextRow: row, pageDone: row >= rows.length };
  }

  /**
   * Start the planned calls, concurrently; each call workflow starts now and sleeps until its slot.
   * A recipient already placed (by an earlier attempt of this placement that crashed, with the same
   * plan) is not placed again; it holds its slot all the same.
   */
  async function startCalls(
    o: {
      campaignId: string;
      campaignWorkflowId: string;
      flow: Flow;
      callTaskQueue: string;
      contactCap?: ContactCap | undefined;
    },
    planned: Array<{ row: number; entry: PageRow; slot: number; until?: number }>,
  ): Promise<Array<{ workflowId: string; row: number; slotAt: number; started: boolean }>> {
    const out = planned.map(({ row, entry, slot }) => ({
      workflowId: callWorkflowId(o.campaignId, entry.recipient.id),
      row,
      slotAt: slot,
      started: false,
    }));
    const queue = planned.map((p, i) => ({ ...p, i }));
    let done = 0;
    const startOne = async ({ entry, slot, until, i }: (typeof queue)[number]) => {
      const call = out[i] as (typeof out)[number];
      // `slotUntil` (the end of the period that counted the slot) is for the call side: a first
      // dial that could not start by then asks for a new slot, as a retry does.
      const placement: CampaignPlacement & { slotUntil?: number } = {
        workflowId: o.campaignWorkflowId,
        slotAt: slot,
        row: entry.row,
        ...(until !== undefined ? { slotUntil: until } : {}),
        ...(o.contactCap ? { contactCap: o.contactCap } : {}),
      };
      const args: CallWorkflowInput = {
        flow: o.flow,
        recipient: entry.recipient,
        campaignId: o.campaignId,
        ...(entry.hints ? { hints: entry.hints } : {}),
        campaign: placement,
      };
      try {
        await deps.client.workflow.start('outboundCall', {
          taskQueue: o.callTaskQueue,
          workflowId: call.workflowId,
          // A withdrawn call (cancelled before its slot, never dialled) may be placed again;
          // one that completed may not.
          workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
          workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
          args: [args],
          memo: {
            call: {
              campaignId: o.campaignId,
              recipientId: entry.recipient.id,
              row: entry.row,
              slotAt: slot,
            } satisfies CallMemo,
          },
        });
        call.started = true;
      } catch (err) {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
        // Placed by an interrupted attempt of this placement (same slot): never started twice.
      }
      if (++done % 50 === 0) heartbeat(done);
    };
    await Promise.all(
      Array.from({ length: START_CONCURRENCY }, async () => {
        for (let next = queue.shift(); next; next = queue.shift()) await startOne(next);
      }),
    );
    return out;
  }

  return {
    /**
     * Place calls from a page at the slots the campaign reserved (it counts completions
     * separately, with countCompletions). A retried attempt gets the same input, so it plans the
     * same rows at the same slots and never starts a call twice.
     */
    async placeCalls(input: PlaceCallsInput): Promise<PlaceCallsResult> {
      const rows = await page(input.campaignId, input.page);
      const plan = planRows(rows, input, (i) => input.slots[i]?.at);
      const placed = await startCalls(
        input,
        plan.planned.map((c) => ({ ...c, until: input.slots[c.index]?.until as number })),
      );
      return {
        placed: placed.map(({ workflowId, row, slotAt }) => ({ workflowId, row, slotAt })),
        alreadyPlaced: placed.filter((c) => !c.started).length,
        deferredRows: plan.deferredRows,
        ...(plan.nextWindowAt !== undefined ? { nextWindowAt: plan.nextWindowAt } : {}),
        nextRow: plan.nextRow,
        pageDone: plan.pageDone,
      };
    },

    /** Completions since `recordsSeq`, from the call records (and records for calls that closed without one). */
    async countCompletions(input: CountCompletionsInput): Promise<Completions> {
      return collect(input.campaignId, input.recordsSeq);
    },

    /**
     * The slot of a campaign call's next dial (a retry), from its campaign's budget: the update
     * requestDialSlot on the campaign workflow. The update id makes a retried attempt get the same
     * answer (within the campaign's run). A cancelled, finished or vanished campaign refuses: the
     * call dials no more.
     */
    async requestDialSlot(input: RequestDialSlotInput): Promise<DialSlotAnswer> {
      const handle = deps.client.workflow.getHandle(input.campaignWorkflowId);
      try {
        const grant = await handle.executeUpdate(requestDialSlotUpdate, {
          args: [{ workflowId: input.workflowId, dial: input.dial }],
          updateId: `dial-slot:${input.workflowId}:${input.dial}:${input.request ?? 1}`,
        });
        return { granted: true, at: grant.at, until: grant.until };
      } catch (err) {
        if (err instanceof WorkflowNotFoundError)
          return { granted: false, reason: 'campaignClosed', message: `campaign ${input.campaignWorkflowId} is over` };
        if (!(err instanceof WorkflowUpdateFailedError) || !(err.cause instanceof ApplicationFailure)) throw err;
        if (err.cause.type === CAMPAIGN_NOT_DIALLING)
          return { granted: false, reason: 'campaignStopped', message: err.cause.message };
        // A campaign run from before core v2 hands over to its v2 run: the next attempt lands there.
        if (err.cause.type === CAMPAIGN_UPGRADING)
          throw ApplicationFailure.retryable(err.cause.message, CAMPAIGN_UPGRADING);
        throw err;
      }
    },

    /**
     * Campaign runs from before core v2 (until they hand over): count completions, then place
     * calls at slots spaced `intervalMs` from the last one, up to `horizonMs` ahead.
     */
    async dispatchBatch(input: DispatchInput): Promise<DispatchResult> {
      const done = await collect(input.campaignId, input.recordsSeq);
      const rows = await page(input.campaignId, input.page);
      // A retried attempt gets the same input (the same `now` and last slot): the same slots.
      const slots: number[] = [];
      const slotFor = (i: number): number | undefined => {
        if (i >= input.maxPlace) return undefined;
        for (let k = slots.length; k <= i; k++)
          slots.push(nextSlot(slots[k - 1] ?? input.lastSlot, input.intervalMs, input.now));
        const slot = slots[i] as number;
        return slot > input.now + input.horizonMs && i > 0 ? undefined : slot;
      };
      const plan = planRows(rows, input, slotFor);
      const placed = await startCalls(input, plan.planned);
      const started = placed.filter((c) => c.started);
      const lastSlot = plan.planned.at(-1)?.slot ?? input.lastSlot;
      return {
        ...done,
        nextRow: plan.nextRow,
        pageDone: plan.pageDone,
        ...(lastSlot !== undefined ? { lastSlot } : {}),
        placed: started.length,
        waiting: started.map((c): [string, number, number] => [c.workflowId, c.row, c.slotAt]),
        deferredRows: plan.deferredRows,
        ...(plan.nextWindowAt !== undefined ? { nextWindowAt: plan.nextWindowAt } : {}),
        alreadyPlaced: placed.length - started.length,
      };
    },

    /** Campaign runs from before core v2: countCompletions under its old name. */
    async collectRecords(input: CountCompletionsInput): Promise<Completions> {
      return collect(input.campaignId, input.recordsSeq);
    },

    /**
     * Withdraw calls still waiting for their slot: cancel them. A call past its slot ignores the
     * cancellation and completes. Returns the rows that were really withdrawn.
     */
    async withdrawCalls(input: {
      /** `[workflowId, slot]` from campaign runs before core v2. */
      calls: Array<{ workflowId: string; slotAt: number } | [workflowId: string, slot: number]>;
    }): Promise<string[]> {
      const withdrawn: string[] = [];
      const queue = input.calls.map((c) => (Array.isArray(c) ? c[0] : c.workflowId));
      const worker = async () => {
        for (let workflowId = queue.shift(); workflowId; workflowId = queue.shift()) {
          const handle = deps.client.workflow.getHandle(workflowId);
          try {
            await handle.cancel();
            // A waiting call ends CANCELED within milliseconds; one past its slot keeps running.
            for (let i = 0; i < 40; i++) {
              const { status } = await handle.describe();
              if (status.name === 'CANCELLED') {
                withdrawn.push(workflowId);
                break;
              }
              if (status.name !== 'RUNNING') break;
              await new Promise((r) => setTimeout(r, 50));
            }
          } catch (err) {
            if (!(err instanceof WorkflowNotFoundError)) throw err;
          }
          heartbeat();
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));
      return withdrawn;
    },

    /**
     * Do-not-call and contact cap, checked at dial time (a number added after launch still
     * blocks): before the first dial of every outbound call, campaign or not.
     */
    async campaignGate(input: {
      phone: string;
      contactCap?: ContactCap;
      now: number;
    }): Promise<'ok' | 'doNotCall' | 'contactCapped'> {
      if (await deps.store.isDoNotCall(input.phone)) return 'doNotCall';
      if (input.contactCap) {
        const ok = await deps.store.claimContact(
          input.phone,
          input.contactCap.max,
          input.contactCap.windowDays * 86_400_000,
          input.now,
        );
        if (!ok) return 'contactCapped';
      }
      return 'ok';
    },

    async publishCallRecord(input: { record: CallRecord; workflowId: string }): Promise<void> {
      try {
        await deps.store.publish(input.record, input.workflowId);
      } catch (err) {
        throw ApplicationFailure.retryable(
          `cannot store the call record: ${(err as Error).message}`,
          'RecordStoreError',
        );
      }
    },
  };
}

export type CampaignActivities = ReturnType<typeof createCampaignActivities>;
