// Where the Temporal and NATS connection settings come from, and what reaches the connections:
// flags > DIALFLOW_* > TEMPORAL_* > the Temporal profile file > defaults; TLS, API key and NATS
// credentials in the options every connection is opened with; unreadable files named.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, ConfigFileError, configEnv, loadConfig } from '../../src/config/index.js';
import { temporalConnectOptions } from '../../src/client/connection.js';
import { natsConnectionOptions } from '../../src/telephony/nats.js';
import { CliContext, connectionEnv, flagsNotForDev } from '../../src/cli/connections.js';
import { Command } from 'commander';

const dir = mkdtempSync(join(tmpdir(), 'dialflow-connection-config-'));
const file = (name: string, content: string) => {
  const f = join(dir, name);
  writeFileSync(f, content);
  return f;
};
const CERT = '-----BEGIN CERTIFICATE-----\nY2VydA==\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN PRIVATE KEY-----\na2V5\n-----END PRIVATE KEY-----\n';
const CA = '-----BEGIN CERTIFICATE-----\nY2E=\n-----END CERTIFICATE-----\n';
const certFile = file('client.pem', CERT);
const keyFile = file('client.key', KEY);
const caFile = file('ca.pem', CA);

const cloudProfile = file(
  'temporal.toml',
  [
    '[profile.default]',
    'address = "127.0.0.1:7233"',
    '',
    '[profile.cloud]',
    'address = "my-ns.a1b2c.tmprl.cloud:7233"',
    'namespace = "my-ns.a1b2c"',
    '[profile.cloud.tls]',
    `client_cert_path = "${certFile}"`,
    `client_key_path = "${keyFile}"`,
    `server_ca_cert_path = "${caFile}"`,
    'server_name = "my-ns.a1b2c.tmprl.cloud"',
    '[profile.cloud.grpc_meta]',
    'x-team = "ivr"',
    '',
    '[profile.apikey]',
    'address = "eu-west-1.aws.api.temporal.io:7233"',
    'namespace = "other-ns.a1b2c"',
    'api_key = "profile-key"',
  ].join('\n'),
);

describe('Temporal settings', () => {
  it('default to the local dev server, in plain gRPC', () => {
    const t = loadConfig({}).temporal;
    expect(t).toMatchObject({ address: '127.0.0.1:7233', namespace: 'default', useEnvConfig: true });
    expect(t.tls).toBeUndefined();
    expect(temporalConnectOptions(t)).toEqual({ address: '127.0.0.1:7233' });
  });

  it('a profile gives mTLS, server name and headers, its files read into the connection options', () => {
    const t = loadConfig({ TEMPORAL_CONFIG_FILE: cloudProfile, TEMPORAL_PROFILE: 'cloud' }).temporal;
    expect(t).toMatchObject({
      address: 'my-ns.a1b2c.tmprl.cloud:7233',
      namespace: 'my-ns.a1b2c',
      tls: {
        clientCert: { file: certFile },
        clientKey: { file: keyFile },
        serverCa: { file: caFile },
        serverName: 'my-ns.a1b2c.tmprl.cloud',
      },
      metadata: { 'x-team': 'ivr' },
    });
    const options = temporalConnectOptions(t);
    expect(options.tls).toEqual({
      serverNameOverride: 'my-ns.a1b2c.tmprl.cloud',
      serverRootCACertificate: Buffer.from(CA),
      clientCertPair: { crt: Buffer.from(CERT), key: Buffer.from(KEY) },
    });
    expect(options.metadata).toEqual({ 'x-team': 'ivr' });
    expect(options.apiKey).toBeUndefined();
  });

  it('an API key turns TLS on (system CAs) unless TLS is turned off explicitly', () => {
    const env = { TEMPORAL_CONFIG_FILE: cloudProfile, TEMPORAL_PROFILE: 'apikey' };
    const t = loadConfig(env).temporal;
    expect(t).toMatchObject({ namespace: 'other-ns.a1b2c', apiKey: 'profile-key' });
    expect(temporalConnectOptions(t)).toEqual({
      address: 'eu-west-1.aws.api.temporal.io:7233',
      tls: true,
      apiKey: 'profile-key',
    });
    const plain = loadConfig({ ...env, TEMPORAL_TLS: 'false' }).temporal;
    expect(temporalConnectOptions(plain)).toMatchObject({ tls: false, apiKey: 'profile-key' });
  });

  it('layers: DIALFLOW_TEMPORAL_* over TEMPORAL_* over the profile over the defaults', () => {
    const profile = { TEMPORAL_CONFIG_FILE: cloudProfile, TEMPORAL_PROFILE: 'apikey' };
    expect(loadConfig(profile).temporal.address).toBe('eu-west-1.aws.api.temporal.io:7233');
    const env = { ...profile, TEMPORAL_ADDRESS: 'env:7233', TEMPORAL_NAMESPACE: 'env-ns', TEMPORAL_API_KEY: 'env-key' };
    expect(loadConfig(env).temporal).toMatchObject({ address: 'env:7233', namespace: 'env-ns', apiKey: 'env-key' });
    const own = { ...env, DIALFLOW_TEMPORAL_ADDRESS: 'own:7233', DIALFLOW_TEMPORAL_NAMESPACE: 'own-ns' };
    expect(loadConfig(own).temporal).toMatchObject({ address: 'own:7233', namespace: 'own-ns', apiKey: 'env-key' });
  });

  it('flags go over everything, and a flag naming a file replaces the inline PEM of the environment', () => {
    const ctx = new CliContext({
      DIALFLOW_TEMPORAL_ADDRESS: 'own:7233',
      TEMPORAL_NAMESPACE: 'env-ns',
      TEMPORAL_TLS_CLIENT_CERT_DATA: 'inline',
      TEMPORAL_TLS_CLIENT_KEY_PATH: keyFile,
    });
    ctx.prepare(
      { temporal: 'flag:7233', namespace: 'flag-ns', temporalTlsCert: certFile, temporalTlsServerName: 'flag.example' },
      new Command('x'),
    );
    expect(ctx.config().temporal).toMatchObject({
      address: 'flag:7233',
      namespace: 'flag-ns',
      tls: { clientCert: { file: certFile }, clientKey: { file: keyFile }, serverName: 'flag.example' },
    });
    // The profile the flags select, over the environment's.
    const profiled = new CliContext({ TEMPORAL_PROFILE: 'nope', TEMPORAL_CONFIG_FILE: '/nope.toml' });
    profiled.prepare({ temporalProfile: 'apikey', temporalConfigFile: cloudProfile }, new Command('x'));
    expect(profiled.config().temporal.apiKey).toBe('profile-key');
    // --no-temporal-tls is TEMPORAL_TLS=false.
    expect(connectionEnv({ temporalTls: false })).toEqual({ TEMPORAL_TLS: 'false' });
  });

  it('dev and the test stacks read neither TEMPORAL_* nor the profile (DIALFLOW_TEMPORAL_ENVCONFIG=off)', () => {
    const t = loadConfig({
      DIALFLOW_TEMPORAL_ENVCONFIG: 'off',
      TEMPORAL_CONFIG_FILE: cloudProfile,
      TEMPORAL_PROFILE: 'cloud',
      TEMPORAL_API_KEY: 'secret',
    }).temporal;
    expect(t).toEqual({
      address: '127.0.0.1:7233',
      namespace: 'default',
      taskQueue: 'dialflow-calls',
      useEnvConfig: false,
    });
  });

  it('a child process gets the same settings', () => {
    for (const env of [
      { TEMPORAL_CONFIG_FILE: cloudProfile, TEMPORAL_PROFILE: 'cloud' },
      { TEMPORAL_API_KEY: 'k', TEMPORAL_TLS: 'false', DIALFLOW_NATS_TOKEN: 't' },
      { TEMPORAL_TLS_SERVER_CA_CERT_DATA: CA, TEMPORAL_TLS_SERVER_NAME: 'x.example' },
      { DIALFLOW_TEMPORAL_ENVCONFIG: 'off', DIALFLOW_TEMPORAL_NAMESPACE: 'dev-ns' },
    ]) {
      const c = loadConfig(env);
      // gRPC headers travel in the inherited environment, not in configEnv (see temporalEnv).
      const { metadata: _metadata, ...temporal } = c.temporal;
      expect(loadConfig(configEnv(c))).toEqual({ ...c, temporal });
    }
  });

  it('refuses a certificate without its key, a profile that is not there, and a bad address, by name', () => {
    expect(() => loadConfig({ TEMPORAL_TLS_CLIENT_CERT_PATH: certFile })).toThrow(
      /client certificate and key go together/,
    );
    expect(() => loadConfig({ TEMPORAL_CONFIG_FILE: cloudProfile, TEMPORAL_PROFILE: 'nope' })).toThrow(
      /Profile 'nope' not found/,
    );
    expect(() => loadConfig({ TEMPORAL_CONFIG_FILE: join(dir, 'missing.toml') })).toThrow(ConfigFileError);
    expect(() => loadConfig({ DIALFLOW_TEMPORAL_ADDRESS: 'http://x:7233' })).toThrow(/DIALFLOW_TEMPORAL_ADDRESS/);
    const broken = file('broken.toml', '[profile.default]\naddress = \n');
    expect(() => loadConfig({ TEMPORAL_CONFIG_FILE: broken })).toThrow(
      new RegExp(`invalid Temporal client configuration \\(${broken}\\): .* at line 2`),
    );
  });

  it('a certificate file that cannot be read is named when the connection is opened', () => {
    const t = loadConfig({
      TEMPORAL_TLS_CLIENT_CERT_PATH: join(dir, 'missing.pem'),
      TEMPORAL_TLS_CLIENT_KEY_PATH: keyFile,
    }).temporal;
    expect(() => temporalConnectOptions(t)).toThrow(ConfigFileError);
    expect(() => temporalConnectOptions(t)).toThrow(
      `cannot read the Temporal TLS client certificate ${join(dir, 'missing.pem')} (--temporal-tls-cert, TEMPORAL_TLS_CLIENT_CERT_PATH or client_cert_path of the profile): ENOENT (no such file)`,
    );
  });
});

describe('NATS settings', () => {
  const creds = file(
    'user.creds',
    [
      '-----BEGIN NATS USER JWT-----',
      'eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.c2ln',
      '------END NATS USER JWT------',
      '',
      '-----BEGIN USER NKEY SEED-----',
      'SUAMK2FG4MI6UE3ACF3FK3OIQBCEIEZV7NSWFFEW63UXMRLFM2XLAXK4GY',
      '------END USER NKEY SEED------',
    ].join('\n'),
  );

  it('a token, a creds file or a user; TLS files for every connection', () => {
    const token = loadConfig({ DIALFLOW_NATS_SERVERS: 'tls://n1:4222,tls://n2:4222', DIALFLOW_NATS_TOKEN: 's3cret' });
    expect(token.nats).toEqual({ servers: ['tls://n1:4222', 'tls://n2:4222'], replicas: 1, token: 's3cret' });
    const options = natsConnectionOptions(token.nats);
    expect(options.servers).toEqual(['tls://n1:4222', 'tls://n2:4222']);
    expect(typeof options.authenticator).toBe('function');

    const viaCreds = loadConfig({
      DIALFLOW_NATS_CREDS: creds,
      DIALFLOW_NATS_TLS_CA: caFile,
      DIALFLOW_NATS_TLS_CERT: certFile,
      DIALFLOW_NATS_TLS_KEY: keyFile,
    });
    expect(viaCreds.nats.auth).toEqual({
      credsFile: creds,
      tls: { caFile, certFile, keyFile },
    });
    expect(natsConnectionOptions(viaCreds.nats)).toMatchObject({
      authenticator: expect.any(Function) as unknown,
      tls: { caFile, certFile, keyFile },
    });

    const user = loadConfig({ DIALFLOW_NATS_USER: 'ops', DIALFLOW_NATS_PASSWORD: 'pw' });
    expect(user.nats.auth).toEqual({ user: 'ops', password: 'pw' });
  });

  it('one identity at a time; a flag naming one replaces the one of the environment', () => {
    expect(() => loadConfig({ DIALFLOW_NATS_TOKEN: 't', DIALFLOW_NATS_CREDS: creds })).toThrow(
      /set one of DIALFLOW_NATS_TOKEN, .* not several/,
    );
    const ctx = new CliContext({ DIALFLOW_NATS_NKEY_SEED_FILE: '/env.nk', DIALFLOW_NATS_TOKEN: 't' });
    ctx.prepare({ natsCreds: creds, nats: 'nats://flag:4222', natsTlsCa: caFile }, new Command('x'));
    expect(ctx.config().nats).toEqual({
      servers: ['nats://flag:4222'],
      replicas: 1,
      auth: { credsFile: creds, tls: { caFile } },
    });
    // A user from a flag keeps the password of the environment (never on a command line).
    const withUser = new CliContext({ DIALFLOW_NATS_PASSWORD: 'pw', DIALFLOW_NATS_CREDS: creds });
    withUser.prepare({ natsUser: 'ops' }, new Command('x'));
    expect(withUser.config().nats.auth).toEqual({ user: 'ops', password: 'pw' });
    expect(() => loadConfig({ DIALFLOW_NATS_SERVERS: 'http://x y' })).toThrow(/DIALFLOW_NATS_SERVERS/);
  });

  it('a creds or TLS file that cannot be read is named before anything is dialled', () => {
    const missing = join(dir, 'missing.creds');
    const c = loadConfig({ DIALFLOW_NATS_CREDS: missing });
    expect(() => natsConnectionOptions(c.nats)).toThrow(
      `cannot read the NATS creds file ${missing} (DIALFLOW_NATS_CREDS or --nats-creds): ENOENT (no such file)`,
    );
    const tls = loadConfig({ DIALFLOW_NATS_TOKEN: 't', DIALFLOW_NATS_TLS_CA: join(dir, 'missing-ca.pem') });
    expect(() => natsConnectionOptions(tls.nats)).toThrow(/NATS TLS CA certificate .*missing-ca\.pem/);
  });
});

describe('dialflow dev and the connection flags', () => {
  it('takes --namespace and --task-queue, and names the flags that are for a running stack', () => {
    expect(flagsNotForDev({ namespace: 'n', taskQueue: 'q' })).toEqual([]);
    expect(flagsNotForDev({ temporal: 'h:1', natsCreds: '/c', temporalTls: false })).toEqual([
      '--temporal',
      '--no-temporal-tls',
      '--nats-creds',
    ]);
  });

  it('config errors are ConfigError (exit 2)', () => {
    expect(() => loadConfig({ DIALFLOW_TEMPORAL_ENVCONFIG: 'maybe' })).toThrow(ConfigError);
  });
});

describe('one way to connect', () => {
  it('no Temporal connection in src is opened but by src/client/connection.ts', () => {
    const root = new URL('../../src/', import.meta.url).pathname;
    const files = readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    const opening = files.filter(
      (f) =>
        f !== join('client', 'connection.ts') &&
        /\b(Native)?Connection\.connect\(/.test(readFileSync(join(root, f), 'utf8')),
    );
    expect(opening).toEqual([]);
  });
});
