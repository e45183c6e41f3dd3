// The codec server over real HTTP: it hands out clear digits, so only holders of the token, on its
// own Host, from no origin or the Web UI's, get anything. Then the real clients: the Temporal CLI
// with --codec-auth, and the Web UI of `temporal server start-dev` given the token in its endpoint.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { EncryptionCodec, ENCRYPTED_ENCODING } from '../../src/codec/encryption.js';
import { startCodecServer, type CodecServer } from '../../src/codec/server.js';
import { generateCodecToken } from '../../src/codec/token.js';
import { Stack, freePort } from '../../src/dev/stack.js';
import { toolPaths } from '../../src/config/tools.js';

const UI = 'http://127.0.0.1:8233';
const codec = new EncryptionCodec(new Uint8Array(randomBytes(32)));
const token = generateCodecToken();
const secret = { type: 'DTMF_CAPTURED', properties: { dtmf: '4321' } };

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request with full control of Host and Origin (fetch would not let a test set Host). */
function send(
  url: string,
  o: { method?: string; headers?: Record<string, string>; body?: string; noHost?: boolean } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: o.method ?? 'POST',
        headers: { 'content-type': 'application/json', ...o.headers },
        ...(o.noHost ? { setHost: false } : {}),
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.once('error', reject);
    req.end(o.body);
  });
}

async function encryptedBody(): Promise<string> {
  const [enc] = await codec.encode([defaultPayloadConverter.toPayload(secret)]);
  return JSON.stringify({
    payloads: [
      {
        metadata: Object.fromEntries(
          Object.entries(enc!.metadata!).map(([k, v]) => [k, Buffer.from(v!).toString('base64')]),
        ),
        data: Buffer.from(enc!.data!).toString('base64'),
      },
    ],
  });
}

const decodedOf = (r: Reply) =>
  JSON.parse(
    Buffer.from((JSON.parse(r.body) as { payloads: Array<{ data: string }> }).payloads[0]!.data, 'base64').toString(),
  ) as unknown;

let server: CodecServer;
let body: string;
beforeAll(async () => {
  server = await startCodecServer({ codec, host: '127.0.0.1', port: 0, origins: [UI, 'http://localhost:8233'], token });
  body = await encryptedBody();
});
afterAll(async () => {
  await server?.close();
});

describe('codec server: token, Host and Origin', () => {
  const bearer = { authorization: `Bearer ${token}` };

  it('no token → 401, wrong token → 401 (header or path), and nothing decoded', async () => {
    const none = await send(`${server.url}/decode`, { body });
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Bearer /);
    expect(none.body).not.toContain('4321');
    expect(
      (await send(`${server.url}/decode`, { body, headers: { authorization: `Bearer ${generateCodecToken()}` } }))
        .status,
    ).toBe(401);
    expect((await send(`${server.url}/decode`, { body, headers: { authorization: token } })).status).toBe(401);
    expect((await send(`${server.url}/token/${generateCodecToken()}/decode`, { body })).status).toBe(401);
    // A right path token does not excuse a wrong header.
    expect(
      (await send(`${server.uiEndpoint}/decode`, { body, headers: { authorization: 'Bearer nope' } })).status,
    ).toBe(401);
  });

  it('the right token decodes: as a bearer header (Temporal CLI), as a path prefix (Web UI), with or without a namespace', async () => {
    for (const [url, headers] of [
      [`${server.url}/decode`, bearer],
      [`${server.url}/default/decode`, bearer],
      [`${server.uiEndpoint}/decode`, {}],
      [`${server.uiEndpoint}/default/decode`, { 'x-namespace': 'default' }],
    ] as const) {
      const r = await send(url, { body, headers });
      expect(r.status, url).toBe(200);
      expect(r.headers['cache-control']).toBe('no-store');
      expect(decodedOf(r)).toEqual(secret);
    }
    // Encode round-trips.
    const plain = JSON.stringify({
      payloads: [
        {
          metadata: { encoding: Buffer.from('json/plain').toString('base64') },
          data: Buffer.from('"x"').toString('base64'),
        },
      ],
    });
    const enc = JSON.parse((await send(`${server.url}/encode`, { body: plain, headers: bearer })).body) as {
      payloads: Array<{ metadata: { encoding: string } }>;
    };
    expect(Buffer.from(enc.payloads[0]!.metadata.encoding, 'base64').toString()).toBe(ENCRYPTED_ENCODING);
  });

  it('a Host that is not its own → 403 even with the token (DNS rebinding); localhost aliases are its own', async () => {
    const port = new URL(server.url).port;
    for (const host of ['attacker.example', `attacker.example:${port}`, `127.0.0.1:${Number(port) + 1}`]) {
      const r = await send(`${server.url}/decode`, { body, headers: { ...bearer, host } });
      expect(r.status, host).toBe(403);
      expect(r.body).not.toContain('4321');
    }
    // No Host at all: Node's HTTP server itself refuses an HTTP/1.1 request without one (400).
    const noHost = await send(`${server.url}/decode`, { body, headers: bearer, noHost: true });
    expect([400, 403]).toContain(noHost.status);
    expect(noHost.body).not.toContain('4321');
    expect(
      (await send(`${server.url}/decode`, { body, headers: { ...bearer, host: `localhost:${port}` } })).status,
    ).toBe(200);
  });

  it('a foreign Origin → 403 even with the token, and gets no CORS headers; the UI origin gets them', async () => {
    const foreign = await send(`${server.url}/decode`, { body, headers: { ...bearer, origin: 'http://evil.example' } });
    expect(foreign.status).toBe(403);
    expect(foreign.headers['access-control-allow-origin']).toBeUndefined();
    expect(foreign.body).not.toContain('4321');
    expect((await send(`${server.url}/decode`, { body, headers: { ...bearer, origin: 'null' } })).status).toBe(403);
    const ui = await send(`${server.uiEndpoint}/decode`, { body, headers: { origin: UI, 'x-namespace': 'default' } });
    expect(ui.status).toBe(200);
    expect(ui.headers['access-control-allow-origin']).toBe(UI);
    expect(ui.headers.vary).toBe('origin');
    expect(decodedOf(ui)).toEqual(secret);
    // The UI origin still needs the token.
    expect((await send(`${server.url}/decode`, { body, headers: { origin: UI } })).status).toBe(401);
  });

  it('OPTIONS preflight: allowed for the UI origin without credentials (browsers send none), refused for others', async () => {
    const pre = await send(`${server.uiEndpoint}/default/decode`, {
      method: 'OPTIONS',
      headers: {
        origin: UI,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,x-namespace',
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe(UI);
    expect(pre.headers['access-control-allow-methods']).toContain('POST');
    expect(pre.headers['access-control-allow-headers']).toContain('x-namespace');
    const evil = await send(`${server.url}/decode`, {
      method: 'OPTIONS',
      headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(evil.status).toBe(403);
    expect(evil.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('other methods, paths and bodies', async () => {
    expect((await send(`${server.url}/decode`, { method: 'GET', headers: bearer })).status).toBe(405);
    expect((await send(`${server.url}/keys`, { headers: bearer })).status).toBe(404);
    expect((await send(`${server.url}/decode`, { body: 'nope', headers: bearer })).status).toBe(400);
    expect((await send(`${server.url}/decode`, { body: '{"payloads":[{"data":1}]}', headers: bearer })).status).toBe(
      400,
    );
    // A payload of another key: the codec's refusal, not a crash.
    const [foreign] = await new EncryptionCodec(new Uint8Array(randomBytes(32))).encode([
      defaultPayloadConverter.toPayload(secret),
    ]);
    const other = JSON.stringify({
      payloads: [
        {
          metadata: Object.fromEntries(
            Object.entries(foreign!.metadata!).map(([k, v]) => [k, Buffer.from(v!).toString('base64')]),
          ),
          data: Buffer.from(foreign!.data!).toString('base64'),
        },
      ],
    });
    expect((await send(`${server.url}/decode`, { body: other, headers: bearer })).status).toBe(422);
  });
});

describe('the real clients', () => {
  let stack: Stack;
  let dir: string;
  let address: string;
  let uiUrl: string;
  let uiServer: CodecServer;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dialflow-codec-'));
    stack = new Stack(dir);
    const uiPort = await freePort();
    uiUrl = `http://127.0.0.1:${uiPort}`;
    // As `dialflow dev` wires it: the UI's origin allowed, the token in the UI's codec endpoint.
    uiServer = await startCodecServer({ codec, host: '127.0.0.1', port: 0, origins: [uiUrl], token });
    const temporal = await stack.startTemporal({
      port: await freePort(),
      ui: true,
      uiPort,
      uiCodecEndpoint: uiServer.uiEndpoint,
    });
    address = temporal.address;
  });
  afterAll(async () => {
    await stack?.stop();
    await uiServer?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('temporal workflow show decodes with --codec-auth "Bearer <token>", and shows ciphertext without it', async () => {
    const connection = await Connection.connect({ address });
    try {
      const client = new Client({ connection, dataConverter: { payloadCodecs: [codec] } });
      // No worker polls this queue: the workflow only has to exist, with its encrypted input.
      const handle = await client.workflow.start('outboundCall', {
        taskQueue: 'codec-it-nobody',
        workflowId: `codec-${Date.now()}`,
        args: [secret],
      });
      // Asynchronously: the codec server it calls runs in this process.
      const show = (extra: string[]) =>
        new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
          execFile(
            toolPaths().temporal,
            [
              'workflow',
              'show',
              '--address',
              address,
              '-w',
              handle.workflowId,
              '--output',
              'json',
              '--codec-endpoint',
              uiServer.url,
              ...extra,
            ],
            { encoding: 'utf8', timeout: 30_000 },
            (err, stdout, stderr) => {
              resolve({ status: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
            },
          );
        });
      // The JSON history keeps payloads in base64: look at the start event's input.
      const input = (stdout: string) => {
        const h = JSON.parse(stdout) as {
          events: Array<{
            workflowExecutionStartedEventAttributes?: {
              input: { payloads: Array<{ metadata: { encoding: string }; data: string }> };
            };
          }>;
        };
        const p = h.events[0]?.workflowExecutionStartedEventAttributes?.input.payloads[0];
        return {
          encoding: Buffer.from(p?.metadata.encoding ?? '', 'base64').toString(),
          data: Buffer.from(p?.data ?? '', 'base64').toString(),
        };
      };
      const withToken = await show(['--codec-auth', `Bearer ${token}`]);
      expect(withToken.status, withToken.stderr).toBe(0);
      expect(input(withToken.stdout)).toEqual({ encoding: 'json/plain', data: JSON.stringify(secret) });
      // Without the token the server answers 401: the CLI retries until its deadline, then fails.
      const without = await show([]);
      expect(without.status).not.toBe(0);
      expect(`${without.stdout}${without.stderr}`).not.toContain('4321');
      await handle.terminate('test over');
    } finally {
      await connection.close();
    }
  }, 60_000);

  it('the Web UI of start-dev gets the endpoint with the token and decodes from its origin', async () => {
    const settings = (await (await fetch(`${uiUrl}/api/v1/settings`)).json()) as {
      Codec?: { Endpoint?: string };
      codec?: { endpoint?: string };
    };
    const endpoint = settings.Codec?.Endpoint ?? settings.codec?.endpoint;
    expect(endpoint).toBe(uiServer.uiEndpoint);
    // What the UI's browser code does: POST {endpoint}/decode with X-Namespace from the UI's origin.
    const r = await send(`${endpoint}/decode`, { body, headers: { origin: uiUrl, 'x-namespace': 'default' } });
    expect(r.status).toBe(200);
    expect(r.headers['access-control-allow-origin']).toBe(uiUrl);
    expect(decodedOf(r)).toEqual(secret);
  });
});
