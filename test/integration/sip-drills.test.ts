// Drills for the SIP provider as it runs in production: `dialflow sip-agents` is a real process
// (with its own NATS identity) beside the flow worker and the bridge, behind a kamailio registrar.
// kill -9 of the service mid-prompt: the call's workflow ends with a clear error code in bounded
// time, the phone sees the call drop, no user agent survives, and the restarted service works.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEphemeralStack, type EphemeralStack } from '../../src/dev/ephemeral.js';
import { freePort } from '../../src/dev/stack.js';
import { startKamailio, type RunningKamailio } from '../../src/dev/kamailio.js';
import { startCall } from '../../src/client/calls.js';
import { parseFlow } from '../../src/flow/validate.js';
import { decodeHistory } from '../../src/codec/encryption.js';
import { payloadCodec } from '../../src/config/index.js';
import { transcriptFromHistory } from '../../src/cli/simulate.js';
import { MediaCache } from '../../src/telephony/sip/media.js';
import { Callee } from '../sip/callee.js';

let t: EphemeralStack;
let kam: RunningKamailio;
let dir: string;
let agentsDir: string;
let registrar: string;
let silenceWav: string;
let sipEnv: Record<string, string>;
const callees: Callee[] = [];

/** baresip processes of the service's agents (their command lines name the agents' config dirs). */
function agentProcesses(): string[] {
  try {
    return execFileSync('pgrep', ['-f', `baresip -f ${agentsDir}`], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean);
  } catch (err) {
    // pgrep exits 1 when nothing matches.
    if ((err as { status?: number }).status === 1) return [];
    throw err;
  }
}

const trailOf = (r: { trail: Array<{ element: string; branch: string }> }) =>
  r.trail.map((x) => `${x.element}:${x.branch}`);

const flow = parseFlow({
  id: 'sip-drill',
  version: 1,
  start: 'call',
  elements: [
    { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'news' } },
    {
      id: 'news',
      type: 'play',
      tts: {
        text: 'Our opening hours change next week: we open at eight in the morning and close at eight in the evening, every day.',
      },
      loopCount: 3,
      next: { played: 'end', hungUp: 'end', callEnded: 'end' },
    },
    { id: 'end', type: 'hangUp' },
  ],
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dialflow-sip-drill-'));
  agentsDir = join(dir, 'agents');
  const port = await freePort();
  kam = await startKamailio({ dir: join(dir, 'kamailio'), host: '127.0.0.1', port });
  registrar = `127.0.0.1:${port}`;
  silenceWav = (await new MediaCache(join(dir, 'media')).silenceFile()).path;
  sipEnv = {
    DIALFLOW_PROVIDER: 'sip',
    DIALFLOW_SIP_TRUNK: kam.uri,
    DIALFLOW_SIP_CHANNELS: '2',
    DIALFLOW_SIP_WORK_DIR: agentsDir,
    DIALFLOW_SIP_RING_TIMEOUT_S: '15',
  };
  t = await startEphemeralStack({ services: ['worker', 'bridge', 'sip-agents'], env: sipEnv });
}, 180_000);

afterAll(async () => {
  for (const c of callees) await c.stop().catch(() => undefined);
  await t?.stop();
  await kam?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('SIP provider drills', () => {
  it('kill -9 of sip-agents mid-prompt: the call ends with NETWORK_ERROR in bounded time, the phone sees the drop, the restarted service takes a new call', async () => {
    expect(agentProcesses()).toHaveLength(2);
    const phone = '+385915554001';
    // The phone ends a call whose RTP stopped for 3 s, as carriers and PBXs do (nobody sends a BYE for a killed service).
    const c = await Callee.start({
      dir: join(dir, 'phone-1'),
      registrar,
      user: phone,
      silenceWav,
      rtpTimeoutSeconds: 3,
    });
    callees.push(c);
    const handle = await startCall(t.client, {
      flow,
      campaignId: `drill-${Date.now()}`,
      taskQueue: t.config.temporal.taskQueue,
      recipient: { id: 'd1', phone },
    });
    for (let i = 0; i < 300 && c.establishedAt === undefined; i++) await new Promise((r) => setTimeout(r, 100));
    expect(c.establishedAt).toBeDefined();
    // Mid-prompt: the announcement runs ~7 s, three times.
    await new Promise((r) => setTimeout(r, 3000));
    const killedAt = Date.now();
    await t.stack.kill('sip-agents');
    // The agents die with the service (parent-death signal).
    for (let i = 0; i < 50 && agentProcesses().length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    const leftAfterMs = Date.now() - killedAt;
    expect(agentProcesses()).toEqual([]);

    await t.stack.startService('sip-agents', 'sip-agents', { ...t.env, ...sipEnv, ...t.nats.env('sip-agents') });
    const restartedAt = Date.now();
    const result = await handle.result();
    const endedAt = Date.now();
    await c.waitClosed(15_000);
    const transcript = transcriptFromHistory(
      flow,
      await decodeHistory(await handle.fetchHistory(), payloadCodec(t.config)),
    );
    const finished = transcript.find((e) => e.kind === 'event' && e.text.startsWith('CALL_FINISHED'));
    console.error(
      `kill -9 → agents gone ${leftAfterMs} ms; service restarted after ${restartedAt - killedAt} ms; workflow ended ${endedAt - killedAt} ms after the kill (${endedAt - restartedAt} ms after the restart); ` +
        `the phone saw the call drop after ${(c.closedAt ?? NaN) - killedAt} ms (${c.closedReason}); ${finished?.text}`,
    );
    expect(trailOf(result)).toEqual(['call:answered', 'news:callEnded']);
    expect(finished?.text).toBe('CALL_FINISHED NETWORK_ERROR by PLATFORM');
    // Bounded: the restart (NATS, two agents) plus one event through the bridge; generous for a loaded 2-core machine.
    expect(endedAt - restartedAt).toBeLessThan(20_000);
    expect(c.closedAt).toBeDefined();

    // The restarted service takes a new call end to end.
    const phone2 = '+385915554002';
    const c2 = await Callee.start({ dir: join(dir, 'phone-2'), registrar, user: phone2, silenceWav });
    callees.push(c2);
    const short = parseFlow({
      id: 'sip-drill-after',
      version: 1,
      start: 'call',
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'hello' } },
        { id: 'hello', type: 'play', tts: { text: 'We are back.' }, next: { played: 'end' } },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const after = await (
      await startCall(t.client, {
        flow: short,
        campaignId: `drill-after-${Date.now()}`,
        taskQueue: t.config.temporal.taskQueue,
        recipient: { id: 'd2', phone: phone2 },
      })
    ).result();
    expect(trailOf(after)).toEqual(['call:answered', 'hello:played']);
    expect(agentProcesses()).toHaveLength(2);
  }, 180_000);
});
