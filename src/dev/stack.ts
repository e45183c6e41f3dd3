// Starts and stops the processes of a local dialflow stack: Temporal dev server, nats-server and
// the dialflow workers. Used by `dialflow dev`, the integration tests and the benchmarks.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { isGrpcServiceError, ServiceError } from '@temporalio/client';
import { connectTemporal } from '../client/connection.js';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { PROJECT_ROOT, toolPaths } from '../config/tools.js';
import { isErrnoException } from '../config/errors.js';
import { isNatsFailure } from '../store/nats-errors.js';
import {
  devNatsEnv,
  ensureDevNatsAuth,
  natsAuthEnv,
  natsConnectOptions,
  registerNatsAuth,
  renderServerConfig,
  unregisterNatsAuth,
  type DevNatsAuth,
  type NatsAuth,
  type ServerTls,
} from '../telephony/nats-auth.js';

export interface StartedNats {
  url: string;
  /** The generated credentials (absent with `auth: false`). */
  auth?: DevNatsAuth;
  /** DIALFLOW_NATS_* for a service role (`worker`, `bridge`, `simulator`…): its own identity. */
  env(role: string): Record<string, string>;
}

export class StackError extends Error {
  override readonly name = 'StackError';
  constructor(
    readonly component: string,
    message: string,
    readonly fix: string,
    options?: { cause?: unknown },
  ) {
    super(`${component}: ${message}`, options);
  }
  /** The one-line message shown to users. */
  oneLine(): string {
    return `${this.message} — ${this.fix}`;
  }
}

export const CLI_BIN = join(PROJECT_ROOT, 'bin', 'dialflow.js');
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

import { freePort } from '../tools/net.mjs';

export { freePort };

/**
 * Temporal's frontend cannot be used (yet): Connection.connect found no channel before its deadline
 * (grpc-js says so in a plain Error), or a call ended with a gRPC status (unavailable, a namespace
 * not registered yet …).
 */
export function isTemporalUnreachable(err: unknown): err is Error {
  return (
    err instanceof ServiceError ||
    isGrpcServiceError(err) ||
    (err instanceof Error && /^Failed to connect before the deadline/.test(err.message))
  );
}

export async function assertPortFree(host: string, port: number, component: string, flag: string): Promise<void> {
  await new Promise<void>((res, rej) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) =>
      rej(
        new StackError(
          component,
          `port ${port} on ${host} is ${err.code === 'EADDRINUSE' ? 'already in use' : `unusable (${err.code ?? err.message})`}`,
          `stop whatever listens there or pass ${flag} <port>`,
        ),
      ),
    );
    srv.listen(port, host, () => srv.close(() => res()));
  });
}

interface Child {
  name: string;
  proc: ChildProcess;
  logFile: string;
  exited: Promise<number | null>;
  pidFile?: string;
}

function tail(file: string, lines = 6): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch (err) {
    if (!isErrnoException(err)) throw err;
    return '';
  }
}

/**
 * What a probe of a server that is still starting fails with: a refused connection (fetch wraps it
 * in a TypeError), no gRPC channel or an error status from Temporal, NATS or JetStream not there yet.
 */
function notUpYet(err: unknown): boolean {
  return (
    isErrnoException(err) ||
    (err instanceof TypeError && isErrnoException(err.cause)) ||
    isTemporalUnreachable(err) ||
    isNatsFailure(err)
  );
}

export interface TemporalOptions {
  port: number;
  uiPort?: number;
  /** SQLite file; omitted → in-memory. */
  dbFile?: string;
  ui?: boolean;
  /** Codec server the Web UI uses to show encrypted payloads decoded. */
  uiCodecEndpoint?: string;
  namespace?: string;
  deadlineMs?: number;
}

export class Stack {
  private readonly children: Child[] = [];
  private stopping = false;
  readonly logDir: string;
  readonly runDir: string;

  constructor(
    readonly dataDir: string,
    readonly host = '127.0.0.1',
  ) {
    this.dataDir = resolve(dataDir);
    this.logDir = join(this.dataDir, 'logs');
    this.runDir = join(this.dataDir, 'run');
    mkdirSync(this.logDir, { recursive: true });
    mkdirSync(this.runDir, { recursive: true });
    // If this process dies without stopping, take the children with it.
    process.once('exit', () => {
      for (const c of this.children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    });
  }

  /** Kill a server left over by an earlier run on the same data dir (e.g. after kill -9 of `dev`). */
  private async reapStale(name: string): Promise<string> {
    const pidFile = join(this.runDir, `${name}.pid`);
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8'));
      const ours = () => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(this.dataDir);
        } catch (err) {
          // ENOENT: no such process (any more).
          if (!isErrnoException(err)) throw err;
          return false;
        }
      };
      if (pid > 0 && ours()) {
        process.kill(pid, 'SIGKILL');
        for (let i = 0; i < 50 && ours(); i++) await delay(100);
      }
      rmSync(pidFile, { force: true });
    }
    return pidFile;
  }

  private spawnChild(
    name: string,
    cmd: string,
    args: string[],
    opts: { env?: NodeJS.ProcessEnv; ipc?: boolean; pidFile?: string } = {},
  ): Child {
    const logFile = join(this.logDir, `${name}.log`);
    // Servers get a parent-death signal so that even kill -9 of this process takes them along.
    // (Node services exit by themselves when their IPC channel closes.) setpriv execs, so the pid
    // stays the server's own.
    if (!opts.ipc && SETPRIV) {
      args = ['--pdeathsig', 'KILL', '--', cmd, ...args];
      cmd = SETPRIV;
    }
    const fd = openSync(logFile, 'a');
    const proc = spawn(cmd, args, {
      cwd: PROJECT_ROOT,
      env: opts.env ?? process.env,
      stdio: opts.ipc ? ['ignore', fd, fd, 'ipc'] : ['ignore', fd, fd],
    });
    closeSync(fd);
    const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));
    proc.once('error', () => undefined);
    const child: Child = { name, proc, logFile, exited, ...(opts.pidFile ? { pidFile: opts.pidFile } : {}) };
    if (opts.pidFile && proc.pid) writeFileSync(opts.pidFile, String(proc.pid));
    this.children.push(child);
    return child;
  }

  private async waitReady(
    child: Child,
    component: string,
    deadlineMs: number,
    probe: () => Promise<boolean>,
    fix: string,
  ): Promise<void> {
    const until = Date.now() + deadlineMs;
    let exitCode: number | null | undefined;
    void child.exited.then((c) => (exitCode = c));
    while (Date.now() < until) {
      if (exitCode !== undefined)
        throw new StackError(
          component,
          `exited with code ${exitCode} while starting; last log lines:\n${tail(child.logFile)}`,
          fix,
        );
      try {
        if (await probe()) return;
      } catch (err) {
        if (!notUpYet(err)) throw err;
      }
      await delay(150);
    }
    throw new StackError(
      component,
      `did not come up within ${Math.round(deadlineMs / 1000)} s (log: ${child.logFile})`,
      fix,
    );
  }

  async startTemporal(
    opts: TemporalOptions & { portFlag?: string; uiPortFlag?: string },
  ): Promise<{ address: string; uiUrl?: string }> {
    const component = 'Temporal dev server';
    const bin = toolPaths().temporal;
    if (!existsSync(bin))
      throw new StackError(component, `the Temporal CLI is missing (${bin})`, 'run `npm run setup`');
    const pidFile = await this.reapStale('temporal');
    await assertPortFree(this.host, opts.port, component, opts.portFlag ?? '--temporal-port');
    const ui = opts.ui ?? false;
    if (ui && opts.uiPort)
      await assertPortFree(this.host, opts.uiPort, 'Temporal UI', opts.uiPortFlag ?? '--temporal-ui-port');
    const address = `${this.host}:${opts.port}`;
    // The server's HTTP and metrics ports are picked free here, and another process may take one
    // before the server binds it: that start is retried with fresh ports (a taken --port is not).
    for (let attempt = 1; ; attempt++) {
      try {
        await this.startTemporalOnce(opts, bin, pidFile, ui, address);
        break;
      } catch (err) {
        if (!(err instanceof StackError) || !/address already in use/.test(err.message) || attempt >= 3) throw err;
        await assertPortFree(this.host, opts.port, component, opts.portFlag ?? '--temporal-port');
      }
    }
    return { address, ...(ui ? { uiUrl: `http://${this.host}:${opts.uiPort ?? opts.port + 1000}` } : {}) };
  }

  private async startTemporalOnce(
    opts: Parameters<Stack['startTemporal']>[0],
    bin: string,
    pidFile: string,
    ui: boolean,
    address: string,
  ): Promise<void> {
    const component = 'Temporal dev server';
    const args = [
      'server',
      'start-dev',
      '--ip',
      this.host,
      '--port',
      String(opts.port),
      '--http-port',
      String(await freePort(this.host)),
      '--metrics-port',
      String(await freePort(this.host)),
    ];
    args.push('--namespace', opts.namespace ?? 'default', '--log-level', 'warn', '--log-format', 'pretty');
    if (opts.dbFile)
      args.push(
        '--db-filename',
        opts.dbFile,
        '--sqlite-pragma',
        'journal_mode=wal',
        '--sqlite-pragma',
        'synchronous=normal',
      );
    if (ui)
      args.push(
        '--ui-port',
        String(opts.uiPort ?? opts.port + 1000),
        ...(opts.uiCodecEndpoint ? ['--ui-codec-endpoint', opts.uiCodecEndpoint] : []),
      );
    else args.push('--headless');
    const child = this.spawnChild('temporal', bin, args, { pidFile });
    await this.waitReady(
      child,
      component,
      opts.deadlineMs ?? 60_000,
      async () => {
        // Its own dev server: plain gRPC, whatever the configuration says about other servers.
        const conn = await connectTemporal({ address }, { connectTimeout: 1000 });
        try {
          await conn.workflowService.describeNamespace({ namespace: opts.namespace ?? 'default' });
          return true;
        } finally {
          await conn.close();
        }
      },
      `see ${child.logFile}; delete ${opts.dbFile ?? 'the data dir'} if the database is corrupt`,
    );
  }

  /** Debian's Prometheus with a given config, on loopback; ready when /-/ready answers. */
  async startPrometheus(opts: {
    port: number;
    configFile: string;
    dataDir: string;
    deadlineMs?: number;
  }): Promise<{ url: string }> {
    const component = 'prometheus';
    const bin = toolPaths().prometheus;
    if (!bin)
      throw new StackError(
        component,
        'prometheus is not installed',
        'run `npm run setup` (installs the Debian package prometheus)',
      );
    await assertPortFree(this.host, opts.port, component, '--prometheus-port');
    mkdirSync(opts.dataDir, { recursive: true });
    const url = `http://${this.host}:${opts.port}`;
    const child = this.spawnChild(
      'prometheus',
      bin,
      [
        `--config.file=${opts.configFile}`,
        `--storage.tsdb.path=${opts.dataDir}`,
        `--web.listen-address=${this.host}:${opts.port}`,
      ],
      {},
    );
    await this.waitReady(
      child,
      component,
      opts.deadlineMs ?? 30_000,
      async () => (await fetch(`${url}/-/ready`)).ok,
      `see ${child.logFile}`,
    );
    return { url };
  }

  /**
   * nats-server with JetStream on loopback. Authentication is on unless `auth: false`: an nkey per
   * identity under `<dataDir>/nats-auth` (created once, 0600), the server config regenerated from
   * them (`-c`), and the `admin` identity registered for this process's connections to the URL.
   * `tls`: the server's certificate (clients then need DIALFLOW_NATS_TLS_CA).
   */
  async startNats(opts: {
    port: number;
    storeDir: string;
    portFlag?: string;
    deadlineMs?: number;
    auth?: boolean;
    tls?: ServerTls & { clientCaFile?: string };
  }): Promise<StartedNats> {
    const component = 'nats-server';
    const bin = toolPaths().natsServer;
    if (!bin)
      throw new StackError(
        component,
        'nats-server is not installed',
        'run `npm run setup` (installs the Debian package nats-server)',
      );
    const pidFile = await this.reapStale('nats');
    await assertPortFree(this.host, opts.port, component, opts.portFlag ?? '--nats-port');
    mkdirSync(opts.storeDir, { recursive: true });
    const clientTls = opts.tls?.clientCaFile ? { caFile: opts.tls.clientCaFile } : undefined;
    const serverTls = opts.tls
      ? {
          certFile: opts.tls.certFile,
          keyFile: opts.tls.keyFile,
          ...(opts.tls.caFile ? { caFile: opts.tls.caFile } : {}),
        }
      : undefined;
    const auth =
      opts.auth === false
        ? undefined
        : ensureDevNatsAuth(join(this.dataDir, 'nats-auth'), {
            ...(serverTls ? { tls: serverTls } : {}),
            ...(clientTls ? { clientTls } : {}),
          });
    let configArgs: string[] = [];
    if (auth) configArgs = ['-c', auth.configFile];
    else if (serverTls) {
      const configFile = join(this.runDir, 'nats-tls.conf');
      writeFileSync(configFile, renderServerConfig({ tls: serverTls }), { mode: 0o600 });
      configArgs = ['-c', configFile];
    }
    // Flags after -c win over the file: address, port and store stay as dialflow chose them.
    const child = this.spawnChild(
      'nats',
      bin,
      [...configArgs, '-a', this.host, '-p', String(opts.port), '-js', '-sd', opts.storeDir, '-n', 'dialflow-dev'],
      { pidFile },
    );
    const url = `nats://${this.host}:${opts.port}`;
    const admin: NatsAuth | undefined = auth ? auth.identities.admin : clientTls ? { tls: clientTls } : undefined;
    if (admin) {
      registerNatsAuth(url, admin);
      this.onStop(async () => unregisterNatsAuth(url));
    }
    await this.waitReady(
      child,
      component,
      opts.deadlineMs ?? 20_000,
      async () => {
        const nc = await connect({ servers: url, reconnect: false, timeout: 1000, ...natsConnectOptions(admin) });
        try {
          await (await jetstreamManager(nc)).getAccountInfo();
          return true;
        } finally {
          await nc.close();
        }
      },
      `see ${child.logFile}`,
    );
    return {
      url,
      ...(auth ? { auth } : {}),
      env: (role) => (auth ? devNatsEnv(auth, role) : natsAuthEnv(admin)),
    };
  }

  /** Start a dialflow service (`dialflow worker|bridge|simulator`) and wait for it to report ready. */
  async startService(
    name: string,
    role: string,
    env: Record<string, string>,
    deadlineMs = 120_000,
  ): Promise<{ metricsUrl?: string; pid: number }> {
    const child = this.spawnChild(name, process.execPath, [CLI_BIN, role], {
      env: { ...process.env, ...env },
      ipc: true,
    });
    let info: { metricsUrl?: string } | undefined;
    child.proc.on('message', (m: unknown) => {
      if (m && typeof m === 'object' && (m as { type?: string }).type === 'ready') info = m as { metricsUrl?: string };
    });
    await this.waitReady(child, `dialflow ${role}`, deadlineMs, async () => info !== undefined, `see ${child.logFile}`);
    return { ...(info?.metricsUrl ? { metricsUrl: info.metricsUrl } : {}), pid: child.proc.pid ?? 0 };
  }

  /** Kill one service hard (crash tests). */
  /** Signal a child and wait until it has exited. */
  async kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const live = this.children.filter((c) => c.name === name && c.proc.exitCode === null && c.proc.signalCode === null);
    await Promise.all(
      live.map(
        (c) =>
          new Promise<void>((resolve) => {
            c.proc.once('exit', () => resolve());
            c.proc.kill(signal);
          }),
      ),
    );
  }

  private readonly stopHooks: Array<() => Promise<void>> = [];
  /** Something in this process to close with the stack (e.g. an HTTP server), after the children. */
  onStop(hook: () => Promise<void>): void {
    this.stopHooks.push(hook);
  }

  /** Stop every child, newest first: SIGTERM, then SIGKILL after a grace period. */
  async stop(graceMs = 8_000): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const c of [...this.children].reverse()) {
      if (c.proc.exitCode === null && c.proc.signalCode === null) {
        c.proc.kill('SIGTERM');
        const done = await Promise.race([c.exited.then(() => true), delay(graceMs).then(() => false)]);
        if (!done) {
          c.proc.kill('SIGKILL');
          await c.exited;
        }
      }
      if (c.pidFile) rmSync(c.pidFile, { force: true });
    }
    this.children.length = 0;
    await Promise.allSettled(this.stopHooks.map((h) => h()));
  }
}
