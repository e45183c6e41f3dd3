// `dialflow dev`: parses the options and hands them to src/dev/dev.ts, which runs the stack.
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { PROJECT_ROOT } from '../../config/tools.js';
import { PROVIDER_KINDS } from '../../config/index.js';
import { runDev, type DevOptions } from '../../dev/dev.js';
import { CliError } from '../errors.js';
import { flagsNotForDev, type CliContext } from '../connections.js';
import { portOption } from '../options.js';

export function registerDevCommand(program: Command, ctx: CliContext): void {
  program
    .command('dev')
    .description(
      'run the embedded stack: Temporal dev server, nats-server, workers, the telephony simulator, and the API with the web console',
    )
    .option('--demo', 'run the demo campaign once the stack is up', false)
    .option('--exit', 'stop everything and exit after the demo (exit code 1 if it failed)', false)
    .option(
      '--data-dir <dir>',
      'where the SQLite database, the JetStream store and logs live',
      join(PROJECT_ROOT, '.data'),
    )
    .addOption(
      new Option('--temporal-port <port>', 'Temporal frontend (gRPC) port').default(7233).argParser(portOption),
    )
    .addOption(new Option('--temporal-ui-port <port>', 'Temporal Web UI port').default(8233).argParser(portOption))
    .addOption(new Option('--nats-port <port>', 'nats-server client port').default(4222).argParser(portOption))
    .addOption(
      new Option('--metrics-port <port>', '/metrics of the worker; the bridge and simulator use the next two ports')
        .default(9464)
        .argParser(portOption),
    )
    .addOption(
      new Option('--codec-port <port>', 'codec server the Web UI uses to decrypt payloads')
        .default(8234)
        .argParser(portOption),
    )
    .addOption(
      new Option('--api-port <port>', 'port of the HTTP API and the web console').default(8080).argParser(portOption),
    )
    .addOption(
      new Option(
        '--api-host <host>',
        'listen address of the API and console (loopback unless you mean to expose it)',
      ).default('127.0.0.1'),
    )
    .option('--flow <file>', 'flow of the demo', join(PROJECT_ROOT, 'examples', 'appointment-reminder.json'))
    .option(
      '--recipients <file>',
      'recipients of the demo (JSON array)',
      join(PROJECT_ROOT, 'examples', 'demo-recipients.json'),
    )
    .addOption(
      new Option('--provider <name>', 'telephony provider: the simulator, real SIP calls, or Infobip')
        .choices(PROVIDER_KINDS)
        .default('simulator'),
    )
    .option(
      '--sip-trunk <uri>',
      'with --provider sip: the trunk or proxy to call through, e.g. sip:127.0.0.1:5060 (default: a local kamailio registrar)',
    )
    .addOption(
      new Option('--sip-port <port>', 'with --provider sip and no --sip-trunk: UDP port of the local registrar')
        .default(5080)
        .argParser(portOption),
    )
    .addOption(
      new Option('--webhook-port <port>', 'with --provider infobip: port of the webhook ingress')
        .default(8090)
        .argParser(portOption),
    )
    .action(async (opts: DevOptions) => {
      const foreign = flagsNotForDev(ctx.connectionFlags);
      if (foreign.length > 0)
        throw new CliError(
          `${foreign.join(', ')}: dev runs its own Temporal and NATS servers (ports: --temporal-port, --nats-port); these options are for commands against a running stack`,
          2,
        );
      if (opts.demo && opts.provider !== 'simulator')
        throw new CliError(
          'the demo calls simulated personas: run it with the simulator (drop --provider), or place real calls with `dialflow call`',
          2,
        );
      process.exitCode = await runDev(opts, ctx.env());
    });
}
