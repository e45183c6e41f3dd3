// Starting call workflows from outside Temporal (demo, CLI, tests).
import type { Client, WorkflowHandle } from '@temporalio/client';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/common';
import type { Flow } from '../flow/schema.js';
import type { Recipient } from '../flow/interpreter.js';
import type { ContactCap } from '../activities/index.js';
import { withTimeZone } from '../flow/zone.js';
import type { TelephonyEvent } from '../telephony/contract.js';
import type { outboundCall, inboundCall } from '../workflows/index.js';
import { callWorkflowId, telephonyEventSignal } from '../workflows/messages.js';
import { normaliseInternationalNumber } from '../store/phones.js';

export interface StartCallOptions {
  flow: Flow;
  recipient: Recipient;
  campaignId: string;
  taskQueue: string;
  hints?: Record<string, unknown>;
  /** At most `max` calls to this number within `windowDays`, across campaigns and one-off calls. */
  contactCap?: ContactCap;
}

/**
 * Start one call. The id is deterministic (`call:{campaignId}:{recipientId}`) and duplicates are
 * refused, whether the first call is still running or already closed: a recipient is never dialled
 * twice for one campaign.
 */
export async function startCall(client: Client, o: StartCallOptions): Promise<WorkflowHandle<typeof outboundCall>> {
  return client.workflow.start<typeof outboundCall>('outboundCall', {
    taskQueue: o.taskQueue,
    workflowId: callWorkflowId(o.campaignId, o.recipient.id),
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
    // The zone is resolved here, at the edge, so the workflow carries it and never re-derives it.
    args: [
      {
        flow: o.flow,
        recipient: withTimeZone(o.recipient),
        campaignId: o.campaignId,
        ...(o.hints ? { hints: o.hints } : {}),
        ...(o.contactCap ? { contactCap: o.contactCap } : {}),
      },
    ],
  });
}

/**
 * Start (or signal) the inbound workflow of a received call: signal-with-start, because the
 * CALL_RECEIVED event is the first thing the workflow must see and may be redelivered.
 */
export async function startInboundCall(
  client: Client,
  o: { flow: Flow; received: TelephonyEvent; workflowId: string; taskQueue: string },
): Promise<WorkflowHandle<typeof inboundCall>> {
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  return client.workflow.signalWithStart<typeof inboundCall, [TelephonyEvent]>('inboundCall', {
    workflowId: o.workflowId,
    taskQueue: o.taskQueue,
    args: [
      {
        flow: o.flow,
        callId: o.received.callId,
        to: str(o.received.properties.to),
        from: str(o.received.properties.from),
      },
    ],
    signal: telephonyEventSignal,
    signalArgs: [o.received],
  });
}

/** Recipient rows may carry a `persona` for the simulator: it travels as a provider hint, not as data. */
export function splitPersona(row: Recipient): { recipient: Recipient; hints?: Record<string, unknown> } {
  const { persona, ...recipient } = row;
  return persona === undefined
    ? { recipient: recipient as Recipient }
    : { recipient: recipient as Recipient, hints: { persona } };
}

const SIP_URI = /^sips?:[^@\s]+@[^\s]+$/;

/**
 * A destination one-off calls may dial: an international number valid for its country (returned in
 * E.164, as `+14155550123`), or a SIP URI as given. Undefined for anything else.
 */
export function normaliseDestination(to: string): string | undefined {
  return SIP_URI.test(to) ? to : normaliseInternationalNumber(to);
}

/** Recipient ids of one-off calls (`dialflow call --id`, `POST /api/calls`): they end up in the workflow id. */
export const ONE_OFF_RECIPIENT_ID = /^[A-Za-z0-9_.-]{1,64}$/;

/** The campaign and recipient of an outbound call's workflow id (`call:{campaignId}:{recipientId}`). */
export function parseCallWorkflowId(workflowId: string): { campaignId: string; recipientId: string } | undefined {
  // Campaign ids hold no ":"; recipient ids of a campaign's file may.
  const m = /^call:([^:]+):(.+)$/s.exec(workflowId);
  return m ? { campaignId: m[1] as string, recipientId: m[2] as string } : undefined;
}
