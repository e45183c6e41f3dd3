// The baseline's two sides of the wire (bench/baseline-workflow.ts):
//  - its local activity, registered on the benchmark's worker only (bench/worker.ts), which asks
//    the signaller for a signal to its workflow, as a call's telephony command is sent to the
//    provider (a request and its reply) whose events then reach the call through the bridge;
//  - the signaller, a process of its own as the bridge is (run as a script: `node bin/run-ts.js
//    bench/baseline-activities.ts`, started by bench/run.ts with startBaselineSignaller): it
//    answers the request at once, then signals the workflow through its own Temporal client (with
//    the payload codec, as the bridge's), one signal carrying two events as the bridge's
//    `telephonyEvents` does, in order per workflow. No NATS, no JetStream, no simulator.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { Client } from '@temporalio/client';
import { connectTemporal } from '../src/client/connection.js';
import { dataConverter, loadConfig } from '../src/config/index.js';
import { baselineEventsSignal, type BaselineCommand, type BaselineEvent } from './baseline-workflow.js';

/** `signallerUrl`: where the signaller takes requests (bench/worker.ts has it from BENCH_BASELINE_SIGNALLER_URL). */
export function createBaselineActivities(signallerUrl: string | undefined) {
  return {
    /** A telephony command's stand-in: a signal asked for when `signalled`, then the command's kind of result. */
    async baselineCommand(command: BaselineCommand): Promise<BaselineCommand | 'ok' | undefined> {
      if (command.signalled) {
        if (!signallerUrl)
          throw ApplicationFailure.nonRetryable('no baseline signaller: BENCH_BASELINE_SIGNALLER_URL is not set');
        const workflow = Context.current().info.workflowExecution;
        if (!workflow)
          throw ApplicationFailure.nonRetryable('baselineCommand signals its workflow: run it from baselineWorkflow');
        const res = await fetch(signallerUrl, { method: 'POST', body: workflow.workflowId });
        await res.arrayBuffer();
        if (res.status !== 204) throw new Error(`the baseline signaller answered ${res.status}`);
      }
      return command.reply === 'command' ? command : command.reply === 'ok' ? 'ok' : undefined;
    },
  };
}

export type BaselineActivities = ReturnType<typeof createBaselineActivities>;

/**
 * Two events like a call's (a held one and the next, ~250 bytes each): the same fields, ids built
 * from the workflow id as a call's from its call id.
 */
function eventsFor(workflowId: string, n: number): BaselineEvent[] {
  // n: the signaller's count of signals, for ids unique per workflow.
  const timestamp = new Date().toISOString();
  const callId = `${workflowId}~1`;
  return [
    {
      id: `${callId}:${2 * n}:BASELINE_HELD`,
      type: 'BASELINE_HELD',
      callId,
      timestamp,
      properties: { commandId: `${callId}#${n}`, hold: true },
    },
    {
      id: `${callId}:${2 * n + 1}:BASELINE_EVENT`,
      type: 'BASELINE_EVENT',
      callId,
      timestamp,
      properties: { commandId: `${callId}#${n}`, detail: 'x'.repeat(50) },
    },
  ];
}

/** The signaller process: until SIGTERM. Reports `{type:'ready', url}`, and `{type:'error'}` on a signal that failed. */
async function runSignaller(): Promise<void> {
  const config = loadConfig(process.env);
  const connection = await connectTemporal(config.temporal);
  const client = new Client({ connection, namespace: config.temporal.namespace, dataConverter: dataConverter(config) });
  // Signals of one workflow in order, different workflows concurrently (as the bridge's chains).
  const chains = new Map<string, Promise<void>>();
  let signalled = 0;
  const signal = (workflowId: string) => {
    const n = ++signalled;
    const next = (chains.get(workflowId) ?? Promise.resolve())
      .then(() => client.workflow.getHandle(workflowId).signal(baselineEventsSignal, eventsFor(workflowId, n)))
      .catch((err: unknown) => {
        process.send?.({ type: 'error', error: `signal to ${workflowId} failed: ${(err as Error).message}` });
      });
    chains.set(workflowId, next);
    void next.finally(() => {
      if (chains.get(workflowId) === next) chains.delete(workflowId);
    });
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const workflowId = Buffer.concat(chunks).toString('utf8');
      res.writeHead(workflowId ? 204 : 400).end();
      if (workflowId) signal(workflowId);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.send?.({ type: 'ready', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` });
  process.once('SIGTERM', () => {
    server.close();
    server.closeAllConnections();
    void Promise.allSettled([...chains.values()])
      .then(() => connection.close())
      .finally(() => process.exit(0));
  });
}

const RUN_TS = fileURLToPath(new URL('../bin/run-ts.js', import.meta.url));
const THIS_FILE = fileURLToPath(import.meta.url);

export interface BaselineSignaller {
  url: string;
  pid: number;
  /** Rejects when a signal failed or the signaller exited: a baseline workflow would wait for ever. */
  failed: Promise<never>;
  stop(): Promise<void>;
}

/** `env`: the stack's (Temporal address, namespace, payload key). */
export async function startBaselineSignaller(env: Record<string, string>, logFile: string): Promise<BaselineSignaller> {
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [RUN_TS, THIS_FILE], {
    env: { ...process.env, ...env },
    stdio: ['ignore', fd, fd, 'ipc'],
  });
  closeSync(fd);
  let stopping = false;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const tail = () => readFileSync(logFile, 'utf8').trim().split('\n').slice(-8).join('\n');
  const failed = new Promise<never>((_, reject) => {
    child.on('message', (m: { type?: string; error?: string }) => {
      if (m.type === 'error') reject(new Error(`baseline signaller: ${m.error}`));
    });
    void exited.then((code) => {
      if (!stopping) reject(new Error(`the baseline signaller exited with code ${code}; log:\n${tail()}`));
    });
  });
  failed.catch(() => undefined);
  const url = await Promise.race([
    new Promise<string>((resolve) =>
      child.on('message', (m: { type?: string; url?: string }) => {
        if (m.type === 'ready' && m.url) resolve(m.url);
      }),
    ),
    failed,
  ]);
  return {
    url,
    pid: child.pid ?? 0,
    failed,
    async stop() {
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

if (process.argv[1] === THIS_FILE) await runSignaller();
