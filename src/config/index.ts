// Process configuration: read from the environment once at start and validated with a schema,
// so a typo fails fast with the variable's name instead of deep inside a worker.
import { z } from 'zod';
import { TASK_QUEUE } from '../workflows/messages.js';
import { chaosSchema } from '../telephony/simulator.js';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import type { PayloadCodec } from '@temporalio/common';
import { EncryptionCodec, generateKey, parseKey, PayloadKeyError, readKeyFile } from '../codec/encryption.js';
import { PROJECT_ROOT } from './tools.js';
import { NatsAuthError, natsAuthEnv, natsAuthEnvShape, natsAuthFrom, type NatsAuth } from '../telephony/nats-auth.js';
import { ConfigError } from './errors.js';
import { resolveTemporalSettings, temporalAddressSchema, temporalEnv, type TemporalSettings } from './temporal.js';

export { ConfigError, ConfigFileError } from './errors.js';
export type { TemporalSettings, TemporalConnectionSettings, TemporalTls, PemSource } from './temporal.js';

/** The JSON value of `v`, or undefined when it is not JSON (the schema then reports the variable). */
function safeJson(v: string): unknown {
  try {
    return JSON.parse(v);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    return undefined;
  }
}

/** NATS servers: comma-separated URLs (`nats://host:4222`, `tls://…`) or `host:port`. */
export const natsServersSchema = z
  .string()
  .min(1)
  .refine(
    (v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .every((s) => /^((nats|tls|ws|wss):\/\/)?[^\s,/]+(:\d{1,5})?\/?$/.test(s)),
    'comma-separated NATS URLs such as nats://127.0.0.1:4222',
  );

const port = z.coerce.number().int().min(0).max(65535);
const envSchema = z.object({
  /** Address and namespace: over TEMPORAL_ADDRESS/NAMESPACE and the Temporal profile (config/temporal.ts). */
  DIALFLOW_TEMPORAL_ADDRESS: temporalAddressSchema.optional(),
  DIALFLOW_TEMPORAL_NAMESPACE: z.string().min(1).optional(),
  /** `off`: read neither TEMPORAL_* nor temporal.toml (set by `dialflow dev` for its own server). */
  DIALFLOW_TEMPORAL_ENVCONFIG: z.enum(['on', 'off'], { error: 'on or off' }).default('on'),
  DIALFLOW_TASK_QUEUE: z.string().min(1).default(TASK_QUEUE),
  DIALFLOW_NATS_SERVERS: natsServersSchema.default('nats://127.0.0.1:4222'),
  /** A token for servers configured with `authorization { token: … }` (instead of a user identity). */
  DIALFLOW_NATS_TOKEN: z.string().min(1).optional(),
  /** Copies of streams and buckets: 1 for one nats-server, 3 for a cluster. */
  DIALFLOW_NATS_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
  /** This process's NATS identity and TLS: DIALFLOW_NATS_USER/PASSWORD, _NKEY_SEED_FILE or _CREDS, _INBOX_PREFIX, _TLS_CA/CERT/KEY (telephony/nats-auth.ts). */
  ...natsAuthEnvShape,
  /** Which telephony provider places and receives calls (`sim` is the old name of `simulator`). */
  DIALFLOW_PROVIDER: z
    .enum(['simulator', 'sim', 'sip', 'infobip'], { error: 'one of simulator, sip, infobip' })
    .default('simulator')
    .transform((v): ProviderKind => (v === 'sim' ? 'simulator' : v)),
  /** SIP: concurrent channels (one baresip user agent each) — the provider's channel limit. */
  DIALFLOW_SIP_CHANNELS: z.coerce.number().int().min(1).max(500).default(4),
  /** SIP: trunk or proxy that outbound calls go through, e.g. `sip:127.0.0.1:5080` or `sip:sip.carrier.example;transport=tcp`. */
  DIALFLOW_SIP_TRUNK: z
    .string()
    .regex(/^sips?:[^\s@]+$/, 'a SIP URI of the trunk or proxy without a user, e.g. sip:127.0.0.1:5080')
    .optional(),
  DIALFLOW_SIP_TRUNK_USER: z.string().min(1).optional(),
  DIALFLOW_SIP_TRUNK_PASSWORD: z.string().min(1).optional(),
  /** SIP: the address the agents bind SIP and RTP to. */
  DIALFLOW_SIP_HOST: z.string().min(1).default('127.0.0.1'),
  /** SIP: how long a dial waits for a free channel before it fails. */
  DIALFLOW_SIP_DIAL_WAIT_MS: z.coerce.number().int().min(0).max(600_000).default(30_000),
  DIALFLOW_SIP_RING_TIMEOUT_S: z.coerce.number().int().min(5).max(300).default(30),
  /** SIP: the user the agents register as at the trunk/registrar, to receive inbound calls. */
  DIALFLOW_SIP_INBOUND_USER: z
    .string()
    .regex(/^[A-Za-z0-9+._-]+$/)
    .default('dialflow'),
  /** SIP: numbers (E.164, comma-separated) the agents answer for; an INVITE to one runs the flow published for it. */
  DIALFLOW_SIP_INBOUND_NUMBERS: z
    .string()
    .default('')
    .refine(
      (v) => v.split(',').every((n) => n.trim() === '' || /^\+?[0-9]{3,15}$/.test(n.trim())),
      'comma-separated phone numbers such as +14155550100',
    ),
  /** SIP: working directory of the agents (configs, prompts, recordings in progress). */
  DIALFLOW_SIP_WORK_DIR: z.string().min(1).optional(),
  /** Infobip: the account's API base URL, e.g. https://xxxxx.api.infobip.com. */
  DIALFLOW_INFOBIP_BASE_URL: z
    .url({ protocol: /^https?$/, error: 'an http(s) URL such as https://xxxxx.api.infobip.com' })
    .optional(),
  DIALFLOW_INFOBIP_API_KEY: z.string().min(1).optional(),
  /** Infobip: API requests per second this process sends at most (the account's rate limit). */
  DIALFLOW_INFOBIP_RPS: z.coerce.number().min(0.1).max(1000).default(5),
  /** Infobip: the calls configuration every created call names (its subscription delivers our webhooks). */
  DIALFLOW_INFOBIP_CALLS_CONFIGURATION_ID: z.string().min(1).optional(),
  /** Infobip: the SIP trunk that `sip:` destinations go through. */
  DIALFLOW_INFOBIP_SIP_TRUNK_ID: z.string().min(1).optional(),
  /** Webhook ingress (`dialflow webhooks`). */
  DIALFLOW_WEBHOOK_HOST: z.string().min(1).default('127.0.0.1'),
  DIALFLOW_WEBHOOK_PORT: port.default(8090),
  DIALFLOW_WEBHOOK_USER: z.string().min(1).optional(),
  DIALFLOW_WEBHOOK_PASSWORD: z.string().min(8, 'at least 8 characters').optional(),
  DIALFLOW_WEBHOOK_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(10 * 2 ** 20)
    .default(64 * 1024),
  /** 0 disables the /metrics endpoint. */
  DIALFLOW_METRICS_PORT: port.default(0),
  DIALFLOW_METRICS_HOST: z.string().default('127.0.0.1'),
  /** Simulator latency profile: `demo`, `instant`, or a JSON object of SimulatorLatency fields. */
  DIALFLOW_SIM_LATENCY: z.string().default('demo'),
  /** Simulator chaos: empty for none, or JSON `{"duplicate","reorder","redeliver","redeliverAfterMs","seed"}`. */
  DIALFLOW_SIM_CHAOS: z
    .string()
    .default('')
    .refine(
      (v) => v.trim() === '' || chaosSchema.safeParse(safeJson(v)).success,
      'JSON with duplicate/reorder/redeliver shares from 0 to 1',
    ),
  /** Payload encryption key (32 bytes, base64 or hex), or a file holding it. */
  DIALFLOW_PAYLOAD_KEY: z.string().optional(),
  DIALFLOW_PAYLOAD_KEY_FILE: z.string().optional(),
  /** Comma-separated older keys, still used to decrypt after a rotation. */
  DIALFLOW_PAYLOAD_PREVIOUS_KEYS: z.string().default(''),
  /** Workflows kept in the worker's cache (0: the SDK's default, sized from memory). */
  DIALFLOW_MAX_CACHED_WORKFLOWS: z.coerce.number().int().min(0).default(0),
  DIALFLOW_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
});

export const PROVIDER_KINDS = ['simulator', 'sip', 'infobip'] as const;
export type ProviderKind = (typeof PROVIDER_KINDS)[number];

export interface SipConfig {
  /** Number of baresip agents = concurrent calls. */
  channels: number;
  /** Proxy or carrier trunk, e.g. `sip:127.0.0.1:5080`. Without it only `sip:` destinations can be dialled. */
  trunk?: string;
  trunkUser?: string;
  trunkPassword?: string;
  /** The address the agents bind SIP and RTP to. */
  host: string;
  /** How long a dial waits for a free channel. */
  dialWaitMs: number;
  ringTimeoutSeconds: number;
  /** AOR user the agents register as, for inbound calls. */
  inboundUser: string;
  /** Numbers the agents also register, so an INVITE to one shows that number as `to`. */
  inboundNumbers: string[];
  workDir?: string;
}
export interface InfobipConfig {
  baseUrl?: string;
  apiKey?: string;
  requestsPerSecond: number;
  callsConfigurationId?: string;
  sipTrunkId?: string;
}
export interface WebhookConfig {
  host: string;
  port: number;
  user?: string;
  password?: string;
  maxBodyBytes: number;
}

export interface Config {
  temporal: TemporalSettings;
  /**
   * `auth` and `token` absent: connectNats falls back to dev's operator credentials
   * (telephony/nats-auth.ts). `token` is the other way to say who this client is, besides `auth`'s
   * user/password, nkey or creds file; `auth` may still carry TLS and the inbox prefix.
   */
  nats: { servers: string[]; replicas: number; auth?: NatsAuth; token?: string };
  provider: ProviderKind;
  sip: SipConfig;
  infobip: InfobipConfig;
  webhooks: WebhookConfig;
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
    throw new ConfigError(`invalid configuration:\n${z.prettifyError(parsed.error)}`);
  }
  const e = parsed.data;
  if (Boolean(e.DIALFLOW_SIP_TRUNK_USER) !== Boolean(e.DIALFLOW_SIP_TRUNK_PASSWORD)) {
    throw new ConfigError('invalid configuration: DIALFLOW_SIP_TRUNK_USER and DIALFLOW_SIP_TRUNK_PASSWORD go together');
  }
  let natsAuth: NatsAuth | undefined;
  try {
    natsAuth = natsAuthFrom(e);
  } catch (err) {
    if (!(err instanceof NatsAuthError)) throw err;
    throw new ConfigError(`invalid configuration: ${err.message}`, { cause: err });
  }
  if (e.DIALFLOW_NATS_TOKEN && (natsAuth?.user || natsAuth?.nkeySeedFile || natsAuth?.credsFile))
    throw new ConfigError(
      'invalid configuration: set one of DIALFLOW_NATS_TOKEN, DIALFLOW_NATS_USER/PASSWORD, DIALFLOW_NATS_NKEY_SEED_FILE or DIALFLOW_NATS_CREDS, not several',
    );
  const temporal = resolveTemporalSettings(env, {
    ...(e.DIALFLOW_TEMPORAL_ADDRESS ? { address: e.DIALFLOW_TEMPORAL_ADDRESS } : {}),
    ...(e.DIALFLOW_TEMPORAL_NAMESPACE ? { namespace: e.DIALFLOW_TEMPORAL_NAMESPACE } : {}),
    taskQueue: e.DIALFLOW_TASK_QUEUE,
    useEnvConfig: e.DIALFLOW_TEMPORAL_ENVCONFIG === 'on',
  });
  return {
    temporal,
    nats: {
      servers: e.DIALFLOW_NATS_SERVERS.split(',')
        .map((s) => s.trim())
        .filter(Boolean),
      replicas: e.DIALFLOW_NATS_REPLICAS,
      ...(natsAuth ? { auth: natsAuth } : {}),
      ...(e.DIALFLOW_NATS_TOKEN ? { token: e.DIALFLOW_NATS_TOKEN } : {}),
    },
    provider: e.DIALFLOW_PROVIDER,
    sip: {
      channels: e.DIALFLOW_SIP_CHANNELS,
      ...(e.DIALFLOW_SIP_TRUNK ? { trunk: e.DIALFLOW_SIP_TRUNK } : {}),
      ...(e.DIALFLOW_SIP_TRUNK_USER ? { trunkUser: e.DIALFLOW_SIP_TRUNK_USER } : {}),
      ...(e.DIALFLOW_SIP_TRUNK_PASSWORD ? { trunkPassword: e.DIALFLOW_SIP_TRUNK_PASSWORD } : {}),
      host: e.DIALFLOW_SIP_HOST,
      dialWaitMs: e.DIALFLOW_SIP_DIAL_WAIT_MS,
      ringTimeoutSeconds: e.DIALFLOW_SIP_RING_TIMEOUT_S,
      inboundUser: e.DIALFLOW_SIP_INBOUND_USER,
      inboundNumbers: e.DIALFLOW_SIP_INBOUND_NUMBERS.split(',')
        .map((n) => n.trim())
        .filter(Boolean),
      ...(e.DIALFLOW_SIP_WORK_DIR ? { workDir: e.DIALFLOW_SIP_WORK_DIR } : {}),
    },
    infobip: {
      ...(e.DIALFLOW_INFOBIP_BASE_URL ? { baseUrl: e.DIALFLOW_INFOBIP_BASE_URL.replace(/\/+$/, '') } : {}),
      ...(e.DIALFLOW_INFOBIP_API_KEY ? { apiKey: e.DIALFLOW_INFOBIP_API_KEY } : {}),
      requestsPerSecond: e.DIALFLOW_INFOBIP_RPS,
      ...(e.DIALFLOW_INFOBIP_CALLS_CONFIGURATION_ID
        ? { callsConfigurationId: e.DIALFLOW_INFOBIP_CALLS_CONFIGURATION_ID }
        : {}),
      ...(e.DIALFLOW_INFOBIP_SIP_TRUNK_ID ? { sipTrunkId: e.DIALFLOW_INFOBIP_SIP_TRUNK_ID } : {}),
    },
    webhooks: {
      host: e.DIALFLOW_WEBHOOK_HOST,
      port: e.DIALFLOW_WEBHOOK_PORT,
      ...(e.DIALFLOW_WEBHOOK_USER ? { user: e.DIALFLOW_WEBHOOK_USER } : {}),
      ...(e.DIALFLOW_WEBHOOK_PASSWORD ? { password: e.DIALFLOW_WEBHOOK_PASSWORD } : {}),
      maxBodyBytes: e.DIALFLOW_WEBHOOK_MAX_BYTES,
    },
    metrics: { host: e.DIALFLOW_METRICS_HOST, port: e.DIALFLOW_METRICS_PORT },
    simulatorLatency: e.DIALFLOW_SIM_LATENCY,
    simulatorChaos: e.DIALFLOW_SIM_CHAOS,
    maxCachedWorkflows: e.DIALFLOW_MAX_CACHED_WORKFLOWS,
    payload: {
      ...(e.DIALFLOW_PAYLOAD_KEY ? { key: e.DIALFLOW_PAYLOAD_KEY } : {}),
      ...(e.DIALFLOW_PAYLOAD_KEY_FILE ? { keyFile: e.DIALFLOW_PAYLOAD_KEY_FILE } : {}),
      previousKeys: e.DIALFLOW_PAYLOAD_PREVIOUS_KEYS.split(',')
        .map((k) => k.trim())
        .filter(Boolean),
    },
    logLevel: e.DIALFLOW_LOG_LEVEL,
  };
}

/**
 * The environment a child process needs to get the same configuration (on top of this process's
 * own environment, which it inherits: see temporalEnv for what travels that way).
 */
export function configEnv(c: Config): Record<string, string> {
  return {
    ...temporalEnv(c.temporal),
    DIALFLOW_NATS_SERVERS: c.nats.servers.join(','),
    DIALFLOW_NATS_REPLICAS: String(c.nats.replicas),
    ...natsAuthEnv(c.nats.auth),
    ...(c.nats.token ? { DIALFLOW_NATS_TOKEN: c.nats.token } : {}),
    DIALFLOW_PROVIDER: c.provider,
    DIALFLOW_SIP_CHANNELS: String(c.sip.channels),
    ...(c.sip.trunk ? { DIALFLOW_SIP_TRUNK: c.sip.trunk } : {}),
    ...(c.sip.trunkUser ? { DIALFLOW_SIP_TRUNK_USER: c.sip.trunkUser } : {}),
    ...(c.sip.trunkPassword ? { DIALFLOW_SIP_TRUNK_PASSWORD: c.sip.trunkPassword } : {}),
    DIALFLOW_SIP_HOST: c.sip.host,
    DIALFLOW_SIP_DIAL_WAIT_MS: String(c.sip.dialWaitMs),
    DIALFLOW_SIP_RING_TIMEOUT_S: String(c.sip.ringTimeoutSeconds),
    DIALFLOW_SIP_INBOUND_USER: c.sip.inboundUser,
    DIALFLOW_SIP_INBOUND_NUMBERS: c.sip.inboundNumbers.join(','),
    ...(c.sip.workDir ? { DIALFLOW_SIP_WORK_DIR: c.sip.workDir } : {}),
    ...(c.infobip.baseUrl ? { DIALFLOW_INFOBIP_BASE_URL: c.infobip.baseUrl } : {}),
    ...(c.infobip.apiKey ? { DIALFLOW_INFOBIP_API_KEY: c.infobip.apiKey } : {}),
    DIALFLOW_INFOBIP_RPS: String(c.infobip.requestsPerSecond),
    ...(c.infobip.callsConfigurationId
      ? { DIALFLOW_INFOBIP_CALLS_CONFIGURATION_ID: c.infobip.callsConfigurationId }
      : {}),
    ...(c.infobip.sipTrunkId ? { DIALFLOW_INFOBIP_SIP_TRUNK_ID: c.infobip.sipTrunkId } : {}),
    DIALFLOW_WEBHOOK_HOST: c.webhooks.host,
    DIALFLOW_WEBHOOK_PORT: String(c.webhooks.port),
    ...(c.webhooks.user ? { DIALFLOW_WEBHOOK_USER: c.webhooks.user } : {}),
    ...(c.webhooks.password ? { DIALFLOW_WEBHOOK_PASSWORD: c.webhooks.password } : {}),
    DIALFLOW_WEBHOOK_MAX_BYTES: String(c.webhooks.maxBodyBytes),
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
    if (!(err instanceof PayloadKeyError)) throw err;
    throw new ConfigError(err.message, { cause: err });
  }
  throw new ConfigError(
    `no payload encryption key: set DIALFLOW_PAYLOAD_KEY (32 bytes, base64; \`openssl rand -base64 32\`) or DIALFLOW_PAYLOAD_KEY_FILE — or run \`dialflow dev\`, which creates ${DEV_PAYLOAD_KEY_FILE}`,
  );
}

/** The data converter for Temporal clients and workers. */
export function dataConverter(c: Config): { payloadCodecs: PayloadCodec[] } {
  return { payloadCodecs: [payloadCodec(c)] };
}

/** A random secret kept in a file (0600), created once: `dialflow dev`'s webhook password. */
export function ensureSecretFile(file: string): string {
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${randomBytes(18).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  }
  return readFileSync(file, 'utf8').trim();
}

/** Create the dev key file once (0600); an explicitly configured key wins. */
export function ensureDevPayloadKey(file: string = DEV_PAYLOAD_KEY_FILE): string {
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${generateKey()}\n`, { mode: 0o600, flag: 'wx' });
  }
  return file;
}
