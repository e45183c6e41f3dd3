// `dialflow api`: the HTTP API (src/api/server.ts) on 127.0.0.1:8080 unless configured otherwise.
// It talks to NATS (flows, tokens, audit, records, recordings) and to Temporal (calls, campaigns),
// with the payload key the workers use (checked at start, as every CLI command does).
import { Option, type Command } from 'commander';
import { createLogger } from '../../logging.js';
import { payloadCodec } from '../../config/index.js';
import { startApiServer } from '../../api/server.js';
import { assertPortFree } from '../../dev/stack.js';
import { setStorageReplicas } from '../../store/replicas.js';
import { withNats, withTemporal, type CliContext } from '../connections.js';
import { portOption } from '../options.js';

export function registerApiCommand(program: Command, ctx: CliContext): void {
  ctx
    .connects(
      program
        .command('api')
        .description(
          'serve the HTTP API and the web console (bearer tokens from `dialflow tokens create`, users from `dialflow users add`)',
        )
        .addOption(
          new Option('--api-host <host>', 'listen address (loopback unless you mean to expose it)').default(
            '127.0.0.1',
          ),
        )
        .addOption(new Option('--api-port <port>', 'listen port').default(8080).argParser(portOption)),
    )
    .action(async (opts: { apiHost: string; apiPort: number }) => {
      const config = ctx.config();
      setStorageReplicas(config.nats.replicas);
      await assertPortFree(opts.apiHost, opts.apiPort, 'API', '--api-port');
      const logger = createLogger('api', config.logLevel);
      await withNats(config.nats, (nc) =>
        withTemporal(config, async (client) => {
          const server = await startApiServer({
            nc,
            // withTemporal built the client with this codec (and checked it against the workers').
            temporal: { client, codec: payloadCodec(config), taskQueue: config.temporal.taskQueue },
            logger,
            host: opts.apiHost,
            port: opts.apiPort,
          });
          process.stderr.write(`dialflow API on ${server.url} (OpenAPI: ${server.url}/api/openapi.json)\n`);
          const signal = await new Promise<NodeJS.Signals>((resolve) => {
            for (const s of ['SIGINT', 'SIGTERM'] as const) process.once(s, () => resolve(s));
          });
          logger.info({ signal }, 'stopping');
          await server.close();
        }),
      );
    });
}
