// A campaign call always ends in a record, so its campaign counts it and finishes: a call whose
// workflow fails writes its own (failed, with the reason); one terminated from outside runs no
// code, so the campaign's collector writes it. And a poison expression inside the workflow
// sandbox fails like any expression: the call goes on and the worker lives.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import { MockActivityEnvironment, TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { Registry } from 'prom-client';
import { createActivities } from '../../src/activities/index.js';
import { startCampaign } from '../../src/client/campaigns.js';
import { startCall, startInboundCall } from '../../src/client/calls.js';
import { inboundWorkflowId } from '../../src/telephony/contract.js';
import { EncryptionCodec } from '../../src/codec/encryption.js';
import { toolPaths } from '../../src/config/tools.js';
import { parseFlow } from '../../src/flow/validate.js';
import { MemoryCampaignStore, readAllRecords } from '../../src/store/campaigns.js';
import { MemoryProfileStore } from '../../src/store/profiles.js';
import { InlineSimulatorProvider } from '../../src/telephony/inline.js';
import { callStatusQuery, callWorkflowId } from '../../src/workflows/messages.js';
import { WORKFLOWS_PATH } from '../../src/workers/flow-worker.js';
import { workflowMetricSinks } from '../../src/workers/metrics.js';
import type { CallWorkflowInput } from '../../src/workflows/call.js';
import type { PageRow } from '../../src/campaign/recipients.js';

interface Harness {
  env: TestWorkflowEnvironment;
  store: MemoryCampaignStore;
  worker: Worker;
  running: Promise<void>;
}

/**
 * A worker on `env` with the in-process simulator. `fails`: every telephony command fails for good.
 * `noFollowUps`: a provider from before prompt follow-ups and held events (it drops both fields).
 */
async function harness(
  env: TestWorkflowEnvironment,
  codec: EncryptionCodec,
  taskQueue: string,
  mode: 'fails' | 'noFollowUps' | 'normal' = 'normal',
): Promise<Harness & { provider: InlineSimulatorProvider }> {
  const store = new MemoryCampaignStore();
  const provider = new InlineSimulatorProvider(() => env.client);
  const activities = createActivities({
    telephony: provider,
    sms: provider,
    profiles: new MemoryProfileStore(),
    campaigns: { client: env.client, store },
  });
  if (mode === 'fails') {
    activities.sendTelephonyCommand = async () => {
      throw ApplicationFailure.nonRetryable('provider unreachable', 'ProviderUnavailableError');
    };
  } else if (mode === 'noFollowUps') {
    const send = activities.sendTelephonyCommand;
    activities.sendTelephonyCommand = async (command) => {
      // eslint-disable-next-line @typescript-eslint/no-unused-vars
      const { holdEvents, ...rest } = command;
      const old = rest.action === 'say' || rest.action === 'play' ? { ...rest, then: undefined } : rest;
      await send(JSON.parse(JSON.stringify(old)) as typeof command);
      return command;
    };
  }
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowsPath: WORKFLOWS_PATH,
    dataConverter: { payloadCodecs: [codec] },
    sinks: workflowMetricSinks(new Registry()),
    activities,
  });
  return { env, store, worker, running: worker.run(), provider };
}

async function stop(h: Harness | undefined): Promise<void> {
  if (!h) return;
  h.worker.shutdown();
  await h.running;
}

const row = (campaignId: string, persona: Record<string, unknown>): PageRow => ({
  row: 2,
  recipient: { id: 'r1', phone: '+385915550001', firstName: 'Ana', timeZone: 'Europe/Zagreb' },
  hints: { persona },
});

beforeAll(() => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
});

describe('on the time-skipping server', () => {
  let env: TestWorkflowEnvironment;
  let ok: Harness & { provider: InlineSimulatorProvider };
  let broken: Harness;
  const codec = new EncryptionCodec(randomBytes(32));
  beforeAll(async () => {
    env = await TestWorkflowEnvironment.createTimeSkipping({
      server: { executable: { type: 'existing-path', path: toolPaths().testServer } },
      client: { dataConverter: { payloadCodecs: [codec] } },
    });
    ok = await harness(env, codec, 'records-ok');
    broken = await harness(env, codec, 'records-broken', 'fails');
  });
  afterAll(async () => {
    await stop(ok);
    await stop(broken);
    await env?.teardown();
  });

  it('every call writes its record: a direct call (with its whole-call recording) and an inbound one', async () => {
    const flow = parseFlow({
      id: 'rec',
      version: 1,
      start: 'call',
      elements: [
        {
          id: 'call',
          type: 'startOutgoingCall',
          from: '+14155550100',
          recordCall: true,
          next: { answered: 'hello' },
        },
        { id: 'in', type: 'startIncomingCall', number: '+14155550199', next: 'hello' },
        { id: 'hello', type: 'play', tts: { text: 'Hello.' }, next: { played: 'ask' } },
        {
          id: 'ask',
          type: 'collect',
          maxDigits: 4,
          reporting: 'masked',
          saveTo: 'pin',
          next: { noMatch: 'end' },
        },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const direct = await startCall(env.client, {
      flow,
      campaignId: 'direct-records',
      taskQueue: 'records-ok',
      recipient: { id: 'r9', phone: '+385915550009' },
      hints: { persona: { keys: ['4321#'] } },
    });
    const directResult = await direct.result();
    const received = ok.provider.engine.incomingCall('records-in-1', '+385915550008', '+14155550199', {
      keys: ['4321#'],
    }).event;
    const inbound = await startInboundCall(env.client, {
      flow,
      received,
      workflowId: inboundWorkflowId(received.callId),
      taskQueue: 'records-ok',
    });
    const inboundResult = await inbound.result();
    for (const [name, result, workflowId, direction, recipientId, recordings] of [
      ['direct-records', directResult, direct.workflowId, 'outbound', 'r9', ['call']],
      ['inbound', inboundResult, inbound.workflowId, 'inbound', '+385915550008', []],
    ] as const) {
      const records = ok.store.callRecords(name);
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({ workflowId, direction, recipientId, outcome: result.outcome });
      // The whole-call recording came after the hang-up, before the workflow closed: in the result and the record.
      expect(result.recordings.map((r) => r.name)).toEqual(recordings);
      expect(records[0]?.recordings?.map((r) => r.name) ?? []).toEqual(recordings);
      // Masked input is reported masked.
      expect(JSON.stringify(records[0])).not.toContain('4321');
      expect(records[0]?.responses.map((t) => t.branch)).toContain('noMatch');
    }
  });

  it('a provider without prompt follow-ups still gets every command: the capture asked again, the hang-up sent again', async () => {
    const old = await harness(env, codec, 'records-old-provider', 'noFollowUps');
    try {
      const flow = parseFlow(
        JSON.parse(readFileSync(new URL('../../examples/appointment-reminder.json', import.meta.url), 'utf8')),
      );
      const handle = await startCall(env.client, {
        flow,
        campaignId: 'old-provider',
        taskQueue: 'records-old-provider',
        recipient: { id: 'r8', phone: '+385915550088', firstName: 'Ana', timeZone: 'Europe/Zagreb' },
        hints: { persona: { keys: ['1'] } },
      });
      const result = await handle.result();
      expect(result.trail.map((t) => `${t.element}:${t.branch}`)).toEqual([
        'call:answered',
        'menu:played',
        'ask:1',
        'confirmed:played',
      ]);
      expect(old.provider.engine.knows(`${handle.workflowId}~1`)).toBe(true);
      const call = old.provider.engine.snapshot(`${handle.workflowId}~1`);
      // The leg was hung up (by the second hang-up), not left up behind the closed workflow.
      expect(call?.f).toBe(true);
      expect(call?.cmd.some((id) => id.endsWith('#end'))).toBe(true);
    } finally {
      await stop(old);
    }
  });

  it('a recording that came after its call closed joins the call record in the report, and is no completion', async () => {
    const store = new MemoryCampaignStore();
    const call = {
      campaignId: 'late',
      workflowId: 'call:late:r1',
      recipientId: 'r1',
      row: 2,
      outcome: 'answered' as const,
      dials: 1,
      durationMs: 1000,
      slotAt: 0,
      endedAt: 1000,
      responses: [],
    };
    await store.publish(call, 'call:late:r1');
    const late = { recordingId: 'call:late:r1~1:call', name: 'call', durationMs: 900 };
    await store.publish({ kind: 'recording', campaignId: 'late', workflowId: 'call:late:r1', recording: late }, 'l1');
    await store.publish({ kind: 'recording', campaignId: 'late', workflowId: 'call:late:r1', recording: late }, 'l1');
    expect(await readAllRecords(store, 'late')).toEqual([{ ...call, recordings: [late] }]);
    const activities = createActivities({
      telephony: ok.provider,
      sms: ok.provider,
      profiles: new MemoryProfileStore(),
      campaigns: { client: env.client, store },
    });
    const completions = await new MockActivityEnvironment().run(activities.countCompletions, {
      campaignId: 'late',
      recordsSeq: 0,
    });
    expect(completions).toMatchObject({
      completed: 1,
      byOutcome: { answered: 1 },
    });
  });

  it('a call workflow that fails writes its record (failed, with the reason) and its campaign finishes', async () => {
    const flow = parseFlow({
      id: 'f',
      version: 1,
      start: 'call',
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'end' } },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const campaignId = 'fails';
    await broken.store.putPage(campaignId, 0, [row(campaignId, { attempts: ['answered'] })]);
    const handle = await startCampaign(env.client, 'records-broken', {
      campaignId,
      flow,
      pages: 1,
      total: 1,
      speed: { calls: 60, per: 'minute' },
      maxConcurrent: 10,
      callTaskQueue: 'records-broken',
    });
    const final = await handle.result();
    expect(final).toMatchObject({ state: 'completed', placed: 1, completed: 1, inFlight: 0, byOutcome: { failed: 1 } });
    const [record] = broken.store.records.filter((r) => r.record.campaignId === campaignId).map((r) => r.record);
    expect(record).toMatchObject({
      recipientId: 'r1',
      row: 2,
      outcome: 'failed',
      error: expect.stringMatching(/sendTelephonyCommand: provider unreachable/),
    });
    await expect(env.client.workflow.getHandle(callWorkflowId(campaignId, 'r1')).result()).rejects.toBeInstanceOf(
      WorkflowFailedError,
    );
  }, 120_000);

  it.each([
    ['tail recursion', '($f := function($n){ $f($n+1) }; $f(0))'],
    ['non-tail recursion', '($f := function($n){ 1 + $f($n+1) }; $f(0))'],
    ['ten-million range', '$sum([1..10000000].($ * 2))'],
  ])(
    '%s in the workflow sandbox: warnings, the call completes, the worker lives',
    async (_name, poison) => {
      // Enough elements that, unbounded per activation, their expressions would exceed the deadlock timeout.
      const elements: Array<Record<string, unknown>> = [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 's0' } },
      ];
      const N = Number(process.env.POISON_N ?? 40);
      for (let i = 0; i < N; i++)
        elements.push(
          { id: `s${i}`, type: 'setVariable', variable: 'x', value: poison, next: `c${i}` },
          {
            id: `c${i}`,
            type: 'condition',
            conditions: [{ if: poison, next: 'yes' }],
            else: i + 1 < N ? `s${i + 1}` : 'no',
          },
        );
      elements.push(
        { id: 'yes', type: 'play', tts: { text: 'Yes.' }, next: { played: 'end' } },
        { id: 'no', type: 'play', tts: { text: 'No.' }, next: { played: 'end' } },
        { id: 'end', type: 'hangUp' },
      );
      const flow = parseFlow({ id: 'poison', version: 1, start: 'call', elements });
      const input: CallWorkflowInput = {
        flow,
        recipient: { id: 'p1', phone: '+385915550009' },
        campaignId: 'poison',
        hints: { persona: { attempts: ['answered'] } },
      };
      const wall = Date.now();
      const result = await env.client.workflow.execute('outboundCall', {
        taskQueue: 'records-ok',
        workflowId: `poison-${_name.replace(/\W/g, '-')}`,
        args: [input],
      });
      const ms = Date.now() - wall;
      expect(result.outcome).toBe('answered');
      expect(result.trail.at(-1)).toMatchObject({ element: 'no', branch: 'played' });
      expect(result.warnings.length).toBe(2 * N);
      console.log(
        `${_name} x${2 * N} in the sandbox: ${ms} ms, worker RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB`,
      );
    },
    120_000,
  );
});

describe('on the dev server (with visibility)', () => {
  let env: TestWorkflowEnvironment;
  let h: Harness;
  const codec = new EncryptionCodec(randomBytes(32));
  beforeAll(async () => {
    env = await TestWorkflowEnvironment.createLocal({
      server: { executable: { type: 'existing-path', path: toolPaths().temporal } },
      client: { dataConverter: { payloadCodecs: [codec] } },
    });
    h = await harness(env, codec, 'records-dev');
  });
  afterAll(async () => {
    await stop(h);
    await env?.teardown();
  });

  it('a call terminated mid-call counts as failed and its campaign finishes', async () => {
    const flow = parseFlow({
      id: 'long',
      version: 1,
      start: 'call',
      elements: [
        // Busy at first, redialled in 10 minutes: the call is under way, asleep between two dials.
        {
          id: 'call',
          type: 'startOutgoingCall',
          from: '+14155550100',
          retry: { count: 1, minMinutes: 10, maxMinutes: 10 },
          next: { answered: 'hello', busy: 'end' },
        },
        { id: 'hello', type: 'play', tts: { text: 'Hello.' }, next: { played: 'end' } },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const campaignId = 'terminated';
    await h.store.putPage(campaignId, 0, [row(campaignId, { attempts: ['busy', 'answered'] })]);
    const handle = await startCampaign(env.client, 'records-dev', {
      campaignId,
      flow,
      pages: 1,
      total: 1,
      speed: { calls: 60, per: 'minute' },
      maxConcurrent: 10,
      callTaskQueue: 'records-dev',
    });
    const call = env.client.workflow.getHandle(callWorkflowId(campaignId, 'r1'));
    // Mid-call: dialled once, waiting to dial again.
    for (let i = 0; i < 200; i++) {
      const s = await call.query(callStatusQuery).catch(() => undefined);
      if (s?.phase === 'sleeping') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await call.query(callStatusQuery)).toMatchObject({ element: 'call', phase: 'sleeping', dials: 1 });
    await call.terminate('drill: terminated mid-call');
    const wall = Date.now();
    const final = await handle.result();
    expect(final).toMatchObject({ state: 'completed', placed: 1, completed: 1, inFlight: 0, byOutcome: { failed: 1 } });
    const records = h.store.records.filter((r) => r.record.campaignId === campaignId).map((r) => r.record);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      recipientId: 'r1',
      row: 2,
      outcome: 'failed',
      error: 'the call workflow terminated',
    });
    console.log(`terminated call counted after ${Date.now() - wall} ms`);
  }, 120_000);
});
