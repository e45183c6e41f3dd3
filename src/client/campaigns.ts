// Starting and steering campaign workflows from outside Temporal (CLI, tests, benchmarks).
import type { Client, WorkflowHandle } from '@temporalio/client';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/common';
import type { CampaignWorkflowInput, campaignWorkflow } from '../workflows/index.js';
import { campaignWorkflowId } from '../workflows/messages.js';

/** A campaign id is used in workflow ids, NATS subjects and object names. */
export const CAMPAIGN_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** Start a campaign; a campaign id is used once, ever (its calls' ids derive from it). */
export async function startCampaign(
  client: Client,
  taskQueue: string,
  input: CampaignWorkflowInput,
): Promise<WorkflowHandle<typeof campaignWorkflow>> {
  if (!CAMPAIGN_ID.test(input.campaignId))
    throw new RangeError(`campaign id "${input.campaignId}": letters, digits, "-" and "_", at most 64`);
  return client.workflow.start<typeof campaignWorkflow>('campaignWorkflow', {
    taskQueue,
    workflowId: campaignWorkflowId(input.campaignId),
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
    args: [input],
  });
}
