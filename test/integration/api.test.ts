// The HTTP API on a real nats-server, served in-process on a free loopback port: every route, every
// way authentication fails, bad input, the OpenAPI document, and the tokens CLI end to end.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { Client, Connection } from '@temporalio/client';
import { EncryptionCodec } from '../../src/codec/encryption.js';
import { CLI_BIN, Stack, freePort, type StartedNats } from '../../src/dev/stack.js';
import { connectNats } from '../../src/telephony/nats.js';
import { createLogger } from '../../src/logging.js';
import { startApiServer, type StartedApiServer } from '../../src/api/server.js';
import type { ApiRole } from '../../src/store/tokens.js';
import { PROJECT_ROOT } from '../../src/config/tools.js';
import { apiRequest, errorCode, roleTokens, type ApiRequestOptions } from '../helpers/api.js';

let stack: Stack;
let nats: StartedNats;
let nc: NatsConnection;
let api: StartedApiServer;
const tokens: Record<ApiRole, string> = { viewer: '', operator: '', admin: '' };
const dir = mkdtempSync(join(tmpdir(), 'dialflow-api-'));

const reminder = JSON.parse(readFileSync(join(PROJECT_ROOT, 'examples', 'appointment-reminder.json'), 'utf8')) as {
  id: string;
  version: number;
  elements: Array<Record<string, unknown>>;
};
/** A small outbound flow of our own, so publishing here does not depend on the example's content. */
const apiFlow = (version: number, text = 'Hello from the API') => ({
  id: 'api-test',
  version,
  start: 'call',
  elements: [
    { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'hello' } },
    { id: 'hello', type: 'play', tts: { text, language: 'en' }, next: { played: 'end' } },
    { id: 'end', type: 'hangUp' },
  ],
});

const call = (method: string, path: string, opts: ApiRequestOptions = {}) => apiRequest(api.url, method, path, opts);

function cli(args: string[]) {
  return spawnSync(process.execPath, [CLI_BIN, ...args, '--nats', nats.url], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, ...nats.env('cli') },
  });
}

beforeAll(async () => {
  stack = new Stack(join(dir, 'stack'));
  nats = await stack.startNats({ port: await freePort(), storeDir: join(dir, 'nats') });
  nc = await connectNats(nats.url, 'api-test');
  Object.assign(tokens, await roleTokens(nc));
  // These routes need only NATS; a client that never connects stands in for Temporal.
  const client = new Client({ connection: Connection.lazy({ address: '127.0.0.1:1' }) });
  api = await startApiServer({
    nc,
    temporal: { client, codec: new EncryptionCodec(randomBytes(32)), taskQueue: 'api-test' },
    logger: createLogger('api', 'silent'),
    host: '127.0.0.1',
    port: await freePort(),
  });
});
afterAll(async () => {
  await api?.close();
  await nc?.close();
  await stack?.stop();
});

describe('authentication and roles', () => {
  it('refuses a request without a token, with another scheme, or with a malformed token: 401 as JSON', async () => {
    for (const auth of [undefined, 'Basic dXNlcjpwYXNz', 'Bearer', 'Bearer not-a-token']) {
      const a = await call('GET', '/api/flows', auth === undefined ? {} : { auth });
      expect(a.status, auth).toBe(401);
      expect(errorCode(a)).toBe('unauthorized');
      expect(a.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
  });
  it('refuses a well-formed token that was never issued, or whose secret is wrong', async () => {
    const unknown = `dfa_0123456789abcdef_${'A'.repeat(43)}`;
    expect((await call('GET', '/api/flows', { token: unknown })).status).toBe(401);
    // The id of a real token with another secret: found, and the hash comparison fails.
    const forged = tokens.admin.replace(/_[^_]+$/, `_${'B'.repeat(43)}`);
    const a = await call('GET', '/api/flows', { token: forged });
    expect(a.status).toBe(401);
    expect(errorCode(a)).toBe('unauthorized');
  });
  it('answers 403 when the role is too low: a viewer cannot publish, an operator cannot read the audit log', async () => {
    const publish = await call('POST', '/api/flows', { token: tokens.viewer, json: apiFlow(1) });
    expect(publish.status).toBe(403);
    expect(errorCode(publish)).toBe('forbidden');
    const audit = await call('GET', '/api/audit', { token: tokens.operator });
    expect(audit.status).toBe(403);
    expect(errorCode(audit)).toBe('forbidden');
  });
  it('hides what routes exist from callers without a token (401), and answers 404 with one', async () => {
    expect((await call('GET', '/api/nothing-here')).status).toBe(401);
    const a = await call('GET', '/api/nothing-here', { token: tokens.viewer });
    expect(a.status).toBe(404);
    expect(errorCode(a)).toBe('not_found');
  });
});

describe('POST /api/flows/validate', () => {
  it('a valid flow: valid, with the validator warnings as problems', async () => {
    const a = await call('POST', '/api/flows/validate', { token: tokens.viewer, json: reminder });
    expect(a.status).toBe(200);
    const body = a.body as { valid: boolean; problems: Array<{ severity: string }> };
    expect(body.valid).toBe(true);
    expect(body.problems.every((p) => p.severity === 'warning')).toBe(true);
  });
  it("an invalid flow: 200 with valid false and the validator's codes, element ids and paths", async () => {
    const flow = apiFlow(1);
    const broken = {
      ...flow,
      elements: [
        { ...flow.elements[0], next: { answered: 'nowhere' } },
        flow.elements[1],
        flow.elements[2],
        { id: 'odd', type: 'teleport' },
      ],
    };
    const a = await call('POST', '/api/flows/validate', { token: tokens.viewer, json: broken });
    expect(a.status).toBe(200);
    const body = a.body as {
      valid: boolean;
      problems: Array<{ severity: string; code: string; elementId: string | null; path: string; message: string }>;
    };
    expect(body.valid).toBe(false);
    // The unknown type fails the schema, which reports before the graph checks run.
    expect(body.problems.map((p) => p.code)).toContain('element.unknownType');
    expect(body.problems.find((p) => p.code === 'element.unknownType')).toMatchObject({
      severity: 'error',
      elementId: 'odd',
      path: 'elements[3].type',
    });
    const graphOnly = { ...broken, elements: broken.elements.slice(0, 3) };
    const b = await call('POST', '/api/flows/validate', { token: tokens.viewer, json: graphOnly });
    const problems = (b.body as { problems: Array<{ code: string; elementId: string | null; path: string }> }).problems;
    expect(problems).toContainEqual(
      expect.objectContaining({ code: 'next.unknownTarget', elementId: 'call', path: 'elements[0].next.answered' }),
    );
    expect(problems.map((p) => p.code)).toContain('element.unreachable');
  });
  it('what is not a flow at all (a string, an array) is an invalid flow too, not a server error', async () => {
    for (const json of ['hello', [1, 2], 42]) {
      const a = await call('POST', '/api/flows/validate', { token: tokens.viewer, json });
      expect(a.status).toBe(200);
      expect((a.body as { valid: boolean }).valid).toBe(false);
    }
  });
  it('invalid JSON is 400, another content type 415, a body over 1 MB 413: JSON errors without a stack', async () => {
    const bad = await call('POST', '/api/flows/validate', { token: tokens.viewer, raw: '{"id": "x",' });
    expect(bad.status).toBe(400);
    expect(errorCode(bad)).toBe('bad_request');
    expect(bad.text).not.toMatch(/\bat \S+ \(|node_modules|stack/);
    const text = await call('POST', '/api/flows/validate', {
      token: tokens.viewer,
      raw: 'hi',
      contentType: 'text/plain',
    });
    expect(text.status).toBe(415);
    expect(errorCode(text)).toBe('unsupported_media_type');
    const big = await call('POST', '/api/flows/validate', {
      token: tokens.viewer,
      raw: JSON.stringify({ ...apiFlow(1), padding: 'x'.repeat(1024 * 1024 + 1) }),
    });
    expect(big.status).toBe(413);
    expect(errorCode(big)).toBe('payload_too_large');
  });
  it('adds the warnings of a provider named in ?provider=, and refuses one that is not a provider', async () => {
    const bad = await call('POST', '/api/flows/validate?provider=carrier-pigeon', {
      token: tokens.viewer,
      json: reminder,
    });
    expect(bad.status).toBe(400);
    expect(errorCode(bad)).toBe('bad_request');
    const ok = await call('POST', '/api/flows/validate?provider=infobip', { token: tokens.viewer, json: reminder });
    expect(ok.status).toBe(200);
  });
});

describe('publishing and reading flows', () => {
  it('an operator publishes a version (201), the same again is unchanged (200), other content is a conflict (409)', async () => {
    const first = await call('POST', '/api/flows', { token: tokens.operator, json: apiFlow(1) });
    expect(first.status, first.text).toBe(201);
    expect(first.body).toMatchObject({ id: 'api-test', version: 1, created: true });
    const again = await call('POST', '/api/flows', { token: tokens.operator, json: apiFlow(1) });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ created: false });
    const changed = await call('POST', '/api/flows', { token: tokens.admin, json: apiFlow(1, 'Other words') });
    expect(changed.status).toBe(409);
    expect(errorCode(changed)).toBe('flow.versionConflict');
    const v2 = await call('POST', '/api/flows', { token: tokens.admin, json: apiFlow(2, 'Other words') });
    expect(v2.status).toBe(201);
  });
  it('an invalid flow is not published: 422 with its problems', async () => {
    const flow = apiFlow(3);
    const a = await call('POST', '/api/flows', {
      token: tokens.operator,
      json: { ...flow, elements: [{ ...flow.elements[0], next: { answered: 'nowhere' } }, ...flow.elements.slice(1)] },
    });
    expect(a.status).toBe(422);
    expect(errorCode(a)).toBe('flow.invalid');
    expect((a.body as { problems: Array<{ code: string }> }).problems.map((p) => p.code)).toContain(
      'next.unknownTarget',
    );
    const missingAudio = {
      ...flow,
      elements: [
        flow.elements[0],
        { id: 'hello', type: 'play', audio: { file: 'nope.wav' }, next: { played: 'end' } },
        flow.elements[2],
      ],
    };
    const b = await call('POST', '/api/flows', { token: tokens.operator, json: missingAudio });
    expect(b.status).toBe(422);
    expect((b.body as { problems: Array<{ code: string }> }).problems.map((p) => p.code)).toContain(
      'audio.fileMissing',
    );
    const list = await call('GET', '/api/flows', { token: tokens.viewer });
    expect(list.body).toMatchObject({ flows: [{ id: 'api-test', latest: 2 }] });
  });
  it('lists flows, reads a version, and 404s one that is not published; a bad id or version is 400', async () => {
    const list = await call('GET', '/api/flows', { token: tokens.viewer });
    expect(list.status).toBe(200);
    expect(list.body).toEqual({ flows: [{ id: 'api-test', latest: 2 }] });
    const v1 = await call('GET', '/api/flows/api-test/versions/1', { token: tokens.viewer });
    expect(v1.status).toBe(200);
    expect(v1.body).toMatchObject({ id: 'api-test', version: 1, start: 'call' });
    const missing = await call('GET', '/api/flows/api-test/versions/9', { token: tokens.viewer });
    expect(missing.status).toBe(404);
    expect(errorCode(missing)).toBe('not_found');
    for (const path of [
      '/api/flows/API_TEST/versions/1',
      '/api/flows/api-test/versions/zero',
      '/api/flows/api-test/versions/0',
    ]) {
      const a = await call('GET', path, { token: tokens.viewer });
      expect(a.status, path).toBe(400);
      expect(errorCode(a)).toBe('bad_request');
    }
  });
  it('the graph of a version: Mermaid text, and nodes and edges with branch and session effect', async () => {
    const a = await call('GET', '/api/flows/api-test/versions/1/graph', { token: tokens.viewer });
    expect(a.status).toBe(200);
    const body = a.body as {
      mermaid: string;
      nodes: Array<{ id: string; type: string }>;
      edges: Array<{ from: string; to: string; branch: string; session: string }>;
    };
    expect(body.mermaid).toMatch(/^flowchart/);
    expect(body.nodes).toContainEqual({ id: 'call', type: 'startOutgoingCall' });
    expect(body.edges).toContainEqual({ from: 'call', to: 'hello', branch: 'answered', session: 'start' });
    expect(body.edges).toContainEqual({ from: 'hello', to: 'end', branch: 'played', session: 'keep' });
    expect((await call('GET', '/api/flows/api-test/versions/7/graph', { token: tokens.viewer })).status).toBe(404);
  });
  it('the audit log (admin) names who published what, newest first', async () => {
    const a = await call('GET', '/api/audit?limit=10', { token: tokens.admin });
    expect(a.status).toBe(200);
    const entries = (a.body as { entries: Array<Record<string, unknown>> }).entries;
    const publishes = entries.filter((e) => e.action === 'flow.publish');
    expect(publishes[0]).toMatchObject({
      actor: { name: 'test-admin', role: 'admin' },
      target: { flowId: 'api-test', version: 2 },
      outcome: 'published',
    });
    expect(publishes).toContainEqual(
      expect.objectContaining({
        actor: expect.objectContaining({ name: 'test-operator', role: 'operator' }),
        outcome: 'unchanged',
      }),
    );
    expect(typeof publishes[0]?.time).toBe('string');
    expect((await call('GET', '/api/audit?limit=0', { token: tokens.admin })).status).toBe(400);
  });
});

describe('GET /api/openapi.json', () => {
  it('is an OpenAPI 3.1 document, served without a token, listing every route with bearer or cookie security', async () => {
    const a = await call('GET', '/api/openapi.json');
    expect(a.status).toBe(200);
    const doc = a.body as {
      openapi: string;
      info: { title: string; version: string };
      paths: Record<string, Record<string, { responses: Record<string, unknown>; requestBody?: unknown }>>;
      components: { securitySchemes: Record<string, unknown> };
      security: unknown[];
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.title).toBeTruthy();
    expect(doc.components.securitySchemes.bearer).toEqual({ type: 'http', scheme: 'bearer' });
    // Bearer or the console's session cookie (test/integration/api-auth.test.ts).
    expect(doc.security).toEqual([{ bearer: [] }, { session: [] }]);
    // The other route groups are tested in their own files.
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/api/audit',
        '/api/flows',
        '/api/flows/validate',
        '/api/flows/{id}/versions/{version}',
        '/api/flows/{id}/versions/{version}/graph',
        '/api/session',
      ]),
    );
    // Hidden: the document itself and the catch-all that answers 404 for unknown /api paths.
    expect(Object.keys(doc.paths).filter((p) => p === '/api/openapi.json' || p.includes('*'))).toEqual([]);
    expect(Object.keys(doc.paths['/api/flows'] ?? {}).sort()).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths['/api/flows']?.post?.responses ?? {})).toEqual(
      expect.arrayContaining(['200', '201', '401', '403', '409', '413', '422']),
    );
    expect(doc.paths['/api/flows/validate']?.post?.requestBody).toBeDefined();
    // The schemas come from zod: the validate answer's problems carry the validator's fields.
    expect(JSON.stringify(doc.paths['/api/flows/validate']?.post?.responses['200'])).toContain('elementId');
  });
});

// Each CLI run starts a Node process (seconds on a busy machine).
describe('dialflow tokens', { timeout: 120_000 }, () => {
  it('create → use → list (never the token) → revoke → 401', async () => {
    const created = cli(['tokens', 'create', '--role', 'viewer', '--name', 'ci bot', '--json']);
    expect(created.status, created.stderr).toBe(0);
    const { token, name, role, id } = JSON.parse(created.stdout) as {
      token: string;
      name: string;
      role: string;
      id: string;
    };
    expect({ name, role }).toEqual({ name: 'ci bot', role: 'viewer' });
    expect((await call('GET', '/api/flows', { token })).status).toBe(200);

    const listed = cli(['tokens', 'list', '--json']);
    expect(listed.status, listed.stderr).toBe(0);
    expect(listed.stdout).not.toContain(token.split('_')[2]);
    expect(listed.stdout).not.toContain('hash');
    expect(JSON.parse(listed.stdout)).toContainEqual({
      id,
      name: 'ci bot',
      role: 'viewer',
      created: expect.any(String),
    });

    const revoked = cli(['tokens', 'revoke', id]);
    expect(revoked.status, revoked.stderr).toBe(0);
    const after = await call('GET', '/api/flows', { token });
    expect(after.status).toBe(401);
    expect(errorCode(after)).toBe('unauthorized');
    expect(cli(['tokens', 'revoke', id]).status).toBe(1);

    const audit = await call('GET', '/api/audit', { token: tokens.admin });
    const actions = (audit.body as { entries: Array<{ action: string; target: Record<string, unknown> }> }).entries
      .filter((e) => e.target.tokenId === id)
      .map((e) => e.action);
    expect(actions).toEqual(['token.revoke', 'token.create']);
  });
  it('create without --role, or with a role that is not one, is a usage error (exit 2)', () => {
    expect(cli(['tokens', 'create']).status).toBe(2);
    const bad = cli(['tokens', 'create', '--role', 'root']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('viewer');
  });
});

describe('dialflow api', { timeout: 120_000 }, () => {
  it('serves on 127.0.0.1 by default and stops on SIGTERM', async () => {
    const port = await freePort();
    // The process connects to Temporal too (calls, campaigns) with the workers' payload key.
    const { address } = await stack.startTemporal({ port: await freePort(), namespace: 'default' });
    const argv = [CLI_BIN, 'api', '--api-port', String(port), '--nats', nats.url, '--temporal', address];
    const proc = spawn(process.execPath, argv, {
      env: {
        ...process.env,
        ...nats.env('cli'),
        DIALFLOW_LOG_LEVEL: 'warn',
        DIALFLOW_PAYLOAD_KEY: randomBytes(32).toString('base64'),
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 20_000;
      while (!stderr.includes('dialflow API on') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(stderr).toContain(`dialflow API on http://127.0.0.1:${port}`);
      const res = await fetch(`http://127.0.0.1:${port}/api/openapi.json`);
      expect(res.status).toBe(200);
      const flows = await fetch(`http://127.0.0.1:${port}/api/flows`, {
        headers: { authorization: `Bearer ${tokens.viewer}` },
      });
      expect(flows.status).toBe(200);
    } finally {
      proc.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
