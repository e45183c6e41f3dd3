// The flow worker: runs call workflows and their activities.
import { fileURLToPath } from 'node:url';
import { Worker } from '@temporalio/worker';
import { Client, type Connection } from '@temporalio/client';
import { connectTemporal } from '../client/connection.js';
import { NatsCampaignStore } from '../store/campaigns.js';
import { Registry } from 'prom-client';
import { workflowMetricSinks } from './metrics.js';
import type { NatsConnection } from '@nats-io/transport-node';
import { createActivities } from '../activities/index.js';
import { NatsTelephonyProvider } from '../telephony/nats.js';
import { KvProfileStore } from '../store/profiles.js';
import { dataConverter, payloadCodec, type Config } from '../config/index.js';
import { workerIdentity } from '../codec/key-check.js';

/** The production workflows bundle entry: call and campaign workflows only. */
export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

/**
 * What a process embedding the flow worker may add (the benchmark runs its baseline workflow on
 * the same worker as the calls it compares it with). The production worker passes none.
 */
export interface FlowWorkerExtensions {
  /** A workflows bundle entry that re-exports the production workflows and adds its own. */
  workflowsPath?: string;
  /** More activities, given the worker's Temporal client (with the payload codec). */
  activities?: (deps: { client: Client }) => object;
}

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
  extensions: FlowWorkerExtensions = {},
): Promise<RunningWorker> {
  const connection = await connectTemporal(config.temporal, { worker: true });
  const provider = new NatsTelephonyProvider(nc, config.provider);
  // Campaign activities place calls: they need a client of their own (with the same codec).
  const clientConnection = await connectTemporal(config.temporal);
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
    workflowsPath: extensions.workflowsPath ?? WORKFLOWS_PATH,
    dataConverter: dataConverter(config),
    // Advertises the ids of its payload keys: clients with another key refuse to start workflows.
    identity: workerIdentity(payloadCodec(config)),
    sinks: workflowMetricSinks(registry),
    ...(config.maxCachedWorkflows ? { maxCachedWorkflows: config.maxCachedWorkflows } : {}),
    activities: {
      ...createActivities({
        telephony: provider,
        sms: provider,
        profiles: await KvProfileStore.open(nc),
        campaigns,
      }),
      ...extensions.activities?.({ client }),
    },
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
