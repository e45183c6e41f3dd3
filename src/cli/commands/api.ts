// `dialflow api`: the HTTP API and the web console (src/api/server.ts) on 127.0.0.1:8080 unless
// configured otherwise. It talks to NATS (flows, tokens, users, sessions, audit, records,
// recordings) and to Temporal (calls, campaigns), with the payload key the workers use (checked at
// start, as every CLI command does). Run by `dialflow dev` as one of its services: it then reports
// ready over the IPC channel and stops when its parent goes away.
import { Option, type Command } from 'commander';
import { createLogger } from '../../logging.js';
import { payloadCodec } from '../../config/index.js';
import { startApiServer } from '../../api/server.js';
import { assertPortFree } from '../../dev/stack.js';
import { setStorageReplicas } from '../../store/replicas.js';
import { withNats, withTemporal, type CliContext } from '../connections.js';
import { portOption } from '../options.js';

/** How long a stop (requests finishing, connections closed) may take before the process exits anyway. */
export const SHUTDOWN_DEADLINE_MS = 10_000;

export function registerApiCommand(program: Command, ctx: CliContext): void {
  ctx
    .connects(
      program
        .command('api')
        .description(
          'serve the HTTP API and the web console (bearer tokens from `dialflow tokens create`, users from `dialflow users add`)',
        )
        .addOption(
          new Option('--api-host <host>', 'listen address (loopback unless you mean to expose it)')
            .default('127.0.0.1')
            .env('DIALFLOW_API_HOST'),
        )
        .addOption(
          new Option('--api-port <port>', 'listen port').default(8080).argParser(portOption).env('DIALFLOW_API_PORT'),
        )
        .option(
          '--cookie-secure',
          'mark the console session cookie Secure: set it when browsers reach the API over HTTPS (a TLS-terminating proxy)',
          false,
        ),
    )
    .action(async (opts: { apiHost: string; apiPort: number; cookieSecure: boolean }) => {
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
            cookieSecure: opts.cookieSecure,
          });
          process.stderr.write(`dialflow API on ${server.url} (OpenAPI: ${server.url}/api/openapi.json)\n`);
          logger.info({ url: server.url }, 'ready');
          process.send?.({ type: 'ready' });
          const reason = await new Promise<string>((resolve) => {
            for (const s of ['SIGINT', 'SIGTERM'] as const) process.once(s, () => resolve(s));
            // Under `dialflow dev`: the parent is gone (even killed hard), so is the stack.
            if (process.connected) process.once('disconnect', () => resolve('parent gone'));
          });
          logger.info({ reason }, 'stopping');
          const stopping = Date.now();
          // Bounded: a client's connection that never sent a request is not idle to Node, and holds
          // the HTTP server's close up to its headersTimeout (60 s; a fetch client leaves such a
          // spare after a large upload); nothing else may stretch a stop either (a supervisor would
          // kill it hard). The stop was asked for and is done: exit 0, with a warning. Unref'd, the
          // timer fires only if the process is still alive when it is due.
          setTimeout(() => {
            logger.warn({ ms: Date.now() - stopping }, 'stop took too long: exiting with connections still open');
            process.exit(0);
          }, SHUTDOWN_DEADLINE_MS).unref();
          await server.close();
          logger.info({ ms: Date.now() - stopping }, 'HTTP server closed');
        }),
      );
      // The IPC channel would keep the process alive.
      if (process.connected) process.disconnect();
    });
}
