// Recipient profiles (the CDP stand-in): attributes per recipient, kept in a NATS KV bucket.
import { storageReplicas } from './replicas.js';
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { isWrongLastSequence } from './nats-errors.js';

export interface ProfileStore {
  get(recipientId: string): Promise<Record<string, unknown>>;
  /** Merge attributes into the profile; returns the new profile. */
  update(recipientId: string, attributes: Record<string, unknown>): Promise<Record<string, unknown>>;
}

export const PROFILES_BUCKET = 'dialflow_profiles';
/** KV keys allow [-/_=.a-zA-Z0-9]; anything else in a recipient id is escaped. */
export function kvKey(id: string): string {
  return id.replace(/[^-_=.a-zA-Z0-9]/g, (c) => `=${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export class KvProfileStore implements ProfileStore {
  private constructor(private readonly kv: KV) {}
  static async open(nc: NatsConnection): Promise<KvProfileStore> {
    return new KvProfileStore(await new Kvm(nc).create(PROFILES_BUCKET, { history: 5, replicas: storageReplicas() }));
  }
  async get(recipientId: string): Promise<Record<string, unknown>> {
    const e = await this.kv.get(kvKey(recipientId));
    return e && e.operation === 'PUT' && e.length > 0 ? e.json<Record<string, unknown>>() : {};
  }
  async update(recipientId: string, attributes: Record<string, unknown>): Promise<Record<string, unknown>> {
    // Optimistic concurrency: retry when another writer updated the profile in between.
    for (let attempt = 0; ; attempt++) {
      const key = kvKey(recipientId);
      const e = await this.kv.get(key);
      const current = e && e.operation === 'PUT' && e.length > 0 ? e.json<Record<string, unknown>>() : {};
      const next = { ...current, ...attributes };
      try {
        if (e) await this.kv.update(key, JSON.stringify(next), e.revision);
        else await this.kv.create(key, JSON.stringify(next));
        return next;
      } catch (err) {
        // Another writer updated the profile since it was read: merge into theirs.
        if (!isWrongLastSequence(err) || attempt >= 5) throw err;
      }
    }
  }
}

export class MemoryProfileStore implements ProfileStore {
  readonly profiles = new Map<string, Record<string, unknown>>();
  async get(recipientId: string) {
    return { ...(this.profiles.get(recipientId) ?? {}) };
  }
  async update(recipientId: string, attributes: Record<string, unknown>) {
    const next = { ...(this.profiles.get(recipientId) ?? {}), ...attributes };
    this.profiles.set(recipientId, next);
    return next;
  }
}
