// The Infobip provider end to end: real Temporal + NATS + the dialflow worker and bridge, the
// Infobip provider and webhook ingress, and a fake Infobip Calls API that validates requests as
// strictly as the official models and posts Basic-authenticated webhooks (with chaos on demand).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { WorkflowNotFoundError } from '@temporalio/client';
import { startEphemeralStack, type EphemeralStack } from '../../src/dev/ephemeral.js';
import { freePort } from '../../src/dev/stack.js';
import { startCall } from '../../src/client/calls.js';
import { parseFlow } from '../../src/flow/validate.js';
import { parseFlowText } from '../../src/flow/document.js';
import type { CallResult } from '../../src/flow/interpreter.js';
import type { Flow } from '../../src/flow/schema.js';
import { connectNats, EVENTS_STREAM } from '../../src/telephony/nats.js';
import type { TelephonyEvent } from '../../src/telephony/contract.js';
import { KvFlowStore } from '../../src/store/flows.js';
import { ObjectRecordingStore } from '../../src/store/recordings.js';
import { startInfobipProvider, type RunningInfobipProvider } from '../../src/telephony/infobip/provider.js';
import { startWebhookServer, type RunningWebhookServer } from '../../src/telephony/infobip/webhooks.js';
import {
  startFakeInfobip,
  type CalleeScript,
  type FakeInfobip,
  type FakeInfobipChaos,
} from '../fake-infobip/server.js';

const API_KEY = 'it-api-key';
const USER = 'infobip-hooks';
const PASSWORD = 'it-webhook-password';

const reminder = parseFlow(
  JSON.parse(readFileSync(new URL('../../examples/appointment-reminder.json', import.meta.url), 'utf8')),
);
const collectFlow = parseFlow({
  id: 'ib-collect',
  version: 1,
  start: 'call',
  elements: [
    { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'ask' } },
    {
      id: 'ask',
      type: 'collect',
      maxDigits: 4,
      waitSeconds: 5,
      saveTo: 'pin',
      responses: { '12': 'ok' },
      next: { noMatch: 'end' },
    },
    { id: 'ok', type: 'play', tts: { text: 'Thanks.', language: 'en-US', voice: 'male' }, next: { played: 'end' } },
    { id: 'end', type: 'hangUp' },
  ],
});
const forwardFlow = parseFlow({
  id: 'ib-forward',
  version: 1,
  start: 'call',
  elements: [
    { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'fwd' } },
    {
      id: 'fwd',
      type: 'forwardCall',
      from: '+14155550100',
      to: '{{recipient.agent}}',
      ringSeconds: 10,
      next: { forwarded: 'end', busy: 'sorry', noAnswer: 'sorry', notForwarded: 'sorry' },
    },
    { id: 'sorry', type: 'play', tts: { text: 'Nobody is free.' }, next: { played: 'end' } },
    { id: 'end', type: 'hangUp' },
  ],
});
const recordingFlow = parseFlow({
  id: 'ib-rec',
  version: 1,
  start: 'call',
  elements: [
    { id: 'call', type: 'startOutgoingCall', from: '+14155550100', recordCall: true, next: { answered: 'vm' } },
    {
      id: 'vm',
      type: 'recordVoicemail',
      name: 'feedback-{{recipient.id}}',
      maxDurationSeconds: 30,
      maxSilenceSeconds: 2,
      beep: true,
      next: { recorded: 'end' },
    },
    { id: 'end', type: 'hangUp' },
  ],
});

const wholeCallFlow = parseFlow({
  id: 'ib-whole-call',
  version: 1,
  start: 'call',
  elements: [
    { id: 'call', type: 'startOutgoingCall', from: '+14155550100', recordCall: true, next: { answered: 'hello' } },
    { id: 'hello', type: 'play', tts: { text: 'This call is recorded.' }, next: { played: 'end' } },
    { id: 'end', type: 'hangUp' },
  ],
});

// A prompt whose file Infobip cannot play: the fake answers the play request, then sends ERROR.
const badAudioFlow = parseFlow({
  id: 'ib-bad-audio',
  version: 1,
  start: 'call',
  elements: [
    { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'bad' } },
    { id: 'bad', type: 'play', audio: { url: 'https://audio.invalid/prompt.wav' }, next: { played: 'ok' } },
    { id: 'ok', type: 'play', tts: { text: 'Sorry about that.' }, next: { played: 'end' } },
    { id: 'end', type: 'hangUp' },
  ],
});

// number → what the callee does (the fake looks numbers up with or without '+').
const CALLEES: Record<string, CalleeScript> = {
  '385915550001': { answer: 'human', keys: ['1'] },
  '385915550002': { answer: 'machine', speakSeconds: 4 },
  '385915550003': { answer: 'busy' },
  '385915550004': { answer: 'noAnswer' },
  '385915550005': { answer: 'human', keys: ['12#'] },
  '385915550006': { answer: 'human' },
  '385915550007': { answer: 'human' },
  '385915550008': { answer: 'human', speakSeconds: 3 },
  '385915550009': { answer: 'human', keys: ['2'], pressDuringPrompt: true },
  '385915550010': { answer: 'rejected' },
  '385915550011': { answer: 'human', keys: ['12#'] },
  '385915550012': { answer: 'human', keys: ['3'], pressDuringPrompt: true },
  '385915550013': { answer: 'human', keys: ['345'], pressDuringPrompt: true },
  '385915550014': { answer: 'human' },
  '385915550015': { answer: 'human', keys: ['9'] },
  '385915550016': { answer: 'human' },
  '385915559001': { answer: 'human' }, // agent who answers
  '385915559002': { answer: 'busy' }, // agent who is busy
};

interface Case {
  name: string;
  flow: Flow;
  phone: string;
  extra?: Record<string, unknown>;
  trail: string[];
  outcome: string;
  vars?: Record<string, unknown>;
}
const CASES: Case[] = [
  {
    name: 'reminder confirmed with 1',
    flow: reminder,
    phone: '+385915550001',
    trail: ['call:answered', 'menu:played', 'ask:1', 'confirmed:played'],
    outcome: 'answered',
    vars: { choice: '1' },
  },
  {
    name: 'reminder: a key cuts the prompt',
    flow: reminder,
    phone: '+385915550009',
    trail: ['call:answered', 'menu:played', 'ask:2', 'cancelled:played'],
    outcome: 'answered',
    vars: { choice: '2' },
  },
  {
    name: 'reminder to an answering machine',
    flow: reminder,
    phone: '+385915550002',
    trail: ['call:voicemail', 'leave-message:played'],
    outcome: 'voicemail',
  },
  { name: 'reminder busy', flow: reminder, phone: '+385915550003', trail: ['call:busy'], outcome: 'busy' },
  {
    name: 'reminder not answered',
    flow: reminder,
    phone: '+385915550004',
    trail: ['call:noAnswer'],
    outcome: 'noAnswer',
  },
  { name: 'reminder rejected', flow: reminder, phone: '+385915550010', trail: ['call:declined'], outcome: 'declined' },
  {
    name: 'collect two digits and #',
    flow: collectFlow,
    phone: '+385915550005',
    trail: ['call:answered', 'ask:12', 'ok:played'],
    outcome: 'answered',
    vars: { pin: '12' },
  },
  {
    name: 'forward answered',
    flow: forwardFlow,
    phone: '+385915550006',
    extra: { agent: '+385915559001' },
    trail: ['call:answered', 'fwd:forwarded'],
    outcome: 'answered',
  },
  {
    name: 'forward busy',
    flow: forwardFlow,
    phone: '+385915550007',
    extra: { agent: '+385915559002' },
    trail: ['call:answered', 'fwd:busy', 'sorry:played'],
    outcome: 'answered',
  },
];

let t: EphemeralStack;
let nc: NatsConnection;
let fake: FakeInfobip | undefined;
let provider: RunningInfobipProvider | undefined;
let webhooks: RunningWebhookServer | undefined;
let registry: Registry;
const measured: Record<string, unknown> = {};

/** The fake, our provider and our webhook ingress, wired to each other. */
async function startInfobipSide(chaos?: FakeInfobipChaos): Promise<void> {
  await stopInfobipSide();
  registry = new Registry();
  const port = await freePort();
  fake = await startFakeInfobip({
    apiKey: API_KEY,
    webhookUrl: `http://127.0.0.1:${port}/webhooks/infobip`,
    webhookUser: USER,
    webhookPassword: PASSWORD,
    callees: CALLEES,
    timeScale: 0.01,
    ...(chaos ? { chaos } : {}),
  });
  const infobip = {
    baseUrl: fake.baseUrl,
    apiKey: API_KEY,
    requestsPerSecond: 50,
    callsConfigurationId: 'it-calls-configuration',
  };
  webhooks = await startWebhookServer({
    nc,
    options: { host: '127.0.0.1', port, user: USER, password: PASSWORD, maxBodyBytes: 65536, infobip },
    registry,
    log: () => {},
  });
  provider = await startInfobipProvider({ nc, options: infobip, registry, log: () => {} });
}
async function stopInfobipSide(): Promise<void> {
  await provider?.stop();
  await webhooks?.stop();
  await fake?.stop();
  provider = undefined;
  webhooks = undefined;
  fake = undefined;
}

beforeAll(async () => {
  t = await startEphemeralStack({ services: ['worker', 'bridge'], env: { DIALFLOW_PROVIDER: 'infobip' } });
  nc = await connectNats(t.natsUrl, 'it-infobip');
  await startInfobipSide();
});
afterAll(async () => {
  await stopInfobipSide();
  await nc?.close();
  await t?.stop();
});

async function runCase(
  c: Case,
  campaignId: string,
  i: number,
): Promise<{ c: Case; result: CallResult; workflowId: string }> {
  const handle = await startCall(t.client, {
    flow: c.flow,
    campaignId,
    taskQueue: t.config.temporal.taskQueue,
    recipient: { id: `r${i}`, phone: c.phone, firstName: 'Ana', ...c.extra },
  });
  return { c, result: await handle.result(), workflowId: handle.workflowId };
}

async function runAll(campaignId: string): Promise<void> {
  const done = await Promise.all(CASES.map((c, i) => runCase(c, campaignId, i)));
  for (const { c, result, workflowId } of done) {
    expect({
      name: c.name,
      trail: result.trail.map((x) => `${x.element}:${x.branch}`),
      outcome: result.outcome,
    }).toEqual({ name: c.name, trail: c.trail, outcome: c.outcome });
    expect(result.dials, c.name).toBe(1);
    if (c.vars) expect(result.variables, c.name).toMatchObject(c.vars);
    // Exactly one call created at Infobip for this call id, whatever was redelivered.
    expect(fake!.callsCreated.byExternalId[`${workflowId}~1`], c.name).toBe(1);
  }
}

describe('Infobip provider against the fake Calls API', () => {
  it('reminder, collect, machine detection, failures and forward take the right branches, one call each', async () => {
    // Call set-up time: dial command on NATS → our CALL_ESTABLISHED on JetStream.
    const dialAt = new Map<string, number>();
    const setup: number[] = [];
    const cmdSub = nc.subscribe('dialflow.telephony.infobip.commands', {
      callback: (_e, m) => {
        const cmd = m.json<{ action: string; callId: string }>();
        if (cmd.action === 'dial') dialAt.set(cmd.callId, Date.now());
      },
    });
    const evSub = nc.subscribe('dialflow.events.infobip.CALL_ESTABLISHED', {
      callback: (_e, m) => {
        const at = dialAt.get(m.json<{ callId: string }>().callId);
        if (at !== undefined) setup.push(Date.now() - at);
      },
    });
    const t0 = Date.now();
    await runAll(`ib-${Date.now()}`);
    cmdSub.unsubscribe();
    evSub.unsubscribe();
    setup.sort((a, b) => a - b);
    measured.calls = CASES.length;
    measured.wallMs = Date.now() - t0;
    measured.callSetupMs = {
      p50: setup[Math.floor(setup.length / 2)],
      max: setup[setup.length - 1],
      note: 'fake ring 20 ms + answer 40 ms included',
    };
    const text = await registry.metrics();
    const sum = Number(/dialflow_infobip_webhook_seconds_sum (\S+)/.exec(text)?.[1]);
    const count = Number(/dialflow_infobip_webhook_seconds_count (\S+)/.exec(text)?.[1]);
    measured.webhookToJetStreamAckMs = { mean: Math.round((sum / count) * 1000 * 100) / 100, webhooks: count };
    // Every API request the fake saw passed its strict model validation.
    expect(fake!.requests.filter((r) => r.status === 400)).toEqual([]);
  }, 120_000);

  it('inbound: CALL_RECEIVED starts the inbound flow, which answers through the API', async () => {
    const store = await KvFlowStore.open(nc);
    const parsed = parseFlowText(
      readFileSync(new URL('../../examples/inbound-language-menu.yaml', import.meta.url), 'utf8'),
      'inbound-language-menu.yaml',
    );
    if (!parsed.ok) throw new Error(parsed.message);
    await store.publish(parseFlow(parsed.doc));
    const callId = fake!.simulateInbound({
      from: '385915550777',
      to: '+14155550111',
      script: { answer: 'human', keys: ['2'] },
    });
    const handle = t.client.workflow.getHandle(`inbound:${callId}`);
    let result: CallResult | undefined;
    for (let i = 0; i < 100 && !result; i++) {
      result = (await handle.result().catch((err: unknown) => {
        if (err instanceof WorkflowNotFoundError) return undefined;
        throw err;
      })) as CallResult | undefined;
      if (!result) await new Promise((r) => setTimeout(r, 100));
    }
    expect(result?.trail.map((x) => `${x.element}:${x.branch}`)).toEqual([
      'incoming:next',
      'menu:played',
      'choose:2',
      'spanish:played',
    ]);
  }, 60_000);

  it('a voicemail and the whole call are downloaded into our store before the flow hears of them', async () => {
    const { result, workflowId } = await runCase(
      { name: 'rec', flow: recordingFlow, phone: '+385915550008', trail: [], outcome: 'answered' },
      `ib-rec-${Date.now()}`,
      1,
    );
    expect(result.trail.map((x) => `${x.element}:${x.branch}`)).toEqual(['call:answered', 'vm:recorded']);
    expect(result.recordings[0]).toMatchObject({ name: 'feedback-r1' });
    const store = await ObjectRecordingStore.open(nc);
    // The voicemail is stored before CALL_RECORDING_READY is published: it is there at once.
    const vm = await store.get(result.recordings[0]!.recordingId);
    expect(vm?.meta).toMatchObject({ name: 'feedback-r1', contentType: 'audio/wav', durationMs: 5000 });
    // 3 s spoken + 2 s of silence (maxSilence), 8 kHz 16-bit mono.
    expect(vm?.data.byteLength).toBe(44 + 5 * 8000 * 2);
    expect(Buffer.from(vm!.data.subarray(0, 4)).toString('ascii')).toBe('RIFF');
    let listed: Awaited<ReturnType<typeof store.list>> = [];
    for (let i = 0; i < 50 && listed.length < 2; i++) {
      listed = await store.list({ workflowId });
      if (listed.length < 2) await new Promise((r) => setTimeout(r, 100));
    }
    expect(listed.map((r) => r.name).sort()).toEqual(['call', 'feedback-r1']);
    expect(listed.find((r) => r.name === 'call')?.id).toBe(`${workflowId}~1:call`);
  }, 60_000);

  it('a dial delivered twice at once creates one call; a command for an unknown call ends it', async () => {
    const callId = `call:dup-${Date.now()}:r1~1`;
    const dial = JSON.stringify({
      action: 'dial',
      callId,
      commandId: `${callId}#c1`,
      elementId: 'call',
      from: '+14155550100',
      to: '+385915550006',
      attempt: 1,
      dialIndex: 1,
      recordCall: false,
      machineDetection: false,
    });
    const acks = await Promise.all(
      [0, 1, 2].map(() =>
        nc
          .request('dialflow.telephony.infobip.commands', dial, { timeout: 5000 })
          .then((m) => m.json<{ ok: boolean }>()),
      ),
    );
    expect(acks).toEqual([{ ok: true }, { ok: true }, { ok: true }]);
    expect(fake!.callsCreated.byExternalId[callId]).toBe(1);
    const hangup = JSON.stringify({ action: 'hangup', callId, commandId: `${callId}#c2`, elementId: 'end' });
    expect((await nc.request('dialflow.telephony.infobip.commands', hangup, { timeout: 5000 })).json()).toEqual({
      ok: true,
    });

    const lost = 'call:nobody:r9~1';
    const got = new Promise<{ type: string; properties: Record<string, unknown> }>((resolve) => {
      const sub = nc.subscribe(`dialflow.events.infobip.CALL_FINISHED`, {
        callback: (_e, m) => {
          const ev = m.json<{ callId: string; type: string; properties: Record<string, unknown> }>();
          if (ev.callId !== lost) return;
          sub.unsubscribe();
          resolve(ev);
        },
      });
    });
    const say = JSON.stringify({
      action: 'say',
      callId: lost,
      commandId: `${lost}#c3`,
      elementId: 'menu',
      text: 'Hi',
      language: 'en',
      voice: 'female',
      speechRate: 1,
      pauseMs: 0,
      interruptible: false,
    });
    expect((await nc.request('dialflow.telephony.infobip.commands', say, { timeout: 5000 })).json()).toEqual({
      ok: true,
    });
    expect((await got).properties).toMatchObject({ errorCode: 'INTERNAL_ERROR', hangupSource: 'PLATFORM' });
  });

  it('a prompt Infobip cannot play (ERROR event) moves the flow on at once instead of after the prompt timeout', async () => {
    const t0 = Date.now();
    const { result } = await runCase(
      { name: 'bad audio', flow: badAudioFlow, phone: '+385915550007', trail: [], outcome: 'answered' },
      `ib-bad-${Date.now()}`,
      1,
    );
    expect(result.trail.map((x) => `${x.element}:${x.branch}`)).toEqual(['call:answered', 'bad:played', 'ok:played']);
    expect(fake!.events.some((e) => e.type === 'ERROR')).toBe(true);
    // Without the mapping the flow waits the prompt's slack (2 minutes) and ends the call.
    expect(Date.now() - t0).toBeLessThan(15_000);
  }, 30_000);

  it("a play's pause before the first play is honoured before the request", async () => {
    const callId = `call:pause-${Date.now()}:r1~1`;
    const req = (o: Record<string, unknown>) =>
      nc
        .request('dialflow.telephony.infobip.commands', JSON.stringify({ callId, elementId: 'e', ...o }), {
          timeout: 5000,
        })
        .then((m) => m.json<{ ok: boolean }>());
    expect(
      await req({
        action: 'dial',
        commandId: `${callId}#c1`,
        from: '+14155550100',
        to: '+385915550006',
        attempt: 1,
        dialIndex: 1,
        recordCall: false,
        machineDetection: false,
      }),
    ).toEqual({ ok: true });
    const infobipId = await provider!.calls.infobipIdOf(callId);
    await fake!.waitForEvent((e) => e.type === 'CALL_ESTABLISHED' && e.callId === infobipId);
    const t0 = Date.now();
    expect(
      await req({
        action: 'say',
        commandId: `${callId}#c2`,
        text: 'Hello',
        language: 'en',
        voice: 'female',
        speechRate: 1,
        pauseMs: 600,
        interruptible: false,
      }),
    ).toEqual({ ok: true });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(590);
    expect(fake!.requests.filter((r) => r.path === `/calls/1/calls/${infobipId}/say`)).toHaveLength(1);
    await req({ action: 'hangup', commandId: `${callId}#c3` });
  });

  it('webhooks with no or wrong credentials → 401 and nothing published', async () => {
    const jsm = await jetstreamManager(nc);
    const count = async () =>
      (await jsm.streams.info(EVENTS_STREAM, { subjects_filter: 'dialflow.events.infobip.>' })).state.messages;
    const before = await count();
    const body = JSON.stringify({
      type: 'CALL_FINISHED',
      callId: 'x',
      properties: {
        callLog: {
          callId: 'x',
          externalId: 'call:forged:r1~1',
          errorCode: { id: 1, name: 'NORMAL_HANGUP', description: '' },
        },
      },
    });
    for (const authz of [undefined, `Basic ${Buffer.from(`${USER}:nope`).toString('base64')}`]) {
      const res = await fetch(webhooks!.url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...(authz ? { Authorization: authz } : {}) },
        body,
      });
      expect(res.status).toBe(401);
    }
    expect(await count()).toBe(before);
  });

  it('chaos (duplicate and reordered webhooks, late recordings, 429s) gives the same results, one call each', async () => {
    await startInfobipSide({ duplicate: 0.3, reorder: 0.3, lateRecordingMs: 150, rateLimitEvery: 7, seed: 11 });
    await runAll(`ib-chaos-${Date.now()}`);
    // A late CALL_RECORDING_READY (after the call ended) for the whole-call recording: stored all the same.
    // (A voicemail's READY held until the call ends cannot complete recordVoicemail while the call
    // lasts: that path is covered without this chaos above.)
    const { result, workflowId } = await runCase(
      { name: 'rec', flow: wholeCallFlow, phone: '+385915550008', trail: [], outcome: 'answered' },
      `ib-chaos-rec-${Date.now()}`,
      1,
    );
    expect(result.trail.map((x) => `${x.element}:${x.branch}`)).toEqual(['call:answered', 'hello:played']);
    const store = await ObjectRecordingStore.open(nc);
    let listed: Awaited<ReturnType<typeof store.list>> = [];
    for (let i = 0; i < 50 && listed.length < 1; i++) {
      listed = await store.list({ workflowId });
      if (listed.length < 1) await new Promise((r) => setTimeout(r, 100));
    }
    expect(listed.map((r) => [r.id, r.name])).toEqual([[`${workflowId}~1:call`, 'call']]);
    const deliveries = fake!.webhookDeliveries;
    expect(deliveries.filter((d) => d.chaos === 'duplicate').length).toBeGreaterThan(3);
    // A held event is swapped only when the call's next event comes within 200 ms (else it goes
    // alone, untagged); how many pairs form depends on timing, so one pair (2 deliveries) is the bar.
    expect(deliveries.filter((d) => d.chaos === 'reorder').length).toBeGreaterThanOrEqual(2);
    expect(fake!.requests.filter((r) => r.status === 429).length).toBeGreaterThan(3);
    expect(await registry.metrics()).toMatch(/dialflow_infobip_retries_total\{[^}]*reason="429"\} [1-9]/);
    console.log(JSON.stringify({ infobip: measured }));
  }, 180_000);
});

// The adapter's side of the contract's `then` and `holdEvents`, driven by commands on NATS as the
// flow worker sends them, against the fake's webhooks (Infobip has no "then": the webhook ingress
// runs the follow-up when the prompt's *_FINISHED arrives).
describe('prompt follow-ups and held events', () => {
  const COMMANDS = 'dialflow.telephony.infobip.commands';
  const ask = (cmd: Record<string, unknown>) =>
    nc.request(COMMANDS, JSON.stringify(cmd), { timeout: 5000 }).then((m) => m.json<{ ok: boolean }>());

  beforeAll(async () => {
    // A fresh fake without the chaos of the test before.
    await startInfobipSide();
  });

  /** Our events of one call as they reach JetStream subjects (what the bridge consumes). */
  function watch(callId: string) {
    const events: TelephonyEvent[] = [];
    const sub = nc.subscribe('dialflow.events.infobip.>', {
      callback: (_e, m) => {
        const ev = m.json<TelephonyEvent>();
        if (ev.callId === callId) events.push(ev);
      },
    });
    return {
      events,
      async next(type: string, timeoutMs = 5000): Promise<TelephonyEvent> {
        for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
          const ev = events.find((e) => e.type === type);
          if (ev) return ev;
          await new Promise((r) => setTimeout(r, 20));
        }
        throw new Error(
          `no ${type} for ${callId} within ${timeoutMs} ms (got ${events.map((e) => e.type).join(', ')})`,
        );
      },
      stop: () => sub.unsubscribe(),
    };
  }

  /** A call placed through our provider and answered by `phone`'s script. */
  async function answered(phone: string, tag: string, dial: Record<string, unknown> = {}) {
    const callId = `call:${tag}-${Date.now()}:r1~1`;
    const w = watch(callId);
    expect(
      await ask({
        action: 'dial',
        callId,
        commandId: `${callId}#dial`,
        elementId: 'call',
        from: '+14155550100',
        to: phone,
        attempt: 1,
        dialIndex: 1,
        recordCall: false,
        machineDetection: false,
        ...dial,
      }),
    ).toEqual({ ok: true });
    const established = await w.next('CALL_ESTABLISHED');
    const infobipId = (await provider!.calls.infobipIdOf(callId))!;
    const requests = (action: string) =>
      fake!.requests.filter((r) => r.path === `/calls/1/calls/${infobipId}/${action}`);
    return { callId, infobipId, w, established, requests };
  }
  const say = (callId: string, n: string, o: Record<string, unknown> = {}) => ({
    action: 'say',
    callId,
    commandId: `${callId}#${n}`,
    elementId: n,
    text: 'Press a key, please.',
    language: 'en',
    voice: 'female',
    speechRate: 1,
    pauseMs: 0,
    interruptible: false,
    ...o,
  });
  const capture = (callId: string, n: string, maxDigits: number) => ({
    action: 'captureDtmf' as const,
    callId,
    commandId: `${callId}#${n}`,
    elementId: n,
    maxDigits,
    terminator: '#' as const,
    firstDigitTimeoutMs: 5000,
    interDigitTimeoutMs: 3000,
  });
  const hangup = (callId: string, n: string) => ({
    action: 'hangup',
    callId,
    commandId: `${callId}#${n}`,
    elementId: n,
  });

  it('say then captureDtmf: SAY_FINISHED (held) is published, the capture is sent, its DTMF_CAPTURED follows', async () => {
    const { callId, w, requests } = await answered('+385915550011', 'fu-capture');
    const then = capture(callId, 'ask', 4);
    expect(await ask(say(callId, 'menu', { holdEvents: ['SAY_FINISHED'], then }))).toEqual({ ok: true });
    expect((await w.next('SAY_FINISHED')).properties).toMatchObject({ commandId: `${callId}#menu`, hold: true });
    const captured = await w.next('DTMF_CAPTURED');
    expect(captured.properties).toMatchObject({ commandId: then.commandId, dtmf: '12', reason: 'terminator' });
    expect(captured.properties).not.toHaveProperty('hold');
    expect(requests('capture/dtmf').map((r) => r.body)).toEqual([
      {
        maxLength: 4,
        timeout: 5000,
        digitTimeout: 3000,
        terminator: '#',
        customData: { callId, commandId: then.commandId, maxDigits: '4', typed: '' },
      },
    ]);
    expect(w.events.map((e) => e.type)).toEqual(['CALL_RINGING', 'CALL_ESTABLISHED', 'SAY_FINISHED', 'DTMF_CAPTURED']);
    await ask(hangup(callId, 'end'));
    w.stop();
  });

  it('an interruptible say cut by a key: with maxDigits 1 DTMF_CAPTURED comes at once, Infobip is not asked', async () => {
    const { callId, w, requests } = await answered('+385915550012', 'fu-typed');
    const then = capture(callId, 'ask', 1);
    expect(await ask(say(callId, 'menu', { interruptible: true, holdEvents: ['SAY_FINISHED'], then }))).toEqual({
      ok: true,
    });
    expect((await w.next('SAY_FINISHED')).properties).toMatchObject({ dtmf: '3', interrupted: true, hold: true });
    expect((await w.next('DTMF_CAPTURED')).properties).toMatchObject({
      commandId: then.commandId,
      dtmf: '3',
      reason: 'maxDigits',
    });
    expect(requests('capture/dtmf')).toEqual([]);
    await ask(hangup(callId, 'end'));
    w.stop();
  });

  it('…with more digits to come, the capture asks only for the rest and reports the typed key first', async () => {
    const { callId, w, requests } = await answered('+385915550013', 'fu-rest');
    const then = capture(callId, 'ask', 3);
    expect(await ask(say(callId, 'menu', { interruptible: true, then }))).toEqual({ ok: true });
    expect((await w.next('SAY_FINISHED')).properties).toMatchObject({ dtmf: '3', interrupted: true });
    expect((await w.next('DTMF_CAPTURED')).properties).toMatchObject({
      commandId: then.commandId,
      dtmf: '345',
      reason: 'maxDigits',
    });
    expect(requests('capture/dtmf').map((r) => r.body)).toMatchObject([
      { maxLength: 2, timeout: 3000, customData: { commandId: then.commandId, typed: '3' } },
    ]);
    await ask(hangup(callId, 'end'));
    w.stop();
  });

  it('say then hangup: the hang-up request follows SAY_FINISHED, and the call ends by API', async () => {
    const { callId, w, requests } = await answered('+385915550014', 'fu-bye');
    expect(await ask(say(callId, 'bye', { holdEvents: ['SAY_FINISHED'], then: hangup(callId, 'end') }))).toEqual({
      ok: true,
    });
    expect((await w.next('SAY_FINISHED')).properties).toMatchObject({ hold: true });
    expect((await w.next('CALL_FINISHED')).properties).toMatchObject({ hangupSource: 'API' });
    expect(requests('hangup')).toHaveLength(1);
    expect(w.events.map((e) => e.type).slice(-2)).toEqual(['SAY_FINISHED', 'CALL_FINISHED']);
    w.stop();
  });

  it('a redelivered prompt webhook and the follow-up re-sent alone send nothing twice', async () => {
    const { callId, infobipId, w, requests } = await answered('+385915550015', 'fu-once');
    const then = capture(callId, 'ask', 1);
    expect(await ask(say(callId, 'menu', { holdEvents: ['SAY_FINISHED'], then }))).toEqual({ ok: true });
    expect((await w.next('DTMF_CAPTURED')).properties).toMatchObject({ commandId: then.commandId, dtmf: '9' });
    const prompt = fake!.webhookDeliveries.find((d) => d.body.type === 'SAY_FINISHED' && d.body.callId === infobipId);
    const basic = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
    const jsm = await jetstreamManager(nc);
    const stored = async () =>
      (await jsm.streams.info(EVENTS_STREAM, { subjects_filter: 'dialflow.events.infobip.>' })).state.messages;
    const before = await stored();
    // Infobip delivers the prompt's webhook again, twice at once.
    const again = await Promise.all(
      [0, 1].map(() =>
        fetch(webhooks!.url, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Authorization: basic },
          body: prompt!.raw,
        }),
      ),
    );
    expect(again.map((r) => r.status)).toEqual([204, 204]);
    // The workflow, its wait over, sends the capture on its own.
    expect(await ask(then)).toEqual({ ok: true });
    expect(requests('capture/dtmf')).toHaveLength(1);
    // Nothing new stored either: the repeated SAY_FINISHED is dropped by JetStream's dedupe.
    expect(await stored()).toBe(before);
    await ask(hangup(callId, 'end'));
    w.stop();
  });

  it("a dial with holdEvents ['CALL_ESTABLISHED'] gets CALL_ESTABLISHED marked hold, and nothing else", async () => {
    const { callId, w, established } = await answered('+385915550016', 'fu-hold', {
      machineDetection: true,
      holdEvents: ['CALL_ESTABLISHED'],
    });
    expect(established.properties).toMatchObject({ commandId: `${callId}#dial`, hold: true });
    expect((await w.next('CALL_RINGING')).properties).not.toHaveProperty('hold');
    const detected = await w.next('MACHINE_DETECTION_FINISHED');
    expect(detected.properties).toMatchObject({ commandId: `${callId}#dial`, detectionResult: 'HUMAN' });
    expect(detected.properties).not.toHaveProperty('hold');
    await ask(hangup(callId, 'end'));
    w.stop();
  });
});
