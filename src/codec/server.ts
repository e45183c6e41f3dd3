// A codec server (Temporal's Codec Server protocol) so the Web UI and `temporal workflow show
// --codec-endpoint` can show encrypted payloads decoded: POST /decode and /encode (also under a
// namespace prefix, /{namespace}/decode), JSON bodies `{ payloads: [{ metadata: {k: base64}, data:
// base64 }] }`.
//
// It hands out clear call data (collected digits included), so every request must pass:
// - Host: the server's own host:port (or a configured name). A page on another site that rebinds
//   its DNS name to this address still sends its own name as Host, so DNS rebinding gets 403.
// - Origin: absent (CLI, curl) or one of the configured Web UI origins; any other Origin gets 403,
//   not merely a response without CORS headers (the request itself must not run).
// - Token: `Authorization: Bearer <token>` (the Temporal CLI: `--codec-auth "Bearer <token>"`), or
//   the token as a path prefix, `/token/<token>/decode`. The prefix is for the Web UI: its codec
//   settings can only forward an OIDC access token (and only to an https endpoint) or cookies, so
//   `temporal server start-dev --ui-codec-endpoint http://host:port/token/<token>` is the one way to
//   give it a secret; the UI appends /decode to whatever endpoint it has.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { ValueError, type Payload, type PayloadCodec } from '@temporalio/common';
import { z } from 'zod';
import { decodeReadable } from './encryption.js';
import { parseCodecToken, tokenMatches } from './token.js';

const jsonPayload = z.object({ metadata: z.record(z.string(), z.string()).optional(), data: z.string().optional() });
const requestBody = z.object({ payloads: z.array(jsonPayload) });
type JsonPayload = z.infer<typeof jsonPayload>;

const fromJson = (p: JsonPayload): Payload => ({
  metadata: Object.fromEntries(
    Object.entries(p.metadata ?? {}).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))]),
  ),
  data: new Uint8Array(Buffer.from(p.data ?? '', 'base64')),
});
const toJson = (p: Payload): JsonPayload => ({
  metadata: Object.fromEntries(
    Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')]),
  ),
  data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
});

const MAX_BODY = 8 * 1024 * 1024;
/** The path prefix that carries the token for callers that cannot send a header (the Web UI). */
export const TOKEN_PATH_PREFIX = '/token/';
// [/token/{token}][/{namespace}]/(encode|decode)
const ROUTE = /^(?:\/token\/([^/]+))?(?:\/[^/]+)?\/(encode|decode)$/;

class BodyTooLargeError extends RangeError {
  override readonly name = 'BodyTooLargeError';
}

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw new BodyTooLargeError(`request body over ${MAX_BODY} bytes`);
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export interface CodecServerOptions {
  codec: PayloadCodec;
  host: string;
  port: number;
  /** Web UI origins (scheme://host:port) allowed to call it from a browser; CORS is answered for these only. */
  origins: string[];
  /** The bearer token every request must present (see token.ts). */
  token: string;
  /** Further names clients reach it by (a reverse proxy's host, with or without port); the listen address is always allowed. */
  hosts?: string[];
}

export interface CodecServer {
  /** Base URL: give it to the Temporal CLI with `--codec-endpoint` plus `--codec-auth "Bearer <token>"`. */
  url: string;
  /** The endpoint for the Web UI (`--ui-codec-endpoint`): the base URL with the token as a path prefix. */
  uiEndpoint: string;
  close(): Promise<void>;
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];
const isLoopback = (host: string) =>
  host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
const hostPort = (host: string, port: number) => `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;

/** The Host header values this server answers: its own address, loopback aliases if bound there, and configured names. */
export function allowedHosts(host: string, port: number, extra: string[] = []): Set<string> {
  const allowed = new Set<string>();
  // A wildcard bind has no name of its own: only configured names (and loopback) identify it.
  if (host !== '0.0.0.0' && host !== '::') allowed.add(hostPort(host, port).toLowerCase());
  if (isLoopback(host) || host === '0.0.0.0' || host === '::')
    for (const n of LOOPBACK_NAMES) allowed.add(`${n}:${port}`);
  for (const raw of extra) {
    const h = raw.trim().toLowerCase();
    if (!h) continue;
    allowed.add(h);
    // A bare name also matches with the listen port (direct access); with a port it is taken as is.
    if (!/:\d+$/.test(h) || (h.startsWith('[') && h.endsWith(']'))) allowed.add(`${h}:${port}`);
  }
  return allowed;
}

function normalizeOrigin(origin: string): string {
  return origin.trim().replace(/\/+$/, '').toLowerCase();
}

export async function startCodecServer(o: CodecServerOptions): Promise<CodecServer> {
  const token = parseCodecToken(o.token, 'codec server token');
  const origins = new Set(o.origins.map(normalizeOrigin));
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      // Only reached if writing the response itself failed; the connection is beyond saving.
      res.destroy(err as Error);
    });
  });
  let hosts = allowedHosts(o.host, o.port, o.hosts);

  const refuse = (res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}) => {
    res
      .writeHead(status, {
        'content-type': 'text/plain; charset=utf-8',
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        ...headers,
      })
      .end(`${message}\n`);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const host = (req.headers.host ?? '').toLowerCase();
    if (!hosts.has(host))
      return refuse(res, 403, `Host ${JSON.stringify(req.headers.host ?? '')} is not this codec server's`);
    const origin = req.headers.origin;
    if (origin !== undefined) {
      if (!origins.has(normalizeOrigin(origin)))
        return refuse(res, 403, `Origin ${JSON.stringify(origin)} is not allowed`);
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('vary', 'origin');
    }
    const route = ROUTE.exec((req.url ?? '').split('?')[0] ?? '');
    if (!route) return refuse(res, 404, 'not found: POST /decode or /encode');
    if (req.method === 'OPTIONS') {
      // A CORS preflight never carries credentials, so it is answered without the token; it
      // reveals nothing and the request that follows needs the token.
      res.writeHead(204, {
        'access-control-allow-methods': 'POST, OPTIONS',
        'access-control-allow-headers': 'content-type, x-namespace, authorization',
        'access-control-max-age': '600',
        ...(origin && req.headers['access-control-request-private-network'] === 'true'
          ? { 'access-control-allow-private-network': 'true' }
          : {}),
      });
      res.end();
      return;
    }
    const presented: string[] = [];
    if (route[1] !== undefined) presented.push(decodeURIComponent(route[1]));
    const auth = req.headers.authorization;
    if (auth !== undefined) presented.push(/^Bearer\s+(.+)$/i.exec(auth.trim())?.[1] ?? '');
    // Every token given must be right (a wrong header next to a right path is still a wrong caller).
    if (presented.length === 0 || !presented.every((p) => tokenMatches(p, token))) {
      return refuse(
        res,
        401,
        presented.length === 0 ? 'a token is required: Authorization: Bearer <token>' : 'wrong token',
        { 'www-authenticate': 'Bearer realm="dialflow codec server"' },
      );
    }
    if (req.method !== 'POST') return refuse(res, 405, 'POST only', { allow: 'POST, OPTIONS' });
    let text: string;
    try {
      text = await body(req);
    } catch (err) {
      if (err instanceof BodyTooLargeError) return refuse(res, 413, err.message);
      throw err;
    }
    let parsed: z.infer<typeof requestBody>;
    try {
      const r = requestBody.safeParse(JSON.parse(text));
      if (!r.success)
        return refuse(res, 400, 'expected { "payloads": [{ "metadata": { key: base64 }, "data": base64 }] }');
      parsed = r.data;
    } catch (err) {
      if (err instanceof SyntaxError) return refuse(res, 400, `invalid JSON: ${err.message}`);
      throw err;
    }
    const input = parsed.payloads.map(fromJson);
    let out: Payload[];
    try {
      // Plain payloads are shown as they are (the UI sends every payload it displays).
      out = route[2] === 'decode' ? await decodeReadable(input, o.codec) : await o.codec.encode(input);
    } catch (err) {
      // The codec's own refusal (a key this server lacks, altered data): the caller's input.
      if (err instanceof ValueError) return refuse(res, 422, err.message);
      throw err;
    }
    res
      .writeHead(200, {
        'content-type': 'application/json',
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
      })
      .end(JSON.stringify({ payloads: out.map(toJson) }));
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.port;
  // Port 0 asked for a free port: the Host check must name the real one.
  if (port !== o.port) hosts = allowedHosts(o.host, port, o.hosts);
  const url = `http://${hostPort(o.host, port)}`;
  return {
    url,
    uiEndpoint: `${url}${TOKEN_PATH_PREFIX}${token}`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
