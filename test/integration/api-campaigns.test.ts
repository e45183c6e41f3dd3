// The campaign routes of the HTTP API on a real stack (Temporal dev server, nats-server, worker,
// bridge, simulator), the API served in-process on a free loopback port: draft → upload → forecast
// → start → Server-Sent Events → report, pause/resume/cancel, every refusal, and a large upload that
// must stream (the server's memory stays far below the file's size).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { startEphemeralStack, type EphemeralStack } from '../../src/dev/ephemeral.js';
import { CLI_BIN, freePort } from '../../src/dev/stack.js';
import { payloadCodec } from '../../src/config/index.js';
import { createLogger } from '../../src/logging.js';
import { startApiServer, type StartedApiServer } from '../../src/api/server.js';
import type { ApiRole } from '../../src/store/tokens.js';
import { NatsCampaignStore, readAllRecords, type CallRecord } from '../../src/store/campaigns.js';
import { reportHeader } from '../../src/campaign/report.js';
import { PROJECT_ROOT } from '../../src/config/tools.js';
import { CampaignDraftStore } from '../../src/store/campaign-drafts.js';
import { launchCampaign } from '../../src/client/campaign-control.js';
import { MAX_EVENT_STREAMS } from '../../src/api/routes/campaigns.js';
import { SHUTDOWN_DEADLINE_MS } from '../../src/cli/commands/api.js';
import type { Flow } from '../../src/flow/schema.js';
import { apiRequest, errorCode, roleTokens, type ApiRequestOptions } from '../helpers/api.js';

let t: EphemeralStack;
let nc: NatsConnection;
let api: StartedApiServer;
let bigServer: { url: string; process: ChildProcess };
const tokens: Record<ApiRole, string> = { viewer: '', operator: '', admin: '' };
const REMINDER_FILE = join(PROJECT_ROOT, 'examples', 'appointment-reminder.json');
const reminder = JSON.parse(readFileSync(REMINDER_FILE, 'utf8')) as Flow & { id: string; version: number };
const FLOW = { id: reminder.id, version: reminder.version };

const call = (method: string, path: string, opts: ApiRequestOptions & { base?: string } = {}) =>
  apiRequest(opts.base ?? api.url, method, path, opts);
const op = (method: string, path: string, opts: Parameters<typeof call>[2] = {}) =>
  call(method, path, { token: tokens.operator, ...opts });

// persona → outcome of the appointment reminder
const mix: Array<[Record<string, unknown>, string]> = [
  [{ attempts: ['answered'], keys: ['1'] }, 'answered'],
  [{ attempts: ['answered'], keys: ['2'] }, 'answered'],
  [{ attempts: ['busy'] }, 'busy'],
  [{ attempts: ['noAnswer'] }, 'noAnswer'],
];
const phone = (i: number) => `+3859157${String(i).padStart(5, '0')}`;
const personaCell = (i: number) => `"${JSON.stringify(mix[i % mix.length]![0]).replace(/"/g, '""')}"`;
/** `n` good rows from `offset` (numbers apart per campaign: the do-not-call list is shared). */
const goodRows = (n: number, offset: number) =>
  Array.from({ length: n }, (_, i) => `r${i},${phone(offset + i)},Ana,${personaCell(i)}`);

async function records(campaignId: string): Promise<CallRecord[]> {
  return readAllRecords(await NatsCampaignStore.open(nc), campaignId);
}

/** Server-Sent Events of a URL until `event: end` (or `max` events), as [event, data] pairs. */
async function events(path: string, max = 1000): Promise<Array<[string, string]>> {
  const res = await fetch(`${api.url}${path}`, { headers: { authorization: `Bearer ${tokens.viewer}` } });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const out: Array<[string, string]> = [];
  const decoder = new TextDecoder();
  let buffer = '';
  const reader = res.body!.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    for (let cut = buffer.indexOf('\n\n'); cut !== -1; cut = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event && data) out.push([event, data]);
      if (event === 'end' || out.length >= max) {
        await reader.cancel();
        return out;
      }
    }
  }
  return out;
}

beforeAll(async () => {
  t = await startEphemeralStack();
  nc = await t.natsConnect('api-campaigns-test');
  Object.assign(tokens, await roleTokens(nc));
  api = await startApiServer({
    nc,
    temporal: { client: t.client, codec: payloadCodec(t.config), taskQueue: t.config.temporal.taskQueue },
    logger: createLogger('api', 'silent'),
    host: '127.0.0.1',
    port: await freePort(),
  });
  const published = await op('POST', '/api/flows', { json: reminder });
  expect(published.status, published.text).toBe(201);
  // The large upload's server: a process of its own (`dialflow api`), so that its memory is measured
  // alone, with V8's old space capped (garbage is collected early: the peak is what the upload keeps
  // alive). Started now, it loads while the other tests run.
  const port = await freePort();
  bigServer = {
    url: `http://127.0.0.1:${port}`,
    process: spawn(process.execPath, ['--max-old-space-size=128', CLI_BIN, 'api', '--api-port', String(port)], {
      env: { ...process.env, ...t.env, DIALFLOW_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'inherit'],
    }),
  };
}, 120_000);
afterAll(async () => {
  if (bigServer && bigServer.process.exitCode === null && bigServer.process.signalCode === null) {
    bigServer.process.kill('SIGKILL');
    await once(bigServer.process, 'close');
  }
  await api?.close();
  await nc?.close();
  await t?.stop();
});

describe('a campaign through the API', () => {
  it('create → upload 50 rows (bad ones reported by code) → forecast → start → events until the end → report', async () => {
    const created = await op('POST', '/api/campaigns', {
      json: {
        id: 'api-one',
        flow: FLOW,
        callingSpeed: '6000/minute spread',
        maxConcurrent: 50,
        timeZone: 'Europe/Zagreb',
      },
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({
      campaign: { campaignId: 'api-one', state: 'draft', total: 0, speed: '6000/minute spread', flow: FLOW },
    });

    const rows = goodRows(47, 0);
    const csv = [
      'id,phone,firstName,persona',
      ...rows.slice(0, 20),
      'bad-phone,12,Bo,',
      ',+385915799990,Cy,',
      `dup,${phone(3)},Di,`,
      ...rows.slice(20),
    ].join('\n');
    const upload = await op('PUT', '/api/campaigns/api-one/recipients', { raw: csv, contentType: 'text/csv' });
    expect(upload.status, upload.text).toBe(200);
    const staged = upload.body as {
      summary: Record<string, unknown>;
      problems: Array<{ row: number; code: string; message: string }>;
    };
    expect(staged.summary).toEqual({
      rows: 50,
      valid: 47,
      duplicates: 1,
      invalid: 2,
      byCode: { 'row.invalidPhone': 1, 'row.missingColumn': 1, 'row.duplicate': 1 },
    });
    expect(staged.problems.map((p) => [p.row, p.code])).toEqual([
      [22, 'row.invalidPhone'],
      [23, 'row.missingColumn'],
      [24, 'row.duplicate'],
    ]);

    const forecast = await call('GET', '/api/campaigns/api-one/forecast', { token: tokens.viewer });
    expect(forecast.status, forecast.text).toBe(200);
    expect(forecast.body).toMatchObject({ recipients: 47, notCallable: 0, effectiveCallsPerHour: expect.any(Number) });
    expect((forecast.body as { finishAt?: string }).finishAt).toMatch(/^\d{4}-/);

    const draft = await call('GET', '/api/campaigns/api-one', { token: tokens.viewer });
    expect(draft.body).toMatchObject({ state: 'draft', total: 47, recipients: { valid: 47 } });

    const started = await op('POST', '/api/campaigns/api-one/start');
    expect(started.status, started.text).toBe(200);
    expect(started.body).toMatchObject({ campaignId: 'api-one', total: 47, flow: FLOW });

    const seen = await events('/api/campaigns/api-one/events');
    expect(seen.at(-1)?.[0]).toBe('end');
    const statuses = seen.filter(([e]) => e === 'status').map(([, d]) => JSON.parse(d) as Record<string, unknown>);
    expect(statuses.length).toBeGreaterThanOrEqual(1);
    const final = JSON.parse(seen.at(-1)![1]) as Record<string, unknown>;
    expect(final).toMatchObject({
      state: 'completed',
      total: 47,
      completed: 47,
      inFlight: 0,
      byOutcome: { answered: 24, busy: 12, noAnswer: 11 },
    });
    expect(final.byBranch).toMatchObject({ 'call → answered': 24, 'call → busy': 12 });

    const recs = await records('api-one');
    expect(recs).toHaveLength(47);
    const reportCsv = await call('GET', '/api/campaigns/api-one/report', { token: tokens.viewer });
    expect(reportCsv.status).toBe(200);
    expect(reportCsv.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = reportCsv.text.trim().split('\n');
    expect(lines).toHaveLength(48);
    const payloadKeys = [...new Set(recs.flatMap((r) => Object.keys(r.dataPayload ?? {})))].sort();
    expect(lines[0]).toBe(reportHeader(payloadKeys).join(','));
    expect(new Set(lines.slice(1).map((l) => l.split(',')[1]))).toEqual(new Set(recs.map((r) => r.recipientId)));

    const reportJson = await call('GET', '/api/campaigns/api-one/report?format=json', { token: tokens.viewer });
    expect(reportJson.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const json = reportJson.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as CallRecord);
    expect(json.sort((a, b) => a.row - b.row)).toEqual(recs.sort((a, b) => a.row - b.row));

    const list = await call('GET', '/api/campaigns', { token: tokens.viewer });
    expect(list.status).toBe(200);
    expect((list.body as { campaigns: unknown[] }).campaigns).toContainEqual(
      expect.objectContaining({ campaignId: 'api-one', state: 'completed', flow: FLOW }),
    );

    const audit = await call('GET', '/api/audit?limit=50', { token: tokens.admin });
    const actions = (audit.body as { entries: Array<{ action: string; target: Record<string, unknown> }> }).entries
      .filter((e) => e.target.campaignId === 'api-one')
      .map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['campaign.create', 'campaign.start']));
  }, 120_000);

  it('pause, resume and cancel; an upload or a start after the start is refused', async () => {
    expect(
      (await op('POST', '/api/campaigns', { json: { id: 'api-slow', flow: FLOW, callingSpeed: '1/hour' } })).status,
    ).toBe(201);
    const csv = ['id,phone,persona', ...goodRows(5, 100).map((r) => r.replace(',Ana', ''))].join('\n');
    // Twice: a re-upload before the start replaces the recipients.
    expect((await op('PUT', '/api/campaigns/api-slow/recipients', { raw: csv, contentType: 'text/csv' })).status).toBe(
      200,
    );
    const ndjson = goodRows(3, 100)
      .map((_, i) => JSON.stringify({ id: `n${i}`, phone: phone(100 + i), persona: mix[2]![0] }))
      .join('\n');
    const again = await op('PUT', '/api/campaigns/api-slow/recipients', {
      raw: ndjson,
      contentType: 'application/x-ndjson',
    });
    expect(again.status, again.text).toBe(200);
    expect((again.body as { summary: { valid: number } }).summary.valid).toBe(3);
    // Not started yet: nothing to pause.
    expect(errorCode(await op('POST', '/api/campaigns/api-slow/pause'))).toBe('campaign.notStarted');

    const started = await op('POST', '/api/campaigns/api-slow/start');
    expect(started.status, started.text).toBe(200);
    expect(started.body).toMatchObject({ total: 3 });
    const late = await op('PUT', '/api/campaigns/api-slow/recipients', { raw: csv, contentType: 'text/csv' });
    expect(late.status).toBe(409);
    expect(errorCode(late)).toBe('campaign.started');
    expect(errorCode(await op('POST', '/api/campaigns/api-slow/start'))).toBe('campaign.started');

    const paused = await op('POST', '/api/campaigns/api-slow/pause');
    expect(paused.status, paused.text).toBe(200);
    expect(paused.body).toMatchObject({ state: 'paused' });
    const twice = await op('POST', '/api/campaigns/api-slow/pause');
    expect(twice.status).toBe(409);
    expect(errorCode(twice)).toBe('campaign.control');
    expect((await op('POST', '/api/campaigns/api-slow/resume')).body).toMatchObject({ state: 'running' });
    const cancelled = await op('POST', '/api/campaigns/api-slow/cancel');
    expect(cancelled.status).toBe(200);
    expect((cancelled.body as { state: string }).state).toMatch(/^cancel/);
    // Events of a cancelled campaign end.
    const seen = await events('/api/campaigns/api-slow/events');
    expect(seen.at(-1)?.[0]).toBe('end');
    expect(JSON.parse(seen.at(-1)![1])).toMatchObject({ state: 'cancelled' });

    const audit = await call('GET', '/api/audit?limit=50', { token: tokens.admin });
    const actions = (audit.body as { entries: Array<{ action: string; target: Record<string, unknown> }> }).entries
      .filter((e) => e.target.campaignId === 'api-slow')
      .map((e) => e.action);
    expect(actions).toEqual(
      expect.arrayContaining([
        'campaign.create',
        'campaign.start',
        'campaign.pause',
        'campaign.resume',
        'campaign.cancel',
      ]),
    );
  }, 120_000);
});

describe('refusals', () => {
  it('401 without a token, 403 for a viewer that creates, uploads or starts; a viewer reads', async () => {
    const none = await call('POST', '/api/campaigns', { json: { id: 'x', flow: FLOW } });
    expect(none.status).toBe(401);
    expect(errorCode(none)).toBe('unauthorized');
    expect((await call('GET', '/api/campaigns/api-one/events')).status).toBe(401);
    for (const [method, path, opts] of [
      ['POST', '/api/campaigns', { json: { id: 'viewer-made', flow: FLOW } }],
      ['PUT', '/api/campaigns/api-one/recipients', { raw: 'id,phone\n', contentType: 'text/csv' }],
      ['POST', '/api/campaigns/api-one/start', {}],
      ['POST', '/api/campaigns/api-one/cancel', {}],
    ] as const) {
      const a = await call(method, path, { token: tokens.viewer, ...opts });
      expect(a.status, path).toBe(403);
      expect(errorCode(a)).toBe('forbidden');
    }
    expect((await call('GET', '/api/campaigns', { token: tokens.viewer })).status).toBe(200);
  });

  it('404 for an unknown campaign on every route', async () => {
    for (const [method, path] of [
      ['GET', '/api/campaigns/nope'],
      ['GET', '/api/campaigns/nope/forecast'],
      ['GET', '/api/campaigns/nope/events'],
      ['GET', '/api/campaigns/nope/report'],
      ['POST', '/api/campaigns/nope/start'],
      ['POST', '/api/campaigns/nope/pause'],
    ] as const) {
      const a = await op(method, path);
      expect(a.status, path).toBe(404);
      expect(errorCode(a), path).toBe('not_found');
    }
    const upload = await op('PUT', '/api/campaigns/nope/recipients', { raw: 'id,phone\n', contentType: 'text/csv' });
    expect(upload.status).toBe(404);
  });

  it('409 for an id in use (draft or campaign); 409 to start without recipients', async () => {
    const dup = await op('POST', '/api/campaigns', { json: { id: 'api-one', flow: FLOW } });
    expect(dup.status).toBe(409);
    expect(errorCode(dup)).toBe('campaign.exists');
    expect((await op('POST', '/api/campaigns', { json: { id: 'api-empty', flow: FLOW } })).status).toBe(201);
    expect(errorCode(await op('POST', '/api/campaigns', { json: { id: 'api-empty', flow: FLOW } }))).toBe(
      'campaign.exists',
    );
    // A draft's events: its status at once; the client may leave whenever it likes.
    const draftEvents = await events('/api/campaigns/api-empty/events', 1);
    expect(draftEvents).toHaveLength(1);
    expect(JSON.parse(draftEvents[0]![1])).toMatchObject({ campaignId: 'api-empty', state: 'draft', total: 0 });
    const start = await op('POST', '/api/campaigns/api-empty/start');
    expect(start.status).toBe(409);
    expect(errorCode(start)).toBe('campaign.noRecipients');
    expect(errorCode(await op('GET', '/api/campaigns/api-empty/forecast'))).toBe('campaign.noRecipients');
  });

  it('415 for an upload that is not CSV or NDJSON, and for a draft that is not JSON', async () => {
    for (const contentType of ['application/json', 'text/plain', 'application/octet-stream']) {
      const a = await op('PUT', '/api/campaigns/api-empty/recipients', { raw: '{"id":"a"}', contentType });
      expect(a.status, contentType).toBe(415);
      expect(errorCode(a)).toBe('unsupported_media_type');
    }
    const csvDraft = await op('POST', '/api/campaigns', { raw: 'id,flow\n', contentType: 'text/csv' });
    expect(csvDraft.status).toBe(415);
  });

  it('400 with a code per bad setting; a flow that is not published or calls no one', async () => {
    const bad = await op('POST', '/api/campaigns', {
      json: {
        id: 'has space',
        flow: { id: FLOW.id, version: 0 },
        maxConcurrent: 0,
        contactCap: { max: 0, windowDays: 30 },
        startAt: 'tomorrow',
        timeZone: 'Mars/Olympus_Mons',
        colour: 'red',
      },
    });
    expect(bad.status).toBe(400);
    expect(errorCode(bad)).toBe('campaign.invalidSettings');
    const codes = (bad.body as { problems: Array<{ code: string }> }).problems.map((p) => p.code);
    expect(codes).toEqual(
      expect.arrayContaining([
        'id.invalid',
        'flow.invalid',
        'maxConcurrent.invalid',
        'contactCap.invalid',
        'startAt.invalid',
        'timeZone.invalid',
        'body.unknownField',
      ]),
    );
    const speed = await op('POST', '/api/campaigns', { json: { id: 'fast', flow: FLOW, callingSpeed: 'fast' } });
    expect((speed.body as { problems: Array<{ code: string }> }).problems.map((p) => p.code)).toEqual([
      'callingSpeed.invalid',
    ]);
    const unpublished = await op('POST', '/api/campaigns', {
      json: { id: 'later', flow: { id: 'nothing', version: 1 } },
    });
    expect(unpublished.status).toBe(400);
    expect(errorCode(unpublished)).toBe('flow.notPublished');
    expect((await op('GET', '/api/campaigns/has%20space')).status).toBe(400);
  });

  it('a row over 64 KB is reported (row.malformed) and the rows after it are staged', async () => {
    expect((await op('POST', '/api/campaigns', { json: { id: 'api-wide', flow: FLOW } })).status).toBe(201);
    const csv = [
      'id,phone,note',
      `a,${phone(500)},x`,
      `b,${phone(501)},${'y'.repeat(70_000)}`,
      `c,${phone(502)},z`,
    ].join('\n');
    const a = await op('PUT', '/api/campaigns/api-wide/recipients', { raw: csv, contentType: 'text/csv' });
    expect(a.status, a.text).toBe(200);
    expect(a.body).toMatchObject({
      summary: { rows: 3, valid: 2, invalid: 1 },
      problems: [{ row: 3, code: 'row.malformed' }],
    });
    // A header that is not a CSV header: nothing staged.
    const broken = await op('PUT', '/api/campaigns/api-wide/recipients', {
      raw: '"id,phone\na,b\n',
      contentType: 'text/csv',
    });
    expect(broken.status).toBe(400);
    expect(errorCode(broken)).toBe('recipients.unreadable');
  });

  it('413 for an upload that declares more than the limit, before reading it', async () => {
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        `${api.url}/api/campaigns/api-wide/recipients`,
        {
          method: 'PUT',
          headers: {
            authorization: `Bearer ${tokens.operator}`,
            'content-type': 'text/csv',
            'content-length': String(3 * 1024 ** 3),
          },
        },
        (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.write('id,phone\n');
    });
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'payload_too_large' } });
  });
});

/** Resident set size now and at its peak (kB) of a process, from Linux's /proc; undefined elsewhere. */
function rssOf(pid: number): { now: number; peak: number } | undefined {
  if (!existsSync(`/proc/${pid}/status`)) return undefined;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { now: kb('VmRSS'), peak: kb('VmHWM') };
}

describe('a large upload streams', () => {
  it('200,000 rows (100 MiB) staged by a server whose memory grows far less than the file', async () => {
    const server = bigServer.process;
    try {
      const url = bigServer.url;
      for (let i = 0; ; i++) {
        const ready = await fetch(`${url}/api/openapi.json`).then(
          (r) => r.ok,
          () => false,
        );
        if (ready) break;
        if (i > 900 || server.exitCode !== null) throw new Error('dialflow api did not start');
        await new Promise((r) => setTimeout(r, 100));
      }
      const auth = { authorization: `Bearer ${tokens.operator}` };
      const created = await fetch(`${url}/api/campaigns`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'api-big', flow: FLOW }),
      });
      expect(created.status).toBe(201);
      const n = 200_000;
      const pad = 'p'.repeat(500);
      let bytes = 0;
      // Generated as it is sent: the file never exists whole on this side either.
      async function* csv() {
        const header = 'id,phone,firstName,note\n';
        bytes += header.length;
        yield Buffer.from(header);
        for (let i = 0; i < n; i += 1000) {
          let chunk = '';
          for (let k = i; k < i + 1000; k++) chunk += `big${k},+38591${1_000_000 + k},Ana,${pad}\n`;
          bytes += chunk.length;
          yield Buffer.from(chunk);
        }
      }
      const before = rssOf(server.pid!);
      const started = Date.now();
      const res = await fetch(`${url}/api/campaigns/api-big/recipients`, {
        method: 'PUT',
        headers: { ...auth, 'content-type': 'text/csv' },
        body: Readable.toWeb(Readable.from(csv())) as ReadableStream,
        duplex: 'half',
      } as RequestInit);
      const body = (await res.json()) as { summary: unknown };
      const after = rssOf(server.pid!);
      expect(res.status).toBe(200);
      expect(body.summary).toMatchObject({ rows: n, valid: n });
      if (before && after) {
        // Against the high-water mark before the upload, not the RSS of that moment: the latter
        // swings by 20 MiB with the garbage collector (it once read 168 MiB instead of 190).
        const growth = after.peak * 1024 - before.peak * 1024;
        console.log(
          `upload of ${n} rows (${(bytes / 2 ** 20).toFixed(0)} MiB) in ${Date.now() - started} ms: server peak RSS ${(before.peak / 1024).toFixed(0)} MiB before, peak ${(after.peak / 1024).toFixed(0)} MiB (+${(growth / 2 ** 20).toFixed(0)} MiB)`,
        );
        // V8 may fill its capped old space with garbage before collecting: a bound that does not grow with the file.
        expect(growth).toBeLessThan(bytes / 2);
      }
      const forecastAt = Date.now();
      const forecast = await op('GET', '/api/campaigns/api-big/forecast');
      expect(forecast.body).toMatchObject({ recipients: n });
      console.log(`forecast of ${n} staged recipients in ${Date.now() - forecastAt} ms`);
    } finally {
      // Its stop after such an upload is bounded (`dialflow api` exits at its deadline at the latest).
      const stopping = Date.now();
      const closed = once(server, 'close');
      server.kill('SIGTERM');
      await closed;
      const took = Date.now() - stopping;
      console.log(`dialflow api stopped ${took} ms after SIGTERM (exit ${server.exitCode})`);
      expect(took).toBeLessThan(SHUTDOWN_DEADLINE_MS + 5_000);
      expect(server.exitCode).toBe(0);
    }
  }, 240_000);
});

/** A recipients upload that sends `head`, then the rest once `gate` settles; its answer. */
function gatedUpload(
  base: string,
  id: string,
  head: string,
  rest: string,
  gate: Promise<void>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = httpRequest(
      `${base}/api/campaigns/${id}/recipients`,
      { method: 'PUT', headers: { authorization: `Bearer ${tokens.operator}`, 'content-type': 'text/csv' } },
      (res) => {
        answered = true;
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    // The refused upload's server closes the connection while the rest is still to be sent.
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    req.write(head);
    void gate.then(() => {
      if (!req.destroyed) req.end(rest);
    });
  });
}

describe('a campaign started outside its draft, and uploads that race', () => {
  it('`dialflow campaign start` refuses an id the API has a draft of', async () => {
    expect((await op('POST', '/api/campaigns', { json: { id: 'api-cli', flow: FLOW } })).status).toBe(201);
    const file = join(t.dataDir, 'api-cli.csv');
    writeFileSync(file, ['id,phone', ...goodRows(2, 700).map((r) => r.split(',').slice(0, 2).join(','))].join('\n'));
    const cli = spawnSync(
      process.execPath,
      [CLI_BIN, 'campaign', 'start', '--flow', REMINDER_FILE, '--recipients', file, '--id', 'api-cli'],
      { encoding: 'utf8', env: { ...process.env, ...t.env }, timeout: 60_000 },
    );
    expect(cli.status, cli.stderr).toBe(1);
    expect(cli.stderr).toMatch(/created through the API/);
    // Nothing staged or started: still a draft without recipients.
    expect((await op('GET', '/api/campaigns/api-cli')).body).toMatchObject({ state: 'draft', total: 0 });
  }, 60_000);

  it('a workflow started without the draft knowing: status shows it, uploads are refused, control works', async () => {
    expect(
      (await op('POST', '/api/campaigns', { json: { id: 'api-outside', flow: FLOW, callingSpeed: '1/hour' } })).status,
    ).toBe(201);
    const csv = ['id,phone,persona', ...goodRows(3, 800).map((r) => r.replace(',Ana', ''))].join('\n');
    expect(
      (await op('PUT', '/api/campaigns/api-outside/recipients', { raw: csv, contentType: 'text/csv' })).status,
    ).toBe(200);
    // As a start whose answer was lost after Temporal started the workflow leaves it: draft not marked.
    const staged = (await (await CampaignDraftStore.open(nc)).get('api-outside'))!.draft.recipients!;
    await launchCampaign(t.client, t.config.temporal.taskQueue, {
      campaignId: 'api-outside',
      flow: reminder,
      pages: staged.pages,
      total: staged.accepted,
      settings: { speed: { calls: 1, per: 'hour' }, maxConcurrent: 10 },
    });
    const status = await op('GET', '/api/campaigns/api-outside');
    expect((status.body as { state: string }).state).not.toBe('draft');
    const upload = await op('PUT', '/api/campaigns/api-outside/recipients', { raw: csv, contentType: 'text/csv' });
    expect(upload.status).toBe(409);
    expect(errorCode(upload)).toBe('campaign.started');
    const start = await op('POST', '/api/campaigns/api-outside/start');
    expect(errorCode(start)).toBe('campaign.started');
    const paused = await op('POST', '/api/campaigns/api-outside/pause');
    expect(paused.status, paused.text).toBe(200);
    expect(paused.body).toMatchObject({ state: 'paused' });
    const cancelled = await op('POST', '/api/campaigns/api-outside/cancel');
    expect(cancelled.status, cancelled.text).toBe(200);
  }, 60_000);

  it('two API servers take the same draft’s uploads at once: one wins, the other gets 409, the pages are the winner’s', async () => {
    const second = await startApiServer({
      nc,
      temporal: { client: t.client, codec: payloadCodec(t.config), taskQueue: t.config.temporal.taskQueue },
      logger: createLogger('api', 'silent'),
      host: '127.0.0.1',
      port: await freePort(),
    });
    try {
      expect((await op('POST', '/api/campaigns', { json: { id: 'api-race', flow: FLOW } })).status).toBe(201);
      const file = (prefix: string, n: number, offset: number) =>
        ['id,phone', ...Array.from({ length: n }, (_, i) => `${prefix}${i},${phone(offset + i)}`)].join('\n');
      const files = { a: file('a', 30, 900), b: file('b', 40, 950) };
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      // Each sends its header line, then waits: both are under way before either can finish.
      const split = (f: string) => [f.slice(0, f.indexOf('\n') + 1), f.slice(f.indexOf('\n') + 1)] as const;
      const a = gatedUpload(api.url, 'api-race', ...split(files.a), gate);
      const b = gatedUpload(second.url, 'api-race', ...split(files.b), gate);
      void Promise.race([a, b]).finally(release);
      const answers = { a: await a, b: await b };
      const statuses = [answers.a.status, answers.b.status].sort();
      expect(statuses, JSON.stringify(answers)).toEqual([200, 409]);
      const winner = answers.a.status === 200 ? 'a' : 'b';
      const loser = answers[winner === 'a' ? 'b' : 'a'];
      expect((JSON.parse(loser.body) as { error: { code: string } }).error.code).toBe('campaign.uploadInProgress');
      const draft = (await (await CampaignDraftStore.open(nc)).get('api-race'))!.draft;
      expect(draft.upload).toBeUndefined();
      expect(draft.recipients?.accepted).toBe(winner === 'a' ? 30 : 40);
      const store = await NatsCampaignStore.open(nc);
      const ids: string[] = [];
      for (let n = 0; n < draft.recipients!.pages; n++)
        for (const r of await store.getPage('api-race', n)) ids.push(r.recipient.id);
      expect(ids).toEqual(
        files[winner]
          .split('\n')
          .slice(1)
          .map((l) => l.split(',')[0]),
      );
      // The claim is gone: the next upload is taken; while it is under way, a start is refused.
      let finish!: () => void;
      const held = new Promise<void>((resolve) => (finish = resolve));
      const again = gatedUpload(second.url, 'api-race', ...split(files.a), held);
      const drafts = await CampaignDraftStore.open(nc);
      for (let i = 0; !(await drafts.get('api-race'))?.draft.upload; i++) {
        if (i > 100) throw new Error('the upload did not claim the draft');
        await new Promise((r) => setTimeout(r, 50));
      }
      const start = await op('POST', '/api/campaigns/api-race/start');
      expect(start.status).toBe(409);
      expect(errorCode(start)).toBe('campaign.uploadInProgress');
      finish();
      expect((await again).status).toBe(200);
      expect((await drafts.get('api-race'))?.draft.recipients?.accepted).toBe(30);
    } finally {
      await second.close();
    }
  }, 60_000);
});

describe('streams that clients leave', () => {
  it('a report download aborted part-way ends its read; the next download is whole', async () => {
    const store = await NatsCampaignStore.open(nc);
    const n = 10_000;
    const note = 'n'.repeat(400);
    for (let from = 0; from < n; from += 1000)
      await Promise.all(
        Array.from({ length: 1000 }, (_, k) => {
          const i = from + k;
          const record: CallRecord = {
            campaignId: 'api-report-big',
            recipientId: `r${i}`,
            row: i,
            outcome: 'answered',
            dials: 1,
            durationMs: 1000,
            slotAt: 0,
            endedAt: 0,
            responses: [],
            dataPayload: { note },
          };
          return store.publish(record, `api-report-big-${i}`);
        }),
      );
    expect((await op('POST', '/api/campaigns', { json: { id: 'api-report-big', flow: FLOW } })).status).toBe(201);
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      // Several aborted downloads: a report stuck on a client that left would hold its reader for ever.
      for (let i = 0; i < 3; i++) {
        const received = await new Promise<number>((resolve, reject) => {
          const req = httpRequest(
            `${api.url}/api/campaigns/api-report-big/report`,
            { headers: { authorization: `Bearer ${tokens.viewer}` } },
            (res) => {
              expect(res.statusCode).toBe(200);
              res.once('data', (d: Buffer) => {
                req.destroy();
                resolve(d.length);
              });
            },
          );
          req.on('error', (err) => {
            if (!req.destroyed) reject(err);
          });
          req.end();
        });
        expect(received).toBeGreaterThan(0);
      }
      const whole = await call('GET', '/api/campaigns/api-report-big/report', { token: tokens.viewer });
      expect(whole.status).toBe(200);
      expect(whole.text.trim().split('\n')).toHaveLength(n + 1);
      const head = await fetch(`${api.url}/api/campaigns/api-report-big/report`, {
        method: 'HEAD',
        headers: { authorization: `Bearer ${tokens.viewer}` },
      });
      expect(head.status).toBe(404);
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).not.toContain('MaxListenersExceededWarning');
  }, 120_000);

  it(`event streams: at most ${MAX_EVENT_STREAMS} at once (then 503), no listener left per poll`, async () => {
    expect((await op('POST', '/api/campaigns', { json: { id: 'api-watched', flow: FLOW } })).status).toBe(201);
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    const leave = new AbortController();
    try {
      const open = await Promise.all(
        Array.from({ length: MAX_EVENT_STREAMS }, () =>
          fetch(`${api.url}/api/campaigns/api-watched/events`, {
            headers: { authorization: `Bearer ${tokens.viewer}` },
            signal: leave.signal,
          }),
        ),
      );
      expect(open.map((r) => r.status)).toEqual(open.map(() => 200));
      const busy = await call('GET', '/api/campaigns/api-watched/events', { token: tokens.viewer });
      expect(busy.status).toBe(503);
      expect(errorCode(busy)).toBe('events.busy');
      // More than 11 polls (a listener added per poll and never removed warned at the 11th).
      await new Promise((r) => setTimeout(r, 13_000));
      leave.abort();
      await Promise.allSettled(open.map((r) => r.body?.cancel()));
      // The streams are gone once their clients are: a new one is taken.
      for (let i = 0; ; i++) {
        const again = await events('/api/campaigns/api-watched/events', 1).catch(() => []);
        if (again.length === 1) break;
        if (i > 50) throw new Error('event streams not released');
        await new Promise((r) => setTimeout(r, 100));
      }
      const head = await fetch(`${api.url}/api/campaigns/api-watched/events`, {
        method: 'HEAD',
        headers: { authorization: `Bearer ${tokens.viewer}` },
      });
      expect(head.status).toBe(404);
    } finally {
      leave.abort();
      process.off('warning', onWarning);
    }
    expect(warnings).not.toContain('MaxListenersExceededWarning');
  }, 60_000);
});
