// A prompt's follow-up (`then`) and held events (`holdEvents`) on the SIP provider, on real
// components: nats-server (JetStream), a kamailio registrar, the baresip agent pool in-process,
// and baresip phones that press keys (RFC 2833). The test sends the telephony commands itself, as
// the flow worker would, and reads the events the agents publish: no Temporal needed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { Stack, freePort } from '../../src/dev/stack.js';
import { startKamailio, type RunningKamailio } from '../../src/dev/kamailio.js';
import { connectNats, ensureStreams, NatsTelephonyProvider } from '../../src/telephony/nats.js';
import { InvalidCommandError } from '../../src/telephony/provider.js';
import { startSipAgents, type RunningSipAgents } from '../../src/telephony/sip/agents.js';
import { MediaCache } from '../../src/telephony/sip/media.js';
import { concat, encodeWav, parseWav, silence, toMono } from '../../src/telephony/sip/wav.js';
import type {
  CaptureDtmfCommand,
  HangupCommand,
  SayCommand,
  TelephonyCommand,
  TelephonyEvent,
} from '../../src/telephony/contract.js';
import { Callee } from '../sip/callee.js';

const FROM = '+14155550100';
/** Long enough (~5 s) to press a key while it plays. */
const LONG_PROMPT = 'Please enter your two digit code after this message, then wait for the confirmation.';

let dir: string;
let stack: Stack;
let kam: RunningKamailio;
let agents: RunningSipAgents;
let nc: NatsConnection;
let provider: NatsTelephonyProvider;
let registrar: string;
let workDir: string;
let media: MediaCache;
let silenceWav: string;
/** An event the agents published, with the time it arrived here. */
type Arrived = TelephonyEvent & { arrivedAt: number };
const events: Arrived[] = [];
const callees: Callee[] = [];
let seq = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dialflow-sip-follow-up-'));
  stack = new Stack(join(dir, 'stack'));
  const nats = await stack.startNats({ port: await freePort(), storeDir: join(dir, 'nats') });
  nc = await connectNats(nats.url, 'it-sip-follow-up');
  await ensureStreams(nc);
  provider = new NatsTelephonyProvider(nc, 'sip');
  const port = await freePort();
  kam = await startKamailio({ dir: join(dir, 'kamailio'), host: '127.0.0.1', port });
  registrar = `127.0.0.1:${port}`;
  workDir = join(dir, 'sip');
  mkdirSync(workDir, { recursive: true });
  // The agents' cache directory: prompts rendered here first are cache hits for the agents, so a
  // prompt starts right after its command and the test's key timings fall inside it.
  media = new MediaCache(join(workDir, 'media'));
  silenceWav = (await media.silenceFile()).path;
  await Promise.all(
    [LONG_PROMPT, 'Goodbye.'].map(async (text) =>
      media.prompt({ body: await media.renderSpeech({ text, language: 'en', voice: 'female', speechRate: 1 }) }),
    ),
  );
  // No payload key in this process: the agents publish events with readable properties.
  nc.subscribe('dialflow.events.sip.>', {
    callback: (err, msg) => {
      if (err) return;
      events.push({ ...msg.json<TelephonyEvent>(), arrivedAt: Date.now() });
    },
  });
  agents = await startSipAgents({
    nc,
    options: {
      channels: 2,
      trunk: kam.uri,
      host: '127.0.0.1',
      dialWaitMs: 10_000,
      ringTimeoutSeconds: 10,
      inboundUser: 'dialflow',
      workDir,
      debug: process.env.SIP_DEBUG === '1',
    },
    log: (m) => console.error(`sip-agents: ${m}`),
  });
}, 120_000);

afterAll(async () => {
  for (const c of callees) await c.stop().catch(() => undefined);
  await agents?.stop();
  await nc?.close();
  await kam?.stop();
  await stack?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, get: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  for (const until = Date.now() + timeoutMs; Date.now() < until;) {
    const v = get();
    if (v !== undefined) return v;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const eventsOf = (callId: string) => events.filter((e) => e.callId === callId);
/** The call's event of `type` for command `commandId`, once it arrived. */
const eventFor = (callId: string, type: string, commandId: string, timeoutMs?: number) =>
  waitFor(
    `${type} of ${commandId}`,
    () => eventsOf(callId).find((e) => e.type === type && e.properties.commandId === commandId),
    timeoutMs,
  );
/** Types (and command ids) of the call's events from `from` on, in the order they arrived. */
const trail = (callId: string, from = 0) =>
  eventsOf(callId)
    .slice(from)
    .map((e) => `${e.type}:${String(e.properties.commandId ?? '')}`);

async function phone(user: string): Promise<Callee> {
  const c = await Callee.start({ dir: join(workDir, `phone-${user}`), registrar, user, silenceWav });
  callees.push(c);
  return c;
}

const press = (c: Callee, digit: string) => c.agent.command('sndcode', digit);
const id = (what: string) => `fu-${++seq}-${what}`;

/** Dial the phone and wait until the call is up; returns the call id and its CALL_ESTABLISHED. */
async function dial(
  c: Callee,
  extra: { machineDetection?: boolean; holdEvents?: TelephonyCommand['holdEvents'] } = {},
): Promise<{ callId: string; dialId: string; established: Arrived }> {
  const callId = `call:sip-follow-up:${++seq}~1`;
  const dialId = id('dial');
  await provider.send({
    action: 'dial',
    callId,
    commandId: dialId,
    elementId: 'call',
    from: FROM,
    to: c.opts.user,
    attempt: 1,
    dialIndex: 1,
    recordCall: false,
    machineDetection: extra.machineDetection ?? false,
    ...(extra.holdEvents ? { holdEvents: extra.holdEvents } : {}),
  });
  const established = await eventFor(callId, 'CALL_ESTABLISHED', dialId);
  await waitFor('the phone to see the call up', () => c.establishedAt);
  return { callId, dialId, established };
}

function say(callId: string, then: SayCommand['then'], o: Partial<SayCommand> = {}): SayCommand {
  return {
    action: 'say',
    callId,
    commandId: id('say'),
    elementId: 'menu',
    text: LONG_PROMPT,
    language: 'en',
    voice: 'female',
    speechRate: 1,
    pauseMs: 0,
    interruptible: false,
    ...(then ? { then } : {}),
    ...o,
  };
}

function capture(callId: string, o: Partial<CaptureDtmfCommand> = {}): CaptureDtmfCommand {
  return {
    action: 'captureDtmf',
    callId,
    commandId: id('capture'),
    elementId: 'ask',
    maxDigits: 2,
    terminator: '#',
    firstDigitTimeoutMs: 5000,
    interDigitTimeoutMs: 3000,
    ...o,
  };
}

const hangup = (callId: string): HangupCommand => ({
  action: 'hangup',
  callId,
  commandId: id('hangup'),
  elementId: 'end',
});

/** Hang the call up and wait for its end, so that the agent is free for the next test. */
async function end(c: Callee, callId: string): Promise<void> {
  const h = hangup(callId);
  await provider.send(h);
  await eventFor(callId, 'CALL_FINISHED', h.commandId);
  await c.waitClosed();
}

describe('SIP provider: prompt follow-ups and held events', () => {
  it('say then captureDtmf: SAY_FINISHED (held) first, then the key pressed after the prompt; keys during a prompt that is not interruptible are dropped; a re-sent follow-up or prompt does nothing new', async () => {
    const c = await phone('+385915557001');
    const { callId, established } = await dial(c);
    expect(established.properties.hold).toBeUndefined();

    const cap = capture(callId);
    const menu = say(callId, cap, { holdEvents: ['SAY_FINISHED'] });
    const sentAt = Date.now();
    await provider.send(menu);
    // During the prompt (not interruptible): dropped, it must not reach the capture.
    await sleep(1500);
    await press(c, '9');
    const pressedDuring = Date.now();
    const finished = await eventFor(callId, 'SAY_FINISHED', menu.commandId);
    expect(finished.arrivedAt).toBeGreaterThan(pressedDuring);
    expect(finished.properties).toEqual({ commandId: menu.commandId, hold: true });
    // After the prompt: the capture is open already (no round trip through a workflow).
    await sleep(300);
    await press(c, '4');
    await sleep(300);
    await press(c, '2');
    const captured = await eventFor(callId, 'DTMF_CAPTURED', cap.commandId);
    expect(captured.properties).toEqual({ commandId: cap.commandId, dtmf: '42', reason: 'maxDigits' });
    expect(trail(callId).slice(-2)).toEqual([`SAY_FINISHED:${menu.commandId}`, `DTMF_CAPTURED:${cap.commandId}`]);
    console.error(
      `say → SAY_FINISHED ${finished.arrivedAt - sentAt} ms; SAY_FINISHED → DTMF_CAPTURED ${captured.arrivedAt - finished.arrivedAt} ms`,
    );

    // The workflow re-sends the follow-up on its own when it times out, and a redelivered prompt:
    // neither opens a capture (which would end in a DTMF_CAPTURED timeout after 5 s) nor replays.
    const before = eventsOf(callId).length;
    await provider.send(cap);
    await provider.send(menu);
    await sleep(6000);
    expect(trail(callId, before)).toEqual([]);

    // The capture's timeouts start when the prompt ends: a 1.5 s first-digit timeout on a ~5 s
    // prompt ends 1.5 s after SAY_FINISHED, not during the prompt. The follow-up sent on its own
    // while the prompt plays is the same command: it neither opens a capture early nor runs twice.
    const quiet = capture(callId, { firstDigitTimeoutMs: 1500 });
    const again = say(callId, quiet);
    await provider.send(again);
    await sleep(500);
    await provider.send(quiet);
    const done = await eventFor(callId, 'SAY_FINISHED', again.commandId);
    expect(done.properties).toEqual({ commandId: again.commandId });
    const timedOut = await eventFor(callId, 'DTMF_CAPTURED', quiet.commandId);
    expect(timedOut.properties).toEqual({ commandId: quiet.commandId, dtmf: '', reason: 'timeout' });
    expect(timedOut.arrivedAt - done.arrivedAt).toBeGreaterThanOrEqual(1300);
    expect(timedOut.arrivedAt - done.arrivedAt).toBeLessThan(3000);
    await sleep(2000);
    expect(trail(callId, before)).toEqual([`SAY_FINISHED:${again.commandId}`, `DTMF_CAPTURED:${quiet.commandId}`]);
    await end(c, callId);
  }, 90_000);

  it('interruptible say then captureDtmf: the key that cuts the prompt is the capture’s first digit (with the next keys, maxDigits at once, or # at once)', async () => {
    const c = await phone('+385915557002');
    const { callId } = await dial(c);

    // A key during the prompt, then two more after it: "7" "8" "#" → 78, terminator.
    const first = capture(callId, { maxDigits: 3 });
    const menu = say(callId, first, { interruptible: true, holdEvents: ['SAY_FINISHED'] });
    await provider.send(menu);
    await sleep(1500);
    await press(c, '7');
    const cut = await eventFor(callId, 'SAY_FINISHED', menu.commandId);
    expect(cut.properties).toEqual({ commandId: menu.commandId, interrupted: true, dtmf: '7', hold: true });
    await sleep(300);
    await press(c, '8');
    await sleep(300);
    await press(c, '#');
    const captured = await eventFor(callId, 'DTMF_CAPTURED', first.commandId);
    expect(captured.properties).toEqual({ commandId: first.commandId, dtmf: '78', reason: 'terminator' });

    // maxDigits 1, reached by the key that cut the prompt: DTMF_CAPTURED follows at once.
    const one = capture(callId, { maxDigits: 1 });
    const menu2 = say(callId, one, { interruptible: true });
    await provider.send(menu2);
    await sleep(1500);
    await press(c, '5');
    const cut2 = await eventFor(callId, 'SAY_FINISHED', menu2.commandId);
    const captured2 = await eventFor(callId, 'DTMF_CAPTURED', one.commandId);
    expect(cut2.properties).toEqual({ commandId: menu2.commandId, interrupted: true, dtmf: '5' });
    expect(captured2.properties).toEqual({ commandId: one.commandId, dtmf: '5', reason: 'maxDigits' });
    expect(captured2.arrivedAt - cut2.arrivedAt).toBeLessThan(500);

    // `#` cuts the prompt and ends the capture at once, with no digits.
    const hash = capture(callId, { maxDigits: 4 });
    const menu3 = say(callId, hash, { interruptible: true });
    await provider.send(menu3);
    await sleep(1500);
    await press(c, '#');
    const cut3 = await eventFor(callId, 'SAY_FINISHED', menu3.commandId);
    const captured3 = await eventFor(callId, 'DTMF_CAPTURED', hash.commandId);
    expect(cut3.properties).toEqual({ commandId: menu3.commandId, interrupted: true, dtmf: '' });
    expect(captured3.properties).toEqual({ commandId: hash.commandId, dtmf: '', reason: 'terminator' });
    expect(captured3.arrivedAt - cut3.arrivedAt).toBeLessThan(500);

    const kinds = trail(callId).filter((e) => /^(SAY_FINISHED|DTMF_CAPTURED):/.test(e));
    expect(kinds).toEqual([
      `SAY_FINISHED:${menu.commandId}`,
      `DTMF_CAPTURED:${first.commandId}`,
      `SAY_FINISHED:${menu2.commandId}`,
      `DTMF_CAPTURED:${one.commandId}`,
      `SAY_FINISHED:${menu3.commandId}`,
      `DTMF_CAPTURED:${hash.commandId}`,
    ]);
    await end(c, callId);
  }, 90_000);

  it('say then hangup: SAY_FINISHED, then CALL_FINISHED by API with the hangup’s commandId, once (its copy sent during the prompt does not cut it)', async () => {
    const c = await phone('+385915557003');
    const { callId } = await dial(c);
    const bye = hangup(callId);
    const last = say(callId, bye, { holdEvents: ['SAY_FINISHED'] });
    const sentAt = Date.now();
    await provider.send(last);
    await sleep(1000);
    // The workflow's copy of the follow-up: the prompt still plays to its end.
    await provider.send(bye);
    const finished = await eventFor(callId, 'SAY_FINISHED', last.commandId);
    const ended = await eventFor(callId, 'CALL_FINISHED', bye.commandId);
    expect(finished.properties).toEqual({ commandId: last.commandId, hold: true });
    expect(ended.properties).toMatchObject({
      commandId: bye.commandId,
      errorCode: 'NORMAL_HANGUP',
      hangupSource: 'API',
    });
    await c.waitClosed();
    // The phone heard the whole prompt before the call ended.
    const promptMs = (await media.prompt({ body: await media.renderSpeech({ text: LONG_PROMPT }) })).durationMs;
    expect((c.closedAt ?? 0) - sentAt).toBeGreaterThanOrEqual(promptMs);
    await provider.send(last);
    await sleep(1000);
    expect(trail(callId).slice(-2)).toEqual([`SAY_FINISHED:${last.commandId}`, `CALL_FINISHED:${bye.commandId}`]);
    expect(eventsOf(callId).filter((e) => e.type === 'CALL_FINISHED')).toHaveLength(1);
    console.error(
      `say then hangup: SAY_FINISHED → CALL_FINISHED ${ended.arrivedAt - finished.arrivedAt} ms, the phone saw the BYE ${(c.closedAt ?? NaN) - finished.arrivedAt} ms after SAY_FINISHED`,
    );
  }, 60_000);

  it('the phone hangs up during the prompt: neither the prompt’s end nor its follow-up comes', async () => {
    const c = await phone('+385915557004');
    const { callId } = await dial(c);
    const cap = capture(callId, { firstDigitTimeoutMs: 500 });
    await provider.send(say(callId, cap));
    await sleep(1500);
    await c.agent.command('hangup');
    const ended = await waitFor('CALL_FINISHED', () => eventsOf(callId).find((e) => e.type === 'CALL_FINISHED'));
    expect(ended.properties).toMatchObject({ hangupSource: 'ENDPOINT' });
    await sleep(5000);
    expect(eventsOf(callId).filter((e) => e.type === 'SAY_FINISHED' || e.type === 'DTMF_CAPTURED')).toEqual([]);
  }, 60_000);

  it('dial with machine detection and holdEvents CALL_ESTABLISHED: CALL_ESTABLISHED is held, the detection result is not', async () => {
    // A person: "Hello?", then listening (a short greeting then silence is HUMAN).
    const helloPath = (await media.renderSpeech({ text: 'Hello?', voice: 'male' })).path;
    const hello = toMono(parseWav(new Uint8Array(readFileSync(helloPath))));
    const speech = join(workDir, 'hello.wav');
    writeFileSync(speech, encodeWav(concat(silence(300), hello, silence(40_000))));
    const c = await Callee.start({
      dir: join(workDir, 'phone-amd'),
      registrar,
      user: '+385915557005',
      silenceWav,
      speechWav: speech,
    });
    callees.push(c);
    const { callId, dialId, established } = await dial(c, {
      machineDetection: true,
      holdEvents: ['CALL_ESTABLISHED'],
    });
    expect(established.properties).toEqual({ commandId: dialId, hold: true });
    const amd = await eventFor(callId, 'MACHINE_DETECTION_FINISHED', dialId);
    expect(amd.properties.hold).toBeUndefined();
    expect(amd.properties.detectionResult).toBe('HUMAN');
    for (const e of eventsOf(callId).filter((x) => x.type === 'CALL_RINGING'))
      expect(e.properties.hold).toBeUndefined();
    console.error(`held CALL_ESTABLISHED → MACHINE_DETECTION_FINISHED ${amd.arrivedAt - established.arrivedAt} ms`);
    await end(c, callId);
  }, 60_000);

  it('refuses a follow-up for another call or with the prompt’s own commandId', async () => {
    const callId = `call:sip-follow-up:${++seq}~1`;
    await expect(provider.send(say(callId, capture('call:other~1')))).rejects.toThrow(InvalidCommandError);
    const own = say(callId, undefined);
    await expect(provider.send({ ...own, then: { ...hangup(callId), commandId: own.commandId } })).rejects.toThrow(
      /its own commandId/,
    );
  });
});
