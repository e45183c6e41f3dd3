// Process configuration: read from the environment once at start and validated with a schema,
// so a typo fails fast with the variable's name instead of deep inside a worker.
import { z } from 'zod';
import { TASK_QUEUE } from '../workflows/messages.js';
import { chaosSchema } from '../telephony/simulator.js';

function safeJson(v: string): unknown {
  try {
    return JSON.parse(v);
  } catch {
    return undefined;
  }
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const port = z.coerce.number().int().min(0).max(65535);
const envSchema = z.object({
  DIALFLOW_TEMPORAL_ADDRESS: z.string().min(1).default('127.0.0.1:7233'),
  DIALFLOW_TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  DIALFLOW_TASK_QUEUE: z.string().min(1).default(TASK_QUEUE),
  DIALFLOW_NATS_SERVERS: z.string().min(1).default('nats://127.0.0.1:4222'),
  DIALFLOW_PROVIDER: z.string().regex(/^[a-z0-9-]+$/, 'lowercase letters, digits and "-"').default('sim'),
  /** 0 disables the /metrics endpoint. */
  DIALFLOW_METRICS_PORT: port.default(0),
  DIALFLOW_METRICS_HOST: z.string().default('127.0.0.1'),
  /** Simulator latency profile: `demo`, `instant`, or a JSON object of SimulatorLatency fields. */
  DIALFLOW_SIM_LATENCY: z.string().default('demo'),
  /** Simulator chaos: empty for none, or JSON `{"duplicate","reorder","redeliver","redeliverAfterMs","seed"}`. */
  DIALFLOW_SIM_CHAOS: z
    .string()
    .default('')
    .refine((v) => v.trim() === '' || chaosSchema.safeParse(safeJson(v)).success, 'JSON with duplicate/reorder/redeliver shares from 0 to 1'),
  DIALFLOW_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
});

export interface Config {
  temporal: { address: string; namespace: string; taskQueue: string };
  nats: { servers: string[] };
  provider: string;
  metrics: { host: string; port: number };
  simulatorLatency: string;
  simulatorChaos: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(`invalid configuration: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const e = parsed.data;
  return {
    temporal: { address: e.DIALFLOW_TEMPORAL_ADDRESS, namespace: e.DIALFLOW_TEMPORAL_NAMESPACE, taskQueue: e.DIALFLOW_TASK_QUEUE },
    nats: { servers: e.DIALFLOW_NATS_SERVERS.split(',').map((s) => s.trim()).filter(Boolean) },
    provider: e.DIALFLOW_PROVIDER,
    metrics: { host: e.DIALFLOW_METRICS_HOST, port: e.DIALFLOW_METRICS_PORT },
    simulatorLatency: e.DIALFLOW_SIM_LATENCY,
    simulatorChaos: e.DIALFLOW_SIM_CHAOS,
    logLevel: e.DIALFLOW_LOG_LEVEL,
  };
}

/** The environment a child process needs to get the same configuration. */
export function configEnv(c: Config): Record<string, string> {
  return {
    DIALFLOW_TEMPORAL_ADDRESS: c.temporal.address,
    DIALFLOW_TEMPORAL_NAMESPACE: c.temporal.namespace,
    DIALFLOW_TASK_QUEUE: c.temporal.taskQueue,
    DIALFLOW_NATS_SERVERS: c.nats.servers.join(','),
    DIALFLOW_PROVIDER: c.provider,
    DIALFLOW_METRICS_HOST: c.metrics.host,
    DIALFLOW_METRICS_PORT: String(c.metrics.port),
    DIALFLOW_SIM_LATENCY: c.simulatorLatency,
    DIALFLOW_SIM_CHAOS: c.simulatorChaos,
    DIALFLOW_LOG_LEVEL: c.logLevel,
  };
}
