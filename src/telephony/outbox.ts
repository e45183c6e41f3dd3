// A durable outbox for a provider's telephony events: "a provider never drops an event".
//
// A provider stores the events a command causes (and its own state of the call, in the same write)
// before it acknowledges the command. Nothing is acknowledged that is not stored: when the store
// cannot be written (JetStream down), the command stays unanswered, the activity retries it, and
// the provider, idempotent by command id, plans nothing new for a command whose events it already
// holds. Each stored event is published at its due time; a failed publish is retried with back-off
// (the same msg-id, so JetStream's dedupe hides a publish whose ack was lost), never dropped, and
// the event leaves the outbox only once JetStream acknowledged it. Events of one call (one outbox
// id) are published one after another in the order they were stored, also across retries.
//
// A restarted provider calls recover(): every stored record comes back with its state, events
// whose time has passed go out at once, later ones at their time.
//
// One record per id (a call): `{ s: provider state, p: pending events }`, one key-value write per
// command and one per published event. Records live in a NATS KV bucket (one per provider); the
// store is an interface so that tests can run the outbox on memory and fail writes on purpose.
import { z } from 'zod';
import { Kvm, type KV } from '@nats-io/kv';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { TelephonyEvent } from './contract.js';
import type { RecordingMeta } from '../store/recordings.js';
import { storageReplicas } from '../store/replicas.js';
import { SealedEventError } from './event-seal.js';

/** Thrown by commit() when the record could not be stored: the caller must not acknowledge. */
export class OutboxUnavailableError extends Error {
  override readonly name = 'OutboxUnavailableError';
}

/** One event waiting in the outbox. */
export interface OutboxEvent {
  /** When it is due (epoch ms). */
  at: number;
  /** JetStream msg-id (the event id, or a deliberate copy's own). */
  msgId: string;
  event: TelephonyEvent;
  /** Stored (e.g. in the recordings bucket) before the event is published. */
  recording?: RecordingMeta;
}

const outboxEventSchema = z.object({
  at: z.number(),
  msgId: z.string().min(1),
  event: z
    .object({
      id: z.string(),
      type: z.string(),
      callId: z.string(),
      timestamp: z.string(),
      properties: z.record(z.string(), z.unknown()),
    })
    .passthrough(),
  recording: z
    .object({ id: z.string(), callId: z.string(), name: z.string(), durationMs: z.number(), contentType: z.string() })
    .passthrough()
    .optional(),
});

/** Key-value storage of records. Implementations throw on any failure to store. */
export interface OutboxStore {
  put(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
  /** Every stored record (at recovery). */
  entries(): AsyncIterable<[key: string, value: string]>;
}

/** NATS KV keys allow `[-/_=.a-zA-Z0-9]`; call ids carry `~`, `:` and `#`. */
export const outboxKey = (id: string) => Buffer.from(id, 'utf8').toString('base64url');
export const idOfKey = (key: string) => Buffer.from(key, 'base64url').toString('utf8');

/** Records older than this (not written for two days, the longest validity period) are dropped by the bucket. */
export const OUTBOX_MAX_AGE_MS = 48 * 3600 * 1000;

/** A NATS KV bucket as the outbox store (file storage; one bucket per provider). */
export class KvOutboxStore implements OutboxStore {
  private constructor(
    readonly kv: KV,
    private readonly prefix: string,
  ) {}

  /**
   * `timeoutMs` bounds each write: a command whose record cannot be stored in that time is not
   * acknowledged (the requester's own timeout is 5 s, and it retries).
   */
  static async open(
    nc: NatsConnection,
    bucket: string,
    opts: { prefix?: string; timeoutMs?: number } = {},
  ): Promise<KvOutboxStore> {
    const kv = await new Kvm(jetstream(nc, { timeout: opts.timeoutMs ?? 3_000 })).create(bucket, {
      history: 1,
      ttl: OUTBOX_MAX_AGE_MS,
      replicas: storageReplicas(),
    });
    return new KvOutboxStore(kv, opts.prefix ?? 'o.');
  }

  /** Another key space in the same bucket (e.g. a provider's counters beside its outbox). */
  withPrefix(prefix: string): KvOutboxStore {
    return new KvOutboxStore(this.kv, prefix);
  }

  async put(key: string, value: string): Promise<void> {
    await this.kv.put(`${this.prefix}${key}`, value);
  }
  async delete(key: string): Promise<void> {
    // Purge, not delete: the bucket keeps no history of a forgotten call.
    await this.kv.purge(`${this.prefix}${key}`);
  }
  async *entries(): AsyncIterable<[string, string]> {
    const keys: string[] = [];
    for await (const k of await this.kv.keys(`${this.prefix}>`)) keys.push(k);
    for (const k of keys) {
      const e = await this.kv.get(k);
      if (e && e.operation === 'PUT') yield [k.slice(this.prefix.length), e.string()];
    }
  }
}

/** Records in memory: unit tests, and providers that accept losing events on a crash. */
export class MemoryOutboxStore implements OutboxStore {
  readonly data = new Map<string, string>();
  /** Set to make every operation fail (an outage). */
  failing = false;
  private check(): void {
    if (this.failing) throw new Error('store unavailable');
  }
  async put(key: string, value: string): Promise<void> {
    this.check();
    this.data.set(key, value);
  }
  async delete(key: string): Promise<void> {
    this.check();
    this.data.delete(key);
  }
  async *entries(): AsyncIterable<[string, string]> {
    this.check();
    for (const e of [...this.data]) yield e;
  }
}

export interface OutboxOptions<S> {
  /** Publish one event and resolve once the broker acknowledged it; throw to have it retried. */
  publish: (e: OutboxEvent) => Promise<void>;
  /** Validates a stored state at recovery (a record that does not parse is logged and skipped). */
  stateSchema: z.ZodType<S>;
  log?: (m: string) => void;
  now?: () => number;
  /** Back-off of publish and write retries. */
  retry?: { initialMs: number; maxMs: number };
  /**
   * Encrypt a record before it is stored and decrypt it at recovery: records hold what callers
   * typed (DTMF in event properties), which must not sit in clear in the bucket's files. `open`
   * throws SealedEventError for a record it cannot open (another key, altered).
   */
  sealer?: { seal(plain: string): Promise<string>; open(stored: string): Promise<string> };
}

interface OutboxRecord<S> {
  s: S | null;
  p: OutboxEvent[];
}

export interface OutboxStats {
  /** Events stored and not yet acknowledged by the broker. */
  pending: number;
  published: number;
  /** Failed publish attempts (each retried). */
  publishRetries: number;
  /** Commits refused because the store could not be written. */
  refused: number;
}

/** The durable outbox. `S` is the provider's own state of a call, stored with its events. */
export class EventOutbox<S> {
  private readonly records = new Map<string, OutboxRecord<S>>();
  private readonly writes = new Map<string, Promise<unknown>>();
  private readonly publishes = new Map<string, Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Ids whose in-memory record is ahead of the store (a write after a publish failed). */
  private readonly dirty = new Set<string>();
  private dirtyTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly log: (m: string) => void;
  private readonly now: () => number;
  private readonly retry: { initialMs: number; maxMs: number };
  readonly stats: OutboxStats = { pending: 0, published: 0, publishRetries: 0, refused: 0 };

  constructor(
    private readonly store: OutboxStore,
    private readonly opts: OutboxOptions<S>,
  ) {
    this.log = opts.log ?? ((m) => console.error(`outbox: ${m}`));
    this.now = opts.now ?? Date.now;
    this.retry = opts.retry ?? { initialMs: 250, maxMs: 5_000 };
  }

  /**
   * Load every stored record and schedule its pending events (those past due at once, in their
   * stored order). Returns the stored states, for the provider to take up its calls again.
   */
  async recover(): Promise<Map<string, S>> {
    const states = new Map<string, S>();
    const recordSchema = z.object({ s: this.opts.stateSchema.nullable(), p: z.array(outboxEventSchema) });
    for await (const [key, value] of this.store.entries()) {
      const id = idOfKey(key);
      let parsed: OutboxRecord<S>;
      try {
        parsed = recordSchema.parse(
          JSON.parse(this.opts.sealer ? await this.opts.sealer.open(value) : value),
        ) as OutboxRecord<S>;
      } catch (err) {
        // A record this version cannot read (not JSON, another shape, sealed with a key this process
        // lacks): keep it in the store for an operator, do not crash.
        if (!(err instanceof SyntaxError || err instanceof z.ZodError || err instanceof SealedEventError)) throw err;
        this.log(`skipping unreadable record ${id}: ${err.message}`);
        continue;
      }
      this.records.set(id, parsed);
      if (parsed.s !== null) states.set(id, parsed.s);
      this.stats.pending += parsed.p.length;
      for (const e of parsed.p) this.schedule(id, e);
    }
    return states;
  }

  /** The stored state of an id (as last committed). */
  state(id: string): S | undefined {
    return this.records.get(id)?.s ?? undefined;
  }

  /** Ids held without a provider state and with nothing pending (e.g. the answer to an unknown call): droppable. */
  stateless(): string[] {
    return [...this.records].filter(([, r]) => r.s === null && r.p.length === 0).map(([id]) => id);
  }

  /** Events of `id` not yet acknowledged by the broker. */
  pendingOf(id: string): number {
    return this.records.get(id)?.p.length ?? 0;
  }

  /**
   * Store `state` and append `events` to the id's pending events, in one write. Resolves once
   * stored; the events are then scheduled. Throws OutboxUnavailableError when the store cannot be
   * written, and then nothing changed (memory included).
   */
  async commit(id: string, state: S | null, events: OutboxEvent[]): Promise<void> {
    if (this.stopped) throw new OutboxUnavailableError('the outbox is stopped');
    await this.serial(id, async () => {
      const current = this.records.get(id);
      const next: OutboxRecord<S> = { s: state, p: [...(current?.p ?? []), ...events] };
      const encoded = await this.encode(next);
      try {
        // The store's contract: it throws on any failure to store, and that is all it throws.
        await this.store.put(outboxKey(id), encoded);
      } catch (err) {
        this.stats.refused += 1;
        throw new OutboxUnavailableError(`cannot store the events of ${id}: ${(err as Error).message}`, { cause: err });
      }
      this.records.set(id, next);
      this.dirty.delete(id);
      this.stats.pending += events.length;
      for (const e of events) this.schedule(id, e);
    });
  }

  /**
   * Drop the record of a call the provider is done with. Kept while events are pending (they are
   * still owed); returns whether it was dropped.
   */
  async forget(id: string): Promise<boolean> {
    return this.serial(id, async () => {
      const rec = this.records.get(id);
      if (!rec) return true;
      if (rec.p.length > 0) return false;
      try {
        await this.store.delete(outboxKey(id));
      } catch (err) {
        this.log(`cannot drop the record of ${id} (kept, tried again later): ${(err as Error).message}`);
        return false;
      }
      this.records.delete(id);
      this.dirty.delete(id);
      return true;
    });
  }

  /** Stop timers and retries. Pending events stay in the store for the next start. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.dirtyTimer) clearTimeout(this.dirtyTimer);
    await Promise.allSettled([...this.publishes.values(), ...this.writes.values()]);
  }

  /** Resolves when every event due by now has been published (tests, graceful stop). */
  async idle(): Promise<void> {
    while (this.publishes.size > 0) await Promise.allSettled([...this.publishes.values()]);
  }

  // Writes of one id run one at a time, so that a commit and the removal of a published event
  // never overwrite each other with an older record.
  private serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.writes.get(id) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.writes.set(id, tail);
    void tail.then(() => {
      if (this.writes.get(id) === tail) this.writes.delete(id);
    });
    return run;
  }

  private schedule(id: string, e: OutboxEvent): void {
    const delay = e.at - this.now();
    if (delay <= 0) return this.enqueue(id, e);
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.enqueue(id, e);
    }, delay);
    this.timers.add(t);
  }

  // The publish chain of one id: an event waits for the one before it, also while that one is
  // being retried, so the order of a call's events holds through an outage.
  private enqueue(id: string, e: OutboxEvent): void {
    const next = (this.publishes.get(id) ?? Promise.resolve()).then(async () => {
      if (!(await this.publishWithRetry(id, e))) return;
      this.stats.published += 1;
      this.stats.pending = Math.max(0, this.stats.pending - 1);
      const rec = this.records.get(id);
      if (rec) rec.p = rec.p.filter((x) => x.msgId !== e.msgId);
      void this.flush(id);
    });
    this.publishes.set(id, next);
    void next.finally(() => {
      if (this.publishes.get(id) === next) this.publishes.delete(id);
    });
  }

  /** True once published; false only when the outbox stopped first (the event stays stored). */
  private async publishWithRetry(id: string, e: OutboxEvent): Promise<boolean> {
    let wait = this.retry.initialMs;
    for (let attempt = 1; ; attempt++) {
      if (this.stopped) return false;
      try {
        await this.opts.publish(e);
        if (attempt > 1) this.log(`published ${e.event.type} for ${id} after ${attempt} attempts`);
        return true;
      } catch (err) {
        this.stats.publishRetries += 1;
        // One line per event on the first failure, then every tenth: an outage is not a log flood.
        if (attempt === 1 || attempt % 10 === 0)
          this.log(
            `publish ${e.event.type} for ${id} failed (attempt ${attempt}, retrying): ${(err as Error).message}`,
          );
        await new Promise((r) => setTimeout(r, wait));
        wait = Math.min(wait * 2, this.retry.maxMs);
      }
    }
  }

  /** Write the record as it is in memory (after a publish removed an event). */
  private async flush(id: string): Promise<void> {
    await this.serial(id, async () => {
      const rec = this.records.get(id);
      if (!rec) return;
      const encoded = await this.encode(rec);
      try {
        await this.store.put(outboxKey(id), encoded);
        this.dirty.delete(id);
      } catch (err) {
        // The event went out; only its removal is not stored. Republishing it after a crash is
        // harmless (same msg-id and event id), so this is retried in the background.
        this.dirty.add(id);
        this.log(
          `cannot store the removal of a published event of ${id} (tried again later): ${(err as Error).message}`,
        );
        this.scheduleDirty();
      }
    });
  }

  private async encode(rec: OutboxRecord<S>): Promise<string> {
    const plain = JSON.stringify(rec);
    return this.opts.sealer ? this.opts.sealer.seal(plain) : plain;
  }

  private scheduleDirty(): void {
    if (this.dirtyTimer || this.stopped) return;
    this.dirtyTimer = setTimeout(() => {
      this.dirtyTimer = undefined;
      for (const id of [...this.dirty]) void this.flush(id);
    }, this.retry.maxMs);
    this.dirtyTimer.unref();
  }
}
