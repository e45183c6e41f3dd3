// Media for the SIP provider: every file a baresip agent plays is an 8 kHz mono 16-bit WAV made
// here — text-to-speech (espeak-ng, then sox), downloaded or uploaded audio (sox), prompts with
// their pause and loops, the voicemail beep and long silence. Files live in a work directory owned
// by the agents service and are named by a sha256 of their inputs, so a prompt that a million
// recipients hear is rendered once; with a NATS object store they are shared between hosts too.
import { execFile } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { LRUCache } from 'lru-cache';
import pLimit, { type LimitFunction } from 'p-limit';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import { storageReplicas } from '../../store/replicas.js';
import { isNatsFailure } from '../../store/nats-errors.js';
import {
  concat,
  durationMs,
  encodeWav,
  parseWav,
  silence,
  sniffAudio,
  TELEPHONY_RATE,
  tone,
  toMono,
  WavError,
  type AudioKind,
} from './wav.js';
export { sniffAudio, type AudioKind } from './wav.js';

export const MEDIA_BUCKET = 'dialflow_media';
/** The seed's limit for a play element's audio file. */
export const MAX_AUDIO_BYTES = 4 * 1024 * 1024;
/** espeak-ng's default rate, which speechRate 1.0 stands for. */
export const WORDS_PER_MINUTE_AT_1 = 175;
/** Silence appended to every prompt: baresip hangs up when an aufile source reaches its end, so the
 * agent switches to silenceFile() when the known duration has elapsed, and this covers the gap. */
export const DEFAULT_PROMPT_PADDING_MS = 3000;
/** Long enough for any wait between prompts (collect, record); created once. */
export const DEFAULT_SILENCE_MS = 10 * 60_000;
export const BEEP_HZ = 1000;
export const BEEP_MS = 400;

/** Bump when the way files are produced changes, so old cache entries are not reused. */
const CACHE_FORMAT = 'v1';

// ---------------------------------------------------------------------------------------------
// Errors

export class MediaError extends Error {
  override readonly name: string = 'MediaError';
}

/** A media request with invalid fields (empty text, negative pause, a non-http URL …). */
export class MediaRequestError extends MediaError {
  override readonly name = 'MediaRequestError';
}

/** The URL could not be downloaded: network error, timeout, or a non-2xx status. */
export class AudioFetchError extends MediaError {
  override readonly name = 'AudioFetchError';
  constructor(
    message: string,
    readonly url: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The audio is larger than the limit (checked on Content-Length and again while streaming). */
export class AudioTooLargeError extends MediaError {
  override readonly name = 'AudioTooLargeError';
  constructor(
    readonly limitBytes: number,
    readonly receivedBytes: number,
    source: string,
  ) {
    super(`${source} is larger than ${limitBytes} bytes (got at least ${receivedBytes})`);
  }
}

/** The content is not a WAV or an MP3 (judged by its bytes), or could not be decoded. */
export class UnsupportedAudioError extends MediaError {
  override readonly name = 'UnsupportedAudioError';
}

/** sox or espeak-ng is missing, failed, or timed out. */
export class MediaToolError extends MediaError {
  override readonly name = 'MediaToolError';
  constructor(
    readonly command: string,
    /** missing: not installed / not on PATH; timeout: killed after toolTimeoutMs; failed: exited non-zero. */
    readonly reason: 'missing' | 'timeout' | 'failed',
    message: string,
    readonly stderr = '',
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

// ---------------------------------------------------------------------------------------------
// Types

export interface MediaWarning {
  /** Stable code: TTS_LANGUAGE_FALLBACK, TTS_VOICE_FALLBACK, MEDIA_STORE_UNAVAILABLE. */
  code: 'TTS_LANGUAGE_FALLBACK' | 'TTS_VOICE_FALLBACK' | 'MEDIA_STORE_UNAVAILABLE';
  message: string;
}

/** An 8 kHz mono 16-bit PCM WAV in the cache directory. */
export interface MediaFile {
  path: string;
  durationMs: number;
}

export interface SpeechFile extends MediaFile {
  /** The espeak-ng voice used, e.g. `en-us+f3`. */
  voice: string;
  wordsPerMinute: number;
  /** Fallbacks taken (unknown language or voice); empty when the request was honoured as is. */
  warnings: MediaWarning[];
}

export interface FetchedAudio extends MediaFile {
  kind: AudioKind;
  /** Size of the downloaded (or given) file before conversion. */
  sourceBytes: number;
}

/** A prompt ready for `ausrc aufile,<path>`. */
export interface PromptFile extends MediaFile {
  /** The audible part (pause + loops × body): when it has elapsed the prompt has been played. */
  durationMs: number;
  /** The whole file including the trailing silence padding (always > durationMs). */
  fileDurationMs: number;
}

export interface SpeechRequest {
  text: string;
  /** BCP 47-ish code: `en`, `en-US`, `de`, `hr`, `es-419` … (default `en`). */
  language?: string;
  /** `female` (default), `male`, or an espeak-ng variant name (`f2`, `klatt`, `Annie` …). */
  voice?: string;
  /** 1.0 = 175 words per minute (default 1.0). */
  speechRate?: number;
}

export interface PromptRequest {
  /** The audio to play (a file from this cache: renderSpeech, fetchAudio, fromBytes, beep). */
  body: { path: string };
  /** Silence before the first play (the play element's pause). */
  pauseMs?: number;
  /** How many times the body is played back to back (default 1). */
  loops?: number;
  /** Silence after the audible part (default DEFAULT_PROMPT_PADDING_MS, at least 1 ms). */
  paddingMs?: number;
}

export interface MediaCacheOptions {
  /** Shares files between hosts by content hash (see openMediaStore). */
  store?: ObjectStore;
  /** Commands to run; by default `sox` and `espeak-ng` from PATH. */
  commands?: { sox?: string; espeak?: string };
  maxAudioBytes?: number;
  /** Whole download, headers to last byte (default 20 s). */
  fetchTimeoutMs?: number;
  /** One sox or espeak-ng run (default 30 s). */
  toolTimeoutMs?: number;
  /** At most this many sox/espeak-ng processes at once (default: CPU count). */
  concurrency?: number;
  /** A downloaded URL is reused for this long without downloading it again (default 5 min; 0 = always download). */
  urlCacheMs?: number;
  /** How many downloaded URLs and file durations are remembered (default 10,000 each; the oldest go first). */
  cacheEntries?: number;
  /** Where store problems are reported (they never fail a request); default process.emitWarning. */
  onWarning?: (warning: MediaWarning) => void;
  /**
   * Names files by an HMAC keyed with this secret instead of a plain hash of their inputs: a prompt
   * that reads back what a caller typed ("You entered 4321") cannot be found in the shared store
   * by hashing guesses. Every host sharing the store needs the same secret (dialflow derives it from
   * the payload key).
   */
  nameKey?: Uint8Array;
}

export interface MediaStats {
  /** espeak-ng runs. */
  renders: number;
  /** sox conversions of downloaded/uploaded audio. */
  conversions: number;
  downloads: number;
  /** Requests answered from the local directory (or an identical request in flight). */
  hits: number;
  /** Files taken from the shared object store instead of being produced. */
  storeHits: number;
  storeErrors: number;
}

// ---------------------------------------------------------------------------------------------
// Input validation (requests come from flow documents and uploads, i.e. from users)

const speechSchema = z.object({
  text: z
    .string()
    .transform((t) => t.replace(/\s+/g, ' ').trim())
    .pipe(z.string().min(1, 'text is empty').max(4000, 'text is longer than 4000 characters')),
  language: z.string().trim().min(1).max(35).default('en'),
  voice: z.string().trim().min(1).max(64).default('female'),
  speechRate: z.number().min(0.1).max(4).default(1),
});

const promptSchema = z.object({
  body: z.object({ path: z.string().min(1) }),
  pauseMs: z.number().int().min(0).max(60_000).default(0),
  loops: z.number().int().min(1).max(100).default(1),
  paddingMs: z.number().int().min(1).max(60_000).default(DEFAULT_PROMPT_PADDING_MS),
});

const urlSchema = z.url({ protocol: /^https?$/, error: 'only http and https URLs can be fetched' });

function parseRequest<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
  const result = schema.safeParse(input);
  if (!result.success) throw new MediaRequestError(`invalid ${what}:\n${z.prettifyError(result.error)}`);
  return result.data;
}

// ---------------------------------------------------------------------------------------------
// Languages and voices

/** Codes whose espeak-ng voice has another name (checked before the code itself). */
const LANGUAGE_ALIASES: Record<string, string> = {
  en: 'en-us',
  'en-ca': 'en-us',
  'en-au': 'en-gb',
  'en-nz': 'en-gb',
  'en-ie': 'en-gb',
  'en-in': 'en-gb',
  'en-za': 'en-gb',
  fr: 'fr-fr',
  'fr-ca': 'fr-fr',
  'es-us': 'es-419',
  'es-mx': 'es-419',
  'es-ar': 'es-419',
  'es-co': 'es-419',
  'es-cl': 'es-419',
  'pt-pt': 'pt',
  zh: 'cmn',
  'zh-cn': 'cmn',
  'zh-tw': 'cmn',
  'zh-hk': 'yue',
  no: 'nb',
  'nb-no': 'nb',
  nn: 'nb',
  iw: 'he',
  in: 'id',
  'sr-latn': 'sr',
};

const FALLBACK_LANGUAGE = 'en-us';

const VOICE_ALIASES: Record<string, string> = { female: 'f3', male: 'm3' };

/** Picks the espeak-ng language for a code, given the languages it has (lower case). */
export function resolveLanguage(code: string, available: ReadonlySet<string>): { language: string; exact: boolean } {
  const full = code.trim().toLowerCase().replace(/_/g, '-');
  const primary = full.split('-')[0] ?? full;
  for (const candidate of [LANGUAGE_ALIASES[full], full, LANGUAGE_ALIASES[primary], primary]) {
    if (candidate !== undefined && available.has(candidate)) return { language: candidate, exact: true };
  }
  return { language: available.has(FALLBACK_LANGUAGE) ? FALLBACK_LANGUAGE : 'en', exact: false };
}

/** espeak-ng's speed for a speech rate (its accepted range is 80–450 words per minute). */
export function wordsPerMinute(speechRate: number): number {
  return Math.max(80, Math.min(450, Math.round(WORDS_PER_MINUTE_AT_1 * speechRate)));
}

// ---------------------------------------------------------------------------------------------
// The cache

/** Opens (creating if needed) the object store bucket where media is shared by content hash. */
export async function openMediaStore(nc: NatsConnection): Promise<ObjectStore> {
  return new Objm(nc).create(MEDIA_BUCKET, {
    description: 'dialflow prompts and audio, 8 kHz mono WAV by content hash',
    replicas: storageReplicas(),
  });
}

function contentName(key: Uint8Array | undefined, ...parts: (string | Uint8Array)[]): string {
  const h = key ? createHmac('sha256', key) : createHash('sha256');
  for (const p of parts) {
    h.update(typeof p === 'string' ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength));
    h.update('\0');
  }
  return h.digest('hex');
}

export class MediaCache {
  private readonly store: ObjectStore | undefined;
  private readonly nameKey: Uint8Array | undefined;
  private readonly sox: string;
  private readonly espeak: string;
  private readonly maxAudioBytes: number;
  private readonly fetchTimeoutMs: number;
  private readonly toolTimeoutMs: number;
  private readonly onWarning: (w: MediaWarning) => void;
  /** At most `concurrency` sox/espeak-ng processes at once. */
  private readonly limit: LimitFunction;
  private readonly inFlight = new Map<string, Promise<MediaFile>>();
  /** Durations of files in the local directory (the file name is its content hash). */
  private readonly durations: LRUCache<string, number>;
  /** Campaigns personalise URLs: bounded in number and in age. Undefined when every URL is downloaded. */
  private readonly urls: LRUCache<string, FetchedAudio> | undefined;
  private readonly sharing = new Set<Promise<void>>();
  private languages: Promise<Set<string>> | undefined;
  private variants: Promise<Map<string, string>> | undefined;
  private ready: Promise<void> | undefined;
  private readonly counters: MediaStats = {
    renders: 0,
    conversions: 0,
    downloads: 0,
    hits: 0,
    storeHits: 0,
    storeErrors: 0,
  };

  constructor(
    readonly dir: string,
    options: MediaCacheOptions = {},
  ) {
    this.store = options.store;
    this.nameKey = options.nameKey;
    this.sox = options.commands?.sox ?? 'sox';
    this.espeak = options.commands?.espeak ?? 'espeak-ng';
    this.maxAudioBytes = options.maxAudioBytes ?? MAX_AUDIO_BYTES;
    this.fetchTimeoutMs = options.fetchTimeoutMs ?? 20_000;
    this.toolTimeoutMs = options.toolTimeoutMs ?? 30_000;
    const urlCacheMs = options.urlCacheMs ?? 5 * 60_000;
    const cacheEntries = options.cacheEntries ?? 10_000;
    this.durations = new LRUCache({ max: cacheEntries });
    this.urls = urlCacheMs > 0 ? new LRUCache({ max: cacheEntries, ttl: urlCacheMs }) : undefined;
    this.onWarning = options.onWarning ?? ((w) => process.emitWarning(w.message, { code: w.code }));
    this.limit = pLimit(Math.max(1, options.concurrency ?? availableParallelism()));
  }

  get stats(): Readonly<MediaStats> {
    return { ...this.counters };
  }

  /** Waits until files produced so far have been offered to the shared store (for shutdown and tests). */
  async flush(): Promise<void> {
    await Promise.all([...this.sharing]);
  }

  /** Text to speech: espeak-ng at the requested language, voice and rate, then 8 kHz mono. */
  async renderSpeech(request: SpeechRequest): Promise<SpeechFile> {
    const req = parseRequest(speechSchema, request, 'speech request');
    const warnings: MediaWarning[] = [];
    const { language, exact } = resolveLanguage(req.language, await this.espeakLanguages());
    if (!exact)
      warnings.push({
        code: 'TTS_LANGUAGE_FALLBACK',
        message: `no text-to-speech voice for language "${req.language}"; speaking ${language} instead`,
      });
    const variants = await this.espeakVariants();
    const wanted = VOICE_ALIASES[req.voice.toLowerCase()] ?? req.voice.toLowerCase();
    let variant = variants.get(wanted);
    if (variant === undefined) {
      variant = VOICE_ALIASES.female ?? 'f3';
      warnings.push({ code: 'TTS_VOICE_FALLBACK', message: `unknown voice "${req.voice}"; using the female voice` });
    }
    const voice = `${language}+${variant}`;
    const wpm = wordsPerMinute(req.speechRate);
    const name = `tts-${contentName(this.nameKey, CACHE_FORMAT, 'tts', voice, String(wpm), req.text)}.wav`;
    const file = await this.materialize(name, async (out) => {
      const raw = `${out}.speech.wav`;
      try {
        this.counters.renders++;
        // Text goes in on stdin: as an argument, text starting with "-" would be read as an option.
        await this.run(this.espeak, ['-v', voice, '-s', String(wpm), '-b', '1', '-w', raw, '--stdin'], req.text);
        await this.toTelephony(raw, 'wav', out);
      } finally {
        await rm(raw, { force: true });
      }
    });
    return { ...file, voice, wordsPerMinute: wpm, warnings };
  }

  /**
   * Downloads an http(s) audio file (at most maxAudioBytes, enforced while streaming), checks by
   * its bytes that it is a WAV or an MP3, and converts it to 8 kHz mono.
   */
  async fetchAudio(url: string, options: { signal?: AbortSignal } = {}): Promise<FetchedAudio> {
    const href = parseRequest(urlSchema, url, 'audio URL');
    const cached = this.urls?.get(href);
    if (cached) {
      this.counters.hits++;
      return cached;
    }
    const bytes = await this.download(href, options.signal);
    const file = await this.fromBytes(bytes, 'auto', `audio at ${href}`);
    this.urls?.set(href, file);
    return file;
  }

  /**
   * Converts audio given as bytes (an uploaded `file:` asset, a recorded voicemail from the
   * recordings store) to 8 kHz mono. `kind` is what the caller believes it is; the bytes decide,
   * and a contradiction is an error rather than a guess.
   */
  async fromBytes(bytes: Uint8Array, kind: AudioKind | 'auto' = 'auto', source = 'audio'): Promise<FetchedAudio> {
    if (bytes.byteLength > this.maxAudioBytes)
      throw new AudioTooLargeError(this.maxAudioBytes, bytes.byteLength, source);
    const sniffed = sniffAudio(bytes);
    if (sniffed === undefined)
      throw new UnsupportedAudioError(`${source} is neither a WAV nor an MP3 file (by its content)`);
    if (kind !== 'auto' && kind !== sniffed)
      throw new UnsupportedAudioError(`${source} was declared ${kind} but its content is ${sniffed}`);
    const name = `audio-${contentName(this.nameKey, CACHE_FORMAT, 'audio', bytes)}.wav`;
    const file = await this.materialize(name, async (out) => {
      if (sniffed === 'wav') {
        const direct = this.directWav(bytes, source);
        if (direct) {
          await writeFile(out, direct);
          return;
        }
      }
      const input = `${out}.source.${sniffed}`;
      try {
        await writeFile(input, bytes);
        this.counters.conversions++;
        await this.toTelephony(input, sniffed, out, source);
      } finally {
        await rm(input, { force: true });
      }
    });
    return { ...file, kind: sniffed, sourceBytes: bytes.byteLength };
  }

  /**
   * A playable prompt: `pauseMs` of silence, the body `loops` times, then `paddingMs` of silence so
   * that baresip does not hang up at the end of the file before the agent switches to silenceFile().
   */
  async prompt(request: PromptRequest): Promise<PromptFile> {
    const req = parseRequest(promptSchema, request, 'prompt');
    const bytes = await readFile(req.body.path);
    const body = this.telephonyWav(bytes, req.body.path);
    const audibleSamples = Math.round((req.pauseMs * TELEPHONY_RATE) / 1000) + body.length * req.loops;
    const name = `prompt-${contentName(this.nameKey, CACHE_FORMAT, 'prompt', bytes, String(req.pauseMs), String(req.loops), String(req.paddingMs))}.wav`;
    const file = await this.materialize(name, async (out) => {
      await writeFile(
        out,
        encodeWav(
          concat(silence(req.pauseMs), ...Array.from({ length: req.loops }, () => body), silence(req.paddingMs)),
        ),
      );
    });
    return { path: file.path, durationMs: durationMs(audibleSamples), fileDurationMs: file.durationMs };
  }

  /** Digital silence of the given length (default ten minutes), created once. */
  async silenceFile(ms: number = DEFAULT_SILENCE_MS): Promise<MediaFile> {
    const length = parseRequest(z.number().int().min(1).max(3_600_000), ms, 'silence length');
    return this.materialize(`silence-${CACHE_FORMAT}-${length}.wav`, async (out) => {
      await writeFile(out, encodeWav(silence(length)));
    });
  }

  /** The recordVoicemail beep (1 kHz, 400 ms) as a padded prompt. */
  async beepFile(): Promise<PromptFile> {
    const beep = await this.materialize(`beep-${CACHE_FORMAT}-${BEEP_HZ}-${BEEP_MS}.wav`, async (out) => {
      await writeFile(out, encodeWav(tone(BEEP_HZ, BEEP_MS)));
    });
    return this.prompt({ body: beep });
  }

  // -------------------------------------------------------------------------------------------

  /**
   * Returns the cache file `name`, producing it at most once: from the local directory, else the
   * shared store, else `produce` (which writes a temporary file that is checked and renamed into
   * place, so a crash never leaves a half-written file under a valid name).
   */
  private materialize(name: string, produce: (tmpPath: string) => Promise<void>): Promise<MediaFile> {
    const pending = this.inFlight.get(name);
    if (pending) {
      this.counters.hits++;
      return pending;
    }
    const work = this.produceOnce(name, produce).finally(() => this.inFlight.delete(name));
    this.inFlight.set(name, work);
    return work;
  }

  private async produceOnce(name: string, produce: (tmpPath: string) => Promise<void>): Promise<MediaFile> {
    await this.ensureDir();
    const path = join(this.dir, name);
    const local = await this.readLocal(path);
    if (local !== undefined) {
      this.counters.hits++;
      return { path, durationMs: local };
    }
    const shared = await this.fromStore(name, path);
    if (shared !== undefined) {
      this.counters.storeHits++;
      return { path, durationMs: shared };
    }
    const tmp = join(this.dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await produce(tmp);
      const bytes = await readFile(tmp);
      const samples = this.telephonyWav(bytes, name);
      await rename(tmp, path);
      const ms = durationMs(samples);
      this.durations.set(path, ms);
      this.share(name, bytes, ms);
      return { path, durationMs: ms };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  private async ensureDir(): Promise<void> {
    this.ready ??= mkdir(this.dir, { recursive: true }).then(() => undefined);
    await this.ready;
  }

  private async readLocal(path: string): Promise<number | undefined> {
    const known = this.durations.get(path);
    if (known !== undefined) return known;
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const ms = durationMs(this.telephonyWav(bytes, path));
      this.durations.set(path, ms);
      return ms;
    } catch (err) {
      // Files are only ever renamed into place complete, so this is outside damage: produce it again.
      if (err instanceof UnsupportedAudioError) return undefined;
      throw err;
    }
  }

  private async fromStore(name: string, path: string): Promise<number | undefined> {
    if (!this.store) return undefined;
    let data: Uint8Array | null;
    try {
      data = await this.store.getBlob(name);
    } catch (err) {
      // The shared store only saves work; when NATS is unreachable the file is produced locally.
      if (!isNatsFailure(err)) throw err;
      this.storeProblem(`reading ${name} from the media store failed: ${err.message}`);
      return undefined;
    }
    if (!data) return undefined;
    let samples: Int16Array;
    try {
      samples = this.telephonyWav(data, name);
    } catch (err) {
      if (!(err instanceof UnsupportedAudioError)) throw err;
      this.storeProblem(`ignoring a damaged ${name} in the media store: ${err.message}`);
      return undefined;
    }
    const tmp = join(this.dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
    await writeFile(tmp, data);
    await rename(tmp, path);
    const ms = durationMs(samples);
    this.durations.set(path, ms);
    return ms;
  }

  private share(name: string, bytes: Uint8Array, ms: number): void {
    const store = this.store;
    if (!store) return;
    // In the background: the call that asked for the file should not wait for other hosts' benefit.
    const task = store
      .putBlob(
        { name, description: 'dialflow media', metadata: { durationMs: String(ms), contentType: 'audio/wav' } },
        bytes,
      )
      .then(
        () => undefined,
        (err: unknown) => {
          // Same reasoning as in fromStore: sharing is an optimisation, never a reason to fail.
          if (!isNatsFailure(err)) throw err;
          this.storeProblem(`sharing ${name} in the media store failed: ${err.message}`);
        },
      )
      .finally(() => this.sharing.delete(task));
    this.sharing.add(task);
  }

  private storeProblem(message: string): void {
    this.counters.storeErrors++;
    this.onWarning({ code: 'MEDIA_STORE_UNAVAILABLE', message });
  }

  /** The samples of an 8 kHz mono 16-bit WAV, or UnsupportedAudioError for anything else. */
  private telephonyWav(bytes: Uint8Array, source: string): Int16Array {
    let wav;
    try {
      wav = parseWav(bytes);
    } catch (err) {
      if (err instanceof WavError) throw new UnsupportedAudioError(`${source}: ${err.message}`, { cause: err });
      throw err;
    }
    if (wav.sampleRate !== TELEPHONY_RATE || wav.channels !== 1)
      throw new UnsupportedAudioError(
        `${source} is ${wav.sampleRate} Hz × ${wav.channels} channels, not ${TELEPHONY_RATE} Hz mono`,
      );
    return wav.samples;
  }

  /** A canonical copy of a WAV that needs no conversion (already 16-bit at 8 kHz), else undefined. */
  private directWav(bytes: Uint8Array, source: string): Uint8Array | undefined {
    let wav;
    try {
      wav = parseWav(bytes);
    } catch (err) {
      // Other encodings (8-bit, A-law, float …) are sox's job; broken files fail there with its message.
      if (err instanceof WavError) return undefined;
      throw err;
    }
    if (wav.sampleRate !== TELEPHONY_RATE) return undefined;
    const mono = toMono(wav);
    if (mono.length === 0) throw new UnsupportedAudioError(`${source} contains no audio`);
    return encodeWav(mono);
  }

  private async toTelephony(input: string, kind: AudioKind, output: string, source = 'audio'): Promise<void> {
    try {
      // -D: no dither, so the same input always gives the same bytes (content-hash cache);
      // -G: guard against clipping when resampling a loud file.
      await this.run(this.sox, [
        '-D',
        '-G',
        '-t',
        kind,
        input,
        '-t',
        'wav',
        '-r',
        String(TELEPHONY_RATE),
        '-c',
        '1',
        '-b',
        '16',
        '-e',
        'signed-integer',
        output,
      ]);
    } catch (err) {
      // A file that passed the magic-byte check but does not decode is the user's file, not our fault.
      if (err instanceof MediaToolError && err.reason === 'failed') {
        const hint = /no handler/i.test(err.stderr)
          ? ` (this host cannot decode ${kind}: install sox's ${kind} format support)`
          : '';
        throw new UnsupportedAudioError(
          `${source} could not be decoded as ${kind}${hint}: ${err.stderr.trim().split('\n').slice(-1)[0] ?? ''}`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  private async download(href: string, signal: AbortSignal | undefined): Promise<Uint8Array> {
    const controller = new AbortController();
    const timeout = AbortSignal.timeout(this.fetchTimeoutMs);
    const combined = AbortSignal.any(signal ? [controller.signal, timeout, signal] : [controller.signal, timeout]);
    const failed = (err: unknown): never => {
      if (err instanceof MediaError) throw err;
      if (signal?.aborted) throw signal.reason;
      if (timeout.aborted)
        throw new AudioFetchError(`downloading ${href} took longer than ${this.fetchTimeoutMs} ms`, href, undefined, {
          cause: err,
        });
      // fetch reports network failures (refused, DNS, TLS, reset) as TypeError.
      if (err instanceof TypeError)
        throw new AudioFetchError(`downloading ${href} failed: ${describeCause(err)}`, href, undefined, { cause: err });
      throw err;
    };
    this.counters.downloads++;
    let response: Response;
    try {
      response = await fetch(href, {
        signal: combined,
        redirect: 'follow',
        headers: { accept: 'audio/wav, audio/x-wav, audio/mpeg, */*;q=0.5' },
      });
    } catch (err) {
      return failed(err);
    }
    if (!response.ok) {
      controller.abort();
      throw new AudioFetchError(`downloading ${href} failed: HTTP ${response.status}`, href, response.status);
    }
    const declared = Number(response.headers.get('content-length') ?? NaN);
    if (Number.isFinite(declared) && declared > this.maxAudioBytes) {
      controller.abort();
      throw new AudioTooLargeError(this.maxAudioBytes, declared, `audio at ${href}`);
    }
    if (!response.body) return new Uint8Array();
    const reader = response.body.getReader();
    const chunks: Uint8Array[] = [];
    let received = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        received += value.byteLength;
        // Checked per chunk, so a server that lies about (or omits) Content-Length costs us at most one chunk past the limit.
        if (received > this.maxAudioBytes) {
          controller.abort();
          throw new AudioTooLargeError(this.maxAudioBytes, received, `audio at ${href}`);
        }
        chunks.push(value);
      }
    } catch (err) {
      return failed(err);
    }
    return Buffer.concat(chunks, received);
  }

  private async espeakLanguages(): Promise<Set<string>> {
    this.languages ??= this.run(this.espeak, ['--voices']).then(
      (out) =>
        new Set(
          out
            .split('\n')
            .slice(1)
            .map((line) => line.trim().split(/\s+/)[1]?.toLowerCase())
            .filter((l): l is string => l !== undefined && l !== ''),
        ),
    );
    return this.languages.catch((err: unknown) => {
      this.languages = undefined; // a missing binary may be installed later; do not cache the failure
      throw err;
    });
  }

  /** Variant names (lower case: both the display name and the file name) → the name espeak-ng takes after "+". */
  private async espeakVariants(): Promise<Map<string, string>> {
    this.variants ??= this.run(this.espeak, ['--voices=variant']).then((out) => {
      const map = new Map<string, string>();
      for (const line of out.split('\n').slice(1)) {
        const m = /^\s*\d+\s+variant\s+\S+\s+(\S+)\s+!v\/(\S+)/.exec(line);
        if (!m || m[1] === undefined || m[2] === undefined) continue;
        map.set(m[2].toLowerCase(), m[2]);
        map.set(m[1].toLowerCase(), m[2]);
      }
      return map;
    });
    return this.variants.catch((err: unknown) => {
      this.variants = undefined;
      throw err;
    });
  }

  /** Runs a command (never through a shell), feeding `input` on stdin; resolves with stdout. */
  private run(command: string, args: string[], input?: string): Promise<string> {
    return this.limit(
      () =>
        new Promise<string>((resolve, reject) => {
          const child = execFile(
            command,
            args,
            { timeout: this.toolTimeoutMs, killSignal: 'SIGKILL', maxBuffer: 4 * 1024 * 1024, encoding: 'utf8' },
            (err, stdout, stderr) => {
              if (!err) return resolve(stdout);
              if (err.code === 'ENOENT')
                return reject(
                  new MediaToolError(command, 'missing', `${command} not found: install it or put it on PATH`, '', {
                    cause: err,
                  }),
                );
              if (err.killed)
                return reject(
                  new MediaToolError(
                    command,
                    'timeout',
                    `${command} was stopped after ${this.toolTimeoutMs} ms`,
                    stderr,
                    { cause: err },
                  ),
                );
              reject(
                new MediaToolError(
                  command,
                  'failed',
                  `${command} failed (exit ${String(err.code)}): ${stderr.trim().split('\n').slice(-1)[0] ?? ''}`,
                  stderr,
                  { cause: err },
                ),
              );
            },
          );
          // A process that exits early closes stdin; the callback above reports why, so EPIPE here is noise.
          child.stdin?.on('error', () => undefined);
          child.stdin?.end(input ?? '');
        }),
    );
  }
}

function describeCause(err: Error): string {
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error ? cause.message : err.message;
}
