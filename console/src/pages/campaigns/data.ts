// The campaign, flow, call and recording requests the pages make, in one place.
import { get, post, seg, upload } from '../../lib/api.js';
import type {
  CallDetail,
  CallSummary,
  CampaignStatus,
  DeliveryWindow,
  FlowSummary,
  Forecast,
  Recording,
  TranscriptEvent,
  UploadResult,
} from './types.js';

/** What POST /api/campaigns takes besides the id and flow; fixed once the draft exists. */
export interface CampaignSettings {
  callingSpeed?: { calls: number; per: 'minute' | 'hour' | 'day'; spread?: boolean };
  maxConcurrent?: number;
  /** What the forecast assumes a call lasts. */
  avgCallSeconds?: number;
  contactCap?: { max: number; windowDays: number };
  startAt?: string;
}

export const listFlows = (signal?: AbortSignal) =>
  get<{ flows: FlowSummary[] }>('/api/flows', signal).then((r) => r.flows);

/** The flow version's delivery window (its startOutgoingCall's), if it has one. */
export async function flowDeliveryWindow(flowId: string, version: number): Promise<DeliveryWindow | undefined> {
  const flow = await get<{
    start?: string;
    elements: Array<{ id: string; type: string; deliveryWindow?: DeliveryWindow }>;
  }>(`/api/flows/${seg(flowId)}/versions/${version}`);
  return flow.elements.find((e) => e.id === flow.start && e.type === 'startOutgoingCall')?.deliveryWindow;
}

export const listCampaigns = (signal?: AbortSignal) =>
  get<{ campaigns: CampaignStatus[] }>('/api/campaigns', signal).then((r) => r.campaigns);

export const getCampaign = (id: string, signal?: AbortSignal) =>
  get<CampaignStatus>(`/api/campaigns/${seg(id)}`, signal);

export const createCampaign = (id: string, flow: { id: string; version: number }, settings: CampaignSettings) =>
  post<{ campaign: CampaignStatus }>('/api/campaigns', { id, flow, ...settings });

/** The content type the API takes for a recipients file, by its extension. */
export function recipientsContentType(fileName: string): string {
  return /\.(ndjson|jsonl)$/i.test(fileName) ? 'application/x-ndjson' : 'text/csv';
}

export const uploadRecipients = (id: string, file: File) =>
  upload<UploadResult>(`/api/campaigns/${seg(id)}/recipients`, file, recipientsContentType(file.name));

export const getForecast = (id: string, signal?: AbortSignal) =>
  get<Forecast>(`/api/campaigns/${seg(id)}/forecast`, signal);

export type CampaignAction = 'start' | 'pause' | 'resume' | 'cancel';
export const controlCampaign = (id: string, action: CampaignAction) =>
  post<CampaignStatus>(`/api/campaigns/${seg(id)}/${action}`);

export const campaignEventsUrl = (id: string) => `/api/campaigns/${seg(id)}/events`;
export const reportUrl = (id: string, format: 'csv' | 'json') => `/api/campaigns/${seg(id)}/report?format=${format}`;

export function listCalls(query: { campaignId?: string; pageToken?: string }, signal?: AbortSignal) {
  const q = new URLSearchParams();
  if (query.campaignId) q.set('campaignId', query.campaignId);
  if (query.pageToken) q.set('pageToken', query.pageToken);
  q.set('limit', '100');
  return get<{ calls: CallSummary[]; nextPageToken?: string }>(`/api/calls?${q.toString()}`, signal);
}

export const getCall = (callId: string, signal?: AbortSignal) => get<CallDetail>(`/api/calls/${seg(callId)}`, signal);

export const getTranscript = (callId: string, signal?: AbortSignal) =>
  get<{ events: TranscriptEvent[] }>(`/api/calls/${seg(callId)}/transcript`, signal).then((r) => r.events);

export const listRecordings = (callId: string, signal?: AbortSignal) =>
  get<{ recordings: Recording[] }>(`/api/recordings?callId=${encodeURIComponent(callId)}`, signal).then(
    (r) => r.recordings,
  );

export const recordingUrl = (name: string) => `/api/recordings/${seg(name)}`;
