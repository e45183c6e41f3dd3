// NATS and Temporal connections for one CLI command: opened, handed to the command, closed, and
// an unreachable server reported as one line with the fix.
import { Client, Connection, isGrpcServiceError } from '@temporalio/client';
import { errors, type NatsConnection } from '@nats-io/transport-node';
import { Option, type Command } from 'commander';
import { ConfigError, loadConfig, payloadCodec, type Config } from '../config/index.js';
import type { EncryptionCodec } from '../codec/encryption.js';
import {
  checkWorkerKeys,
  currentWorkerKeyIds,
  PayloadKeyMismatchError,
  workerKeys,
  type WorkerKeys,
} from '../codec/key-check.js';
import { connectNats } from '../telephony/nats.js';
import { NatsAuthError, type NatsSettings } from '../telephony/nats-auth.js';
import { CliError } from './errors.js';
import { isTemporalUnreachable } from '../dev/stack.js';

/**
 * One NATS connection for a command. Pass `config.nats` (servers and DIALFLOW_NATS_* credentials);
 * with only a URL the credentials come from the environment, or from the operator identity that
 * `dialflow dev` generated (telephony/nats-auth.ts).
 */
export async function withNats<T>(
  target: string | string[] | NatsSettings,
  f: (nc: NatsConnection) => Promise<T>,
): Promise<T> {
  const servers = typeof target === 'string' || Array.isArray(target) ? [target].flat() : target.servers;
  const nc = await connectNats(target, 'dialflow-cli').catch((err: unknown) => {
    if (err instanceof NatsAuthError) throw new CliError(err.message, 2, { cause: err });
    if (err instanceof errors.AuthorizationError) {
      throw new CliError(
        `NATS at ${servers.join(',')} refused this client's credentials (${err.message}): set DIALFLOW_NATS_NKEY_SEED_FILE, DIALFLOW_NATS_CREDS or DIALFLOW_NATS_USER/PASSWORD — against \`dialflow dev\`, its cli.nk under the data dir's nats-auth/`,
        2,
        { cause: err },
      );
    }
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
  const connection = await Connection.connect({ address: config.temporal.address, connectTimeout: '5s' }).catch(
    (err: unknown) => {
      if (!isTemporalUnreachable(err)) throw err;
      if (keyProblem) throw keyProblem;
      throw new CliError(
        `cannot reach Temporal at ${config.temporal.address}: ${err.message} (start the stack with \`npm start\` or pass --temporal)`,
        1,
        { cause: err },
      );
    },
  );
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
    throw new CliError(
      `cannot ask Temporal at ${connection.options.address} about task queue ${taskQueue}: ${err.message}`,
      1,
      { cause: err },
    );
  }
}

/** Connection flags shared by the commands that talk to a running stack. */
export interface Conn {
  temporal?: string;
  nats?: string;
  taskQueue?: string;
}

export const conn = (c: Command): Command =>
  c
    .addOption(
      new Option('--temporal <address>', 'Temporal frontend (default DIALFLOW_TEMPORAL_ADDRESS or 127.0.0.1:7233)'),
    )
    .addOption(new Option('--nats <url>', 'NATS server (default DIALFLOW_NATS_SERVERS or nats://127.0.0.1:4222)'))
    .addOption(new Option('--task-queue <queue>', 'task queue of the workers (default DIALFLOW_TASK_QUEUE)'));

/** Environment config, with the command's flags on top. */
export function configFor(o: Conn): Config {
  return loadConfig({
    ...process.env,
    ...(o.temporal ? { DIALFLOW_TEMPORAL_ADDRESS: o.temporal } : {}),
    ...(o.nats ? { DIALFLOW_NATS_SERVERS: o.nats } : {}),
    ...(o.taskQueue ? { DIALFLOW_TASK_QUEUE: o.taskQueue } : {}),
  });
}
