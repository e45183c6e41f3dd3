// Digest authentication against a carrier trunk, on real components: Temporal + NATS (the flow
// worker and bridge), the baresip agent pool in-process, and sipp as the trunk.
// - test/sip/uas-auth.xml challenges every INVITE with 401 + a digest challenge and verifies the
//   re-sent INVITE's Authorization header with <verifyauth>: right credentials → 200 OK, wrong → 403.
// - test/sip/uas-auth-407.xml challenges with 407 Proxy Authentication Required (what carriers
//   usually send); sipp's <verifyauth> does not read Proxy-Authorization, so the test recomputes
//   that digest itself from the header sipp logged.
// sipp logs every challenged INVITE's credentials (-trace_logs), so the test sees what was checked.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import type { NatsConnection } from '@nats-io/transport-node';
import { startEphemeralStack, type EphemeralStack } from '../../src/dev/ephemeral.js';
import { freePort } from '../../src/dev/stack.js';
import { startCall } from '../../src/client/calls.js';
import { parseFlow } from '../../src/flow/validate.js';
import { connectNats } from '../../src/telephony/nats.js';
import { startSipAgents, type RunningSipAgents } from '../../src/telephony/sip/agents.js';

const SIPP_DIR = new URL('../sip/', import.meta.url).pathname;
/** The credentials test/sip/uas-auth.xml verifies. */
const TRUNK_USER = 'dialflow-trunk';
const TRUNK_PASSWORD = 's3cret-trunk-pw';

let t: EphemeralStack;
let nc: NatsConnection;
/** A sipp trunk: its address, its working directory (trace files) and the process. */
interface Trunk {
  address: string;
  dir: string;
  proc: ChildProcess;
  exited: Promise<unknown>;
}
const trunks: Trunk[] = [];
let trunk401: Trunk;
let trunk407: Trunk;
let agents: RunningSipAgents | undefined;
const agentPids: number[] = [];
const agentLog: string[] = [];

const flow = parseFlow({
  id: 'sip-auth',
  version: 1,
  start: 'call',
  elements: [
    {
      id: 'call',
      type: 'startOutgoingCall',
      from: '+14155550100',
      next: { answered: 'hello', busy: 'end', declined: 'end', noAnswer: 'end', callEnded: 'end' },
    },
    { id: 'hello', type: 'play', tts: { text: 'You are through the trunk.' }, next: { played: 'end' } },
    { id: 'end', type: 'hangUp' },
  ],
});

const trailOf = (r: { trail: Array<{ element: string; branch: string }> }) =>
  r.trail.map((x) => `${x.element}:${x.branch}`);

/** A trace file of a trunk; `_logs.log` holds one line per challenged INVITE it checked (AUTH-OK, AUTH-REJECTED, PROXY-AUTH, AUTH-MISSING). */
function sippFile(tr: Trunk, suffix: string): string {
  const f = readdirSync(tr.dir).find((x) => x.endsWith(suffix));
  return f ? readFileSync(join(tr.dir, f), 'utf8') : '';
}
const sippLines = (tr: Trunk) => sippFile(tr, '_logs.log').split('\n').filter(Boolean);
const sippMessages = (tr: Trunk) => sippFile(tr, '_messages.log');

async function startTrunk(scenario: string): Promise<Trunk> {
  const dir = join(t.dataDir, scenario.replace(/\.xml$/, ''));
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const mediaPort = await freePort();
  const proc = spawn(
    'sipp',
    [
      '-sf',
      join(SIPP_DIR, scenario),
      '-i',
      '127.0.0.1',
      '-p',
      String(port),
      '-mp',
      String(mediaPort),
      '-nostdin',
      '-trace_err',
      '-trace_logs',
      '-trace_msg',
    ],
    { stdio: 'ignore', cwd: dir },
  );
  proc.once('error', () => undefined);
  const tr: Trunk = {
    address: `127.0.0.1:${port}`,
    dir,
    proc,
    exited: new Promise((resolve) => proc.once('exit', resolve)),
  };
  trunks.push(tr);
  // sipp creates its trace files when it starts listening.
  await waitFor(`sipp ${scenario} to start`, () => (readdirSync(dir).length > 0 ? true : undefined));
  return tr;
}

/** The digest response (RFC 2617 without qop) a client with these credentials must send. */
function digestResponse(
  h: { username: string; realm: string; nonce: string; uri: string },
  password: string,
  method = 'INVITE',
): string {
  const md5 = (x: string) => createHash('md5').update(x).digest('hex');
  return md5(`${md5(`${h.username}:${h.realm}:${password}`)}:${h.nonce}:${md5(`${method}:${h.uri}`)}`);
}

/** The parameters of a `Digest k="v", …` header value. */
function digestParams(header: string): Record<string, string> {
  return Object.fromEntries([...header.matchAll(/(\w+)="?([^",]*)"?/g)].map((m) => [m[1] ?? '', m[2] ?? '']));
}

async function waitFor<T>(what: string, get: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  for (const until = Date.now() + timeoutMs; Date.now() < until;) {
    const v = get();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** One agent pool at a time: two pools would both take the dial commands. */
async function startAgents(tr: Trunk, password: string, registry: Registry): Promise<RunningSipAgents> {
  await agents?.stop();
  const workDir = join(t.dataDir, `sip-${agentPids.length}`);
  mkdirSync(workDir, { recursive: true });
  agents = await startSipAgents({
    nc,
    registry,
    options: {
      channels: 1,
      trunk: `sip:${tr.address}`,
      trunkUser: TRUNK_USER,
      trunkPassword: password,
      host: '127.0.0.1',
      dialWaitMs: 10_000,
      ringTimeoutSeconds: 8,
      inboundUser: 'dialflow',
      workDir,
      debug: process.env.SIP_DEBUG === '1',
    },
    log: (m) => {
      agentLog.push(m);
      if (process.env.SIP_DEBUG === '1') console.error(`sip-agents: ${m}`);
    },
  });
  agentPids.push(...agents.agents().map((a) => a.pid));
  return agents;
}

beforeAll(async () => {
  t = await startEphemeralStack({ services: ['worker', 'bridge'], env: { DIALFLOW_PROVIDER: 'sip' } });
  trunk401 = await startTrunk('uas-auth.xml');
  trunk407 = await startTrunk('uas-auth-407.xml');
  nc = await connectNats(t.natsUrl, 'it-sip-auth');
}, 120_000);

afterAll(async () => {
  await agents?.stop();
  await nc?.close();
  for (const tr of trunks) {
    if (tr.proc.exitCode !== null || tr.proc.signalCode !== null) continue;
    tr.proc.kill('SIGKILL');
    await tr.exited;
  }
  await t?.stop();
  // Nothing left behind: every baresip agent this file started and sipp are gone.
  expect(agentPids.filter(alive)).toEqual([]);
  expect(trunks.filter((tr) => tr.proc.pid !== undefined && alive(tr.proc.pid))).toEqual([]);
}, 60_000);

describe('SIP trunk digest authentication', () => {
  it('with the right trunk password the challenged INVITE is re-sent with credentials, verified, and answered', async () => {
    const registry = new Registry();
    await startAgents(trunk401, TRUNK_PASSWORD, registry);
    const before = sippLines(trunk401).length;
    const handle = await startCall(t.client, {
      flow,
      campaignId: `sip-auth-ok-${Date.now()}`,
      taskQueue: t.config.temporal.taskQueue,
      recipient: { id: 'a1', phone: '+385915557001' },
    });
    const result = await handle.result();
    expect(trailOf(result)).toEqual(['call:answered', 'hello:played']);
    expect(result.dials).toBe(1);
    const lines = sippLines(trunk401).slice(before);
    console.error(`sipp verified:\n  ${lines.join('\n  ')}`);
    expect(lines).toHaveLength(1);
    // sipp recomputed the digest from the expected user and password and it matched.
    expect(lines[0]).toMatch(/^AUTH-OK call \d+: Authorization: Digest /);
    expect(lines[0]).toContain(`username="${TRUNK_USER}"`);
    expect(lines[0]).toContain('realm="trunk.dialflow.test"');
    const p = digestParams(lines[0]?.replace(/^.*?Authorization: /, '') ?? '');
    expect(p.response).toBe(
      digestResponse(
        { username: TRUNK_USER, realm: p.realm ?? '', nonce: p.nonce ?? '', uri: p.uri ?? '' },
        TRUNK_PASSWORD,
      ),
    );
    // The first INVITE went out without credentials and got the challenge; the call ended with our BYE.
    const messages = sippMessages(trunk401);
    expect(messages).toContain('SIP/2.0 401 Unauthorized');
    expect(messages).toMatch(/INVITE sip:\+385915557001@127\.0\.0\.1:\d+ SIP\/2\.0[\s\S]*?From: [^\n]*\+14155550100/);
    await waitFor('the BYE at the trunk', () => (/^BYE sip:/m.test(sippMessages(trunk401)) ? true : undefined));
    expect(await registry.getSingleMetricAsString('dialflow_sip_dials_total')).not.toMatch(/response="40[137]"/);
  }, 90_000);

  it('with a wrong trunk password the trunk answers 403 and the call ends declined', async () => {
    const registry = new Registry();
    await startAgents(trunk401, 'not-the-password', registry);
    const before = sippLines(trunk401).length;
    const handle = await startCall(t.client, {
      flow,
      campaignId: `sip-auth-bad-${Date.now()}`,
      taskQueue: t.config.temporal.taskQueue,
      recipient: { id: 'b1', phone: '+385915557002' },
    });
    const result = await handle.result();
    expect(trailOf(result)).toEqual(['call:declined']);
    expect(result.dials).toBe(1);
    const lines = sippLines(trunk401).slice(before);
    console.error(`sipp verified:\n  ${lines.join('\n  ')}`);
    expect(lines).toHaveLength(1);
    // Credentials were sent (so auth was attempted), but the digest did not match the trunk's password.
    expect(lines[0]).toMatch(/^AUTH-REJECTED call \d+: Authorization: Digest /);
    expect(lines[0]).toContain(`username="${TRUNK_USER}"`);
    expect(await registry.getSingleMetricAsString('dialflow_sip_dials_total')).toMatch(/response="403"/);
  }, 90_000);

  it('a trunk that challenges with 407 gets a Proxy-Authorization whose digest matches the trunk password, and the call is answered', async () => {
    const registry = new Registry();
    await startAgents(trunk407, TRUNK_PASSWORD, registry);
    const before = sippLines(trunk407).length;
    const handle = await startCall(t.client, {
      flow,
      campaignId: `sip-auth-407-${Date.now()}`,
      taskQueue: t.config.temporal.taskQueue,
      recipient: { id: 'p1', phone: '+385915557003' },
    });
    const result = await handle.result();
    expect(trailOf(result)).toEqual(['call:answered', 'hello:played']);
    const lines = sippLines(trunk407).slice(before);
    console.error(`sipp saw:\n  ${lines.join('\n  ')}`);
    expect(lines).toHaveLength(1);
    const header = /^PROXY-AUTH call \d+: Proxy-Authorization: (Digest .*)$/.exec(lines[0] ?? '')?.[1] ?? '';
    const p = digestParams(header);
    expect(p).toMatchObject({
      username: TRUNK_USER,
      realm: 'proxy.dialflow.test',
      uri: `sip:+385915557003@${trunk407.address}`,
    });
    expect(p.nonce).toMatch(/p\d+b7a9d3$/);
    // The trunk's check: the response is the digest of the right password (and not of another one).
    expect(p.response).toBe(
      digestResponse(
        { username: TRUNK_USER, realm: p.realm ?? '', nonce: p.nonce ?? '', uri: p.uri ?? '' },
        TRUNK_PASSWORD,
      ),
    );
    expect(p.response).not.toBe(
      digestResponse(
        { username: TRUNK_USER, realm: p.realm ?? '', nonce: p.nonce ?? '', uri: p.uri ?? '' },
        'not-the-password',
      ),
    );
    expect(sippMessages(trunk407)).toContain('SIP/2.0 407 Proxy Authentication Required');
    await waitFor('the BYE at the trunk', () => (/^BYE sip:/m.test(sippMessages(trunk407)) ? true : undefined));
  }, 90_000);
});
