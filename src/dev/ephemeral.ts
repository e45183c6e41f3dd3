// A throwaway stack on free loopback ports (temp dir, in-memory or SQLite) for tests and benchmarks.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { configEnv, dataConverter, ensureDevPayloadKey, loadConfig, type Config } from '../config/index.js';
import { Stack, freePort } from './stack.js';
import { connectNats, ensureStreams } from '../telephony/nats.js';
import { simulatorStatsSubject, type SimulatorStatsReply } from '../workers/simulator.js';

export interface EphemeralStack {
  stack: Stack;
  config: Config;
  env: Record<string, string>;
  client: Client;
  connection: Connection;
  natsUrl: string;
  dataDir: string;
  services: Record<string, { pid: number; metricsUrl?: string }>;
  /** The simulator's counters (dials per call id, SMS, chaos). */
  simulatorStats(): Promise<SimulatorStatsReply>;
  /** Dials the simulator placed per call id, for call ids starting with `prefix`. */
  simulatorDials(prefix: string): Promise<Array<[callId: string, dials: number]>>;
  stop(): Promise<void>;
}

/** `metrics`: every service serves /metrics on a free loopback port (see `services[…].metricsUrl`). */
export async function startEphemeralStack(opts: { services?: Array<'worker' | 'bridge' | 'simulator' | 'sip-agents' | 'infobip' | 'webhooks'>; simLatency?: string; taskQueue?: string; sqlite?: boolean; metrics?: boolean; env?: Record<string, string> } = {}): Promise<EphemeralStack> {
  const dir = mkdtempSync(join(tmpdir(), 'dialflow-it-'));
  const stack = new Stack(dir);
  try {
    const [temporal, nats] = await Promise.all([stack.startTemporal({ port: await freePort(), ...(opts.sqlite ? { dbFile: join(dir, 'temporal.db') } : {}) }), freePort().then((port) => stack.startNats({ port, storeDir: join(dir, 'nats') }))]);
    const nc = await connectNats(nats.url, 'test-setup');
    await ensureStreams(nc);
    await nc.close();
    const config = loadConfig({
      ...opts.env,
      DIALFLOW_TEMPORAL_ADDRESS: temporal.address,
      DIALFLOW_NATS_SERVERS: nats.url,
      DIALFLOW_SIM_LATENCY: opts.simLatency ?? 'instant',
      DIALFLOW_TASK_QUEUE: opts.taskQueue ?? 'it-calls',
      DIALFLOW_PAYLOAD_KEY_FILE: ensureDevPayloadKey(join(dir, 'payload.key')),
    });
    const env = configEnv(config);
    const services: EphemeralStack['services'] = {};
    await Promise.all(
      (opts.services ?? ['worker', 'bridge', 'simulator']).map(async (s) => {
        services[s] = await stack.startService(s, s, { ...env, ...opts.env, ...(opts.metrics ? { DIALFLOW_METRICS_PORT: String(await freePort()) } : {}) });
      }),
    );
    const connection = await Connection.connect({ address: temporal.address });
    const client = new Client({ connection, namespace: config.temporal.namespace, dataConverter: dataConverter(config) });
    const simulatorStats = async (): Promise<SimulatorStatsReply> => {
      const nc = await connectNats(nats.url, 'ephemeral-stats');
      try {
        return (await nc.request(simulatorStatsSubject(config.provider), '', { timeout: 2000 })).json<SimulatorStatsReply>();
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
