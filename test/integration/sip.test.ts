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
import { Prompts } from '../../src/telephony/sip/prompts.js';
import { concat, normalizedCrossCorrelation, parseWav, silence, toMono, encodeWav } from '../../src/telephony/sip/wav.js';
import { ObjectRecordingStore } from '../../src/store/recordings.js';
import { Callee } from '../sip/callee.js';
import { writeFileSync } from 'node:fs';

const reminder = parseFlow(JSON.parse(readFileSync(new URL('../../examples/appointment-reminder.json', import.meta.url), 'utf8')));
const SIPP_DIR = new URL('../sip/', import.meta.url).pathname;

let t: EphemeralStack;
let kam: RunningKamailio;
let agents: RunningSipAgents;
let nc: NatsConnection;
let registrar: string;
let workDir: string;
let prompts: Prompts;
const sipps: ChildProcess[] = [];
const callees: Callee[] = [];
const sippPorts: Record<string, number> = {};
const registry = new Registry();

function startSipp(scenario: string, port: number): ChildProcess {
  const p = spawn('sipp', ['-sf', join(SIPP_DIR, scenario), '-i', '127.0.0.1', '-p', String(port), '-nostdin', '-trace_err'], { stdio: 'ignore', cwd: t.dataDir });
  p.once('error', () => undefined);
  sipps.push(p);
  return p;
}

beforeAll(async () => {
  t = await startEphemeralStack({ services: ['worker', 'bridge'], env: { DIALFLOW_PROVIDER: 'sip' } });
  workDir = join(t.dataDir, 'sip');
  mkdirSync(workDir, { recursive: true });
  prompts = new Prompts(join(workDir, 'prompts'));
  for (const [name, scenario] of [['busy', 'uas-486.xml'], ['declined', 'uas-603.xml'], ['unavailable', 'uas-480.xml'], ['ringing', 'uas-ring.xml']] as const) {
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
  });
  registrar = `127.0.0.1:${port}`;
  nc = await connectNats(t.natsUrl, 'it-sip');
  agents = await startSipAgents({ nc, registry, options: { channels: 3, trunk: kam.uri, host: '127.0.0.1', dialWaitMs: 10_000, ringTimeoutSeconds: 8, inboundUser: 'dialflow', workDir, debug: process.env.SIP_DEBUG === '1' }, log: (m) => console.error(`sip-agents: ${m}`) });
}, 120_000);

afterAll(async () => {
  for (const c of callees) await c.stop().catch(() => undefined);
  await agents?.stop();
  await nc?.close();
  for (const p of sipps) p.kill('SIGKILL');
  await kam?.stop();
  await t?.stop();
}, 60_000);

async function callee(user: string, o: { keys?: Array<{ digit: string; afterMs: number }>; speechWav?: string; hangUpAfterMs?: number } = {}): Promise<Callee> {
  const c = await Callee.start({ dir: join(workDir, `callee-${user}-${Date.now()}`), registrar, user, silenceWav: prompts.silence(), ...o });
  callees.push(c);
  return c;
}

const trailOf = (r: { trail: Array<{ element: string; branch: string }> }) => r.trail.map((x) => `${x.element}:${x.branch}`);

/** The best correlation of what the callee heard with any prompt the agents rendered. */
function bestPromptCorrelation(heard: Int16Array): number {
  const dir = join(workDir, 'prompts');
  let best = 0;
  for (const f of readdirSync(dir).filter((x) => x.startsWith('tts-') && x.endsWith('.8k.wav'))) {
    const tts = toMono(parseWav(new Uint8Array(readFileSync(join(dir, f)))));
    best = Math.max(best, normalizedCrossCorrelation(heard, tts));
  }
  return best;
}

describe('SIP provider on loopback', () => {
  it('appointment reminder: the callee hears the prompt (≥ 0.9) and key 1 takes the confirmed branch', async () => {
    const phone = '+385915551001';
    // The menu is 1 s of pause and ~7 s of speech: press 1 after it, inside the collect's 5 s.
    const c = await callee(phone, { keys: [{ digit: '1', afterMs: 9500 }] });
    const started = Date.now();
    const handle = await startCall(t.client, { flow: reminder, campaignId: `sip-${Date.now()}`, taskQueue: t.config.temporal.taskQueue, recipient: { id: 'r1', phone, firstName: 'Ana' } });
    const result = await handle.result();
    expect(trailOf(result)).toEqual(['call:answered', 'menu:played', 'ask:1', 'confirmed:played']);
    expect(result.variables.choice).toBe('1');
    await c.waitClosed();
    const heard = c.heard();
    const corr = bestPromptCorrelation(heard);
    console.error(`heard ${heard.length / 8000} s, best correlation with a rendered prompt ${corr.toFixed(3)}, call took ${Date.now() - started} ms`);
    expect(corr).toBeGreaterThanOrEqual(0.9);
  }, 90_000);

  it('a key cuts an interruptible prompt and is not collected twice', async () => {
    const phone = '+385915551002';
    const c = await callee(phone, { keys: [{ digit: '2', afterMs: 2500 }] });
    const handle = await startCall(t.client, { flow: reminder, campaignId: `sip-int-${Date.now()}`, taskQueue: t.config.temporal.taskQueue, recipient: { id: 'r2', phone, firstName: 'Ana' } });
    const result = await handle.result();
    expect(trailOf(result)).toEqual(['call:answered', 'menu:played', 'ask:2', 'cancelled:played']);
    await c.waitClosed();
    console.error(`callee sent keys at ${JSON.stringify(c.keysSentAt)}`);
    // The menu was cut: the call took far less than the menu's full length + 5 s of waiting.
    expect((c.closedAt ?? 0) - (c.establishedAt ?? 0)).toBeLessThan(12_000);
  }, 90_000);

  it('sipp callees answering 486, 603, 480 and ringing forever take busy, declined, noAnswer, noAnswer (with a retry)', async () => {
    const flow = parseFlow({
      id: 'sip-failures', version: 1, start: 'call',
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', retry: { minMinutes: 1, maxMinutes: 1, count: 1 }, next: { answered: 'end', busy: 'end', declined: 'end', noAnswer: 'end', callEnded: 'end' } },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const campaignId = `sip-fail-${Date.now()}`;
    const cases = [['+385915550486', 'busy'], ['+385915550603', 'declined'], ['+385915550480', 'noAnswer'], ['+385915550180', 'noAnswer']] as const;
    const results = await Promise.all(cases.map(async ([phone], i) => (await startCall(t.client, { flow, campaignId, taskQueue: t.config.temporal.taskQueue, recipient: { id: `f${i}`, phone } })).result()));
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
    const speech = await prompts.speech({ text: 'Hello, this is Ana. Please call me back tomorrow morning.', language: 'en', voice: 'male', speechRate: 1 });
    // Speak 1.5 s after answering (after the beep), then stay silent: max silence ends the recording.
    const speechFile = join(workDir, 'callee-speech.wav');
    writeFileSync(speechFile, encodeWav(concat(silence(1500), speech, silence(20_000))));
    const c = await callee(phone, { speechWav: speechFile });
    const flow = parseFlow({
      id: 'sip-voicemail', version: 1, start: 'call',
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'vm' } },
        { id: 'vm', type: 'recordVoicemail', name: 'vm-{{recipient.id}}', maxDurationSeconds: 20, maxSilenceSeconds: 2, beep: true, escapeDigits: '0', next: { recorded: 'end' } },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const result = await (await startCall(t.client, { flow, campaignId: `sip-vm-${Date.now()}`, taskQueue: t.config.temporal.taskQueue, recipient: { id: 'v1', phone } })).result();
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

  it('reports channels, set-up times and agent memory', async () => {
    // The last call's channel is released shortly after its CALL_FINISHED.
    for (let i = 0; i < 50 && agents.agents().some((a) => a.busy); i++) await new Promise((r) => setTimeout(r, 100));
    console.error(await registry.getSingleMetricAsString('dialflow_sip_call_setup_seconds'));
    console.error(await registry.getSingleMetricAsString('dialflow_sip_channels'));
    console.error(`agents: ${JSON.stringify(agents.agents())}`);
    expect(agents.agents().every((a) => a.rssBytes > 0 && !a.busy)).toBe(true);
  });
});
