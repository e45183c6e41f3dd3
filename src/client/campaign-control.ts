// What `dialflow campaign …` and the HTTP API both do with a campaign: stage its recipients, forecast
// it, start it, ask its status, pause/resume/cancel it and read its report. One code path, so the
// CLI and the API cannot drift apart.
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { stageRecipients, type PageRow, type RecipientsSource, type StagingResult } from '../campaign/recipients.js';
import { forecastCampaign, type Forecast } from '../campaign/forecast.js';
import { flowSpeed } from '../campaign/pacing.js';
import { reportPayloadKeys } from '../campaign/report.js';
import {
  isCallRecord,
  readAllRecords,
  type CallRecord,
  type CampaignMeta,
  type PageStore,
  type RecordingRef,
  type RecordStore,
} from '../store/campaigns.js';
import type { CallingSpeed, Flow } from '../flow/schema.js';
import type { campaignWorkflow } from '../workflows/index.js';
import {
  campaignStatusQuery,
  campaignWorkflowId,
  cancelCampaignUpdate,
  pauseCampaignUpdate,
  resumeCampaignUpdate,
  type CampaignControlResult,
  type CampaignStatus,
} from '../workflows/messages.js';
import { startCampaign } from './campaigns.js';

export const DEFAULT_SPEED: CallingSpeed = { calls: 60, per: 'minute' };
export const DEFAULT_MAX_CONCURRENT = 100;
export const DEFAULT_AVG_CALL_SECONDS = 60;

/** No campaign workflow with that id. */
export class CampaignNotFoundError extends Error {
  override readonly name = 'CampaignNotFoundError';
}
/** The campaign refused a pause, resume or cancel (e.g. resuming a running one). */
export class CampaignControlError extends Error {
  override readonly name = 'CampaignControlError';
}

/** The calling speed a campaign runs at: the one given, else the flow's, else 60/minute. */
export const campaignSpeed = (flow: Flow, speed?: CallingSpeed): CallingSpeed =>
  speed ?? flowSpeed(flow) ?? DEFAULT_SPEED;

export const campaignHandle = (client: Client, campaignId: string): WorkflowHandle<typeof campaignWorkflow> =>
  client.workflow.getHandle<typeof campaignWorkflow>(campaignWorkflowId(campaignId));

function notFound(campaignId: string) {
  return (err: unknown): never => {
    if (err instanceof WorkflowNotFoundError)
      throw new CampaignNotFoundError(`no campaign "${campaignId}"`, { cause: err });
    if (err instanceof WorkflowUpdateFailedError)
      throw new CampaignControlError(`campaign ${campaignId}: ${err.cause?.message ?? err.message}`, { cause: err });
    throw err;
  };
}

/** The campaign's status query (CampaignNotFoundError when there is no such campaign). */
export function campaignStatus(client: Client, campaignId: string): Promise<CampaignStatus> {
  return campaignHandle(client, campaignId).query(campaignStatusQuery).catch(notFound(campaignId));
}

export const CAMPAIGN_CONTROLS = {
  pause: pauseCampaignUpdate,
  resume: resumeCampaignUpdate,
  cancel: cancelCampaignUpdate,
} as const;
export type CampaignControl = keyof typeof CAMPAIGN_CONTROLS;

/** Pause, resume or cancel through the workflow's updates (they answer once applied). */
export function controlCampaign(
  client: Client,
  campaignId: string,
  control: CampaignControl,
): Promise<CampaignControlResult> {
  return campaignHandle(client, campaignId).executeUpdate(CAMPAIGN_CONTROLS[control]).catch(notFound(campaignId));
}

/**
 * Stage recipients as the pages of `campaignId` and write its metadata (the report's rejected rows)
 * last: a source that fails part-way leaves pages but no metadata.
 */
export async function stageCampaignRecipients(
  store: PageStore,
  campaignId: string,
  source: RecipientsSource,
  format: 'csv' | 'ndjson',
): Promise<StagingResult> {
  const staging = await stageRecipients(source, (n, rows) => store.putPage(campaignId, n, rows), { format });
  await store.putMeta({ campaignId, staging, createdAt: new Date().toISOString() });
  return staging;
}

export interface CampaignSettings {
  /** Unset: the flow's calling speed, else 60/minute. */
  speed?: CallingSpeed;
  maxConcurrent: number;
  contactCap?: { max: number; windowDays: number };
}

/** Start the campaign workflow over staged pages; calls run on the same task queue. */
export function launchCampaign(
  client: Client,
  taskQueue: string,
  c: { campaignId: string; flow: Flow; pages: number; total: number; settings: CampaignSettings },
): Promise<WorkflowHandle<typeof campaignWorkflow>> {
  return startCampaign(client, taskQueue, {
    campaignId: c.campaignId,
    flow: c.flow,
    pages: c.pages,
    total: c.total,
    speed: campaignSpeed(c.flow, c.settings.speed),
    maxConcurrent: c.settings.maxConcurrent,
    callTaskQueue: taskQueue,
    ...(c.settings.contactCap ? { contactCap: c.settings.contactCap } : {}),
  });
}

const zoneOf = (r: PageRow) => r.recipient.timeZone ?? '';

/** Each valid recipient's zone ('' when unknown), in file order, staging nothing. */
export async function recipientZones(source: RecipientsSource): Promise<{ zones: string[]; staging: StagingResult }> {
  const zones: string[] = [];
  const staging = await stageRecipients(source, async (_n, rows) => {
    for (const r of rows) zones.push(zoneOf(r));
  });
  return { zones, staging };
}

/** Pages read at once by stagedZones: reads are latency-bound, and a few pages are little memory. */
const PAGE_READS = 8;

/** The zones of recipients staged already, read back page by page, in order. */
export async function stagedZones(store: PageStore, campaignId: string, pages: number): Promise<string[]> {
  const zones: string[] = [];
  for (let from = 0; from < pages; from += PAGE_READS) {
    const batch = Array.from({ length: Math.min(PAGE_READS, pages - from) }, (_, i) => from + i);
    for (const rows of await Promise.all(batch.map((n) => store.getPage(campaignId, n))))
      for (const r of rows) zones.push(zoneOf(r));
  }
  return zones;
}

export interface ForecastSettings {
  speed?: CallingSpeed;
  maxConcurrent: number;
  /** Epoch ms; unset: now. */
  start?: number;
  avgCallSeconds: number;
}

export function campaignForecast(flow: Flow, zones: string[], o: ForecastSettings): Forecast {
  return forecastCampaign(flow, zones, {
    speed: campaignSpeed(flow, o.speed),
    maxConcurrent: o.maxConcurrent,
    start: o.start ?? Date.now(),
    avgCallSeconds: o.avgCallSeconds,
  });
}

/** `dialflow campaign report`: every call record in row order, and the metadata (rejected rows). */
export async function campaignReport(
  store: RecordStore & PageStore,
  campaignId: string,
): Promise<{ records: CallRecord[]; meta: CampaignMeta | undefined }> {
  const [records, meta] = await Promise.all([readAllRecords(store, campaignId), store.getMeta(campaignId)]);
  records.sort((a, b) => a.row - b.row);
  return { records, meta };
}

/** The JSON report: counts by outcome, every record, the rows that were not staged. */
export function reportJson(campaignId: string, records: CallRecord[], meta: CampaignMeta | undefined) {
  const byOutcome: Record<string, number> = {};
  for (const r of records) byOutcome[r.outcome] = (byOutcome[r.outcome] ?? 0) + 1;
  return {
    campaignId,
    calls: records.length,
    byOutcome,
    recipients: records,
    rejectedRows: meta?.staging.rejected ?? [],
  };
}

/** Records read per request while streaming: bounds the memory of a report of any size. */
const STREAM_BATCH = 1000;

export interface ReportScan {
  /** The `dataPayload.<key>` columns, sorted. */
  payloadKeys: string[];
  /** Whole-call recordings that came after their call closed, by call workflow. */
  late: Map<string, RecordingRef[]>;
}

/**
 * A first pass over the records for a streamed report: its columns (they depend on every record)
 * and the late recordings (they belong in their call's row). Holds keys and recordings only.
 */
export async function scanReport(store: RecordStore, campaignId: string): Promise<ReportScan> {
  const keys = new Set<string>();
  const late = new Map<string, RecordingRef[]>();
  for (let seq = 0; ;) {
    const r = await store.readAfter(campaignId, seq, STREAM_BATCH);
    if (r.records.length === 0) break;
    reportPayloadKeys(r.records.filter(isCallRecord), keys);
    for (const e of r.records)
      if (!isCallRecord(e)) late.set(e.workflowId, [...(late.get(e.workflowId) ?? []), e.recording]);
    seq = r.lastSeq;
  }
  return { payloadKeys: [...keys].sort(), late };
}

/** The call records in stream order (as they ended), each with its late recordings, a batch at a time. */
export async function* streamCallRecords(
  store: RecordStore,
  campaignId: string,
  late: ReportScan['late'],
): AsyncGenerator<CallRecord> {
  for (let seq = 0; ;) {
    const r = await store.readAfter(campaignId, seq, STREAM_BATCH);
    if (r.records.length === 0) return;
    for (const e of r.records) {
      if (!isCallRecord(e)) continue;
      const extra = e.workflowId ? late.get(e.workflowId) : undefined;
      if (extra) {
        const known = e.recordings ?? [];
        const add = extra.filter((x) => !known.some((k) => k.recordingId === x.recordingId));
        if (add.length > 0) e.recordings = [...known, ...add];
      }
      yield e;
    }
    seq = r.lastSeq;
  }
}

/**
 * What the call records add to a campaign's status, kept up to date by reading only the records
 * after the last one read: counts by branch taken (`element → branch`) and the dials of calls that
 * ended in the last minute.
 */
export class RecordTally {
  private lastSeq = 0;
  readonly byBranch: Record<string, number> = {};
  private recent: Array<{ endedAt: number; dials: number }> = [];

  constructor(
    private readonly store: RecordStore,
    readonly campaignId: string,
  ) {}

  private pending: Promise<void> | undefined;

  /** Read the records that came since the last refresh (concurrent callers share one read). */
  refresh(now = Date.now()): Promise<void> {
    this.pending ??= this.read(now).finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async read(now: number): Promise<void> {
    for (;;) {
      const r = await this.store.readAfter(this.campaignId, this.lastSeq, STREAM_BATCH);
      if (r.records.length === 0) break;
      for (const e of r.records) {
        if (!isCallRecord(e)) continue;
        for (const t of e.responses) {
          const key = `${t.element} → ${t.branch}`;
          this.byBranch[key] = (this.byBranch[key] ?? 0) + 1;
        }
        if (e.dials > 0 && e.endedAt > now - 60_000) this.recent.push({ endedAt: e.endedAt, dials: e.dials });
      }
      this.lastSeq = r.lastSeq;
    }
    this.recent = this.recent.filter((x) => x.endedAt > now - 60_000);
  }

  /** Dials of the calls that ended within the last minute. */
  dialsLastMinute(): number {
    return this.recent.reduce((n, x) => n + x.dials, 0);
  }
}
