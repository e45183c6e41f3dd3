// The audit log of the HTTP API and of token management: who did what, when. An append-only
// JetStream stream (DIALFLOW_AUDIT, subject dialflow.audit.<action>), kept without an age limit:
// the log is small (one entry per publish or token change) and an operator trims it, if ever, with
// `nats stream purge`. Entries are read back newest first by sequence number.
import type { NatsConnection } from '@nats-io/transport-node';
import {
  DiscardPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { z } from 'zod';
import { storageReplicas } from './replicas.js';
import { isStreamNotFound } from './nats-errors.js';
import { API_ROLES } from './tokens.js';

export const AUDIT_STREAM = 'DIALFLOW_AUDIT';
const AUDIT_SUBJECT_PREFIX = 'dialflow.audit';

/** Everything that changes what the installation does or who may use it. */
export const AUDIT_ACTIONS = [
  'flow.publish',
  'token.create',
  'token.revoke',
  'user.add',
  'user.remove',
  'user.password',
  'session.login',
  'session.loginFailed',
  'call.start',
  'campaign.create',
  'campaign.start',
  'campaign.pause',
  'campaign.resume',
  'campaign.cancel',
  'dnc.add',
  'dnc.remove',
  'dnc.import',
  'asset.upload',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export const auditEntrySchema = z.object({
  time: z.string().describe('ISO 8601 time of the action'),
  actor: z
    .object({
      tokenId: z.string().optional().describe('id of the API token (absent for the CLI and console users)'),
      user: z.string().optional().describe('console user (absent for tokens and the CLI)'),
      name: z.string().describe('token name, user name, or "cli" for a command run on the CLI'),
      role: z.enum(API_ROLES).optional(),
    })
    .describe('who did it'),
  action: z.enum(AUDIT_ACTIONS),
  target: z.record(z.string(), z.union([z.string(), z.number()])).describe('what it was done to'),
  outcome: z.string().describe('published, unchanged, created, revoked …'),
});
export type AuditEntry = z.infer<typeof auditEntrySchema>;

export class AuditLog {
  private constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
  ) {}

  static async open(nc: NatsConnection): Promise<AuditLog> {
    const jsm = await jetstreamManager(nc);
    try {
      await jsm.streams.info(AUDIT_STREAM);
    } catch (err) {
      if (!isStreamNotFound(err)) throw err;
      await jsm.streams.add({
        name: AUDIT_STREAM,
        subjects: [`${AUDIT_SUBJECT_PREFIX}.>`],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        discard: DiscardPolicy.Old,
        num_replicas: storageReplicas(),
      });
    }
    return new AuditLog(jetstream(nc), jsm);
  }

  async append(entry: AuditEntry): Promise<void> {
    await this.js.publish(`${AUDIT_SUBJECT_PREFIX}.${entry.action}`, JSON.stringify(auditEntrySchema.parse(entry)));
  }

  /** The newest `limit` entries, newest first. */
  async recent(limit: number): Promise<AuditEntry[]> {
    const { state } = await this.jsm.streams.info(AUDIT_STREAM);
    const out: AuditEntry[] = [];
    for (let seq = state.last_seq; seq >= state.first_seq && seq > 0 && out.length < limit; seq--) {
      const msg = await this.jsm.streams.getMessage(AUDIT_STREAM, { seq });
      // A sequence removed by hand (`nats stream rmm`) leaves a gap; an entry not in this shape is skipped.
      const parsed = msg ? auditEntrySchema.safeParse(msg.json()) : undefined;
      if (parsed?.success) out.push(parsed.data);
    }
    return out;
  }
}
