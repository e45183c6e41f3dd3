// The webhook ingress against a real nats-server: authentication, limits, validation and dedupe,
// checked on the JetStream stream itself (nothing may be published for a refused request).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { Registry } from 'prom-client';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Stack, freePort } from '../../src/dev/stack.js';
import { connectNats, ensureStreams, EVENTS_STREAM } from '../../src/telephony/nats.js';
import {
  startWebhookServer,
  basicAuthMatches,
  type RunningWebhookServer,
} from '../../src/telephony/infobip/webhooks.js';
import { InfobipConfigError } from '../../src/telephony/infobip/options.js';
import { webhookEventId } from '../../src/telephony/infobip/events.js';
import { InfobipCallMap, type CommandMemo } from '../../src/telephony/infobip/calls.js';
import { InfobipActions } from '../../src/telephony/infobip/actions.js';
import { InfobipClient } from '../../src/telephony/infobip/client.js';
import type { TelephonyEvent } from '../../src/telephony/contract.js';

const USER = 'infobip';
const PASSWORD = 'correct horse battery';
const auth = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const GOOD = auth(USER, PASSWORD);

let dir: string;
let stack: Stack;
let nc: NatsConnection;
let jsm: JetStreamManager;
let server: RunningWebhookServer;
const registry = new Registry();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dialflow-ib-wh-'));
  stack = new Stack(dir);
  const nats = await stack.startNats({ port: await freePort(), storeDir: join(dir, 'nats') });
  nc = await connectNats(nats.url, 'infobip-webhooks-test');
  await ensureStreams(nc);
  jsm = await jetstreamManager(nc);
  server = await startWebhookServer({
    nc,
    options: { host: '127.0.0.1', port: 0, user: USER, password: PASSWORD, maxBodyBytes: 4096 },
    registry,
    log: () => {},
    resolveWaitMs: 200,
  });
});
afterAll(async () => {
  await server?.stop();
  await nc?.close();
  await stack?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const published = async () =>
  (await jsm.streams.info(EVENTS_STREAM, { subjects_filter: 'dialflow.events.infobip.>' })).state.messages;

function post(
  body: string | Buffer,
  headers: Record<string, string> = {},
  path = '/webhooks/infobip',
  method = 'POST',
  url = server.url,
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, path, method, headers: { 'Content-Type': 'application/json', ...headers } },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const ringing = (callId: string) =>
  JSON.stringify({
    type: 'CALL_RINGING',
    callId: 'ib-77',
    conferenceId: null,
    dialogId: null,
    timestamp: '2025-03-01T10:00:00.000Z',
    callsConfigurationId: 'cfg',
    properties: {
      call: {
        id: 'ib-77',
        endpoint: { type: 'PHONE', phoneNumber: '385911234567' },
        direction: 'OUTBOUND',
        state: 'RINGING',
        customData: { callId, dialCommandId: 'cmd-1' },
        externalId: callId,
      },
    },
  });

describe('webhook ingress', () => {
  it('refuses to start without credentials', async () => {
    await expect(
      startWebhookServer({ nc, options: { host: '127.0.0.1', port: 0, maxBodyBytes: 1024 } }),
    ).rejects.toBeInstanceOf(InfobipConfigError);
    await expect(
      startWebhookServer({ nc, options: { host: '127.0.0.1', port: 0, user: 'u', maxBodyBytes: 1024 } }),
    ).rejects.toBeInstanceOf(InfobipConfigError);
  });

  it('listens on loopback', () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/webhooks\/infobip$/);
  });

  it('constant-time Basic check accepts only the exact pair', () => {
    expect(basicAuthMatches(GOOD, USER, PASSWORD)).toBe(true);
    expect(basicAuthMatches(auth(USER, `${PASSWORD}x`), USER, PASSWORD)).toBe(false);
    expect(basicAuthMatches(auth('', ''), '', '')).toBe(false);
    expect(basicAuthMatches(undefined, USER, PASSWORD)).toBe(false);
    expect(basicAuthMatches(`Bearer ${PASSWORD}`, USER, PASSWORD)).toBe(false);
  });

  it('no or wrong credentials → 401, and nothing is published', async () => {
    const before = await published();
    const body = ringing('call:auth:r1~1');
    for (const headers of [
      {} as Record<string, string>,
      { Authorization: auth(USER, 'wrong') },
      { Authorization: auth('someone', PASSWORD) },
      { Authorization: 'Basic !!!' },
      { Authorization: `App ${PASSWORD}` },
    ]) {
      const res = await post(body, headers);
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Basic /);
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(await published()).toBe(before);
  });

  it('a body over the limit → 413 (declared or streamed), nothing published', async () => {
    const before = await published();
    const big = JSON.stringify({ type: 'CALL_RINGING', pad: 'x'.repeat(5000) });
    expect((await post(big, { Authorization: GOOD })).status).toBe(413);
    expect((await post(big, { Authorization: GOOD, 'Transfer-Encoding': 'chunked' })).status).toBe(413);
    expect(await published()).toBe(before);
  });

  it('an anonymous endless body is not drained on a kept-alive connection: 401, then the connection closes', async () => {
    const before = await published();
    const u = new URL(server.url);
    const sock = connect(Number(u.port), u.hostname);
    let answer = '';
    sock.on('data', (c: Buffer) => (answer += c.toString()));
    const closed = new Promise<number>((resolve) => sock.on('close', () => resolve(Date.now())));
    sock.on('error', () => {});
    sock.write(
      'POST /webhooks/infobip HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
    );
    // Keep streaming far past the body limit, as an attacker would.
    const pump = setInterval(() => sock.writable && sock.write(`400\r\n${'x'.repeat(0x400)}\r\n`), 5);
    const t0 = Date.now();
    const at = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 2000))]);
    clearInterval(pump);
    sock.destroy();
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
    expect(at).toBeGreaterThan(0);
    expect(at - t0).toBeLessThan(2000);
    expect(await published()).toBe(before);
  });

  it('a body whose Content-Length lies (larger than sent) or that stalls is cut off by the request timeout', async () => {
    const s = await startWebhookServer({
      nc,
      options: {
        host: '127.0.0.1',
        port: 0,
        user: USER,
        password: PASSWORD,
        maxBodyBytes: 4096,
        headersTimeoutMs: 300,
        requestTimeoutMs: 600,
      },
      log: () => {},
    });
    try {
      const u = new URL(s.url);
      const open = (text: string) => {
        const sock = connect(Number(u.port), u.hostname);
        sock.on('error', () => {});
        sock.resume(); // read the 408, so the server's FIN is seen
        sock.write(text);
        const t0 = Date.now();
        return Promise.race([
          new Promise<number>((r) => sock.on('close', () => r(Date.now() - t0))),
          new Promise<number>((r) => setTimeout(() => r(Infinity), 3000)),
        ]).finally(() => sock.destroy());
      };
      // Slow-loris: headers that never end.
      const headers = open('POST /webhooks/infobip HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n');
      // Authenticated, Content-Length 100, 10 bytes sent, then nothing.
      const body = open(
        `POST /webhooks/infobip HTTP/1.1\r\nHost: x\r\nAuthorization: ${GOOD}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"type":"C`,
      );
      expect(await headers).toBeLessThan(2500);
      expect(await body).toBeLessThan(2500);
    } finally {
      await s.stop();
    }
  });

  it('bad JSON, a bad envelope or bad properties → 400, nothing published', async () => {
    const before = await published();
    expect((await post('{not json', { Authorization: GOOD })).status).toBe(400);
    expect((await post(JSON.stringify({ callId: 'x' }), { Authorization: GOOD })).status).toBe(400);
    expect((await post(JSON.stringify([1, 2]), { Authorization: GOOD })).status).toBe(400);
    const bad = await post(
      JSON.stringify({ type: 'DTMF_CAPTURED', callId: 'ib-1', properties: { dtmf: 5, customData: { callId: 'a~1' } } }),
      { Authorization: GOOD },
    );
    expect(bad.status).toBe(400);
    expect(bad.body).toContain('properties.dtmf');
    expect(await published()).toBe(before);
  });

  it('other paths and methods are refused', async () => {
    expect((await post('{}', { Authorization: GOOD }, '/other')).status).toBe(404);
    expect((await post('', { Authorization: GOOD }, '/webhooks/infobip', 'GET')).status).toBe(405);
  });

  it('maps and publishes once; a redelivered body is deduplicated by its hash', async () => {
    const before = await published();
    const body = ringing('call:dedupe:r1~1');
    const a = await post(body, { Authorization: GOOD });
    const b = await post(body, { Authorization: GOOD });
    expect([a.status, b.status]).toEqual([204, 204]);
    expect(await published()).toBe(before + 1);
    const stored = await jsm.streams.getMessage(EVENTS_STREAM, {
      last_by_subj: 'dialflow.events.infobip.CALL_RINGING',
    });
    const ev = stored!.json<TelephonyEvent>();
    expect(ev).toEqual({
      id: webhookEventId(body),
      type: 'CALL_RINGING',
      callId: 'call:dedupe:r1~1',
      timestamp: '2025-03-01T10:00:00.000Z',
      properties: { commandId: 'cmd-1', infobipCallId: 'ib-77' },
    });
    expect(stored!.header?.get('Nats-Msg-Id')).toBe(webhookEventId(body));
  });

  it('a call whose create answer was lost is linked from its own events, so later commands reach it', async () => {
    const callId = 'call:lost-answer:r1~1';
    const calls = await InfobipCallMap.open(nc);
    expect(await calls.infobipIdOf(callId)).toBeUndefined();
    const body = ringing(callId).replace(/CALL_RINGING/g, 'CALL_ESTABLISHED');
    expect((await post(body, { Authorization: GOOD })).status).toBe(204);
    expect(await calls.infobipIdOf(callId)).toBe('ib-77');
    expect(await calls.byInfobipId('ib-77')).toEqual({ callId, commandId: 'cmd-1' });
  });

  it('an unknown event type is answered 2xx, counted, and not published', async () => {
    const before = await published();
    expect(
      (await post(JSON.stringify({ type: 'SOMETHING_NEW', callId: 'ib-1', properties: {} }), { Authorization: GOOD }))
        .status,
    ).toBe(204);
    expect(
      (
        await post(JSON.stringify({ type: 'CALL_PRE_ESTABLISHED', callId: 'ib-1', properties: {} }), {
          Authorization: GOOD,
        })
      ).status,
    ).toBe(204);
    expect(await published()).toBe(before);
    const text = await registry.metrics();
    expect(text).toMatch(/dialflow_infobip_webhooks_total\{type="unknown",status="204"\} 1/);
    expect(text).toMatch(/dialflow_infobip_webhooks_total\{type="-",status="401"\} 6/);
  });

  it('an event of a call nobody knows → 503 so Infobip retries later', async () => {
    const body = JSON.stringify({
      type: 'SAY_FINISHED',
      callId: 'ib-nobody',
      properties: { duration: 1, playedCompletely: true },
    });
    const res = await post(body, { Authorization: GOOD });
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
  });
});

describe('prompt follow-ups, run by the ingress when the prompt ends', () => {
  /** A Calls API stand-in: records every request; `down` answers 503 (not processed) instead of 200. */
  let api: Server;
  let apiUrl: string;
  let down = false;
  const seen: Array<{ path: string; body: unknown; status: number }> = [];
  let ingress: RunningWebhookServer;
  let calls: InfobipCallMap;

  beforeAll(async () => {
    api = createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        const status = down ? 503 : 200;
        seen.push({ path: req.url ?? '', body: text ? (JSON.parse(text) as unknown) : undefined, status });
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(status === 200 ? { status: 'PENDING' } : {}));
      });
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', () => r()));
    apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
    ingress = await startWebhookServer({
      nc,
      options: {
        host: '127.0.0.1',
        port: 0,
        user: USER,
        password: PASSWORD,
        maxBodyBytes: 4096,
        infobip: { baseUrl: apiUrl, apiKey: 'k', requestsPerSecond: 100 },
      },
      log: () => {},
      retry: { attempts: 1 },
    });
    calls = await InfobipCallMap.open(nc);
  });
  afterAll(async () => {
    await ingress?.stop();
    await new Promise<void>((r) => (api ? api.close(() => r()) : r()));
  });

  const capture = (callId: string, commandId: string, maxDigits: number) => ({
    action: 'captureDtmf' as const,
    callId,
    commandId,
    elementId: 'ask',
    maxDigits,
    terminator: '#' as const,
    firstDigitTimeoutMs: 5000,
    interDigitTimeoutMs: 3000,
  });
  /** The prompt's record as the command side left it (possibly a process that is gone since). */
  async function promptSent(commandId: string, memo: CommandMemo): Promise<void> {
    expect(await calls.claimCommand(commandId, memo)).toMatchObject({ claimed: true });
    await calls.setCommand(commandId, { ...memo, state: 'sent' });
  }
  const sayFinished = (infobipId: string, callId: string, commandId: string, capturedDtmf?: string) =>
    JSON.stringify({
      type: 'SAY_FINISHED',
      callId: infobipId,
      timestamp: '2025-03-01T10:00:05.000Z',
      properties: {
        duration: 900,
        playedCompletely: capturedDtmf === undefined,
        ...(capturedDtmf !== undefined ? { capturedDtmf } : {}),
        customData: { callId, commandId },
      },
    });
  const last = async (type: string) =>
    (await jsm.streams.getMessage(EVENTS_STREAM, {
      last_by_subj: `dialflow.events.infobip.${type}`,
    }))!.json<TelephonyEvent>();

  it('sends the capture once, after the prompt event, and answers 2xx only once it was sent', async () => {
    const callId = `call:fu-${Date.now()}:r1~1`;
    await calls.link(callId, 'ib-fu-1');
    const then = capture(callId, 'c-fu-ask', 3);
    await promptSent('c-fu-say', { holdEvents: ['SAY_FINISHED'], interruptible: true, then });
    const body = sayFinished('ib-fu-1', callId, 'c-fu-say', '4');
    const requests = () => seen.filter((r) => r.path === '/calls/1/calls/ib-fu-1/capture/dtmf');

    // Infobip cannot take the capture now: the webhook is refused, so Infobip delivers it again.
    down = true;
    expect((await post(body, { Authorization: GOOD }, undefined, undefined, ingress.url)).status).toBe(503);
    down = false;
    expect(requests().map((r) => r.status)).toEqual([503]);
    expect(await calls.command('c-fu-ask')).toBeUndefined();
    // The prompt's own event went first, held, with the key that stopped it.
    expect(await last('SAY_FINISHED')).toMatchObject({
      callId,
      properties: { commandId: 'c-fu-say', dtmf: '4', interrupted: true, hold: true },
    });

    const before = await published();
    expect((await post(body, { Authorization: GOOD }, undefined, undefined, ingress.url)).status).toBe(204);
    expect(await published()).toBe(before); // the SAY_FINISHED again: deduplicated
    expect(requests().map((r) => r.status)).toEqual([503, 200]);
    // The typed key is the first digit: two more to collect, the next one an inter-digit wait away.
    expect(requests()[1]!.body).toEqual({
      maxLength: 2,
      timeout: 3000,
      digitTimeout: 3000,
      terminator: '#',
      customData: { callId, commandId: 'c-fu-ask', maxDigits: '3', typed: '4' },
    });
    expect(await calls.command('c-fu-ask')).toMatchObject({ state: 'sent' });

    // A third delivery, and the workflow re-sending the capture on its own: nothing new at Infobip.
    expect((await post(body, { Authorization: GOOD }, undefined, undefined, ingress.url)).status).toBe(204);
    const alone = new InfobipActions({
      client: new InfobipClient({ baseUrl: apiUrl, apiKey: 'k', requestsPerSecond: 100 }),
      calls,
      publish: () => Promise.reject(new Error('nothing to publish')),
      log: () => {},
    });
    expect(await alone.run(then)).toEqual({ ok: true });
    expect(requests()).toHaveLength(2);
  });

  it('keys that already end the capture: DTMF_CAPTURED at once, Infobip not asked', async () => {
    const callId = `call:fu-typed-${Date.now()}:r1~1`;
    await calls.link(callId, 'ib-fu-2');
    await promptSent('c-fu-say2', {
      holdEvents: ['SAY_FINISHED'],
      interruptible: true,
      then: { ...capture(callId, 'c-fu-ask2', 1), holdEvents: ['DTMF_CAPTURED'] },
    });
    const n = seen.length;
    const before = await published();
    const body = sayFinished('ib-fu-2', callId, 'c-fu-say2', '7');
    expect((await post(body, { Authorization: GOOD }, undefined, undefined, ingress.url)).status).toBe(204);
    expect(await published()).toBe(before + 2);
    expect(await last('DTMF_CAPTURED')).toMatchObject({
      id: `${callId}:c-fu-ask2:typed`,
      callId,
      timestamp: '2025-03-01T10:00:05.000Z',
      properties: { commandId: 'c-fu-ask2', dtmf: '7', reason: 'maxDigits', hold: true },
    });
    expect((await post(body, { Authorization: GOOD }, undefined, undefined, ingress.url)).status).toBe(204);
    expect(await published()).toBe(before + 2);
    expect(seen.length).toBe(n);

    // '#' typed into the prompt ends the capture with what came before it (nothing).
    await promptSent('c-fu-say3', { interruptible: true, then: capture(callId, 'c-fu-ask3', 4) });
    expect(
      (
        await post(
          sayFinished('ib-fu-2', callId, 'c-fu-say3', '#'),
          { Authorization: GOOD },
          undefined,
          undefined,
          ingress.url,
        )
      ).status,
    ).toBe(204);
    expect((await last('DTMF_CAPTURED')).properties).toMatchObject({
      commandId: 'c-fu-ask3',
      dtmf: '',
      reason: 'terminator',
    });
    expect(seen.length).toBe(n);
  });

  it('a hang-up follows the prompt; a refused capture ends at once as an error', async () => {
    const callId = `call:fu-end-${Date.now()}:r1~1`;
    await calls.link(callId, 'ib-fu-3');
    await promptSent('c-fu-bye', {
      interruptible: false,
      then: { action: 'hangup', callId, commandId: 'c-fu-hang', elementId: 'end' },
    });
    expect(
      (
        await post(
          sayFinished('ib-fu-3', callId, 'c-fu-bye'),
          { Authorization: GOOD },
          undefined,
          undefined,
          ingress.url,
        )
      ).status,
    ).toBe(204);
    expect(seen.filter((r) => r.path === '/calls/1/calls/ib-fu-3/hangup')).toHaveLength(1);

    await calls.link(`${callId}x`, 'ib-fu-4');
    // maxDigits 200 is more than Infobip allows: the stand-in refuses it like the API would.
    const refusing = createServer((_req, res) => {
      res.writeHead(400, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ requestError: { serviceException: { messageId: 'BAD_REQUEST', text: 'maxLength' } } }));
    });
    await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', () => r()));
    const s = await startWebhookServer({
      nc,
      options: {
        host: '127.0.0.1',
        port: 0,
        user: USER,
        password: PASSWORD,
        maxBodyBytes: 4096,
        infobip: {
          baseUrl: `http://127.0.0.1:${(refusing.address() as AddressInfo).port}`,
          apiKey: 'k',
          requestsPerSecond: 100,
        },
      },
      log: () => {},
    });
    try {
      await promptSent('c-fu-say5', { interruptible: true, then: capture(`${callId}x`, 'c-fu-ask5', 200) });
      expect(
        (
          await post(
            sayFinished('ib-fu-4', `${callId}x`, 'c-fu-say5'),
            { Authorization: GOOD },
            undefined,
            undefined,
            s.url,
          )
        ).status,
      ).toBe(204);
      expect(await last('DTMF_CAPTURED')).toMatchObject({
        callId: `${callId}x`,
        properties: { commandId: 'c-fu-ask5', dtmf: '', reason: 'error', failed: true },
      });
      expect(await calls.command('c-fu-ask5')).toMatchObject({ state: 'failed' });
    } finally {
      await s.stop();
      await new Promise<void>((r) => refusing.close(() => r()));
    }
  });

  it('without API settings a follow-up cannot be sent: 503, so it is not lost', async () => {
    const callId = `call:fu-noapi-${Date.now()}:r1~1`;
    await promptSent('c-fu-say6', { interruptible: true, then: capture(callId, 'c-fu-ask6', 2) });
    expect((await post(sayFinished('ib-fu-6', callId, 'c-fu-say6'), { Authorization: GOOD })).status).toBe(503);
    expect(await calls.command('c-fu-ask6')).toBeUndefined();
  });
});
