// Starts the benchmark's own flow worker (bench/worker.ts) beside an ephemeral stack started
// without one: a child process with its own NATS identity, /metrics and --expose-gc.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../src/dev/stack.js';
import type { EphemeralStack } from '../src/dev/ephemeral.js';

const RUN_TS = fileURLToPath(new URL('../bin/run-ts.js', import.meta.url));
const ENTRY = fileURLToPath(new URL('./worker.ts', import.meta.url));
const READY_WITHIN_MS = 120_000;

export interface BenchWorker {
  pid: number;
  metricsUrl: string;
  /** A full GC in the worker, then its memory usage. */
  gc(): Promise<NodeJS.MemoryUsage>;
  stop(): Promise<void>;
}

interface Reply {
  type?: unknown;
  metricsUrl?: unknown;
  memory?: NodeJS.MemoryUsage;
  error?: string;
}

export async function startBenchWorker(s: EphemeralStack, env: Record<string, string> = {}): Promise<BenchWorker> {
  const logFile = join(s.dataDir, 'bench-worker.log');
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, ['--expose-gc', RUN_TS, ENTRY], {
    env: {
      ...process.env,
      ...s.env,
      ...s.nats.env('worker'),
      DIALFLOW_METRICS_PORT: String(await freePort()),
      ...env,
    },
    stdio: ['ignore', fd, fd, 'ipc'],
  });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const tail = () => readFileSync(logFile, 'utf8').trim().split('\n').slice(-8).join('\n');
  const metricsUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the bench worker did not start; log:\n${tail()}`)),
      READY_WITHIN_MS,
    );
    child.on('message', (m: Reply) => {
      if (m.type === 'ready' && typeof m.metricsUrl === 'string') {
        clearTimeout(timer);
        resolve(m.metricsUrl);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the bench worker exited with code ${code} while starting; log:\n${tail()}`));
    });
  });
  return {
    pid: child.pid ?? 0,
    metricsUrl,
    gc: () =>
      new Promise((resolve, reject) => {
        const onReply = (m: Reply) => {
          if (m.type !== 'gc') return;
          child.off('message', onReply);
          if (m.memory) resolve(m.memory);
          else reject(new Error(m.error ?? 'no memory usage in the reply'));
        };
        child.on('message', onReply);
        child.send({ type: 'gc' });
      }),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
