// Campaign pacing on the time-skipping test server: days of calling speed in seconds. Retries
// through the dial budget and the upgrade of running campaigns: campaign-budget.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DefaultLogger, Runtime, type Worker } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { startTimeSkipping } from '../../src/dev/time-skipping.js';
import { startCampaign } from '../../src/client/campaigns.js';
import { parseFlow } from '../../src/flow/validate.js';
import type { MemoryCampaignStore } from '../../src/store/campaigns.js';
import type { PageRow } from '../../src/campaign/recipients.js';
import { campaignStatusQuery, pauseCampaignUpdate, resumeCampaignUpdate } from '../../src/workflows/messages.js';
import type { EncryptionCodec } from '../../src/codec/encryption.js';
import { recordHistory } from '../helpers/histories.js';

const TASK_QUEUE = 'campaign-ts';
const DAY = 86_400_000;
let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
let store: MemoryCampaignStore;
let codec: EncryptionCodec;

beforeAll(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  ({ env, worker, campaigns: store, codec } = await startTimeSkipping(TASK_QUEUE));
  running = worker.run();
});
afterAll(async () => {
  worker?.shutdown();
  await running;
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

// One dial that finds the line busy: the lightest call, so thousands run quickly.
const dialOnly = parseFlow({
  id: 'dial',
  version: 1,
  start: 'call',
  elements: [{ id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: {} }],
});

async function stage(campaignId: string, n: number, pageSize = 500): Promise<number> {
  let pages = 0;
  for (let start = 0; start < n; start += pageSize) {
    const rows: PageRow[] = [];
    for (let i = start; i < Math.min(n, start + pageSize); i++)
      rows.push({
        row: i + 2,
        recipient: {
          id: `r${i}`,
          phone: `+3859155${String(i).padStart(5, '0')}`,
          firstName: 'Ana',
          timeZone: 'Europe/Zagreb',
        },
        hints: { persona: { attempts: [campaignId === 'pace' ? 'busy' : 'answered'] } },
      });
    await store.putPage(campaignId, pages++, rows);
  }
  return pages;
}

const slotsOf = (campaignId: string) =>
  store
    .callRecords(campaignId)
    .map((r) => r.slotAt)
    .sort((a, b) => a - b);

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

describe('campaign calling speed on the time-skipping server', () => {
  it('1,000 per day over several days: up to 1,000 at the start of each day from the first call, never more', async () => {
    const campaignId = 'pace';
    const total = 2_100;
    const pages = await stage(campaignId, total);
    const t0 = await env.currentTimeMs();
    const wall = Date.now();
    const handle = await startCampaign(env.client, TASK_QUEUE, {
      campaignId,
      flow: dialOnly,
      pages,
      total,
      speed: { calls: 1000, per: 'day' },
      maxConcurrent: 50,
      callTaskQueue: TASK_QUEUE,
    });
    const final = await handle.result();
    expect(final).toMatchObject({
      state: 'completed',
      placed: total,
      completed: total,
      inFlight: 0,
      byOutcome: { busy: total },
    });
    const slots = slotsOf(campaignId);
    expect(slots).toHaveLength(total);
    // Every day counted from the first call's start holds at most 1,000 dials; with a backlog,
    // exactly 1,000.
    const first = slots[0]!;
    expect(perPeriod(slots, DAY)).toEqual([1000, 1000, 100]);
    expect(first - t0).toBeLessThan(60_000);
    // Burst: each day's 1,000 start within its first minutes (50 at a time, as calls finish), not
    // spread over the day.
    for (let d = 0; d < 2; d++) {
      const day = slots.filter((s) => s >= first + d * DAY && s < first + (d + 1) * DAY);
      expect(day[0]! - (first + d * DAY)).toBeLessThan(60_000);
      expect(day.at(-1)! - (first + d * DAY)).toBeLessThan(10 * 60_000);
    }
    expect((await env.currentTimeMs()) - t0).toBeGreaterThan(2 * DAY);
    // History stays bounded: several runs, each well below 4,096 events.
    expect(final.run).toBeGreaterThanOrEqual(1);
    console.log(
      `campaign of ${total} at 1000/day: ${((Date.now() - wall) / 1000).toFixed(1)} s real, ${final.run} run(s)`,
    );
  }, 240_000);

  it('spread: pause withdraws the calls waiting for their slot; resume places them again; each recipient is called once', async () => {
    const campaignId = 'pause';
    const total = 60;
    const pages = await stage(campaignId, total, 25);
    const handle = await startCampaign(env.client, TASK_QUEUE, {
      campaignId,
      flow,
      pages,
      total,
      speed: { calls: 10, per: 'hour', spread: true },
      maxConcurrent: 100,
      callTaskQueue: TASK_QUEUE,
    });
    // Let the first slots pass (time skips while the campaign sleeps).
    for (let i = 0; i < 100 && (await handle.query(campaignStatusQuery)).completed < 3; i++) await env.sleep(60_000);
    const paused = await handle.executeUpdate(pauseCampaignUpdate);
    expect(paused.state).toBe('paused');
    // Spread slots are given out up to 15 minutes ahead: the calls still waiting are withdrawn.
    expect(paused.withdrawn).toBeGreaterThan(0);
    const atPause = await handle.query(campaignStatusQuery);
    await env.sleep(6 * 3_600_000);
    const later = await handle.query(campaignStatusQuery);
    // Nothing was placed while paused.
    expect(later.placed).toBe(atPause.placed);
    await expect(handle.executeUpdate(pauseCampaignUpdate)).rejects.toMatchObject({
      cause: { message: expect.stringMatching(/paused, not running/) },
    });
    expect((await handle.executeUpdate(resumeCampaignUpdate)).state).toBe('running');
    const final = await handle.result();
    expect(final).toMatchObject({ state: 'completed', completed: total, inFlight: 0 });
    const records = store.callRecords(campaignId).map((r) => r.recipientId);
    expect(new Set(records).size).toBe(total);
    expect(records).toHaveLength(total);
    // Spread: any window of an hour, aligned or not, holds at most 10.
    const slots = slotsOf(campaignId);
    for (let i = 0; i + 10 < slots.length; i++) expect(slots[i + 10]! - slots[i]!).toBeGreaterThanOrEqual(3_600_000);
    expect(final.speed).toBe('10/hour spread');
    // campaign-v1-pause-resume.json stays as recorded by core v1: it proves old runs replay.
    await recordHistory('campaign-v2-spread-pause-resume', handle, codec);
    await recordHistory('core2-outbound-campaign-placed', env.client.workflow.getHandle('call:pause:r59'), codec);
  }, 240_000);

  it('a contact cap across campaigns: the second campaign within the window does not call the same numbers', async () => {
    const cap = { max: 1, windowDays: 30 };
    const first = await stage('cap-a', 5);
    // Same numbers under other ids: the cap counts per phone number, across campaigns.
    await store.putPage(
      'cap-b',
      0,
      (await store.getPage('cap-a', 0)).map((r) => ({
        ...r,
        recipient: { ...r.recipient, id: `b-${r.recipient.id}` },
      })),
    );
    const a = await (
      await startCampaign(env.client, TASK_QUEUE, {
        campaignId: 'cap-a',
        flow,
        pages: first,
        total: 5,
        speed: { calls: 60, per: 'minute' },
        maxConcurrent: 10,
        callTaskQueue: TASK_QUEUE,
        contactCap: cap,
      })
    ).result();
    expect(a.byOutcome).toEqual({ answered: 5 });
    const b = await (
      await startCampaign(env.client, TASK_QUEUE, {
        campaignId: 'cap-b',
        flow,
        pages: 1,
        total: 5,
        speed: { calls: 60, per: 'minute' },
        maxConcurrent: 10,
        callTaskQueue: TASK_QUEUE,
        contactCap: cap,
      })
    ).result();
    expect(b.byOutcome).toEqual({ contactCapped: 5 });
  }, 120_000);
});
