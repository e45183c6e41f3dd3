// The HTTP API's media routes on a real nats-server, with the real espeak-ng and sox: recordings
// (listed, streamed with byte ranges, played and seeked by Chromium), the do-not-call list (check,
// add, remove, import with bad lines), audio assets (real WAV and MP3 uploads, what is not audio,
// too large, wrong type) and text-to-speech previews (rendered, engine missing, too many at once).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { Client, Connection } from '@temporalio/client';
import { EncryptionCodec } from '../../src/codec/encryption.js';
import { Stack, freePort, type StartedNats } from '../../src/dev/stack.js';
import { connectNats } from '../../src/telephony/nats.js';
import { createLogger } from '../../src/logging.js';
import { startApiServer, type StartedApiServer } from '../../src/api/server.js';
import { ApiTokenStore, type ApiRole } from '../../src/store/tokens.js';
import { AuditLog } from '../../src/store/audit.js';
import { NatsCampaignStore } from '../../src/store/campaigns.js';
import { ObjectRecordingStore, synthesizeWav } from '../../src/store/recordings.js';
import { parseWav } from '../../src/telephony/sip/wav.js';
import { launchBrowser } from '../helpers/browser.js';
import { apiRequest, errorCode, type ApiRequestOptions } from '../helpers/api.js';

let stack: Stack;
let nats: StartedNats;
let nc: NatsConnection;
let api: StartedApiServer;
const tokens: Record<ApiRole, string> = { viewer: '', operator: '', admin: '' };
const dir = mkdtempSync(join(tmpdir(), 'dialflow-api-media-'));

/** A 20 s voicemail: 320 kB, three object-store chunks, so ranges cross chunk boundaries. */
const VOICEMAIL_ID = 'call:media:r1~1:cmd-7';
const voicemail = synthesizeWav(20_000);
const CALL_ID = 'call:other:r2~2:call';

const call = (method: string, path: string, opts: ApiRequestOptions = {}) => apiRequest(api.url, method, path, opts);
const recordingPath = (id: string) => `/api/recordings/${encodeURIComponent(id)}`;

function run(command: string, args: string[]): void {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${r.stderr}`);
}

let wavFile: Buffer;
let mp3File: Buffer;

beforeAll(async () => {
  // Real audio, as a user would have it: espeak-ng speech (22 kHz WAV), and sox's MP3 of it.
  run('espeak-ng', ['-w', join(dir, 'hello.wav'), 'Hello, this is a test prompt.']);
  run('sox', [join(dir, 'hello.wav'), join(dir, 'hello.mp3')]);
  wavFile = readFileSync(join(dir, 'hello.wav'));
  mp3File = readFileSync(join(dir, 'hello.mp3'));

  stack = new Stack(join(dir, 'stack'));
  nats = await stack.startNats({ port: await freePort(), storeDir: join(dir, 'nats') });
  nc = await connectNats(nats.url, 'api-media-test');
  const store = await ApiTokenStore.open(nc);
  for (const role of ['viewer', 'operator', 'admin'] as const)
    tokens[role] = (await store.create(role, `media-${role}`)).token;
  const recordings = await ObjectRecordingStore.open(nc);
  await recordings.put(
    {
      id: VOICEMAIL_ID,
      callId: 'call:media:r1~1',
      name: 'voicemail.wav',
      durationMs: 20_000,
      contentType: 'audio/wav',
    },
    voicemail,
  );
  await recordings.put(
    { id: CALL_ID, callId: 'call:other:r2~2', name: 'call', durationMs: 1000, contentType: 'audio/wav' },
    synthesizeWav(1000),
  );
  // None of these routes needs Temporal; a client that never connects stands in for it.
  const client = new Client({ connection: Connection.lazy({ address: '127.0.0.1:1' }) });
  api = await startApiServer({
    nc,
    temporal: { client, codec: new EncryptionCodec(randomBytes(32)), taskQueue: 'api-media-test' },
    logger: createLogger('api', 'silent'),
    host: '127.0.0.1',
    port: await freePort(),
  });
}, 60_000);
afterAll(async () => {
  await api?.close();
  await nc?.close();
  await stack?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('recordings', () => {
  it('lists recordings, by campaign and by call, with the call id of /api/calls', async () => {
    const all = await call('GET', '/api/recordings', { token: tokens.viewer });
    expect(all.status).toBe(200);
    const listed = (all.body as { recordings: Array<Record<string, unknown>> }).recordings;
    expect(listed.map((r) => r.name).sort()).toEqual([CALL_ID, VOICEMAIL_ID].sort());
    expect(listed.find((r) => r.name === VOICEMAIL_ID)).toMatchObject({
      callId: 'call:media:r1',
      legId: 'call:media:r1~1',
      campaignId: 'media',
      label: 'voicemail.wav',
      durationMs: 20_000,
      size: voicemail.byteLength,
      contentType: 'audio/wav',
      created: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    const byCampaign = await call('GET', '/api/recordings?campaignId=other', { token: tokens.viewer });
    expect((byCampaign.body as { recordings: Array<{ name: string }> }).recordings.map((r) => r.name)).toEqual([
      CALL_ID,
    ]);
    const byCall = await call('GET', `/api/recordings?callId=${encodeURIComponent('call:media:r1')}`, {
      token: tokens.viewer,
    });
    expect((byCall.body as { recordings: Array<{ name: string }> }).recordings.map((r) => r.name)).toEqual([
      VOICEMAIL_ID,
    ]);
    const none = await call('GET', '/api/recordings?campaignId=media&callId=call%3Aother%3Ar2', {
      token: tokens.viewer,
    });
    expect((none.body as { recordings: unknown[] }).recordings).toEqual([]);
  });

  it('streams the whole recording with Accept-Ranges, and HEAD gives its headers only', async () => {
    const a = await call('GET', recordingPath(VOICEMAIL_ID), { token: tokens.viewer });
    expect(a.status).toBe(200);
    expect(a.headers.get('content-type')).toBe('audio/wav');
    expect(a.headers.get('accept-ranges')).toBe('bytes');
    expect(a.headers.get('content-length')).toBe(String(voicemail.byteLength));
    expect(a.bytes.equals(Buffer.from(voicemail))).toBe(true);
    const head = await call('HEAD', recordingPath(VOICEMAIL_ID), { token: tokens.viewer });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(voicemail.byteLength));
    expect(head.bytes.byteLength).toBe(0);
  });

  it('answers one byte range with 206 and exactly those bytes, within and across chunks', async () => {
    const size = voicemail.byteLength;
    const stored = Buffer.from(voicemail);
    const cases: Array<[string, number, number]> = [
      ['bytes=0-99', 0, 99],
      ['bytes=0-', 0, size - 1],
      ['bytes=131000-140000', 131_000, 140_000], // across the first chunk boundary (128 KiB)
      ['bytes=270000-', 270_000, size - 1], // starts in the third chunk
      ['bytes=-500', size - 500, size - 1],
      [`bytes=-${size + 10}`, 0, size - 1],
      [`bytes=300000-${size + 5000}`, 300_000, size - 1], // an end past the object is clamped
    ];
    for (const [range, start, end] of cases) {
      const a = await call('GET', recordingPath(VOICEMAIL_ID), { token: tokens.viewer, headers: { range } });
      expect(a.status, range).toBe(206);
      expect(a.headers.get('content-range'), range).toBe(`bytes ${start}-${end}/${size}`);
      expect(a.headers.get('content-length'), range).toBe(String(end - start + 1));
      expect(a.bytes.equals(stored.subarray(start, end + 1)), range).toBe(true);
    }
    const head = await call('HEAD', recordingPath(VOICEMAIL_ID), {
      token: tokens.viewer,
      headers: { range: 'bytes=10-19' },
    });
    expect(head.status).toBe(206);
    expect(head.headers.get('content-range')).toBe(`bytes 10-19/${size}`);
  });

  it('a range past the end is 416 with the size; several ranges or a malformed one get the whole file', async () => {
    const size = voicemail.byteLength;
    for (const range of [`bytes=${size}-`, `bytes=${size + 100}-${size + 200}`, 'bytes=-0']) {
      const a = await call('GET', recordingPath(VOICEMAIL_ID), { token: tokens.viewer, headers: { range } });
      expect(a.status, range).toBe(416);
      expect(a.headers.get('content-range'), range).toBe(`bytes */${size}`);
      expect(errorCode(a)).toBe('range.unsatisfiable');
    }
    for (const range of ['bytes=0-1,5-9', 'items=0-5', 'bytes=9-2', 'bytes=abc']) {
      const a = await call('GET', recordingPath(VOICEMAIL_ID), { token: tokens.viewer, headers: { range } });
      expect(a.status, range).toBe(200);
      expect(a.bytes.byteLength, range).toBe(size);
    }
  });

  it('404 for an unknown recording; 401 without a token', async () => {
    const a = await call('GET', recordingPath('call:media:nobody~1:call'), { token: tokens.viewer });
    expect(a.status).toBe(404);
    expect(errorCode(a)).toBe('not_found');
    const anonymous = await call('GET', recordingPath(VOICEMAIL_ID));
    expect(anonymous.status).toBe(401);
    expect(errorCode(anonymous)).toBe('unauthorized');
    expect((await call('GET', '/api/recordings')).status).toBe(401);
  });

  it('Chromium plays the recording in an <audio> element and seeks to its end', async () => {
    const browser = await launchBrowser();
    try {
      // A media element cannot send a bearer token itself: the context adds it to every request.
      const context = await browser.newContext({ extraHTTPHeaders: { authorization: `Bearer ${tokens.viewer}` } });
      const page = await context.newPage();
      await page.goto(`${api.url}/api/openapi.json`);
      const result = await page.evaluate(async (src) => {
        // The test is compiled without the DOM library: the little of HTMLAudioElement it uses, typed here.
        interface AudioElement {
          muted: boolean;
          duration: number;
          currentTime: number;
          ended: boolean;
          error: { code: number } | null;
          seekable: { length: number; end(i: number): number };
          onloadedmetadata: (() => void) | null;
          onerror: (() => void) | null;
          onseeked: (() => void) | null;
          onended: (() => void) | null;
          play(): Promise<void>;
        }
        const AudioElement = (globalThis as unknown as { Audio: new (src: string) => AudioElement }).Audio;
        const audio = new AudioElement(src);
        audio.muted = true;
        await new Promise<void>((resolve, reject) => {
          audio.onloadedmetadata = () => resolve();
          audio.onerror = () => reject(new Error(`media error ${audio.error?.code}`));
        });
        const duration = audio.duration;
        const seekableEnd = audio.seekable.length > 0 ? audio.seekable.end(0) : 0;
        audio.currentTime = 18;
        await new Promise<void>((resolve) => (audio.onseeked = () => resolve()));
        await audio.play();
        await new Promise<void>((resolve) => (audio.onended = () => resolve()));
        return { duration, seekableEnd, ended: audio.ended };
      }, recordingPath(VOICEMAIL_ID));
      expect(result.duration).toBeCloseTo(20, 1);
      expect(result.seekableEnd).toBeCloseTo(20, 1);
      expect(result.ended).toBe(true);
    } finally {
      await browser.close();
    }
  }, 30_000);
});

describe('do-not-call', () => {
  const phone = '+14155550123';
  const path = `/api/dnc/${encodeURIComponent('+1 (415) 555-0123')}`;

  it('adds a number with a reason, checks it (the call gate sees it), and removes it', async () => {
    const before = await call('GET', path, { token: tokens.viewer });
    expect(before.status).toBe(200);
    expect(before.body).toEqual({ phone, listed: false });

    const added = await call('PUT', path, { token: tokens.operator, json: { reason: 'asked on the phone' } });
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ phone, listed: true, reason: 'asked on the phone', by: 'media-operator' });
    const again = await call('PUT', `/api/dnc/${phone}`, { token: tokens.operator });
    expect(again.status).toBe(200);

    const check = await call('GET', `/api/dnc/${phone}`, { token: tokens.viewer });
    expect(check.body).toMatchObject({ phone, listed: true, by: 'media-operator', addedAt: expect.any(String) });
    expect(await (await NatsCampaignStore.open(nc)).isDoNotCall(phone)).toBe(true);

    const removed = await call('DELETE', path, { token: tokens.operator });
    expect(removed.status).toBe(204);
    expect(await (await NatsCampaignStore.open(nc)).isDoNotCall(phone)).toBe(false);
    const gone = await call('DELETE', path, { token: tokens.operator });
    expect(gone.status).toBe(404);
    expect(errorCode(gone)).toBe('not_found');

    const entries = await (await AuditLog.open(nc)).recent(20);
    const mine = entries.filter((e) => e.action.startsWith('dnc.') && e.target.phone === phone);
    expect(mine.map((e) => `${e.action} ${e.outcome}`)).toEqual(
      expect.arrayContaining(['dnc.add added', 'dnc.add updated', 'dnc.remove removed']),
    );
  });

  it('a number that is not international and valid is 400 phone.invalid', async () => {
    for (const bad of ['4155550123', '+1', 'abc', '+999123']) {
      for (const [method, token] of [
        ['GET', tokens.viewer],
        ['PUT', tokens.operator],
        ['DELETE', tokens.operator],
      ] as const) {
        const a = await call(method, `/api/dnc/${encodeURIComponent(bad)}`, { token });
        expect(a.status, `${method} ${bad}`).toBe(400);
        expect(errorCode(a)).toBe('phone.invalid');
      }
    }
    const extra = await call('PUT', `/api/dnc/${phone}`, { token: tokens.operator, json: { why: 'x' } });
    expect(extra.status).toBe(400);
    expect(errorCode(extra)).toBe('bad_request');
  });

  it('a viewer cannot change the list (403); nobody without a token can read it (401)', async () => {
    for (const [method, p] of [
      ['PUT', `/api/dnc/${phone}`],
      ['DELETE', `/api/dnc/${phone}`],
    ] as const) {
      const a = await call(method, p, { token: tokens.viewer });
      expect(a.status).toBe(403);
      expect(errorCode(a)).toBe('forbidden');
    }
    const imp = await call('POST', '/api/dnc/import', {
      token: tokens.viewer,
      raw: '+14155550100\n',
      contentType: 'text/csv',
    });
    expect(imp.status).toBe(403);
    expect((await call('GET', `/api/dnc/${phone}`)).status).toBe(401);
  });

  it('imports a CSV: good lines added, bad lines (national numbers too) reported by number', async () => {
    const csv = [
      'phone,name',
      '+385 91 555 0001,Ana',
      'Ana,+385915550009',
      '"+1 (415) 555-0100","Doe, John"',
      '"+38591555,x',
      '',
      '12',
      '+385915550002',
      // A national number names no one without its country: the gate, which looks numbers up by
      // their E.164 digits, would never find it.
      '091 555 0000',
      '+999 123 4567',
    ].join('\r\n');
    const a = await call('POST', '/api/dnc/import', { token: tokens.operator, raw: csv, contentType: 'text/csv' });
    expect(a.status).toBe(200);
    const body = a.body as { added: number; problemCount: number; problems: Array<{ line: number; message: string }> };
    expect(body.added).toBe(3);
    expect(body.problemCount).toBe(5);
    expect(body.problems.map((p) => p.line)).toEqual([3, 5, 7, 9, 10]);
    expect(body.problems[0]?.message).toMatch(/"Ana" is not a valid international number/);
    expect(body.problems[1]?.message).toMatch(/not a CSV line/);
    expect(body.problems[3]?.message).toMatch(/"091 555 0000" is not a valid international number/);
    for (const listed of ['+385915550001', '+14155550100', '+385915550002']) {
      const check = await call('GET', `/api/dnc/${listed}`, { token: tokens.viewer });
      expect(check.body, listed).toMatchObject({ listed: true, by: 'media-operator', reason: 'import' });
    }
    for (const unlisted of ['+385915550009', '+385915550000'])
      expect((await call('GET', `/api/dnc/${unlisted}`, { token: tokens.viewer })).body, unlisted).toMatchObject({
        listed: false,
      });
    // Nothing was written under the national number's digits either.
    expect(await (await NatsCampaignStore.open(nc)).isDoNotCall('0915550000')).toBe(false);
    const [latest] = await (await AuditLog.open(nc)).recent(1);
    expect(latest).toMatchObject({ action: 'dnc.import', target: { added: 3, problems: 5 }, outcome: 'imported' });
  });

  it('a number the store lists is one entry, whoever wrote it: the gate and the API read the same', async () => {
    const store = await NatsCampaignStore.open(nc);
    await store.setDoNotCall('+1 415 555 0177', true);
    const check = await call('GET', '/api/dnc/+14155550177', { token: tokens.viewer });
    expect(check.body).toMatchObject({ phone: '+14155550177', listed: true, addedAt: expect.any(String) });
    await store.setDoNotCall('+14155550177', false);
    expect((await call('GET', '/api/dnc/+14155550177', { token: tokens.viewer })).body).toMatchObject({
      listed: false,
    });
  });

  it('an import that is not CSV is 415; one larger than 32 MB is 413', async () => {
    const json = await call('POST', '/api/dnc/import', { token: tokens.operator, json: ['+14155550100'] });
    expect(json.status).toBe(415);
    expect(errorCode(json)).toBe('unsupported_media_type');
    const other = await call('POST', '/api/dnc/import', {
      token: tokens.operator,
      raw: '+14155550100',
      contentType: 'application/octet-stream',
    });
    expect(other.status).toBe(415);
    // Streamed without a length: the limit is enforced as the bytes arrive.
    // Lines without a digit are skipped, so the test spends its time on the limit, not on the list.
    const chunk = new TextEncoder().encode('no number on this line\n'.repeat(4000));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > 33 * 1024 * 1024) return controller.close();
        sent += chunk.byteLength;
        controller.enqueue(chunk);
      },
    });
    const res = await fetch(`${api.url}/api/dnc/import`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.operator}`, 'content-type': 'text/csv' },
      body,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('payload_too_large');
  }, 60_000);
});

describe('audio assets', () => {
  it('uploads a real WAV and a real MP3, lists them and serves them back; a flow can then play the file', async () => {
    const wav = await call('POST', '/api/assets?name=greeting.wav', {
      token: tokens.operator,
      raw: wavFile,
      contentType: 'audio/wav',
    });
    expect(wav.status).toBe(201);
    expect(wav.body).toMatchObject({ file: 'greeting.wav', size: wavFile.byteLength, kind: 'wav', replaced: false });
    const mp3 = await call('POST', '/api/assets?name=greeting.mp3', {
      token: tokens.operator,
      raw: mp3File,
      contentType: 'audio/mpeg',
    });
    expect(mp3.status).toBe(201);
    expect(mp3.body).toMatchObject({ file: 'greeting.mp3', kind: 'mp3', contentType: 'audio/mpeg', replaced: false });
    const again = await call('POST', '/api/assets?name=greeting.wav', {
      token: tokens.operator,
      raw: wavFile,
      contentType: 'audio/x-wav',
    });
    expect(again.status).toBe(201);
    expect(again.body).toMatchObject({ replaced: true });

    const list = await call('GET', '/api/assets', { token: tokens.viewer });
    expect((list.body as { assets: Array<{ file: string }> }).assets.map((a) => a.file)).toEqual([
      'greeting.mp3',
      'greeting.wav',
    ]);
    const back = await call('GET', '/api/assets/greeting.mp3', { token: tokens.viewer });
    expect(back.status).toBe(200);
    expect(back.headers.get('content-type')).toBe('audio/mpeg');
    expect(back.bytes.equals(mp3File)).toBe(true);
    const part = await call('GET', '/api/assets/greeting.wav', {
      token: tokens.viewer,
      headers: { range: 'bytes=0-43' },
    });
    expect(part.status).toBe(206);
    expect(part.bytes.equals(wavFile.subarray(0, 44))).toBe(true);
    expect((await call('GET', '/api/assets/nothing.wav', { token: tokens.viewer })).status).toBe(404);

    // The name is what a play element's audio.file uses: publishing such a flow finds the file.
    const flow = {
      id: 'media-test',
      version: 1,
      start: 'call',
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'hello' } },
        { id: 'hello', type: 'play', audio: { file: 'greeting.wav' }, next: { played: 'end' } },
        { id: 'end', type: 'hangUp' },
      ],
    };
    const published = await call('POST', '/api/flows', { token: tokens.operator, json: flow });
    expect(published.status, JSON.stringify(published.body)).toBe(201);

    const [latest] = await (await AuditLog.open(nc)).recent(1);
    expect(latest).toMatchObject({ action: 'flow.publish' });
    const uploads = (await (await AuditLog.open(nc)).recent(10)).filter((e) => e.action === 'asset.upload');
    expect(uploads.map((e) => `${e.target.file} ${e.outcome}`)).toEqual(
      expect.arrayContaining(['greeting.wav uploaded', 'greeting.mp3 uploaded', 'greeting.wav replaced']),
    );
  });

  it('refuses what is not that audio by its content: 400 asset.invalid', async () => {
    const text = await call('POST', '/api/assets?name=fake.wav', {
      token: tokens.operator,
      raw: 'this is a text file, renamed',
      contentType: 'audio/wav',
    });
    expect(text.status).toBe(400);
    expect(errorCode(text)).toBe('asset.invalid');
    const mislabelled = await call('POST', '/api/assets?name=fake.mp3', {
      token: tokens.operator,
      raw: wavFile,
      contentType: 'audio/mpeg',
    });
    expect(mislabelled.status).toBe(400);
    expect(errorCode(mislabelled)).toBe('asset.invalid');
    const typeAndName = await call('POST', '/api/assets?name=fake.wav', {
      token: tokens.operator,
      raw: mp3File,
      contentType: 'audio/mpeg',
    });
    expect(typeAndName.status).toBe(400);
    expect(errorCode(typeAndName)).toBe('asset.invalid');
    // RIFF/WAVE at the start, and nothing a WAV needs after it.
    const hollow = Buffer.concat([Buffer.from('RIFF\0\0\0\0WAVE'), Buffer.from('junk'.repeat(10))]);
    const broken = await call('POST', '/api/assets?name=fake.wav', {
      token: tokens.operator,
      raw: hollow,
      contentType: 'audio/wav',
    });
    expect(broken.status).toBe(400);
    expect(errorCode(broken)).toBe('asset.invalid');
    expect((await call('GET', '/api/assets/fake.wav', { token: tokens.viewer })).status).toBe(404);
  });

  it('refuses names with folders or other endings (400 asset.invalidName)', async () => {
    for (const name of ['../up.wav', 'a/b.wav', 'a\\b.wav', 'x.ogg', '.hidden.wav', 'no-extension', 'sp ace.wav']) {
      const a = await call('POST', `/api/assets?name=${encodeURIComponent(name)}`, {
        token: tokens.operator,
        raw: wavFile,
        contentType: 'audio/wav',
      });
      expect(a.status, name).toBe(400);
      expect(errorCode(a), name).toBe('asset.invalidName');
    }
    const missing = await call('POST', '/api/assets', {
      token: tokens.operator,
      raw: wavFile,
      contentType: 'audio/wav',
    });
    expect(missing.status).toBe(400);
    expect(errorCode(missing)).toBe('bad_request');
  });

  it('more than 4 MB is 413; another content type, JSON or no body is 415; a viewer cannot upload (403), nobody without a token (401)', async () => {
    const big = Buffer.concat([wavFile, Buffer.alloc(4 * 1024 * 1024)]);
    const tooBig = await call('POST', '/api/assets?name=big.wav', {
      token: tokens.operator,
      raw: big,
      contentType: 'audio/wav',
    });
    expect(tooBig.status).toBe(413);
    expect(errorCode(tooBig)).toBe('payload_too_large');
    for (const contentType of ['text/plain', 'application/octet-stream', 'audio/ogg']) {
      const a = await call('POST', '/api/assets?name=x.wav', { token: tokens.operator, raw: wavFile, contentType });
      expect(a.status, contentType).toBe(415);
      expect(errorCode(a)).toBe('unsupported_media_type');
    }
    // JSON is parsed by the server's own parser: no file, even when its numbers are a WAV's bytes.
    for (const json of [{}, [...wavFile.subarray(0, 4096)], 'RIFF']) {
      const a = await call('POST', '/api/assets?name=x.wav', { token: tokens.operator, json });
      expect(a.status, JSON.stringify(json).slice(0, 40)).toBe(415);
      expect(errorCode(a)).toBe('unsupported_media_type');
    }
    const noBody = await call('POST', '/api/assets?name=x.wav', { token: tokens.operator });
    expect(noBody.status).toBe(415);
    expect(errorCode(noBody)).toBe('unsupported_media_type');
    const empty = await call('POST', '/api/assets?name=x.wav', {
      token: tokens.operator,
      raw: new Uint8Array(0),
      contentType: 'audio/wav',
    });
    expect(empty.status).toBe(400);
    expect(errorCode(empty)).toBe('asset.invalid');
    expect((await call('GET', '/api/assets/x.wav', { token: tokens.viewer })).status).toBe(404);
    const viewer = await call('POST', '/api/assets?name=x.wav', {
      token: tokens.viewer,
      raw: wavFile,
      contentType: 'audio/wav',
    });
    expect(viewer.status).toBe(403);
    expect(errorCode(viewer)).toBe('forbidden');
    const anonymous = await call('POST', '/api/assets?name=x.wav', { raw: wavFile, contentType: 'audio/wav' });
    expect(anonymous.status).toBe(401);
    expect((await call('GET', '/api/assets')).status).toBe(401);
  });
});

describe('text-to-speech preview', () => {
  it('renders the text as the SIP provider would: an 8 kHz mono WAV, with the voice used', async () => {
    const a = await call('POST', '/api/tts/preview', {
      token: tokens.operator,
      json: { text: 'Your appointment is tomorrow at nine.', language: 'en-GB', voice: 'male', rate: 1.2 },
    });
    expect(a.status).toBe(200);
    expect(a.headers.get('content-type')).toBe('audio/wav');
    expect(a.headers.get('x-tts-voice')).toBe('en-gb+m3');
    const wav = parseWav(a.bytes);
    expect(wav.sampleRate).toBe(8000);
    expect(wav.channels).toBe(1);
    const seconds = wav.samples.length / 8000;
    expect(seconds).toBeGreaterThan(1);
    expect(Number(a.headers.get('x-tts-duration-ms'))).toBeCloseTo(seconds * 1000, -1);
    expect(a.headers.get('x-tts-warnings')).toBeNull();
    const fallback = await call('POST', '/api/tts/preview', {
      token: tokens.operator,
      json: { text: 'Hi', language: 'tlh' },
    });
    expect(fallback.status).toBe(200);
    expect(fallback.headers.get('x-tts-warnings')).toBe('TTS_LANGUAGE_FALLBACK');
  });

  it('checks its input (400), needs a token (401), of an operator (403)', async () => {
    for (const json of [
      {},
      { text: '' },
      { text: '   ' },
      { text: 'x'.repeat(501) },
      { text: 'hi', rate: 5 },
      { text: 'hi', voice: 'robot' },
      { text: 'hi', language: 'not a language' },
      { text: 'hi', extra: true },
    ]) {
      const a = await call('POST', '/api/tts/preview', { token: tokens.operator, json });
      expect(a.status, JSON.stringify(json)).toBe(400);
      expect(errorCode(a)).toBe('bad_request');
    }
    expect((await call('POST', '/api/tts/preview', { json: { text: 'hi' } })).status).toBe(401);
    // Each preview runs espeak-ng and sox on the API host: viewers only read.
    const viewer = await call('POST', '/api/tts/preview', { token: tokens.viewer, json: { text: 'hi' } });
    expect(viewer.status).toBe(403);
    expect(errorCode(viewer)).toBe('forbidden');
  });

  it('at most two render at once and a few wait: beyond that 503 tts.busy with retry-after', async () => {
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        call('POST', '/api/tts/preview', {
          token: tokens.operator,
          json: { text: `Preview number ${i}, a sentence long enough to take a moment to render.` },
        }),
      ),
    );
    const busy = answers.filter((a) => a.status === 503);
    expect(busy.length).toBeGreaterThan(0);
    expect(answers.filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(6);
    expect(answers.every((a) => a.status === 200 || a.status === 503)).toBe(true);
    expect(busy.every((a) => errorCode(a) === 'tts.busy' && a.headers.get('retry-after') === '1')).toBe(true);
  }, 60_000);

  it('501 tts.unavailable where espeak-ng is not installed', async () => {
    const path = process.env.PATH;
    // The API runs in this process: with an empty PATH it finds no espeak-ng, as on a host without one.
    process.env.PATH = join(dir, 'empty-bin');
    try {
      const a = await call('POST', '/api/tts/preview', { token: tokens.operator, json: { text: 'Hello' } });
      expect(a.status).toBe(501);
      expect(errorCode(a)).toBe('tts.unavailable');
    } finally {
      process.env.PATH = path;
    }
  });
});

describe('OpenAPI', () => {
  it('documents every media route', async () => {
    const a = await call('GET', '/api/openapi.json');
    expect(a.status).toBe(200);
    const paths = (a.body as { paths: Record<string, Record<string, unknown>> }).paths;
    expect(Object.keys(paths['/api/recordings/{name}'] ?? {}).sort()).toEqual(['get', 'head']);
    for (const path of ['/api/recordings', '/api/dnc/{phone}', '/api/dnc/import', '/api/assets', '/api/tts/preview'])
      expect(paths[path], path).toBeDefined();
    expect(Object.keys(paths['/api/dnc/{phone}'] ?? {}).sort()).toEqual(['delete', 'get', 'put']);
  });
});
