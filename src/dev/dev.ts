// `dialflow dev`: the embedded stack on loopback (Temporal dev server, nats-server with JetStream,
// the codec server for the Web UI, the worker, the bridge, the provider's processes, and the HTTP
// API with the web console), and the demo campaign on top. The CLI only parses the options
// (cli/commands/dev.ts) and calls runDev.
import { join, resolve } from 'node:path';
import { Client } from '@temporalio/client';
import {
  configEnv,
  dataConverter,
  ensureDevPayloadKey,
  ensureSecretFile,
  loadConfig,
  payloadCodec,
} from '../config/index.js';
import type { ProviderKind } from '../config/index.js';
import { startCodecServer } from '../codec/server.js';
import { CODEC_TOKEN_FILE, codecToken } from '../codec/token.js';
import { connectTemporal } from '../client/connection.js';
import { formatSummary } from '../flow/summary.js';
import { connectNats, ensureStreams } from '../telephony/nats.js';
import type { NatsConnection } from '@nats-io/transport-node';
import { UserStore } from '../store/users.js';
import { AuditLog } from '../store/audit.js';
import { firstConsoleUser, type FirstConsoleUser } from './console-user.js';
import { DEV_NATS_AUTH_DIR } from '../telephony/nats-auth.js';
import { PROVIDER_ROLES } from '../workers/service.js';
import { Stack, assertPortFree } from './stack.js';
import { runDemo } from './demo.js';
import { startKamailio } from './kamailio.js';

export interface DevOptions {
  demo: boolean;
  exit: boolean;
  dataDir: string;
  temporalPort: number;
  temporalUiPort: number;
  natsPort: number;
  metricsPort: number;
  codecPort: number;
  apiPort: number;
  apiHost: string;
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
  env: Record<string, string | undefined>,
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
      const sip = loadConfig(env).sip;
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
      const user = env.DIALFLOW_WEBHOOK_USER ?? 'infobip';
      const password = env.DIALFLOW_WEBHOOK_PASSWORD ?? ensureSecretFile(join(dataDir, 'webhook.password'));
      return {
        env: {
          DIALFLOW_WEBHOOK_USER: user,
          DIALFLOW_WEBHOOK_PASSWORD: password,
          DIALFLOW_WEBHOOK_PORT: String(o.webhookPort),
          DIALFLOW_WEBHOOK_HOST: host,
        },
        banner: [
          `Infobip:      API ${env.DIALFLOW_INFOBIP_BASE_URL ?? '(DIALFLOW_INFOBIP_BASE_URL is not set)'}`,
          `Webhooks:     http://${host}:${o.webhookPort}/webhooks/infobip, HTTP Basic user "${user}", password in ${env.DIALFLOW_WEBHOOK_PASSWORD ? 'DIALFLOW_WEBHOOK_PASSWORD' : join(dataDir, 'webhook.password')}`,
          `              (subscribe it to VOICE_VIDEO events through a public HTTPS tunnel or reverse proxy)`,
        ],
      };
    }
  }
}

/** The console's first user (created on a stack without users), as a banner can tell about it. */
async function ensureConsoleUser(nc: NatsConnection, dataDir: string): Promise<FirstConsoleUser> {
  const [users, audit] = await Promise.all([UserStore.open(nc), AuditLog.open(nc)]);
  return firstConsoleUser(users, audit, dataDir);
}

/** The Web UI's list of a campaign's calls, in the namespace the calls run in. */
export function demoCallsUrl(uiUrl: string, namespace: string, campaignId: string): string {
  const query = encodeURIComponent(`WorkflowId STARTS_WITH "call:${campaignId}:"`);
  return `${uiUrl}/namespaces/${encodeURIComponent(namespace)}/workflows?query=${query}`;
}

/**
 * Run the stack until a signal (or, with `exit`, until the demo is done). `env` is the environment
 * with the CLI's flags laid over it. Returns the exit code: 1 if a demo call failed.
 */
export async function runDev(o: DevOptions, env: Record<string, string | undefined> = process.env): Promise<number> {
  const dataDir = resolve(o.dataDir);
  const host = '127.0.0.1';
  // This stack's Temporal is its own dev server: a developer's TEMPORAL_* and temporal.toml (say, a
  // Temporal Cloud namespace) are for other commands. Checked before anything starts.
  const ownEnv = { ...env, DIALFLOW_TEMPORAL_ENVCONFIG: 'off' };
  const { namespace } = loadConfig(ownEnv).temporal;
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
    const providerRoles = PROVIDER_ROLES[o.provider];
    const metricsPorts: Record<string, number> = { worker: o.metricsPort, bridge: o.metricsPort + 1 };
    providerRoles.forEach((role, i) => (metricsPorts[role] = o.metricsPort + 2 + i));
    for (const [role, port] of Object.entries(metricsPorts))
      await assertPortFree(host, port, `${role} /metrics`, '--metrics-port');
    await assertPortFree(host, o.codecPort, 'codec server', '--codec-port');
    await assertPortFree(o.apiHost, o.apiPort, 'API', '--api-port');
    // Without a configured key, dev generates one under the data dir (kept across restarts: history stays readable).
    const keyEnv =
      env.DIALFLOW_PAYLOAD_KEY || env.DIALFLOW_PAYLOAD_KEY_FILE
        ? {}
        : { DIALFLOW_PAYLOAD_KEY_FILE: ensureDevPayloadKey(join(dataDir, 'payload.key')) };
    // The Web UI decodes encrypted payloads through this codec server (loopback; the UI cannot send a
    // header, so its endpoint carries the token of the data dir as a path prefix).
    const uiUrl = `http://${host}:${o.temporalUiPort}`;
    const codecServer = await startCodecServer({
      codec: payloadCodec(loadConfig({ ...ownEnv, ...keyEnv })),
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
      namespace,
    });
    say(`starting nats-server with JetStream on ${host}:${o.natsPort} …`);
    // With authentication: an nkey per service under <data dir>/nats-auth (0600, created once); this
    // process sets up the streams as `admin`, each service connects as its own identity.
    const nats = await stack.startNats({ port: o.natsPort, storeDir: join(dataDir, 'nats') });
    const natsAuthDir = nats.auth?.dir ?? join(dataDir, 'nats-auth');
    const nc = await connectNats(nats.url, 'dialflow-dev');
    let consoleUser: FirstConsoleUser;
    try {
      await ensureStreams(nc);
      consoleUser = await ensureConsoleUser(nc, dataDir);
    } finally {
      await nc.close();
    }
    const provider = await providerSetup(o, env, stack, dataDir, host, say);
    const config = loadConfig({
      ...ownEnv,
      ...keyEnv,
      ...provider.env,
      DIALFLOW_PROVIDER: o.provider,
      DIALFLOW_TEMPORAL_ADDRESS: temporal.address,
      DIALFLOW_NATS_SERVERS: nats.url,
      DIALFLOW_METRICS_HOST: host,
    });
    // NATS credentials of the caller's shell are for some other server: the services get dev's own.
    const serviceEnv = configEnv({
      ...config,
      nats: { servers: config.nats.servers, replicas: config.nats.replicas },
    });
    const roles = ['worker', 'bridge', ...providerRoles];
    say(`starting ${roles.join(', ')} …`);
    const started = await Promise.all(
      roles.map(
        async (role) =>
          [
            role,
            await stack.startService(role, role, {
              ...serviceEnv,
              ...nats.env(role),
              DIALFLOW_METRICS_PORT: String(metricsPorts[role]),
            }),
          ] as const,
      ),
    );
    say(`starting the API and console on ${o.apiHost}:${o.apiPort} …`);
    await stack.startService('api', 'api', {
      ...serviceEnv,
      ...nats.env('api'),
      DIALFLOW_API_HOST: o.apiHost,
      DIALFLOW_API_PORT: String(o.apiPort),
    });
    // A wildcard listen address is not one to browse to.
    const browseHost = ['0.0.0.0', '::', '[::]'].includes(o.apiHost) ? host : o.apiHost;
    const consoleUrl = `http://${browseHost.includes(':') ? `[${browseHost}]` : browseHost}:${o.apiPort}/`;
    const linkLines = (withPassword: boolean) => [
      `Console:      ${consoleUrl}`,
      ...consoleUser.banner(withPassword).map((line) => `              ${line}`),
      `Temporal UI:  ${temporal.uiUrl ?? '(headless)'}${temporal.uiUrl && namespace !== 'default' ? ` (namespace ${namespace})` : ''}`,
      `Metrics:      ${started.map(([role, s]) => `${s.metricsUrl ?? '-'} (${role})`).join('  ')}`,
      `Codec server: ${codecServer.url} (temporal workflow show --codec-endpoint ${codecServer.url} --codec-auth "Bearer $(cat ${join(dataDir, CODEC_TOKEN_FILE)})")`,
      ...provider.banner,
      `NATS:         ${nats.url}, nkeys in ${natsAuthDir} (0600)${resolve(natsAuthDir) === resolve(DEV_NATS_AUTH_DIR) ? '' : `; for the CLI: export DIALFLOW_NATS_NKEY_SEED_FILE=${join(natsAuthDir, 'cli.nk')}`}`,
      `Logs:         ${stack.logDir}`,
    ];
    // The first admin's password is shown at the first start only; repeated after the demo, the
    // links say where it is kept instead.
    const links = linkLines(false).join('\n');
    say(`dialflow is up.\n${linkLines(true).join('\n')}`);

    let ok = true;
    if (o.demo) {
      const connection = await connectTemporal(config.temporal);
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
      if (temporal.uiUrl)
        process.stdout.write(
          `\n${links}\n  Demo calls:  ${demoCallsUrl(temporal.uiUrl, config.temporal.namespace, report.campaignId)}\n`,
        );
      else process.stdout.write(`\n${links}\n`);
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
