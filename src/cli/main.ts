// The `dialflow` command: runs the program (program.ts) and turns what it throws into one line on
// stderr and an exit code. No stack traces unless DIALFLOW_DEBUG is set.
import { CommanderError } from 'commander';
import { ConfigError, ConfigFileError } from '../config/index.js';
import { StackError } from '../dev/stack.js';
import { FlowValidationError } from '../flow/validate.js';
import { FlowVersionConflictError } from '../store/flows.js';
import { CliError } from './errors.js';
import { CliContext } from './connections.js';
import { buildProgram, commandPath } from './program.js';

/** The message and exit code of a failed command; a usage error's message was printed by commander already. */
function describe(err: unknown): { message?: string; code: number } {
  if (err instanceof CommanderError) {
    // --help and --version are not errors; a group run without its subcommand (help as an error) and
    // every other commander error are usage errors.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return { code: err.exitCode };
    return { code: 2 };
  }
  if (err instanceof StackError) return { message: err.oneLine(), code: 1 };
  if (err instanceof ConfigError) return { message: err.message, code: 2 };
  if (err instanceof ConfigFileError) return { message: err.message, code: 1 };
  if (err instanceof CliError) return { message: err.message, code: err.exitCode };
  if (err instanceof FlowValidationError || err instanceof FlowVersionConflictError)
    return { message: err.message, code: 1 };
  return { message: err instanceof Error ? err.message : String(err), code: 1 };
}

const ctx = new CliContext();
buildProgram(ctx)
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    const { message, code } = describe(err);
    if (message !== undefined)
      process.stderr.write(`${ctx.command ? commandPath(ctx.command) : 'dialflow'}: ${message}\n`);
    if (process.env.DIALFLOW_DEBUG) console.error(err);
    process.exit(code);
  });
