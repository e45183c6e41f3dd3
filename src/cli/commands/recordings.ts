// `dialflow recordings list|get`: call and voicemail recordings, stored in a NATS object store.
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ObjectRecordingStore } from '../../store/recordings.js';
import { CliError } from '../errors.js';
import { withNats, type CliContext } from '../connections.js';

export function registerRecordingsCommands(program: Command, ctx: CliContext): void {
  const recordings = program
    .command('recordings')
    .description('list and fetch call and voicemail recordings (stored in a NATS object store)');
  ctx
    .connects(
      recordings
        .command('list')
        .description('list recordings, oldest first')
        .option('--call <callId>', 'only this call id')
        .option('--workflow <workflowId>', 'only calls of this workflow, e.g. call:{campaignId}:{recipientId}')
        .option('--json', 'print JSON', false),
    )
    .action(async (opts: { call?: string; workflow?: string; json: boolean }) => {
      const all = await withNats(ctx.config().nats, async (nc) =>
        (await ObjectRecordingStore.open(nc)).list({
          ...(opts.call ? { callId: opts.call } : {}),
          ...(opts.workflow ? { workflowId: opts.workflow } : {}),
        }),
      );
      if (opts.json) process.stdout.write(`${JSON.stringify(all, null, 2)}\n`);
      else
        for (const r of all)
          process.stdout.write(
            `${r.id}\t${r.name}\t${(r.durationMs / 1000).toFixed(1)} s\t${r.size} B\t${r.storedAt}\n`,
          );
    });
  ctx
    .connects(
      recordings
        .command('get')
        .description('fetch one recording into a file (or stdout with -o -)')
        .argument('<id>', 'recording id, as listed')
        .option('-o, --output <file>', 'where to write it; default: the id with unsafe characters replaced, plus .wav'),
    )
    .action(async (id: string, opts: { output?: string }) => {
      const rec = await withNats(ctx.config().nats, async (nc) => (await ObjectRecordingStore.open(nc)).get(id));
      if (!rec) throw new CliError(`no recording "${id}" (see \`dialflow recordings list\`)`, 1);
      if (opts.output === '-') {
        process.stdout.write(rec.data);
        return;
      }
      const file = opts.output ?? `${id.replace(/[^-_.a-zA-Z0-9]/g, '_')}.wav`;
      writeFileSync(file, rec.data);
      process.stderr.write(
        `${file}: ${rec.meta.name}, ${(rec.meta.durationMs / 1000).toFixed(1)} s, ${rec.data.byteLength} bytes\n`,
      );
    });
}
