// One call at a time: `dialflow simulate` (time-skipped, on Temporal's test server, nothing else
// running) and `dialflow call` (a real call through the running stack). Both print a transcript.
import { Option, type Command } from 'commander';
import { placeCall, type CallOptions } from '../call.js';
import { formatTranscript, simulate } from '../simulate.js';
import { contactCapOption, positiveSeconds } from '../options.js';
import type { CliContext } from '../connections.js';

export function registerCallCommands(program: Command, ctx: CliContext): void {
  program
    .command('simulate')
    .description(
      'run one call of a flow on the time-skipping test server with a simulated person, and print a transcript',
    )
    .argument('<flow>', 'flow document (JSON or YAML)')
    .option(
      '--persona <json>',
      'persona, inline JSON or a file: {"attempts":["busy","answered"],"keys":["1"],"hangUpAt":"menu",…}',
    )
    .option('--recipient <json>', 'recipient, inline JSON or a file: {"id","phone","timeZone","firstName",…}')
    .option('--json', 'print {visited, dials, outcome, variables, events} as JSON', false)
    .action(async (file: string, opts: { persona?: string; recipient?: string; json: boolean }) => {
      const report = await simulate(file, opts);
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatTranscript(report));
    });

  ctx
    .connects(
      program
        .command('call')
        .description(
          'place one call through the running stack (whatever provider it runs) and print its transcript when it ends',
        )
        .argument('<flow>', 'flow document (JSON or YAML) starting with startOutgoingCall')
        .requiredOption(
          '--to <destination>',
          'an international number (+14155550123) or a SIP URI (sip:1001@127.0.0.1:5080)',
        )
        .option(
          '--recipient <json>',
          'recipient attributes, inline JSON or a file: {"firstName":"Ana","timeZone":"Europe/Zagreb"}',
        )
        .option(
          '--id <recipientId>',
          'recipient id (default: generated); the call is workflow call:cli:{id}, and an id is called once',
        )
        .addOption(
          new Option('--timeout <seconds>', 'give up waiting after this long (the call goes on)')
            .default(600)
            .argParser(positiveSeconds),
        )
        .addOption(
          new Option(
            '--contact-cap <n/days>',
            'skip the call if the number was called N times within D days (across campaigns), e.g. 3/30d',
          ).argParser(contactCapOption),
        )
        .option(
          '--json',
          'print {flow, visited, dials, outcome, variables, trail, recordings, warnings, events} as JSON',
          false,
        ),
    )
    .action(async (file: string, opts: Omit<CallOptions, 'timeoutSeconds'> & { timeout: number }) => {
      const report = await placeCall(file, { ...opts, timeoutSeconds: opts.timeout }, ctx.config());
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatTranscript(report));
      if (report.outcome === 'failed') process.exitCode = 1;
    });
}
