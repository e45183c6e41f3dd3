// Real Temporal dev server + nats-server + the dialflow worker, bridge and simulator processes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { KvProfileStore } from '../../src/store/profiles.js';
import { CLI_BIN } from '../../src/dev/stack.js';
import { decodeHistory } from '../../src/codec/encryption.js';
import { payloadCodec } from '../../src/config/index.js';
import { startCall } from '../../src/client/calls.js';
import { parseFlow } from '../../src/flow/validate.js';
import { jetstreamManager } from '@nats-io/jetstream';
import { connectNats, DEADLETTER_STREAM } from '../../src/telephony/nats.js';
import type { NatsConnection } from '@nats-io/transport-node';
import { simulatorCallInSubject } from '../../src/workers/simulator.js';
import { parseFlowText } from '../../src/flow/document.js';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { CallResult } from '../../src/flow/interpreter.js';
import { FlowVersionConflictError, KvFlowStore } from '../../src/store/flows.js';
import { callStatusQuery } from '../../src/workflows/messages.js';
import { startEphemeralStack, type EphemeralStack } from '../../src/dev/ephemeral.js';

const flow = parseFlow(
  JSON.parse(readFileSync(new URL('../../examples/appointment-reminder.json', import.meta.url), 'utf8')),
);

// persona → the branches the call must take
const cases: Array<{ persona: Record<string, unknown>; trail: string[]; outcome: string }> = [
  {
    persona: { attempts: ['answered'], keys: ['1'] },
    outcome: 'answered',
    trail: ['call:answered', 'menu:played', 'ask:1', 'confirmed:played'],
  },
  {
    persona: { attempts: ['answered'], keys: ['2'] },
    outcome: 'answered',
    trail: ['call:answered', 'menu:played', 'ask:2', 'cancelled:played'],
  },
  {
    persona: { attempts: ['answered'], keys: ['9', '1'] },
    outcome: 'answered',
    trail: ['call:answered', 'menu:played', 'ask:noMatch', 'menu-again:played', 'ask-again:1', 'confirmed:played'],
  },
  {
    persona: { attempts: ['answered'], keys: ['2'], pressDuringPrompt: true },
    outcome: 'answered',
    trail: ['call:answered', 'menu:played', 'ask:2', 'cancelled:played'],
  },
  {
    persona: { attempts: ['answered'], hangUpAt: 'menu' },
    outcome: 'answered',
    trail: ['call:answered', 'menu:hungUp'],
  },
  {
    persona: { attempts: ['answered'], hangUpAt: 'ask' },
    outcome: 'answered',
    trail: ['call:answered', 'menu:played', 'ask:hungUp'],
  },
  { persona: { attempts: ['busy'] }, outcome: 'busy', trail: ['call:busy'] },
  { persona: { attempts: ['noAnswer'] }, outcome: 'noAnswer', trail: ['call:noAnswer'] },
  { persona: { attempts: ['declined'] }, outcome: 'declined', trail: ['call:declined'] },
  { persona: { attempts: ['unreachable'] }, outcome: 'unreachable', trail: ['call:callEnded'] },
];

let t: EphemeralStack;
beforeAll(async () => {
  t = await startEphemeralStack({ env: { DIALFLOW_HTTP_ALLOW: '127.0.0.1' } });
});
afterAll(async () => {
  await t?.stop();
});

describe('one call end to end on Temporal + NATS JetStream + simulator', () => {
  it('completes 20 calls with the expected branches, one dial each', async () => {
    await runMatrix(`it-${Date.now()}`);
  }, 120_000);

  it('duplicated, reordered and redelivered events give the same transcripts', async () => {
    // The simulator again, now with chaos: a share of events twice, swapped, or sent again later.
    await t.stack.kill('simulator', 'SIGTERM');
    await t.stack.startService('simulator-chaos', 'simulator', {
      ...t.env,
      ...t.nats.env('simulator'),
      DIALFLOW_SIM_CHAOS: JSON.stringify({
        duplicate: 0.5,
        reorder: 0.5,
        redeliver: 0.3,
        redeliverAfterMs: 30,
        seed: 7,
      }),
    });
    await runMatrix(`chaos-${Date.now()}`);
    const { chaos } = await t.simulatorStats();
    expect(chaos.duplicate).toBeGreaterThan(5);
    expect(chaos.reorder).toBeGreaterThan(5);
    expect(chaos.redeliver).toBeGreaterThan(5);
  }, 120_000);
});

/** Run the persona matrix twice over (20 calls); every call takes its branches, dialled once. */
async function runMatrix(campaignId: string): Promise<void> {
  const runs = Array.from({ length: 20 }, (_, i) => ({ id: `r${i}`, c: cases[i % cases.length]! }));
  const results = await Promise.all(
    runs.map(async ({ id, c }) => {
      const handle = await startCall(t.client, {
        flow,
        campaignId,
        taskQueue: t.config.temporal.taskQueue,
        recipient: { id, phone: `+38591555${String(1000 + Number(id.slice(1)))}`, firstName: 'Ana' },
        hints: { persona: c.persona },
      });
      return { id, c, result: await handle.result() };
    }),
  );
  for (const { id, c, result } of results) {
    expect({ id, trail: result.trail.map((x) => `${x.element}:${x.branch}`), outcome: result.outcome }).toEqual({
      id,
      trail: c.trail,
      outcome: c.outcome,
    });
    expect(result.dials).toBe(1);
  }
  // The simulator placed exactly one dial per call.
  const ours = await t.simulatorDials(`call:${campaignId}:`);
  expect(ours).toHaveLength(20);
  expect(ours.every(([, n]) => n === 1)).toBe(true);
}

describe('the bridge and bad events', () => {
  it('dead-letters malformed and unroutable events, acks them, and keeps delivering', async () => {
    const nc = await connectNats(t.natsUrl, 'it-poison');
    const jsm = await jetstreamManager(nc);
    const before = (await jsm.streams.info(DEADLETTER_STREAM)).state.last_seq;
    const js = jsm.jetstream();
    await js.publish('dialflow.events.sim.CALL_RINGING', 'not json');
    await js.publish(
      'dialflow.events.sim.CALL_RINGING',
      JSON.stringify({ id: 'x1', type: 'NOPE', callId: 'a~1', timestamp: 'now' }),
    );
    await js.publish(
      'dialflow.events.sim.CALL_RINGING',
      JSON.stringify({ id: 'x2', type: 'CALL_RINGING', callId: '~7', timestamp: 'now', properties: {} }),
    );
    // An event for a call that never existed is kept with its reason (a misrouted provider or an injection).
    await js.publish(
      'dialflow.events.sim.CALL_RINGING',
      JSON.stringify({
        id: 'x3',
        type: 'CALL_ESTABLISHED',
        callId: 'call:none:r1~1',
        timestamp: 'now',
        properties: {},
      }),
    );
    // An event over the size limit is never parsed or signalled.
    await js.publish(
      'dialflow.events.sim.CALL_RINGING',
      JSON.stringify({
        id: 'x4',
        type: 'CALL_RINGING',
        callId: 'call:none:r2~1',
        timestamp: 'now',
        properties: { junk: 'x'.repeat(70_000) },
      }),
    );
    // Another provider's subjects: this deployment calls through the simulator, so a process that
    // may publish as `sip` cannot steer its calls.
    await js.publish(
      'dialflow.events.sip.DTMF_CAPTURED',
      JSON.stringify({
        id: 'x5',
        type: 'DTMF_CAPTURED',
        callId: 'call:none:r3~1',
        timestamp: 'now',
        properties: { dtmf: '1' },
      }),
    );
    let after = before;
    for (let i = 0; i < 50 && after < before + 6; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = (await jsm.streams.info(DEADLETTER_STREAM)).state.last_seq;
    }
    expect(after - before).toBe(6);
    const reasons: string[] = [];
    for (let seq = before + 1; seq <= after; seq++) {
      const stored = await jsm.streams.getMessage(DEADLETTER_STREAM, { seq });
      const letter = stored?.json<{ reason: string; bytes: number; data: string }>();
      if (letter) reasons.push(letter.reason);
      if (letter?.reason === 'tooLarge') expect(letter.data.length).toBeLessThan(2000);
    }
    expect(reasons.sort()).toEqual([
      'invalidEvent',
      'malformedJson',
      'tooLarge',
      'unknownCall',
      'unroutable',
      'wrongProvider',
    ]);
    // Nothing is left unacknowledged, and calls still complete afterwards.
    const handle = await startCall(t.client, {
      flow,
      campaignId: `after-poison-${Date.now()}`,
      taskQueue: t.config.temporal.taskQueue,
      recipient: { id: 'p1', phone: '+385915559999' },
      hints: { persona: { attempts: ['busy'] } },
    });
    expect((await handle.result()).outcome).toBe('busy');
    // Acks are asynchronous: wait (bounded) for the consumer to show none pending.
    let pending = -1;
    for (let i = 0; i < 50 && pending !== 0; i++) {
      pending = (await jsm.consumers.info('DIALFLOW_EVENTS', 'dialflow-bridge')).num_ack_pending;
      if (pending !== 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(pending).toBe(0);
    await nc.close();
  }, 60_000);
});

describe('the bridge and a flood of events at one call', () => {
  it('stops signalling a call past its share and dead-letters the rest; the call lives on', async () => {
    // Busy, then a 30-minute retry back-off: the workflow sleeps while the flood arrives.
    const sleeping = parseFlow({
      id: 'busy-then-retry',
      version: 1,
      start: 'call',
      elements: [
        {
          id: 'call',
          type: 'startOutgoingCall',
          from: '+14155550100',
          retry: { minMinutes: 30, maxMinutes: 30, count: 1 },
          next: { answered: 'end', busy: 'end' },
        },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const handle = await startCall(t.client, {
      flow: sleeping,
      campaignId: `flood-${Date.now()}`,
      taskQueue: t.config.temporal.taskQueue,
      recipient: { id: 'f1', phone: '+385915558888' },
      hints: { persona: { attempts: ['busy'] } },
    });
    const callId = `${handle.workflowId}~1`;
    for (let i = 0; i < 100 && (await handle.query(callStatusQuery)).dials < 1; i++)
      await new Promise((r) => setTimeout(r, 100));
    const nc = await connectNats(t.natsUrl, 'it-flood');
    const jsm = await jetstreamManager(nc);
    const js = jsm.jetstream();
    const before = (await jsm.streams.info(DEADLETTER_STREAM)).state.last_seq;
    // 300 events of 30 KB: 8 MB per call pass, the rest is dead-lettered.
    const junk = 'x'.repeat(30_000);
    for (let i = 0; i < 300; i++)
      await js.publish(
        'dialflow.events.sim.CALL_RINGING',
        JSON.stringify({
          id: `flood-${i}`,
          type: 'CALL_RECORDING_READY',
          callId,
          timestamp: new Date().toISOString(),
          properties: { junk },
        }),
      );
    let flooded = 0;
    for (let i = 0; i < 300 && flooded < 20; i++) {
      await new Promise((r) => setTimeout(r, 200));
      flooded = (await jsm.streams.info(DEADLETTER_STREAM)).state.last_seq - before;
    }
    expect(flooded).toBeGreaterThanOrEqual(20);
    const desc = await handle.describe();
    expect(desc.status.name).toBe('RUNNING');
    expect(desc.raw.workflowExecutionInfo?.historySizeBytes?.toNumber() ?? 0).toBeLessThan(10 * 2 ** 20);
    await handle.terminate('flood test done');
    await nc.close();
  }, 120_000);
});

describe('flow versions', () => {
  const version = (v: number, prompt: string) =>
    parseFlow({
      id: 'versioned',
      version: v,
      start: 'wait',
      elements: [
        { id: 'wait', type: 'pause', duration: 'PT2S', next: 'call' },
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: `hello-v${v}` } },
        { id: `hello-v${v}`, type: 'play', tts: { text: prompt }, next: { played: 'end' } },
        { id: 'end', type: 'hangUp' },
      ],
    });

  it('publishing a new version never changes a running call; published versions are immutable', async () => {
    const nc = await connectNats(t.natsUrl, 'it-flows');
    const store = await KvFlowStore.open(nc);
    expect(await store.publish(version(1, 'Version one'))).toEqual({ id: 'versioned', version: 1, created: true });
    const campaignId = `versions-${Date.now()}`;
    const v1 = await store.get('versioned');
    const a = await startCall(t.client, {
      flow: v1!,
      campaignId,
      taskQueue: t.config.temporal.taskQueue,
      recipient: { id: 'a', phone: '+385915550101' },
      hints: { persona: { attempts: ['answered'] } },
    });
    // While call A sleeps in its first element, version 2 is published.
    await store.publish(version(2, 'Version two'));
    expect(await store.versions('versioned')).toEqual([1, 2]);
    expect((await store.get('versioned'))?.version).toBe(2);
    expect((await a.query(callStatusQuery)).flowVersion).toBe(1);
    const b = await startCall(t.client, {
      flow: (await store.get('versioned'))!,
      campaignId,
      taskQueue: t.config.temporal.taskQueue,
      recipient: { id: 'b', phone: '+385915550102' },
      hints: { persona: { attempts: ['answered'] } },
    });
    const [ra, rb] = await Promise.all([a.result(), b.result()]);
    expect(ra.visited).toContain('hello-v1');
    expect(rb.visited).toContain('hello-v2');
    expect((await b.query(callStatusQuery)).flowVersion).toBe(2);
    // The same content again is a no-op; different content under a published version is refused.
    expect((await store.publish(version(1, 'Version one'))).created).toBe(false);
    await expect(store.publish(version(1, 'Changed!'))).rejects.toBeInstanceOf(FlowVersionConflictError);
    expect((await store.list()).find((f) => f.id === 'versioned')).toEqual({ id: 'versioned', latest: 2 });
    await nc.close();
  }, 60_000);
});

/** A simulated person calls `to`; returns the provider's call id. */
async function simulateCallIn(nc: NatsConnection, from: string, to: string, persona: unknown): Promise<string> {
  return (
    await nc.request(simulatorCallInSubject(t.config.provider), JSON.stringify({ from, to, persona }), {
      timeout: 2000,
    })
  ).json<{ callId: string }>().callId;
}

/** The result of the inbound workflow of a call, once the bridge has started it and it has ended. */
async function inboundResult(callId: string): Promise<CallResult | undefined> {
  const handle = t.client.workflow.getHandle(`inbound:${callId}`);
  for (let i = 0; i < 100; i++) {
    const result = await handle.result().catch((err: unknown) => {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    });
    if (result) return result as CallResult;
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}

describe('inbound calls', () => {
  it('CALL_RECEIVED for a published number starts the inbound workflow; unknown numbers are rejected', async () => {
    const nc = await connectNats(t.natsUrl, 'it-inbound');
    const store = await KvFlowStore.open(nc);
    const text = readFileSync(new URL('../../examples/inbound-language-menu.yaml', import.meta.url), 'utf8');
    const parsed = parseFlowText(text, 'inbound-language-menu.yaml');
    if (!parsed.ok) throw new Error(parsed.message);
    await store.publish(parseFlow(parsed.doc));
    const callIn = (to: string, persona: unknown) => simulateCallIn(nc, '+385915550777', to, persona);

    const callId = await callIn('+14155550111', { keys: ['2'] });
    const result = await inboundResult(callId);
    expect(result?.outcome).toBe('inbound');
    expect(result?.trail.map((x) => `${x.element}:${x.branch}`)).toEqual([
      'incoming:next',
      'menu:played',
      'choose:2',
      'spanish:played',
    ]);

    const unknown = await callIn('+19995550000', {});
    await new Promise((r) => setTimeout(r, 1000));
    await expect(t.client.workflow.getHandle(`inbound:${unknown}`).describe()).rejects.toBeInstanceOf(
      WorkflowNotFoundError,
    );
    await nc.close();
  }, 60_000);
});

describe('recordings', () => {
  it('a voicemail and the whole call are stored; the flow gets the recording; the CLI lists and fetches them', async () => {
    const recFlow = parseFlow({
      id: 'rec',
      version: 1,
      start: 'call',
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', recordCall: true, next: { answered: 'vm' } },
        {
          id: 'vm',
          type: 'recordVoicemail',
          name: 'feedback-{{recipient.id}}',
          maxDurationSeconds: 30,
          saveTo: 'message',
          next: { recorded: 'end' },
        },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const campaignId = `rec-${Date.now()}`;
    const handle = await startCall(t.client, {
      flow: recFlow,
      campaignId,
      taskQueue: t.config.temporal.taskQueue,
      recipient: { id: 'r1', phone: '+385915551234' },
      hints: { persona: { speakSeconds: 3 } },
    });
    const result = await handle.result();
    expect(result.trail.map((x) => `${x.element}:${x.branch}`)).toEqual(['call:answered', 'vm:recorded']);
    const voicemail = result.recordings[0];
    expect(voicemail).toMatchObject({ name: 'feedback-r1' });

    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [CLI_BIN, 'recordings', ...args, '--nats', t.natsUrl], {
        encoding: 'buffer',
        timeout: 30_000,
        env: { ...process.env, ...t.nats.env('cli') },
      });
    // The whole-call recording is stored after the call ended: wait for it.
    let listed: Array<{ id: string; name: string; durationMs: number; size: number }> = [];
    for (let i = 0; i < 50 && listed.length < 2; i++) {
      const r = cli('list', '--workflow', handle.workflowId, '--json');
      expect(r.status, r.stderr.toString()).toBe(0);
      listed = JSON.parse(r.stdout.toString()) as typeof listed;
      if (listed.length < 2) await new Promise((res) => setTimeout(res, 100));
    }
    expect(listed.map((r) => r.name).sort()).toEqual(['call', 'feedback-r1']);
    const vm = listed.find((r) => r.name === 'feedback-r1');
    expect(vm?.id).toBe(voicemail?.recordingId);
    // 3 s spoken + 5 s of silence before the recording stops, 8 kHz 16-bit mono.
    expect(vm?.durationMs).toBe(8000);
    expect(vm?.size).toBe(44 + 8 * 8000 * 2);

    const out = join(t.dataDir, 'vm.wav');
    const got = cli('get', vm?.id ?? '', '-o', out);
    expect(got.status, got.stderr.toString()).toBe(0);
    const wav = readFileSync(out);
    expect(wav.subarray(0, 4).toString('ascii')).toBe('RIFF');
    expect(wav.subarray(8, 12).toString('ascii')).toBe('WAVE');
    expect(wav.byteLength).toBe(vm?.size);
    const missing = cli('get', 'no-such-recording');
    expect(missing.status).toBe(1);
    expect(missing.stderr.toString()).toMatch(/no recording "no-such-recording"/);
  }, 60_000);
});

describe('masking in workflow history', () => {
  // Eight digits, not four: sealed records are base64 text, and megabytes of it hold any given four
  // characters by chance (1 in 64^4 per position; one CI run found '4321' in the simulator's
  // outbox file that way). Eight characters make that 1 in 64^8.
  const PIN = '80417352';
  it('masked digits are encrypted in history: not in any raw payload, present once decoded with the key', async () => {
    const masked = parseFlow(JSON.parse(readFileSync(new URL('../fixtures/masked-pin.json', import.meta.url), 'utf8')));
    const handle = await startCall(t.client, {
      flow: masked,
      campaignId: `mask-${Date.now()}`,
      taskQueue: t.config.temporal.taskQueue,
      recipient: { id: 'm1', phone: '+385915557777' },
      hints: { persona: { keys: [PIN] } },
    });
    const result = await handle.result();
    expect(result.trail.map((x) => `${x.element}:${x.branch}`)).toEqual(['call:answered', 'ask:response', 'ok:played']);
    expect(JSON.stringify(result)).not.toContain(PIN);

    // The history as Temporal stores it, fetched without the codec.
    const raw = await t.connection.workflowService.getWorkflowExecutionHistory({
      namespace: t.config.temporal.namespace,
      execution: { workflowId: handle.workflowId },
    });
    type RawPayload = { metadata?: Record<string, Uint8Array> | null; data?: Uint8Array | null };
    // Markers are written by the SDK itself: a patch marker (`patched()`, core v1) holds only the
    // patch's name; a local activity's marker holds the SDK's own record of it (type, attempt,
    // times) in `data`, outside the codec, and the activity's result in `result`, through it.
    const payloadsOf = (root: unknown, skip = 'markerRecordedEventAttributes'): RawPayload[] => {
      const found: RawPayload[] = [];
      const collect = (node: unknown): void => {
        if (!node || typeof node !== 'object' || node instanceof Uint8Array) return;
        for (const [k, v] of Object.entries(node)) {
          if (k === skip) continue;
          if (k === 'payloads' && Array.isArray(v)) found.push(...(v as RawPayload[]));
          else collect(v);
        }
      };
      collect(root);
      return found;
    };
    const text = (p: RawPayload) => Buffer.from(p.data ?? new Uint8Array()).toString('utf8');
    let localActivityMarkers = 0;
    for (const e of raw.history?.events ?? []) {
      const marker = e.markerRecordedEventAttributes;
      if (!marker) continue;
      if (marker.markerName === 'core_local_activity') {
        localActivityMarkers += 1;
        for (const p of payloadsOf(marker.details?.data, '')) expect(text(p)).toMatch(/"activity_type":"\w+"/);
        for (const p of payloadsOf(marker.details?.result, ''))
          expect(Buffer.from(p.metadata?.encoding ?? new Uint8Array()).toString()).toBe('binary/encrypted');
      } else {
        for (const p of payloadsOf(marker, ''))
          expect(text(p)).toMatch(/^\{"id":"[a-z0-9-]+","deprecated":(true|false)\}$/);
      }
    }
    expect(localActivityMarkers).toBeGreaterThan(3);
    // The start's input, the signals and the result (commands are markers, checked above).
    const payloads = payloadsOf(raw.history);
    expect(payloads.length).toBeGreaterThan(4);
    for (const p of payloads) {
      expect(Buffer.from(p.metadata?.encoding ?? new Uint8Array()).toString()).toBe('binary/encrypted');
      expect(Buffer.from(p.data ?? new Uint8Array()).toString('latin1')).not.toContain(PIN);
    }
    expect(JSON.stringify(raw.history)).not.toContain(PIN);
    // With the key, the DTMF signal is readable: the test would notice digits stored elsewhere.
    const decoded = payloadsOf(await decodeHistory(raw.history, payloadCodec(t.config)));
    expect(
      decoded.filter((p) =>
        Buffer.from(p.data ?? new Uint8Array())
          .toString('utf8')
          .includes(`"dtmf":"${PIN}"`),
      ),
    ).not.toHaveLength(0);

    // Nor in the JetStream files on disk (events are kept for a day, dead letters for two weeks):
    // the provider sealed the event's properties; the DTMF event is there, its digits are not.
    const nc = await connectNats(t.natsUrl, 'it-mask');
    const jsm = await jetstreamManager(nc);
    const events = await jsm.streams.info('DIALFLOW_EVENTS');
    // Distinct events: the chaos simulator of an earlier test may have sent deliberate copies.
    const sealedDtmf = new Set<string>();
    for (let seq = events.state.first_seq; seq <= events.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage('DIALFLOW_EVENTS', { seq }).catch(() => null);
      // Other tests put poison in the stream on purpose; only this call's events matter here.
      if (!m?.string().includes(handle.workflowId)) continue;
      const ev = m.json<{ id: string; type: string; callId: string; properties: Record<string, unknown> }>();
      if (ev.type === 'DTMF_CAPTURED' && ev.callId.startsWith(handle.workflowId)) {
        sealedDtmf.add(ev.id);
        expect(Object.keys(ev.properties)).toEqual(['$sealed']);
      }
    }
    expect(sealedDtmf.size).toBe(1);
    await nc.flush();
    await nc.close();
    const files = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
        d.isDirectory() ? files(join(dir, d.name)) : [join(dir, d.name)],
      );
    const onDisk = files(join(t.dataDir, 'nats')).filter((f) => readFileSync(f).includes(PIN));
    expect(onDisk).toEqual([]);
  }, 60_000);
});

describe('the other elements on the real stack', () => {
  it('inbound order status: masked account, HTTP lookup, condition, forward to the profile’s manager (busy), sorry', async () => {
    // The order service the flow calls (the example's URL, pointed at a local server).
    const requests: string[] = [];
    const server = createServer((req, res) => {
      requests.push(req.url ?? '');
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ status: 'shipped', eta: 'Friday' }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const nc = await connectNats(t.natsUrl, 'it-elements');
    try {
      const text = readFileSync(new URL('../../examples/inbound-order-status.yaml', import.meta.url), 'utf8')
        .replace('https://orders.example.com', `http://127.0.0.1:${port}`)
        .replace('"+14155550123"', '"+14155550124"');
      const parsed = parseFlowText(text, 'order-status.yaml');
      if (!parsed.ok) throw new Error(parsed.message);
      await (await KvFlowStore.open(nc)).publish(parseFlow({ ...(parsed.doc as object), id: 'order-status-it' }));
      const caller = '+385915550888';
      await (await KvProfileStore.open(nc)).update(caller, { accountManager: '+385915559000' });
      const persona = { keys: ['12345678#', '0'], forward: 'busy' };
      const callId = await simulateCallIn(nc, caller, '+14155550124', persona);
      const result = await inboundResult(callId);
      expect(
        result?.trail.map((x) => `${x.element}:${x.branch}${x.input !== undefined ? `(${x.input})` : ''}`),
      ).toEqual([
        'incoming:next',
        'welcome:played',
        'account:noMatch(xxxx)',
        'lookup:next',
        'found:conditions[0]',
        'read-status:played',
        'more:0(0)',
        'agent:busy',
        'sorry:played',
      ]);
      expect(result?.variables).toMatchObject({ status: 'shipped', eta: 'Friday' });
      expect(result?.variables.account).not.toContain('1234');
      expect(requests).toEqual(['/api/orders?account=12345678']);
      expect(JSON.stringify(result)).not.toContain('12345678');
    } finally {
      await nc.close();
      server.close();
    }
  }, 60_000);

  it('outbound: updateProfile, setVariable, condition and sendSms after a choice', async () => {
    const actions = parseFlow({
      id: 'actions',
      version: 1,
      start: 'call',
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'ask' } },
        {
          id: 'ask',
          type: 'collect',
          maxDigits: 1,
          saveTo: 'choice',
          responses: { '1': 'save' },
          next: { noMatch: 'bye' },
        },
        { id: 'save', type: 'updateProfile', attributes: { optedIn: 'vars.choice = "1"' }, next: 'count' },
        {
          id: 'count',
          type: 'setVariable',
          variable: 'visits',
          value: '($exists(profile.visits) ? profile.visits : 0) + 1',
          next: 'which',
        },
        { id: 'which', type: 'condition', conditions: [{ if: 'vars.visits > 1', next: 'sms-again' }], else: 'sms' },
        { id: 'sms', type: 'sendSms', text: 'Welcome {{recipient.firstName}}, you are in.', next: 'bye' },
        { id: 'sms-again', type: 'sendSms', text: 'Welcome back {{recipient.firstName}}.', next: 'bye' },
        { id: 'bye', type: 'hangUp' },
      ],
    });
    const nc = await connectNats(t.natsUrl, 'it-actions');
    try {
      await (await KvProfileStore.open(nc)).update('act1', { visits: 3 });
      const handle = await startCall(t.client, {
        flow: actions,
        campaignId: `act-${Date.now()}`,
        taskQueue: t.config.temporal.taskQueue,
        recipient: { id: 'act1', phone: '+385915556001', firstName: 'Ana' },
        hints: { persona: { keys: ['1'] } },
      });
      const result = await handle.result();
      expect(result.trail.map((x) => `${x.element}:${x.branch}`)).toEqual([
        'call:answered',
        'ask:1',
        'save:next',
        'count:next',
        'which:conditions[0]',
        'sms-again:next',
      ]);
      expect(result.variables).toMatchObject({ choice: '1', visits: 4 });
      expect(await (await KvProfileStore.open(nc)).get('act1')).toMatchObject({ optedIn: true, visits: 3 });
      const stats = await t.simulatorStats();
      expect(stats.sms).toBeGreaterThanOrEqual(1);
    } finally {
      await nc.close();
    }
  }, 60_000);
});
