// Console sessions, in the NATS KV bucket dialflow_sessions. The browser holds a random session id
// (256 bits) in an HttpOnly cookie; the bucket keeps, under the id's SHA-256 (so whoever can read
// the bucket cannot take over a session), the user's name and the CSRF token of the session. A
// session ends after SESSION_IDLE_MS without a request (the bucket's TTL removes it; a request
// rewrites it at most once a minute), after SESSION_MAX_MS in any case, at logout, and when its
// user is removed or changes password (checked by the API on every request).
import { createHash, randomBytes } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { z } from 'zod';
import { storageReplicas } from './replicas.js';
import { isWrongLastSequence } from './nats-errors.js';
import { readKvRecord } from './kv-records.js';

export const SESSIONS_BUCKET = 'dialflow_sessions';
export const SESSION_IDLE_MS = 12 * 3600_000;
export const SESSION_MAX_MS = 24 * 3600_000;
/** How stale `lastSeen` may get before a request writes it again (bounds writes to one a minute a session). */
const TOUCH_AFTER_MS = 60_000;

const sessionIdPattern = /^[A-Za-z0-9_-]{43}$/;

const sessionRecordSchema = z.object({
  user: z.string(),
  csrfToken: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  created: z.string(),
  lastSeen: z.string(),
});
export type SessionRecord = z.infer<typeof sessionRecordSchema>;

const keyOf = (id: string) => createHash('sha256').update(id).digest('hex');

export class SessionStore {
  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection): Promise<SessionStore> {
    return new SessionStore(
      await new Kvm(nc).create(SESSIONS_BUCKET, { history: 1, ttl: SESSION_IDLE_MS, replicas: storageReplicas() }),
    );
  }

  /** A new session of `user`: its id (for the cookie, never stored) and its CSRF token. */
  async create(user: string, now = new Date()): Promise<{ id: string; record: SessionRecord }> {
    const id = randomBytes(32).toString('base64url');
    const record: SessionRecord = {
      user,
      csrfToken: randomBytes(32).toString('base64url'),
      created: now.toISOString(),
      lastSeen: now.toISOString(),
    };
    await this.kv.create(keyOf(id), JSON.stringify(record));
    return { id, record };
  }

  /** The live session with this id (refreshing its idle time), or undefined. */
  async get(id: string, now = new Date()): Promise<SessionRecord | undefined> {
    if (!sessionIdPattern.test(id)) return undefined;
    const key = keyOf(id);
    const found = await readKvRecord(this.kv, key, sessionRecordSchema);
    if (!found) return undefined;
    const { record, revision } = found;
    const t = now.getTime();
    if (t - Date.parse(record.created) > SESSION_MAX_MS || t - Date.parse(record.lastSeen) > SESSION_IDLE_MS) {
      await this.kv.purge(key);
      return undefined;
    }
    if (t - Date.parse(record.lastSeen) > TOUCH_AFTER_MS) {
      const touched = { ...record, lastSeen: now.toISOString() };
      try {
        await this.kv.update(key, JSON.stringify(touched), revision);
      } catch (err) {
        // A concurrent request touched it first, or a logout purged it: either way nothing to add.
        if (!isWrongLastSequence(err)) throw err;
      }
    }
    return record;
  }

  async delete(id: string): Promise<void> {
    if (sessionIdPattern.test(id)) await this.kv.purge(keyOf(id));
  }
}
