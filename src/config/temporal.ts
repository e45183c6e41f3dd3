// Where dialflow finds its Temporal server: address, namespace, TLS and API key, so that a Temporal
// Cloud namespace works as well as the local dev server. Temporal's own client configuration
// (@temporalio/envconfig: TEMPORAL_* variables over a profile of a TOML file, the same the
// `temporal` CLI reads) is the base; DIALFLOW_TEMPORAL_* and the CLI's flags go on top:
//
//   flags > DIALFLOW_TEMPORAL_* > TEMPORAL_* > the profile in temporal.toml > defaults
//
// The CLI applies its flags by laying them over the environment (cli/connections.ts), so this
// module sees one environment. Files (certificates, keys) are only named here; they are read when
// a connection is opened (client/connection.ts), so a command that never connects never fails on
// them.
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { loadClientConfigProfile, type ClientConfigProfile, type ConfigDataSource } from '@temporalio/envconfig';
import { ConfigError, ConfigFileError, errnoReason, isErrnoException } from './errors.js';

export const DEFAULT_TEMPORAL_ADDRESS = '127.0.0.1:7233';
export const DEFAULT_TEMPORAL_NAMESPACE = 'default';

/** `host:port` or `host` (the SDK adds 7233), IPv6 in brackets: what a gRPC target looks like. */
export const temporalAddressSchema = z
  .string()
  .regex(
    /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:\d{1,5})?$/,
    'host:port of the Temporal frontend, e.g. 127.0.0.1:7233',
  );

/** A PEM value: a file to read, or the PEM text itself (TEMPORAL_TLS_*_DATA, `*_data` in a profile). */
export type PemSource = { file: string } | { pem: string };

export interface TemporalTls {
  /** The name the server's certificate must carry when it differs from the address's host. */
  serverName?: string;
  /** Client certificate and key (mTLS, e.g. a Temporal Cloud namespace with CA certificates). */
  clientCert?: PemSource;
  clientKey?: PemSource;
  /** The CA the server's certificate is checked against; absent: the system's CAs. */
  serverCa?: PemSource;
}

/** Everything a Temporal connection needs (client/connection.ts opens every one from this). */
export interface TemporalConnectionSettings {
  address: string;
  /** Sent as `Authorization: Bearer …`. */
  apiKey?: string;
  /**
   * Absent: plain gRPC, or TLS with the system's CAs when an API key is set (as Temporal's SDKs do);
   * an object: TLS; `false`: plain gRPC even with an API key (TEMPORAL_TLS=false).
   */
  tls?: TemporalTls | false;
  /** gRPC headers for every call (`grpc_meta` of a profile, TEMPORAL_GRPC_META_*). */
  metadata?: Record<string, string>;
}

export interface TemporalSettings extends TemporalConnectionSettings {
  namespace: string;
  taskQueue: string;
  /**
   * Whether TEMPORAL_* and the profile file were read. `dialflow dev` and the test stacks turn
   * this off (DIALFLOW_TEMPORAL_ENVCONFIG=off) for the processes they start against their own dev
   * server, which a developer's Temporal Cloud settings must not reach.
   */
  useEnvConfig: boolean;
}

const pemSourceSchema = z.union([
  z.object({ path: z.string().min(1) }),
  z.object({ data: z.union([z.string(), z.instanceof(Uint8Array)]) }),
]);

// What envconfig hands back comes from a TOML file the user wrote: checked like any other input.
const profileSchema = z.object({
  address: temporalAddressSchema.optional(),
  namespace: z.string().min(1).optional(),
  apiKey: z.string().min(1).optional(),
  tls: z
    .object({
      disabled: z.boolean().optional(),
      serverName: z.string().min(1).optional(),
      clientCert: pemSourceSchema.optional(),
      clientKey: pemSourceSchema.optional(),
      serverCACert: pemSourceSchema.optional(),
    })
    .optional(),
  grpcMeta: z.record(z.string(), z.string()).optional(),
});

function pemSource(source: ConfigDataSource | undefined): PemSource | undefined {
  if (!source) return undefined;
  if ('path' in source) return { file: source.path };
  return { pem: typeof source.data === 'string' ? source.data : new TextDecoder().decode(source.data) };
}

/**
 * The variables envconfig gets. An empty one counts as unset (`TEMPORAL_API_KEY=` in a shell means
 * no key), except TEMPORAL_GRPC_META_*, where empty removes a header of the profile.
 */
const envConfigVariables = (env: Record<string, string | undefined>): Record<string, string> =>
  Object.fromEntries(
    Object.entries(env).filter(
      (e): e is [string, string] => e[1] !== undefined && (e[1] !== '' || e[0].startsWith('TEMPORAL_GRPC_META_')),
    ),
  );

/** TEMPORAL_* over the selected profile of the TOML file, as Temporal's SDKs and CLI read them. */
function loadEnvConfigProfile(env: Record<string, string | undefined>): ClientConfigProfile {
  const file = env.TEMPORAL_CONFIG_FILE || undefined;
  // envconfig treats a missing file as no file: one named explicitly must exist, or a typo in its
  // path would silently connect somewhere else.
  if (file && !existsSync(file))
    throw new ConfigFileError(
      'Temporal profile file',
      file,
      'ENOENT (no such file)',
      '--temporal-config-file or TEMPORAL_CONFIG_FILE',
    );
  let profile: ClientConfigProfile;
  try {
    profile = loadClientConfigProfile({ overrideEnvVars: envConfigVariables(env) });
  } catch (err) {
    const where = file ?? '~/.config/temporalio/temporal.toml';
    if (isErrnoException(err))
      throw new ConfigFileError('Temporal profile file', err.path ?? where, errnoReason(err), undefined, {
        cause: err,
      });
    // envconfig reports every other problem (TOML syntax, a profile that is not there, both *_path
    // and *_data of one certificate) as a plain Error carrying the reason.
    if (!(err instanceof Error)) throw err;
    const profileName = env.TEMPORAL_PROFILE ? `, profile "${env.TEMPORAL_PROFILE}"` : '';
    // A TOML syntax error (smol-toml's TomlError, not a dependency of ours) appends a code frame
    // to its message and carries the position: the position is enough for one line.
    const { line, column } = err as Error & { line?: unknown; column?: unknown };
    const position = typeof line === 'number' && typeof column === 'number' ? ` at line ${line}, column ${column}` : '';
    throw new ConfigError(
      `invalid Temporal client configuration (${where}${profileName}): ${err.message.split('\n')[0] ?? ''}${position}`,
      { cause: err },
    );
  }
  const parsed = profileSchema.safeParse(profile);
  if (!parsed.success)
    throw new ConfigError(
      `invalid Temporal profile${env.TEMPORAL_PROFILE ? ` "${env.TEMPORAL_PROFILE}"` : ''}:\n${z.prettifyError(parsed.error)}`,
    );
  return profile;
}

function tlsOf(profile: ClientConfigProfile): TemporalTls | false | undefined {
  const t = profile.tls;
  if (!t) return undefined;
  if (t.disabled) return false;
  const tls: TemporalTls = {};
  const clientCert = pemSource(t.clientCert);
  const clientKey = pemSource(t.clientKey);
  const serverCa = pemSource(t.serverCACert);
  // The SDK would drop a certificate without its key (and the reverse) without a word.
  if (Boolean(clientCert) !== Boolean(clientKey))
    throw new ConfigError(
      'the Temporal TLS client certificate and key go together: --temporal-tls-cert and --temporal-tls-key, TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH, or client_cert_path and client_key_path in the profile',
    );
  if (t.serverName) tls.serverName = t.serverName;
  if (clientCert) tls.clientCert = clientCert;
  if (clientKey) tls.clientKey = clientKey;
  if (serverCa) tls.serverCa = serverCa;
  return tls;
}

/**
 * The Temporal settings of an environment (already validated DIALFLOW_* values passed in `own`).
 * Throws ConfigError on a profile that cannot be used, ConfigFileError on a profile file that is
 * named but missing.
 */
export function resolveTemporalSettings(
  env: Record<string, string | undefined>,
  own: { address?: string; namespace?: string; taskQueue: string; useEnvConfig: boolean },
): TemporalSettings {
  const profile = own.useEnvConfig ? loadEnvConfigProfile(env) : {};
  const tls = tlsOf(profile);
  return {
    address: own.address ?? profile.address ?? DEFAULT_TEMPORAL_ADDRESS,
    namespace: own.namespace ?? profile.namespace ?? DEFAULT_TEMPORAL_NAMESPACE,
    taskQueue: own.taskQueue,
    ...(profile.apiKey ? { apiKey: profile.apiKey } : {}),
    ...(tls !== undefined ? { tls } : {}),
    ...(profile.grpcMeta && Object.keys(profile.grpcMeta).length > 0 ? { metadata: { ...profile.grpcMeta } } : {}),
    useEnvConfig: own.useEnvConfig,
  };
}

const pemEnv = (name: string, source: PemSource | undefined): Record<string, string> =>
  !source ? {} : 'file' in source ? { [`${name}_PATH`]: source.file } : { [`${name}_DATA`]: source.pem };

/**
 * The environment that gives a child process these settings. Address and namespace travel as
 * DIALFLOW_TEMPORAL_* (they win over everything else), TLS and API key as the TEMPORAL_* variables
 * envconfig reads. gRPC headers are not written back: header names do not survive the trip through
 * a variable name (envconfig turns only the first `_` into `-`), so a child gets them as this
 * process did, from the inherited TEMPORAL_GRPC_META_* or the profile file.
 */
export function temporalEnv(t: TemporalSettings): Record<string, string> {
  const own = {
    DIALFLOW_TEMPORAL_ADDRESS: t.address,
    DIALFLOW_TEMPORAL_NAMESPACE: t.namespace,
    DIALFLOW_TASK_QUEUE: t.taskQueue,
  };
  if (!t.useEnvConfig) return { ...own, DIALFLOW_TEMPORAL_ENVCONFIG: 'off' };
  return {
    ...own,
    ...(t.apiKey ? { TEMPORAL_API_KEY: t.apiKey } : {}),
    ...(t.tls === false ? { TEMPORAL_TLS: 'false' } : {}),
    ...(t.tls
      ? {
          TEMPORAL_TLS: 'true',
          ...(t.tls.serverName ? { TEMPORAL_TLS_SERVER_NAME: t.tls.serverName } : {}),
          ...pemEnv('TEMPORAL_TLS_CLIENT_CERT', t.tls.clientCert),
          ...pemEnv('TEMPORAL_TLS_CLIENT_KEY', t.tls.clientKey),
          ...pemEnv('TEMPORAL_TLS_SERVER_CA_CERT', t.tls.serverCa),
        }
      : {}),
  };
}
