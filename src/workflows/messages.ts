// Signals, queries and updates of dialflow workflows: defined once, shared by workflows and clients.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
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
  /** When the current wait for the provider times out (after a late timer: when its grace ends). */
  waitUntil?: string;
}
export const callStatusQuery = defineQuery<CallStatus>('callStatus');

export const TASK_QUEUE = 'dialflow-calls';
export function callWorkflowId(campaignId: string, recipientId: string): string {
  return `call:${campaignId}:${recipientId}`;
}

// --- campaigns -----------------------------------------------------------------------------------

export type CampaignState = 'running' | 'paused' | 'cancelling' | 'cancelled' | 'completed';

export interface CampaignStatus {
  campaignId: string;
  state: CampaignState;
  total: number;
  /** Calls placed (started at their slot or waiting for it). */
  placed: number;
  completed: number;
  inFlight: number;
  remaining: number;
  byOutcome: Record<string, number>;
  /** Recipients waiting for their delivery window to open (placed in a later pass). */
  waitingForWindow: number;
  pass: number;
  speed: string;
  maxConcurrent: number;
  firstSlotAt?: string;
  lastSlotAt?: string;
  /** Estimated end of the last first dial, from the calling speed and what remains. */
  eta?: string;
  /** Run of the campaign workflow (continue-as-new keeps history short). */
  run: number;
}
export const campaignStatusQuery = defineQuery<CampaignStatus>('campaignStatus');

export interface CampaignControlResult {
  state: CampaignState;
  /** Pause/cancel: calls that were waiting for their slot and were withdrawn. */
  withdrawn?: number;
}
export const pauseCampaignUpdate = defineUpdate<CampaignControlResult>('pauseCampaign');
export const resumeCampaignUpdate = defineUpdate<CampaignControlResult>('resumeCampaign');
export const cancelCampaignUpdate = defineUpdate<CampaignControlResult>('cancelCampaign');

export const campaignWorkflowId = (campaignId: string) => `campaign:${campaignId}`;
