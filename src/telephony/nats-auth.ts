// Who may do what on NATS. Every dialflow process connects as one identity (an nkey, or a user and
// password, or a creds file) whose permissions the server enforces, so that a provider can publish
// only its own telephony events, the bridge only consumes them, and nobody without credentials can
// reach the server at all (before this, anyone who could reach NATS could inject a DTMF_CAPTURED
// for a guessable call id).
//
// This module holds: the DIALFLOW_NATS_* settings (the schema config/index.ts validates), the
// permissions of each identity, the rendering of nats-server's `authorization` block, the
// credentials `dialflow dev` generates, and which credentials a connection uses when its caller
// passes only a server URL.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import {
  credsAuthenticator,
  nkeyAuthenticator,
  nkeys,
  usernamePasswordAuthenticator,
  type ConnectionOptions,
} from '@nats-io/transport-node';
import { PROJECT_ROOT } from '../config/tools.js';
import { isErrnoException } from '../config/errors.js';

export class NatsAuthError extends Error {
  override readonly name = 'NatsAuthError';
}

// ---------------------------------------------------------------------------------------------
// Settings

/** The DIALFLOW_NATS_* variables of a client's credentials and TLS (merged into config/index.ts's schema). */
export const natsAuthEnvShape = {
  DIALFLOW_NATS_USER: z.string().min(1).optional(),
  DIALFLOW_NATS_PASSWORD: z.string().min(1).optional(),
  /** A file holding the identity's nkey seed (`SU…`); the server config names its public key. */
  DIALFLOW_NATS_NKEY_SEED_FILE: z.string().min(1).optional(),
  /** A `.creds` file (user JWT and seed) for servers run in operator/JWT mode. */
  DIALFLOW_NATS_CREDS: z.string().min(1).optional(),
  /** Prefix of this identity's reply subjects; the server lets each identity subscribe only to its own. */
  DIALFLOW_NATS_INBOX_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, 'one subject token of letters, digits, _ or -, e.g. _INBOX_worker')
    .optional(),
  /** CA that signed the server's certificate (turns TLS on). */
  DIALFLOW_NATS_TLS_CA: z.string().min(1).optional(),
  /** Client certificate and key, for servers that verify clients (`verify: true`). */
  DIALFLOW_NATS_TLS_CERT: z.string().min(1).optional(),
  DIALFLOW_NATS_TLS_KEY: z.string().min(1).optional(),
};
const natsAuthEnvSchema = z.object(natsAuthEnvShape);
export type NatsAuthEnv = z.infer<typeof natsAuthEnvSchema>;

/** A client's credentials and TLS files (all optional: a server without auth needs none). */
export interface NatsAuth {
  user?: string;
  password?: string;
  nkeySeedFile?: string;
  credsFile?: string;
  inboxPrefix?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
}

/** The connection settings most callers pass: `connectNats(config.nats, name)`. */
export interface NatsSettings {
  servers: string[];
  auth?: NatsAuth;
}

/** NatsAuth from validated DIALFLOW_NATS_* values; undefined when none is set. Throws NatsAuthError on combinations that cannot work. */
export function natsAuthFrom(e: NatsAuthEnv): NatsAuth | undefined {
  if (Boolean(e.DIALFLOW_NATS_USER) !== Boolean(e.DIALFLOW_NATS_PASSWORD))
    throw new NatsAuthError('DIALFLOW_NATS_USER and DIALFLOW_NATS_PASSWORD go together');
  const ways = [e.DIALFLOW_NATS_USER, e.DIALFLOW_NATS_NKEY_SEED_FILE, e.DIALFLOW_NATS_CREDS].filter(Boolean).length;
  if (ways > 1)
    throw new NatsAuthError(
      'set one of DIALFLOW_NATS_USER/PASSWORD, DIALFLOW_NATS_NKEY_SEED_FILE or DIALFLOW_NATS_CREDS, not several',
    );
  if (Boolean(e.DIALFLOW_NATS_TLS_CERT) !== Boolean(e.DIALFLOW_NATS_TLS_KEY))
    throw new NatsAuthError('DIALFLOW_NATS_TLS_CERT and DIALFLOW_NATS_TLS_KEY go together');
  const tls = {
    ...(e.DIALFLOW_NATS_TLS_CA ? { caFile: e.DIALFLOW_NATS_TLS_CA } : {}),
    ...(e.DIALFLOW_NATS_TLS_CERT ? { certFile: e.DIALFLOW_NATS_TLS_CERT } : {}),
    ...(e.DIALFLOW_NATS_TLS_KEY ? { keyFile: e.DIALFLOW_NATS_TLS_KEY } : {}),
  };
  const auth: NatsAuth = {
    ...(e.DIALFLOW_NATS_USER ? { user: e.DIALFLOW_NATS_USER } : {}),
    ...(e.DIALFLOW_NATS_PASSWORD ? { password: e.DIALFLOW_NATS_PASSWORD } : {}),
    ...(e.DIALFLOW_NATS_NKEY_SEED_FILE ? { nkeySeedFile: e.DIALFLOW_NATS_NKEY_SEED_FILE } : {}),
    ...(e.DIALFLOW_NATS_CREDS ? { credsFile: e.DIALFLOW_NATS_CREDS } : {}),
    ...(e.DIALFLOW_NATS_INBOX_PREFIX ? { inboxPrefix: e.DIALFLOW_NATS_INBOX_PREFIX } : {}),
    ...(Object.keys(tls).length > 0 ? { tls } : {}),
  };
  return Object.keys(auth).length > 0 ? auth : undefined;
}

/** The environment that gives a child process these credentials (the inverse of natsAuthFrom). */
export function natsAuthEnv(auth: NatsAuth | undefined): Record<string, string> {
  if (!auth) return {};
  return {
    ...(auth.user ? { DIALFLOW_NATS_USER: auth.user } : {}),
    ...(auth.password ? { DIALFLOW_NATS_PASSWORD: auth.password } : {}),
    ...(auth.nkeySeedFile ? { DIALFLOW_NATS_NKEY_SEED_FILE: auth.nkeySeedFile } : {}),
    ...(auth.credsFile ? { DIALFLOW_NATS_CREDS: auth.credsFile } : {}),
    ...(auth.inboxPrefix ? { DIALFLOW_NATS_INBOX_PREFIX: auth.inboxPrefix } : {}),
    ...(auth.tls?.caFile ? { DIALFLOW_NATS_TLS_CA: auth.tls.caFile } : {}),
    ...(auth.tls?.certFile ? { DIALFLOW_NATS_TLS_CERT: auth.tls.certFile } : {}),
    ...(auth.tls?.keyFile ? { DIALFLOW_NATS_TLS_KEY: auth.tls.keyFile } : {}),
  };
}

function readCredentialFile(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    if (!isErrnoException(err)) throw err;
    throw new NatsAuthError(`cannot read the NATS ${what} ${file}: ${err.code}`, { cause: err });
  }
}

/** The nats.js options for these credentials. Files are read here, once per connection. */
export function natsConnectOptions(
  auth: NatsAuth | undefined,
): Pick<ConnectionOptions, 'authenticator' | 'tls' | 'inboxPrefix'> {
  if (!auth) return {};
  const enc = new TextEncoder();
  let authenticator: ConnectionOptions['authenticator'];
  if (auth.nkeySeedFile) {
    const seed = readCredentialFile(auth.nkeySeedFile, 'nkey seed file');
    if (!/^SU[A-Z2-7]{56}$/.test(seed))
      throw new NatsAuthError(`${auth.nkeySeedFile} does not hold a user nkey seed (SU…, 58 characters)`);
    authenticator = nkeyAuthenticator(enc.encode(seed));
  } else if (auth.credsFile) {
    authenticator = credsAuthenticator(enc.encode(readCredentialFile(auth.credsFile, 'creds file')));
  } else if (auth.user && auth.password) {
    authenticator = usernamePasswordAuthenticator(auth.user, auth.password);
  }
  return {
    ...(authenticator ? { authenticator } : {}),
    ...(auth.inboxPrefix ? { inboxPrefix: auth.inboxPrefix } : {}),
    // An empty object still turns TLS on (the server's certificate checked against the system CAs).
    ...(auth.tls ? { tls: { ...auth.tls } } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Which credentials a connection uses

// Credentials for a server this process started itself (the dev stack, the test stack), by URL:
// tests and tools that connect with only `t.natsUrl` get them without passing anything.
const byServer = new Map<string, NatsAuth>();

export function registerNatsAuth(url: string, auth: NatsAuth): void {
  byServer.set(url, auth);
}
export function unregisterNatsAuth(url: string): void {
  byServer.delete(url);
}

/** Where `dialflow dev` keeps the NATS server config and each identity's nkey seed. */
export const DEV_NATS_AUTH_DIR = join(PROJECT_ROOT, '.data', 'nats-auth');

/**
 * The credentials of a connection to `servers` whose caller gave none, in this order: those of a
 * server this process started; DIALFLOW_NATS_* of the environment; the operator (`cli`) identity
 * that `dialflow dev` generated under .data — so that `dialflow campaign start` against the dev
 * stack works as before, as the payload key does with DEV_PAYLOAD_KEY_FILE.
 */
export function defaultNatsAuth(
  servers: string[],
  env: Record<string, string | undefined> = process.env,
): NatsAuth | undefined {
  for (const s of servers) {
    const own = byServer.get(s);
    if (own) return own;
  }
  const parsed = natsAuthEnvSchema.safeParse(env);
  if (!parsed.success) throw new NatsAuthError(`invalid NATS settings:\n${z.prettifyError(parsed.error)}`);
  const fromEnv = natsAuthFrom(parsed.data);
  if (fromEnv?.user || fromEnv?.nkeySeedFile || fromEnv?.credsFile) return fromEnv;
  const devSeed = join(DEV_NATS_AUTH_DIR, seedFileName('cli'));
  if (existsSync(devSeed))
    return { ...fromEnv, nkeySeedFile: devSeed, inboxPrefix: fromEnv?.inboxPrefix ?? inboxPrefixOf('cli') };
  return fromEnv;
}

// ---------------------------------------------------------------------------------------------
// Identities and their permissions

export const NATS_IDENTITIES = [
  'worker',
  'bridge',
  'provider-simulator',
  'provider-sip',
  'provider-infobip',
  'api',
  'cli',
  'admin',
] as const;
export type NatsIdentity = (typeof NATS_IDENTITIES)[number];

/** The identity each dialflow service role connects as (the infobip command side and its webhook ingress share one). */
export const ROLE_IDENTITY: Record<string, NatsIdentity> = {
  worker: 'worker',
  bridge: 'bridge',
  simulator: 'provider-simulator',
  'sip-agents': 'provider-sip',
  infobip: 'provider-infobip',
  webhooks: 'provider-infobip',
  api: 'api',
  cli: 'cli',
};

export const inboxPrefixOf = (identity: NatsIdentity) => `_INBOX_${identity}`;
const seedFileName = (identity: NatsIdentity) => `${identity}.nk`;

// Stream and bucket names (they must match src/telephony/nats.ts and src/store/*.ts; a unit test in
// test/integration/nats-auth.test.ts compares them). Spelled out here so that this module, which
// config/index.ts imports, does not pull the stores in.
export const NATS_NAMES = {
  events: 'DIALFLOW_EVENTS',
  deadletter: 'DIALFLOW_DEADLETTER',
  records: 'DIALFLOW_RECORDS',
  audit: 'DIALFLOW_AUDIT',
  bridgeConsumer: 'dialflow-bridge',
  kv: {
    flows: 'dialflow_flows',
    routes: 'dialflow_routes',
    profiles: 'dialflow_profiles',
    dnc: 'dialflow_dnc',
    contacts: 'dialflow_contacts',
    infobipCalls: 'dialflow_infobip_calls',
    simOutbox: 'dialflow_sim_outbox',
    sipCalls: 'dialflow_sip_calls',
    apiTokens: 'dialflow_api_tokens',
    users: 'dialflow_users',
    sessions: 'dialflow_sessions',
    campaignDrafts: 'dialflow_campaign_drafts',
  },
  obj: {
    assets: 'dialflow_audio_assets',
    recordings: 'dialflow_recordings',
    campaigns: 'dialflow_campaigns',
    media: 'dialflow_media',
  },
} as const;

export interface NatsPermissions {
  publish: { allow: string[]; deny?: string[] };
  subscribe: { allow: string[]; deny?: string[] };
  /** Lets a service answer requests (command acks, stats) on the requester's reply subject, once. */
  allowResponses?: boolean;
}

const api = (op: string, stream: string) => [`$JS.API.${op}.${stream}`, `$JS.API.${op}.${stream}.>`];

/**
 * JetStream API subjects for one stream. JetStream has no per-operation ACL of its own: what a
 * client may do to a stream is what `$JS.API.<OP>.<stream>` subjects it may publish to.
 *  - `create`: look the stream up and create it if missing (every service opens its streams and
 *    buckets at start; creating a stream that exists with the same config is a no-op, with
 *    another config an error — so `create` cannot change a stream);
 *  - `update`: change its config (only the worker and operators; ensureStreams falls back to
 *    create when update is refused);
 *  - `read`: get messages by sequence or subject (KV gets, object metadata);
 *  - `consume`: ephemeral/ordered consumers (KV keys and watch, object get and list, records);
 *  - `purge`: object-store deletes and KV purges.
 */
function streamApi(
  stream: string,
  ops: { update?: boolean; read?: boolean; consume?: boolean; purge?: boolean } = {},
): string[] {
  return [
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.STREAM.CREATE.${stream}`,
    ...(ops.update ? [`$JS.API.STREAM.UPDATE.${stream}`] : []),
    ...(ops.read ? [`$JS.API.STREAM.MSG.GET.${stream}`, ...api('DIRECT.GET', stream)] : []),
    ...(ops.consume
      ? [
          ...api('CONSUMER.CREATE', stream),
          `$JS.API.CONSUMER.INFO.${stream}.>`,
          `$JS.API.CONSUMER.DELETE.${stream}.>`,
          `$JS.API.CONSUMER.MSG.NEXT.${stream}.>`,
          `$JS.ACK.${stream}.>`,
          `$JS.FC.${stream}.>`,
        ]
      : []),
    ...(ops.purge ? [`$JS.API.STREAM.PURGE.${stream}`] : []),
  ];
}
const kvAccess = (bucket: string, write: boolean) => [
  ...streamApi(`KV_${bucket}`, { read: true, consume: true, purge: write }),
  ...(write ? [`$KV.${bucket}.>`] : []),
];
const objAccess = (bucket: string, write: boolean) => [
  ...streamApi(`OBJ_${bucket}`, { read: true, consume: true, purge: write }),
  ...(write ? [`$O.${bucket}.>`] : []),
];

const N = NATS_NAMES;
/** Every service opens (creates if missing) the events and dead-letter streams at start (ensureStreams). */
const ensureTelephonyStreams = (update: boolean) => [
  ...streamApi(N.events, { update }),
  ...streamApi(N.deadletter, { update }),
];
const TOKENS = ['sim', 'sip', 'infobip'] as const;
const commandSubjects = TOKENS.flatMap((t) => [`dialflow.telephony.${t}.commands`, `dialflow.telephony.${t}.sms`]);

function provider(
  token: (typeof TOKENS)[number],
  extra: { publish?: string[]; subscribe?: string[] },
  identity: NatsIdentity,
): NatsPermissions {
  return {
    publish: {
      // Its own events only: dialflow.events.sim.> for the simulator, never another provider's.
      allow: [
        `dialflow.events.${token}.>`,
        '$JS.API.INFO',
        ...ensureTelephonyStreams(false),
        ...objAccess(N.obj.recordings, true),
        ...(extra.publish ?? []),
      ],
    },
    subscribe: {
      allow: [
        `dialflow.telephony.${token}.commands`,
        `dialflow.telephony.${token}.sms`,
        `${inboxPrefixOf(identity)}.>`,
        ...(extra.subscribe ?? []),
      ],
    },
    allowResponses: true,
  };
}

/** What each identity may publish and subscribe to. */
export function natsPermissions(identity: NatsIdentity): NatsPermissions {
  const inbox = `${inboxPrefixOf(identity)}.>`;
  switch (identity) {
    case 'worker':
      return {
        publish: {
          allow: [
            ...commandSubjects,
            `dialflow.records.>`,
            '$JS.API.INFO',
            ...ensureTelephonyStreams(true),
            ...streamApi(N.records, { update: true, read: true, consume: true }),
            ...kvAccess(N.kv.dnc, true),
            ...kvAccess(N.kv.contacts, true),
            ...kvAccess(N.kv.profiles, true),
            ...objAccess(N.obj.campaigns, true),
          ],
        },
        subscribe: { allow: [inbox] },
      };
    case 'bridge':
      return {
        publish: {
          allow: [
            // The reject-hangup of a call to an unknown number (any provider's command subject:
            // the deployment's provider is configuration, not identity).
            ...commandSubjects,
            'dialflow.deadletter.events',
            // A recording ready after its call closed goes into the records, next to the call's record.
            'dialflow.records.>',
            '$JS.API.INFO',
            ...ensureTelephonyStreams(false),
            // Its durable consumer on the events stream: look up, create, pull, ack. No other consumer.
            `$JS.API.CONSUMER.INFO.${N.events}.${N.bridgeConsumer}`,
            `$JS.API.CONSUMER.CREATE.${N.events}.${N.bridgeConsumer}`,
            `$JS.API.CONSUMER.CREATE.${N.events}.${N.bridgeConsumer}.>`,
            `$JS.API.CONSUMER.DURABLE.CREATE.${N.events}.${N.bridgeConsumer}`,
            `$JS.API.CONSUMER.MSG.NEXT.${N.events}.${N.bridgeConsumer}`,
            `$JS.ACK.${N.events}.${N.bridgeConsumer}.>`,
            ...kvAccess(N.kv.flows, false),
            ...kvAccess(N.kv.routes, false),
          ],
        },
        subscribe: { allow: [inbox] },
      };
    case 'provider-simulator':
      // The simulator's test hooks (stats, call-in) are requests answered on its own subjects.
      // Its outbox (events not yet safe in JetStream) is its own bucket.
      return provider('sim', { publish: kvAccess(N.kv.simOutbox, true), subscribe: ['dialflow.sim.>'] }, identity);
    case 'provider-sip':
      return provider(
        'sip',
        {
          publish: [
            ...objAccess(N.obj.media, true),
            ...objAccess(N.obj.assets, false),
            ...kvAccess(N.kv.sipCalls, true),
          ],
        },
        identity,
      );
    case 'provider-infobip':
      return provider('infobip', { publish: kvAccess(N.kv.infobipCalls, true) }, identity);
    case 'api':
      // The HTTP API and console (`dialflow api`): what its routes read and write, and nothing that
      // speaks for a call: no telephony command or event, no records of its own (calls and
      // campaigns go through Temporal), no change to a stream's config. It reads tokens and users
      // (`dialflow tokens`/`users` on the CLI write them) and keeps the sessions.
      return {
        publish: {
          allow: [
            '$JS.API.INFO',
            'dialflow.audit.>',
            ...streamApi(N.audit, { read: true }),
            ...streamApi(N.records, { read: true, consume: true }),
            ...kvAccess(N.kv.flows, true),
            ...kvAccess(N.kv.routes, true),
            ...kvAccess(N.kv.apiTokens, false),
            ...kvAccess(N.kv.users, false),
            ...kvAccess(N.kv.sessions, true),
            ...kvAccess(N.kv.campaignDrafts, true),
            ...kvAccess(N.kv.dnc, true),
            ...kvAccess(N.kv.contacts, false),
            ...objAccess(N.obj.assets, true),
            ...objAccess(N.obj.campaigns, true),
            ...objAccess(N.obj.recordings, false),
          ],
        },
        subscribe: { allow: [inbox] },
      };
    case 'cli':
      // Operators: flows, campaigns, recordings, do-not-call, reports — broad, but never a
      // telephony event: nothing but a provider speaks for a phone call.
      return { publish: { allow: ['>'], deny: ['dialflow.events.>'] }, subscribe: { allow: ['>'] } };
    case 'admin':
      // The process that started a dev or test server (stream setup, drills that inject poison events).
      return { publish: { allow: ['>'] }, subscribe: { allow: ['>'] } };
  }
}

// ---------------------------------------------------------------------------------------------
// Server configuration

const quote = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
const list = (xs: string[]) => `[${xs.map(quote).join(', ')}]`;

/**
 * nats-server's `authorization { users: [...] }` for these identities. `key` is an nkey public key
 * (`U…`), or `$NAME` for a variable the server resolves from its environment (deploy/).
 */
export function renderAuthorization(users: Array<{ identity: NatsIdentity; nkey: string }>): string {
  const lines = ['authorization {', '  users: ['];
  for (const u of users) {
    const p = natsPermissions(u.identity);
    const key = u.nkey.startsWith('$') ? u.nkey : quote(u.nkey);
    lines.push(`    # ${u.identity}`);
    lines.push(`    { nkey: ${key}, permissions: {`);
    lines.push(
      `        publish: { allow: ${list(p.publish.allow)}${p.publish.deny ? `, deny: ${list(p.publish.deny)}` : ''} }`,
    );
    lines.push(
      `        subscribe: { allow: ${list(p.subscribe.allow)}${p.subscribe.deny ? `, deny: ${list(p.subscribe.deny)}` : ''} }`,
    );
    if (p.allowResponses) lines.push('        allow_responses: true');
    lines.push('    } }');
  }
  lines.push('  ]', '}');
  return `${lines.join('\n')}\n`;
}

export interface ServerTls {
  certFile: string;
  keyFile: string;
  /** With a CA, clients must present a certificate signed by it. */
  caFile?: string;
}

/** A server config with these users (none: no authorization block) and TLS. */
export function renderServerConfig(opts: {
  users?: Array<{ identity: NatsIdentity; nkey: string }>;
  tls?: ServerTls;
}): string {
  const tls = opts.tls
    ? `tls {\n  cert_file: ${quote(opts.tls.certFile)}\n  key_file: ${quote(opts.tls.keyFile)}\n${opts.tls.caFile ? `  ca_file: ${quote(opts.tls.caFile)}\n  verify: true\n` : ''}}\n`
    : '';
  return `# Generated by dialflow at every start; edits are overwritten.\n${opts.users ? renderAuthorization(opts.users) : ''}${tls}`;
}

// ---------------------------------------------------------------------------------------------
// Dev credentials

export interface DevNatsAuth {
  dir: string;
  /** The server's config file (authorization, and TLS when asked). */
  configFile: string;
  /** Each identity's credentials. */
  identities: Record<NatsIdentity, NatsAuth & { nkeySeedFile: string; publicKey: string }>;
}

function writePrivate(file: string, text: string): void {
  writeFileSync(file, text, { mode: 0o600 });
  // writeFileSync's mode applies only to a new file; an older one keeps whatever it had.
  chmodSync(file, 0o600);
}

/**
 * One nkey per identity, created once under `dir` (0600, kept across restarts so that the CLI and
 * services stay valid), and the server config regenerated from them at every start so that new
 * permissions apply after an upgrade.
 */
export function ensureDevNatsAuth(
  dir: string,
  opts: { tls?: ServerTls; clientTls?: NatsAuth['tls'] } = {},
): DevNatsAuth {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const identities = {} as DevNatsAuth['identities'];
  for (const identity of NATS_IDENTITIES) {
    const seedFile = join(dir, seedFileName(identity));
    if (!existsSync(seedFile))
      writeFileSync(seedFile, `${new TextDecoder().decode(nkeys.createUser().getSeed())}\n`, {
        mode: 0o600,
        flag: 'wx',
      });
    const seed = readCredentialFile(seedFile, 'nkey seed file');
    let publicKey: string;
    try {
      publicKey = nkeys.fromSeed(new TextEncoder().encode(seed)).getPublicKey();
    } catch (err) {
      if (!(err instanceof nkeys.NKeysError)) throw err;
      throw new NatsAuthError(
        `${seedFile} does not hold an nkey seed; delete it and start again to generate a new one`,
        { cause: err },
      );
    }
    identities[identity] = {
      nkeySeedFile: seedFile,
      publicKey,
      inboxPrefix: inboxPrefixOf(identity),
      ...(opts.clientTls ? { tls: opts.clientTls } : {}),
    };
  }
  const configFile = join(dir, 'server.conf');
  writePrivate(
    configFile,
    renderServerConfig({
      users: NATS_IDENTITIES.map((identity) => ({ identity, nkey: identities[identity].publicKey })),
      ...(opts.tls ? { tls: opts.tls } : {}),
    }),
  );
  return { dir, configFile, identities };
}

/** The NatsAuth of one identity as the environment of a child process. */
export function devNatsEnv(auth: DevNatsAuth, role: string): Record<string, string> {
  const identity = ROLE_IDENTITY[role];
  if (!identity) throw new NatsAuthError(`no NATS identity for the role ${role}`);
  const { publicKey: _publicKey, ...creds } = auth.identities[identity];
  return natsAuthEnv(creds);
}

/** The environment variable that holds an identity's public nkey in deploy/ (`$DIALFLOW_NATS_NKEY_WORKER`). */
export const deployNkeyVariable = (identity: NatsIdentity) =>
  `DIALFLOW_NATS_NKEY_${identity.toUpperCase().replace(/-/g, '_')}`;

/** deploy/nats/auth.conf: every identity but `admin`, each public key from the server's environment. */
export function renderDeployAuthorization(): string {
  const users = NATS_IDENTITIES.filter((i) => i !== 'admin').map((identity) => ({
    identity,
    nkey: `$${deployNkeyVariable(identity)}`,
  }));
  return [
    '# Who may do what on the NATS cluster: one nkey per dialflow service (src/telephony/nats-auth.ts',
    "# renders this file; a test keeps the two equal). Each public key comes from the server's",
    '# environment (DIALFLOW_NATS_NKEY_*, see deploy/nats/gen-keys.mjs); the services hold the seeds.',
    '# Clients without a listed key are refused.',
    renderAuthorization(users),
  ].join('\n');
}
