// NATS and Temporal connections for one CLI command: opened, handed to the command, closed, and
// an unreachable server reported as one line with the fix.
import { Client, Connection } from '@temporalio/client';
import type { NatsConnection } from '@nats-io/transport-node';
import { Option, type Command } from 'commander';
import { dataConverter, loadConfig, type Config } from '../config/index.js';
import { connectNats } from '../telephony/nats.js';
import { CliError } from './errors.js';

export async function withNats<T>(servers: string | string[], f: (nc: NatsConnection) => Promise<T>): Promise<T> {
  const nc = await connectNats(servers, 'dialflow-cli').catch((err: unknown) => {
    throw new CliError(`cannot reach NATS at ${[servers].flat().join(',')}: ${(err as Error).message} (start the stack with \`npm start\` or pass --nats)`, 1, { cause: err });
  });
  try {
    return await f(nc);
  } finally {
    await nc.close();
  }
}

/** A Temporal client with dialflow's payload codec. */
export async function withTemporal<T>(config: Config, f: (client: Client) => Promise<T>): Promise<T> {
  const connection = await Connection.connect({ address: config.temporal.address, connectTimeout: '5s' }).catch((err: unknown) => {
    throw new CliError(`cannot reach Temporal at ${config.temporal.address}: ${(err as Error).message} (start the stack with \`npm start\` or pass --temporal)`, 1, { cause: err });
  });
  try {
    return await f(new Client({ connection, namespace: config.temporal.namespace, dataConverter: dataConverter(config) }));
  } finally {
    await connection.close();
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
    .addOption(new Option('--temporal <address>', 'Temporal frontend (default DIALFLOW_TEMPORAL_ADDRESS or 127.0.0.1:7233)'))
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
