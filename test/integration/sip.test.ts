// The SIP provider on loopback: real Temporal + NATS, the flow worker and bridge, a kamailio
// registrar, the baresip agent pool, and scripted callees (baresip phones and sipp).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import type { NatsConnection } from '@nats-io/transport-node';
import { startEphemeralStack, type EphemeralStack } from '../../src/dev/ephemeral.js';
import { freePort } from '../../src/dev/stack.js';
import { startKamailio, type RunningKamailio } from '../../src/dev/kamailio.js';
import { startCall } from '../../src/client/calls.js';
import { parseFlow } from '../../src/flow/validate.js';
import { connectNats } from '../../src/telephony/nats.js';
import { startSipAgents, type RunningSipAgents } from '../../src/telephony/sip/agents.js';
import { MediaCache } from '../../src/telephony/sip/media.js';
import {
  concat,
  normalizedCrossCorrelation,
  parseWav,
  silence,
  tone,
  toMono,
  encodeWav,
} from '../../src/telephony/sip/wav.js';
import { ObjectRecordingStore } from '../../src/store/recordings.js';
import { AudioAssetStore } from '../../src/store/assets.js';
import { KvFlowStore } from '../../src/store/flows.js';
import { Callee } from '../sip/callee.js';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { CallResult } from '../../src/flow/interpreter.js';

const reminder = parseFlow(
  JSON.parse(readFileSync(new URL('../../examples/appointment-reminder.json', import.meta.url), 'utf8')),
);
const SIPP_DIR = new URL('../sip/', import.meta.url).pathname;

let t: EphemeralStack;
let kam: RunningKamailio;
let agents: RunningSipAgents;
let nc: NatsConnection;
let registrar: string;
let workDir: string;
/** The test's own media cache (same directory as the agents' cache, so prompts are rendered once). */
let media: MediaCache;
let silenceWav: string;
/** Every event the agents published: type, call id, its timestamp (the agent's clock) and when it arrived. */
const events: Array<{ type: string; callId: string; at: number }> = [];
const agentLog: string[] = [];
const INBOUND_NUMBER = '+14155550111';
const sipps: ChildProcess[] = [];
const callees: Callee[] = [];
const sippPorts: Record<string, number> = {};
const registry = new Registry();

function startSipp(scenario: string, port: number): ChildProcess {
  const p = spawn(
    'sipp',
    ['-sf', join(SIPP_DIR, scenario), '-i', '127.0.0.1', '-p', String(port), '-nostdin', '-trace_err'],
    { stdio: 'ignore', cwd: t.dataDir },
  );
  p.once('error', () => undefined);
  sipps.push(p);
  return p;
}

beforeAll(async () => {
  t = await startEphemeralStack({ services: ['worker', 'bridge'], env: { DIALFLOW_PROVIDER: 'sip' } });
  workDir = join(t.dataDir, 'sip');
  mkdirSync(workDir, { recursive: true });
  media = new MediaCache(join(workDir, 'media'));
  silenceWav = (await media.silenceFile()).path;
  for (const [name, scenario] of [
    ['busy', 'uas-486.xml'],
    ['declined', 'uas-603.xml'],
    ['unavailable', 'uas-480.xml'],
    ['ringing', 'uas-ring.xml'],
  ] as const) {
    sippPorts[name] = await freePort();
    startSipp(scenario, sippPorts[name] ?? 0);
  }
  const port = await freePort();
  kam = await startKamailio({
    dir: join(t.dataDir, 'kamailio'),
    host: '127.0.0.1',
    port,
    staticRoutes: [
      { user: '+385915550486', uri: `sip:busy@127.0.0.1:${sippPorts.busy}` },
      { user: '+385915550603', uri: `sip:declined@127.0.0.1:${sippPorts.declined}` },
      { user: '+385915550480', uri: `sip:unavailable@127.0.0.1:${sippPorts.unavailable}` },
      { user: '+385915550180', uri: `sip:ringing@127.0.0.1:${sippPorts.ringing}` },
    ],
    inboundNumbers: [INBOUND_NUMBER],
  });
  registrar = `127.0.0.1:${port}`;
  nc = await connectNats(t.natsUrl, 'it-sip');
  nc.subscribe('dialflow.events.sip.>', {
    callback: (err, msg) => {
      if (err) return;
      // Routing fields stay readable in a sealed event; the properties are not needed here.
      const ev = msg.json<{ type: string; callId: string; timestamp: string }>();
      events.push({ type: ev.type, callId: ev.callId, at: Date.parse(ev.timestamp) });
    },
  });
  agents = await startSipAgents({
    nc,
    registry,
    options: {
      channels: 3,
      trunk: kam.uri,
      host: '127.0.0.1',
      dialWaitMs: 10_000,
      ringTimeoutSeconds: 8,
      inboundUser: 'dialflow',
      inboundNumbers: [INBOUND_NUMBER],
      workDir,
      debug: process.env.SIP_DEBUG === '1',
    },
    log: (m) => {
      agentLog.push(m);
      console.error(`sip-agents: ${m}`);
    },
  });
}, 120_000);

afterAll(async () => {
  for (const c of callees) await c.stop().catch(() => undefined);
  await agents?.stop();
  await nc?.close();
  for (const p of sipps) p.kill('SIGKILL');
  await kam?.stop();
  await t?.stop();
}, 60_000);

async function callee(
  user: string,
  o: { keys?: Array<{ digit: string; afterMs: number }>; speechWav?: string; hangUpAfterMs?: number } = {},
): Promise<Callee> {
  const c = await Callee.start({
    dir: join(workDir, `callee-${user}-${Date.now()}`),
    registrar,
    user,
    silenceWav,
    ...o,
  });
  callees.push(c);
  return c;
}

const trailOf = (r: { trail: Array<{ element: string; branch: string }> }) =>
  r.trail.map((x) => `${x.element}:${x.branch}`);

/** The best correlation of what the callee heard with any speech the agents rendered. */
function bestPromptCorrelation(heard: Int16Array): number {
  const dir = join(workDir, 'media');
  let best = 0;
  for (const f of readdirSync(dir).filter((x) => x.startsWith('tts-') && x.endsWith('.wav')))
    best = Math.max(best, normalizedCrossCorrelation(heard, samplesOf(join(dir, f))));
  return best;
}

function samplesOf(path: string): Int16Array {
  return toMono(parseWav(new Uint8Array(readFileSync(path))));
}

/** Speech rendered the way the agents render a flow's tts with default language, voice and rate. */
async function speechOf(text: string, voice = 'female'): Promise<Int16Array> {
  return samplesOf((await media.renderSpeech({ text, language: 'en', voice, speechRate: 1 })).path);
}

/** A WAV the callee sends: `leadMs` of silence, the audio, then a long silent tail (aufile hangs up at EOF). */
function speechFile(name: string, leadMs: number, ...audio: Int16Array[]): string {
  const path = join(workDir, `${name}.wav`);
  writeFileSync(path, encodeWav(concat(silence(leadMs), ...audio, silence(40_000))));
  return path;
}

/** A person answering: "Hello?", then listening. */
async function helloFile(): Promise<string> {
  return speechFile('hello', 300, await speechOf('Hello?', 'male'));
}

/** Events of one workflow's calls (`{workflowId}~n`), in arrival order. */
const eventsOf = (workflowId: string) => events.filter((e) => e.callId.startsWith(`${workflowId}~`));

/** The inbound workflow started for a provider call id, once it has ended. */
async function inboundResult(callId: string, timeoutMs = 60_000): Promise<CallResult | undefined> {
  const handle = t.client.workflow.getHandle(`inbound:${callId}`);
  for (const until = Date.now() + timeoutMs; Date.now() < until;) {
    const result = await handle.result().catch((err: unknown) => {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    });
    if (result) return result as CallResult;
    await new Promise((r) => setTimeout(r, 200));
  }
  return undefined;
}

async function waitFor<T>(
  what: string,
  get: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 20_000,
): Promise<T> {
  for (const until = Date.now() + timeoutMs; Date.now() < until;) {
    const v = await get();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('SIP provider on loopback', () => {
  it('appointment reminder: the callee hears the prompt (≥ 0.9) and key 1 takes the confirmed branch', async () => {
    const phone = '+385915551001';
    // The reminder has a voicemail branch, so the provider listens first: the person says "Hello?"
    // (machine detection decides ~1.6 s after answering), then the menu is 1 s of pause and ~7 s of
    // speech: press 1 after it, inside the collect's 5 s.
    const c = await callee(phone, { speechWav: await helloFile(), keys: [{ digit: '1', afterMs: 11_500 }] });
    const started = Date.now();
    const handle = await startCall(t.client, {
      flow: reminder,
      campaignId: `sip-${Date.now()}`,
      taskQueue: t.config.temporal.taskQueue,
      recipient: { id: 'r1', phone, firstName: 'Ana' },
    });
    const result = await handle.result();
    expect(trailOf(result)).toEqual(['call:answered', 'menu:played', 'ask:1', 'confirmed:played']);
    expect(result.variables.choice).toBe('1');
    await c.waitClosed();
    const heard = c.heard();
    const corr = bestPromptCorrelation(heard);
    // Prompt-to-key latency: the callee sent the key at `sent`; the agent published DTMF_CAPTURED at
    // its timestamp (the moment the RFC 2833 event reached it, plus the in-process hand-off).
    const sent = c.keysSentAt[0]?.at ?? 0;
    const captured = eventsOf(handle.workflowId).find((e) => e.type === 'DTMF_CAPTURED');
    console.error(
      `heard ${heard.length / 8000} s, best correlation with a rendered prompt ${corr.toFixed(3)}, call took ${Date.now() - started} ms; key sent → DTMF_CAPTURED ${(captured?.at ?? NaN) - sent} ms`,
    );
    expect(captured).toBeDefined();
    expect(corr).toBeGreaterThanOrEqual(0.9);
  }, 90_000);

  it('a key cuts an interruptible prompt and is not collected twice', async () => {
    const phone = '+385915551002';
    // After "Hello?" and machine detection (~1.6 s), during the menu.
    const c = await callee(phone, { speechWav: await helloFile(), keys: [{ digit: '2', afterMs: 4000 }] });
    const handle = await startCall(t.client, {
      flow: reminder,
      campaignId: `sip-int-${Date.now()}`,
      taskQueue: t.config.temporal.taskQueue,
      recipient: { id: 'r2', phone, firstName: 'Ana' },
    });
    const result = await handle.result();
    expect(trailOf(result)).toEqual(['call:answered', 'menu:played', 'ask:2', 'cancelled:played']);
    await c.waitClosed();
    const sent = c.keysSentAt[0]?.at ?? 0;
    const cut = eventsOf(handle.workflowId).find((e) => e.type === 'SAY_FINISHED');
    console.error(`key sent → interrupted SAY_FINISHED ${(cut?.at ?? NaN) - sent} ms`);
    // The menu was cut: the call took far less than the menu's full length + 5 s of waiting.
    expect((c.closedAt ?? 0) - (c.establishedAt ?? 0)).toBeLessThan(12_000);
  }, 90_000);

  it('sipp callees answering 486, 603, 480 and ringing forever take busy, declined, noAnswer, noAnswer (with a retry)', async () => {
    const flow = parseFlow({
      id: 'sip-failures',
      version: 1,
      start: 'call',
      elements: [
        {
          id: 'call',
          type: 'startOutgoingCall',
          from: '+14155550100',
          retry: { minMinutes: 1, maxMinutes: 1, count: 1 },
          next: { answered: 'end', busy: 'end', declined: 'end', noAnswer: 'end', callEnded: 'end' },
        },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const campaignId = `sip-fail-${Date.now()}`;
    const cases = [
      ['+385915550486', 'busy'],
      ['+385915550603', 'declined'],
      ['+385915550480', 'noAnswer'],
      ['+385915550180', 'noAnswer'],
    ] as const;
    const results = await Promise.all(
      cases.map(async ([phone], i) =>
        (
          await startCall(t.client, {
            flow,
            campaignId,
            taskQueue: t.config.temporal.taskQueue,
            recipient: { id: `f${i}`, phone },
          })
        ).result(),
      ),
    );
    results.forEach((r, i) => {
      expect(trailOf(r)).toEqual([`call:${cases[i]?.[1]}`]);
      expect(r.dials).toBe(2);
    });
    const metrics = await registry.getSingleMetricAsString('dialflow_sip_dials_total');
    expect(metrics).toMatch(/response="486"/);
    expect(metrics).toMatch(/response="603"/);
    expect(metrics).toMatch(/response="480"/);
    expect(metrics).toMatch(/response="ring-timeout"/);
  }, 180_000);

  it('voicemail: the recording holds what the callee said', async () => {
    const phone = '+385915551003';
    const speech = await speechOf('Hello, this is Ana. Please call me back tomorrow morning.', 'male');
    // Speak 1.5 s after answering (after the beep), then stay silent: max silence ends the recording.
    const speechFile = join(workDir, 'callee-speech.wav');
    writeFileSync(speechFile, encodeWav(concat(silence(1500), speech, silence(20_000))));
    const c = await callee(phone, { speechWav: speechFile });
    const flow = parseFlow({
      id: 'sip-voicemail',
      version: 1,
      start: 'call',
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'vm' } },
        {
          id: 'vm',
          type: 'recordVoicemail',
          name: 'vm-{{recipient.id}}',
          maxDurationSeconds: 20,
          maxSilenceSeconds: 2,
          beep: true,
          escapeDigits: '0',
          next: { recorded: 'end' },
        },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const result = await (
      await startCall(t.client, {
        flow,
        campaignId: `sip-vm-${Date.now()}`,
        taskQueue: t.config.temporal.taskQueue,
        recipient: { id: 'v1', phone },
      })
    ).result();
    expect(trailOf(result)).toEqual(['call:answered', 'vm:recorded']);
    const rec = result.recordings[0];
    expect(rec?.name).toBe('vm-v1');
    const stored = await (await ObjectRecordingStore.open(nc)).get(rec?.recordingId ?? '');
    expect(stored).toBeDefined();
    const recorded = toMono(parseWav(stored?.data ?? new Uint8Array()));
    const corr = normalizedCrossCorrelation(recorded, speech);
    console.error(`voicemail ${recorded.length / 8000} s, correlation with the callee's speech ${corr.toFixed(3)}`);
    expect(corr).toBeGreaterThanOrEqual(0.9);
    await c.waitClosed();
  }, 90_000);

  it('a key during a prompt that is not interruptible is discarded, not collected by the next collect', async () => {
    const phone = '+385915551004';
    const c = await callee(phone, { keys: [{ digit: '1', afterMs: 1500 }] });
    const flow = parseFlow({
      id: 'sip-no-typeahead',
      version: 1,
      start: 'call',
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'info' } },
        {
          id: 'info',
          type: 'play',
          tts: { text: 'Please listen carefully, as our menu options have changed.' },
          interruptible: false,
          next: { played: 'ask' },
        },
        {
          id: 'ask',
          type: 'collect',
          maxDigits: 1,
          waitSeconds: 3,
          responses: { '1': 'one' },
          next: { noMatch: 'end' },
        },
        { id: 'one', type: 'play', tts: { text: 'One.' }, next: { played: 'end' } },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const result = await (
      await startCall(t.client, {
        flow,
        campaignId: `sip-nta-${Date.now()}`,
        taskQueue: t.config.temporal.taskQueue,
        recipient: { id: 'n1', phone },
      })
    ).result();
    expect(c.keysSentAt).toHaveLength(1);
    expect(trailOf(result)).toEqual(['call:answered', 'info:played', 'ask:noMatch']);
    await c.waitClosed();
  }, 90_000);

  it('plays a recorded voicemail (recording:), an http(s) URL and an uploaded file (file:)', async () => {
    const phone = '+385915551005';
    const said = await speechOf('My name is Ivo and my number is five five five.', 'male');
    const chime = concat(tone(660, 300), silence(100), tone(880, 300), silence(100), tone(990, 500));
    const jingle = concat(tone(523, 250), tone(659, 250), tone(784, 250), tone(1047, 600));
    await (await AudioAssetStore.open(nc)).put('jingle.wav', encodeWav(jingle));
    const server: Server = createServer((req, res) => {
      if (req.url !== '/chime.wav') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'audio/wav' }).end(Buffer.from(encodeWav(chime)));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      // Speak right after answering, then stay silent: max silence (2 s) ends the recording.
      const c = await callee(phone, { speechWav: speechFile('play-sources-speech', 500, said) });
      const flow = parseFlow({
        id: 'sip-play-sources',
        version: 1,
        start: 'call',
        elements: [
          { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'vm' } },
          {
            id: 'vm',
            type: 'recordVoicemail',
            name: 'name-{{recipient.id}}',
            maxDurationSeconds: 15,
            maxSilenceSeconds: 2,
            beep: false,
            next: { recorded: 'replay' },
          },
          { id: 'replay', type: 'play', audio: { voicemail: 'name-{{recipient.id}}' }, next: { played: 'web' } },
          { id: 'web', type: 'play', audio: { url: `http://127.0.0.1:${port}/chime.wav` }, next: { played: 'asset' } },
          { id: 'asset', type: 'play', audio: { file: 'jingle.wav' }, next: { played: 'end' } },
          { id: 'end', type: 'hangUp' },
        ],
      });
      const result = await (
        await startCall(t.client, {
          flow,
          campaignId: `sip-src-${Date.now()}`,
          taskQueue: t.config.temporal.taskQueue,
          recipient: { id: 'p1', phone },
        })
      ).result();
      expect(trailOf(result)).toEqual(['call:answered', 'vm:recorded', 'replay:played', 'web:played', 'asset:played']);
      await c.waitClosed();
      const heard = c.heard();
      const corr = {
        voicemail: normalizedCrossCorrelation(heard, said),
        url: normalizedCrossCorrelation(heard, chime),
        file: normalizedCrossCorrelation(heard, jingle),
      };
      console.error(
        `played back to the callee: ${JSON.stringify(Object.fromEntries(Object.entries(corr).map(([k, v]) => [k, v.toFixed(3)])))}`,
      );
      expect(corr.voicemail).toBeGreaterThanOrEqual(0.9);
      expect(corr.url).toBeGreaterThanOrEqual(0.9);
      expect(corr.file).toBeGreaterThanOrEqual(0.9);
    } finally {
      server.close();
    }
  }, 90_000);

  it('machine detection: a person saying "Hello?" takes answered; a voicemail greeting takes voicemail and records the message', async () => {
    const human = '+385915551006';
    const machine = '+385915551007';
    const greeting = await speechOf(
      'Hi, you have reached Ana Horvat. I cannot take your call right now, please leave a message after the tone.',
      'male',
    );
    // The person waits for the caller after "Hello?", and presses 1 during the (interruptible) menu.
    const person = await callee(human, { speechWav: await helloFile(), keys: [{ digit: '1', afterMs: 5000 }] });
    const answering = await callee(machine, { speechWav: speechFile('amd-greeting', 300, greeting, tone(1000, 400)) });
    const [h, m] = await Promise.all(
      [
        ['a1', human],
        ['a2', machine],
      ].map(async ([id, phone]) =>
        startCall(t.client, {
          flow: reminder,
          campaignId: `sip-amd-${Date.now()}`,
          taskQueue: t.config.temporal.taskQueue,
          recipient: { id: id ?? '', phone: phone ?? '', firstName: 'Ana' },
        }),
      ),
    );
    const [hr, mr] = await Promise.all([h?.result(), m?.result()]);
    expect(hr && trailOf(hr)).toEqual(['call:answered', 'menu:played', 'ask:1', 'confirmed:played']);
    expect(mr && trailOf(mr)).toEqual(['call:voicemail', 'leave-message:played']);
    await Promise.all([person.waitClosed(), answering.waitClosed()]);
    const message = await speechOf(
      'Hi Ana, this is a reminder of your appointment tomorrow. Please call us to confirm.',
    );
    const corr = normalizedCrossCorrelation(answering.heard(), message);
    const decisions = agentLog.filter((l) => l.includes('machine detection'));
    console.error(
      `AMD decisions:\n  ${decisions.join('\n  ')}\nthe answering machine recorded the leave-message prompt with correlation ${corr.toFixed(3)}`,
    );
    expect(corr).toBeGreaterThanOrEqual(0.9);
    expect(decisions.filter((l) => l.includes(`${h?.workflowId}~`) && l.includes('HUMAN'))).toHaveLength(1);
    expect(decisions.filter((l) => l.includes(`${m?.workflowId}~`) && l.includes('MACHINE'))).toHaveLength(1);
  }, 120_000);

  it('inbound: a phone calls a routed number, the inbound flow answers, plays its menu and follows the key', async () => {
    const store = await KvFlowStore.open(nc);
    await store.publish(
      parseFlow({
        id: 'sip-inbound',
        version: 1,
        start: 'incoming',
        elements: [
          { id: 'incoming', type: 'startIncomingCall', number: INBOUND_NUMBER, next: 'menu' },
          {
            id: 'menu',
            type: 'play',
            tts: { text: 'Thank you for calling. Press 1 for sales, 2 for support.' },
            interruptible: true,
            next: { played: 'choose' },
          },
          {
            id: 'choose',
            type: 'collect',
            maxDigits: 1,
            waitSeconds: 5,
            responses: { '1': 'sales', '2': 'support' },
            next: { noMatch: 'end' },
          },
          { id: 'sales', type: 'play', tts: { text: 'Connecting you to sales.' }, next: { played: 'end' } },
          { id: 'support', type: 'play', tts: { text: 'Connecting you to support.' }, next: { played: 'end' } },
          { id: 'end', type: 'hangUp' },
        ],
      }),
    );
    const from = '+385915553001';
    const caller = await callee(from, { keys: [{ digit: '2', afterMs: 2500 }] });
    const before = events.length;
    const dialled = Date.now();
    await caller.dial(`sip:${INBOUND_NUMBER}@${registrar}`);
    const received = await waitFor('CALL_RECEIVED', () => events.slice(before).find((e) => e.type === 'CALL_RECEIVED'));
    const result = await inboundResult(received.callId);
    expect(result?.outcome).toBe('inbound');
    expect(result && trailOf(result)).toEqual(['incoming:next', 'menu:played', 'choose:2', 'support:played']);
    await caller.waitClosed();
    // The key cut the menu: compare its first 1.5 s, and the whole answer that followed.
    const menu = (await speechOf('Thank you for calling. Press 1 for sales, 2 for support.')).subarray(0, 12_000);
    const support = await speechOf('Connecting you to support.');
    const heard = caller.heard();
    const corr = { menu: normalizedCrossCorrelation(heard, menu), support: normalizedCrossCorrelation(heard, support) };
    console.error(
      `inbound: INVITE → CALL_RECEIVED ${received.at - dialled} ms, answered after ${(caller.establishedAt ?? NaN) - dialled} ms; the caller heard the menu ${corr.menu.toFixed(3)}, the answer ${corr.support.toFixed(3)}`,
    );
    expect(corr.menu).toBeGreaterThanOrEqual(0.9);
    expect(corr.support).toBeGreaterThanOrEqual(0.9);
  }, 90_000);

  it('forwardCall: the forward reaches a second phone (forwarded); to a busy destination it takes busy', async () => {
    const flow = (to: string) =>
      parseFlow({
        id: 'sip-forward',
        version: 1,
        start: 'call',
        elements: [
          { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'fwd' } },
          {
            id: 'fwd',
            type: 'forwardCall',
            from: '+14155550100',
            to,
            ringSeconds: 10,
            next: {
              forwarded: 'end',
              notForwarded: 'end',
              busy: 'end',
              noAnswer: 'end',
              declined: 'end',
              callEnded: 'end',
            },
          },
          { id: 'end', type: 'hangUp' },
        ],
      });
    const agentPhone = '+385915552002';
    const a = await callee('+385915551008');
    const b = await callee(agentPhone);
    const forwarded = await (
      await startCall(t.client, {
        flow: flow(agentPhone),
        campaignId: `sip-fwd-${Date.now()}`,
        taskQueue: t.config.temporal.taskQueue,
        recipient: { id: 'w1', phone: '+385915551008' },
      })
    ).result();
    expect(trailOf(forwarded)).toEqual(['call:answered', 'fwd:forwarded']);
    await waitFor('the second phone to answer', () => b.establishedAt);
    // The first phone placed the forwarded call (blind transfer): the second one talks to it.
    expect(b.events.find((e) => e.type === 'CALL_ESTABLISHED')?.peeruri).toContain('+385915551008');
    await Promise.all([a.stop(), b.stop()]);

    const c = await callee('+385915551009');
    const busy = await (
      await startCall(t.client, {
        flow: flow('+385915550486'),
        campaignId: `sip-fwdb-${Date.now()}`,
        taskQueue: t.config.temporal.taskQueue,
        recipient: { id: 'w2', phone: '+385915551009' },
      })
    ).result();
    expect(trailOf(busy)).toEqual(['call:answered', 'fwd:busy']);
    await c.waitClosed();
  }, 120_000);

  it('records the whole call (recordCall) after it ends, and an escape digit ends a voicemail', async () => {
    const phone = '+385915551010';
    const intro = await speechOf('This call is recorded.');
    const said = await speechOf('Please send me the invoice by email.', 'male');
    // intro (~1.5 s) and the beep are over by 4.5 s; speak, then press # one second after speaking.
    const speakAt = 4500;
    const saidMs = (said.length / 8000) * 1000;
    const c = await callee(phone, {
      speechWav: speechFile('record-speech', speakAt, said),
      keys: [{ digit: '#', afterMs: speakAt + saidMs + 1000 }],
    });
    const flow = parseFlow({
      id: 'sip-record',
      version: 1,
      start: 'call',
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', recordCall: true, next: { answered: 'intro' } },
        { id: 'intro', type: 'play', tts: { text: 'This call is recorded.' }, next: { played: 'vm' } },
        {
          id: 'vm',
          type: 'recordVoicemail',
          name: 'invoice-{{recipient.id}}',
          maxDurationSeconds: 30,
          maxSilenceSeconds: 10,
          escapeDigits: '#',
          beep: true,
          next: { recorded: 'end' },
        },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const handle = await startCall(t.client, {
      flow,
      campaignId: `sip-rec-${Date.now()}`,
      taskQueue: t.config.temporal.taskQueue,
      recipient: { id: 'c1', phone },
    });
    const result = await handle.result();
    expect(trailOf(result)).toEqual(['call:answered', 'intro:played', 'vm:recorded']);
    await c.waitClosed();
    const store = await ObjectRecordingStore.open(nc);
    const vm = result.recordings.find((r) => r.name === 'invoice-c1');
    const voicemail = await store.get(vm?.recordingId ?? '');
    const vmSamples = toMono(parseWav(voicemail?.data ?? new Uint8Array()));
    // Ended by the key about 1 s after the speech, long before 10 s of silence or 30 s.
    expect(vmSamples.length / 8000).toBeLessThan(saidMs / 1000 + 4);
    expect(normalizedCrossCorrelation(vmSamples, said)).toBeGreaterThanOrEqual(0.9);
    const callId = `${handle.workflowId}~1`;
    const ready = await waitFor(
      'CALL_RECORDING_READY of the whole call',
      () =>
        events.find((e) =>
          e.callId === callId &&
          e.type === 'CALL_RECORDING_READY' &&
          events.some((f) => f.callId === callId && f.type === 'CALL_FINISHED' && f.at <= e.at)
            ? e
            : undefined,
        ) ?? undefined,
    );
    const whole = await waitFor('the whole-call recording', async () =>
      (await store.list({ callId })).find((r) => r.name === 'call'),
    );
    const wholeSamples = toMono(parseWav((await store.get(whole.id))?.data ?? new Uint8Array()));
    const corr = {
      intro: normalizedCrossCorrelation(wholeSamples, intro),
      callee: normalizedCrossCorrelation(wholeSamples, said),
    };
    expect(ready.type).toBe('CALL_RECORDING_READY');
    console.error(
      `whole call ${whole.durationMs} ms (call up ${(c.closedAt ?? 0) - (c.establishedAt ?? 0)} ms); correlation with the prompt ${corr.intro.toFixed(3)}, with the callee ${corr.callee.toFixed(3)}; voicemail ${vmSamples.length / 8000} s`,
    );
    expect(whole.durationMs).toBeGreaterThan(speakAt + saidMs);
    expect(corr.intro).toBeGreaterThanOrEqual(0.8);
    expect(corr.callee).toBeGreaterThanOrEqual(0.8);
  }, 90_000);

  it('reports channels, set-up times and agent memory', async () => {
    // The last call's channel is released shortly after its CALL_FINISHED.
    for (let i = 0; i < 50 && agents.agents().some((a) => a.busy); i++) await new Promise((r) => setTimeout(r, 100));
    console.error(await registry.getSingleMetricAsString('dialflow_sip_call_setup_seconds'));
    console.error(await registry.getSingleMetricAsString('dialflow_sip_channels'));
    console.error(await registry.getSingleMetricAsString('dialflow_sip_amd_decision_seconds'));
    console.error(`agents: ${JSON.stringify(agents.agents())}`);
    expect(agents.agents().every((a) => a.rssBytes > 0 && !a.busy)).toBe(true);
  });
});
