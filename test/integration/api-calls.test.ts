// The HTTP API's calls and simulate routes on a real stack (Temporal dev server, nats-server, the
// worker, bridge and simulator processes), served in-process on a free loopback port: simulations
// answer what the CLI prints, calls start, finish and are read back and searched, masked input
// appears nowhere, and every auth failure and bad input has its answer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { CLI_BIN, freePort } from '../../src/dev/stack.js';
import { startEphemeralStack, type EphemeralStack } from '../../src/dev/ephemeral.js';
import { payloadCodec } from '../../src/config/index.js';
import { createLogger } from '../../src/logging.js';
import { startApiServer, type StartedApiServer } from '../../src/api/server.js';
import type { ApiRole } from '../../src/store/tokens.js';
import { AuditLog } from '../../src/store/audit.js';
import { PROJECT_ROOT } from '../../src/config/tools.js';
import { SimulationBusyError, SimulationQueue } from '../../src/client/simulate.js';
import { startCall } from '../../src/client/calls.js';
import { campaignIdProblem, startCampaign } from '../../src/client/campaigns.js';
import { parseFlow } from '../../src/flow/validate.js';
import type { CampaignWorkflowInput } from '../../src/workflows/index.js';
import { apiRequest, errorCode, roleTokens, type ApiRequestOptions } from '../helpers/api.js';

let t: EphemeralStack;
let nc: NatsConnection;
let api: StartedApiServer;
const tokens: Record<ApiRole, string> = { viewer: '', operator: '', admin: '' };
const dir = mkdtempSync(join(tmpdir(), 'dialflow-api-calls-'));
const run = Date.now().toString(36);

const reminder = JSON.parse(readFileSync(join(PROJECT_ROOT, 'examples', 'appointment-reminder.json'), 'utf8')) as {
  id: string;
  version: number;
};
const PIN = '8417';
/** A PIN collected masked and read back in a prompt: the digits must appear in no answer. */
const pinFlow = {
  id: 'api-pin',
  version: 1,
  start: 'call',
  variables: { pin: { type: 'string' } },
  elements: [
    { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'ask' } },
    { id: 'ask', type: 'collect', maxDigits: 4, reporting: 'masked', saveTo: 'pin', next: { noMatch: 'echo' } },
    { id: 'echo', type: 'play', tts: { text: 'You entered {{vars.pin}}.' }, next: { played: 'end' } },
    { id: 'end', type: 'hangUp' },
  ],
};
const inboundFlow = {
  id: 'api-inbound',
  version: 1,
  elements: [
    { id: 'in', type: 'startIncomingCall', number: '+14155550177', next: 'hello' },
    { id: 'hello', type: 'play', tts: { text: 'Hello.' }, next: { played: 'end' } },
    { id: 'end', type: 'hangUp' },
  ],
};

const call = (method: string, path: string, opts: ApiRequestOptions = {}) => apiRequest(api.url, method, path, opts);
const enc = encodeURIComponent;

interface Report {
  outcome: string;
  visited: string[];
  dials: number;
  trail: Array<{ element: string; branch: string; input?: string }>;
  variables: Record<string, unknown>;
  events: Array<{ at: string; until?: string; kind: string; elementId?: string; text: string }>;
  simulatedSeconds?: number;
}
interface CallDetails {
  callId: string;
  campaignId: string;
  recipientId: string;
  status: string;
  startTime: string;
  closeTime?: string;
  result?: Omit<Report, 'events'>;
}
interface CallList {
  calls: Array<{ callId: string; status: string; outcome?: string; recipientId: string; campaignId: string }>;
  nextPageToken?: string;
}

/** The same report with the clock taken out: two runs start at different real times. */
const timeless = (r: Report) => {
  const { simulatedSeconds: _s, ...rest } = r;
  return { ...rest, events: r.events.map(({ at: _at, until: _until, ...e }) => e) };
};

async function until<T>(what: string, read: () => Promise<T>, done: (v: T) => boolean, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms (last: ${JSON.stringify(v)})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
const finished = (callId: string) =>
  until(
    `call ${callId} completes`,
    async () => (await call('GET', `/api/calls/${enc(callId)}`, { token: tokens.viewer })).body as CallDetails,
    (c) => c.status !== 'running',
  );

beforeAll(async () => {
  t = await startEphemeralStack();
  nc = await t.natsConnect('api-calls-test');
  Object.assign(tokens, await roleTokens(nc));
  api = await startApiServer({
    nc,
    temporal: { client: t.client, codec: payloadCodec(t.config), taskQueue: t.config.temporal.taskQueue },
    logger: createLogger('api', 'silent'),
    host: '127.0.0.1',
    port: await freePort(),
  });
  for (const flow of [reminder, pinFlow, inboundFlow]) {
    const published = await call('POST', '/api/flows', { token: tokens.operator, json: flow });
    expect(published.status, published.text).toBe(201);
  }
}, 120_000);
afterAll(async () => {
  await api?.close();
  await nc?.close();
  await t?.stop();
});

describe('POST /api/simulate', () => {
  it('answers what `dialflow simulate --json` prints, for a document and for a published version', async () => {
    const persona = { attempts: ['answered'], keys: ['1'] };
    const recipient = { phone: '+385915550123', firstName: 'Iva' };
    const file = join(dir, 'reminder.json');
    writeFileSync(file, JSON.stringify(reminder));
    const [doc, published, cli] = await Promise.all([
      call('POST', '/api/simulate', { token: tokens.operator, json: { flow: reminder, persona, recipient } }),
      call('POST', '/api/simulate', {
        token: tokens.operator,
        json: { flow: { id: reminder.id, version: reminder.version }, persona, recipient },
      }),
      Promise.resolve(
        spawnSync(
          process.execPath,
          [
            CLI_BIN,
            'simulate',
            file,
            '--persona',
            JSON.stringify(persona),
            '--recipient',
            JSON.stringify(recipient),
            '--json',
          ],
          { encoding: 'utf8', timeout: 90_000 },
        ),
      ),
    ]);
    expect(doc.status, doc.text).toBe(200);
    expect(published.status, published.text).toBe(200);
    expect(cli.status, cli.stderr).toBe(0);
    const fromCli = JSON.parse(cli.stdout) as Report;
    const fromDoc = doc.body as Report;
    expect(fromDoc).toMatchObject({
      outcome: 'answered',
      dials: 1,
      variables: { choice: '1' },
      trail: [
        { element: 'call', branch: 'answered' },
        { element: 'menu', branch: 'played' },
        { element: 'ask', branch: '1', input: '1' },
        { element: 'confirmed', branch: 'played' },
      ],
    });
    expect(fromDoc.events.some((e) => e.text.startsWith('say "Hi Iva'))).toBe(true);
    expect(timeless(fromDoc)).toEqual(timeless(fromCli));
    expect(timeless(published.body as Report)).toEqual(timeless(fromCli));
  }, 120_000);

  it('never shows a masked PIN, typed at the collect and read back in a prompt', async () => {
    const a = await call('POST', '/api/simulate', {
      token: tokens.operator,
      json: { flow: pinFlow, persona: { keys: [PIN] } },
    });
    expect(a.status, a.text).toBe(200);
    expect(a.text).not.toContain(PIN);
    const report = a.body as Report;
    expect(report.events.map((e) => e.text)).toContain('say "You entered xxxx."');
    expect(report.variables).toEqual({ pin: 'xxxx' });
  }, 90_000);

  it('refuses an invalid flow with the validator problems', async () => {
    const a = await call('POST', '/api/simulate', {
      token: tokens.operator,
      json: {
        flow: {
          id: 'broken',
          version: 1,
          start: 'call',
          elements: [{ id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'nowhere' } }],
        },
      },
    });
    expect(a.status).toBe(400);
    expect(errorCode(a)).toBe('flow.invalid');
    expect((a.body as { problems: Array<{ code: string }> }).problems.map((p) => p.code)).toContain(
      'next.unknownTarget',
    );
  });

  it('refuses a bad persona, a bad phone and a bad zone; 404 for a version that is not published', async () => {
    const persona = await call('POST', '/api/simulate', {
      token: tokens.operator,
      json: { flow: reminder, persona: { attempts: ['maybe'] } },
    });
    expect(persona.status).toBe(400);
    expect(errorCode(persona)).toBe('bad_request');
    expect((persona.body as { error: { message: string } }).error.message).toMatch(/persona/);
    const phone = await call('POST', '/api/simulate', {
      token: tokens.operator,
      json: { flow: reminder, recipient: { phone: '12345' } },
    });
    expect(phone.status).toBe(400);
    expect(errorCode(phone)).toBe('recipient.invalidPhone');
    const zone = await call('POST', '/api/simulate', {
      token: tokens.operator,
      json: { flow: reminder, recipient: { timeZone: 'Mars/Olympus' } },
    });
    expect(zone.status).toBe(400);
    expect(errorCode(zone)).toBe('recipient.invalidTimeZone');
    const missing = await call('POST', '/api/simulate', {
      token: tokens.operator,
      json: { flow: { id: reminder.id, version: 99 } },
    });
    expect(missing.status).toBe(404);
    expect(errorCode(missing)).toBe('not_found');
  });

  it('needs a token, of an operator: a viewer may not run flows (their httpRequest elements) on the API host', async () => {
    const a = await call('POST', '/api/simulate', { json: { flow: reminder } });
    expect(a.status).toBe(401);
    expect(errorCode(a)).toBe('unauthorized');
    const viewer = await call('POST', '/api/simulate', { token: tokens.viewer, json: { flow: reminder } });
    expect(viewer.status).toBe(403);
    expect(errorCode(viewer)).toBe('forbidden');
  });

  it('bounds the simulations: a few run, a few wait, the rest are refused at once', async () => {
    const queue = new SimulationQueue(1, 1);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const first = queue.run(() => gate.then(() => 'first'));
    const second = queue.run(async () => 'second');
    await expect(queue.run(async () => 'third')).rejects.toBeInstanceOf(SimulationBusyError);
    release();
    expect(await Promise.all([first, second])).toEqual(['first', 'second']);
    expect(await queue.run(async () => 'again')).toBe('again');
  });

  it('over HTTP: beyond the simulations running and waiting, 503 simulate.busy with retry-after', async () => {
    // A second server on the same stack that runs one simulation and queues none.
    const narrow = await startApiServer({
      nc,
      temporal: { client: t.client, codec: payloadCodec(t.config), taskQueue: t.config.temporal.taskQueue },
      logger: createLogger('api', 'silent'),
      host: '127.0.0.1',
      port: await freePort(),
      simulations: { running: 1, waiting: 0 },
    });
    try {
      const simulateOnce = () =>
        fetch(`${narrow.url}/api/simulate`, {
          method: 'POST',
          headers: { authorization: `Bearer ${tokens.operator}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            flow: { id: reminder.id, version: reminder.version },
            persona: { attempts: ['busy'] },
          }),
        });
      // A simulation starts a test server (over a second): the other two arrive while it runs.
      const answers = await Promise.all([simulateOnce(), simulateOnce(), simulateOnce()]);
      const statuses = answers.map((a) => a.status).sort();
      expect(statuses).toEqual([200, 503, 503]);
      for (const a of answers.filter((x) => x.status === 503)) {
        expect(a.headers.get('retry-after')).toMatch(/^\d+$/);
        expect(((await a.json()) as { error: { code: string } }).error.code).toBe('simulate.busy');
      }
    } finally {
      await narrow.close();
    }
  });
});

describe('/api/calls', () => {
  it('starts a call of a published flow, and reads its status, result and transcript once it completes', async () => {
    const started = await call('POST', '/api/calls', {
      token: tokens.operator,
      json: {
        flow: { id: reminder.id },
        recipient: { id: `r-${run}`, phone: '+385 91 555 0101', firstName: 'Ana' },
        persona: { attempts: ['answered'], keys: ['2'] },
      },
    });
    expect(started.status, started.text).toBe(201);
    const callId = `call:api:r-${run}`;
    expect(started.body).toEqual({ callId, campaignId: 'api', recipientId: `r-${run}` });

    const done = await finished(callId);
    expect(done).toMatchObject({ callId, campaignId: 'api', recipientId: `r-${run}`, status: 'completed' });
    expect(Date.parse(done.closeTime ?? '')).toBeGreaterThanOrEqual(Date.parse(done.startTime));
    expect(done.result).toMatchObject({
      outcome: 'answered',
      dials: 1,
      variables: { choice: '2' },
      visited: ['call', 'menu', 'ask', 'cancelled', 'end'],
      flow: { id: reminder.id, version: reminder.version },
    });
    const transcript = await call('GET', `/api/calls/${enc(callId)}/transcript`, { token: tokens.viewer });
    expect(transcript.status).toBe(200);
    const texts = (transcript.body as { events: Report['events'] }).events.map((e) => e.text);
    // The phone was normalised to E.164 before the call dialled it.
    expect(texts.filter((x) => x.startsWith('dial +385915550101 from +14155550100 (attempt 1'))).toHaveLength(1);
    expect(texts).toContain('DTMF_CAPTURED "2"');

    const entries = await AuditLog.open(nc).then((a) => a.recent(50));
    expect(entries.find((e) => e.action === 'call.start' && e.target.callId === callId)).toMatchObject({
      actor: { name: 'test-operator', role: 'operator' },
      outcome: 'started',
      target: { flowId: reminder.id, version: reminder.version },
    });
  }, 60_000);

  it('never shows a masked PIN in a call result or transcript', async () => {
    const started = await call('POST', '/api/calls', {
      token: tokens.operator,
      json: {
        flow: { id: pinFlow.id, version: 1 },
        recipient: { id: `pin-${run}`, phone: '+385915550102' },
        persona: { keys: [PIN] },
      },
    });
    expect(started.status, started.text).toBe(201);
    const callId = `call:api:pin-${run}`;
    const done = await finished(callId);
    expect(done.status).toBe('completed');
    expect(JSON.stringify(done)).not.toContain(PIN);
    expect(done.result?.variables).toEqual({ pin: 'xxxx' });
    const transcript = await call('GET', `/api/calls/${enc(callId)}/transcript`, { token: tokens.viewer });
    expect(transcript.status).toBe(200);
    expect(transcript.text).not.toContain(PIN);
    expect(transcript.text).toContain('say \\"You entered xxxx.\\"');
  }, 60_000);

  it('searches by campaign, by recipient and by both, a page at a time', async () => {
    const campaignA = `a-${run}`;
    const campaignB = `b-${run}`;
    const starts = [
      [campaignA, 'x1'],
      [campaignA, 'x2'],
      [campaignB, 'x1'],
    ] as const;
    // Calls of other campaign ids than the API's own, started as a campaign's dispatcher would.
    for (const [campaignId, id] of starts)
      await startCall(t.client, {
        flow: parseFlow(reminder),
        recipient: { id: `${id}-${run}`, phone: '+385915550103' },
        campaignId,
        taskQueue: t.config.temporal.taskQueue,
        hints: { persona: { attempts: ['busy'] } },
      });
    for (const [campaignId, id] of starts) await finished(`call:${campaignId}:${id}-${run}`);
    const search = (query: string) =>
      call('GET', `/api/calls?${query}`, { token: tokens.viewer }).then((a) => {
        expect(a.status, a.text).toBe(200);
        return a.body as CallList;
      });
    // Visibility follows the calls' close a moment later.
    const byCampaign = await until(
      'campaign A listed as completed',
      () => search(`campaignId=${campaignA}`),
      (l) => l.calls.length === 2 && l.calls.every((c) => c.status === 'completed'),
    );
    expect(byCampaign.calls.map((c) => c.callId).sort()).toEqual([
      `call:${campaignA}:x1-${run}`,
      `call:${campaignA}:x2-${run}`,
    ]);
    expect(byCampaign.calls.every((c) => c.outcome === 'busy' && c.campaignId === campaignA)).toBe(true);

    const byRecipient = await until(
      'recipient x1 in both campaigns',
      () => search(`recipientId=x1-${run}`),
      (l) => l.calls.length === 2,
    );
    expect(byRecipient.calls.map((c) => c.campaignId).sort()).toEqual([campaignA, campaignB].sort());

    const both = await search(`campaignId=${campaignB}&recipientId=x1-${run}`);
    expect(both.calls.map((c) => c.callId)).toEqual([`call:${campaignB}:x1-${run}`]);

    const first = await search(`campaignId=${campaignA}&limit=1`);
    expect(first.calls).toHaveLength(1);
    expect(first.nextPageToken).toBeTruthy();
    const second = await search(`campaignId=${campaignA}&limit=1&pageToken=${first.nextPageToken ?? ''}`);
    expect(second.calls).toHaveLength(1);
    expect(second.calls[0]?.callId).not.toBe(first.calls[0]?.callId);

    const none = await search(`campaignId=nobody-${run}`);
    expect(none).toEqual({ calls: [] });
  }, 90_000);

  it('409 for a call id that exists, and the first call is left as it was', async () => {
    const body = {
      flow: { id: reminder.id },
      recipient: { id: `dup-${run}`, phone: '+385915550104' },
      persona: { attempts: ['busy'] },
    };
    expect((await call('POST', '/api/calls', { token: tokens.operator, json: body })).status).toBe(201);
    const again = await call('POST', '/api/calls', { token: tokens.operator, json: body });
    expect(again.status).toBe(409);
    expect(errorCode(again)).toBe('call.duplicate');
    const done = await finished(`call:api:dup-${run}`);
    expect(done.result?.outcome).toBe('busy');
  }, 60_000);

  it('400 for a bad phone, zone, recipient id, any campaign id or an inbound flow; 404 for a flow not published', async () => {
    const start = (json: unknown) => call('POST', '/api/calls', { token: tokens.operator, json });
    const flow = { id: reminder.id };
    const badPhone = await start({ flow, recipient: { phone: '0915550105' } });
    expect(badPhone.status).toBe(400);
    expect(errorCode(badPhone)).toBe('recipient.invalidPhone');
    const notANumber = await start({ flow, recipient: { phone: '+3859' } });
    expect(errorCode(notANumber)).toBe('recipient.invalidPhone');
    const zone = await start({ flow, recipient: { phone: '+385915550105', timeZone: 'Nowhere/City' } });
    expect(zone.status).toBe(400);
    expect(errorCode(zone)).toBe('recipient.invalidTimeZone');
    for (const bad of [
      { flow, recipient: { id: 'has:colon', phone: '+385915550105' } },
      { flow, recipient: { phone: '+385915550105' }, campaignId: 'a:b' },
      // No campaign id at all: one-off calls are of campaign `api`.
      { flow, recipient: { phone: '+385915550105' }, campaignId: 'spring-promo' },
      { flow, recipient: { phone: '+385915550105' }, campaignId: 'api' },
      { flow, recipient: {} },
      { recipient: { phone: '+385915550105' } },
    ]) {
      const a = await start(bad);
      expect(a.status, JSON.stringify(bad)).toBe(400);
      expect(errorCode(a)).toBe('bad_request');
    }
    const inbound = await start({ flow: { id: inboundFlow.id }, recipient: { phone: '+385915550105' } });
    expect(inbound.status).toBe(400);
    expect(errorCode(inbound)).toBe('flow.inbound');
    const missing = await start({ flow: { id: 'no-such-flow' }, recipient: { phone: '+385915550105' } });
    expect(missing.status).toBe(404);
    expect(errorCode(missing)).toBe('not_found');
  });

  it('no campaign may take the ids of calls of no campaign (api, cli, simulate, inbound)', async () => {
    for (const campaignId of ['api', 'cli', 'simulate', 'inbound', 'API']) {
      expect(campaignIdProblem(campaignId), campaignId).toMatch(/is reserved/);
      await expect(
        // Refused before anything is started: the rest of the input does not matter.
        startCampaign(t.client, t.config.temporal.taskQueue, { campaignId } as CampaignWorkflowInput),
      ).rejects.toThrow(RangeError);
    }
    expect(campaignIdProblem('api-2')).toBeUndefined();
    expect(campaignIdProblem('a:b')).toMatch(/letters, digits/);
  });

  it('404 call.notFound for an unknown call, and for a workflow that is not a call', async () => {
    for (const callId of [`call:api:nobody-${run}`, 'campaign:x', 'not-a-call']) {
      for (const path of [`/api/calls/${enc(callId)}`, `/api/calls/${enc(callId)}/transcript`]) {
        const a = await call('GET', path, { token: tokens.viewer });
        expect(a.status, path).toBe(404);
        expect(errorCode(a)).toBe('call.notFound');
      }
    }
  });

  it('400 for a bad search: a page token that is not one, a limit out of range', async () => {
    // A token of another search, and one altered: the server is never asked with them.
    const page = (await call('GET', `/api/calls?campaignId=a-${run}&limit=1`, { token: tokens.viewer }))
      .body as CallList;
    expect(page.nextPageToken).toBeTruthy();
    const token = page.nextPageToken ?? '';
    const altered = `${token.slice(0, -2)}${token.endsWith('AA') ? 'BB' : 'AA'}`;
    for (const query of [
      'pageToken=not!base64',
      'pageToken=AAAA',
      `campaignId=b-${run}&limit=1&pageToken=${token}`,
      `campaignId=a-${run}&limit=1&pageToken=${altered}`,
      'limit=0',
      'limit=1000',
      'campaignId=a:b',
    ]) {
      const a = await call('GET', `/api/calls?${query}`, { token: tokens.viewer });
      expect(a.status, query).toBe(400);
      expect(errorCode(a)).toBe('bad_request');
    }
  });

  it('are described in the OpenAPI document', async () => {
    const a = await call('GET', '/api/openapi.json');
    expect(a.status, a.text).toBe(200);
    const paths = (a.body as { paths: Record<string, Record<string, unknown>> }).paths;
    expect(Object.keys(paths['/api/calls'] ?? {}).sort()).toEqual(['get', 'post']);
    expect(paths['/api/calls/{callId}']).toHaveProperty('get');
    expect(paths['/api/calls/{callId}/transcript']).toHaveProperty('get');
    expect(paths['/api/simulate']).toHaveProperty('post');
  });

  it('401 without a token on every route; 403 for a viewer starting a call', async () => {
    for (const [method, path] of [
      ['POST', '/api/calls'],
      ['GET', '/api/calls'],
      ['GET', `/api/calls/${enc('call:api:x')}`],
      ['GET', `/api/calls/${enc('call:api:x')}/transcript`],
    ] as const) {
      const a = await call(method, path, method === 'POST' ? { json: {} } : {});
      expect(a.status, path).toBe(401);
      expect(errorCode(a)).toBe('unauthorized');
    }
    const viewer = await call('POST', '/api/calls', {
      token: tokens.viewer,
      json: { flow: { id: reminder.id }, recipient: { phone: '+385915550106' } },
    });
    expect(viewer.status).toBe(403);
    expect(errorCode(viewer)).toBe('forbidden');
  });
});
