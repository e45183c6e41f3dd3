// Signals, queries and updates of dialflow workflows: defined once, shared by workflows and clients.
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { TelephonyEvent } from '../telephony/contract.js';
import type { CallOutcome, TrailEntry } from '../flow/interpreter.js';

/** A telephony event for the call, delivered by the event bridge. */
export const telephonyEventSignal = defineSignal<[TelephonyEvent]>('telephonyEvent');

export interface CallStatus {
  flowId: string;
  flowVersion: number;
  element: string | null;
  phase: string;
  dials: number;
  trail: TrailEntry[];
  outcome?: CallOutcome;
}
export const callStatusQuery = defineQuery<CallStatus>('callStatus');

export const TASK_QUEUE = 'dialflow-calls';
export function callWorkflowId(campaignId: string, recipientId: string): string {
  return `call:${campaignId}:${recipientId}`;
}
