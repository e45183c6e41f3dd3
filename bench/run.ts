// Benchmarks: JSON on stdout, a human summary on stderr. `npm run bench [-- calls|campaign|history]`.
//   calls (default): everything in one run on one dev server (SQLite WAL): (a) the appointment
//          reminder through the whole stack, (b) a bare-Temporal baseline with the call's history
//          shape (checked: the benchmark fails when the shapes differ), (c) their ratio — (a) and
//          (b) in interleaved rounds (a, b, a, b …), each figure the median of the rounds with
//          their min and max —, (d) event → signal latency under that load and at a steady half
//          of it, (e) worker RSS per cached call, and (f) history events and workflow tasks per
//          call (history).
//   history: only (f): one call each with demo latencies, placed by a campaign, and instant.
// The calls benchmark runs its own worker (bench/worker.ts: the production worker plus the
// baseline workflow and its local activity, with --expose-gc) and the baseline's signaller
// (bench/baseline-activities.ts); the stack's bridge and simulator are the production services.
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import type { WorkflowHandle } from '@temporalio/client';
import { startCall } from '../src/client/calls.js';
import { startEphemeralStack } from '../src/dev/ephemeral.js';
import { parseFlow } from '../src/flow/validate.js';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { connectNats } from '../src/telephony/nats.js';
import { NatsCampaignStore } from '../src/store/campaigns.js';
import { stageRecipients } from '../src/campaign/recipients.js';
import { startCampaign } from '../src/client/campaigns.js';
import { campaignStatusQuery } from '../src/workflows/messages.js';
import { costOf, historyPerCall, type HistoryCost } from './history-per-call.js';
import { startBenchWorker } from './start-worker.js';
import { startBaselineSignaller } from './baseline-activities.js';
import type { BaselineInput, baselineWorkflow } from './baseline-workflow.js';

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Bucket counts of a Prometheus histogram, from a /metrics text. */
async function histogram(url: string, name: string): Promise<Array<[le: number, count: number]>> {
  const text = await (await fetch(url)).text();
  const out: Array<[number, number]> = [];
  for (const m of text.matchAll(new RegExp(`^${name}_bucket\\{[^}]*le="([^"]+)"[^}]*\\} (\\S+)$`, 'gm')))
    out.push([m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])]);
  return out;
}

/** A quantile from the difference of two cumulative histograms, interpolated inside the bucket. */
function quantile(before: Array<[number, number]>, after: Array<[number, number]>, q: number): number {
  const delta = after.map(([le, c], i) => [le, c - (before[i]?.[1] ?? 0)] as [number, number]);
  const total = delta.at(-1)?.[1] ?? 0;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of delta) {
    if (count >= rank)
      return le === Infinity ? prevLe : prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(1, count - prevCount);
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

const round = (v: number, digits: number) => Number(v.toFixed(digits));

export interface Spread {
  median: number;
  min: number;
  max: number;
}

/** Median (of the middle two for an even count), min and max of the rounds. */
export function spread(values: number[], digits: number): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  const median = sorted.length % 2 ? sorted[Math.floor(mid)]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median: round(median, digits), min: round(sorted[0]!, digits), max: round(sorted.at(-1)!, digits) };
}

/**
 * Interleaved rounds of each kind: a single round moves with whatever else the two shared cores
 * do at that moment (0.66–0.88 ratios in single runs), and the best round flatters.
 */
const MIN_ROUNDS = 5;

const ANSWER_AND_CONFIRM = { persona: { attempts: ['answered'], keys: ['1'] } };
const EXPECTED_BRANCHES = 'answered,played,1,played';
/**
 * The baseline: the Temporal work of that call (`npm run bench -- history`: 4 workflow tasks, 5
 * local-activity markers, 3 signals, 1 timer), with payloads of about its sizes in this benchmark
 * (JSON before the codec, read from a call's history: input 2.9 kB; the gate's input ~42 bytes;
 * the commands ~330, ~570 and ~430 bytes, each returned as sent; the record ~460 bytes; signals of
 * two events, ~510 bytes; the result ~345 bytes). Checked against the call's history by sameShape.
 */
const BASELINE_INPUT: BaselineInput = {
  padding: 'x'.repeat(2_630),
  steps: [
    // Workflow task 1: the compliance gate ('ok'), the dial; the watchdog timer (the ring timeout).
    { bytes: 0, reply: 'ok', signalled: false },
    // → CALL_ESTABLISHED (held) + MACHINE_DETECTION_FINISHED: workflow task 2, the menu's say with its collect.
    { bytes: 288, reply: 'command', signalled: true },
    // → SAY_FINISHED (held) + DTMF_CAPTURED: workflow task 3, the last say with its hang-up.
    { bytes: 523, reply: 'command', signalled: true },
    // → SAY_FINISHED (held) + CALL_FINISHED: workflow task 4, the call record, completion.
    { bytes: 388, reply: 'command', signalled: true },
    { bytes: 415, reply: 'nothing', signalled: false },
  ],
  resultBytes: 308,
  watchdogMs: 180_000,
};

/** Events by type, as one string. */
const shapeKey = (h: HistoryCost) => JSON.stringify(Object.entries(h.byType).sort(([a], [b]) => a.localeCompare(b)));

/** The most frequent shape (events by type) of a sample, with how many of the sample had it. */
function typicalShape(shapes: HistoryCost[]): HistoryCost & { of: string } {
  const counts = new Map<string, number>();
  for (const h of shapes) counts.set(shapeKey(h), (counts.get(shapeKey(h)) ?? 0) + 1);
  const [top, n] = [...counts].sort((a, b) => b[1] - a[1])[0]!;
  const same = shapes.filter((h) => shapeKey(h) === top);
  const bytes = same.map((h) => h.payloadBytes).sort((a, b) => a - b);
  return { ...same[0]!, payloadBytes: bytes[Math.floor(bytes.length / 2)]!, of: `${n}/${shapes.length}` };
}

/**
 * Fails the benchmark unless the baseline's histories have the measured calls' shape: the same
 * events of each type (so the same count and the same workflow tasks). Returns both typical shapes.
 */
async function sameShape(calls: WorkflowHandle[], baselines: WorkflowHandle[], when: string) {
  const call = typicalShape(await Promise.all(calls.map(costOf)));
  const baseline = typicalShape(await Promise.all(baselines.map(costOf)));
  if (
    call.events !== baseline.events ||
    call.workflowTasks !== baseline.workflowTasks ||
    shapeKey(call) !== shapeKey(baseline)
  )
    throw new Error(
      `the baseline does not do the call's Temporal work (${when}): the call has ${call.events} history events and ${call.workflowTasks} workflow tasks (${call.of} of the sample: ${JSON.stringify(call.byType)}), the baseline ${baseline.events} and ${baseline.workflowTasks} (${baseline.of}: ${JSON.stringify(baseline.byType)}). Make bench/baseline-workflow.ts and BASELINE_INPUT follow src/workflows/call.ts again.`,
    );
  const summary = (h: typeof call) => ({
    events: h.events,
    workflowTasks: h.workflowTasks,
    payloadBytes: h.payloadBytes,
    typicalOf: h.of,
  });
  return { e2eCall: summary(call), baselineWorkflow: summary(baseline), byType: call.byType };
}

/** Every n-th handle, about 20 of them. */
const sampleOf = <T>(handles: T[]) => handles.filter((_, i) => i % Math.max(1, Math.floor(handles.length / 20)) === 0);

async function benchCalls(calls: number, cached: number, rounds: number) {
  const flow = parseFlow(
    JSON.parse(readFileSync(new URL('../examples/appointment-reminder.json', import.meta.url), 'utf8')),
  );
  const maxCached = { DIALFLOW_MAX_CACHED_WORKFLOWS: String(cached + calls + 100) };
  const s = await startEphemeralStack({
    sqlite: true,
    simLatency: 'instant',
    metrics: true,
    services: ['bridge', 'simulator'],
    env: maxCached,
  });
  const taskQueue = s.config.temporal.taskQueue;
  const bridgeMetrics = s.services.bridge!.metricsUrl!;
  let worker: Awaited<ReturnType<typeof startBenchWorker>> | undefined;
  let signaller: Awaited<ReturnType<typeof startBaselineSignaller>> | undefined;
  try {
    signaller = await startBaselineSignaller(s.env, join(s.dataDir, 'baseline-signaller.log'));
    const signallerFailed = signaller.failed;
    worker = await startBenchWorker(s, { ...maxCached, BENCH_BASELINE_SIGNALLER_URL: signaller.url });
    const workerPid = worker.pid;
    const run = async (campaignId: string, n: number) => {
      const t0 = performance.now();
      const handles = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          startCall(s.client, {
            flow,
            campaignId,
            taskQueue,
            recipient: { id: `r${i}`, phone: `+3859${String(10_000_000 + i)}`, firstName: 'Ana' },
            hints: ANSWER_AND_CONFIRM,
          }),
        ),
      );
      const results = await Promise.all(handles.map((h) => h.result()));
      const seconds = (performance.now() - t0) / 1000;
      const wrong = results.filter((r) => r.trail.map((t) => t.branch).join(',') !== EXPECTED_BRANCHES).length;
      if (wrong > 0) throw new Error(`${wrong} calls of ${campaignId} took unexpected branches`);
      return { seconds, handles };
    };
    const baseline = async (prefix: string, n: number) => {
      const t0 = performance.now();
      const handles = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          s.client.workflow.start<typeof baselineWorkflow>('baselineWorkflow', {
            taskQueue,
            workflowId: `${prefix}-${i}`,
            args: [BASELINE_INPUT],
          }),
        ),
      );
      // A signal the signaller could not send would leave its workflow waiting: fail instead.
      const results = await Promise.race([Promise.all(handles.map((h) => h.result())), signallerFailed]);
      const seconds = (performance.now() - t0) / 1000;
      const signals = BASELINE_INPUT.steps.filter((step) => step.signalled).length;
      const wrong = results.filter((r) => r.signals !== signals || r.events !== 2 * signals).length;
      if (wrong > 0)
        throw new Error(`${wrong} baseline workflows of ${prefix} did not receive ${signals} signals of 2 events each`);
      return { seconds, handles };
    };
    const warmup = await run('warmup', 20);
    const warmupBaseline = await baseline(`warmup-baseline-${Date.now()}`, 20);
    // Before the rounds, so that a baseline that no longer does the call's work fails at once.
    await sameShape(warmup.handles, warmupBaseline.handles, 'warm-up');

    // (a) and (b), alternating on the same worker and server, so that neither gets a warmer or a
    // quieter machine; (d) at saturation over the end-to-end rounds (the baseline's signals go
    // through its own signaller, not the bridge, so its rounds add nothing to the bridge's histograms).
    const before = await histogram(bridgeMetrics, 'dialflow_event_to_signal_seconds');
    const rpcBefore = await histogram(bridgeMetrics, 'dialflow_bridge_signal_rpc_seconds');
    const e2eSeconds: number[] = [];
    const baselineSeconds: number[] = [];
    let benchHistory: Awaited<ReturnType<typeof sameShape>> | undefined;
    for (let r = 0; r < rounds; r++) {
      const e2e = await run(`bench${r}-${Date.now()}`, calls);
      e2eSeconds.push(e2e.seconds);
      const b = await baseline(`baseline${r}-${Date.now()}`, calls);
      baselineSeconds.push(b.seconds);
      // The histories of the first round's calls and baseline workflows, under load (read after the
      // baseline round, so that reading them does not slow it down).
      if (r === 0) benchHistory = await sameShape(sampleOf(e2e.handles), sampleOf(b.handles), 'under load');
      process.stderr.write(
        `round ${r + 1}/${rounds}: end to end ${(calls / e2eSeconds[r]!).toFixed(1)} calls/s, baseline ${(calls / baselineSeconds[r]!).toFixed(1)} workflows/s\n`,
      );
    }
    const after = await histogram(bridgeMetrics, 'dialflow_event_to_signal_seconds');
    const rpcAfter = await histogram(bridgeMetrics, 'dialflow_bridge_signal_rpc_seconds');
    const e2eRates = e2eSeconds.map((sec) => calls / sec);
    const baselineRates = baselineSeconds.map((sec) => calls / sec);
    // The ratio of each round's pair, run back to back: the pairs share the machine's state.
    const ratios = e2eRates.map((e, i) => e / baselineRates[i]!);
    const e2eCallsPerSec = spread(e2eRates, 1);

    // (d) at a steady offered load of half the measured capacity (the burst above saturates the
    // server, whose queueing then dominates the latency).
    const steadyRate = Math.max(1, Math.floor(e2eCallsPerSec.median / 2));
    const steadyCalls = steadyRate * 20;
    const beforeSteady = await histogram(bridgeMetrics, 'dialflow_event_to_signal_seconds');
    const rpcBeforeSteady = await histogram(bridgeMetrics, 'dialflow_bridge_signal_rpc_seconds');
    const steadyId = `steady-${Date.now()}`;
    const steady: Array<Promise<unknown>> = [];
    for (let i = 0; i < steadyCalls; i++) {
      steady.push(
        startCall(s.client, {
          flow,
          campaignId: steadyId,
          taskQueue,
          recipient: { id: `s${i}`, phone: `+3859${String(30_000_000 + i)}`, firstName: 'Ana' },
          hints: ANSWER_AND_CONFIRM,
        }).then((h) => h.result()),
      );
      await new Promise((r) => setTimeout(r, 1000 / steadyRate));
    }
    await Promise.all(steady);
    const afterSteady = await histogram(bridgeMetrics, 'dialflow_event_to_signal_seconds');
    const rpcAfterSteady = await histogram(bridgeMetrics, 'dialflow_bridge_signal_rpc_seconds');

    // (e) memory per cached call: busy calls waiting an hour for their retry stay in the worker's cache.
    const parked = parseFlow({
      id: 'parked',
      version: 1,
      start: 'call',
      elements: [
        {
          id: 'call',
          type: 'startOutgoingCall',
          from: '+14155550100',
          retry: { minMinutes: 60, maxMinutes: 60, count: 1 },
          next: { busy: null },
        },
      ],
    });
    const benchWorker = worker;
    const gc = async () => {
      const { heapUsed } = await benchWorker.gc();
      await new Promise((r) => setTimeout(r, 500));
      return { rss: rssMb(workerPid), heapMb: heapUsed / 2 ** 20 };
    };
    await new Promise((r) => setTimeout(r, 2000));
    const memBefore = await gc();
    const rssBefore = memBefore.rss;
    const campaignId = `cached-${Date.now()}`;
    await Promise.all(
      Array.from({ length: cached }, (_, i) =>
        startCall(s.client, {
          flow: parked,
          campaignId,
          taskQueue,
          recipient: { id: `c${i}`, phone: `+3859${String(20_000_000 + i)}` },
          hints: { persona: { attempts: ['busy'] } },
        }),
      ),
    );
    for (let i = 0; i < 600 && (await s.simulatorDials(`call:${campaignId}:`)).length < cached; i++)
      await new Promise((r) => setTimeout(r, 250));
    await new Promise((r) => setTimeout(r, 3000));
    const memAfter = await gc();
    const rssAfter = memAfter.rss;
    const cacheSize = /^temporal_sticky_cache_size\{[^}]*\} (\S+)$/m.exec(
      await (await fetch(worker.metricsUrl)).text(),
    )?.[1];

    const ms = (v: number) => round(v * 1000, 1);
    return {
      calls,
      rounds,
      e2eCallsPerSec,
      baselinePerSec: spread(baselineRates, 1),
      ratio: spread(ratios, 2),
      perRound: {
        e2eCallsPerSec: e2eRates.map((v) => round(v, 1)),
        baselinePerSec: baselineRates.map((v) => round(v, 1)),
        ratio: ratios.map((v) => round(v, 2)),
      },
      eventToSignalMs: {
        p50: ms(quantile(beforeSteady, afterSteady, 0.5)),
        p99: ms(quantile(beforeSteady, afterSteady, 0.99)),
        events: (afterSteady.at(-1)?.[1] ?? 0) - (beforeSteady.at(-1)?.[1] ?? 0),
        callsPerSec: steadyRate,
      },
      eventToSignalMsAtSaturation: {
        p50: ms(quantile(before, after, 0.5)),
        p99: ms(quantile(before, after, 0.99)),
        events: (after.at(-1)?.[1] ?? 0) - (before.at(-1)?.[1] ?? 0),
      },
      // The signal RPC alone: how much of the above is Temporal's.
      signalRpcMs: {
        steady: {
          p50: ms(quantile(rpcBeforeSteady, rpcAfterSteady, 0.5)),
          p99: ms(quantile(rpcBeforeSteady, rpcAfterSteady, 0.99)),
        },
        saturation: { p50: ms(quantile(rpcBefore, rpcAfter, 0.5)), p99: ms(quantile(rpcBefore, rpcAfter, 0.99)) },
      },
      workerRssMbPerCachedCall: round((rssAfter - rssBefore) / cached, 3),
      cachedCalls: {
        calls: cached,
        stickyCacheSize: cacheSize ? Number(cacheSize) : null,
        rssMbBefore: round(rssBefore, 1),
        rssMbAfter: round(rssAfter, 1),
        heapMbPerCachedCall: round((memAfter.heapMb - memBefore.heapMb) / cached, 3),
      },
      // Of the calls and baseline workflows measured here (instant latencies, under load; the typical
      // shape of a sample of the first round, checked equal), beside (f)'s historyEventsPerCall.
      benchHistory: benchHistory!,
    };
  } finally {
    await worker?.stop();
    await signaller?.stop();
    await s.stop();
  }
}

/**
 * campaign: N recipients (default 100,000) staged and fed by one campaign workflow at the highest
 * calling speed. Measures the dispatcher: its call workflows are started on a task queue no worker
 * serves, so they are accepted by Temporal but not run (`calls` measures running calls).
 */
async function benchCampaign(n: number) {
  const flow = parseFlow({
    id: 'minimal',
    version: 1,
    start: 'call',
    elements: [
      { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'bye' } },
      { id: 'bye', type: 'hangUp' },
    ],
  });
  const s = await startEphemeralStack({ sqlite: true, simLatency: 'instant', services: ['worker'] });
  const nc = await connectNats(s.natsUrl, 'bench-campaign');
  try {
    const store = await NatsCampaignStore.open(nc);
    const campaignId = `bench${Date.now()}`;
    const file = join(s.dataDir, 'recipients.csv');
    writeFileSync(
      file,
      [
        'id,phone,timeZone',
        ...Array.from({ length: n }, (_, i) => `r${i},+3859${String(10_000_000 + i)},Europe/Zagreb`),
      ].join('\n'),
    );
    const t0 = performance.now();
    const staging = await stageRecipients(file, (k, rows) => store.putPage(campaignId, k, rows));
    const stageSeconds = (performance.now() - t0) / 1000;
    const workerPid = s.services.worker!.pid;
    const rss: number[] = [];
    const sampler = setInterval(() => rss.push(rssMb(workerPid)), 1000);
    const t1 = performance.now();
    const handle = await startCampaign(s.client, s.config.temporal.taskQueue, {
      campaignId,
      flow,
      pages: staging.pages,
      total: staging.accepted,
      speed: { calls: 1_000_000, per: 'minute' },
      maxConcurrent: 10_000_000,
      callTaskQueue: 'bench-unserved-calls',
    });
    let placed = 0;
    while (placed < n) {
      await new Promise((r) => setTimeout(r, 500));
      placed = (await handle.query(campaignStatusQuery)).placed;
    }
    const seconds = (performance.now() - t1) / 1000;
    clearInterval(sampler);
    const status = await handle.query(campaignStatusQuery);
    // Every run of the campaign workflow (continue-as-new chain), counted event by event.
    let events = 0;
    let runs = 0;
    let maxRun = 0;
    for await (const w of s.client.workflow.list({ query: `WorkflowId = '${handle.workflowId}'` })) {
      const len = (await s.client.workflow.getHandle(w.workflowId, w.runId).fetchHistory()).events?.length ?? 0;
      events += len;
      runs += 1;
      maxRun = Math.max(maxRun, len);
    }
    await handle.terminate('benchmark done');
    const quarter = rss[Math.floor(rss.length / 4)] ?? NaN;
    return {
      recipients: n,
      stageSeconds: Number(stageSeconds.toFixed(1)),
      seconds: Number(seconds.toFixed(1)),
      callStartsPerSec: Number((n / seconds).toFixed(1)),
      historyEventsPerRecipient: Number((events / n).toFixed(3)),
      campaignRuns: runs,
      maxEventsPerRun: maxRun,
      continueAsNewRunsSeenByStatus: status.run,
      workerPeakRssMb: Number(Math.max(...rss).toFixed(1)),
      workerRssMbAtQuarter: Number(quarter.toFixed(1)),
      workerRssMbAtEnd: Number((rss.at(-1) ?? NaN).toFixed(1)),
    };
  } finally {
    await nc.close();
    await s.stop();
  }
}

const which = process.argv[2] ?? 'calls';
const machine = {
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model ?? '?',
  memGb: Math.round(totalmem() / 2 ** 30),
  node: process.version,
};
const historyLine = (h: Awaited<ReturnType<typeof historyPerCall>>) =>
  `history per call: ${h.historyEventsPerCall.demoLatency} events / ${h.workflowTasksPerCall.demoLatency} workflow tasks with demo latencies, ${h.historyEventsPerCall.campaignPlaced} / ${h.workflowTasksPerCall.campaignPlaced} placed by a campaign, ${h.historyEventsPerCall.instant} / ${h.workflowTasksPerCall.instant} instant\n`;
if (which === 'history') {
  const h = await historyPerCall();
  process.stderr.write(historyLine(h));
  process.stdout.write(`${JSON.stringify({ benchmark: 'history', machine, ...h })}\n`);
} else if (which === 'calls') {
  const rounds = Number(process.env.BENCH_ROUNDS ?? MIN_ROUNDS);
  if (!Number.isInteger(rounds) || rounds < MIN_ROUNDS) {
    process.stderr.write(
      `BENCH_ROUNDS must be an integer of at least ${MIN_ROUNDS} (a median of fewer rounds is not one)\n`,
    );
    process.exit(2);
  }
  const r = await benchCalls(Number(process.env.BENCH_CALLS ?? 400), Number(process.env.BENCH_CACHED ?? 1000), rounds);
  const h = await historyPerCall();
  process.stderr.write(historyLine(h));
  const range = (x: Spread) => `${x.median} (${x.min}–${x.max})`;
  process.stderr.write(
    [
      `median of ${r.rounds} interleaved rounds of ${r.calls}, (min–max):`,
      `end to end:  ${range(r.e2eCallsPerSec)} calls/s (answered-and-confirmed calls, ${r.benchHistory.e2eCall.events} history events, ${r.benchHistory.e2eCall.workflowTasks} workflow tasks, ${r.benchHistory.e2eCall.payloadBytes} payload bytes each)`,
      `baseline:    ${range(r.baselinePerSec)} workflows/s (bare Temporal, the call's history shape: ${r.benchHistory.baselineWorkflow.events} events, ${r.benchHistory.baselineWorkflow.workflowTasks} workflow tasks, ${r.benchHistory.baselineWorkflow.payloadBytes} payload bytes)`,
      `ratio:       ${range(r.ratio)}`,
      `event→signal p50 ${r.eventToSignalMs.p50} ms, p99 ${r.eventToSignalMs.p99} ms at ${r.eventToSignalMs.callsPerSec} calls/s (${r.eventToSignalMs.events} events); at saturation p50 ${r.eventToSignalMsAtSaturation.p50} ms, p99 ${r.eventToSignalMsAtSaturation.p99} ms`,
      `  of which the signal RPC to Temporal: steady p50 ${r.signalRpcMs.steady.p50} / p99 ${r.signalRpcMs.steady.p99} ms; saturation p50 ${r.signalRpcMs.saturation.p50} / p99 ${r.signalRpcMs.saturation.p99} ms`,
      `worker RSS:  ${r.workerRssMbPerCachedCall} MB per cached call (${r.cachedCalls.calls} parked calls, sticky cache ${r.cachedCalls.stickyCacheSize}, ${r.cachedCalls.rssMbBefore} → ${r.cachedCalls.rssMbAfter} MB after GC; JS heap ${r.cachedCalls.heapMbPerCachedCall} MB per call)`,
    ].join('\n') + '\n',
  );
  process.stdout.write(`${JSON.stringify({ benchmark: 'calls', machine, ...r, ...h })}\n`);
} else if (which === 'campaign') {
  const n = Number(process.env.BENCH_RECIPIENTS ?? 100_000);
  const r = await benchCampaign(n);
  process.stderr.write(
    `campaign: ${r.recipients} recipients placed in ${r.seconds} s = ${r.callStartsPerSec} call starts/s; ${r.historyEventsPerRecipient} campaign history events per recipient over ${r.campaignRuns} runs (max ${r.maxEventsPerRun} per run); worker RSS peak ${r.workerPeakRssMb} MB (${r.workerRssMbAtQuarter} at 25 %, ${r.workerRssMbAtEnd} at the end)\n`,
  );
  process.stdout.write(`${JSON.stringify({ benchmark: 'campaign', machine, ...r })}\n`);
} else {
  process.stderr.write(`unknown benchmark "${which}" (available: calls, campaign, history)\n`);
  process.exit(2);
}
