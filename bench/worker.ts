// The benchmark's flow worker process: the production worker service (runService('worker'): same
// config, Runtime, codec, metrics and activities) with the baseline workflow and its local activity
// added, so calls and baseline run on one worker; that activity asks the baseline signaller at
// BENCH_BASELINE_SIGNALLER_URL for the baseline's signals (bench/baseline-activities.ts). Started by
// bench/start-worker.ts with --expose-gc: the parent asks for a full GC before it samples memory
// (IPC message {type:'gc'}, answered with {type:'gc', memory: process.memoryUsage()}).
import { fileURLToPath } from 'node:url';
import { runService } from '../src/workers/service.js';
import { createBaselineActivities } from './baseline-activities.js';

const BENCH_WORKFLOWS_PATH = fileURLToPath(new URL('./workflows.ts', import.meta.url));

process.on('message', (m: unknown) => {
  if (!m || typeof m !== 'object' || (m as { type?: unknown }).type !== 'gc') return;
  if (typeof globalThis.gc !== 'function') {
    process.send?.({ type: 'gc', error: 'the bench worker runs without --expose-gc' });
    return;
  }
  globalThis.gc();
  process.send?.({ type: 'gc', memory: process.memoryUsage() });
});

await runService('worker', {
  worker: {
    workflowsPath: BENCH_WORKFLOWS_PATH,
    activities: () => createBaselineActivities(process.env.BENCH_BASELINE_SIGNALLER_URL),
  },
});
