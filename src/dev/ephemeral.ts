// A throwaway stack on free loopback ports (temp dir, in-memory or SQLite) for tests and benchmarks.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, type Connection } from '@temporalio/client';
import { connectTemporal } from '../client/connection.js';
import { configEnv, dataConverter, ensureDevPayloadKey, loadConfig, type Config } from '../config/index.js';
import { Stack, freePort, type StartedNats } from './stack.js';
import { connectNats, ensureStreams } from '../telephony/nats.js';
import type { NatsConnection } from '@nats-io/transport-node';
import { natsAuthEnv } from '../telephony/nats-auth.js';
import { simulatorStatsSubject, type SimulatorStatsReply } from '../workers/simulator.js';

export interface EphemeralStack {
  stack: Stack;
  config: Config;
  env: Record<string, string>;
  client: Client;
  connection: Connection;
  /**
   * The server's URL. NATS requires credentials: in this process, connectNats(natsUrl, …) connects
   * as the stack's `admin` identity (registered by startNats); `nats.env(role)` gives a service's own.
   */
  natsUrl: string;
  nats: StartedNats;
  /** A connection as `admin` (stream setup, injecting events in drills). */
  natsConnect(name: string): Promise<NatsConnection>;
  dataDir: string;
  services: Record<string, { pid: number; metricsUrl?: string }>;
  /** The simulator's counters (dials per call id, SMS, chaos). */
  simulatorStats(): Promise<SimulatorStatsReply>;
  /** Dials the simulator placed per call id, for call ids starting with `prefix`. */
  simulatorDials(prefix: string): Promise<Array<[callId: string, dials: number]>>;
  stop(): Promise<void>;
}

/** `metrics`: every service serves /metrics on a free loopback port (see `services[…].metricsUrl`). */
export async function startEphemeralStack(
  opts: {
    services?: Array<'worker' | 'bridge' | 'simulator' | 'sip-agents' | 'infobip' | 'webhooks'>;
    simLatency?: string;
    taskQueue?: string;
    sqlite?: boolean;
    metrics?: boolean;
    env?: Record<string, string>;
  } = {},
): Promise<EphemeralStack> {
  const dir = mkdtempSync(join(tmpdir(), 'dialflow-it-'));
  const stack = new Stack(dir);
  try {
    const [temporal, nats] = await Promise.all([
      stack.startTemporal({ port: await freePort(), ...(opts.sqlite ? { dbFile: join(dir, 'temporal.db') } : {}) }),
      freePort().then((port) => stack.startNats({ port, storeDir: join(dir, 'nats') })),
    ]);
    const nc = await connectNats(nats.url, 'test-setup');
    await ensureStreams(nc);
    await nc.close();
    const config = loadConfig({
      ...opts.env,
      // The stack's own dev server: a developer's TEMPORAL_* and temporal.toml must not reach it.
      DIALFLOW_TEMPORAL_ENVCONFIG: 'off',
      DIALFLOW_TEMPORAL_ADDRESS: temporal.address,
      DIALFLOW_NATS_SERVERS: nats.url,
      DIALFLOW_SIM_LATENCY: opts.simLatency ?? 'instant',
      DIALFLOW_TASK_QUEUE: opts.taskQueue ?? 'it-calls',
      DIALFLOW_PAYLOAD_KEY_FILE: ensureDevPayloadKey(join(dir, 'payload.key')),
    });
    // A service or CLI that a test starts with `env` connects as `admin` (tests restart services with
    // it); the stack's own services get their identity below, and `nats.env(role)` gives it to others.
    const env = { ...configEnv(config), ...natsAuthEnv(nats.auth?.identities.admin) };
    const services: EphemeralStack['services'] = {};
    await Promise.all(
      (opts.services ?? ['worker', 'bridge', 'simulator']).map(async (s) => {
        // Each service connects as its own NATS identity, as in `dialflow dev` and deploy/.
        services[s] = await stack.startService(s, s, {
          ...env,
          ...opts.env,
          ...nats.env(s),
          ...(opts.metrics ? { DIALFLOW_METRICS_PORT: String(await freePort()) } : {}),
        });
      }),
    );
    const connection = await connectTemporal(config.temporal);
    const client = new Client({
      connection,
      namespace: config.temporal.namespace,
      dataConverter: dataConverter(config),
    });
    const simulatorStats = async (): Promise<SimulatorStatsReply> => {
      const nc = await connectNats(nats.url, 'ephemeral-stats');
      try {
        return (
          await nc.request(simulatorStatsSubject(config.provider), '', { timeout: 2000 })
        ).json<SimulatorStatsReply>();
      } finally {
        await nc.close();
      }
    };
    return {
      stack,
      config,
      env,
      client,
      connection,
      natsUrl: nats.url,
      nats,
      natsConnect: (name) => connectNats(nats.url, name),
      dataDir: dir,
      services,
      simulatorStats,
      async simulatorDials(prefix) {
        return Object.entries((await simulatorStats()).dialsByCall).filter(([k]) => k.startsWith(prefix));
      },
      async stop() {
        await connection.close();
        await stack.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
