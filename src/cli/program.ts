// The `dialflow` program: the connection flags on the root (parsed once, by a preAction hook, into
// the command's CliContext), one file per command group under ./commands, and usage errors
// reported as one line each. Exit codes: 0 ok, 1 failure (invalid input, a failed call, a server
// or file that is not there), 2 usage (unknown option or command, a missing or bad argument, an
// invalid setting), 3 `dnc check`: not blocked.
import { Command } from 'commander';
import { addConnectionOptions, CliContext } from './connections.js';
import { registerDevCommand } from './commands/dev.js';
import { registerServiceCommands } from './commands/services.js';
import { registerFlowCommands } from './commands/flows.js';
import { registerCallCommands } from './commands/calls.js';
import { registerCampaignCommands } from './commands/campaign.js';
import { registerDncCommands } from './commands/dnc.js';
import { registerRecordingsCommands } from './commands/recordings.js';
import { registerApiCommand } from './commands/api.js';
import { registerTokenCommands } from './commands/tokens.js';
import { registerUserCommands } from './commands/users.js';

/** `dialflow campaign start`: how a command is typed. */
export function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** commander's message (`error: unknown option '--x'\n(Did you mean --y?)`) as one line about `command`. */
export function usageLine(command: Command, message: string): string {
  const text = message
    .replace(/^error:\s*/, '')
    .replace(/\s*\n\s*/g, ' ')
    .trim();
  return `${commandPath(command)}: ${text} — see \`${commandPath(command)} --help\`\n`;
}

/**
 * Every command throws commander's errors instead of exiting (main.ts turns them into exit 2) and
 * prints them as one line. A group run without its subcommand would print its whole help as an
 * error; one line naming the subcommands says the same.
 */
function reportUsageErrors(command: Command): void {
  command.exitOverride().configureOutput({
    outputError: (message) => process.stderr.write(usageLine(command, message)),
    // Only the help shown for a missing subcommand is written here (outputError covers the rest).
    writeErr: () =>
      process.stderr.write(
        usageLine(
          command,
          `missing command: one of ${command.commands
            .map((c) => c.name())
            .filter((n) => n !== 'help')
            .join(', ')}`,
        ),
      ),
  });
  for (const sub of command.commands) reportUsageErrors(sub);
}

export function buildProgram(ctx: CliContext = new CliContext()): Command {
  const program = new Command('dialflow')
    .description('IVR flow engine and outbound campaign dialer on Temporal and NATS')
    .configureHelp({ showGlobalOptions: true });
  addConnectionOptions(program);
  program.hook('preAction', (root, action) => ctx.prepare(root.opts(), action));
  registerDevCommand(program, ctx);
  registerServiceCommands(program, ctx);
  registerFlowCommands(program, ctx);
  registerCallCommands(program, ctx);
  registerCampaignCommands(program, ctx);
  registerDncCommands(program, ctx);
  registerRecordingsCommands(program, ctx);
  registerApiCommand(program, ctx);
  registerTokenCommands(program, ctx);
  registerUserCommands(program, ctx);
  reportUsageErrors(program);
  return program;
}
