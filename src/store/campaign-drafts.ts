// Campaigns created through the API before they start: the flow version and settings chosen, and
// the summary of the recipients staged for them (the pages themselves are in the campaign bucket,
// as `dialflow campaign start` stages them). The console's wizard creates a draft, uploads, looks at
// the forecast, then starts it; each step is a request, so the draft lives in NATS KV, not in
// memory. The record stays after the start (marked started): it names the flow and the settings,
// and it tells a late upload apart from one before the start.
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import type { CallingSpeed } from '../flow/schema.js';
import type { StagingSummary } from '../campaign/recipients.js';
import { storageReplicas } from './replicas.js';
import { isWrongLastSequence } from './nats-errors.js';

export const CAMPAIGN_DRAFTS_BUCKET = 'dialflow_campaign_drafts';

export interface StagedRecipients {
  summary: StagingSummary;
  /** Pages written to the campaign bucket, and the recipients they hold (the workflow's input). */
  pages: number;
  accepted: number;
  format: 'csv' | 'ndjson';
  uploadedAt: string;
}

export interface UploadClaim {
  /** Random, one per upload request. */
  id: string;
  /** Who uploads (token or user name). */
  by?: string;
  claimedAt: string;
}

export interface CampaignDraft {
  campaignId: string;
  flow: { id: string; version: number };
  /** Unset: the flow's callingSpeed, else 60/minute (as `dialflow campaign start`). */
  speed?: CallingSpeed;
  maxConcurrent: number;
  contactCap?: { max: number; windowDays: number };
  /** The planned start (ISO), for the forecast; unset: now. */
  startAt?: string;
  /** The zone the console shows the campaign's times in. */
  timeZone?: string;
  /** Average call length the forecast assumes. */
  avgCallSeconds: number;
  createdAt: string;
  /** Name of the token or user that created it. */
  createdBy: string;
  recipients?: StagedRecipients;
  /**
   * An upload of recipients under way (on any API replica): claimed with a compare-and-set write
   * before its first page is staged, renewed while it stages, removed by its commit or its failure.
   * See src/api/routes/campaigns.ts for how it keeps two uploads' pages apart.
   */
  upload?: UploadClaim;
  /** Set when the campaign was started (its workflow exists from then on). */
  startedAt?: string;
}

/** Another request changed the draft between our read and our write. */
export class DraftChangedError extends Error {
  override readonly name = 'DraftChangedError';
}

export class CampaignDraftStore {
  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection): Promise<CampaignDraftStore> {
    return new CampaignDraftStore(
      await new Kvm(nc).create(CAMPAIGN_DRAFTS_BUCKET, { history: 1, replicas: storageReplicas() }),
    );
  }

  /** False when a draft with that id exists. */
  async create(draft: CampaignDraft): Promise<boolean> {
    try {
      await this.kv.create(draft.campaignId, JSON.stringify(draft));
      return true;
    } catch (err) {
      if (!isWrongLastSequence(err)) throw err;
      return false;
    }
  }

  /** The draft, its revision, and when that revision was written (the NATS server's clock). */
  async get(campaignId: string): Promise<{ draft: CampaignDraft; revision: number; writtenAt: Date } | undefined> {
    const e = await this.kv.get(campaignId);
    if (!e || e.operation !== 'PUT' || e.length === 0) return undefined;
    return { draft: e.json<CampaignDraft>(), revision: e.revision, writtenAt: e.created };
  }

  /** Write `draft` if it is still at `revision`; else DraftChangedError. */
  async update(draft: CampaignDraft, revision: number): Promise<number> {
    try {
      return await this.kv.update(draft.campaignId, JSON.stringify(draft), revision);
    } catch (err) {
      if (!isWrongLastSequence(err)) throw err;
      throw new DraftChangedError(`campaign ${draft.campaignId} was changed by another request: try again`);
    }
  }

  async list(): Promise<CampaignDraft[]> {
    const ids: string[] = [];
    for await (const id of await this.kv.keys()) ids.push(id);
    const drafts = await Promise.all(ids.map((id) => this.get(id)));
    return drafts.flatMap((d) => (d ? [d.draft] : []));
  }
}
