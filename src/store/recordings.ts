// Call and voicemail recordings, kept in a NATS object store (chunked, so hour-long WAVs are fine).
// The provider stores a recording, then sends CALL_RECORDING_READY with its id; `dialflow
// recordings list|get` reads them back.
import type { Readable } from 'node:stream';
import { storageReplicas } from './replicas.js';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { readObject, type ByteRange } from './object-stream.js';

export const RECORDINGS_BUCKET = 'dialflow_recordings';

export interface RecordingMeta {
  /** Unique id: `{callId}:{commandId}` for a voicemail, `{callId}:call` for a whole call. */
  id: string;
  callId: string;
  /** The recordVoicemail element's file name, or `call`. */
  name: string;
  durationMs: number;
  contentType: string;
}

export interface StoredRecording extends RecordingMeta {
  size: number;
  storedAt: string;
}

export interface RecordingStore {
  put(meta: RecordingMeta, data: Uint8Array): Promise<void>;
  list(filter?: { callId?: string; workflowId?: string }): Promise<StoredRecording[]>;
  get(id: string): Promise<{ meta: StoredRecording; data: Uint8Array } | undefined>;
}

/** A stored recording opened for reading: its description, and its bytes streamed on demand. */
export interface OpenedRecording {
  meta: StoredRecording;
  /** The whole recording, or an inclusive byte range of it (within `meta.size`). */
  read(range?: ByteRange): Readable;
}

export class RecordingNotFoundError extends Error {
  override readonly name = 'RecordingNotFoundError';
}

export class ObjectRecordingStore implements RecordingStore {
  private constructor(
    private readonly os: ObjectStore,
    private readonly js: JetStreamClient,
  ) {}

  static async open(nc: NatsConnection): Promise<ObjectRecordingStore> {
    return new ObjectRecordingStore(
      await new Objm(nc).create(RECORDINGS_BUCKET, {
        description: 'dialflow call and voicemail recordings',
        replicas: storageReplicas(),
      }),
      jetstream(nc),
    );
  }

  async put(meta: RecordingMeta, data: Uint8Array): Promise<void> {
    await this.os.putBlob(
      {
        name: meta.id,
        description: `${meta.name} of ${meta.callId}`,
        metadata: {
          callId: meta.callId,
          name: meta.name,
          durationMs: String(meta.durationMs),
          contentType: meta.contentType,
        },
      },
      data,
    );
  }

  async list(filter: { callId?: string; workflowId?: string } = {}): Promise<StoredRecording[]> {
    const all = (await this.os.list()).filter((o) => !o.deleted).map(toStored);
    return all
      .filter(
        (r) =>
          (filter.callId === undefined || r.callId === filter.callId) &&
          (filter.workflowId === undefined ||
            r.callId.startsWith(`${filter.workflowId}~`) ||
            r.callId === filter.workflowId),
      )
      .sort((a, b) => a.storedAt.localeCompare(b.storedAt) || a.id.localeCompare(b.id));
  }

  async get(id: string): Promise<{ meta: StoredRecording; data: Uint8Array } | undefined> {
    const info = await this.os.info(id);
    if (!info || info.deleted) return undefined;
    const data = await this.os.getBlob(id);
    return data ? { meta: toStored(info), data } : undefined;
  }

  /** Streams a recording (for the HTTP API: ranges, without holding an hour-long WAV in memory). */
  async open(id: string): Promise<OpenedRecording | undefined> {
    const info = await this.os.info(id);
    if (!info || info.deleted) return undefined;
    return { meta: toStored(info), read: (range) => readObject(this.js, info, range) };
  }
}

function toStored(o: {
  name: string;
  size: number;
  mtime: string;
  metadata?: Record<string, string> | undefined;
}): StoredRecording {
  const m = o.metadata ?? {};
  return {
    id: o.name,
    callId: m.callId ?? '',
    name: m.name ?? '',
    durationMs: Number(m.durationMs ?? 0),
    contentType: m.contentType ?? 'application/octet-stream',
    size: o.size,
    storedAt: o.mtime,
  };
}

/** In-memory store for time-skipping runs and unit tests. */
export class MemoryRecordingStore implements RecordingStore {
  private readonly items = new Map<string, { meta: StoredRecording; data: Uint8Array }>();
  async put(meta: RecordingMeta, data: Uint8Array): Promise<void> {
    this.items.set(meta.id, { meta: { ...meta, size: data.byteLength, storedAt: new Date().toISOString() }, data });
  }
  async list(filter: { callId?: string } = {}): Promise<StoredRecording[]> {
    return [...this.items.values()]
      .map((i) => i.meta)
      .filter((m) => filter.callId === undefined || m.callId === filter.callId);
  }
  async get(id: string): Promise<{ meta: StoredRecording; data: Uint8Array } | undefined> {
    return this.items.get(id);
  }
}

/** Simulated recordings longer than this are stored truncated (the announced duration stays). */
const MAX_SYNTH_MS = 10 * 60_000;

/**
 * A valid WAV (8 kHz, 16-bit mono PCM) of the given length (at most ten minutes): a quiet 440 Hz
 * tone, so a fetched simulator recording plays and has the duration the event announced.
 */
export function synthesizeWav(durationMs: number): Uint8Array {
  const rate = 8000;
  const samples = Math.max(0, Math.round((Math.min(durationMs, MAX_SYNTH_MS) / 1000) * rate));
  const buf = Buffer.alloc(44 + samples * 2);
  buf.write('RIFF', 0, 'ascii');
  buf.writeUInt32LE(36 + samples * 2, 4);
  buf.write('WAVE', 8, 'ascii');
  buf.write('fmt ', 12, 'ascii');
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20); // PCM
  buf.writeUInt16LE(1, 22); // mono
  buf.writeUInt32LE(rate, 24);
  buf.writeUInt32LE(rate * 2, 28);
  buf.writeUInt16LE(2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write('data', 36, 'ascii');
  buf.writeUInt32LE(samples * 2, 40);
  for (let i = 0; i < samples; i++)
    buf.writeInt16LE(Math.round(2000 * Math.sin((2 * Math.PI * 440 * i) / rate)), 44 + i * 2);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}
