// Process entry points of the dialflow services: config once at start, /metrics, a ready message
// to a supervising parent, and a clean stop on SIGINT/SIGTERM or when the parent goes away. Each
// logs JSON lines to stderr at DIALFLOW_LOG_LEVEL (src/logging.ts), the worker's Temporal SDK too.
import { createServer } from 'node:net';
import { setStorageReplicas } from '../store/replicas.js';
import { Client } from '@temporalio/client';
import { connectTemporal } from '../client/connection.js';
import { errors } from '@nats-io/transport-node';
import { Runtime } from '@temporalio/worker';
import type { Registry } from 'prom-client';
import { ConfigError, dataConverter, loadConfig, payloadCodec, type Config } from '../config/index.js';
import { setEventCodec } from '../telephony/event-seal.js';
import type { EncryptionCodec } from '../codec/encryption.js';
import { connectNats, ensureStreams, NatsTelephonyProvider } from '../telephony/nats.js';
import { KvFlowStore } from '../store/flows.js';
import { recordPublisher } from '../store/campaigns.js';
import { bridgeMetrics, startBridge } from './bridge.js';
import { startFlowWorker, type FlowWorkerExtensions } from './flow-worker.js';
import { createRegistry, startMetricsServer } from './metrics.js';
import { natsReadiness, Readiness, temporalReadiness } from './health.js';
import { parseChaos, parseLatency, startSimulator } from './simulator.js';
import { createLogger, temporalLevel, temporalLogger, type Logger } from '../logging.js';

/** What a process embedding a service adds to it (the benchmark's worker); production passes none. */
export interface ServiceExtensions {
  worker?: FlowWorkerExtensions;
}

interface Service {
  stop(): Promise<void>;
  /** Resolves if the service stops on its own (e.g. the worker crashed). */
  done?: Promise<void>;
}

export type Role = 'worker' | 'bridge' | 'simulator' | 'sip-agents' | 'infobip' | 'webhooks';

/** The provider role each provider kind runs as (the webhook ingress comes with infobip). */
export const PROVIDER_ROLES = {
  simulator: ['simulator'],
  sip: ['sip-agents'],
  infobip: ['infobip', 'webhooks'],
} as const satisfies Record<Config['provider'], readonly Role[]>;

/** A role that serves one provider refuses to start under another: its commands would go unanswered. */
function requireProvider(config: Config, role: Role, kind: Config['provider']): void {
  if (config.provider !== kind)
    throw new ConfigError(`dialflow ${role} serves DIALFLOW_PROVIDER=${kind}, but it is ${config.provider}`);
}

async function startRole(
  role: Role,
  config: Config,
  registry: Registry,
  exposeTemporalMetrics: (url: string) => void,
  readiness: Readiness,
  log: Logger,
  extensions: ServiceExtensions,
): Promise<Service> {
  setStorageReplicas(config.nats.replicas);
  const nc = await connectNats(config.nats, `dialflow-${role}`);
  readiness.add(natsReadiness(nc, log));
  await ensureStreams(nc);
  const closeNats = async () => {
    try {
      await nc.drain();
    } catch (err) {
      // Stopping twice (a signal during a stop), or the connection is gone already: nothing to drain.
      if (!(err instanceof errors.ClosedConnectionError || err instanceof errors.DrainingConnectionError)) throw err;
    }
  };
  switch (role) {
    case 'worker': {
      // The SDK's own metrics (task latencies, slots, sticky cache…) on a loopback port, served
      // together with ours on /metrics.
      const corePort = config.metrics.port > 0 ? await freePort() : 0;
      // The SDK's logs (its own, workflow `log`, activity `log`) and its native core's go to our
      // logger at our level; third-party native crates only from WARN, they are noisy below.
      const level = temporalLevel(config.logLevel);
      Runtime.install({
        logger: temporalLogger(log),
        telemetryOptions: {
          logging: { filter: { core: level, other: level === 'ERROR' ? 'ERROR' : 'WARN' }, forward: {} },
          ...(corePort ? { metrics: { prometheus: { bindAddress: `127.0.0.1:${corePort}` } } } : {}),
        },
      });
      if (corePort) exposeTemporalMetrics(`http://127.0.0.1:${corePort}/metrics`);
      const w = await startFlowWorker(config, nc, registry, extensions.worker);
      readiness.add(temporalReadiness(w.connection));
      return {
        done: w.done,
        async stop() {
          await w.stop();
          await closeNats();
        },
      };
    }
    case 'bridge': {
      // grpc-js backs off reconnecting up to 2 minutes: after a long Temporal outage the bridge would
      // reconnect, and deliver the events it holds, long after Temporal is back.
      const connection = await connectTemporal(config.temporal, {
        channelArgs: { 'grpc.initial_reconnect_backoff_ms': 250, 'grpc.max_reconnect_backoff_ms': 2_000 },
      });
      readiness.add(temporalReadiness(connection));
      const client = new Client({
        connection,
        namespace: config.temporal.namespace,
        dataConverter: dataConverter(config),
      });
      const inbound = {
        flows: await KvFlowStore.open(nc),
        provider: new NatsTelephonyProvider(nc, config.provider),
        taskQueue: config.temporal.taskQueue,
      };
      const b = await startBridge({
        nc,
        client,
        metrics: bridgeMetrics(registry),
        inbound,
        provider: config.provider,
        records: recordPublisher(nc),
        logger: log,
      });
      return {
        async stop() {
          await b.stop();
          await connection.close();
          await closeNats();
        },
      };
    }
    case 'simulator': {
      requireProvider(config, role, 'simulator');
      const s = await startSimulator({
        nc,
        provider: config.provider,
        latency: parseLatency(config.simulatorLatency),
        chaos: parseChaos(config.simulatorChaos),
        registry,
        logger: log,
      });
      return {
        async stop() {
          await s.stop();
          await closeNats();
        },
      };
    }
    case 'sip-agents': {
      requireProvider(config, role, 'sip');
      const { startSipAgents } = await import('../telephony/sip/agents.js');
      // Prompt audio is named by an HMAC keyed from the payload key, so a prompt that reads back a
      // caller's PIN is not findable by hashing guesses (without a key: a plain content hash).
      const mediaNameKey = eventCodec(config)?.deriveSecret('dialflow media names');
      const s = await startSipAgents({
        nc,
        options: config.sip,
        registry,
        log: (m) => log.info(m),
        ...(mediaNameKey ? { mediaNameKey } : {}),
      });
      return {
        async stop() {
          await s.stop();
          await closeNats();
        },
      };
    }
    case 'infobip': {
      requireProvider(config, role, 'infobip');
      if (!config.infobip.baseUrl || !config.infobip.apiKey || !config.infobip.callsConfigurationId)
        throw new ConfigError(
          'dialflow infobip needs DIALFLOW_INFOBIP_BASE_URL, DIALFLOW_INFOBIP_API_KEY and DIALFLOW_INFOBIP_CALLS_CONFIGURATION_ID',
        );
      const { startInfobipProvider } = await import('../telephony/infobip/provider.js');
      const s = await startInfobipProvider({
        nc,
        options: { ...config.infobip, baseUrl: config.infobip.baseUrl, apiKey: config.infobip.apiKey },
        registry,
        log: (m) => log.info(m),
      });
      return {
        async stop() {
          await s.stop();
          await closeNats();
        },
      };
    }
    case 'webhooks': {
      requireProvider(config, role, 'infobip');
      if (!config.webhooks.user || !config.webhooks.password)
        throw new ConfigError(
          'dialflow webhooks needs DIALFLOW_WEBHOOK_USER and DIALFLOW_WEBHOOK_PASSWORD (HTTP Basic credentials Infobip sends)',
        );
      if (!config.infobip.baseUrl || !config.infobip.apiKey)
        throw new ConfigError(
          'dialflow webhooks needs DIALFLOW_INFOBIP_BASE_URL and DIALFLOW_INFOBIP_API_KEY (it downloads recordings)',
        );
      const { startWebhookServer } = await import('../telephony/infobip/webhooks.js');
      const s = await startWebhookServer({
        nc,
        options: {
          ...config.webhooks,
          user: config.webhooks.user,
          password: config.webhooks.password,
          infobip: { ...config.infobip, baseUrl: config.infobip.baseUrl, apiKey: config.infobip.apiKey },
        },
        registry,
        log: (m) => log.info(m),
      });
      log.info({ url: s.url }, 'listening');
      return {
        async stop() {
          await s.stop();
          await closeNats();
        },
      };
    }
  }
}

/** The payload codec where a key is configured: services without one (a bare simulator) publish events unsealed. */
function eventCodec(config: Config): EncryptionCodec | undefined {
  try {
    return payloadCodec(config);
  } catch (err) {
    if (err instanceof ConfigError && !config.payload.key && !config.payload.keyFile) return undefined;
    throw err;
  }
}

/** A free TCP port on loopback, for the SDK's Prometheus exporter (it cannot report a port it picked). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function runService(role: Role, extensions: ServiceExtensions = {}): Promise<void> {
  const config = loadConfig();
  const log = createLogger(role, config.logLevel);
  setEventCodec(eventCodec(config));
  const registry = createRegistry(role);
  let temporalMetricsUrl: string | undefined;
  // Not ready until the role has added its checks (NATS, and Temporal where it uses it).
  const readiness = new Readiness();
  const metrics =
    config.metrics.port > 0
      ? await startMetricsServer(
          registry,
          config.metrics.host,
          config.metrics.port,
          () => temporalMetricsUrl,
          readiness,
          log,
        )
      : undefined;
  const service = await startRole(
    role,
    config,
    registry,
    (url) => {
      temporalMetricsUrl = url;
    },
    readiness,
    log,
    extensions,
  );
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    log.info({ exitCode: code }, 'stopping');
    const force = setTimeout(() => process.exit(code), 10_000);
    force.unref();
    await service.stop().catch((err: unknown) => log.error({ err }, 'error while stopping'));
    await metrics?.close();
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));
  // Started by `dialflow dev` (or a test): exit with the parent, even if it was killed.
  process.on('disconnect', () => void shutdown(0));
  void service.done?.then(
    () => void shutdown(stopping ? 0 : 1),
    (err: unknown) => {
      log.error({ err }, 'stopped');
      void shutdown(1);
    },
  );
  log.info(metrics ? { metricsUrl: metrics.url } : {}, 'ready');
  process.send?.({ type: 'ready', ...(metrics ? { metricsUrl: metrics.url } : {}) });
}
