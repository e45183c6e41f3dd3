// A codec server (Temporal's Codec Server protocol) so the Web UI and `temporal workflow show
// --codec-endpoint` can show encrypted payloads decoded: POST /decode and /encode (also under a
// namespace prefix, /{namespace}/decode), JSON bodies `{ payloads: [{ metadata: {k: base64}, data:
// base64 }] }`. It decrypts anything it is sent: bind it to loopback or put it behind auth.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Payload, PayloadCodec } from '@temporalio/common';

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

const fromJson = (p: JsonPayload): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))])),
  data: new Uint8Array(Buffer.from(p.data ?? '', 'base64')),
});
const toJson = (p: Payload): JsonPayload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')])),
  data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
});

const MAX_BODY = 8 * 1024 * 1024;

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw new RangeError('request body too large');
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function startCodecServer(o: { codec: PayloadCodec; host: string; port: number; origins: string[] }): Promise<{ url: string; close: () => Promise<void> }> {
  const cors = (req: IncomingMessage, res: ServerResponse) => {
    const origin = req.headers.origin;
    if (origin && o.origins.includes(origin)) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('access-control-allow-methods', 'POST, OPTIONS');
      res.setHeader('access-control-allow-headers', 'content-type, x-namespace, authorization');
      res.setHeader('vary', 'origin');
    }
  };
  const server = createServer((req, res) => {
    cors(req, res);
    const route = /^(?:\/[^/]+)?\/(encode|decode)$/.exec((req.url ?? '').split('?')[0] ?? '')?.[1];
    if (!route) {
      res.writeHead(404).end();
      return;
    }
    if (req.method === 'OPTIONS') {
      res.writeHead(204).end();
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST, OPTIONS' }).end();
      return;
    }
    body(req)
      .then(async (text) => {
        const parsed = JSON.parse(text) as { payloads?: JsonPayload[] };
        if (!Array.isArray(parsed.payloads)) throw new TypeError('expected { "payloads": [...] }');
        const input = parsed.payloads.map(fromJson);
        const out = route === 'decode' ? await o.codec.decode(input) : await o.codec.encode(input);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ payloads: out.map(toJson) }));
      })
      .catch((err: unknown) => {
        res.writeHead(400, { 'content-type': 'text/plain' }).end((err as Error).message);
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.port;
  return { url: `http://${o.host}:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}
