/** Exit codes: 0 ok, 1 failure (invalid flow, demo failed, component failed), 2 usage/unreadable input. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
