// Process configuration: read from the environment once at start and validated with a schema,
// so a typo fails fast with the variable's name instead of deep inside a worker.
import { z } from 'zod';
import { TASK_QUEUE } from '../workflows/messages.js';
import { chaosSchema } from '../telephony/simulator.js';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { PayloadCodec } from '@temporalio/common';
import { EncryptionCodec, generateKey, parseKey, readKeyFile } from '../codec/encryption.js';
import { PROJECT_ROOT } from './tools.js';

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
  /** Copies of streams and buckets: 1 for one nats-server, 3 for a cluster. */
  DIALFLOW_NATS_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
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
  /** Payload encryption key (32 bytes, base64 or hex), or a file holding it. */
  DIALFLOW_PAYLOAD_KEY: z.string().optional(),
  DIALFLOW_PAYLOAD_KEY_FILE: z.string().optional(),
  /** Comma-separated older keys, still used to decrypt after a rotation. */
  DIALFLOW_PAYLOAD_PREVIOUS_KEYS: z.string().default(''),
  /** Workflows kept in the worker's cache (0: the SDK's default, sized from memory). */
  DIALFLOW_MAX_CACHED_WORKFLOWS: z.coerce.number().int().min(0).default(0),
  DIALFLOW_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
});

export interface Config {
  temporal: { address: string; namespace: string; taskQueue: string };
  nats: { servers: string[]; replicas: number };
  provider: string;
  metrics: { host: string; port: number };
  simulatorLatency: string;
  simulatorChaos: string;
  payload: { key?: string; keyFile?: string; previousKeys: string[] };
  maxCachedWorkflows: number;
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
    nats: { servers: e.DIALFLOW_NATS_SERVERS.split(',').map((s) => s.trim()).filter(Boolean), replicas: e.DIALFLOW_NATS_REPLICAS },
    provider: e.DIALFLOW_PROVIDER,
    metrics: { host: e.DIALFLOW_METRICS_HOST, port: e.DIALFLOW_METRICS_PORT },
    simulatorLatency: e.DIALFLOW_SIM_LATENCY,
    simulatorChaos: e.DIALFLOW_SIM_CHAOS,
    maxCachedWorkflows: e.DIALFLOW_MAX_CACHED_WORKFLOWS,
    payload: {
      ...(e.DIALFLOW_PAYLOAD_KEY ? { key: e.DIALFLOW_PAYLOAD_KEY } : {}),
      ...(e.DIALFLOW_PAYLOAD_KEY_FILE ? { keyFile: e.DIALFLOW_PAYLOAD_KEY_FILE } : {}),
      previousKeys: e.DIALFLOW_PAYLOAD_PREVIOUS_KEYS.split(',').map((k) => k.trim()).filter(Boolean),
    },
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
    DIALFLOW_NATS_REPLICAS: String(c.nats.replicas),
    DIALFLOW_PROVIDER: c.provider,
    DIALFLOW_METRICS_HOST: c.metrics.host,
    DIALFLOW_METRICS_PORT: String(c.metrics.port),
    DIALFLOW_SIM_LATENCY: c.simulatorLatency,
    DIALFLOW_SIM_CHAOS: c.simulatorChaos,
    DIALFLOW_MAX_CACHED_WORKFLOWS: String(c.maxCachedWorkflows),
    ...(c.payload.key ? { DIALFLOW_PAYLOAD_KEY: c.payload.key } : {}),
    ...(c.payload.keyFile ? { DIALFLOW_PAYLOAD_KEY_FILE: c.payload.keyFile } : {}),
    DIALFLOW_PAYLOAD_PREVIOUS_KEYS: c.payload.previousKeys.join(','),
    DIALFLOW_LOG_LEVEL: c.logLevel,
  };
}

/** Where `dialflow dev` keeps the key it generates, and where other commands look when none is set. */
export const DEV_PAYLOAD_KEY_FILE = join(PROJECT_ROOT, '.data', 'payload.key');

/**
 * The payload codec of this process. Every Temporal client and worker of dialflow uses it: without
 * the key nothing can read call data, and with it Temporal never stores masked digits in clear.
 */
export function payloadCodec(c: Config): EncryptionCodec {
  try {
    const previous = c.payload.previousKeys.map((k, i) => parseKey(k, `DIALFLOW_PAYLOAD_PREVIOUS_KEYS[${i}]`));
    if (c.payload.key) return new EncryptionCodec(parseKey(c.payload.key, 'DIALFLOW_PAYLOAD_KEY'), previous);
    if (c.payload.keyFile) return new EncryptionCodec(readKeyFile(c.payload.keyFile), previous);
    if (existsSync(DEV_PAYLOAD_KEY_FILE)) return new EncryptionCodec(readKeyFile(DEV_PAYLOAD_KEY_FILE), previous);
  } catch (err) {
    throw new ConfigError((err as Error).message, { cause: err });
  }
  throw new ConfigError(`no payload encryption key: set DIALFLOW_PAYLOAD_KEY (32 bytes, base64; \`openssl rand -base64 32\`) or DIALFLOW_PAYLOAD_KEY_FILE — or run \`dialflow dev\`, which creates ${DEV_PAYLOAD_KEY_FILE}`);
}

/** The data converter for Temporal clients and workers. */
export function dataConverter(c: Config): { payloadCodecs: PayloadCodec[] } {
  return { payloadCodecs: [payloadCodec(c)] };
}

/** Create the dev key file once (0600); an explicitly configured key wins. */
export function ensureDevPayloadKey(file: string = DEV_PAYLOAD_KEY_FILE): string {
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${generateKey()}\n`, { mode: 0o600, flag: 'wx' });
  }
  return file;
}
