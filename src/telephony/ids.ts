// The parts of the telephony contract that workflows use: plain constants and id functions, free of
// zod, because every cached workflow evaluates its own copy of each module it imports.

/** Error codes carried by CALL_FAILED / CALL_FINISHED (Infobip names). */
export const ERROR_CODES = [
  'NORMAL_HANGUP',
  'NO_ANSWER',
  'BUSY',
  'REJECTED',
  'UNREACHABLE',
  'NETWORK_ERROR',
  'MACHINE_DETECTED',
  'INTERNAL_ERROR',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * Call ids are chosen by dialflow and name the owning workflow, so the bridge can route an event
 * without a lookup: `{workflowId}~{dialAttempt}`. Adapters for carriers that assign their own ids
 * keep a mapping and rewrite ids on the way in.
 */
export const CALL_ID_SEPARATOR = '~';
export function callIdFor(workflowId: string, dialNumber: number): string {
  return `${workflowId}${CALL_ID_SEPARATOR}${dialNumber}`;
}
/**
 * The workflow that owns a call. Outbound (and their forward legs): the part before the last `~`.
 * Inbound calls carry the provider's id (no `~`) and belong to `inbound:{callId}`; their forward
 * legs (`{callId}.f{n}`) to the same workflow.
 */
export function workflowIdOfCallId(callId: string): string | undefined {
  const at = callId.lastIndexOf(CALL_ID_SEPARATOR);
  if (at > 0) return callId.slice(0, at);
  if (at === 0 || callId.length === 0) return undefined;
  return inboundWorkflowId(callId.replace(/\.f\d+$/, ''));
}

export function inboundWorkflowId(callId: string): string {
  return `inbound:${callId}`;
}
