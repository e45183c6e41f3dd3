// The fake Infobip Calls API (test/fake-infobip) that the Infobip provider's tests run against:
// strict like the official models, scripted callees, Basic-auth webhooks, chaos.
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../src/tools/net.mjs';
import {
  startFakeInfobip,
  models,
  type CallsEvent,
  type FakeInfobip,
  type FakeInfobipOptions,
} from '../fake-infobip/server.js';

const API_KEY = 'test-api-key';
const USER = 'infobip';
const PASSWORD = 'hook-secret';
const CONFIG = 'calls-config-1';

interface Received {
  auth: string | undefined;
  body: CallsEvent;
  raw: string;
}

/** A local webhook receiver; `failFirst` answers 500 to that many requests first. */
async function startReceiver(
  failFirst = 0,
): Promise<{ url: string; received: Received[]; close: () => Promise<void> }> {
  const received: Received[] = [];
  let failures = failFirst;
  const port = await freePort();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      if (failures > 0) {
        failures--;
        res.writeHead(500).end();
        return;
      }
      received.push({ auth: req.headers.authorization, body: JSON.parse(raw) as CallsEvent, raw });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${port}/webhooks/infobip`,
    received,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

async function setup(extra: Partial<FakeInfobipOptions> = {}, failFirst = 0) {
  const receiver = await startReceiver(failFirst);
  const fake = await startFakeInfobip({
    apiKey: API_KEY,
    webhookUrl: receiver.url,
    webhookUser: USER,
    webhookPassword: PASSWORD,
    timeScale: 0.01,
    ...extra,
  });
  cleanups.push(receiver.close, fake.stop);
  return { fake, receiver };
}

async function api(
  fake: FakeInfobip,
  method: string,
  path: string,
  body?: unknown,
  auth: string | null = `App ${API_KEY}`,
) {
  const headers: Record<string, string> = {};
  if (auth !== null) headers.authorization = auth;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(fake.baseUrl + path, {
    method,
    headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const type = res.headers.get('content-type') ?? '';
  const data: unknown = type.includes('json')
    ? await res.json().catch(() => undefined)
    : Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, data: data as Record<string, unknown> };
}

const createCall = (fake: FakeInfobip, phoneNumber: string, extra: Record<string, unknown> = {}) =>
  api(fake, 'POST', '/calls/1/calls', {
    endpoint: { type: 'PHONE', phoneNumber },
    from: '+41790000000',
    callsConfigurationId: CONFIG,
    externalId: 'df-call-1',
    customData: { dialflowCallId: 'df-call-1' },
    ...extra,
  });

const serviceException = (data: unknown) =>
  (data as { requestError: { serviceException: { messageId: string; text: string } } }).requestError.serviceException;

const waitType = (fake: FakeInfobip, type: CallsEvent['type'], callId?: string, timeoutMs = 5000) =>
  fake.waitForEvent((e) => e.type === type && (callId === undefined || e.callId === callId), timeoutMs);

async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('fake Infobip: strictness', () => {
  it('answers 401 with an Infobip error body without or with a wrong App key', async () => {
    const { fake } = await setup();
    for (const auth of [null, 'App wrong', `Basic ${API_KEY}`, API_KEY]) {
      const r = await api(
        fake,
        'POST',
        '/calls/1/calls',
        { endpoint: { type: 'PHONE', phoneNumber: '41790000001' }, callsConfigurationId: CONFIG },
        auth,
      );
      expect(r.status).toBe(401);
      expect(serviceException(r.data).messageId).toBe('UNAUTHORIZED');
    }
    expect(fake.callsCreated.total).toBe(0);
  });

  it('rejects unknown fields, wrong types, missing required fields and bad enums with 400 BAD_REQUEST', async () => {
    const { fake } = await setup();
    const base = { endpoint: { type: 'PHONE', phoneNumber: '41790000001' }, callsConfigurationId: CONFIG };
    const bad: Array<[string, unknown]> = [
      ['unknown top-level field', { ...base, callbackUrl: 'http://x' }],
      ['unknown nested field', { ...base, endpoint: { type: 'PHONE', phoneNumber: '41790000001', extension: '12' } }],
      ['wrong type', { ...base, connectTimeout: '30' }],
      ['non-integer', { ...base, maxDuration: 1.5 }],
      ['customData value not a string', { ...base, customData: { attempt: 1 } }],
      ['missing endpoint', { callsConfigurationId: CONFIG }],
      ['missing callsConfigurationId', { endpoint: base.endpoint }],
      ['unknown endpoint type', { ...base, endpoint: { type: 'PSTN', phoneNumber: '41790000001' } }],
      ['machineDetection without enabled', { ...base, machineDetection: {} }],
      ['bad recordingType', { ...base, recording: { recordingType: 'VIDEO' } }],
    ];
    for (const [why, body] of bad) {
      const r = await api(fake, 'POST', '/calls/1/calls', body);
      expect(r.status, why).toBe(400);
      expect(serviceException(r.data).messageId, why).toBe('BAD_REQUEST');
    }
    const notJson = await fetch(`${fake.baseUrl}/calls/1/calls`, {
      method: 'POST',
      headers: { authorization: `App ${API_KEY}`, 'content-type': 'application/json' },
      body: '{"endpoint":',
    });
    expect(notJson.status).toBe(400);
    expect(fake.callsCreated.total).toBe(0);
    expect(fake.requests.every((r) => r.status >= 400)).toBe(true);
  });

  it('validates action bodies against their models and answers 404 for an unknown call id', async () => {
    const { fake } = await setup({ callees: { '41790000001': { answer: 'human' } } });
    const created = await createCall(fake, '41790000001');
    const id = String(created.data.id);
    await waitType(fake, 'CALL_ESTABLISHED', id);
    const cases: Array<[string, string, unknown]> = [
      ['say without language', 'say', { text: 'Hello' }],
      ['say with a bad language', 'say', { text: 'Hello', language: 'klingon' }],
      ['say speechRate out of range', 'say', { text: 'Hello', language: 'en', speechRate: 3 }],
      ['say with an unknown field', 'say', { text: 'Hello', language: 'en', voice: 'Joanna' }],
      ['say stopOn of an unknown type', 'say', { text: 'Hello', language: 'en', stopOn: { type: 'SPEECH' } }],
      ['capture without timeout', 'capture/dtmf', { maxLength: 1 }],
      ['capture with timeout as string', 'capture/dtmf', { maxLength: 1, timeout: '5000' }],
      ['capture with a two-digit terminator', 'capture/dtmf', { maxLength: 4, timeout: 5000, terminator: '##' }],
      [
        'capture customData not a map of strings',
        'capture/dtmf',
        { maxLength: 1, timeout: 5000, customData: { n: 1 } },
      ],
      ['play without content', 'play', { loopCount: 1 }],
      ['play URL content with fileId', 'play', { content: { type: 'URL', fileId: 'x' } }],
      ['start-recording without recordingType', 'start-recording', { recording: { maxSilence: 3 } }],
      ['hangup with an unknown errorCode', 'hangup', { errorCode: 'BYE' }],
      ['stop-recording with a body field', 'stop-recording', { reason: 'escape' }],
    ];
    for (const [why, action, body] of cases) {
      const r = await api(fake, 'POST', `/calls/1/calls/${id}/${action}`, body);
      expect(r.status, why).toBe(400);
      expect(serviceException(r.data).messageId, why).toBe('BAD_REQUEST');
    }
    const unknown = await api(fake, 'POST', '/calls/1/calls/no-such-call/say', { text: 'Hi', language: 'en' });
    expect(unknown.status).toBe(404);
    expect(serviceException(unknown.data).messageId).toBe('NOT_FOUND');
    expect((await api(fake, 'GET', '/calls/1/calls/no-such-call')).status).toBe(404);
    // A valid say still works after all the rejects.
    expect((await api(fake, 'POST', `/calls/1/calls/${id}/say`, { text: 'Hi', language: 'en' })).data).toEqual({
      status: 'PENDING',
    });
  });

  it('treats an explicit null like an absent field, as Jackson does (but a null required field is still missing)', async () => {
    const { fake } = await setup();
    const ok = await createCall(fake, '41790000005', { from: null, connectTimeout: null, machineDetection: null });
    expect(ok.status).toBe(201);
    const missing = await api(fake, 'POST', '/calls/1/calls', { endpoint: null, callsConfigurationId: CONFIG });
    expect(missing.status).toBe(400);
    expect(serviceException(missing.data).text).toContain('endpoint');
  });

  it('enforces the CallsErrorCode hang-up rules', async () => {
    const { fake } = await setup();
    const created = await createCall(fake, '41790000009');
    const id = String(created.data.id);
    await waitType(fake, 'CALL_ESTABLISHED', id);
    const r = await api(fake, 'POST', `/calls/1/calls/${id}/hangup`, { errorCode: 'BUSY' });
    expect(r.status).toBe(400);
    const ok = await api(fake, 'POST', `/calls/1/calls/${id}/hangup`, { errorCode: 'MACHINE_DETECTED' });
    expect(ok.status).toBe(200);
    expect(ok.data).toMatchObject({ id, state: 'FINISHED' });
    const finished = await waitType(fake, 'CALL_FINISHED', id);
    expect(finished.properties).toMatchObject({
      callLog: { errorCode: { name: 'MACHINE_DETECTED' }, hangupSource: 'API' },
    });
    expect((await api(fake, 'POST', `/calls/1/calls/${id}/hangup`, {})).status).toBe(404);
  });
});

describe('fake Infobip: a scripted human call', () => {
  it('rings, answers, says, captures the scripted key and finishes with an errorCode object, all via Basic-auth webhooks', async () => {
    const { fake, receiver } = await setup({ callees: { '+41790000001': { answer: 'human', keys: ['1'] } } });
    const created = await createCall(fake, '+41790000001');
    expect(created.status).toBe(201);
    expect(created.data).toMatchObject({
      state: 'CALLING',
      direction: 'OUTBOUND',
      externalId: 'df-call-1',
      customData: { dialflowCallId: 'df-call-1' },
      callsConfigurationId: CONFIG,
    });
    expect(models.Call.safeParse(created.data).success).toBe(true);
    const id = String(created.data.id);
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(fake.callsCreated).toEqual({
      total: 1,
      byDestination: { '+41790000001': 1 },
      byExternalId: { 'df-call-1': 1 },
    });

    await waitType(fake, 'CALL_ESTABLISHED', id);
    expect((await api(fake, 'GET', `/calls/1/calls/${id}`)).data).toMatchObject({ id, state: 'ESTABLISHED' });
    const say = await api(fake, 'POST', `/calls/1/calls/${id}/say`, {
      text: 'Press 1 to confirm.',
      language: 'en',
      customData: { commandId: 'cmd-say' },
    });
    expect(say).toMatchObject({ status: 200, data: { status: 'PENDING' } });
    const sayFinished = await waitType(fake, 'SAY_FINISHED', id);
    expect(sayFinished.properties).toMatchObject({
      playedCompletely: true,
      customData: { commandId: 'cmd-say', dialflowCallId: 'df-call-1' },
    });

    await api(fake, 'POST', `/calls/1/calls/${id}/capture/dtmf`, {
      maxLength: 1,
      timeout: 5000,
      terminator: '#',
      customData: { commandId: 'cmd-collect' },
    });
    const captured = await waitType(fake, 'DTMF_CAPTURED', id);
    expect(captured.properties).toMatchObject({ dtmf: '1', timeout: false, customData: { commandId: 'cmd-collect' } });

    const hangup = await api(fake, 'POST', `/calls/1/calls/${id}/hangup`, {});
    expect(hangup.status).toBe(200);
    const finished = await waitType(fake, 'CALL_FINISHED', id);
    expect(finished.properties).toMatchObject({
      callLog: {
        callId: id,
        state: 'FINISHED',
        errorCode: { id: 10000, name: 'NORMAL_HANGUP', description: expect.any(String) as string },
        hangupSource: 'API',
        externalId: 'df-call-1',
        customData: { dialflowCallId: 'df-call-1' },
      },
    });

    await fake.idle();
    await until(() => receiver.received.length === fake.events.length);
    expect(receiver.received.map((r) => r.body.type)).toEqual([
      'CALL_RINGING',
      'CALL_ESTABLISHED',
      'SAY_FINISHED',
      'DTMF_CAPTURED',
      'CALL_FINISHED',
    ]);
    const expectedAuth = 'Basic ' + Buffer.from(`${USER}:${PASSWORD}`).toString('base64');
    for (const r of receiver.received) {
      expect(r.auth).toBe(expectedAuth);
      expect(r.body).not.toHaveProperty('id');
      expect(r.body).toMatchObject({
        callId: id,
        conferenceId: null,
        dialogId: null,
        timestamp: expect.any(String) as string,
      });
      const parsed = models.CallsEvent.safeParse(r.body);
      expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
    }
    expect(fake.webhookDeliveries.every((d) => d.status === 200)).toBe(true);
  });

  it('lets a key interrupt a stopOn prompt, times out a silent capture, and hands a terminated multi-digit entry', async () => {
    const { fake } = await setup({
      callees: { '41790000002': { answer: 'human', keys: ['7', '', '12#'], pressDuringPrompt: true } },
    });
    const id = String((await createCall(fake, '41790000002')).data.id);
    await waitType(fake, 'CALL_ESTABLISHED', id);
    await api(fake, 'POST', `/calls/1/calls/${id}/say`, {
      text: 'A long interruptible menu prompt. '.repeat(5),
      language: 'en',
      stopOn: { type: 'DTMF' },
    });
    const say = await waitType(fake, 'SAY_FINISHED', id);
    expect(say.properties).toMatchObject({ playedCompletely: false, capturedDtmf: '7' });

    await api(fake, 'POST', `/calls/1/calls/${id}/capture/dtmf`, { maxLength: 1, timeout: 3000 });
    const silent = await waitType(fake, 'DTMF_CAPTURED', id);
    expect(silent.properties).toMatchObject({ dtmf: '', timeout: true });

    await api(fake, 'POST', `/calls/1/calls/${id}/capture/dtmf`, {
      maxLength: 4,
      timeout: 3000,
      digitTimeout: 2000,
      terminator: '#',
    });
    await until(() => fake.events.filter((e) => e.type === 'DTMF_CAPTURED').length === 2);
    expect(fake.events.filter((e) => e.type === 'DTMF_CAPTURED')[1]?.properties).toMatchObject({
      dtmf: '12',
      timeout: false,
    });
  });

  it('plays, stops a play, and counts a key pressed during a capture prompt toward the capture', async () => {
    const { fake } = await setup({
      callees: { '41790000003': { answer: 'human', keys: ['42'], pressDuringPrompt: true } },
      latencyMs: { play: 2000 },
    });
    const id = String((await createCall(fake, '41790000003')).data.id);
    await waitType(fake, 'CALL_ESTABLISHED', id);
    await api(fake, 'POST', `/calls/1/calls/${id}/play`, {
      content: { type: 'URL', fileUrl: 'https://example.com/hold.mp3' },
      customData: { commandId: 'cmd-play' },
    });
    await new Promise((r) => setTimeout(r, 30));
    expect((await api(fake, 'POST', `/calls/1/calls/${id}/stop-play`)).data).toEqual({ status: 'PENDING' });
    const played = await waitType(fake, 'PLAY_FINISHED', id);
    expect(played.properties).toMatchObject({ playedCompletely: false, customData: { commandId: 'cmd-play' } });

    await api(fake, 'POST', `/calls/1/calls/${id}/play`, {
      content: { type: 'URL', fileUrl: 'https://audio.invalid/prompt.ogg' },
    });
    const error = await waitType(fake, 'ERROR', id);
    expect(error.properties).toMatchObject({ actionType: 'PLAY', errorCode: expect.any(String) as string });

    await api(fake, 'POST', `/calls/1/calls/${id}/capture/dtmf`, {
      maxLength: 2,
      timeout: 5000,
      playContent: { type: 'TEXT', text: 'Enter your two digit code.', language: 'en' },
    });
    const captured = await waitType(fake, 'DTMF_CAPTURED', id);
    expect(captured.properties).toMatchObject({
      dtmf: '42',
      timeout: false,
      playedContentProperties: { playedCompletely: false },
    });
  });

  it('can send +0000 timestamps like some Infobip payloads', async () => {
    const { fake } = await setup({ timestampStyle: '+0000', callees: { '41790000004': { answer: 'busy' } } });
    const created = await createCall(fake, '41790000004');
    expect(String(created.data.startTime)).toMatch(/\.\d{3}\+0000$/);
    const failed = await waitType(fake, 'CALL_FAILED');
    expect(failed.timestamp).toMatch(/\+0000$/);
  });

  it('fails busy, rejected, unreachable and unanswered callees with CALL_FAILED and the right errorCode', async () => {
    const { fake } = await setup({
      callees: {
        '41790000011': { answer: 'busy' },
        '41790000012': { answer: 'rejected' },
        '41790000013': { answer: 'unreachable' },
        '41790000014': { answer: 'noAnswer' },
      },
    });
    const expected: Record<string, [string, string]> = {
      '41790000011': ['BUSY', 'BUSY'],
      '41790000012': ['REJECTED', 'FAILED'],
      '41790000013': ['DESTINATION_NOT_FOUND', 'FAILED'],
      '41790000014': ['NO_ANSWER', 'NO_ANSWER'],
    };
    for (const [number, [code, state]] of Object.entries(expected)) {
      const id = String((await createCall(fake, number, { connectTimeout: 20 })).data.id);
      const failed = await waitType(fake, 'CALL_FAILED', id);
      expect(failed.properties, number).toMatchObject({ callLog: { errorCode: { name: code }, state } });
    }
    expect(fake.events.some((e) => e.type === 'CALL_ESTABLISHED')).toBe(false);
  });

  it('reports MACHINE_DETECTION_FINISHED with a confidence map when the create call asked for it', async () => {
    const { fake } = await setup({ callees: { '41790000021': { answer: 'machine' } } });
    const id = String((await createCall(fake, '41790000021', { machineDetection: { enabled: true } })).data.id);
    const md = await waitType(fake, 'MACHINE_DETECTION_FINISHED', id);
    expect(md.properties).toMatchObject({
      detectionResult: 'MACHINE',
      confidenceRating: { MACHINE: expect.any(Number) as number },
    });
    const plain = String((await createCall(fake, '41790000022')).data.id);
    await waitType(fake, 'CALL_ESTABLISHED', plain);
    await new Promise((r) => setTimeout(r, 100));
    expect(fake.events.some((e) => e.type === 'MACHINE_DETECTION_FINISHED' && e.callId === plain)).toBe(false);
  });
});

describe('fake Infobip: recordings', () => {
  it('ends a voicemail recording on maxSilence and serves a real WAV; whole-call recording comes after CALL_FINISHED', async () => {
    const { fake } = await setup({
      callees: { '41790000031': { answer: 'human', speakSeconds: 2, hangUpAfterMs: 400 } },
    });
    const id = String(
      (await createCall(fake, '41790000031', { recording: { recordingType: 'AUDIO', customData: { kind: 'call' } } }))
        .data.id,
    );
    await waitType(fake, 'CALL_ESTABLISHED', id);
    const start = await api(fake, 'POST', `/calls/1/calls/${id}/start-recording`, {
      recording: {
        recordingType: 'AUDIO',
        maxSilence: 3,
        beep: true,
        maxDuration: 60,
        customData: { commandId: 'cmd-vm' },
      },
    });
    expect(start.data).toEqual({ status: 'PENDING' });
    expect((await api(fake, 'POST', `/calls/1/calls/${id}/stop-recording`)).status).toBe(400);

    const ready = await waitType(fake, 'CALL_RECORDING_READY', id);
    const file = (
      ready.properties as {
        recording: { files: Array<{ id: string; fileFormat: string; duration: number; location: string }> };
      }
    ).recording.files[0];
    expect(file).toMatchObject({ fileFormat: 'WAV', duration: 5, location: 'HOSTED' });

    const wav = await api(fake, 'GET', `/calls/1/recordings/files/${file?.id ?? ''}`);
    expect(wav.status).toBe(200);
    expect(wav.headers.get('content-type')).toBe('audio/wav');
    const bytes = wav.data as unknown as Buffer;
    expect(bytes.subarray(0, 4).toString('ascii')).toBe('RIFF');
    expect(bytes.subarray(8, 12).toString('ascii')).toBe('WAVE');
    expect(bytes.readUInt32LE(24)).toBe(8000);
    expect(bytes.length).toBe(44 + 5 * 8000 * 2);

    await waitType(fake, 'CALL_FINISHED', id);
    await until(() => fake.events.filter((e) => e.type === 'CALL_RECORDING_READY').length === 2);
    const types = fake.events.map((e) => e.type);
    expect(types.lastIndexOf('CALL_RECORDING_READY')).toBeGreaterThan(types.indexOf('CALL_FINISHED'));
    const listing = await api(fake, 'GET', `/calls/1/recordings/calls/${id}`);
    expect(listing.status).toBe(200);
    expect(listing.data.files).toHaveLength(2);
    expect(listing.data.files).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ customData: { commandId: 'cmd-vm' } }),
        expect.objectContaining({ customData: { kind: 'call' } }),
      ]),
    );
    expect(models.CallsPublicRecording.safeParse(listing.data).success).toBe(true);
  });
});

describe('fake Infobip: chaos, retries, inbound, forward', () => {
  it('answers 429 with Retry-After to every Nth request and creates no call for it', async () => {
    const { fake } = await setup({ chaos: { rateLimitEvery: 2 } });
    const first = await createCall(fake, '41790000041');
    const second = await createCall(fake, '41790000041');
    expect(first.status).toBe(201);
    expect(second.status).toBe(429);
    expect(second.headers.get('retry-after')).toBe('1');
    expect(serviceException(second.data).messageId).toBe('TOO_MANY_REQUESTS');
    expect(fake.callsCreated.byDestination['41790000041']).toBe(1);
  });

  it('retries a webhook that did not get a 2xx', async () => {
    const { fake, receiver } = await setup(
      { callees: { '41790000051': { answer: 'busy' } }, webhookRetry: { attempts: 3, backoffMs: 10 } },
      2,
    );
    const id = String((await createCall(fake, '41790000051')).data.id);
    await until(() => receiver.received.length === 1);
    expect(receiver.received[0]?.body).toMatchObject({ type: 'CALL_FAILED', callId: id });
    expect(fake.webhookDeliveries.map((d) => [d.attempt, d.status])).toEqual([
      [1, 500],
      [2, 500],
      [3, 200],
    ]);
  });

  it('duplicates (same bytes), reorders and delivers CALL_RECORDING_READY late', async () => {
    const { fake, receiver } = await setup({
      callees: { '41790000061': { answer: 'human', speakSeconds: 1 } },
      chaos: { duplicate: 1, lateRecordingMs: 50 },
    });
    const id = String((await createCall(fake, '41790000061')).data.id);
    await waitType(fake, 'CALL_ESTABLISHED', id);
    await api(fake, 'POST', `/calls/1/calls/${id}/start-recording`, {
      recording: { recordingType: 'AUDIO', maxSilence: 1 },
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(fake.events.some((e) => e.type === 'CALL_RECORDING_READY')).toBe(false);
    await api(fake, 'POST', `/calls/1/calls/${id}/hangup`, {});
    await waitType(fake, 'CALL_RECORDING_READY', id);
    await fake.idle();
    const types = receiver.received.map((r) => r.body.type);
    expect(types.indexOf('CALL_RECORDING_READY')).toBeGreaterThan(types.indexOf('CALL_FINISHED'));
    expect(receiver.received).toHaveLength(fake.events.length * 2);
    expect(receiver.received[0]?.raw).toBe(receiver.received[1]?.raw);

    const re = await setup({ callees: { '41790000062': { answer: 'human' } }, chaos: { reorder: 1 } });
    const rid = String((await createCall(re.fake, '41790000062')).data.id);
    await waitType(re.fake, 'CALL_ESTABLISHED', rid);
    await re.fake.idle();
    expect(re.receiver.received.map((r) => r.body.type)).toEqual(['CALL_ESTABLISHED', 'CALL_RINGING']);
  });

  it('simulates an inbound call: CALL_RECEIVED, then answer establishes it', async () => {
    const { fake } = await setup();
    const id = fake.simulateInbound({ from: '41790000071', to: '41790009999' });
    const received = await waitType(fake, 'CALL_RECEIVED', id);
    expect(received.properties).toMatchObject({
      call: { id, direction: 'INBOUND', from: '41790000071', to: '41790009999' },
    });
    expect((await api(fake, 'POST', `/calls/1/calls/${id}/answer`, {})).data).toEqual({ status: 'PENDING' });
    await waitType(fake, 'CALL_ESTABLISHED', id);
  });

  it('connects a new call into a conference (POST …/connect)', async () => {
    const { fake } = await setup({
      callees: { '41790000091': { answer: 'human' }, '41790000092': { answer: 'human' } },
    });
    const parent = String((await createCall(fake, '41790000091')).data.id);
    await waitType(fake, 'CALL_ESTABLISHED', parent);
    const r = await api(fake, 'POST', `/calls/1/calls/${parent}/connect`, {
      callRequest: { endpoint: { type: 'PHONE', phoneNumber: '41790000092' }, from: '41790000000', connectTimeout: 30 },
    });
    expect(r.status).toBe(200);
    const conference = r.data.conference as { id: string };
    const child = r.data.call as { id: string; conferenceId: string };
    expect(child.conferenceId).toBe(conference.id);
    const est = await waitType(fake, 'CALL_ESTABLISHED', child.id);
    expect(est.conferenceId).toBe(conference.id);
    const bad = await api(fake, 'POST', `/calls/1/calls/${parent}/connect`, {
      callRequest: { endpoint: { type: 'PHONE', phoneNumber: '41790000092' } },
      connectOnEarlyMedia: true,
      ringbackGeneration: { enabled: true },
    });
    expect(bad.status).toBe(400);
  });

  it('forwards through a dialog: the child leg follows its callee script', async () => {
    const { fake } = await setup({
      callees: {
        '41790000081': { answer: 'human' },
        '41790000082': { answer: 'human', hangUpAfterMs: 50 },
        '41790000083': { answer: 'busy' },
      },
    });
    const parent = String((await createCall(fake, '41790000081')).data.id);
    await waitType(fake, 'CALL_ESTABLISHED', parent);
    const busy = await api(fake, 'POST', '/calls/1/dialogs', {
      parentCallId: parent,
      childCallRequest: { endpoint: { type: 'PHONE', phoneNumber: '41790000083' }, from: '41790000000' },
    });
    expect(busy.status).toBe(200);
    const failed = await waitType(fake, 'DIALOG_FAILED');
    expect(failed.properties).toMatchObject({ errorCode: { name: 'BUSY' } });

    const dialog = await api(fake, 'POST', '/calls/1/dialogs', {
      parentCallId: parent,
      childCallRequest: { endpoint: { type: 'PHONE', phoneNumber: '41790000082' } },
    });
    expect(dialog.data).toMatchObject({ state: 'CREATED', parentCall: { id: parent } });
    await waitType(fake, 'DIALOG_ESTABLISHED');
    await waitType(fake, 'DIALOG_FINISHED');
    const parentFinished = await waitType(fake, 'CALL_FINISHED', parent);
    expect(parentFinished.dialogId).toBe(dialog.data.id);
    await fake.idle();
    for (const e of fake.events) expect(models.CallsEvent.safeParse(e).success, e.type).toBe(true);
  });
});
