// Every dial counts against the calling speed, retries included, on the time-skipping server: calls
// ask their campaign for each retry's slot (requestDialSlot); and a campaign that was running on
// core v1 hands over to core v2 without losing or repeating a recipient.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Registry } from 'prom-client';
import { startTimeSkipping, type TimeSkippingStack } from '../../src/dev/time-skipping.js';
import { startCampaign } from '../../src/client/campaigns.js';
import { createActivities } from '../../src/activities/index.js';
import { parseFlow } from '../../src/flow/validate.js';
import { MemoryProfileStore } from '../../src/store/profiles.js';
import { workflowMetricSinks } from '../../src/workers/metrics.js';
import { WORKFLOWS_PATH } from '../../src/workers/flow-worker.js';
import type { PageRow } from '../../src/campaign/recipients.js';
import { createCampaignActivities } from '../../src/activities/campaign.js';
import {
  CAMPAIGN_UPGRADING,
  campaignStatusQuery,
  cancelCampaignUpdate,
  pauseCampaignUpdate,
  resumeCampaignUpdate,
} from '../../src/workflows/messages.js';
import type { DialNote, RetryHints } from './fixtures/retrying-calls.js';
import { recordHistory } from '../helpers/histories.js';

const HOUR = 3_600_000;
const MAIN = 'campaign-budget';
const RETRIES = 'campaign-budget-retries';
const REAL = 'campaign-budget-real';
const UPGRADE = 'campaign-budget-upgrade';
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

let stack: TimeSkippingStack;
let env: TestWorkflowEnvironment;
const running: Array<{ worker: Worker; run: Promise<void> }> = [];
const dials: DialNote[] = [];

/** A worker on this environment's server and stores, with the workflows of `workflowsPath`. */
function createWorker(taskQueue: string, workflowsPath: string, options: { sticky?: boolean } = {}): Promise<Worker> {
  return Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowsPath,
    // Without a workflow cache, no task waits on a stopped worker's sticky queue (which the
    // time-skipping server never hands back to the shared one).
    ...(options.sticky === false ? { maxCachedWorkflows: 0 } : {}),
    dataConverter: { payloadCodecs: [stack.codec] },
    sinks: workflowMetricSinks(new Registry()),
    activities: {
      ...createActivities({
        telephony: stack.provider,
        sms: stack.provider,
        profiles: new MemoryProfileStore(),
        campaigns: { client: env.client, store: stack.campaigns },
      }),
      async noteDial(note: DialNote): Promise<void> {
        dials.push(note);
      },
    },
  });
}
function run(worker: Worker): { worker: Worker; run: Promise<void> } {
  const r = { worker, run: worker.run() };
  running.push(r);
  return r;
}

beforeAll(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  stack = await startTimeSkipping(MAIN);
  env = stack.env;
  run(await createWorker(RETRIES, fixture('retrying-calls.ts')));
  run(await createWorker(REAL, WORKFLOWS_PATH));
  // Dial starts in workflow time, as the provider receives them.
  const send = stack.provider.send.bind(stack.provider);
  stack.provider.send = async (command) => {
    if (command.action === 'dial')
      realDials.push({ callId: command.callId, dial: command.dialIndex, at: await env.currentTimeMs() });
    return send(command);
  };
});
const realDials: Array<{ callId: string; dial: number; at: number }> = [];
afterAll(async () => {
  // The stack's own worker (its task queue is not used here) runs only to be stopped.
  if (stack) run(stack.worker);
  for (const r of running) if (r.worker.getState() === 'RUNNING') r.worker.shutdown();
  await Promise.all(running.map((r) => r.run));
  await env?.teardown();
});

const flow = parseFlow({
  id: 'short',
  version: 1,
  start: 'call',
  elements: [
    { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'msg' } },
    { id: 'msg', type: 'play', tts: { text: 'Hello {{recipient.firstName}}.' }, next: { played: 'end' } },
    { id: 'end', type: 'hangUp' },
  ],
});

async function stage(campaignId: string, n: number, hints: RetryHints | { persona: unknown }, pageSize = 100) {
  let pages = 0;
  for (let start = 0; start < n; start += pageSize) {
    const rows: PageRow[] = [];
    for (let i = start; i < Math.min(n, start + pageSize); i++)
      rows.push({
        row: i + 2,
        recipient: { id: `r${i}`, phone: `+3859156${String(i).padStart(5, '0')}`, timeZone: 'Europe/Zagreb' },
        hints: { ...hints },
      });
    await stack.campaigns.putPage(campaignId, pages++, rows);
  }
  return pages;
}

/** Dial starts in each period, the periods counted from the first one. */
function perPeriod(starts: number[], periodMs: number): number[] {
  const first = Math.min(...starts);
  const counts: number[] = [];
  for (const t of starts) {
    const k = Math.floor((t - first) / periodMs);
    counts[k] = (counts[k] ?? 0) + 1;
  }
  return Array.from(counts, (c) => c ?? 0);
}

const dialsOf = (campaignId: string) => dials.filter((d) => d.workflowId.startsWith(`call:${campaignId}:`));

describe('retries count against the calling speed (requestDialSlot)', () => {
  it('300 recipients at 100/hour, two retries each: every hour from the first call holds at most 100 dials; a pause stops first dials only', async () => {
    const campaignId = 'retries';
    const total = 300;
    const pages = await stage(campaignId, total, { retries: 2, backoffMs: 30 * 60_000 });
    const handle = await startCampaign(env.client, RETRIES, {
      campaignId,
      flow,
      pages,
      total,
      speed: { calls: 100, per: 'hour' },
      maxConcurrent: 1000,
      callTaskQueue: RETRIES,
    });
    await env.sleep(90 * 60_000);
    expect((await handle.executeUpdate(pauseCampaignUpdate)).state).toBe('paused');
    const pausedAt = await env.currentTimeMs();
    await env.sleep(3 * HOUR);
    const resumedAt = await env.currentTimeMs();
    expect((await handle.executeUpdate(resumeCampaignUpdate)).state).toBe('running');
    const final = await handle.result();
    expect(final).toMatchObject({ state: 'completed', placed: total, completed: total, inFlight: 0, retrySlots: 600 });
    // Each retry's updates are history events: the campaign continued as new on the way.
    expect(final.run).toBeGreaterThanOrEqual(2);

    const mine = dialsOf(campaignId);
    expect(mine).toHaveLength(3 * total);
    const counts = perPeriod(
      mine.map((d) => d.at),
      HOUR,
    );
    expect(Math.max(...counts)).toBeLessThanOrEqual(100);
    // Burst: the first hour's 100 start at once.
    const first = Math.min(...mine.map((d) => d.at));
    expect(mine.filter((d) => d.at < first + 60_000)).toHaveLength(100);
    // While paused: retries of calls under way went on (counted), no first dial.
    const whilePaused = mine.filter((d) => d.at >= pausedAt && d.at < resumedAt);
    expect(whilePaused.filter((d) => d.dial === 1)).toEqual([]);
    expect(whilePaused.length).toBeGreaterThan(0);
  }, 240_000);

  it('after a cancel no slot is granted: calls end without dialling again (a slot granted before still dials)', async () => {
    const campaignId = 'retries-cancel';
    const total = 30;
    const pages = await stage(campaignId, total, { retries: 3, backoffMs: 20 * 60_000 });
    const handle = await startCampaign(env.client, RETRIES, {
      campaignId,
      flow,
      pages,
      total,
      speed: { calls: 10, per: 'hour' },
      maxConcurrent: 100,
      callTaskQueue: RETRIES,
    });
    const firstRunId = (await handle.describe()).runId;
    // The first 10 dial at once; their first retries (asked 20 minutes on) get the next hour.
    await env.sleep(30 * 60_000);
    expect((await handle.query(campaignStatusQuery)).retrySlots).toBe(10);
    const cancelled = await handle.executeUpdate(cancelCampaignUpdate);
    expect(cancelled.state).toBe('cancelling');
    const cancelAt = await env.currentTimeMs();
    const final = await handle.result();
    expect(final).toMatchObject({ state: 'cancelled', placed: 10, completed: 10, inFlight: 0, retrySlots: 10 });
    const mine = dialsOf(campaignId);
    // Dials after the cancel are only those whose slot was granted before it.
    const after = mine.filter((d) => d.at > cancelAt);
    expect(after).toHaveLength(10);
    for (const d of after) expect(d.askedAt).toBeLessThan(cancelAt);
    const records = stack.campaigns.callRecords(campaignId);
    expect(records.map((r) => [r.dials, r.error])).toEqual(Array.from({ length: 10 }, () => [2, 'campaignStopped']));
    // The first run: placements, retries' updates, the cancel.
    await recordHistory(
      'campaign-v2-burst-retries-cancel',
      env.client.workflow.getHandle(handle.workflowId, firstRunId),
      stack.codec,
    );
  }, 120_000);
});

describe('real calls ask for their redial slots', () => {
  const retrying = parseFlow({
    id: 'retrying',
    version: 1,
    start: 'call',
    elements: [
      {
        id: 'call',
        type: 'startOutgoingCall',
        from: '+14155550100',
        retry: { count: 2, minMinutes: 30, maxMinutes: 30 },
        next: { answered: 'msg', busy: 'end' },
      },
      { id: 'msg', type: 'play', tts: { text: 'Hello.' }, next: { played: 'end' } },
      { id: 'end', type: 'hangUp' },
    ],
  });

  it('outboundCall: busy twice, answered the third time; every hour from the first call holds at most 20 dials', async () => {
    const campaignId = 'real-retries';
    const total = 40;
    const pages = await stage(campaignId, total, { persona: { attempts: ['busy', 'busy', 'answered'] } });
    const handle = await startCampaign(env.client, REAL, {
      campaignId,
      flow: retrying,
      pages,
      total,
      speed: { calls: 20, per: 'hour' },
      maxConcurrent: 1000,
      callTaskQueue: REAL,
    });
    const final = await handle.result();
    expect(final).toMatchObject({ state: 'completed', placed: total, completed: total, retrySlots: 2 * total });
    const mine = realDials.filter((d) => d.callId.startsWith(`call:${campaignId}:`));
    expect(mine).toHaveLength(3 * total);
    const counts = perPeriod(
      mine.map((d) => d.at),
      HOUR,
    );
    expect(Math.max(...counts)).toBeLessThanOrEqual(20);
    // 120 dials at 20 an hour: six hours from the first call.
    expect(counts).toHaveLength(6);
    const records = stack.campaigns.callRecords(campaignId);
    expect(records.map((r) => [r.outcome, r.dials])).toEqual(Array.from({ length: total }, () => ['answered', 3]));
  }, 120_000);

  it('outboundCall: after a cancel its redial is refused, and the call ends with its last dial’s outcome', async () => {
    const campaignId = 'real-cancel';
    const pages = await stage(campaignId, 5, { persona: { attempts: ['busy', 'answered'] } });
    const handle = await startCampaign(env.client, REAL, {
      campaignId,
      flow: retrying,
      pages,
      total: 5,
      speed: { calls: 10, per: 'hour' },
      maxConcurrent: 100,
      callTaskQueue: REAL,
    });
    // The five dial at once and are busy; their redials are due 30 minutes on.
    await env.sleep(10 * 60_000);
    expect((await handle.executeUpdate(cancelCampaignUpdate)).state).toBe('cancelling');
    const final = await handle.result();
    expect(final).toMatchObject({ state: 'cancelled', placed: 5, completed: 5 });
    const records = stack.campaigns.callRecords(campaignId);
    expect(records.map((r) => [r.outcome, r.dials])).toEqual(Array.from({ length: 5 }, () => ['busy', 1]));
    for (const r of records) expect(r.error).toMatch(/^not dialled again: campaign is cancell/);
  }, 120_000);
});

describe('upgrade', () => {
  it('a campaign running (here: paused) on core v1 continues on core v2: nobody lost or called twice, its spacing kept', async () => {
    const campaignId = 'upgrade';
    const total = 30;
    const pages = await stage(campaignId, total, { persona: { attempts: ['answered'] } }, 10);
    const v1 = run(await createWorker(UPGRADE, fixture('campaign-v1.ts'), { sticky: false }));
    const handle = await startCampaign(env.client, UPGRADE, {
      campaignId,
      flow,
      pages,
      total,
      speed: { calls: 10, per: 'hour' },
      maxConcurrent: 100,
      callTaskQueue: UPGRADE,
    });
    const firstRunId = (await handle.describe()).runId;
    for (let i = 0; i < 100 && (await handle.query(campaignStatusQuery)).completed < 5; i++) await env.sleep(60_000);
    // Paused on core v1 (a paused campaign waits without a timer: only a message wakes it).
    expect((await handle.executeUpdate(pauseCampaignUpdate)).state).toBe('paused');
    // The upgrade: the old workers stop, workers with the current code take over.
    v1.worker.shutdown();
    await v1.run;
    run(await createWorker(UPGRADE, WORKFLOWS_PATH));
    // A call asking for a retry's slot wakes the v1 run, which hands over and has it ask again;
    // the v2 run, paused, grants it.
    const budget = createCampaignActivities({ client: env.client, store: stack.campaigns });
    const ask = { campaignWorkflowId: handle.workflowId, workflowId: 'call:upgrade:r0', dial: 2 };
    await expect(budget.requestDialSlot(ask)).rejects.toMatchObject({ type: CAMPAIGN_UPGRADING, nonRetryable: false });
    expect(await budget.requestDialSlot({ ...ask, request: 2 })).toMatchObject({ granted: true });
    expect(await handle.query(campaignStatusQuery)).toMatchObject({ state: 'paused', run: 2, retrySlots: 1 });
    expect((await handle.executeUpdate(resumeCampaignUpdate)).state).toBe('running');
    const final = await handle.result();
    // A campaign that is over grants nothing.
    expect(await budget.requestDialSlot({ ...ask, dial: 3 })).toMatchObject({
      granted: false,
      reason: 'campaignClosed',
    });
    expect(final).toMatchObject({ state: 'completed', placed: total, completed: total, inFlight: 0 });
    expect(final.speed).toBe('10/hour spread');
    const records = stack.campaigns.callRecords(campaignId);
    expect(new Set(records.map((r) => r.recipientId)).size).toBe(total);
    expect(records).toHaveLength(total);
    // The spacing it started with goes on across the upgrade: any hour holds at most 10.
    const slots = records.map((r) => r.slotAt).sort((a, b) => a - b);
    for (let i = 0; i + 10 < slots.length; i++) expect(slots[i + 10]! - slots[i]!).toBeGreaterThanOrEqual(HOUR);

    // The first run placed calls the v1 way and continued as new at its first step on the new code;
    // the last run is v2 from its first command.
    const firstRun = await env.client.workflow.getHandle(handle.workflowId, firstRunId).fetchHistory();
    const activities = (h: typeof firstRun) =>
      (h.events ?? []).flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
    expect(activities(firstRun)).toContain('dispatchBatch');
    expect(firstRun.events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();
    const lastRun = await env.client.workflow.getHandle(handle.workflowId).fetchHistory();
    expect(activities(lastRun)).not.toContain('dispatchBatch');
    expect(activities(lastRun)).toContain('placeCalls');
    expect((lastRun.events ?? []).some((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch')).toBe(true);
  }, 240_000);
});
