// `dialflow dev` as a user runs it: a child process on free loopback ports, ready when it says
// "dialflow is up", stopped with SIGTERM (it stops everything it started).
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { CLI_BIN, freePort } from '../../src/dev/stack.js';

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: Record<string, string>, timeoutMs: number): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI_BIN, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

export interface DevProcess {
  proc: ChildProcess;
  dataDir: string;
  temporal: string;
  nats: string;
  output: () => string;
  /**
   * Run another dialflow command against this stack (its Temporal, NATS and payload key). Async on
   * purpose: servers this test process runs (a fake carrier) must keep answering meanwhile.
   */
  cli(args: string[], timeoutMs?: number): Promise<CliRun>;
  stop(): Promise<void>;
}

export async function startDev(
  dataDir: string,
  args: string[],
  env: Record<string, string> = {},
  deadlineMs = 120_000,
): Promise<DevProcess> {
  const [temporalPort, uiPort, natsPort, metricsPort, codecPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  // Metrics ports are a base and the next few: start high enough above the others.
  const base = 20000 + (metricsPort % 20000);
  const proc = spawn(
    process.execPath,
    [
      CLI_BIN,
      'dev',
      '--data-dir',
      dataDir,
      '--temporal-port',
      String(temporalPort),
      '--temporal-ui-port',
      String(uiPort),
      '--nats-port',
      String(natsPort),
      '--metrics-port',
      String(base),
      '--codec-port',
      String(codecPort),
      // The console and API: a free port unless the test picks its own.
      ...(args.includes('--api-port') ? [] : ['--api-port', String(await freePort())]),
      ...args,
    ],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));
  const until = Date.now() + deadlineMs;
  while (!out.includes('dialflow is up')) {
    if (proc.exitCode !== null) throw new Error(`dialflow dev exited with ${proc.exitCode}:\n${out}`);
    if (Date.now() > until) {
      proc.kill('SIGKILL');
      throw new Error(`dialflow dev did not come up within ${deadlineMs} ms:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const temporal = `127.0.0.1:${temporalPort}`;
  const nats = `nats://127.0.0.1:${natsPort}`;
  return {
    proc,
    dataDir,
    temporal,
    nats,
    output: () => out,
    cli: (cliArgs, timeoutMs = 180_000) =>
      runCli(
        [...cliArgs, '--temporal', temporal, '--nats', nats],
        {
          ...env,
          DIALFLOW_PAYLOAD_KEY_FILE: join(dataDir, 'payload.key'),
          DIALFLOW_NATS_NKEY_SEED_FILE: join(dataDir, 'nats-auth', 'cli.nk'),
        },
        timeoutMs,
      ),
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
}
