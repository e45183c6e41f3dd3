// Errors of Node's system calls, recognised for what they are so that a catch handles only those it
// expects (NATS and JetStream: store/nats-errors.ts; Temporal's frontend: dev/stack.ts).

/**
 * An error a system call failed with (`ENOENT`, `EACCES` …, with the `syscall` that failed), not a
 * programming error such as a bad argument; with `codes`, only one of those.
 */
export function isErrnoException(err: unknown, ...codes: string[]): err is NodeJS.ErrnoException {
  if (!(err instanceof Error)) return false;
  const { code, syscall } = err as NodeJS.ErrnoException;
  return typeof code === 'string' && typeof syscall === 'string' && (codes.length === 0 || codes.includes(code));
}
