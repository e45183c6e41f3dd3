// Starting call workflows from outside Temporal (demo, CLI, tests).
import type { Client, WorkflowHandle } from '@temporalio/client';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/common';
import type { Flow } from '../flow/schema.js';
import type { Recipient } from '../flow/interpreter.js';
import type { callWorkflow } from '../workflows/index.js';
import { callWorkflowId } from '../workflows/messages.js';

export interface StartCallOptions {
  flow: Flow;
  recipient: Recipient;
  campaignId: string;
  taskQueue: string;
  hints?: Record<string, unknown>;
}

/**
 * Start one call. The id is deterministic (`call:{campaignId}:{recipientId}`) and duplicates are
 * refused, whether the first call is still running or already closed: a recipient is never dialled
 * twice for one campaign.
 */
export async function startCall(client: Client, o: StartCallOptions): Promise<WorkflowHandle<typeof callWorkflow>> {
  return client.workflow.start<typeof callWorkflow>('callWorkflow', {
    taskQueue: o.taskQueue,
    workflowId: callWorkflowId(o.campaignId, o.recipient.id),
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
    args: [{ flow: o.flow, recipient: o.recipient, campaignId: o.campaignId, ...(o.hints ? { hints: o.hints } : {}) }],
  });
}

/** Recipient rows may carry a `persona` for the simulator: it travels as a provider hint, not as data. */
export function splitPersona(row: Recipient): { recipient: Recipient; hints?: Record<string, unknown> } {
  const { persona, ...recipient } = row;
  return persona === undefined ? { recipient: recipient as Recipient } : { recipient: recipient as Recipient, hints: { persona } };
}
