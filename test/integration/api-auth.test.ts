// Console users and sessions on a real nats-server, with the API served in-process on a free
// loopback port and connected as its own NATS identity (`api`): login, the cookie's attributes,
// CSRF, logout, a removed user, a changed role or password, the login rate limits, bearer tokens
// next to cookies, the `dialflow users` CLI end to end, and what the `api` identity may and may not
// do on NATS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Client, Connection } from '@temporalio/client';
import { EncryptionCodec } from '../../src/codec/encryption.js';
import { CLI_BIN, Stack, freePort, type StartedNats } from '../../src/dev/stack.js';
import { commandSubject, connectNats, ensureStreams, eventSubject, EVENTS_STREAM } from '../../src/telephony/nats.js';
import { NATS_NAMES } from '../../src/telephony/nats-auth.js';
import { createLogger } from '../../src/logging.js';
import { startApiServer, type StartedApiServer } from '../../src/api/server.js';
import { ApiTokenStore, TOKENS_BUCKET } from '../../src/store/tokens.js';
import { UserStore, USERS_BUCKET } from '../../src/store/users.js';
import { SESSIONS_BUCKET } from '../../src/store/sessions.js';
import { AUDIT_STREAM, AuditLog } from '../../src/store/audit.js';
import { NatsCampaignStore } from '../../src/store/campaigns.js';
import { ObjectRecordingStore } from '../../src/store/recordings.js';
import { AudioAssetStore } from '../../src/store/assets.js';
import { FailedLoginAudit, loginAddressKey } from '../../src/api/routes/session.js';
import { apiRequest, errorCode, type ApiRequestOptions, type Answer } from '../helpers/api.js';

const dir = mkdtempSync(join(tmpdir(), 'dialflow-api-auth-'));
let stack: Stack;
let nats: StartedNats;
/** As `admin`: test setup (users, tokens). */
let adminNc: NatsConnection;
/** As `api`: what the servers use. */
let apiNc: NatsConnection;
let users: UserStore;
let api: StartedApiServer;
/** A second server: HTTPS cookies, and the default limit per user name (5 a minute). */
let strict: StartedApiServer;
/** A third one with a low limit per client address. */
let tight: StartedApiServer;
/** A fourth one that checks one password at a time, queues none, and audits failed logins in 0.5 s windows. */
let narrow: StartedApiServer;
let viewerToken = '';
let adminToken = '';
const PASSWORD = 'correct horse battery';

const flow = (version: number) => ({
  id: 'auth-test',
  version,
  start: 'call',
  elements: [
    { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'end' } },
    { id: 'end', type: 'hangUp' },
  ],
});

const call = (method: string, path: string, opts: ApiRequestOptions & { base?: string } = {}) =>
  apiRequest(opts.base ?? api.url, method, path, opts);

interface Login {
  status: number;
  answer: Answer;
  cookie: string;
  setCookie: string;
  csrf: string;
}
async function login(username: string, password: string, base?: string, cookie?: string): Promise<Login> {
  const answer = await call('POST', '/api/session', {
    json: { username, password },
    ...(base ? { base } : {}),
    ...(cookie ? { cookie } : {}),
  });
  const setCookie = answer.headers.getSetCookie().find((c) => c.startsWith('dialflow_session=')) ?? '';
  return {
    status: answer.status,
    answer,
    cookie: /^dialflow_session=([^;]*)/.exec(setCookie)?.[1] ?? '',
    setCookie,
    csrf: (answer.body as { csrfToken?: string }).csrfToken ?? '',
  };
}

function cli(args: string[], stdin?: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI_BIN, ...args, '--nats', nats.url], {
      env: { ...process.env, ...nats.env('cli') },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.end(stdin ?? '');
    child.once('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

beforeAll(async () => {
  stack = new Stack(join(dir, 'stack'));
  nats = await stack.startNats({ port: await freePort(), storeDir: join(dir, 'nats') });
  adminNc = await connectNats(nats.url, 'api-auth-setup');
  await ensureStreams(adminNc);
  const tokens = await ApiTokenStore.open(adminNc);
  viewerToken = (await tokens.create('viewer', 'auth-viewer')).token;
  adminToken = (await tokens.create('admin', 'auth-admin')).token;
  users = await UserStore.open(adminNc);
  await Promise.all([
    users.add('vera', 'viewer', PASSWORD),
    users.add('otto', 'operator', PASSWORD),
    users.add('rita', 'viewer', PASSWORD),
    users.add('gone', 'operator', PASSWORD),
    users.add('pete', 'viewer', PASSWORD),
    users.add('limit', 'viewer', PASSWORD),
  ]);
  apiNc = await connectNats({ servers: [nats.url], auth: nats.auth!.identities.api }, 'api-auth-api');
  // These routes need only NATS; a client that never connects stands in for Temporal.
  const temporal = {
    client: new Client({ connection: Connection.lazy({ address: '127.0.0.1:1' }) }),
    codec: new EncryptionCodec(randomBytes(32)),
    taskQueue: 'api-auth',
  };
  const logger = createLogger('api', 'silent');
  api = await startApiServer({
    nc: apiNc,
    temporal,
    logger,
    host: '127.0.0.1',
    port: await freePort(),
    // Every test logs in from 127.0.0.1, many as the same users: the limits have their own servers below.
    loginLimits: { perAddress: 10_000, perUser: 10_000 },
  });
  strict = await startApiServer({
    nc: apiNc,
    temporal,
    logger,
    host: '127.0.0.1',
    port: await freePort(),
    cookieSecure: true,
    loginLimits: { perAddress: 10_000 },
  });
  tight = await startApiServer({
    nc: apiNc,
    temporal,
    logger,
    host: '127.0.0.1',
    port: await freePort(),
    loginLimits: { perAddress: 3, perUser: 10_000 },
  });
  narrow = await startApiServer({
    nc: apiNc,
    temporal,
    logger,
    host: '127.0.0.1',
    port: await freePort(),
    loginLimits: { perAddress: 10_000, perUser: 10_000, checksRunning: 1, checksWaiting: 0 },
  });
}, 60_000);
afterAll(async () => {
  await api?.close();
  await strict?.close();
  await tight?.close();
  await narrow?.close();
  await apiNc?.close();
  await adminNc?.close();
  await stack?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('logging in', () => {
  it('answers the user and a CSRF token, and sets an HttpOnly, SameSite=Strict session cookie', async () => {
    const l = await login('vera', PASSWORD);
    expect(l.status).toBe(200);
    expect(l.answer.body).toEqual({ user: { name: 'vera', role: 'viewer' }, csrfToken: expect.any(String) });
    expect(l.csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // 256 random bits, base64url.
    expect(l.cookie).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const attributes = l.setCookie.split(';').map((a) => a.trim().toLowerCase());
    expect(attributes).toEqual(expect.arrayContaining(['httponly', 'samesite=strict', 'path=/']));
    // Plain HTTP: no Secure (the browser would not send it back).
    expect(attributes).not.toContain('secure');
    const session = await call('GET', '/api/session', { cookie: l.cookie });
    expect(session.status).toBe(200);
    expect(session.body).toEqual({ user: { name: 'vera', role: 'viewer' }, csrfToken: l.csrf });
  });

  it('a server configured for HTTPS marks the cookie Secure', async () => {
    const l = await login('vera', PASSWORD, strict.url);
    expect(l.status).toBe(200);
    expect(l.setCookie.split(';').map((a) => a.trim().toLowerCase())).toContain('secure');
  });

  it('a wrong password and an unknown user get the same 401, and no cookie', async () => {
    const wrong = await login('otto', 'not the password at all');
    const unknown = await login('nobody', PASSWORD);
    const invalidName = await login('Not A Name!', PASSWORD);
    for (const a of [wrong, unknown, invalidName]) {
      expect(a.status).toBe(401);
      expect(errorCode(a.answer)).toBe('login_failed');
      expect(a.cookie).toBe('');
    }
    expect(unknown.answer.body).toEqual(wrong.answer.body);
  });

  it('a body without a user name or password is 400', async () => {
    for (const json of [{ username: 'vera' }, { password: PASSWORD }, { username: '', password: PASSWORD }, 'x']) {
      const a = await call('POST', '/api/session', { json });
      expect(a.status, JSON.stringify(json)).toBe(400);
      expect(errorCode(a)).toBe('bad_request');
    }
  });

  it('GET /api/session without a session is 401; with a made-up or forged cookie too, and the cookie is cleared', async () => {
    expect((await call('GET', '/api/session')).status).toBe(401);
    for (const cookie of ['x', randomBytes(32).toString('base64url')]) {
      const a = await call('GET', '/api/session', { cookie });
      expect(a.status).toBe(401);
      expect(errorCode(a)).toBe('unauthorized');
      expect(a.headers.getSetCookie().join()).toMatch(/dialflow_session=;/);
    }
    // A bearer token is not a console session.
    const bearer = await call('GET', '/api/session', { token: viewerToken });
    expect(bearer.status).toBe(401);
  });

  it('the server keeps the session under a hash of its id, never the id', async () => {
    const l = await login('vera', PASSWORD);
    const kv = await new Kvm(adminNc).open(SESSIONS_BUCKET);
    const keys: string[] = [];
    for await (const k of await kv.keys()) keys.push(k);
    expect(keys.length).toBeGreaterThan(0);
    expect(keys).not.toContain(l.cookie);
    expect(keys.every((k) => /^[0-9a-f]{64}$/.test(k))).toBe(true);
  });
});

describe('a session', () => {
  it('works for GET requests without a CSRF token', async () => {
    const l = await login('vera', PASSWORD);
    const a = await call('GET', '/api/flows', { cookie: l.cookie });
    expect(a.status).toBe(200);
    expect(a.body).toEqual({ flows: expect.any(Array) });
  });

  it('needs the CSRF token for anything else: missing or wrong is 403 csrf, the right one passes', async () => {
    const l = await login('otto', PASSWORD);
    const missing = await call('POST', '/api/flows', { cookie: l.cookie, json: flow(1) });
    expect(missing.status).toBe(403);
    expect(errorCode(missing)).toBe('csrf');
    const wrong = await call('POST', '/api/flows', {
      cookie: l.cookie,
      csrf: `${l.csrf.slice(0, -1)}A`,
      json: flow(1),
    });
    expect(wrong.status).toBe(403);
    expect(errorCode(wrong)).toBe('csrf');
    // Another session's token is no better.
    const other = await login('vera', PASSWORD);
    expect((await call('POST', '/api/flows', { cookie: l.cookie, csrf: other.csrf, json: flow(1) })).status).toBe(403);
    const right = await call('POST', '/api/flows', { cookie: l.cookie, csrf: l.csrf, json: flow(1) });
    expect(right.status).toBe(201);
    // The audit log names the user.
    const audit = await call('GET', '/api/audit?limit=20', { token: adminToken });
    const entry = (audit.body as { entries: Array<Record<string, unknown>> }).entries.find(
      (e) => e.action === 'flow.publish',
    );
    expect(entry).toMatchObject({ actor: { user: 'otto', name: 'otto', role: 'operator' }, outcome: 'published' });
  });

  it('the role is checked after CSRF: a viewer with the right token gets 403 forbidden', async () => {
    const l = await login('vera', PASSWORD);
    const a = await call('POST', '/api/flows', { cookie: l.cookie, csrf: l.csrf, json: flow(2) });
    expect(a.status).toBe(403);
    expect(errorCode(a)).toBe('forbidden');
  });

  it('logout ends it on the server (the old cookie stops working) and clears the cookie; it needs CSRF too', async () => {
    const l = await login('vera', PASSWORD);
    const noToken = await call('DELETE', '/api/session', { cookie: l.cookie });
    expect(noToken.status).toBe(403);
    expect(errorCode(noToken)).toBe('csrf');
    const out = await call('DELETE', '/api/session', { cookie: l.cookie, csrf: l.csrf });
    expect(out.status).toBe(204);
    const cleared = out.headers.getSetCookie().find((c) => c.startsWith('dialflow_session=')) ?? '';
    expect(cleared).toMatch(/^dialflow_session=;/);
    expect(cleared).toMatch(/Expires=Thu, 01 Jan 1970|Max-Age=0/i);
    const after = await call('GET', '/api/flows', { cookie: l.cookie });
    expect(after.status).toBe(401);
    expect(errorCode(after)).toBe('unauthorized');
  });

  it('a new login from the same browser replaces its session', async () => {
    const first = await login('vera', PASSWORD);
    const second = await login('vera', PASSWORD, undefined, first.cookie);
    expect(second.status).toBe(200);
    expect(second.cookie).not.toBe(first.cookie);
    expect((await call('GET', '/api/session', { cookie: first.cookie })).status).toBe(401);
    expect((await call('GET', '/api/session', { cookie: second.cookie })).status).toBe(200);
  });

  it("a removed user's session stops working at once", async () => {
    const l = await login('gone', PASSWORD);
    expect((await call('GET', '/api/flows', { cookie: l.cookie })).status).toBe(200);
    await users.remove('gone');
    const a = await call('GET', '/api/flows', { cookie: l.cookie });
    expect(a.status).toBe(401);
    expect(errorCode(a)).toBe('unauthorized');
  });

  it('a changed role applies to the next request of a live session', async () => {
    const l = await login('rita', PASSWORD);
    expect((await call('POST', '/api/flows', { cookie: l.cookie, csrf: l.csrf, json: flow(3) })).status).toBe(403);
    await users.setRole('rita', 'operator');
    const a = await call('POST', '/api/flows', { cookie: l.cookie, csrf: l.csrf, json: flow(3) });
    expect(a.status).toBe(201);
    expect((await call('GET', '/api/session', { cookie: l.cookie })).body).toMatchObject({
      user: { name: 'rita', role: 'operator' },
    });
    await users.setRole('rita', 'viewer');
    expect((await call('POST', '/api/flows', { cookie: l.cookie, csrf: l.csrf, json: flow(4) })).status).toBe(403);
  });

  it('a new password ends the sessions begun before it', async () => {
    const l = await login('pete', PASSWORD);
    expect((await call('GET', '/api/flows', { cookie: l.cookie })).status).toBe(200);
    // Timestamps have millisecond resolution: make sure the change is later than the login.
    await new Promise((r) => setTimeout(r, 5));
    await users.setPassword('pete', 'another long password');
    expect((await call('GET', '/api/flows', { cookie: l.cookie })).status).toBe(401);
    expect((await login('pete', PASSWORD)).status).toBe(401);
    expect((await login('pete', 'another long password')).status).toBe(200);
  });

  it('bearer tokens work as before, need no CSRF token, and win over a cookie', async () => {
    expect((await call('GET', '/api/flows', { token: viewerToken })).status).toBe(200);
    const validate = await call('POST', '/api/flows/validate', { token: viewerToken, json: flow(1) });
    expect(validate.status).toBe(200);
    const l = await login('otto', PASSWORD);
    // A bad token with a good cookie: the token is what counts.
    const a = await call('GET', '/api/flows', { token: `dfa_0123456789abcdef_${'A'.repeat(43)}`, cookie: l.cookie });
    expect(a.status).toBe(401);
  });

  it('unknown /api paths are 401 without credentials and 404 with a session', async () => {
    expect((await call('GET', '/api/nothing-here')).status).toBe(401);
    const l = await login('vera', PASSWORD);
    const a = await call('GET', '/api/nothing-here', { cookie: l.cookie });
    expect(a.status).toBe(404);
    expect(errorCode(a)).toBe('not_found');
  });
});

describe('login rate limits', () => {
  it('after 5 attempts a minute for one user name, the next is 429 rate_limited with retry-after, even with the right password', async () => {
    for (let i = 0; i < 5; i++) expect((await login('limit', `wrong password ${i}`, strict.url)).status).toBe(401);
    const blocked = await login('limit', PASSWORD, strict.url);
    expect(blocked.status).toBe(429);
    expect(errorCode(blocked.answer)).toBe('rate_limited');
    expect(Number(blocked.answer.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(blocked.cookie).toBe('');
    // Other users are not affected (the per-address limit of this server is high).
    expect((await login('vera', PASSWORD, strict.url)).status).toBe(200);
  });

  it('per client address too, whatever the user names', async () => {
    for (const name of ['a1', 'a2', 'a3']) expect((await login(name, PASSWORD, tight.url)).status).toBe(401);
    const blocked = await login('vera', PASSWORD, tight.url);
    expect(blocked.status).toBe(429);
    expect(errorCode(blocked.answer)).toBe('rate_limited');
    expect(blocked.answer.headers.get('retry-after')).toMatch(/^\d+$/);
  });

  it('counts an IPv6 client by its /64: another address of the same subscriber is no new client', () => {
    expect(loginAddressKey('2001:db8:1:2:aaaa::1')).toBe(loginAddressKey('2001:db8:1:2:ffff:1:2:3'));
    expect(loginAddressKey('2001:db8:1:2::1')).toBe('2001:db8:1:2::');
    expect(loginAddressKey('2001:db8:1:3::1')).not.toBe(loginAddressKey('2001:db8:1:2::1'));
    // IPv4, also as an IPv4-mapped IPv6 address (a dual-stack socket), is counted per address.
    expect(loginAddressKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(loginAddressKey('192.0.2.7')).toBe('192.0.2.7');
    expect(loginAddressKey('192.0.2.8')).not.toBe(loginAddressKey('192.0.2.7'));
  });

  it('beyond the password checks running and waiting, 503 login.busy with retry-after', async () => {
    // One check at a time, none waiting: of logins sent together, those that arrive during a check are refused.
    const answers = await Promise.all(
      Array.from({ length: 4 }, (_, i) => login('vera', `wrong password ${i}`, narrow.url)),
    );
    const busy = answers.filter((a) => a.status === 503);
    expect(busy.length).toBeGreaterThan(0);
    expect(answers.filter((a) => a.status === 401).length).toBeGreaterThan(0);
    for (const a of busy) {
      expect(errorCode(a.answer)).toBe('login.busy');
      expect(a.answer.headers.get('retry-after')).toMatch(/^\d+$/);
    }
    expect((await login('vera', PASSWORD, narrow.url)).status).toBe(200);
  });

  it('audits at most one failed login per user name and address a minute, and counts the others', async () => {
    const entries = async (user: string) => {
      const audit = await call('GET', '/api/audit?limit=200', { token: adminToken });
      return (
        audit.body as { entries: Array<{ action: string; target: Record<string, unknown>; outcome: string }> }
      ).entries.filter((e) => e.action === 'session.loginFailed' && e.target.user === user);
    };
    for (let i = 0; i < 4; i++) expect((await login('guessed', `wrong password ${i}`)).status).toBe(401);
    expect((await entries('guessed')).map((e) => e.outcome)).toEqual(['wrongCredentials']);
    // The window's count is written once the window is over: driven with explicit times (each
    // login costs a password check, and on a busy machine three of them outlast a short window).
    const windowMs = 60_000;
    const failures = new FailedLoginAudit(await AuditLog.open(adminNc), windowMs, (err) => {
      throw err;
    });
    const start = Date.now();
    for (let i = 0; i < 3; i++) await failures.failed('counted', '127.0.0.1', start + i * 1000);
    await failures.closeWindows(start + windowMs);
    await failures.stop();
    const written = await entries('counted');
    expect(written.map((e) => e.outcome).sort()).toEqual(['repeated', 'wrongCredentials']);
    expect(written.find((e) => e.outcome === 'repeated')?.target).toMatchObject({
      user: 'counted',
      address: '127.0.0.1',
      attempts: 2,
      since: expect.stringMatching(/^\d{4}-/),
    });
  });

  it('logins and failed logins are audited, with the user name tried and the address', async () => {
    const audit = await call('GET', '/api/audit?limit=200', { token: adminToken });
    const entries = (audit.body as { entries: Array<Record<string, unknown>> }).entries;
    expect(entries).toContainEqual(
      expect.objectContaining({
        action: 'session.login',
        actor: { user: 'vera', name: 'vera', role: 'viewer' },
        target: { user: 'vera', address: '127.0.0.1' },
        outcome: 'ok',
      }),
    );
    expect(entries).toContainEqual(
      expect.objectContaining({
        action: 'session.loginFailed',
        target: { user: 'nobody', address: '127.0.0.1' },
        outcome: 'wrongCredentials',
      }),
    );
  });
});

describe('the OpenAPI document', () => {
  it('names the cookie scheme next to bearer, and the login needs neither', async () => {
    const doc = (await call('GET', '/api/openapi.json')).body as {
      components: { securitySchemes: Record<string, unknown> };
      security: unknown[];
      paths: Record<string, Record<string, { security?: unknown[] }>>;
    };
    expect(doc.components.securitySchemes.session).toEqual({ type: 'apiKey', in: 'cookie', name: 'dialflow_session' });
    expect(doc.security).toEqual([{ bearer: [] }, { session: [] }]);
    expect(doc.paths['/api/session']?.post?.security).toEqual([]);
    expect(Object.keys(doc.paths['/api/session'] ?? {}).sort()).toEqual(['delete', 'get', 'post']);
  });
});

// Each CLI run starts a Node process (seconds on a busy machine).
describe('dialflow users', { timeout: 120_000 }, () => {
  it('add with --password-stdin → log in → list --json (no hash) → passwd → remove, all audited as cli', async () => {
    const added = await cli(
      ['users', 'add', 'carla', '--role', 'operator', '--password-stdin'],
      'a long cli password\n',
    );
    expect(added.status, added.stderr).toBe(0);
    expect(added.stdout).toBe('');
    const first = await login('carla', 'a long cli password');
    expect(first.status).toBe(200);
    expect(first.answer.body).toMatchObject({ user: { name: 'carla', role: 'operator' } });

    const listed = await cli(['users', 'list', '--json']);
    expect(listed.status, listed.stderr).toBe(0);
    expect(listed.stdout).not.toMatch(/hash|salt|scrypt/);
    expect(JSON.parse(listed.stdout)).toContainEqual({
      name: 'carla',
      role: 'operator',
      created: expect.any(String),
      passwordChanged: expect.any(String),
    });

    const passwd = await cli(['users', 'passwd', 'carla', '--password-stdin'], 'the second password');
    expect(passwd.status, passwd.stderr).toBe(0);
    expect((await call('GET', '/api/flows', { cookie: first.cookie })).status).toBe(401);
    expect((await login('carla', 'a long cli password')).status).toBe(401);
    expect((await login('carla', 'the second password')).status).toBe(200);

    const removed = await cli(['users', 'remove', 'carla']);
    expect(removed.status, removed.stderr).toBe(0);
    expect((await login('carla', 'the second password')).status).toBe(401);
    expect((await cli(['users', 'remove', 'carla'])).status).toBe(1);

    const entries = (await (await AuditLog.open(adminNc)).recent(100)).filter(
      (e) => e.target.user === 'carla' && e.action.startsWith('user.'),
    );
    expect(entries.map((e) => e.action)).toEqual(['user.remove', 'user.password', 'user.add']);
    expect(entries.every((e) => e.actor.name === 'cli')).toBe(true);
  });

  it('add without --password-stdin prints a generated password once', async () => {
    const added = await cli(['users', 'add', 'gen', '--role', 'viewer']);
    expect(added.status, added.stderr).toBe(0);
    const password = added.stdout.trim();
    expect(password).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect((await login('gen', password)).status).toBe(200);
    expect((await cli(['users', 'list'])).stdout).not.toContain(password);
  });

  it('refuses a bad name or role (exit 2), a short password or a taken name (exit 1)', async () => {
    const [badName, role, short, taken, nobody] = await Promise.all([
      cli(['users', 'add', 'Bad Name', '--role', 'viewer']),
      cli(['users', 'add', 'newbie', '--role', 'root']),
      cli(['users', 'add', 'newbie', '--role', 'viewer', '--password-stdin'], 'short\n'),
      cli(['users', 'add', 'vera', '--role', 'viewer', '--password-stdin'], `${PASSWORD}\n`),
      cli(['users', 'passwd', 'nobody-here']),
    ]);
    expect(badName.status).toBe(2);
    expect(badName.stderr).toContain('lowercase');
    expect(role.status).toBe(2);
    expect(role.stderr).toContain('viewer');
    expect(short.status).toBe(1);
    expect(short.stderr).toContain('at least 12 characters');
    expect(taken.status).toBe(1);
    expect(taken.stderr).toContain('exists');
    expect(nobody.status).toBe(1);
  });
});

describe('the NATS identity of the API', () => {
  it('names the buckets and the stream the stores use', () => {
    expect(NATS_NAMES).toMatchObject({
      audit: AUDIT_STREAM,
      kv: { apiTokens: TOKENS_BUCKET, users: USERS_BUCKET, sessions: SESSIONS_BUCKET },
    });
  });

  it('does the work of its routes: campaigns, do-not-call, records, recordings, assets, drafts, audit', async () => {
    const campaigns = await NatsCampaignStore.open(apiNc);
    await campaigns.setDoNotCall('+14155550199', true);
    expect(await campaigns.isDoNotCall('+14155550199')).toBe(true);
    await campaigns.putPage('auth-c1', 0, []);
    expect(await campaigns.readAfter('auth-c1', 0)).toEqual({ records: [], lastSeq: 0 });
    expect(await (await ObjectRecordingStore.open(apiNc)).list()).toEqual([]);
    expect(Array.isArray(await (await AudioAssetStore.open(apiNc)).list())).toBe(true);
    const drafts = await new Kvm(apiNc).create(NATS_NAMES.kv.campaignDrafts, { history: 1 });
    await drafts.put('c1', '{}');
    expect((await drafts.get('c1'))?.string()).toBe('{}');
    expect((await (await AuditLog.open(apiNc)).recent(5)).length).toBeGreaterThan(0);
    // Nothing the API did so far was refused.
    const log = readFileSync(join(stack.logDir, 'nats.log'), 'utf8');
    expect(log.split('\n').filter((l) => /Violation/.test(l) && /api-auth-api|_INBOX_api|"api"/.test(l))).toEqual([]);
  });

  it('cannot speak for a call, write users or tokens, read the events, or change a stream', async () => {
    const js = jetstream(apiNc);
    await expect(js.publish(eventSubject('simulator', 'DTMF_CAPTURED'), '{}')).rejects.toThrow(/Permissions Violation/);
    await expect(js.publish('dialflow.records.c1', '{}')).rejects.toThrow(/Permissions Violation/);
    // A plain publish is refused by the server asynchronously: a request makes the refusal visible.
    await expect(apiNc.request(commandSubject('simulator'), '{}', { timeout: 2000 })).rejects.toThrow(
      /Permissions Violation/,
    );
    await expect((await new Kvm(apiNc).open(USERS_BUCKET)).put('mallory', '{}')).rejects.toThrow(
      /Permissions Violation/,
    );
    await expect((await new Kvm(apiNc).open(TOKENS_BUCKET)).put('0123456789abcdef', '{}')).rejects.toThrow(
      /Permissions Violation/,
    );
    const events = apiNc.subscribe('dialflow.events.>');
    expect(String(await events.closed)).toMatch(/Permissions Violation for Subscription/);
    const jsm = await jetstreamManager(apiNc);
    await expect(jsm.streams.update(EVENTS_STREAM, { max_age: 1_000_000_000 })).rejects.toThrow(
      /Permissions Violation/,
    );
    await expect(jsm.streams.update(AUDIT_STREAM, { max_age: 1_000_000_000 })).rejects.toThrow(/Permissions Violation/);
    await expect(
      jsm.consumers.add(EVENTS_STREAM, { durable_name: 'thief', filter_subject: 'dialflow.events.>' }),
    ).rejects.toThrow(/Permissions Violation/);
    const inbox = apiNc.subscribe('_INBOX_worker.>');
    expect(String(await inbox.closed)).toMatch(/Permissions Violation for Subscription/);
  });
});
