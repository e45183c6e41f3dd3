// How the CLI reaches a running stack. The connection flags are defined once, on the root program;
// a preAction hook parses them into the CliContext, which resolves them with the environment into
// the one Config of the command (flags > DIALFLOW_* > TEMPORAL_* > Temporal profile > defaults, see
// docs/configuration.md). withNats and withTemporal open a command's connections from it, and
// report an unreachable server or refused credentials as one line with the fix.
import { Client, isGrpcServiceError, type Connection } from '@temporalio/client';
import { errors, type NatsConnection } from '@nats-io/transport-node';
import { Option, type Command } from 'commander';
import { z } from 'zod';
import { ConfigError, loadConfig, natsServersSchema, payloadCodec, type Config } from '../config/index.js';
import { temporalAddressSchema } from '../config/temporal.js';
import type { EncryptionCodec } from '../codec/encryption.js';
import {
  checkWorkerKeys,
  currentWorkerKeyIds,
  PayloadKeyMismatchError,
  workerKeys,
  type WorkerKeys,
} from '../codec/key-check.js';
import { connectTemporal } from '../client/connection.js';
import { connectNats, type NatsConnectSettings } from '../telephony/nats.js';
import { defaultNatsAuth, NatsAuthError } from '../telephony/nats-auth.js';
import { CliError } from './errors.js';
import { schemaOption } from './options.js';
import { isTemporalUnreachable } from '../dev/stack.js';

// ---------------------------------------------------------------------------------------------
// Flags

const NATS_IDENTITY_VARIABLES = [
  'DIALFLOW_NATS_USER',
  'DIALFLOW_NATS_PASSWORD',
  'DIALFLOW_NATS_NKEY_SEED_FILE',
  'DIALFLOW_NATS_CREDS',
  'DIALFLOW_NATS_TOKEN',
];

interface ConnectionFlag {
  /** The option's attribute name (commander's camelCase of the long flag). */
  key: keyof ConnectionFlags;
  /** A new Option each time: commander keeps state (its help group) on the Option of each program. */
  option: () => Option;
  /** The variable the flag's value stands in for: flags are laid over the environment. */
  variable: string;
  /** Variables the flag replaces: a flag naming one identity drops another one named in the environment. */
  replaces?: string[];
  /** Whether `dialflow dev` takes it (dev runs its own servers: addresses and credentials are its own). */
  dev?: boolean;
}

/** The connection flags as commander hands them over (checked again at this edge). */
const connectionFlagsSchema = z.object({
  temporal: z.string().optional(),
  namespace: z.string().min(1).optional(),
  taskQueue: z.string().min(1).optional(),
  temporalProfile: z.string().min(1).optional(),
  temporalConfigFile: z.string().min(1).optional(),
  temporalTls: z.boolean().optional(),
  temporalTlsCert: z.string().min(1).optional(),
  temporalTlsKey: z.string().min(1).optional(),
  temporalTlsCa: z.string().min(1).optional(),
  temporalTlsServerName: z.string().min(1).optional(),
  nats: z.string().optional(),
  natsCreds: z.string().min(1).optional(),
  natsNkeySeedFile: z.string().min(1).optional(),
  natsUser: z.string().min(1).optional(),
  natsTlsCa: z.string().min(1).optional(),
  natsTlsCert: z.string().min(1).optional(),
  natsTlsKey: z.string().min(1).optional(),
});
export type ConnectionFlags = z.infer<typeof connectionFlagsSchema>;

const NATS_IDENTITY_FLAGS = ['natsCreds', 'natsNkeySeedFile', 'natsUser'] as const;
const otherIdentityFlags = (own: (typeof NATS_IDENTITY_FLAGS)[number]) => NATS_IDENTITY_FLAGS.filter((f) => f !== own);

const CONNECTION_FLAGS: ConnectionFlag[] = [
  {
    key: 'temporal',
    option: () =>
      new Option(
        '--temporal <address>',
        'Temporal frontend host:port (DIALFLOW_TEMPORAL_ADDRESS, TEMPORAL_ADDRESS, the profile; default 127.0.0.1:7233)',
      ).argParser(schemaOption(temporalAddressSchema)),
    variable: 'DIALFLOW_TEMPORAL_ADDRESS',
  },
  {
    key: 'namespace',
    option: () =>
      new Option(
        '--namespace <namespace>',
        'Temporal namespace (DIALFLOW_TEMPORAL_NAMESPACE, TEMPORAL_NAMESPACE, the profile; default "default")',
      ),
    variable: 'DIALFLOW_TEMPORAL_NAMESPACE',
    dev: true,
  },
  {
    key: 'taskQueue',
    option: () =>
      new Option('--task-queue <queue>', 'task queue of the workers (DIALFLOW_TASK_QUEUE; default dialflow-calls)'),
    variable: 'DIALFLOW_TASK_QUEUE',
    dev: true,
  },
  {
    key: 'temporalProfile',
    option: () => new Option('--temporal-profile <name>', 'profile of the Temporal config file (default "default")'),
    variable: 'TEMPORAL_PROFILE',
  },
  {
    key: 'temporalConfigFile',
    option: () =>
      new Option(
        '--temporal-config-file <file>',
        'Temporal config file (TOML; default ~/.config/temporalio/temporal.toml)',
      ),
    variable: 'TEMPORAL_CONFIG_FILE',
  },
  {
    key: 'temporalTls',
    option: () =>
      new Option('--temporal-tls', 'connect to Temporal with TLS (implied by a client certificate or API key)'),
    variable: 'TEMPORAL_TLS',
  },
  {
    key: 'temporalTls',
    option: () => new Option('--no-temporal-tls', 'connect to Temporal without TLS, even with an API key'),
    variable: 'TEMPORAL_TLS',
  },
  {
    key: 'temporalTlsCert',
    option: () => new Option('--temporal-tls-cert <file>', 'TLS client certificate (PEM) for Temporal'),
    variable: 'TEMPORAL_TLS_CLIENT_CERT_PATH',
    replaces: ['TEMPORAL_TLS_CLIENT_CERT_DATA'],
  },
  {
    key: 'temporalTlsKey',
    option: () => new Option('--temporal-tls-key <file>', 'TLS client key (PEM) for Temporal'),
    variable: 'TEMPORAL_TLS_CLIENT_KEY_PATH',
    replaces: ['TEMPORAL_TLS_CLIENT_KEY_DATA'],
  },
  {
    key: 'temporalTlsCa',
    option: () =>
      new Option('--temporal-tls-ca <file>', "CA (PEM) of the Temporal server's certificate (default: system CAs)"),
    variable: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
    replaces: ['TEMPORAL_TLS_SERVER_CA_CERT_DATA'],
  },
  {
    key: 'temporalTlsServerName',
    option: () => new Option('--temporal-tls-server-name <name>', "name the Temporal server's certificate carries"),
    variable: 'TEMPORAL_TLS_SERVER_NAME',
  },
  {
    key: 'nats',
    option: () =>
      new Option(
        '--nats <urls>',
        'NATS servers, comma-separated (DIALFLOW_NATS_SERVERS; default nats://127.0.0.1:4222)',
      ).argParser(schemaOption(natsServersSchema)),
    variable: 'DIALFLOW_NATS_SERVERS',
  },
  {
    key: 'natsCreds',
    option: () =>
      new Option('--nats-creds <file>', 'NATS .creds file (user JWT and seed)').conflicts(
        otherIdentityFlags('natsCreds'),
      ),
    variable: 'DIALFLOW_NATS_CREDS',
    replaces: NATS_IDENTITY_VARIABLES,
  },
  {
    key: 'natsNkeySeedFile',
    option: () =>
      new Option('--nats-nkey-seed-file <file>', 'file holding the NATS nkey seed (SU…)').conflicts(
        otherIdentityFlags('natsNkeySeedFile'),
      ),
    variable: 'DIALFLOW_NATS_NKEY_SEED_FILE',
    replaces: NATS_IDENTITY_VARIABLES,
  },
  {
    key: 'natsUser',
    option: () =>
      new Option('--nats-user <name>', 'NATS user (the password from DIALFLOW_NATS_PASSWORD)').conflicts(
        otherIdentityFlags('natsUser'),
      ),
    variable: 'DIALFLOW_NATS_USER',
    // The password stays: it is only ever given in the environment, never on a command line.
    replaces: NATS_IDENTITY_VARIABLES.filter((v) => v !== 'DIALFLOW_NATS_PASSWORD'),
  },
  {
    key: 'natsTlsCa',
    option: () => new Option('--nats-tls-ca <file>', "CA (PEM) of the NATS server's certificate; turns TLS on"),
    variable: 'DIALFLOW_NATS_TLS_CA',
  },
  {
    key: 'natsTlsCert',
    option: () => new Option('--nats-tls-cert <file>', 'TLS client certificate (PEM) for NATS'),
    variable: 'DIALFLOW_NATS_TLS_CERT',
  },
  {
    key: 'natsTlsKey',
    option: () => new Option('--nats-tls-key <file>', 'TLS client key (PEM) for NATS'),
    variable: 'DIALFLOW_NATS_TLS_KEY',
  },
];

/** Define the connection flags on the root program (commander recognises them before and after a subcommand). */
export function addConnectionOptions(program: Command): Command {
  for (const f of CONNECTION_FLAGS) program.addOption(f.option().helpGroup('Connection options:'));
  return program;
}

/** The flags as variables to lay over the environment; `undefined` removes a variable a flag replaces. */
export function connectionEnv(flags: ConnectionFlags): Record<string, string | undefined> {
  const overlay: Record<string, string | undefined> = {};
  for (const f of CONNECTION_FLAGS) {
    const value = flags[f.key];
    if (value === undefined) continue;
    for (const v of f.replaces ?? []) overlay[v] = undefined;
    overlay[f.variable] = typeof value === 'boolean' ? String(value) : value;
  }
  return overlay;
}

/** The long flags among these that `dialflow dev` does not take (it runs its own servers). */
export function flagsNotForDev(flags: ConnectionFlags): string[] {
  return CONNECTION_FLAGS.filter((f) => !f.dev && flags[f.key] !== undefined)
    .map((f) => f.option())
    .filter((option) => option.negate === (flags[option.attributeName() as keyof ConnectionFlags] === false))
    .map((option) => option.long ?? option.flags);
}

/**
 * What one command invocation knows about its connections: the flags (parsed once, by the root
 * program's preAction hook) and the Config they resolve to (built once, on first use).
 */
export class CliContext {
  private flags: ConnectionFlags = {};
  private resolved: Config | undefined;
  /** The command whose action runs (for the prefix of its error messages). */
  command: Command | undefined;
  private readonly connecting = new WeakSet<Command>();

  constructor(private readonly baseEnv: Record<string, string | undefined> = process.env) {}

  /** Mark a command that talks to the stack: its configuration is resolved before its action runs. */
  connects(command: Command): Command {
    this.connecting.add(command);
    return command;
  }

  /** The root program's preAction hook: take the flags, and resolve the config for a connecting command. */
  prepare(rootOptions: unknown, action: Command): void {
    this.command = action;
    this.flags = connectionFlagsSchema.parse(rootOptions);
    this.resolved = undefined;
    // Before the action: a bad setting or a profile that is not there stops the command before it
    // stages recipients or uploads audio.
    if (this.connecting.has(action)) this.config();
  }

  get connectionFlags(): ConnectionFlags {
    return this.flags;
  }

  /** The environment with the flags laid over it. */
  env(): Record<string, string | undefined> {
    return { ...this.baseEnv, ...connectionEnv(this.flags) };
  }

  /** The command's configuration. */
  config(): Config {
    this.resolved ??= loadConfig(this.env());
    return this.resolved;
  }
}

// ---------------------------------------------------------------------------------------------
// Connections

const NATS_CREDENTIAL_HINT =
  '--nats-creds, --nats-nkey-seed-file or --nats-user (DIALFLOW_NATS_CREDS, DIALFLOW_NATS_NKEY_SEED_FILE, DIALFLOW_NATS_USER/PASSWORD or DIALFLOW_NATS_TOKEN) — against `dialflow dev`, its cli.nk under the data dir’s nats-auth/';

// OpenSSL's certificate verification failures as Node names them (nats.js hands a failed TLS
// handshake on as it is).
const TLS_VERIFY_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
]);

/** A TLS handshake that failed: the server's certificate was not trusted, or the TLS layer refused. */
function isTlsFailure(err: unknown): err is Error & { code: string } {
  if (!(err instanceof Error)) return false;
  const { code } = err as { code?: unknown };
  return (
    typeof code === 'string' &&
    (TLS_VERIFY_CODES.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_'))
  );
}

/**
 * Settings with TLS or an inbox prefix but nobody to be (no user, nkey, creds or token) get an
 * identity as a URL alone would: that of a server this process started, or the operator identity
 * `dialflow dev` generated, so `--nats-tls-ca` alone works against the dev stack as before.
 */
function withOperatorIdentity(
  target: string | string[] | NatsConnectSettings,
): string | string[] | NatsConnectSettings {
  if (typeof target === 'string' || Array.isArray(target) || !target.auth || target.token) return target;
  const { auth } = target;
  if (auth.user || auth.nkeySeedFile || auth.credsFile) return target;
  // Without the environment: the caller's settings came from it already.
  return { ...target, auth: { ...defaultNatsAuth(target.servers, {}), ...auth } };
}

/**
 * One NATS connection for a command. Pass `config.nats` (servers, credentials, TLS); with only a URL
 * the credentials come from the environment, or from the operator identity that `dialflow dev`
 * generated (telephony/nats-auth.ts). A credential file that cannot be read is a ConfigFileError
 * (exit 1, naming the file), thrown before anything is dialled.
 */
export async function withNats<T>(
  target: string | string[] | NatsConnectSettings,
  f: (nc: NatsConnection) => Promise<T>,
): Promise<T> {
  const servers = typeof target === 'string' || Array.isArray(target) ? [target].flat() : target.servers;
  const nc = await connectNats(withOperatorIdentity(target), 'dialflow-cli').catch((err: unknown) => {
    // A credential file that holds no usable credentials (say, a seed that is not one).
    if (err instanceof NatsAuthError) throw new CliError(err.message, 1, { cause: err });
    if (err instanceof errors.AuthorizationError)
      throw new CliError(
        `NATS at ${servers.join(',')} refused this client's credentials (${err.message}): set ${NATS_CREDENTIAL_HINT}`,
        1,
        { cause: err },
      );
    if (isTlsFailure(err))
      throw new CliError(
        `TLS with NATS at ${servers.join(',')} failed: ${err.message} (${err.code}): is the server's certificate signed by the CA of --nats-tls-ca (DIALFLOW_NATS_TLS_CA), or a system CA, and does it name the host?`,
        1,
        { cause: err },
      );
    if (!(err instanceof errors.ConnectionError || err instanceof errors.TimeoutError)) throw err;
    throw new CliError(
      `cannot reach NATS at ${servers.join(',')}: ${err.message} (start the stack with \`npm start\` or pass --nats)`,
      1,
      { cause: err },
    );
  });
  try {
    return await f(nc);
  } finally {
    await nc.close();
  }
}

/** Why a TLS connection may have failed, for the unreachable-Temporal message. */
function tlsHint(config: Config): string {
  const t = config.temporal;
  if (t.tls === false || (!t.tls && !t.apiKey)) return '';
  return `; TLS is on${t.tls ? '' : ' (implied by the API key)'}: does the server speak TLS, and is its certificate signed by ${t.tls && t.tls.serverCa ? 'the configured CA' : 'a system CA'}${t.tls && t.tls.serverName ? ` for ${t.tls.serverName}` : ''}?`;
}

/**
 * A Temporal client with dialflow's payload codec. Before the command runs, the client's key is
 * checked against the keys the workers of the task queue advertise (codec/key-check.ts): with
 * another key, or none, the command fails here naming the key ids, instead of starting a workflow
 * every worker refuses.
 */
export async function withTemporal<T>(config: Config, f: (client: Client) => Promise<T>): Promise<T> {
  let codec: EncryptionCodec | undefined;
  let keyProblem: ConfigError | undefined;
  try {
    codec = payloadCodec(config);
  } catch (err) {
    // Reported below, together with the key the workers use, once Temporal can tell.
    if (!(err instanceof ConfigError)) throw err;
    keyProblem = err;
  }
  const connection = await connectTemporal(config.temporal, { connectTimeout: '5s' }).catch((err: unknown) => {
    if (!isTemporalUnreachable(err)) throw err;
    if (keyProblem) throw keyProblem;
    throw new CliError(
      `cannot reach Temporal at ${config.temporal.address}: ${err.message} (start the stack with \`npm start\` or pass --temporal${tlsHint(config)})`,
      1,
      { cause: err },
    );
  });
  try {
    const { namespace, taskQueue } = config.temporal;
    const workers = await advertisedWorkerKeys(connection, namespace, taskQueue);
    if (!codec) {
      const theirs =
        workers && workers.length > 0
          ? `; the workers on task queue ${taskQueue} use payload key ${currentWorkerKeyIds(workers).join(', ')}`
          : '';
      throw new CliError(`${keyProblem?.message ?? 'no payload key'}${theirs}`, 2, { cause: keyProblem });
    }
    try {
      checkWorkerKeys(codec.keyId, workers ?? [], taskQueue);
    } catch (err) {
      if (err instanceof PayloadKeyMismatchError) throw new CliError(err.message, 1, { cause: err });
      throw err;
    }
    return await f(new Client({ connection, namespace, dataConverter: { payloadCodecs: [codec] } }));
  } finally {
    await connection.close();
  }
}

// gRPC status codes (the SDK's transport is not a dependency of ours): the server or a proxy
// refuses the call for this identity, or does not offer it.
const PERMISSION_DENIED = 7;
const UNIMPLEMENTED = 12;
const UNAUTHENTICATED = 16;

/** The workers' keys, or undefined where this client may not ask (the check is a courtesy, not a guard). */
async function advertisedWorkerKeys(
  connection: Connection,
  namespace: string,
  taskQueue: string,
): Promise<WorkerKeys[] | undefined> {
  try {
    return await workerKeys(connection, namespace, taskQueue);
  } catch (err) {
    if (!isGrpcServiceError(err)) throw err;
    if (err.code === PERMISSION_DENIED || err.code === UNIMPLEMENTED) return undefined;
    const why =
      err.code === UNAUTHENTICATED
        ? ' (check the API key, TEMPORAL_API_KEY, or the client certificate of the namespace)'
        : '';
    throw new CliError(
      `cannot ask Temporal at ${connection.options.address} (namespace ${namespace}) about task queue ${taskQueue}: ${err.message}${why}`,
      1,
      { cause: err },
    );
  }
}
