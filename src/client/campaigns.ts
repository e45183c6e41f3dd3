// Starting and steering campaign workflows from outside Temporal (CLI, tests, benchmarks).
import type { Client, WorkflowHandle } from '@temporalio/client';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/common';
import type { CampaignWorkflowInput, campaignWorkflow } from '../workflows/index.js';
import { campaignWorkflowId } from '../workflows/messages.js';

/** A campaign id is used in workflow ids, NATS subjects and object names. */
export const CAMPAIGN_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/**
 * Campaign ids of calls that belong to no campaign: one-off calls of the API (`call:api:{id}`) and
 * the CLI (`call:cli:{id}`), simulations, inbound calls. A campaign of that id would take their
 * records as its own, and skip every recipient id one of them already used (a campaign places a
 * call whose workflow id exists as placed already).
 */
export const RESERVED_CAMPAIGN_IDS: readonly string[] = ['api', 'cli', 'simulate', 'inbound'];

/** Why an id cannot name a new campaign, or undefined when it can. */
export function campaignIdProblem(campaignId: string): string | undefined {
  if (!CAMPAIGN_ID.test(campaignId)) return `campaign id "${campaignId}": letters, digits, "-" and "_", at most 64`;
  // Case-insensitively: "API" would be another workflow id, but one easily taken for "api".
  if (RESERVED_CAMPAIGN_IDS.includes(campaignId.toLowerCase()))
    return `campaign id "${campaignId}" is reserved (${RESERVED_CAMPAIGN_IDS.join(', ')} label calls of no campaign)`;
  return undefined;
}

/** Start a campaign; a campaign id is used once, ever (its calls' ids derive from it). */
export async function startCampaign(
  client: Client,
  taskQueue: string,
  input: CampaignWorkflowInput,
): Promise<WorkflowHandle<typeof campaignWorkflow>> {
  const problem = campaignIdProblem(input.campaignId);
  if (problem) throw new RangeError(problem);
  return client.workflow.start<typeof campaignWorkflow>('campaignWorkflow', {
    taskQueue,
    workflowId: campaignWorkflowId(input.campaignId),
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
    args: [input],
  });
}
