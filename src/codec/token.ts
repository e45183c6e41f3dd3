// The codec server's bearer token. It decrypts call data for whoever asks, so every caller must
// present this token: the Temporal CLI as `--codec-auth "Bearer <token>"`, the Web UI inside its
// codec endpoint URL (see server.ts: the UI of `temporal server start-dev` cannot send a header).
import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { isErrnoException } from '../config/errors.js';

export class CodecTokenError extends Error {
  override readonly name = 'CodecTokenError';
}

/** The file `dialflow dev` and `dialflow codec-server` keep the token in, under the data dir. */
export const CODEC_TOKEN_FILE = 'codec.token';

// It travels in a URL path for the Web UI, so only URL-safe characters; long enough not to guess.
const tokenSchema = z
  .string()
  .trim()
  .regex(
    /^[A-Za-z0-9_-]{24,256}$/,
    'a codec server token is 24 to 256 characters from A-Z, a-z, 0-9, "-" and "_" (e.g. `openssl rand -hex 32`)',
  );

export function parseCodecToken(value: string, where: string): string {
  const r = tokenSchema.safeParse(value);
  if (!r.success) throw new CodecTokenError(`${where}:\n${z.prettifyError(r.error)}`);
  return r.data;
}

export function generateCodecToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Read the token from a file, creating it (0600) with a fresh random token if it does not exist. */
export function ensureCodecTokenFile(file: string): string {
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    try {
      writeFileSync(file, `${generateCodecToken()}\n`, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      // Another process created it between the check and the write: use theirs.
      if (!isErrnoException(err, 'EEXIST')) throw err;
    }
  }
  let content: string;
  try {
    content = readFileSync(file, 'utf8');
  } catch (err) {
    if (!isErrnoException(err)) throw err;
    throw new CodecTokenError(`cannot read the codec server token file ${file}: ${err.message}`, { cause: err });
  }
  return parseCodecToken(content, file);
}

/** The token of a data dir (`dialflow dev`): `<dataDir>/codec.token`, created on first use. */
export function codecToken(dataDir: string): string {
  return ensureCodecTokenFile(join(dataDir, CODEC_TOKEN_FILE));
}

/**
 * Compare a presented token with the expected one in constant time. Both sides are hashed first,
 * so neither the length nor a common prefix of the expected token leaks through timing.
 */
export function tokenMatches(presented: string, expected: string): boolean {
  const h = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(h(presented), h(expected));
}

/**
 * The token of `dialflow codec-server`: DIALFLOW_CODEC_TOKEN if set (e.g. from a Kubernetes
 * Secret), else the token file, created on first use.
 */
export function resolveCodecToken(o: { file: string; env?: Record<string, string | undefined> }): {
  token: string;
  source: string;
} {
  const fromEnv = (o.env ?? process.env).DIALFLOW_CODEC_TOKEN;
  if (fromEnv !== undefined && fromEnv !== '')
    return { token: parseCodecToken(fromEnv, 'DIALFLOW_CODEC_TOKEN'), source: 'DIALFLOW_CODEC_TOKEN' };
  return { token: ensureCodecTokenFile(o.file), source: o.file };
}
