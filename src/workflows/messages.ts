// Signals, queries and updates of dialflow workflows: defined once, shared by workflows and clients.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { TelephonyEvent } from '../telephony/contract.js';
import type { CallOutcome, TrailEntry } from '../flow/interpreter.js';
import type { CampaignState } from '../campaign/dispatcher.js';

/** A telephony event for the call, delivered by the event bridge. */
export const telephonyEventSignal = defineSignal<[TelephonyEvent]>('telephonyEvent');
/**
 * Several telephony events of one call in one signal, in order: events a command asked to hold
 * (`holdEvents`) followed by the event that came after them. Only core v2 calls (outboundCall,
 * inboundCall) ask to hold events, so only they receive it.
 */
export const telephonyEventsSignal = defineSignal<[TelephonyEvent[]]>('telephonyEvents');

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
/**
 * Under which name a call's records are kept, from its workflow id: the campaign's id (campaign
 * ids hold no `:`), or `inbound` for inbound calls. Undefined for an id of neither form.
 */
export function recordsNameOfWorkflowId(workflowId: string): string | undefined {
  if (workflowId.startsWith('inbound:')) return 'inbound';
  const m = /^call:([^:]+):/.exec(workflowId);
  return m?.[1];
}

// --- campaigns -----------------------------------------------------------------------------------

export type { CampaignState } from '../campaign/dispatcher.js';

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
  /** Dials granted to calls for their retries (they count against the calling speed too). */
  retrySlots?: number;
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

/** A campaign call asks for the slot of its next dial (a retry). */
export interface DialSlotRequest {
  /** The call workflow's id. */
  workflowId: string;
  /** The call's dial number about to be placed (its `dialIndex`: 2 for the first retry). */
  dial: number;
}
export interface DialSlotGrant {
  /** The dial may start at this instant (epoch ms, workflow time)… */
  at: number;
  /** …and must start before this one (the end of the period that counted it); later, ask again. */
  until: number;
}
/**
 * Every dial of a campaign counts against its calling speed: a call asks its campaign for the slot
 * of each retry. Granted at once, for the earliest instant in a period that still has budget, and
 * counted there. Rejected (validator, failure type CAMPAIGN_NOT_DIALLING) once the campaign is
 * cancelled or finished; granted while it is paused (a pause stops first dials only).
 */
export const requestDialSlotUpdate = defineUpdate<DialSlotGrant, [DialSlotRequest]>('requestDialSlot');
/** Failure type of a dial slot refused because the campaign no longer dials. */
export const CAMPAIGN_NOT_DIALLING = 'CampaignNotDialling';
/** Failure type of a dial slot asked of a campaign run from before core v2: ask again (it hands over). */
export const CAMPAIGN_UPGRADING = 'CampaignUpgrading';
