// What campaigns keep outside Temporal history: staged recipient pages (NATS object store), call
// records (JetStream, one subject per campaign: the report and the campaign's completion counts),
// the do-not-call list (read and written through DoNotCallList, src/store/dnc.ts) and per-recipient
// contact counts (NATS KV).
import { storageReplicas } from './replicas.js';
import { errors, nanos, type NatsConnection } from '@nats-io/transport-node';
import {
  DiscardPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { PageRow, StagingResult } from '../campaign/recipients.js';
import type { CallOutcome, TrailEntry } from '../flow/interpreter.js';
import { kvKey } from './profiles.js';
import { DNC_BUCKET, DoNotCallList } from './dnc.js';
import { phoneKey } from './phones.js';
import { isConsumerNotFound, isStreamNotFound, isWrongLastSequence } from './nats-errors.js';

export const CAMPAIGN_BUCKET = 'dialflow_campaigns';
export const RECORDS_STREAM = 'DIALFLOW_RECORDS';
// The do-not-call bucket is DoNotCallList's; named here too, with the other buckets of campaigns.
export { DNC_BUCKET };
export const CONTACTS_BUCKET = 'dialflow_contacts';
export const recordsSubject = (campaignId: string) => `dialflow.records.${kvKey(campaignId)}`;

/** One finished call of a campaign, as the report lists it. Masked digits are already masked. */
/**
 * What a call wrote when it ended: one per call, campaign calls, direct calls and inbound calls
 * alike (`campaignId` names the campaign, the direct calls' label, or `inbound`). A whole-call
 * recording, which becomes ready after the hang-up (possibly after the call's workflow closed), also
 * comes as a record of kind `recording` for the same `workflowId`, written by the bridge:
 * `readAllRecords` puts it into its call's record (once), and completions count calls only.
 */
export interface CallRecord {
  /** Absent: a call's record (records from before recordings had records of their own). */
  kind?: 'call';
  campaignId: string;
  /** The call workflow, where known (every record written since records carry recordings). */
  workflowId?: string;
  direction?: 'outbound' | 'inbound';
  recipientId: string;
  row: number;
  outcome: CallOutcome;
  dials: number;
  /** First dial to end of call (0 when never dialled). */
  durationMs: number;
  slotAt: number;
  endedAt: number;
  responses: TrailEntry[];
  dataPayload?: Record<string, string>;
  error?: string;
  /** Voicemail and whole-call recordings of the call. */
  recordings?: RecordingRef[];
}

export interface RecordingRef {
  recordingId: string;
  name: string;
  durationMs?: number;
  url?: string;
}

/** A whole-call recording, as the bridge saw the provider's CALL_RECORDING_READY (possibly after the call closed). */
export interface LateRecordingRecord {
  kind: 'recording';
  campaignId: string;
  workflowId: string;
  recording: RecordingRef;
}

export type RecordEntry = CallRecord | LateRecordingRecord;
export const isCallRecord = (r: RecordEntry): r is CallRecord => r.kind !== 'recording';

export interface CampaignMeta {
  campaignId: string;
  staging: StagingResult;
  createdAt: string;
}

export interface PageStore {
  putPage(campaignId: string, n: number, rows: PageRow[]): Promise<void>;
  getPage(campaignId: string, n: number): Promise<PageRow[]>;
  putMeta(meta: CampaignMeta): Promise<void>;
  getMeta(campaignId: string): Promise<CampaignMeta | undefined>;
}

export interface RecordsRead {
  records: RecordEntry[];
  /** Stream sequence of the last record read (pass back as `afterSeq`). */
  lastSeq: number;
}

export interface RecordStore {
  publish(record: RecordEntry, dedupeId: string): Promise<void>;
  /** Records of a campaign after stream sequence `afterSeq`, up to `max`. */
  readAfter(campaignId: string, afterSeq: number, max?: number): Promise<RecordsRead>;
}

/**
 * Every call record of a campaign so far, in stream order (the report), with the recordings that
 * came after their call had closed put into their call's record.
 */
export async function readAllRecords(store: RecordStore, campaignId: string): Promise<CallRecord[]> {
  const all: CallRecord[] = [];
  const late: LateRecordingRecord[] = [];
  for (let seq = 0; ;) {
    const r = await store.readAfter(campaignId, seq);
    if (r.records.length === 0) break;
    for (const e of r.records) {
      if (isCallRecord(e)) all.push(e);
      else late.push(e);
    }
    seq = r.lastSeq;
  }
  if (late.length === 0) return all;
  const byWorkflow = new Map(all.filter((r) => r.workflowId).map((r) => [r.workflowId as string, r]));
  for (const l of late) {
    const call = byWorkflow.get(l.workflowId);
    if (!call) continue;
    const known = call.recordings ?? [];
    if (!known.some((k) => k.recordingId === l.recording.recordingId)) call.recordings = [...known, l.recording];
  }
  return all;
}

/** Publishes records only (no stream set-up, no reads): what the bridge may do with the records. */
export function recordPublisher(nc: NatsConnection): Pick<RecordStore, 'publish'> {
  const js = jetstream(nc);
  return { publish: (record, dedupeId) => publishRecord(js, record, dedupeId) };
}

/** A record on its campaign's subject, deduplicated by JetStream on `dedupeId`. */
async function publishRecord(js: JetStreamClient, record: RecordEntry, dedupeId: string): Promise<void> {
  await js.publish(recordsSubject(record.campaignId), JSON.stringify(record), { msgID: dedupeId });
}

export interface ComplianceStore {
  isDoNotCall(phone: string): Promise<boolean>;
  setDoNotCall(phone: string, blocked: boolean): Promise<void>;
  /**
   * Count a contact of `phone` unless it already had `cap` contacts within `windowMs` before
   * `now`: returns false (and counts nothing) when the cap is reached. Atomic per number.
   */
  claimContact(phone: string, cap: number, windowMs: number, now: number): Promise<boolean>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export class NatsCampaignStore implements PageStore, RecordStore, ComplianceStore {
  private constructor(
    private readonly objects: ObjectStore,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly dnc: DoNotCallList,
    private readonly contacts: KV,
  ) {}

  static async open(nc: NatsConnection): Promise<NatsCampaignStore> {
    const jsm = await jetstreamManager(nc);
    const cfg = {
      name: RECORDS_STREAM,
      subjects: ['dialflow.records.>'],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      duplicate_window: nanos(10 * 60_000),
      num_replicas: storageReplicas(),
    };
    try {
      await jsm.streams.info(RECORDS_STREAM);
    } catch (err) {
      if (!isStreamNotFound(err)) throw err;
      await jsm.streams.add(cfg);
    }
    const kvm = new Kvm(nc);
    return new NatsCampaignStore(
      await new Objm(nc).create(CAMPAIGN_BUCKET, {
        description: 'dialflow campaign recipient pages',
        replicas: storageReplicas(),
      }),
      jetstream(nc),
      jsm,
      await DoNotCallList.open(nc),
      await kvm.create(CONTACTS_BUCKET, { history: 1, replicas: storageReplicas() }),
    );
  }

  async putPage(campaignId: string, n: number, rows: PageRow[]): Promise<void> {
    await this.objects.putBlob(
      { name: `${campaignId}/pages/${n}` },
      enc.encode(rows.map((r) => JSON.stringify(r)).join('\n')),
    );
  }

  async getPage(campaignId: string, n: number): Promise<PageRow[]> {
    const blob = await this.objects.getBlob(`${campaignId}/pages/${n}`);
    if (!blob) throw new Error(`page ${n} of campaign ${campaignId} is missing`);
    return dec
      .decode(blob)
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as PageRow);
  }

  async putMeta(meta: CampaignMeta): Promise<void> {
    await this.objects.putBlob({ name: `${meta.campaignId}/meta` }, enc.encode(JSON.stringify(meta)));
  }

  async getMeta(campaignId: string): Promise<CampaignMeta | undefined> {
    const blob = await this.objects.getBlob(`${campaignId}/meta`);
    return blob ? (JSON.parse(dec.decode(blob)) as CampaignMeta) : undefined;
  }

  publish(record: RecordEntry, dedupeId: string): Promise<void> {
    return publishRecord(this.js, record, dedupeId);
  }

  async readAfter(campaignId: string, afterSeq: number, max = 50_000): Promise<RecordsRead> {
    const subject = recordsSubject(campaignId);
    // A cheap look first: nothing new means no consumer at all.
    const info = await this.jsm.streams.info(RECORDS_STREAM, { subjects_filter: subject });
    if (info.state.last_seq <= afterSeq || !info.state.subjects?.[subject]) return { records: [], lastSeq: afterSeq };
    const consumer = await this.js.consumers.get(RECORDS_STREAM, {
      filter_subjects: subject,
      opt_start_seq: afterSeq + 1,
    });
    const records: RecordEntry[] = [];
    let lastSeq = afterSeq;
    for (;;) {
      const batch = await consumer.fetch({ max_messages: Math.min(1000, max - records.length), expires: 1000 });
      let got = 0;
      let pending = 0;
      for await (const m of batch) {
        got += 1;
        records.push(m.json<RecordEntry>());
        lastSeq = m.seq;
        pending = m.info.pending;
      }
      if (got === 0 || pending === 0 || records.length >= max) break;
    }
    try {
      await consumer.delete();
    } catch (err) {
      // The server drops an idle ordered consumer by itself: one already gone, or a delete that got
      // no answer in time, leaves nothing behind for long. The records are read either way.
      if (!isConsumerNotFound(err) && !(err instanceof errors.TimeoutError)) throw err;
    }
    return { records, lastSeq };
  }

  isDoNotCall(phone: string): Promise<boolean> {
    return this.dnc.has(phone);
  }

  /** Through DoNotCallList, the list's one writer: the entry is the one the API and the CLI write. */
  async setDoNotCall(phone: string, blocked: boolean): Promise<void> {
    if (blocked) await this.dnc.add(phone);
    else await this.dnc.remove(phone);
  }

  async claimContact(phone: string, cap: number, windowMs: number, now: number): Promise<boolean> {
    const key = phoneKey(phone);
    for (let attempt = 0; ; attempt++) {
      const e = await this.contacts.get(key);
      const times =
        e && e.operation === 'PUT' && e.length > 0 ? (e.json<number[]>() ?? []).filter((t) => t > now - windowMs) : [];
      if (times.length >= cap) return false;
      try {
        const value = JSON.stringify([...times, now]);
        if (e) await this.contacts.update(key, value, e.revision);
        else await this.contacts.create(key, value);
        return true;
      } catch (err) {
        // Another call of the same number counted a contact since the read: count again.
        if (!isWrongLastSequence(err) || attempt >= 10) throw err;
      }
    }
  }
}

/** In-memory stores for time-skipping runs and unit tests. */
export class MemoryCampaignStore implements PageStore, RecordStore, ComplianceStore {
  readonly pages = new Map<string, PageRow[]>();
  readonly metas = new Map<string, CampaignMeta>();
  readonly records: Array<{ seq: number; dedupeId: string; record: RecordEntry }> = [];
  readonly dnc = new Set<string>();
  readonly contacts = new Map<string, number[]>();

  async putPage(campaignId: string, n: number, rows: PageRow[]): Promise<void> {
    this.pages.set(`${campaignId}/${n}`, rows);
  }
  async getPage(campaignId: string, n: number): Promise<PageRow[]> {
    const rows = this.pages.get(`${campaignId}/${n}`);
    if (!rows) throw new Error(`page ${n} of campaign ${campaignId} is missing`);
    return rows;
  }
  async putMeta(meta: CampaignMeta): Promise<void> {
    this.metas.set(meta.campaignId, meta);
  }
  async getMeta(campaignId: string): Promise<CampaignMeta | undefined> {
    return this.metas.get(campaignId);
  }
  /** The call records published so far, of one campaign or all. */
  callRecords(campaignId?: string): CallRecord[] {
    return this.records
      .map((r) => r.record)
      .filter(isCallRecord)
      .filter((r) => campaignId === undefined || r.campaignId === campaignId);
  }
  async publish(record: RecordEntry, dedupeId: string): Promise<void> {
    if (this.records.some((r) => r.dedupeId === dedupeId)) return;
    this.records.push({ seq: this.records.length + 1, dedupeId, record });
  }
  async readAfter(campaignId: string, afterSeq: number, max = 50_000): Promise<RecordsRead> {
    const mine = this.records.filter((r) => r.seq > afterSeq && r.record.campaignId === campaignId).slice(0, max);
    return { records: mine.map((r) => r.record), lastSeq: mine.at(-1)?.seq ?? afterSeq };
  }
  async isDoNotCall(phone: string): Promise<boolean> {
    return this.dnc.has(phoneKey(phone));
  }
  async setDoNotCall(phone: string, blocked: boolean): Promise<void> {
    if (blocked) this.dnc.add(phoneKey(phone));
    else this.dnc.delete(phoneKey(phone));
  }
  async claimContact(phone: string, cap: number, windowMs: number, now: number): Promise<boolean> {
    const times = (this.contacts.get(phoneKey(phone)) ?? []).filter((t) => t > now - windowMs);
    if (times.length >= cap) return false;
    this.contacts.set(phoneKey(phone), [...times, now]);
    return true;
  }
}
