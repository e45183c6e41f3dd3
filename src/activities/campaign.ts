// Campaign activities: place a batch of calls at their slots, withdraw calls that still wait for
// their slot, the compliance gate of every outbound call, and the call record of each campaign call.
import { ApplicationFailure, heartbeat } from '@temporalio/activity';
import {
  ServiceError,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
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
  type CallRecord,
  type ComplianceStore,
  type PageStore,
  type RecordStore,
} from '../store/campaigns.js';
import { callWorkflowId } from '../workflows/messages.js';
import type { CallWorkflowInput } from '../workflows/call.js';

export interface CampaignDeps {
  client: Client;
  store: PageStore & RecordStore & ComplianceStore;
}

export interface ContactCap {
  max: number;
  windowDays: number;
}

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
      if (err instanceof ServiceError) return 0;
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
  async function collect(
    campaignId: string,
    afterSeq: number,
  ): Promise<Pick<DispatchResult, 'completed' | 'byOutcome' | 'recordsSeq'>> {
    await sweepClosedCalls(campaignId);
    const read = await deps.store.readAfter(campaignId, afterSeq);
    const byOutcome: Record<string, number> = {};
    for (const r of read.records) byOutcome[r.outcome] = (byOutcome[r.outcome] ?? 0) + 1;
    return { completed: read.records.length, byOutcome, recordsSeq: read.lastSeq };
  }

  return {
    /**
     * Count completions, then place calls from the page at spaced slots: each call workflow
     * starts now and sleeps until its slot. A recipient already placed (an earlier attempt of this
     * activity that crashed) is not placed again, and its slot still counts for the spacing.
     */
    async dispatchBatch(input: DispatchInput): Promise<DispatchResult> {
      const done = await collect(input.campaignId, input.recordsSeq);
      const rows = await page(input.campaignId, input.page);
      const result: DispatchResult = {
        ...done,
        nextRow: input.fromRow,
        pageDone: false,
        placed: 0,
        waiting: [],
        deferredRows: [],
        alreadyPlaced: 0,
        ...(input.lastSlot !== undefined ? { lastSlot: input.lastSlot } : {}),
      };
      const now = input.now;
      // Slots first, in row order; then the starts, concurrently. A retried attempt gets the same
      // input (the same `now` and last slot), so it computes the same slots for the same rows.
      const planned: Array<{ row: number; entry: PageRow; slot: number }> = [];
      let row = input.fromRow;
      for (; row < rows.length; row++) {
        if (input.only !== undefined && !bitmapHas(input.only, row)) continue;
        if (planned.length >= input.maxPlace) break;
        const slot = nextSlot(result.lastSlot, input.intervalMs, now);
        if (slot > now + input.horizonMs && planned.length > 0) break;
        const entry = rows[row] as PageRow;
        const opens = dialableFrom(input.flow, entry.recipient, slot);
        if (opens !== undefined && opens > slot) {
          result.deferredRows.push(row);
          result.nextWindowAt = Math.min(result.nextWindowAt ?? opens, opens);
          continue;
        }
        result.lastSlot = slot;
        planned.push({ row, entry, slot });
      }
      const queue = [...planned];
      let started = 0;
      const startOne = async ({ row: r, entry, slot }: (typeof planned)[number]) => {
        const workflowId = callWorkflowId(input.campaignId, entry.recipient.id);
        const args: CallWorkflowInput = {
          flow: input.flow,
          recipient: entry.recipient,
          campaignId: input.campaignId,
          ...(entry.hints ? { hints: entry.hints } : {}),
          campaign: {
            workflowId: input.campaignWorkflowId,
            slotAt: slot,
            row: entry.row,
            ...(input.contactCap ? { contactCap: input.contactCap } : {}),
          },
        };
        try {
          await deps.client.workflow.start('outboundCall', {
            taskQueue: input.callTaskQueue,
            workflowId,
            // A withdrawn call (cancelled before its slot, never dialled) may be placed again;
            // one that completed may not.
            workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
            args: [args],
            memo: {
              call: {
                campaignId: input.campaignId,
                recipientId: entry.recipient.id,
                row: entry.row,
                slotAt: slot,
              } satisfies CallMemo,
            },
          });
          result.placed += 1;
          result.waiting.push([workflowId, r, slot]);
        } catch (err) {
          if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
          // Placed by an interrupted attempt of this batch (same slot): never started twice.
          result.alreadyPlaced += 1;
        }
        if (++started % 50 === 0) heartbeat(started);
      };
      await Promise.all(
        Array.from({ length: START_CONCURRENCY }, async () => {
          for (let next = queue.shift(); next; next = queue.shift()) await startOne(next);
        }),
      );
      result.waiting.sort((a, b) => a[2] - b[2]);
      result.nextRow = row;
      result.pageDone = row >= rows.length;
      return result;
    },

    /** Counts completions only (draining, paused, cap reached). */
    async collectRecords(input: {
      campaignId: string;
      recordsSeq: number;
    }): Promise<Pick<DispatchResult, 'completed' | 'byOutcome' | 'recordsSeq'>> {
      return collect(input.campaignId, input.recordsSeq);
    },

    /**
     * Withdraw calls still waiting for their slot: cancel them. A call past its slot ignores the
     * cancellation and completes. Returns the rows that were really withdrawn.
     */
    async withdrawCalls(input: { calls: Array<[workflowId: string, slot: number]> }): Promise<string[]> {
      const withdrawn: string[] = [];
      const queue = [...input.calls];
      const worker = async () => {
        for (let next = queue.shift(); next; next = queue.shift()) {
          const [workflowId] = next;
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
