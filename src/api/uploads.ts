// What the routes that take a raw request body share: the body's media type, and a byte cap on a
// streamed upload (the content-type parser hands the request stream on; nothing buffers it whole).
import { Transform, type Readable, type TransformCallback } from 'node:stream';

/** The media type of a Content-Type header, without parameters, lower case ('' when there is none). */
export const mediaTypeOf = (contentType: string | undefined): string =>
  (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';

/** More bytes came than the route takes. */
export class UploadTooLargeError extends Error {
  override readonly name = 'UploadTooLargeError';
}

/** Passes bytes through, failing with UploadTooLargeError(`message`) once more than `max` went by. */
export function byteLimit(max: number, message = `the upload is larger than ${max} bytes`): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) {
      seen += chunk.length;
      if (seen > max) done(new UploadTooLargeError(message));
      else done(null, chunk);
    },
  });
}

/**
 * The request stream with a byte cap: read it instead of `body`. An error of the request (the
 * client went away) ends the capped stream with that error. The request itself is left alone on
 * UploadTooLargeError, so that the route can still answer 413 (with `connection: close`).
 */
export function limitedBody(body: Readable, max: number, message?: string): Readable {
  const limited = body.pipe(byteLimit(max, message));
  body.once('error', (err) => limited.destroy(err));
  return limited;
}
