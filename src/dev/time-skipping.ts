// Temporal's time-skipping test server (the binary installed under .tools/) with a worker whose
// telephony is the in-process simulator: used by `dialflow simulate` and the time-skipping tests.
import { randomBytes } from 'node:crypto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { EncryptionCodec } from '../codec/encryption.js';
import { Worker, type WorkflowBundle } from '@temporalio/worker';
import { createActivities } from '../activities/index.js';
import { toolPaths } from '../config/tools.js';
import { MemoryProfileStore } from '../store/profiles.js';
import { MemoryCampaignStore } from '../store/campaigns.js';
import { InlineSimulatorProvider } from '../telephony/inline.js';
import { WORKFLOWS_PATH } from '../workers/flow-worker.js';
import { workflowMetricSinks } from '../workers/metrics.js';
import { Registry } from 'prom-client';

export interface TimeSkippingStack {
  env: TestWorkflowEnvironment;
  /** Payloads are encrypted as in production, with a key that lives as long as the stack. */
  codec: EncryptionCodec;
  /** Campaign pages, records and compliance lists, in memory. */
  campaigns: MemoryCampaignStore;
  worker: Worker;
  provider: InlineSimulatorProvider;
}

/**
 * @param opts.workflowBundle the workflows bundled once (`bundleWorkflowCode`), for a process that
 * starts many of these stacks (the API's simulations); bundled for this worker otherwise.
 */
export async function startTimeSkipping(
  taskQueue: string,
  opts: { workflowBundle?: WorkflowBundle } = {},
): Promise<TimeSkippingStack> {
  const codec = new EncryptionCodec(randomBytes(32));
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: toolPaths().testServer } },
    client: { dataConverter: { payloadCodecs: [codec] } },
  });
  try {
    const provider = new InlineSimulatorProvider(() => env.client);
    const campaigns = new MemoryCampaignStore();
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
      dataConverter: { payloadCodecs: [codec] },
      sinks: workflowMetricSinks(new Registry()),
      activities: createActivities({
        telephony: provider,
        sms: provider,
        profiles: new MemoryProfileStore(),
        campaigns: { client: env.client, store: campaigns },
      }),
    });
    return { env, worker, provider, codec, campaigns };
  } catch (err) {
    await env.teardown();
    throw err;
  }
}
