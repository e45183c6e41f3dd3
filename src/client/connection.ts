// Every Temporal connection of dialflow is opened here: the CLI's clients, the worker's native
// connection and its client, the bridge, the dev stack's readiness probes. So TLS, the API key and
// gRPC headers of the configuration (config/temporal.ts) reach all of them, and a certificate
// that cannot be read is reported the same way everywhere: naming the file, before any dial.
import { Connection, type ConnectionOptions, type TLSConfig } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { readConfiguredFile } from '../config/errors.js';
import type { PemSource, TemporalConnectionSettings } from '../config/temporal.js';

/** What both kinds of connection take from the settings (the SDK's own option names). */
export interface TemporalConnectOptions {
  address: string;
  tls?: TLSConfig | boolean;
  apiKey?: string;
  metadata?: Record<string, string>;
}

function pem(source: PemSource | undefined, what: string, namedBy: string): Buffer | undefined {
  if (!source) return undefined;
  return 'file' in source ? readConfiguredFile(source.file, what, namedBy) : Buffer.from(source.pem);
}

/**
 * The connection options of these settings, certificate files read. Throws ConfigFileError naming
 * the file that cannot be read.
 */
export function temporalConnectOptions(t: TemporalConnectionSettings): TemporalConnectOptions {
  let tls: TLSConfig | boolean | undefined;
  if (t.tls === false) tls = false;
  else if (t.tls) {
    const crt = pem(
      t.tls.clientCert,
      'Temporal TLS client certificate',
      '--temporal-tls-cert, TEMPORAL_TLS_CLIENT_CERT_PATH or client_cert_path of the profile',
    );
    const key = pem(
      t.tls.clientKey,
      'Temporal TLS client key',
      '--temporal-tls-key, TEMPORAL_TLS_CLIENT_KEY_PATH or client_key_path of the profile',
    );
    const ca = pem(
      t.tls.serverCa,
      'Temporal TLS server CA certificate',
      '--temporal-tls-ca, TEMPORAL_TLS_SERVER_CA_CERT_PATH or server_ca_cert_path of the profile',
    );
    tls = {
      ...(t.tls.serverName ? { serverNameOverride: t.tls.serverName } : {}),
      ...(ca ? { serverRootCACertificate: ca } : {}),
      ...(crt && key ? { clientCertPair: { crt, key } } : {}),
    };
  } else if (t.apiKey) {
    // An API key is a bearer secret: never sent in clear unless TLS is turned off explicitly.
    tls = true;
  }
  return {
    address: t.address,
    ...(tls !== undefined ? { tls } : {}),
    ...(t.apiKey ? { apiKey: t.apiKey } : {}),
    ...(t.metadata ? { metadata: { ...t.metadata } } : {}),
  };
}

/** Client-side options a caller may add (a probe's deadline, the bridge's reconnect back-off, test interceptors). */
export type ClientConnectionExtras = Pick<ConnectionOptions, 'connectTimeout' | 'channelArgs' | 'interceptors'>;

/**
 * Open a Temporal connection with these settings: a client Connection, or with `{ worker: true }`
 * the NativeConnection a Worker polls through.
 */
export function connectTemporal(t: TemporalConnectionSettings, extras?: ClientConnectionExtras): Promise<Connection>;
export function connectTemporal(t: TemporalConnectionSettings, kind: { worker: true }): Promise<NativeConnection>;
export async function connectTemporal(
  t: TemporalConnectionSettings,
  extras: ClientConnectionExtras | { worker: true } = {},
): Promise<Connection | NativeConnection> {
  const options = temporalConnectOptions(t);
  if ('worker' in extras) {
    // Loaded on demand: the worker's native core is heavy, and most commands only need a client.
    const { NativeConnection } = await import('@temporalio/worker');
    return NativeConnection.connect(options);
  }
  return Connection.connect({ ...options, ...extras });
}
