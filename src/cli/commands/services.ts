// The long-running processes: `dialflow worker|bridge|simulator|sip-agents|infobip|webhooks`
// (configured by DIALFLOW_* variables, src/workers/service.ts) and `dialflow codec-server`.
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { PROJECT_ROOT } from '../../config/tools.js';
import { payloadCodec } from '../../config/index.js';
import { startCodecServer } from '../../codec/server.js';
import { CODEC_TOKEN_FILE, resolveCodecToken } from '../../codec/token.js';
import { runService, type Role } from '../../workers/service.js';
import { connectionEnv, type CliContext } from '../connections.js';
import { portOption } from '../options.js';

const SERVICES: ReadonlyArray<readonly [Role, string]> = [
  ['worker', 'run the flow worker (call workflows and activities)'],
  ['bridge', 'run the event bridge (JetStream telephony events → workflow signals)'],
  ['simulator', 'run the telephony simulator (scripted personas on NATS)'],
  ['sip-agents', 'run the SIP provider: a pool of SIP user agents (DIALFLOW_SIP_CHANNELS) behind DIALFLOW_SIP_TRUNK'],
  [
    'infobip',
    'run the Infobip provider: telephony commands → Infobip Calls API (DIALFLOW_INFOBIP_BASE_URL, DIALFLOW_INFOBIP_API_KEY)',
  ],
  ['webhooks', 'run the webhook ingress: POST /webhooks/infobip with HTTP Basic auth → telephony events on JetStream'],
];

/** Lay the connection flags over this process's environment, which a service reads its config from. */
function exportFlags(ctx: CliContext): void {
  for (const [name, value] of Object.entries(connectionEnv(ctx.connectionFlags))) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
}

export function registerServiceCommands(program: Command, ctx: CliContext): void {
  for (const [role, what] of SERVICES) {
    ctx
      .connects(program.command(role).description(`${what}; configured by DIALFLOW_* environment variables`))
      .action(async () => {
        exportFlags(ctx);
        await runService(role);
      });
  }

  program
    .command('codec-server')
    .description(
      'serve the payload codec to the Temporal Web UI and CLI; every caller needs the token (DIALFLOW_CODEC_TOKEN or --token-file)',
    )
    .addOption(new Option('--host <host>', 'listen address').default('127.0.0.1'))
    .addOption(new Option('--port <port>', 'listen port').default(8888).argParser(portOption))
    .option('--origin <url...>', 'Web UI origins allowed by CORS; requests from any other origin are refused', [
      'http://127.0.0.1:8233',
      'http://localhost:8233',
    ])
    .option(
      '--allowed-host <name...>',
      "names clients reach it by besides the listen address (a reverse proxy's host); other Host headers are refused",
      [],
    )
    .option(
      '--token-file <file>',
      'file holding the token, created with a random one if missing (DIALFLOW_CODEC_TOKEN wins)',
      join(PROJECT_ROOT, '.data', CODEC_TOKEN_FILE),
    )
    .action(async (o: { host: string; port: number; origin: string[]; allowedHost: string[]; tokenFile: string }) => {
      const { token, source } = resolveCodecToken({ file: o.tokenFile });
      const server = await startCodecServer({
        codec: payloadCodec(ctx.config()),
        host: o.host,
        port: o.port,
        origins: o.origin,
        hosts: o.allowedHost,
        token,
      });
      process.stderr.write(
        `codec server on ${server.url}, token from ${source}\n  Web UI: --ui-codec-endpoint ${server.url}/token/<token>\n  CLI:    temporal workflow show --codec-endpoint ${server.url} --codec-auth "Bearer <token>"\n`,
      );
      await new Promise<never>(() => undefined);
    });
}
