// Bearer tokens of the HTTP API (`dialflow api`), in the NATS KV bucket dialflow_api_tokens. A token
// is shown once, when it is created; the bucket keeps only its SHA-256, so whoever can read the
// bucket still cannot call the API. A token reads `dfa_<id>_<secret>`: the id (public, also what
// `tokens list` shows and `tokens revoke` takes) finds the record without scanning the bucket, and
// the hash of the whole token is then compared in constant time. Revoking deletes the record: the
// API reads the bucket on every request, so a revoked token fails its next request.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { z } from 'zod';
import { storageReplicas } from './replicas.js';
import { readKvRecord } from './kv-records.js';

export const TOKENS_BUCKET = 'dialflow_api_tokens';

/** Lowest first: each role may do everything the roles before it may. */
export const API_ROLES = ['viewer', 'operator', 'admin'] as const;
export type ApiRole = (typeof API_ROLES)[number];

export const roleAtLeast = (role: ApiRole, needed: ApiRole): boolean =>
  API_ROLES.indexOf(role) >= API_ROLES.indexOf(needed);

const TOKEN_PREFIX = 'dfa';
const tokenPattern = /^dfa_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

const tokenRecordSchema = z.object({
  id: z.string(),
  name: z.string(),
  role: z.enum(API_ROLES),
  /** Hex SHA-256 of the whole token. */
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  created: z.string(),
});
type TokenRecord = z.infer<typeof tokenRecordSchema>;

/** What may be shown about a token: never the token, nor its hash. */
export type ApiTokenInfo = Omit<TokenRecord, 'hash'>;

const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();

export class ApiTokenStore {
  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection): Promise<ApiTokenStore> {
    return new ApiTokenStore(await new Kvm(nc).create(TOKENS_BUCKET, { history: 1, replicas: storageReplicas() }));
  }

  /** A new token; the caller shows `token` once, it cannot be read back. */
  async create(role: ApiRole, name?: string, now = new Date()): Promise<ApiTokenInfo & { token: string }> {
    const id = randomBytes(8).toString('hex');
    const token = `${TOKEN_PREFIX}_${id}_${randomBytes(32).toString('base64url')}`;
    const record: TokenRecord = {
      id,
      name: name ?? `${role}-${id.slice(0, 6)}`,
      role,
      hash: sha256(token).toString('hex'),
      created: now.toISOString(),
    };
    await this.kv.create(id, JSON.stringify(record));
    const { hash: _hash, ...info } = record;
    return { ...info, token };
  }

  /** The token's record, or undefined for a malformed, unknown or revoked token. */
  async verify(token: string): Promise<ApiTokenInfo | undefined> {
    const m = tokenPattern.exec(token);
    const id = m?.[1];
    if (!id) return undefined;
    const record = await this.read(id);
    if (!record) return undefined;
    if (!timingSafeEqual(sha256(token), Buffer.from(record.hash, 'hex'))) return undefined;
    const { hash: _hash, ...info } = record;
    return info;
  }

  async list(): Promise<ApiTokenInfo[]> {
    const out: ApiTokenInfo[] = [];
    for await (const id of await this.kv.keys()) {
      const record = await this.read(id);
      if (record) {
        const { hash: _hash, ...info } = record;
        out.push(info);
      }
    }
    return out.sort((a, b) => a.created.localeCompare(b.created) || a.id.localeCompare(b.id));
  }

  /** Revoke a token by id; the revoked token's info, or undefined when there was none. */
  async revoke(id: string): Promise<ApiTokenInfo | undefined> {
    if (!/^[0-9a-f]{16}$/.test(id)) return undefined;
    const record = await this.read(id);
    if (!record) return undefined;
    await this.kv.purge(id);
    const { hash: _hash, ...info } = record;
    return info;
  }

  private async read(id: string): Promise<TokenRecord | undefined> {
    // A record that is not ours (written by hand) authorises nothing.
    return (await readKvRecord(this.kv, id, tokenRecordSchema))?.record;
  }
}
