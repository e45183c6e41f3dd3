// The flow worker: runs call workflows and their activities.
import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker } from '@temporalio/worker';
import { Client, Connection } from '@temporalio/client';
import { NatsCampaignStore } from '../store/campaigns.js';
import { Registry } from 'prom-client';
import { workflowMetricSinks } from './metrics.js';
import type { NatsConnection } from '@nats-io/transport-node';
import { createActivities } from '../activities/index.js';
import { NatsTelephonyProvider } from '../telephony/nats.js';
import { KvProfileStore } from '../store/profiles.js';
import { dataConverter, payloadCodec, type Config } from '../config/index.js';
import { workerIdentity } from '../codec/key-check.js';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

export interface RunningWorker {
  worker: Worker;
  /** The client connection to Temporal (readiness checks use it). */
  connection: Connection;
  /** Resolves when the worker has stopped. */
  done: Promise<void>;
  stop(): Promise<void>;
}

export async function startFlowWorker(
  config: Config,
  nc: NatsConnection,
  registry: Registry = new Registry(),
): Promise<RunningWorker> {
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const provider = new NatsTelephonyProvider(nc, config.provider);
  // Campaign activities place calls: they need a client of their own (with the same codec).
  const clientConnection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({
    connection: clientConnection,
    namespace: config.temporal.namespace,
    dataConverter: dataConverter(config),
  });
  const campaigns = { client, store: await NatsCampaignStore.open(nc) };
  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    workflowsPath: WORKFLOWS_PATH,
    dataConverter: dataConverter(config),
    // Advertises the ids of its payload keys: clients with another key refuse to start workflows.
    identity: workerIdentity(payloadCodec(config)),
    sinks: workflowMetricSinks(registry),
    ...(config.maxCachedWorkflows ? { maxCachedWorkflows: config.maxCachedWorkflows } : {}),
    activities: createActivities({
      telephony: provider,
      sms: provider,
      profiles: await KvProfileStore.open(nc),
      campaigns,
    }),
  });
  const done = worker.run().finally(async () => {
    await connection.close();
    await clientConnection.close();
  });
  return {
    worker,
    connection: clientConnection,
    done,
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done;
    },
  };
}
