// httpRequest against real HTTP servers: redirects are checked hop by hop, the connection goes to
// the address that was checked, and an endless body is cut at the size limit with bounded memory;
// then the same on the real stack (worker, simulator), where a blocked request takes onError.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { LookupAddress } from 'node:dns';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { DefaultLogger } from '@temporalio/worker';
import { createActivities, type ActivityDeps, type HttpRequestInput } from '../../src/activities/index.js';
import { DEFAULT_MAX_RESPONSE_BYTES, httpPolicy, type HttpPolicy } from '../../src/activities/http.js';
import { startCall } from '../../src/client/calls.js';
import { parseFlow } from '../../src/flow/validate.js';
import { startEphemeralStack, type EphemeralStack } from '../../src/dev/ephemeral.js';

/** The test's HTTP service: an echo, redirects, a declared-huge body and an endless one. */
const hits: string[] = [];
const chunk = Buffer.alloc(64 * 1024, 'x');
const server: Server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  hits.push(url.pathname);
  const body: Buffer[] = [];
  req.on('data', (c: Buffer) => body.push(c));
  req.on('end', () => {
    if (url.pathname === '/echo') {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ method: req.method, headers: req.headers, body: Buffer.concat(body).toString('utf8') }));
    } else if (url.pathname === '/redirect') {
      res
        .writeHead(Number(url.searchParams.get('status') ?? 302), { location: url.searchParams.get('to') ?? '/' })
        .end();
    } else if (url.pathname.startsWith('/loop/')) {
      res.writeHead(302, { location: `/loop/${Number(url.pathname.slice(6)) + 1}` }).end();
    } else if (url.pathname === '/hang') {
      // Never answers: the element's timeout must end the attempt.
    } else if (url.pathname === '/declared-huge') {
      res.writeHead(200, { 'content-length': String(2 * 1024 ** 3) }).write(chunk);
    } else if (url.pathname === '/endless') {
      // Writes as fast as the client reads, forever: only the client can end it.
      res.writeHead(200, { 'content-type': 'text/plain' });
      let open = true;
      res.on('close', () => (open = false));
      const pump = () => {
        while (open && res.write(chunk));
      };
      res.on('drain', pump);
      pump();
    } else {
      res.writeHead(404).end('{}');
    }
  });
});
let port = 0;
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as { port: number }).port;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

function table(answers: Record<string, string[]>, calls?: string[]): HttpPolicy['resolve'] {
  return async (host) => {
    calls?.push(host);
    return (answers[host] ?? []).map((address): LookupAddress => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
}

/** The httpRequest activity alone, under `policy`; the other dependencies are never touched. */
function activity(policy: HttpPolicy, attempt = 1) {
  const { httpRequest } = createActivities({ http: policy } as unknown as ActivityDeps);
  // Expected failures are asserted here, not logged.
  const quiet = { logger: new DefaultLogger('ERROR', () => undefined) };
  return (req: Partial<HttpRequestInput> & { url: string }) =>
    new MockActivityEnvironment({ attempt }, quiet).run(httpRequest, {
      method: 'GET',
      headers: {},
      timeoutMs: 10_000,
      retries: 0,
      ...req,
    });
}

async function failure(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof ApplicationFailure)) throw new Error(`expected an ApplicationFailure, got ${String(err)}`);
  return err;
}

describe('httpRequest against local servers', () => {
  const local = httpPolicy({
    allow: '127.0.0.1',
    resolve: table({ 'other-origin.test': ['127.0.0.1'], 'private.test': ['10.1.1.1'] }),
  });
  const run = activity(local);

  it('without an allowlist entry, the loopback server is refused and never contacted', async () => {
    const before = hits.length;
    const f = await failure(activity(httpPolicy())({ url: `http://127.0.0.1:${port}/echo`, retries: 3 }));
    expect(f).toMatchObject({ type: 'BlockedAddressError', nonRetryable: true });
    expect(f.message).toContain('127.0.0.1 is a loopback address');
    expect(hits.length).toBe(before);
  });

  it('follows a redirect to an allowed place; a redirect to a blocked one is refused before connecting', async () => {
    const ok = await run({ url: `http://127.0.0.1:${port}/redirect?to=/echo` });
    expect(ok).toMatchObject({ ok: true, data: { status: 200, body: { method: 'GET' } } });
    for (const [to, reason] of [
      ['http://169.254.169.254/latest/meta-data/iam/security-credentials/', 'cloud metadata address'],
      ['http://10.0.0.1/', '10.0.0.1 is a private address'],
      [`http://[::1]:${port}/echo`, '::1 is a loopback address'],
      [`http://2130706433:${port}/echo`, ''],
      [`http://private.test:${port}/echo`, 'private.test resolves to 10.1.1.1'],
      ['http://metadata.google.internal/computeMetadata/v1/', 'metadata host'],
    ] as const) {
      // 2130706433 is 127.0.0.1, which this policy allows: the redirect is followed.
      const p = run({ url: `http://127.0.0.1:${port}/redirect?status=307&to=${encodeURIComponent(to)}` });
      if (reason === '') {
        expect(await p).toMatchObject({ ok: true });
        continue;
      }
      const f = await failure(p);
      expect(f.type).toBe('BlockedAddressError');
      expect(f.message).toContain(reason);
    }
    const scheme = await failure(
      run({ url: `http://127.0.0.1:${port}/redirect?to=${encodeURIComponent('file:///etc/passwd')}` }),
    );
    expect(scheme.type).toBe('InvalidUrlError');
  });

  it('stops after 5 redirects without retrying', async () => {
    const before = hits.filter((h) => h.startsWith('/loop/')).length;
    const f = await failure(run({ url: `http://127.0.0.1:${port}/loop/0`, retries: 3 }));
    expect(f).toMatchObject({ type: 'TooManyRedirectsError', nonRetryable: true });
    expect(hits.filter((h) => h.startsWith('/loop/')).length - before).toBe(6);
  });

  it('a 303 after a POST continues as a GET; credentials do not follow to another origin', async () => {
    const see = await run({
      method: 'POST',
      url: `http://127.0.0.1:${port}/redirect?status=303&to=/echo`,
      body: { a: 1 },
    });
    expect(see).toMatchObject({ ok: true, data: { body: { method: 'GET', body: '' } } });
    const kept = await run({
      method: 'POST',
      url: `http://127.0.0.1:${port}/redirect?status=307&to=/echo`,
      body: { a: 1 },
      headers: { authorization: 'Bearer s3cret' },
    });
    expect(kept).toMatchObject({
      ok: true,
      data: { body: { method: 'POST', body: '{"a":1}', headers: { authorization: 'Bearer s3cret' } } },
    });
    const other = await run({
      url: `http://127.0.0.1:${port}/redirect?to=${encodeURIComponent(`http://other-origin.test:${port}/echo`)}`,
      headers: { authorization: 'Bearer s3cret' },
    });
    expect(other).toMatchObject({ ok: true, data: { body: { method: 'GET' } } });
    expect(JSON.stringify(other)).not.toContain('s3cret');
  });

  it('connects to the address it checked: a second DNS answer (a rebind) is never asked for', async () => {
    const calls: string[] = [];
    let n = 0;
    // First answer allowed, every later one a different (blocked) address.
    const rebinding: HttpPolicy['resolve'] = async (host) => {
      calls.push(host);
      return [{ address: n++ === 0 ? '127.0.0.1' : '127.0.0.2', family: 4 }];
    };
    const res = await activity(httpPolicy({ allow: '127.0.0.1', resolve: rebinding }))({
      url: `http://rebind.test:${port}/echo`,
    });
    expect(res).toMatchObject({ ok: true, data: { status: 200, body: { headers: { host: `rebind.test:${port}` } } } });
    expect(calls).toEqual(['rebind.test']);
  });

  it('a timeout stays a transient failure: retried by Temporal while the element has retries, then reported to the flow', async () => {
    const before = hits.filter((h) => h === '/hang').length;
    const req = { url: `http://127.0.0.1:${port}/hang`, timeoutMs: 300, retries: 1 };
    // Attempt 1 of 2: a retryable failure, for the activity's retry policy to try again.
    const first = await failure(activity(local, 1)(req));
    expect(first).toMatchObject({ type: 'HttpRequestFailed', nonRetryable: false });
    expect(first.message).toBe(`GET 127.0.0.1:${port}: timed out after 300 ms`);
    // The last attempt reports it as the result, for the flow's error branch.
    expect(await activity(local, 2)(req)).toEqual({
      ok: false,
      error: `GET 127.0.0.1:${port}: timed out after 300 ms`,
    });
    expect(hits.filter((h) => h === '/hang').length - before).toBe(2);
  });

  it('a declared body over the limit is refused before reading it', async () => {
    const f = await failure(run({ url: `http://127.0.0.1:${port}/declared-huge`, retries: 2 }));
    expect(f).toMatchObject({ type: 'ResponseTooLargeError', nonRetryable: true });
    expect(f.message).toContain(`limit is ${DEFAULT_MAX_RESPONSE_BYTES}`);
  });

  it('an endless body is cut at the limit: the activity fails at once and memory stays flat', async () => {
    const before = hits.filter((h) => h === '/endless').length;
    const base = process.memoryUsage().rss;
    let peak = base;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
    const started = Date.now();
    let f: ApplicationFailure;
    try {
      f = await failure(run({ url: `http://127.0.0.1:${port}/endless`, timeoutMs: 20_000, retries: 3 }));
    } finally {
      clearInterval(sampler);
    }
    const ms = Date.now() - started;
    const growthMb = (peak - base) / 1e6;
    console.log(
      `endless body: failed after ${ms} ms, RSS ${Math.round(base / 1e6)} → peak ${Math.round(peak / 1e6)} MB (+${growthMb.toFixed(1)} MB)`,
    );
    expect(f).toMatchObject({ type: 'ResponseTooLargeError', nonRetryable: true });
    expect(ms).toBeLessThan(5_000);
    expect(growthMb).toBeLessThan(32);
    // Not retried: no attempt could end differently.
    expect(hits.filter((h) => h === '/endless').length - before).toBe(1);
  });
});

describe('httpRequest on the real stack', () => {
  let t: EphemeralStack;
  beforeAll(async () => {
    t = await startEphemeralStack({ env: { DIALFLOW_HTTP_ALLOW: '127.0.0.1' } });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('an allowed lookup succeeds; metadata, a redirect into a private network and an endless body take onError; the worker stays small', async () => {
    const base = `http://127.0.0.1:${port}`;
    const flow = parseFlow({
      id: 'ssrf-probe',
      version: 1,
      start: 'call',
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'lookup' } },
        {
          id: 'lookup',
          type: 'httpRequest',
          url: `${base}/echo`,
          saveTo: { method: 'body.method' },
          next: 'meta',
          onError: 'bye',
        },
        {
          id: 'meta',
          type: 'httpRequest',
          url: 'http://169.254.169.254/latest/meta-data/',
          next: 'bye',
          onError: 'bounce',
        },
        {
          id: 'bounce',
          type: 'httpRequest',
          url: `${base}/redirect?to=${encodeURIComponent('http://10.0.0.1/admin')}`,
          next: 'bye',
          onError: 'flood',
        },
        { id: 'flood', type: 'httpRequest', url: `${base}/endless`, timeoutSeconds: 30, next: 'bye', onError: 'bye' },
        { id: 'bye', type: 'hangUp' },
      ],
    });
    const worker = t.services.worker?.pid ?? 0;
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${worker}/status`, 'utf8'))?.[1] ?? 0) / 1024;
    const before = rss();
    const endless = hits.filter((h) => h === '/endless').length;
    const handle = await startCall(t.client, {
      flow,
      campaignId: 'ssrf',
      taskQueue: t.config.temporal.taskQueue,
      recipient: { id: 'r1', phone: '+385915551001' },
      hints: { persona: { attempts: ['answered'] } },
    });
    const result = await handle.result();
    const after = rss();
    console.log(`worker RSS around the call: ${before.toFixed(0)} → ${after.toFixed(0)} MB`);
    expect(result.trail.map((x) => `${x.element}:${x.branch}`)).toEqual([
      'call:answered',
      'lookup:next',
      'meta:onError',
      'bounce:onError',
      'flood:onError',
    ]);
    expect(result.variables.method).toBe('GET');
    const warned = Object.fromEntries(result.warnings.map((w) => [w.element, w.message]));
    expect(warned.meta).toContain('cloud metadata address');
    expect(warned.bounce).toContain('10.0.0.1 is a private address');
    expect(warned.flood).toContain('larger than the limit');
    expect(hits.filter((h) => h === '/endless').length - endless).toBe(1);
    expect(after - before).toBeLessThan(100);
  }, 90_000);
});
