// Reading one object of a NATS object store as a Node stream, whole or a byte range, without
// holding it in memory. The client library's `ObjectStore.get()` pushes every chunk into its
// ReadableStream as fast as the server sends them (no backpressure), so a slow HTTP client would
// end with the whole object queued in memory; here an ordered pull consumer fetches a few chunks at
// a time, as the reader asks for them. A range that starts late in the object first finds its chunk
// with a headers-only pass (chunk sizes, no payload), then reads from that chunk on.
import { Readable } from 'node:stream';
import { errors } from '@nats-io/transport-node';
import { DeliverPolicy, JsHeaders, type JetStreamClient } from '@nats-io/jetstream';
import type { ObjectInfo } from '@nats-io/obj';
import { isConsumerNotFound } from './nats-errors.js';

/** Inclusive byte offsets, as HTTP ranges are. */
export interface ByteRange {
  start: number;
  end: number;
}

/** Chunks fetched ahead of the reader (each at most the object's chunk size, 128 KiB by default). */
const CHUNKS_AHEAD = 4;

// The object store keeps the chunks of object `nuid` on this subject of stream OBJ_<bucket> (ADR-20).
const streamOf = (info: ObjectInfo) => `OBJ_${info.bucket}`;
const chunkSubject = (info: ObjectInfo) => `$O.${info.bucket}.C.${info.nuid}`;

/** The stream sequence of the chunk holding byte `offset`, and where that chunk starts. */
async function locateChunk(
  js: JetStreamClient,
  info: ObjectInfo,
  offset: number,
): Promise<{ seq: number; chunkStart: number }> {
  const consumer = await js.consumers.get(streamOf(info), {
    filter_subjects: chunkSubject(info),
    headers_only: true,
  });
  const messages = await consumer.consume({ max_messages: 256 });
  let chunkStart = 0;
  try {
    for await (const m of messages) {
      const size = Number(m.headers?.get(JsHeaders.MessageSizeHdr) ?? NaN);
      if (!Number.isFinite(size)) throw new Error(`object ${info.name}: a chunk without its size header`);
      if (chunkStart + size > offset) return { seq: m.seq, chunkStart };
      chunkStart += size;
      if (m.info.pending === 0) break;
    }
  } finally {
    messages.stop();
    await dropConsumer(consumer);
  }
  throw new Error(`object ${info.name}: offset ${offset} is past its ${chunkStart} stored bytes`);
}

async function dropConsumer(consumer: { delete(): Promise<boolean> }): Promise<void> {
  try {
    await consumer.delete();
  } catch (err) {
    // An ordered consumer is ephemeral: the server drops an idle one by itself soon anyway.
    if (!isConsumerNotFound(err) && !(err instanceof errors.TimeoutError)) throw err;
  }
}

async function* chunksOf(js: JetStreamClient, info: ObjectInfo, range: ByteRange): AsyncGenerator<Uint8Array> {
  const from = range.start > 0 ? await locateChunk(js, info, range.start) : { seq: undefined, chunkStart: 0 };
  const consumer = await js.consumers.get(streamOf(info), {
    filter_subjects: chunkSubject(info),
    ...(from.seq !== undefined ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from.seq } : {}),
  });
  const messages = await consumer.consume({ max_messages: CHUNKS_AHEAD });
  let offset = from.chunkStart;
  try {
    for await (const m of messages) {
      const chunkStart = offset;
      offset += m.data.length;
      const sliceFrom = Math.max(range.start - chunkStart, 0);
      const sliceTo = Math.min(range.end + 1 - chunkStart, m.data.length);
      if (sliceTo > sliceFrom) yield m.data.subarray(sliceFrom, sliceTo);
      if (offset > range.end || m.info.pending === 0) break;
    }
  } finally {
    messages.stop();
    await dropConsumer(consumer);
  }
  if (offset <= range.end) throw new Error(`object ${info.name}: ended at byte ${offset}, before ${range.end + 1}`);
}

/**
 * The bytes of an object (its current version, as `info` describes it), or of `range` of them.
 * The range must lie within the object (the caller answers 416 otherwise).
 */
export function readObject(js: JetStreamClient, info: ObjectInfo, range?: ByteRange): Readable {
  const wanted = range ?? { start: 0, end: info.size - 1 };
  if (info.size === 0 || wanted.end < wanted.start) return Readable.from([]);
  // objectMode off: the consumer of this stream (an HTTP response) sees plain bytes.
  return Readable.from(chunksOf(js, info, wanted), { objectMode: false });
}
