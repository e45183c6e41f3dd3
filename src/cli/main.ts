// The `dialflow` command.
import { Command, InvalidArgumentError, Option } from 'commander';
import { join, resolve } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { PROJECT_ROOT } from '../config/tools.js';
import {
  ConfigError,
  configEnv,
  dataConverter,
  ensureDevPayloadKey,
  ensureSecretFile,
  loadConfig,
  payloadCodec,
  PROVIDER_KINDS,
  type ProviderKind,
} from '../config/index.js';
import { startCodecServer } from '../codec/server.js';
import { CODEC_TOKEN_FILE, codecToken, resolveCodecToken } from '../codec/token.js';
import { Stack, StackError, assertPortFree } from '../dev/stack.js';
import { runDemo } from '../dev/demo.js';
import { formatSummary } from '../flow/summary.js';
import { FlowValidationError } from '../flow/validate.js';
import { connectNats, ensureStreams } from '../telephony/nats.js';
import { DEV_NATS_AUTH_DIR } from '../telephony/nats-auth.js';
import { PROVIDER_ROLES, runService } from '../workers/service.js';
import { startKamailio } from '../dev/kamailio.js';
import { graphCommand, loadAndValidate, providerFor, validateCommand } from './validate.js';
import { placeCall, type CallOptions } from './call.js';
import { PROVIDERS } from '../telephony/capabilities.js';
import { CliError } from './errors.js';
import { conn, withNats } from './connections.js';
import { formatTranscript, simulate } from './simulate.js';
import { campaignCommands, contactCapOption } from './campaign.js';
import { FlowVersionConflictError, KvFlowStore } from '../store/flows.js';
import { ObjectRecordingStore } from '../store/recordings.js';
import { uploadFlowAudio } from '../store/assets.js';
import { writeFileSync } from 'node:fs';

function positiveSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('a number of seconds above 0');
  return n;
}

function portOption(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new InvalidArgumentError('a port is a whole number from 1 to 65535');
  return n;
}

interface DevOptions {
  demo: boolean;
  exit: boolean;
  dataDir: string;
  temporalPort: number;
  temporalUiPort: number;
  natsPort: number;
  metricsPort: number;
  codecPort: number;
  flow: string;
  recipients: string;
  provider: ProviderKind;
  sipTrunk?: string;
  sipPort: number;
  webhookPort: number;
}

/** The provider's own settings for `dialflow dev`: a local registrar for SIP, webhook credentials for Infobip. */
async function providerSetup(
  o: DevOptions,
  stack: Stack,
  dataDir: string,
  host: string,
  say: (m: string) => void,
): Promise<{ env: Record<string, string>; banner: string[] }> {
  switch (o.provider) {
    case 'simulator':
      return { env: {}, banner: [] };
    case 'sip': {
      if (o.sipTrunk)
        return {
          env: { DIALFLOW_SIP_TRUNK: o.sipTrunk },
          banner: [
            `SIP:          calls go out through the trunk ${o.sipTrunk}`,
            `              dialflow call examples/appointment-reminder.json --to +14155550123`,
          ],
        };
      await assertPortFree(host, o.sipPort, 'kamailio (SIP registrar)', '--sip-port');
      say(`starting a local SIP registrar (kamailio) on udp:${host}:${o.sipPort} …`);
      const sip = loadConfig(process.env).sip;
      const registrar = await startKamailio({
        dir: join(dataDir, 'kamailio'),
        host,
        port: o.sipPort,
        inboundUser: sip.inboundUser,
        inboundNumbers: sip.inboundNumbers,
      });
      stack.onStop(() => registrar.stop());
      return {
        env: { DIALFLOW_SIP_TRUNK: registrar.uri },
        banner: [
          `SIP:          registrar ${registrar.uri} (loopback, no passwords): register a softphone as sip:1001@${host}:${o.sipPort}, then`,
          `              dialflow call examples/appointment-reminder.json --to sip:1001@${host}:${o.sipPort}`,
          ...(sip.inboundNumbers.length > 0
            ? [
                `              inbound: call ${sip.inboundNumbers.map((n) => `sip:${n}@${host}:${o.sipPort}`).join(', ')} from the softphone`,
              ]
            : []),
        ],
      };
    }
    case 'infobip': {
      const user = process.env.DIALFLOW_WEBHOOK_USER ?? 'infobip';
      const password = process.env.DIALFLOW_WEBHOOK_PASSWORD ?? ensureSecretFile(join(dataDir, 'webhook.password'));
      return {
        env: {
          DIALFLOW_WEBHOOK_USER: user,
          DIALFLOW_WEBHOOK_PASSWORD: password,
          DIALFLOW_WEBHOOK_PORT: String(o.webhookPort),
          DIALFLOW_WEBHOOK_HOST: host,
        },
        banner: [
          `Infobip:      API ${process.env.DIALFLOW_INFOBIP_BASE_URL ?? '(DIALFLOW_INFOBIP_BASE_URL is not set)'}`,
          `Webhooks:     http://${host}:${o.webhookPort}/webhooks/infobip, HTTP Basic user "${user}", password in ${process.env.DIALFLOW_WEBHOOK_PASSWORD ? 'DIALFLOW_WEBHOOK_PASSWORD' : join(dataDir, 'webhook.password')}`,
          `              (subscribe it to VOICE_VIDEO events through a public HTTPS tunnel or reverse proxy)`,
        ],
      };
    }
  }
}

async function dev(o: DevOptions): Promise<number> {
  const dataDir = resolve(o.dataDir);
  const host = '127.0.0.1';
  const stack = new Stack(dataDir, host);
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\n${sig}: stopping every process dialflow started …\n`);
    void stack.stop().then(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  const say = (m: string) => process.stderr.write(`${m}\n`);
  try {
    if (o.demo && o.provider !== 'simulator')
      throw new CliError(
        'the demo calls simulated personas: run it with the simulator (drop --provider), or place real calls with `dialflow call`',
        2,
      );
    const providerRoles = PROVIDER_ROLES[o.provider];
    const metricsPorts: Record<string, number> = { worker: o.metricsPort, bridge: o.metricsPort + 1 };
    providerRoles.forEach((role, i) => (metricsPorts[role] = o.metricsPort + 2 + i));
    for (const [role, port] of Object.entries(metricsPorts))
      await assertPortFree(host, port, `${role} /metrics`, '--metrics-port');
    await assertPortFree(host, o.codecPort, 'codec server', '--codec-port');
    // Without a configured key, dev generates one under the data dir (kept across restarts: history stays readable).
    const keyEnv =
      process.env.DIALFLOW_PAYLOAD_KEY || process.env.DIALFLOW_PAYLOAD_KEY_FILE
        ? {}
        : { DIALFLOW_PAYLOAD_KEY_FILE: ensureDevPayloadKey(join(dataDir, 'payload.key')) };
    // The Web UI decodes encrypted payloads through this codec server (loopback; the UI cannot send a
    // header, so its endpoint carries the token of the data dir as a path prefix).
    const uiUrl = `http://${host}:${o.temporalUiPort}`;
    const codecServer = await startCodecServer({
      codec: payloadCodec(loadConfig({ ...process.env, ...keyEnv })),
      host,
      port: o.codecPort,
      origins: [uiUrl, `http://localhost:${o.temporalUiPort}`],
      token: codecToken(dataDir),
    });
    stack.onStop(() => codecServer.close());
    say(`starting Temporal dev server on ${host}:${o.temporalPort} (SQLite ${join(dataDir, 'temporal.db')}) …`);
    const temporal = await stack.startTemporal({
      port: o.temporalPort,
      uiPort: o.temporalUiPort,
      ui: true,
      uiCodecEndpoint: codecServer.uiEndpoint,
      dbFile: join(dataDir, 'temporal.db'),
    });
    say(`starting nats-server with JetStream on ${host}:${o.natsPort} …`);
    // With authentication: an nkey per service under <data dir>/nats-auth (0600, created once); this
    // process sets up the streams as `admin`, each service connects as its own identity.
    const nats = await stack.startNats({ port: o.natsPort, storeDir: join(dataDir, 'nats') });
    const natsAuthDir = nats.auth?.dir ?? join(dataDir, 'nats-auth');
    const nc = await connectNats(nats.url, 'dialflow-dev');
    await ensureStreams(nc);
    await nc.close();
    const provider = await providerSetup(o, stack, dataDir, host, say);
    const config = loadConfig({
      ...process.env,
      ...keyEnv,
      ...provider.env,
      DIALFLOW_PROVIDER: o.provider,
      DIALFLOW_TEMPORAL_ADDRESS: temporal.address,
      DIALFLOW_NATS_SERVERS: nats.url,
      DIALFLOW_METRICS_HOST: host,
    });
    // NATS credentials of the caller's shell are for some other server: the services get dev's own.
    const env = configEnv({ ...config, nats: { servers: config.nats.servers, replicas: config.nats.replicas } });
    const roles = ['worker', 'bridge', ...providerRoles];
    say(`starting ${roles.join(', ')} …`);
    const started = await Promise.all(
      roles.map(
        async (role) =>
          [
            role,
            await stack.startService(role, role, {
              ...env,
              ...nats.env(role),
              DIALFLOW_METRICS_PORT: String(metricsPorts[role]),
            }),
          ] as const,
      ),
    );
    const links = [
      `Temporal UI:  ${temporal.uiUrl ?? '(headless)'}`,
      `Metrics:      ${started.map(([role, s]) => `${s.metricsUrl ?? '-'} (${role})`).join('  ')}`,
      `Codec server: ${codecServer.url} (temporal workflow show --codec-endpoint ${codecServer.url} --codec-auth "Bearer $(cat ${join(dataDir, CODEC_TOKEN_FILE)})")`,
      ...provider.banner,
      `NATS:         ${nats.url}, nkeys in ${natsAuthDir} (0600)${resolve(natsAuthDir) === resolve(DEV_NATS_AUTH_DIR) ? '' : `; for the CLI: export DIALFLOW_NATS_NKEY_SEED_FILE=${join(natsAuthDir, 'cli.nk')}`}`,
      `Logs:         ${stack.logDir}`,
    ].join('\n');
    say(`dialflow is up.\n${links}`);

    let ok = true;
    if (o.demo) {
      const connection = await Connection.connect({ address: temporal.address });
      const client = new Client({
        connection,
        namespace: config.temporal.namespace,
        dataConverter: dataConverter(config),
      });
      say(`\nDemo: calling the recipients of ${o.recipients} with ${o.flow} …`);
      const report = await runDemo({
        client,
        taskQueue: config.temporal.taskQueue,
        flowFile: o.flow,
        recipientsFile: o.recipients,
        progress: process.stderr,
      });
      await connection.close();
      ok = report.failed.length === 0 && report.summary.calls > 0;
      process.stdout.write(
        `\nDemo campaign ${report.campaignId}: ${report.summary.calls} calls completed in ${report.seconds.toFixed(1)} s\n${formatSummary(report.summary)}\n`,
      );
      for (const f of report.failed) process.stdout.write(`  FAILED ${f.recipientId}: ${f.error}\n`);
      process.stdout.write(
        `\n${links}\n  Demo calls:  ${temporal.uiUrl ?? ''}/namespaces/default/workflows?query=${encodeURIComponent(`WorkflowId STARTS_WITH "call:${report.campaignId}:"`)}\n`,
      );
    }
    if (o.exit) {
      await stack.stop();
      return ok ? 0 : 1;
    }
    say('\nPress Ctrl-C to stop.');
    await new Promise<never>(() => undefined);
    return 0;
  } catch (err) {
    await stack.stop();
    throw err;
  }
}

export function buildProgram(): Command {
  const program = new Command('dialflow')
    .description('IVR flow engine and outbound campaign dialer on Temporal and NATS')
    .showHelpAfterError();
  program
    .command('dev')
    .description('run the embedded stack: Temporal dev server, nats-server, workers and the telephony simulator')
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
      process.exitCode = await dev(opts);
    });
  for (const [role, what] of [
    ['worker', 'run the flow worker (call workflows and activities)'],
    ['bridge', 'run the event bridge (JetStream telephony events → workflow signals)'],
    ['simulator', 'run the telephony simulator (scripted personas on NATS)'],
    ['sip-agents', 'run the SIP provider: a pool of SIP user agents (DIALFLOW_SIP_CHANNELS) behind DIALFLOW_SIP_TRUNK'],
    [
      'infobip',
      'run the Infobip provider: telephony commands → Infobip Calls API (DIALFLOW_INFOBIP_BASE_URL, DIALFLOW_INFOBIP_API_KEY)',
    ],
    [
      'webhooks',
      'run the webhook ingress: POST /webhooks/infobip with HTTP Basic auth → telephony events on JetStream',
    ],
  ] as const) {
    program
      .command(role)
      .description(`${what}; configured by DIALFLOW_* environment variables`)
      .action(async () => {
        await runService(role);
      });
  }
  program
    .command('validate')
    .description('validate a flow document')
    .argument('<file>', 'flow document (JSON or YAML)')
    .option('--json', 'print the result as JSON', false)
    .addOption(
      new Option(
        '--provider <name>',
        'warn about what this provider lacks (default DIALFLOW_PROVIDER, else simulator)',
      ).choices(PROVIDERS),
    )
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
  conn(
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
  ).action(async (file: string, opts: Omit<CallOptions, 'timeoutSeconds'> & { timeout: number }) => {
    const report = await placeCall(file, { ...opts, timeoutSeconds: opts.timeout });
    process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatTranscript(report));
    if (report.outcome === 'failed') process.exitCode = 1;
  });
  const flows = program.command('flows').description('publish and inspect flow versions (stored in NATS KV)');
  const natsOption = () =>
    new Option('--nats <url>', 'NATS server').default(process.env.DIALFLOW_NATS_SERVERS ?? 'nats://127.0.0.1:4222');
  const withStore = <T>(url: string, f: (store: KvFlowStore) => Promise<T>): Promise<T> =>
    withNats(url, async (nc) => f(await KvFlowStore.open(nc)));
  flows
    .command('publish')
    .description('validate and publish a flow version; a published version never changes')
    .argument('<file>', 'flow document (JSON or YAML)')
    .addOption(natsOption())
    .addOption(
      new Option(
        '--provider <name>',
        'warn about what this provider lacks (default DIALFLOW_PROVIDER, else simulator)',
      ).choices(PROVIDERS),
    )
    .action(async (file: string, opts: { nats: string; provider?: string }) => {
      const provider = providerFor(opts.provider);
      const loaded = loadAndValidate(file, provider);
      if (loaded.code !== 0 || !('result' in loaded) || !loaded.result.flow) {
        process.exitCode = validateCommand(file, { json: false, provider });
        return;
      }
      for (const w of loaded.result.issues)
        process.stderr.write(`warning: ${w.code} ${w.elementId ? `[${w.elementId}] ` : ''}${w.path}: ${w.message}\n`);
      const flow = loaded.result.flow;
      const r = await withNats(opts.nats, async (nc) => {
        // The audio files it plays go first, so no call of the new version misses one.
        const uploaded = await uploadFlowAudio(nc, flow, file);
        if (uploaded.length > 0) process.stderr.write(`uploaded ${uploaded.join(', ')}\n`);
        return (await KvFlowStore.open(nc)).publish(flow);
      });
      process.stdout.write(`${r.id} v${r.version}: ${r.created ? 'published' : 'already published (unchanged)'}\n`);
    });
  flows
    .command('list')
    .description('list published flows and their latest version')
    .addOption(natsOption())
    .action(async (opts: { nats: string }) => {
      const all = await withStore(opts.nats, (store) => store.list());
      for (const f of all) process.stdout.write(`${f.id}\tv${f.latest}\n`);
    });
  flows
    .command('show')
    .description('print a published flow (the latest version unless --version)')
    .argument('<id>')
    .option('--version <n>', 'version number')
    .addOption(natsOption())
    .action(async (id: string, opts: { nats: string; version?: string }) => {
      const flow = await withStore(opts.nats, (store) =>
        store.get(id, opts.version ? Number(opts.version) : undefined),
      );
      if (!flow)
        throw new CliError(`flow "${id}"${opts.version ? ` version ${opts.version}` : ''} is not published`, 1);
      process.stdout.write(`${JSON.stringify(flow, null, 2)}\n`);
    });

  campaignCommands(program);

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
        codec: payloadCodec(loadConfig()),
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

  const recordings = program
    .command('recordings')
    .description('list and fetch call and voicemail recordings (stored in a NATS object store)');
  recordings
    .command('list')
    .description('list recordings, oldest first')
    .option('--call <callId>', 'only this call id')
    .option('--workflow <workflowId>', 'only calls of this workflow, e.g. call:{campaignId}:{recipientId}')
    .option('--json', 'print JSON', false)
    .addOption(natsOption())
    .action(async (opts: { call?: string; workflow?: string; json: boolean; nats: string }) => {
      const all = await withNats(opts.nats, async (nc) =>
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
  recordings
    .command('get')
    .description('fetch one recording into a file (or stdout with -o -)')
    .argument('<id>', 'recording id, as listed')
    .option('-o, --output <file>', 'where to write it; default: the id with unsafe characters replaced, plus .wav')
    .addOption(natsOption())
    .action(async (id: string, opts: { output?: string; nats: string }) => {
      const rec = await withNats(opts.nats, async (nc) => (await ObjectRecordingStore.open(nc)).get(id));
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
  return program;
}

function describe(err: unknown): { message: string; code: number } {
  if (err instanceof StackError) return { message: err.oneLine(), code: 1 };
  if (err instanceof ConfigError) return { message: err.message, code: 2 };
  if (err instanceof CliError) return { message: err.message, code: err.exitCode };
  if (err instanceof FlowValidationError || err instanceof FlowVersionConflictError)
    return { message: err.message, code: 1 };
  return { message: err instanceof Error ? err.message : String(err), code: 1 };
}

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    const { message, code } = describe(err);
    const cmd = process.argv[2] ?? 'dialflow';
    process.stderr.write(`dialflow ${cmd}: ${message}\n`);
    if (process.env.DIALFLOW_DEBUG) console.error(err);
    process.exit(code);
  });
