// `dialflow dnc add|remove|check`: the do-not-call list (NATS KV), checked before every outbound call.
import type { Command } from 'commander';
import { DoNotCallList } from '../../store/dnc.js';
import { CliError } from '../errors.js';
import { withNats, type CliContext } from '../connections.js';
import { readDoNotCallFile } from '../dnc-file.js';
import { normaliseInternationalNumber } from '../../store/phones.js';

/** A number named on the command line, in E.164, as a file's lines and the API take them. */
function international(phone: string): string {
  const e164 = normaliseInternationalNumber(phone);
  if (!e164) throw new CliError(`${JSON.stringify(phone)} is not a valid international number (e.g. +14155550123)`, 2);
  return e164;
}

/** The numbers given and those of the file; the file's bad lines are reported, and counted. */
async function phonesOf(args: string[], file?: string): Promise<{ list: string[]; badLines: number }> {
  const named = args.map(international);
  if (!file) return { list: named, badLines: 0 };
  const read = await readDoNotCallFile(file);
  for (const p of read.problems) process.stderr.write(`${file}:${p.line}: ${p.message}\n`);
  return { list: [...named, ...read.phones], badLines: read.problems.length };
}

export function registerDncCommands(program: Command, ctx: CliContext): void {
  const dnc = program.command('dnc').description('the do-not-call list (NATS KV), checked before every outbound call');
  for (const [name, blocked] of [
    ['add', true],
    ['remove', false],
  ] as const) {
    ctx
      .connects(
        dnc
          .command(name)
          .description(`${blocked ? 'block' : 'unblock'} numbers`)
          .argument('[phones...]')
          .option('--file <file>', 'one number per line (or CSV with the number first)'),
      )
      .action(async (args: string[], o: { file?: string }) => {
        const { list, badLines } = await phonesOf(args, o.file);
        if (list.length === 0)
          // Nothing named at all is a usage error; a file whose every line is bad is bad input.
          throw badLines > 0
            ? new CliError(`no numbers given (${badLines} bad line(s) in ${o.file})`, 1)
            : new CliError('no numbers given: name them, or a file with --file', 2);
        await withNats(ctx.config().nats, async (nc) => {
          const doNotCall = await DoNotCallList.open(nc);
          for (const p of list) {
            if (blocked) await doNotCall.add(p, { by: 'cli' });
            else await doNotCall.remove(p);
          }
        });
        process.stdout.write(
          `${list.length} number(s) ${blocked ? 'added to' : 'removed from'} the do-not-call list\n`,
        );
        // The good lines are in; the bad ones, listed above, still need fixing.
        if (badLines > 0) {
          process.stderr.write(`${o.file}: ${badLines} line(s) skipped\n`);
          process.exitCode = 1;
        }
      });
  }
  ctx
    .connects(dnc.command('check').description('is a number blocked? exit 0 if blocked, 3 if not').argument('<phone>'))
    .action(async (given: string) => {
      const phone = international(given);
      const blocked = await withNats(
        ctx.config().nats,
        async (nc) => (await (await DoNotCallList.open(nc)).get(phone)) !== undefined,
      );
      process.stdout.write(`${phone}: ${blocked ? 'blocked' : 'not blocked'}\n`);
      process.exitCode = blocked ? 0 : 3;
    });
}
