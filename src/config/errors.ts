// Errors of the configuration, and errors of Node's system calls recognised for what they are so
// that a catch handles only those it expects (NATS and JetStream: store/nats-errors.ts; Temporal's
// frontend: dev/stack.ts).
import { readFileSync } from 'node:fs';

/** A setting is missing, malformed, or contradicts another one: fix the configuration (CLI exit 2). */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * A file the configuration names (a TLS certificate, a NATS creds file, a Temporal profile file)
 * cannot be read or does not hold what it should. The setting is fine; the file is not (CLI exit 1).
 */
export class ConfigFileError extends Error {
  override readonly name = 'ConfigFileError';
  constructor(
    /** What the file is for, e.g. `Temporal TLS client certificate`. */
    readonly what: string,
    readonly file: string,
    reason: string,
    /** Where a file for this can be named, e.g. `--temporal-tls-cert or TEMPORAL_TLS_CLIENT_CERT_PATH`. */
    source?: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot read the ${what} ${file}${source ? ` (${source})` : ''}: ${reason}`, options);
  }
}

/**
 * An error a system call failed with (`ENOENT`, `EACCES` …, with the `syscall` that failed), not a
 * programming error such as a bad argument; with `codes`, only one of those.
 */
export function isErrnoException(err: unknown, ...codes: string[]): err is NodeJS.ErrnoException {
  if (!(err instanceof Error)) return false;
  const { code, syscall } = err as NodeJS.ErrnoException;
  return typeof code === 'string' && typeof syscall === 'string' && (codes.length === 0 || codes.includes(code));
}

const ERRNO_REASONS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a part of the path is not a directory',
};

/** `ENOENT (no such file)`: the code a user can search for, and what it means. */
export function errnoReason(err: NodeJS.ErrnoException): string {
  const meaning = err.code ? ERRNO_REASONS[err.code] : undefined;
  return meaning ? `${err.code} (${meaning})` : (err.code ?? err.message);
}

/** The bytes of a file the configuration names, or a ConfigFileError saying which file, named where, and why not. */
export function readConfiguredFile(file: string, what: string, source?: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    if (!isErrnoException(err)) throw err;
    throw new ConfigFileError(what, file, errnoReason(err), source, { cause: err });
  }
}
