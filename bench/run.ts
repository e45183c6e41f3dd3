// Benchmarks: JSON on stdout, a human summary on stderr. `npm run bench [-- calls|campaign|history]`.
//   calls (default): everything in one run on one dev server (SQLite WAL): (a) the appointment
//          reminder through the whole stack, (b) a bare-Temporal baseline with the same activities
//          and signals, (c) their ratio, (d) event → signal latency under that load, (e) worker
//          RSS per cached call, and (f) history events and workflow tasks per call (history).
//   history: only (f): one call each with demo latencies, placed by a campaign, and instant.
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
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
import { historyPerCall } from './history-per-call.js';

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

const ANSWER_AND_CONFIRM = { persona: { attempts: ['answered'], keys: ['1'] } };
/** The activities and signals of that call: dial (ringing, established), say, collect, say, hang up. */
const BASELINE_STEPS = [2, 1, 1, 1, 1];

async function benchCalls(calls: number, cached: number) {
  const flow = parseFlow(
    JSON.parse(readFileSync(new URL('../examples/appointment-reminder.json', import.meta.url), 'utf8')),
  );
  const s = await startEphemeralStack({
    sqlite: true,
    simLatency: 'instant',
    metrics: true,
    env: {
      DIALFLOW_MAX_CACHED_WORKFLOWS: String(cached + calls + 100),
      DIALFLOW_DEBUG_GC: '1',
      NODE_OPTIONS: '--expose-gc',
    },
  });
  const taskQueue = s.config.temporal.taskQueue;
  const bridgeMetrics = s.services.bridge!.metricsUrl!;
  const workerPid = s.services.worker!.pid;
  try {
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
      return { seconds: (performance.now() - t0) / 1000, handles, results };
    };
    const baseline = async (prefix: string, n: number) => {
      const t0 = performance.now();
      const handles = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          s.client.workflow.start('baselineWorkflow', {
            taskQueue,
            workflowId: `${prefix}-${i}`,
            args: [BASELINE_STEPS],
          }),
        ),
      );
      await Promise.all(handles.map((h) => h.result()));
      const seconds = (performance.now() - t0) / 1000;
      baselineEvents = Math.max(baselineEvents, (await handles[0]!.fetchHistory()).events?.length ?? 0);
      return seconds;
    };
    let baselineEvents = 0;
    await run('warmup', 20);
    await baseline(`warmup-baseline-${Date.now()}`, 20);

    // (a) end to end, with (d) the bridge's event → signal latency under that load.
    const before = await histogram(bridgeMetrics, 'dialflow_event_to_signal_seconds');
    const rpcBefore = await histogram(bridgeMetrics, 'dialflow_bridge_signal_rpc_seconds');
    const { seconds: firstSeconds, handles, results } = await run(`bench-${Date.now()}`, calls);
    const after = await histogram(bridgeMetrics, 'dialflow_event_to_signal_seconds');
    const rpcAfter = await histogram(bridgeMetrics, 'dialflow_bridge_signal_rpc_seconds');
    const sample = handles.filter((_, i) => i % Math.max(1, Math.floor(calls / 20)) === 0);
    const lengths = await Promise.all(sample.map(async (h) => (await h.fetchHistory()).events?.length ?? 0));
    const wrong = results.filter((r) => r.trail.map((t) => t.branch).join(',') !== 'answered,played,1,played').length;
    if (wrong > 0) throw new Error(`${wrong} calls took unexpected branches`);

    // (b) the bare-Temporal baseline, same worker, same server, same number of workflows. The two
    // alternate (a, b, a, b) and each keeps its better round, so neither gets a warmer server.
    const firstBaseline = await baseline(`baseline-${Date.now()}`, calls);
    const secondSeconds = (await run(`bench2-${Date.now()}`, calls)).seconds;
    const secondBaseline = await baseline(`baseline2-${Date.now()}`, calls);
    const seconds = Math.min(firstSeconds, secondSeconds);
    const baselineSeconds = Math.min(firstBaseline, secondBaseline);

    // (d) at a steady offered load of half the measured capacity (the burst above saturates the
    // server, whose queueing then dominates the latency).
    const steadyRate = Math.max(1, Math.floor(calls / seconds / 2));
    // Each round's rates, for the record.
    const rounds = {
      e2eCallsPerSec: [calls / firstSeconds, calls / secondSeconds].map((v) => Number(v.toFixed(1))),
      baselinePerSec: [calls / firstBaseline, calls / secondBaseline].map((v) => Number(v.toFixed(1))),
    };
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
    const gc = async () => {
      const { heapUsed } = (await (
        await fetch(s.services.worker!.metricsUrl!.replace('/metrics', '/debug/gc'), { method: 'POST' })
      ).json()) as { heapUsed: number };
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
      await (await fetch(s.services.worker!.metricsUrl!)).text(),
    )?.[1];

    const e2eCallsPerSec = calls / seconds;
    const baselinePerSec = calls / baselineSeconds;
    return {
      calls,
      e2eCallsPerSec: Number(e2eCallsPerSec.toFixed(1)),
      baselinePerSec: Number(baselinePerSec.toFixed(1)),
      ratio: Number((e2eCallsPerSec / baselinePerSec).toFixed(2)),
      rounds,
      eventToSignalMs: {
        p50: Number((quantile(beforeSteady, afterSteady, 0.5) * 1000).toFixed(1)),
        p99: Number((quantile(beforeSteady, afterSteady, 0.99) * 1000).toFixed(1)),
        events: (afterSteady.at(-1)?.[1] ?? 0) - (beforeSteady.at(-1)?.[1] ?? 0),
        callsPerSec: steadyRate,
      },
      eventToSignalMsAtSaturation: {
        p50: Number((quantile(before, after, 0.5) * 1000).toFixed(1)),
        p99: Number((quantile(before, after, 0.99) * 1000).toFixed(1)),
        events: (after.at(-1)?.[1] ?? 0) - (before.at(-1)?.[1] ?? 0),
      },
      // The signal RPC alone: how much of the above is Temporal's.
      signalRpcMs: {
        steady: {
          p50: Number((quantile(rpcBeforeSteady, rpcAfterSteady, 0.5) * 1000).toFixed(1)),
          p99: Number((quantile(rpcBeforeSteady, rpcAfterSteady, 0.99) * 1000).toFixed(1)),
        },
        saturation: {
          p50: Number((quantile(rpcBefore, rpcAfter, 0.5) * 1000).toFixed(1)),
          p99: Number((quantile(rpcBefore, rpcAfter, 0.99) * 1000).toFixed(1)),
        },
      },
      workerRssMbPerCachedCall: Number(((rssAfter - rssBefore) / cached).toFixed(3)),
      cachedCalls: {
        calls: cached,
        stickyCacheSize: cacheSize ? Number(cacheSize) : null,
        rssMbBefore: Number(rssBefore.toFixed(1)),
        rssMbAfter: Number(rssAfter.toFixed(1)),
        heapMbPerCachedCall: Number(((memAfter.heapMb - memBefore.heapMb) / cached).toFixed(3)),
      },
      historyEventsPerCall: { answeredAndConfirmed: Math.max(...lengths), baseline: baselineEvents },
    };
  } finally {
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
  const r = await benchCalls(Number(process.env.BENCH_CALLS ?? 400), Number(process.env.BENCH_CACHED ?? 1000));
  const h = await historyPerCall();
  process.stderr.write(historyLine(h));
  process.stderr.write(
    [
      `end to end:  ${r.e2eCallsPerSec} calls/s (${r.calls} answered-and-confirmed calls, ${r.historyEventsPerCall.answeredAndConfirmed} history events each; baseline ${r.historyEventsPerCall.baseline})`,
      `baseline:    ${r.baselinePerSec} workflows/s (bare Temporal, same activities and signals)  → ratio ${r.ratio}`,
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
