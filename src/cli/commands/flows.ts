// Flow documents: `dialflow validate` and `dialflow graph` (offline), and `dialflow flows
// publish|list|show` (the published versions, in NATS KV).
import { Option, type Command } from 'commander';
import { KvFlowStore } from '../../store/flows.js';
import { uploadFlowAudio } from '../../store/assets.js';
import { PROVIDERS } from '../../telephony/capabilities.js';
import type { NatsConnectSettings } from '../../telephony/nats.js';
import { CliError } from '../errors.js';
import { withNats, type CliContext } from '../connections.js';
import { positiveInteger } from '../options.js';
import { graphCommand, loadAndValidate, providerFor, validateCommand } from '../validate.js';

const providerOption = () =>
  new Option(
    '--provider <name>',
    'warn about what this provider lacks (default DIALFLOW_PROVIDER, else simulator)',
  ).choices(PROVIDERS);

const withStore = <T>(nats: NatsConnectSettings, f: (store: KvFlowStore) => Promise<T>): Promise<T> =>
  withNats(nats, async (nc) => f(await KvFlowStore.open(nc)));

export function registerFlowCommands(program: Command, ctx: CliContext): void {
  program
    .command('validate')
    .description('validate a flow document')
    .argument('<file>', 'flow document (JSON or YAML)')
    .option('--json', 'print the result as JSON', false)
    .addOption(providerOption())
    .action((file: string, opts: { json: boolean; provider?: string }) => {
      process.exitCode = validateCommand(file, { json: opts.json, provider: providerFor(opts.provider) });
    });
  program
    .command('graph')
    .description('print a Mermaid flowchart of a flow (branches labelled)')
    .argument('<file>', 'flow document (JSON or YAML)')
    .action((file: string) => {
      process.exitCode = graphCommand(file);
    });

  const flows = program.command('flows').description('publish and inspect flow versions (stored in NATS KV)');
  ctx
    .connects(
      flows
        .command('publish')
        .description('validate and publish a flow version; a published version never changes')
        .argument('<file>', 'flow document (JSON or YAML)')
        .addOption(providerOption()),
    )
    .action(async (file: string, opts: { provider?: string }) => {
      const provider = providerFor(opts.provider);
      const loaded = loadAndValidate(file, provider);
      if (loaded.code !== 0 || !('result' in loaded) || !loaded.result.flow) {
        process.exitCode = validateCommand(file, { json: false, provider });
        return;
      }
      for (const w of loaded.result.issues)
        process.stderr.write(`warning: ${w.code} ${w.elementId ? `[${w.elementId}] ` : ''}${w.path}: ${w.message}\n`);
      const flow = loaded.result.flow;
      const r = await withNats(ctx.config().nats, async (nc) => {
        // The audio files it plays go first, so no call of the new version misses one.
        const uploaded = await uploadFlowAudio(nc, flow, file);
        if (uploaded.length > 0) process.stderr.write(`uploaded ${uploaded.join(', ')}\n`);
        return (await KvFlowStore.open(nc)).publish(flow);
      });
      process.stdout.write(`${r.id} v${r.version}: ${r.created ? 'published' : 'already published (unchanged)'}\n`);
    });
  ctx.connects(flows.command('list').description('list published flows and their latest version')).action(async () => {
    const all = await withStore(ctx.config().nats, (store) => store.list());
    for (const f of all) process.stdout.write(`${f.id}\tv${f.latest}\n`);
  });
  ctx
    .connects(
      flows
        .command('show')
        .description('print a published flow (the latest version unless --version)')
        .argument('<id>')
        .addOption(new Option('--version <n>', 'version number').argParser(positiveInteger)),
    )
    .action(async (id: string, opts: { version?: number }) => {
      const flow = await withStore(ctx.config().nats, (store) => store.get(id, opts.version));
      if (!flow)
        throw new CliError(`flow "${id}"${opts.version ? ` version ${opts.version}` : ''} is not published`, 1);
      process.stdout.write(`${JSON.stringify(flow, null, 2)}\n`);
    });
}
