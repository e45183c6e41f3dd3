// What the campaign and call routes answer (docs/api.md), as the console reads it. Fields the
// console does not show are left out; optional ones are those a route may omit.

export type CampaignState = 'draft' | 'running' | 'paused' | 'cancelling' | 'cancelled' | 'completed';

export interface CallingSpeed {
  calls: number;
  per: 'minute' | 'hour' | 'day';
  spread?: boolean;
}

export interface DeliveryWindow {
  days: string[];
  from: string;
  to: string;
  timeZone?: string;
}

export interface CampaignStatus {
  campaignId: string;
  state: CampaignState;
  total: number;
  placed?: number;
  completed: number;
  inFlight: number;
  remaining: number;
  byOutcome: Record<string, number>;
  /** `element → branch` → calls that took it (started campaigns). */
  byBranch?: Record<string, number>;
  waitingForWindow?: number;
  speed?: string;
  maxConcurrent?: number;
  firstSlotAt?: string;
  lastSlotAt?: string;
  eta?: string;
  retrySlots?: number;
  /** Dials of the calls that ended within the last minute (started campaigns). */
  dialsPerMinute?: number;
  contactCap?: { max: number; windowDays: number };
  recipients?: StagingSummary & { uploadedAt: string };
  flow?: { id: string; version: number };
  createdAt?: string;
}

export interface StagingSummary {
  rows: number;
  valid: number;
  duplicates: number;
  invalid: number;
  byCode: Record<string, number>;
}

export interface RowProblem {
  row: number;
  code: string;
  message: string;
}

export interface UploadResult {
  summary: StagingSummary;
  problems: RowProblem[];
}

export interface Forecast {
  recipients: number;
  notCallable: number;
  firstDialAt?: string;
  lastFirstDialAt?: string;
  finishAt?: string;
  finishWorstCaseAt?: string;
  effectiveCallsPerHour: number;
  passes: number;
  perDay: Array<{ date: string; dials: number }>;
  zones: Array<{ zone: string; recipients: number }>;
}

export interface FlowSummary {
  id: string;
  latest: number;
  name?: string;
}

export interface CallSummary {
  callId: string;
  campaignId: string;
  recipientId: string;
  status: string;
  startTime: string;
  closeTime?: string;
  outcome?: string;
}

export interface TrailEntry {
  element: string;
  branch: string;
  input?: string;
}

export interface CallDetail extends CallSummary {
  result?: {
    outcome?: string;
    dials?: number;
    trail?: TrailEntry[];
    error?: string;
    variables?: Record<string, unknown>;
  } & Record<string, unknown>;
}

export interface TranscriptEvent {
  at: string;
  kind: 'command' | 'event' | 'wait' | 'action';
  elementId?: string;
  text: string;
  until?: string;
}

export interface Recording {
  name: string;
  callId: string;
  campaignId?: string;
  durationMs: number;
  size: number;
  contentType: string;
  created: string;
}

export const FINISHED_STATES: ReadonlySet<CampaignState> = new Set(['completed', 'cancelled']);
