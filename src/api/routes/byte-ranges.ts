// Serving a stored audio object over HTTP with byte ranges (RFC 9110 §14): what an <audio> element
// needs to seek, and to learn the length of a WAV without downloading it. One range per request:
// `bytes=a-b`, `bytes=a-` and `bytes=-n` answer 206 with Content-Range; a request for several ranges
// gets the whole object (200), as the RFC lets a server do, rather than a multipart body no player
// asks for. A range that starts past the end answers 416 with `Content-Range: bytes */size`.
// Not range-parser (Express's): it answers 416 to a suffix longer than the object and to an invalid
// range such as `bytes=9-2`, where RFC 9110 §14.1.2 serves the whole suffix and ignores the header.
import type { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ByteRange } from '../../store/object-stream.js';
import { z } from 'zod';
import { sendError } from '../auth.js';
import { errorBodySchema } from '../schemas.js';

/** The answers of a route served by `sendObject`, for its OpenAPI schema. */
export const objectResponses = {
  200: z.unknown().describe('the audio'),
  206: z.unknown().describe('the requested byte range of the audio'),
  400: errorBodySchema,
  401: errorBodySchema,
  403: errorBodySchema,
  404: errorBodySchema,
  416: errorBodySchema.describe('the range starts past the end (Content-Range: bytes */size)'),
};

export type RangeDecision = { kind: 'whole' } | { kind: 'partial'; range: ByteRange } | { kind: 'unsatisfiable' };

const SINGLE_RANGE = /^bytes=\s*(\d*)-(\d*)\s*$/i;

/** What a `Range` header asks of an object of `size` bytes. Anything that is not one valid byte range is ignored. */
export function decideRange(header: string | undefined, size: number): RangeDecision {
  if (header === undefined) return { kind: 'whole' };
  const m = SINGLE_RANGE.exec(header);
  // Other units, syntax errors and multiple ranges: the header may be ignored, and is.
  if (!m) return { kind: 'whole' };
  const [, first = '', last = ''] = m;
  if (first === '' && last === '') return { kind: 'whole' };
  if (first === '') {
    // A suffix: the last n bytes (all of them when n is larger than the object).
    const n = Number(last);
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', range: { start: Math.max(0, size - n), end: size - 1 } };
  }
  const start = Number(first);
  const end = last === '' ? Infinity : Number(last);
  if (end < start) return { kind: 'whole' }; // invalid, so ignored (RFC 9110 §14.1.1)
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', range: { start, end: Math.min(end, size - 1) } };
}

export interface ServedObject {
  size: number;
  contentType: string;
  /** The whole object, or a range of it. */
  read(range?: ByteRange): Readable;
  /** Suggested file name for a download. */
  fileName: string;
}

/**
 * Answers GET and HEAD for an object: 200 whole, 206 one range, 416 a range past its end. The route
 * must declare HEAD itself (`method: ['GET', 'HEAD']`): Fastify's automatic HEAD route would read
 * the whole object and announce a length of 0.
 */
export function sendObject(request: FastifyRequest, reply: FastifyReply, object: ServedObject): FastifyReply {
  reply
    .header('accept-ranges', 'bytes')
    // Recordings are personal data: kept out of shared caches; a browser revalidates each time.
    .header('cache-control', 'private, no-cache')
    .header('x-content-type-options', 'nosniff')
    .header('content-disposition', `inline; filename="${object.fileName.replace(/[^A-Za-z0-9._-]/g, '_')}"`);
  // We send no validators (ETag, Last-Modified), so an If-Range cannot be checked: send it all.
  const decision =
    request.headers['if-range'] === undefined
      ? decideRange(request.headers.range, object.size)
      : ({ kind: 'whole' } as const);
  if (decision.kind === 'unsatisfiable') {
    reply.header('content-range', `bytes */${object.size}`);
    return sendError(reply, 416, 'range.unsatisfiable', `the range is outside the object's ${object.size} bytes`);
  }
  reply.header('content-type', object.contentType);
  const range = decision.kind === 'partial' ? decision.range : undefined;
  if (range) {
    reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${object.size}`);
    reply.header('content-length', range.end - range.start + 1);
  } else reply.code(200).header('content-length', object.size);
  // HEAD: the headers only, without reading the object at all.
  if (request.method === 'HEAD') return reply.send();
  return reply.send(object.read(range));
}
