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

const which = process.argv[2] ?? 'calls';
const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '?', memGb: Math.round(totalmem() / 2 ** 30), node: process.version };
if (which === 'calls') {
  const n = Number(process.env.BENCH_CALLS ?? 300);
  const r = await benchCalls(n);
  process.stderr.write(`calls: ${r.calls} in ${r.seconds} s = ${r.e2eCallsPerSec} calls/s; history events per call mean ${r.historyEventsPerCall.mean} (answered+confirm ${r.historyEventsPerCall.answeredAndConfirmed}); worker RSS ${r.workerRssMb} MB\n`);
  process.stdout.write(`${JSON.stringify({ benchmark: 'calls', machine, ...r })}\n`);
} else {
  process.stderr.write(`unknown benchmark "${which}" (available: calls)\n`);
  process.exit(2);
}
