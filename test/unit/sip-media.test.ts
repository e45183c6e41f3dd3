// The SIP provider's media: WAV/G.711 helpers, correlation and silence measurement (pure), and the
// MediaCache against the real espeak-ng and sox, with audio served by a local HTTP server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { ObjectStore } from '@nats-io/obj';
import { errors } from '@nats-io/transport-node';
import {
  analyseSpeech,
  bestAlignment,
  concat,
  decodeALaw,
  decodeMuLaw,
  durationMs,
  encodeALaw,
  encodeMuLaw,
  encodeWav,
  InvalidWavError,
  normalizedCrossCorrelation,
  parseWav,
  silence,
  tone,
  UnsupportedWavError,
} from '../../src/telephony/sip/wav.js';
import {
  AudioFetchError,
  AudioTooLargeError,
  MediaCache,
  MediaRequestError,
  type MediaWarning,
  resolveLanguage,
  sniffAudio,
  UnsupportedAudioError,
  wordsPerMinute,
} from '../../src/telephony/sip/media.js';

const work = mkdtempSync(join(tmpdir(), 'dialflow-sip-media-'));
let dirs = 0;
const freshDir = () => join(work, `cache-${++dirs}`);
afterAll(() => rmSync(work, { recursive: true, force: true }));

const samplesOf = (path: string) => {
  const wav = parseWav(readFileSync(path));
  expect(wav.sampleRate).toBe(8000);
  expect(wav.channels).toBe(1);
  return wav.samples;
};
/** Deterministic low-level noise (a linear congruential generator), like a quiet phone line. */
function noise(n: number, amplitude = 30, seed = 1): Int16Array {
  let s = seed;
  return Int16Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return Math.round((s / 2 ** 31 - 0.5) * 2 * amplitude);
  });
}
const g711 = (x: Int16Array) => decodeMuLaw(encodeMuLaw(x));
const SENTENCE = 'Hi John. This is a reminder of your appointment tomorrow at ten. Press 1 to confirm, 2 to cancel.';
const OTHER = 'Your appointment is cancelled. Thank you for calling, and have a nice day.';

describe('WAV', () => {
  it('encodes and parses 16-bit mono PCM losslessly', () => {
    const samples = Int16Array.from([0, 1, -1, 32767, -32768, 1234, -4321]);
    const bytes = encodeWav(samples, 8000);
    expect(bytes.length).toBe(44 + samples.length * 2);
    expect(Buffer.from(bytes.subarray(0, 4)).toString('ascii')).toBe('RIFF');
    const wav = parseWav(bytes);
    expect(wav).toMatchObject({ sampleRate: 8000, channels: 1 });
    expect([...wav.samples]).toEqual([...samples]);
  });

  it('skips unknown chunks, and reads a file still being recorded (size 0 or larger than the file)', () => {
    const samples = tone(440, 100);
    const plain = encodeWav(samples);
    // A LIST chunk of odd length (padded) between fmt and data.
    const list = Buffer.concat([Buffer.from('LIST'), Buffer.from([3, 0, 0, 0]), Buffer.from('abc\0')]);
    const withList = Buffer.concat([plain.subarray(0, 36), list, plain.subarray(36)]);
    expect([...parseWav(withList).samples]).toEqual([...samples]);
    const streaming = Buffer.from(plain);
    streaming.writeUInt32LE(0, 40);
    expect(parseWav(streaming).samples.length).toBe(samples.length);
    const cut = Buffer.from(plain.subarray(0, 44 + 101)); // recorder killed mid-sample
    expect(parseWav(cut).samples.length).toBe(50);
  });

  it('rejects non-WAV bytes and unsupported encodings with named errors', () => {
    expect(() => parseWav(Buffer.from('this is not audio at all, just text'))).toThrow(InvalidWavError);
    const eightBit = Buffer.from(encodeWav(silence(10)));
    eightBit.writeUInt16LE(8, 34);
    expect(() => parseWav(eightBit)).toThrow(UnsupportedWavError);
    const float = Buffer.from(encodeWav(silence(10)));
    float.writeUInt16LE(3, 20);
    expect(() => parseWav(float)).toThrow(/encoding 0x3/);
    expect(() => parseWav(encodeWav(silence(10)).subarray(0, 30))).toThrow(InvalidWavError);
  });

  it('builds silence, beep tones and concatenations of the right length', () => {
    expect(silence(1500).length).toBe(12_000);
    expect(silence(20, 16_000).length).toBe(320);
    const beep = tone(1000, 400);
    expect(durationMs(beep)).toBe(400);
    let crossings = 0;
    for (let i = 1; i < beep.length; i++) if ((beep[i - 1] ?? 0) < 0 !== (beep[i] ?? 0) < 0) crossings++;
    expect(crossings).toBeGreaterThan(790); // 1 kHz: two crossings per ms
    expect(crossings).toBeLessThan(810);
    expect(Math.max(...beep)).toBeGreaterThan(16_000);
    expect(Math.abs(beep[0] ?? 1)).toBeLessThan(100); // faded in, no click
    expect(concat(silence(10), beep, silence(10)).length).toBe(80 + 3200 + 80);
  });

  it('G.711 µ-law and A-law round trips stay within the companding error and match known code points', () => {
    expect(encodeMuLaw(Int16Array.from([0]))[0]).toBe(0xff);
    expect(encodeALaw(Int16Array.from([0]))[0]).toBe(0xd5);
    expect(decodeMuLaw(Uint8Array.from([0x80]))[0]).toBe(32124);
    expect(decodeALaw(Uint8Array.from([0xaa]))[0]).toBe(32256);
    const ramp = Int16Array.from({ length: 2001 }, (_, i) => (i - 1000) * 32);
    for (const [enc, dec] of [
      [encodeMuLaw, decodeMuLaw],
      [encodeALaw, decodeALaw],
    ] as const) {
      const back = dec(enc(ramp));
      ramp.forEach((x, i) => expect(Math.abs((back[i] ?? 0) - x)).toBeLessThanOrEqual(Math.max(16, Math.abs(x) / 16)));
    }
  });
});

describe('cross-correlation', () => {
  it('finds a known offset in noise exactly and scores it ~1; unrelated noise scores low', () => {
    const ref = noise(8000, 8000, 7);
    const rec = concat(noise(3000, 50, 3), ref, noise(2000, 50, 4));
    const found = bestAlignment(rec, ref);
    expect(found.lagSamples).toBe(3000);
    expect(found.correlation).toBeGreaterThan(0.99);
    expect(normalizedCrossCorrelation(rec, noise(8000, 8000, 99))).toBeLessThan(0.1);
    // A reference that starts before the recording does (recording began mid-prompt): negative lag.
    expect(bestAlignment(ref.subarray(2000), ref).lagSamples).toBe(-2000);
  });

  it('is insensitive to level, and empty or silent inputs give 0 instead of NaN', () => {
    const ref = noise(4000, 8000, 5);
    expect(
      normalizedCrossCorrelation(
        ref.map((x) => Math.round(x / 10)),
        ref,
      ),
    ).toBeGreaterThan(0.999);
    expect(normalizedCrossCorrelation(new Int16Array(), ref)).toBe(0);
    expect(normalizedCrossCorrelation(silence(500), ref)).toBe(0);
  });

  it('10 s × 10 s at 8 kHz takes well under a second', () => {
    const a = noise(80_000, 8000, 11);
    const b = noise(80_000, 8000, 12);
    const t0 = performance.now();
    normalizedCrossCorrelation(a, b);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});

describe('MediaCache (espeak-ng + sox)', () => {
  const cache = new MediaCache(freshDir());

  it('renders TTS to an 8 kHz mono 16-bit WAV of plausible length, once per distinct input', async () => {
    const first = await cache.renderSpeech({
      text: 'Press 1 to confirm',
      language: 'en',
      voice: 'female',
      speechRate: 1,
    });
    const samples = samplesOf(first.path);
    expect(first.durationMs).toBe(durationMs(samples));
    expect(first.durationMs).toBeGreaterThan(700);
    expect(first.durationMs).toBeLessThan(3000);
    expect(first.voice).toBe('en-us+f3');
    expect(first.warnings).toEqual([]);
    expect(analyseSpeech(samples).speechMs).toBeGreaterThan(500);
    const header = readFileSync(first.path);
    expect(header.readUInt16LE(34)).toBe(16);

    const [again, concurrent] = await Promise.all([
      cache.renderSpeech({ text: 'Press 1 to confirm' }),
      cache.renderSpeech({ text: '  Press 1   to confirm ' }),
    ]);
    expect(again.path).toBe(first.path);
    expect(concurrent.path).toBe(first.path);
    expect(cache.stats.renders).toBe(1);
    // Identical requests in flight at the same time share one render.
    const trio = await Promise.all([1, 2, 3].map(() => cache.renderSpeech({ text: 'Press 2 to cancel' })));
    expect(new Set(trio.map((t) => t.path)).size).toBe(1);
    expect(cache.stats.renders).toBe(2);

    // Another process on the same directory finds the file without rendering.
    const other = new MediaCache(cache.dir);
    expect((await other.renderSpeech({ text: 'Press 1 to confirm' })).path).toBe(first.path);
    expect(other.stats).toMatchObject({ renders: 0, hits: 1 });
  });

  it('with a name key, a prompt that reads back a PIN is not named by a hash anyone can compute', async () => {
    const key = new Uint8Array(32).fill(7);
    const keyed = new MediaCache(freshDir(), { nameKey: key });
    const plain = new MediaCache(freshDir());
    const text = 'You entered 4 3 2 1';
    const a = await keyed.renderSpeech({ text });
    const b = await plain.renderSpeech({ text });
    expect(basename(a.path)).not.toBe(basename(b.path));
    // The same key names it the same on every host sharing the store; another key does not.
    expect(basename((await new MediaCache(keyed.dir, { nameKey: key }).renderSpeech({ text })).path)).toBe(
      basename(a.path),
    );
    const other = await new MediaCache(freshDir(), { nameKey: new Uint8Array(32).fill(8) }).renderSpeech({ text });
    expect(basename(other.path)).not.toBe(basename(a.path));
  });

  it('speech rate changes the length: 2.0 is shorter than 0.5', async () => {
    const fast = await cache.renderSpeech({ text: SENTENCE, speechRate: 2 });
    const slow = await cache.renderSpeech({ text: SENTENCE, speechRate: 0.5 });
    expect(fast.wordsPerMinute).toBe(350);
    expect(slow.wordsPerMinute).toBe(88);
    expect(fast.durationMs * 2).toBeLessThan(slow.durationMs);
  });

  it('maps languages and voices to espeak-ng, falling back to English with a warning', async () => {
    const cases: [string, string][] = [
      ['en-US', 'en-us'],
      ['en-GB', 'en-gb'],
      ['de', 'de'],
      ['de-AT', 'de'],
      ['hr', 'hr'],
      ['es', 'es'],
      ['es-MX', 'es-419'],
      ['pt_BR', 'pt-br'],
      ['fr', 'fr-fr'],
    ];
    for (const [code, expected] of cases) {
      const out = await cache.renderSpeech({ text: 'Dobar dan', language: code });
      expect(out.voice, code).toBe(`${expected}+f3`);
      expect(out.warnings, code).toEqual([]);
    }
    const unknown = await cache.renderSpeech({ text: 'Hello there', language: 'xx-YY' });
    expect(unknown.voice).toBe('en-us+f3');
    expect(unknown.warnings).toEqual([expect.objectContaining({ code: 'TTS_LANGUAGE_FALLBACK' })]);
    expect(samplesOf(unknown.path).length).toBeGreaterThan(4000);

    const male = await cache.renderSpeech({ text: 'Hello there', voice: 'male' });
    const named = await cache.renderSpeech({ text: 'Hello there', voice: 'Annie' });
    const bogus = await cache.renderSpeech({ text: 'Hello there', voice: 'no-such-voice' });
    expect(male.voice).toBe('en-us+m3');
    expect(named.voice).toBe('en-us+Annie');
    expect(bogus.voice).toBe('en-us+f3');
    expect(bogus.warnings.map((w) => w.code)).toEqual(['TTS_VOICE_FALLBACK']);
    expect(new Set([male.path, named.path, unknown.path]).size).toBe(3);
  });

  it('passes text starting with a dash as text, and rejects empty or invalid requests', async () => {
    const dashed = await cache.renderSpeech({ text: '-v de --help' });
    expect(dashed.durationMs).toBeGreaterThan(500);
    await expect(cache.renderSpeech({ text: '   ' })).rejects.toThrow(MediaRequestError);
    await expect(cache.renderSpeech({ text: 'hi', speechRate: 0 })).rejects.toThrow(MediaRequestError);
  });

  it('the rendered prompt, delayed 1.3 s and sent through G.711 µ-law, correlates ≥ 0.9; another sentence < 0.5', async () => {
    const prompt = samplesOf((await cache.renderSpeech({ text: SENTENCE })).path);
    const other = samplesOf((await cache.renderSpeech({ text: OTHER })).path);
    const heard = g711(concat(noise(10_400, 40, 21), prompt, noise(16_000, 40, 22)));
    const found = bestAlignment(heard, prompt);
    expect(found.correlation).toBeGreaterThanOrEqual(0.9);
    expect(Math.abs(found.lagSamples - 10_400)).toBeLessThanOrEqual(1);
    const heardOther = g711(concat(noise(10_400, 40, 23), other, noise(16_000, 40, 24)));
    expect(normalizedCrossCorrelation(heardOther, prompt)).toBeLessThan(0.5);
    expect(normalizedCrossCorrelation(heard, other)).toBeLessThan(0.5);
  });

  it('analyseSpeech measures the trailing silence after speech within ±100 ms', async () => {
    const speech = samplesOf((await cache.renderSpeech({ text: SENTENCE })).path);
    // espeak-ng ends with its own short tail of silence: find the last audible sample independently.
    let lastLoud = speech.length - 1;
    while (lastLoud > 0 && Math.abs(speech[lastLoud] ?? 0) < 300) lastLoud--;
    const tailMs = durationMs(speech.length - 1 - lastLoud);
    const received = g711(concat(speech, noise(24_000, 20, 31)));
    const result = analyseSpeech(received, 8000, { frameMs: 20, thresholdDb: -40 });
    expect(Math.abs(result.trailingSilenceMs - (3000 + tailMs))).toBeLessThanOrEqual(100);
    expect(result.speechMs).toBeGreaterThan(2000);
    expect(result.speechMs).toBeLessThan(durationMs(speech));
    expect(result.frameDb.length).toBe(Math.ceil(received.length / 160));
    const quiet = analyseSpeech(g711(noise(16_000, 20, 32)));
    expect(quiet).toMatchObject({ speechMs: 0, trailingSilenceMs: 2000 });
    // A single click is not speech.
    const click = concat(silence(1000), tone(1000, 20), silence(1000));
    expect(analyseSpeech(click).speechMs).toBe(0);
  });

  it('builds padded prompts (pause, loops), the beep and a long silence file', async () => {
    const body = await cache.renderSpeech({ text: 'Press 1 to confirm' });
    const p = await cache.prompt({ body, pauseMs: 1000, loops: 2 });
    expect(p.durationMs).toBeCloseTo(1000 + 2 * body.durationMs, 0);
    expect(p.fileDurationMs).toBeCloseTo(p.durationMs + 3000, 0);
    const s = samplesOf(p.path);
    expect(s.subarray(0, 8000).every((x) => x === 0)).toBe(true);
    expect(s.subarray(s.length - 24_000).every((x) => x === 0)).toBe(true);
    const once = samplesOf(body.path);
    expect([...s.subarray(8000 + once.length, 8000 + 2 * once.length)]).toEqual([...once]);
    expect((await cache.prompt({ body, pauseMs: 1000, loops: 2 })).path).toBe(p.path);
    await expect(cache.prompt({ body, pauseMs: -1 })).rejects.toThrow(MediaRequestError);

    const beep = await cache.beepFile();
    expect(beep.durationMs).toBe(400);
    expect(beep.fileDurationMs).toBe(3400);
    expect(normalizedCrossCorrelation(samplesOf(beep.path), tone(1000, 400), { minOverlap: 1 })).toBeGreaterThan(0.99);

    const quiet = await cache.silenceFile();
    expect(quiet.durationMs).toBe(600_000);
    expect(samplesOf(quiet.path).every((x) => x === 0)).toBe(true);
  });

  it('shares files through an object store and survives a store that fails', async () => {
    const blobs = new Map<string, Uint8Array>();
    const store = {
      getBlob: async (name: string) => blobs.get(name) ?? null,
      putBlob: async (meta: { name: string }, data: Uint8Array) => {
        blobs.set(meta.name, data);
        return {};
      },
    } as unknown as ObjectStore;
    const a = new MediaCache(freshDir(), { store });
    const rendered = await a.renderSpeech({ text: 'Shared by hash' });
    await a.flush();
    expect(blobs.size).toBe(1);
    const b = new MediaCache(freshDir(), { store });
    const fromStore = await b.renderSpeech({ text: 'Shared by hash' });
    expect(b.stats).toMatchObject({ renders: 0, storeHits: 1 });
    expect(readFileSync(fromStore.path)).toEqual(readFileSync(rendered.path));

    const warnings: MediaWarning[] = [];
    const down = {
      getBlob: async () => {
        throw new errors.NoRespondersError('$JS.API.STREAM.INFO.OBJ_dialflow_media');
      },
      putBlob: async () => {
        throw new errors.TimeoutError();
      },
    } as unknown as ObjectStore;
    const c = new MediaCache(freshDir(), { store: down, onWarning: (w) => warnings.push(w) });
    expect((await c.renderSpeech({ text: 'Shared by hash' })).durationMs).toBeCloseTo(rendered.durationMs, 0);
    await c.flush();
    expect(c.stats).toMatchObject({ renders: 1, storeErrors: 2 });
    expect(warnings.map((w) => w.code)).toEqual(['MEDIA_STORE_UNAVAILABLE', 'MEDIA_STORE_UNAVAILABLE']);
  });
});

describe('audio from URLs and bytes', () => {
  const FIVE_MB = 5 * 1024 * 1024;
  const files = join(work, 'files');
  let server: Server;
  let base = '';
  let endlessSent = 0;
  let endlessClosed: Promise<void> = Promise.resolve();
  const wav22k = encodeWav(tone(440, 1500, 22_050), 22_050);
  const sox = (...args: string[]) => execFileSync('sox', args, { stdio: 'pipe' });
  const mp3Supported = /\bmp3\b/.test(
    execFileSync('sox', ['-h'], { encoding: 'utf8' }).split('AUDIO FILE FORMATS:')[1]?.split('\n')[0] ?? '',
  );
  let mp3 = Buffer.alloc(0);

  function drainedOrClosed(res: ServerResponse): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        res.off('drain', done).off('close', done);
        resolve();
      };
      res.on('drain', done).on('close', done);
    });
  }

  /** Writes `total` bytes in 64 KiB chunks, respecting back-pressure, until done or the client leaves. */
  async function stream(res: ServerResponse, total: number, onChunk?: (n: number) => void): Promise<void> {
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    let sent = 0;
    while (sent < total && !res.destroyed) {
      const ok = res.write(chunk);
      sent += chunk.length;
      onChunk?.(sent);
      if (!ok) await drainedOrClosed(res);
    }
    res.end();
  }

  beforeAll(async () => {
    rmSync(files, { recursive: true, force: true });
    execFileSync('mkdir', ['-p', files]);
    if (mp3Supported) {
      sox('-n', '-r', '22050', '-c', '1', join(files, 'tone.mp3'), 'synth', '2', 'sine', '440');
      mp3 = readFileSync(join(files, 'tone.mp3'));
    }
    server = createServer((req, res) => {
      const send = (type: string, body: Uint8Array | string) => {
        res.writeHead(200, { 'content-type': type });
        res.end(body);
      };
      switch (req.url) {
        case '/prompt.wav':
          return send('audio/wav', wav22k);
        case '/song.mp3':
          return send('audio/mpeg', mp3);
        case '/mislabelled':
          return send('application/octet-stream', wav22k); // no extension, content decides
        case '/notes.wav':
          return send('audio/wav', 'These are my notes, not audio.\n'.repeat(100));
        case '/big.wav':
          // No Content-Length: the limit has to be enforced on the bytes as they arrive.
          res.writeHead(200, { 'content-type': 'audio/wav' });
          res.write(Buffer.from(encodeWav(new Int16Array(0))));
          return void stream(res, FIVE_MB);
        case '/declared.wav':
          res.writeHead(200, { 'content-type': 'audio/wav', 'content-length': String(FIVE_MB) });
          return void stream(res, FIVE_MB);
        case '/endless.wav':
          res.writeHead(200, { 'content-type': 'audio/wav' });
          endlessClosed = new Promise((r) => res.once('close', () => r()));
          return void stream(res, 256 * 1024 * 1024, (n) => (endlessSent = n));
        default:
          res.writeHead(404).end('not here');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('downloads a 22 kHz WAV and converts it to 8 kHz mono of the same length', async () => {
    const cache = new MediaCache(freshDir());
    const got = await cache.fetchAudio(`${base}/prompt.wav`);
    expect(got.kind).toBe('wav');
    expect(got.sourceBytes).toBe(wav22k.length);
    expect(got.durationMs).toBeCloseTo(1500, -1);
    expect(normalizedCrossCorrelation(samplesOf(got.path), tone(440, 1500))).toBeGreaterThan(0.95);
    expect(cache.stats.conversions).toBe(1);
    // The same URL again within the URL cache time does not download again.
    expect((await cache.fetchAudio(`${base}/prompt.wav`)).path).toBe(got.path);
    expect(cache.stats.downloads).toBe(1);
    // Content decides, not the name: the same bytes without an extension give the same file.
    expect((await cache.fetchAudio(`${base}/mislabelled`)).path).toBe(got.path);
  });

  it('refuses a 5 MB body while streaming, and on a declared Content-Length before reading', async () => {
    const cache = new MediaCache(freshDir());
    const err = await cache.fetchAudio(`${base}/big.wav`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AudioTooLargeError);
    expect((err as AudioTooLargeError).receivedBytes).toBeGreaterThan(4 * 1024 * 1024);
    expect((err as AudioTooLargeError).receivedBytes).toBeLessThan(FIVE_MB);
    await expect(cache.fetchAudio(`${base}/declared.wav`)).rejects.toThrow(AudioTooLargeError);
    expect(cache.stats.conversions).toBe(0);
  });

  it('closes the connection when the limit is passed (the server does not get to send it all)', async () => {
    const cache = new MediaCache(freshDir());
    await expect(cache.fetchAudio(`${base}/endless.wav`)).rejects.toThrow(AudioTooLargeError);
    await endlessClosed;
    expect(endlessSent).toBeLessThan(64 * 1024 * 1024);
  });

  it('refuses a text file named .wav, a 404 and a non-http URL with named errors', async () => {
    const cache = new MediaCache(freshDir());
    await expect(cache.fetchAudio(`${base}/notes.wav`)).rejects.toThrow(UnsupportedAudioError);
    const missing = await cache.fetchAudio(`${base}/missing.wav`).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(AudioFetchError);
    expect((missing as AudioFetchError).status).toBe(404);
    await expect(cache.fetchAudio('ftp://example.com/a.wav')).rejects.toThrow(MediaRequestError);
    await expect(cache.fetchAudio('http://127.0.0.1:1/refused.wav')).rejects.toThrow(AudioFetchError);
  });

  it.skipIf(!mp3Supported)('downloads and converts an MP3', async () => {
    expect(sniffAudio(mp3)).toBe('mp3');
    const cache = new MediaCache(freshDir());
    const got = await cache.fetchAudio(`${base}/song.mp3`);
    expect(got.kind).toBe('mp3');
    expect(got.durationMs).toBeGreaterThan(1900);
    expect(got.durationMs).toBeLessThan(2200);
    expect(normalizedCrossCorrelation(samplesOf(got.path), tone(440, 1000))).toBeGreaterThan(0.9);
  });

  it('fromBytes: a recorded 8 kHz voicemail is used as is; other rates are converted; contradictions are refused', async () => {
    const cache = new MediaCache(freshDir());
    const voicemail = encodeWav(concat(tone(300, 500), silence(500)));
    const direct = await cache.fromBytes(voicemail, 'wav');
    expect(direct.durationMs).toBe(1000);
    expect(cache.stats.conversions).toBe(0);
    expect(readFileSync(direct.path)).toEqual(Buffer.from(voicemail));
    const stereo = encodeWav(
      Int16Array.from({ length: 16_000 }, (_, i) => (i % 2 ? 1000 : -1000)),
      16_000,
      2,
    );
    const converted = await cache.fromBytes(stereo);
    expect(converted.durationMs).toBeCloseTo(500, -1);
    expect(cache.stats.conversions).toBe(1);
    await expect(cache.fromBytes(voicemail, 'mp3')).rejects.toThrow(UnsupportedAudioError);
    await expect(cache.fromBytes(Buffer.from('ID3 but then garbage'.repeat(20)), 'mp3')).rejects.toThrow(
      UnsupportedAudioError,
    );
    await expect(cache.fromBytes(new Uint8Array(4 * 1024 * 1024 + 1))).rejects.toThrow(AudioTooLargeError);
  });
});

describe('helpers', () => {
  it('language resolution and words per minute', () => {
    const have = new Set(['en-us', 'en-gb', 'de', 'hr', 'es', 'es-419', 'cmn']);
    expect(resolveLanguage('EN', have)).toEqual({ language: 'en-us', exact: true });
    expect(resolveLanguage('zh-CN', have)).toEqual({ language: 'cmn', exact: true });
    expect(resolveLanguage('hr-HR', have)).toEqual({ language: 'hr', exact: true });
    expect(resolveLanguage('tlh', have)).toEqual({ language: 'en-us', exact: false });
    expect(wordsPerMinute(1)).toBe(175);
    expect(wordsPerMinute(10)).toBe(450);
    expect(wordsPerMinute(0.1)).toBe(80);
  });

  it('sniffs WAV and MP3 by content', () => {
    expect(sniffAudio(encodeWav(silence(10)))).toBe('wav');
    expect(sniffAudio(Uint8Array.from([0x49, 0x44, 0x33, 4, 0]))).toBe('mp3');
    expect(sniffAudio(Uint8Array.from([0xff, 0xfb, 0x90, 0x64]))).toBe('mp3'); // MPEG-1 layer III, 128 kbit/s, 44.1 kHz
    expect(sniffAudio(Uint8Array.from([0xff, 0xf1, 0x50, 0x80]))).toBeUndefined(); // AAC ADTS
    expect(sniffAudio(Buffer.from('<html>'))).toBeUndefined();
  });
});
