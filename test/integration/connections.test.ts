// Connection settings against real servers. Temporal: the local dev server has no TLS, so what is
// checked is that the namespace of a profile (and a flag over it) is the one the CLI talks to, that
// an API key and gRPC headers reach the wire, that an API key turns TLS on unless told otherwise,
// and that a certificate file that is not there is named (exit 1, no stack trace). NATS: a server
// with token authentication and TLS, reached through the CLI's flags and variables; a creds file
// that is not there is named.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { makeLoopbackCertificate, opensslAvailable } from '../helpers/test-ca.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { InterceptingCall, type Interceptor } from '@grpc/grpc-js';
import { connect } from '@nats-io/transport-node';
import { Stack, freePort } from '../../src/dev/stack.js';
import { toolPaths } from '../../src/config/tools.js';
import { connectTemporal } from '../../src/client/connection.js';
import { loadConfig } from '../../src/config/index.js';
import { runCli } from '../helpers/dev-process.js';

const NAMESPACE = 'it-connections';
const payloadKey = Buffer.alloc(32, 9).toString('base64');
const noTrace = (stderr: string) => expect(stderr).not.toMatch(/\n\s+at /);

/** The CLI with only the given settings (not this machine's Temporal profile or NATS variables). */
function cli(dir: string, env: Record<string, string>, args: string[], timeoutMs = 60_000) {
  return runCli(args, { HOME: dir, DIALFLOW_PAYLOAD_KEY: payloadKey, ...env }, timeoutMs);
}

describe('Temporal connection settings against the dev server', () => {
  let dir: string;
  let stack: Stack;
  let address: string;
  let profileFile: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dialflow-connections-'));
    stack = new Stack(dir);
    // The dev server registers this namespace next to `default`.
    ({ address } = await stack.startTemporal({ port: await freePort(), namespace: NAMESPACE }));
    profileFile = join(dir, 'temporal.toml');
    writeFileSync(
      profileFile,
      `[profile.it]\naddress = "${address}"\nnamespace = "${NAMESPACE}"\n\n[profile.elsewhere]\naddress = "127.0.0.1:1"\n`,
    );
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the API key and the profile’s headers reach the server with every call', async () => {
    const seen: Array<{ authorization: unknown; team: unknown }> = [];
    const capture: Interceptor = (options, nextCall) =>
      new InterceptingCall(nextCall(options), {
        start(metadata, listener, next) {
          seen.push({ authorization: metadata.get('authorization')[0], team: metadata.get('x-team')[0] });
          next(metadata, listener);
        },
      });
    // Plain gRPC only because the dev server has no TLS; the settings come from the environment as a user's would.
    const { temporal } = loadConfig({
      TEMPORAL_ADDRESS: address,
      TEMPORAL_NAMESPACE: NAMESPACE,
      TEMPORAL_API_KEY: 'it-secret',
      TEMPORAL_TLS: 'false',
      TEMPORAL_GRPC_META_X_TEAM: 'ivr',
    });
    const connection = await connectTemporal(temporal, { interceptors: [capture] });
    try {
      const ns = await connection.workflowService.describeNamespace({ namespace: temporal.namespace });
      expect(ns.namespaceInfo?.name).toBe(NAMESPACE);
    } finally {
      await connection.close();
    }
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.at(-1)).toEqual({ authorization: 'Bearer it-secret', team: 'ivr' });
  });

  it('the CLI talks to the namespace of the profile, and a flag goes over it', async () => {
    const env = { TEMPORAL_CONFIG_FILE: profileFile, TEMPORAL_PROFILE: 'it' };
    const inProfile = await cli(dir, env, ['campaign', 'status', 'nope']);
    // The namespace exists and holds no such campaign: Temporal answered in that namespace.
    expect(inProfile.status, inProfile.stderr).toBe(1);
    expect(inProfile.stderr).toMatch(/^dialflow campaign status: no campaign "nope"\n$/);
    const flagged = await cli(dir, env, ['campaign', 'status', 'nope', '--namespace', 'not-registered']);
    expect(flagged.status).toBe(1);
    expect(flagged.stderr).toMatch(/\(namespace not-registered\) .*not-registered/);
    noTrace(flagged.stderr);
    // --temporal-profile selects another profile of the same file over TEMPORAL_PROFILE, --temporal goes over its address.
    const other = await cli(dir, env, [
      'campaign',
      'status',
      'nope',
      '--temporal-profile',
      'elsewhere',
      '--temporal',
      address,
    ]);
    expect(other.status).toBe(1);
    expect(other.stderr).toMatch(/no campaign "nope"/);
  }, 90_000);

  it('an API key turns TLS on: against a server without TLS that fails, saying so; TEMPORAL_TLS=false allows it', async () => {
    const env = { TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: NAMESPACE, TEMPORAL_API_KEY: 'it-secret' };
    const tls = await cli(dir, env, ['campaign', 'status', 'nope']);
    expect(tls.status).toBe(1);
    expect(tls.stderr).toMatch(/cannot reach Temporal at .*TLS is on \(implied by the API key\)/);
    noTrace(tls.stderr);
    const plain = await cli(dir, { ...env, TEMPORAL_TLS: 'false' }, ['campaign', 'status', 'nope']);
    expect(plain.stderr).toMatch(/no campaign "nope"/);
  }, 90_000);

  it('a TLS certificate that is not there: exit 1, one line naming the file, nothing dialled', async () => {
    const missing = join(dir, 'no-such-client.pem');
    const r = await cli(dir, { TEMPORAL_ADDRESS: address }, [
      'campaign',
      'status',
      'nope',
      '--temporal-tls-cert',
      missing,
      '--temporal-tls-key',
      missing,
    ]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      `dialflow campaign status: cannot read the Temporal TLS client certificate ${missing} (--temporal-tls-cert, TEMPORAL_TLS_CLIENT_CERT_PATH or client_cert_path of the profile): ENOENT (no such file)\n`,
    );
  }, 60_000);
});

describe.runIf(opensslAvailable)('NATS with a token and TLS, through the CLI', () => {
  const TOKEN = 'it-token-0123456789';
  let dir: string;
  let server: ChildProcess | undefined;
  let url: string;
  let caFile: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dialflow-nats-token-'));
    const cert = makeLoopbackCertificate(dir, 'it-ca');
    caFile = cert.caFile;
    const bin = toolPaths().natsServer;
    if (!bin) throw new Error('nats-server is not installed (npm run setup)');
    const port = await freePort();
    url = `nats://127.0.0.1:${port}`;
    server = spawn(
      bin,
      [
        '-a',
        '127.0.0.1',
        '-p',
        String(port),
        '-js',
        '-sd',
        join(dir, 'store'),
        '--auth',
        TOKEN,
        '--tls',
        '--tlscert',
        cert.certFile,
        '--tlskey',
        cert.keyFile,
      ],
      { stdio: 'ignore' },
    );
    // Ready when it answers over TLS with the token.
    for (let i = 0; ; i++) {
      try {
        const nc = await connect({ servers: url, token: TOKEN, tls: { caFile }, reconnect: false, timeout: 1000 });
        await nc.close();
        break;
      } catch (err) {
        if (i > 100) throw err;
        await delay(100);
      }
    }
  }, 60_000);
  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server?.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('DIALFLOW_NATS_TOKEN with --nats-tls-ca reaches the server; the streams and the do-not-call list work', async () => {
    const env = { DIALFLOW_NATS_TOKEN: TOKEN };
    const add = await cli(dir, env, ['dnc', 'add', '+14155550100', '--nats', url, '--nats-tls-ca', caFile]);
    expect(add.status, add.stderr).toBe(0);
    const check = await cli(dir, { ...env, DIALFLOW_NATS_SERVERS: url, DIALFLOW_NATS_TLS_CA: caFile }, [
      'dnc',
      'check',
      '+14155550100',
    ]);
    expect(check.status, check.stderr).toBe(0);
    expect(check.stdout).toBe('+14155550100: blocked\n');
  }, 60_000);

  it('a wrong token is refused (exit 1, naming what to set); a server certificate from an unknown CA too', async () => {
    const wrong = await cli(dir, { DIALFLOW_NATS_TOKEN: 'wrong' }, [
      'flows',
      'list',
      '--nats',
      url,
      '--nats-tls-ca',
      caFile,
    ]);
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toMatch(
      /^dialflow flows list: NATS at .* refused this client's credentials .*DIALFLOW_NATS_TOKEN/,
    );
    noTrace(wrong.stderr);
    const untrusted = await cli(dir, { DIALFLOW_NATS_TOKEN: TOKEN }, ['flows', 'list', '--nats', url]);
    expect(untrusted.status).toBe(1);
    expect(untrusted.stderr).toMatch(
      /^dialflow flows list: TLS with NATS at .* failed: .*certificate.* \([A-Z_]+\): is the server's certificate signed by the CA of --nats-tls-ca/,
    );
    noTrace(untrusted.stderr);
  }, 60_000);

  it('a creds file that is not there: exit 1, one line naming the file, before anything is dialled', async () => {
    const missing = join(dir, 'no-such.creds');
    const flag = await cli(dir, {}, ['dnc', 'check', '+14155550100', '--nats', url, '--nats-creds', missing]);
    expect(flag.status).toBe(1);
    expect(flag.stderr).toBe(
      `dialflow dnc check: cannot read the NATS creds file ${missing} (DIALFLOW_NATS_CREDS or --nats-creds): ENOENT (no such file)\n`,
    );
    const variable = await cli(dir, { DIALFLOW_NATS_CREDS: missing, DIALFLOW_NATS_SERVERS: url }, [
      'recordings',
      'list',
    ]);
    expect(variable.status).toBe(1);
    expect(variable.stderr).toContain(`cannot read the NATS creds file ${missing}`);
  }, 60_000);
});
