// Benchmarks: JSON on stdout, a human summary on stderr. `npm run bench [-- calls]`.
//   calls: the appointment-reminder flow through the whole stack (Temporal dev server on SQLite WAL,
//          nats-server, worker, bridge and simulator processes): completed calls/s, history events
//          per call, worker RSS.
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { startCall, splitPersona } from '../src/client/calls.js';
import { startEphemeralStack } from '../src/dev/ephemeral.js';
import type { Recipient } from '../src/flow/interpreter.js';
import { parseFlow } from '../src/flow/validate.js';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { connectNats } from '../src/telephony/nats.js';
import { NatsCampaignStore } from '../src/store/campaigns.js';
import { stageRecipients } from '../src/campaign/recipients.js';
import { startCampaign } from '../src/client/campaigns.js';
import { campaignStatusQuery } from '../src/workflows/messages.js';

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function benchCalls(calls: number) {
  const flow = parseFlow(JSON.parse(readFileSync(new URL('../examples/appointment-reminder.json', import.meta.url), 'utf8')));
  const personas = (JSON.parse(readFileSync(new URL('../examples/demo-recipients.json', import.meta.url), 'utf8')) as Recipient[]).map((r) => splitPersona(r).hints);
  const s = await startEphemeralStack({ sqlite: true, simLatency: 'instant' });
  try {
    const run = async (campaignId: string, n: number) => {
      const t0 = performance.now();
      const handles = await Promise.all(
        Array.from({ length: n }, (_, i) => {
          const hints = personas[i % personas.length];
          return startCall(s.client, { flow, campaignId, taskQueue: s.config.temporal.taskQueue, recipient: { id: `r${i}`, phone: `+3859${String(10_000_000 + i)}`, firstName: 'Ana' }, ...(hints ? { hints } : {}) });
        }),
      );
      const results = await Promise.all(handles.map((h) => h.result()));
      return { seconds: (performance.now() - t0) / 1000, handles, results };
    };
    await run('warmup', 20);
    const { seconds, handles, results } = await run(`bench-${Date.now()}`, calls);
    const sample = handles.filter((_, i) => i % Math.max(1, Math.floor(calls / 50)) === 0);
    const lengths = await Promise.all(sample.map(async (h) => (await h.fetchHistory()).events?.length ?? 0));
    const answeredConfirm = await (async () => {
      const i = results.findIndex((r) => r.trail.map((t) => t.branch).join(',') === 'answered,played,1,played');
      return i >= 0 ? ((await handles[i]!.fetchHistory()).events?.length ?? 0) : null;
    })();
    return {
      calls,
      seconds: Number(seconds.toFixed(2)),
      e2eCallsPerSec: Number((calls / seconds).toFixed(1)),
      historyEventsPerCall: { mean: Number((lengths.reduce((a, b) => a + b, 0) / lengths.length).toFixed(1)), max: Math.max(...lengths), answeredAndConfirmed: answeredConfirm },
      workerRssMb: Number(rssMb(s.services.worker!.pid).toFixed(1)),
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
  const flow = parseFlow({ id: 'minimal', version: 1, start: 'call', elements: [{ id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'bye' } }, { id: 'bye', type: 'hangUp' }] });
  const s = await startEphemeralStack({ sqlite: true, simLatency: 'instant', services: ['worker'] });
  const nc = await connectNats(s.natsUrl, 'bench-campaign');
  try {
    const store = await NatsCampaignStore.open(nc);
    const campaignId = `bench${Date.now()}`;
    const file = join(s.dataDir, 'recipients.csv');
    writeFileSync(file, ['id,phone,timeZone', ...Array.from({ length: n }, (_, i) => `r${i},+3859${String(10_000_000 + i)},Europe/Zagreb`)].join('\n'));
    const t0 = performance.now();
    const staging = await stageRecipients(file, (k, rows) => store.putPage(campaignId, k, rows));
    const stageSeconds = (performance.now() - t0) / 1000;
    const workerPid = s.services.worker!.pid;
    const rss: number[] = [];
    const sampler = setInterval(() => rss.push(rssMb(workerPid)), 1000);
    const t1 = performance.now();
    const handle = await startCampaign(s.client, s.config.temporal.taskQueue, { campaignId, flow, pages: staging.pages, total: staging.accepted, speed: { calls: 1_000_000, per: 'minute' }, maxConcurrent: 10_000_000, callTaskQueue: 'bench-unserved-calls' });
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
const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '?', memGb: Math.round(totalmem() / 2 ** 30), node: process.version };
if (which === 'calls') {
  const n = Number(process.env.BENCH_CALLS ?? 300);
  const r = await benchCalls(n);
  process.stderr.write(`calls: ${r.calls} in ${r.seconds} s = ${r.e2eCallsPerSec} calls/s; history events per call mean ${r.historyEventsPerCall.mean} (answered+confirm ${r.historyEventsPerCall.answeredAndConfirmed}); worker RSS ${r.workerRssMb} MB\n`);
  process.stdout.write(`${JSON.stringify({ benchmark: 'calls', machine, ...r })}\n`);
} else if (which === 'campaign') {
  const n = Number(process.env.BENCH_RECIPIENTS ?? 100_000);
  const r = await benchCampaign(n);
  process.stderr.write(`campaign: ${r.recipients} recipients placed in ${r.seconds} s = ${r.callStartsPerSec} call starts/s; ${r.historyEventsPerRecipient} campaign history events per recipient over ${r.campaignRuns} runs (max ${r.maxEventsPerRun} per run); worker RSS peak ${r.workerPeakRssMb} MB (${r.workerRssMbAtQuarter} at 25 %, ${r.workerRssMbAtEnd} at the end)\n`);
  process.stdout.write(`${JSON.stringify({ benchmark: 'campaign', machine, ...r })}\n`);
} else {
  process.stderr.write(`unknown benchmark "${which}" (available: calls, campaign)\n`);
  process.exit(2);
}
