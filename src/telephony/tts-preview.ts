// Text-to-speech previews (the HTTP API's POST /api/tts/preview): the same rendering the SIP
// provider gives a play element's `tts` (src/telephony/sip/media.ts: espeak-ng, then sox to 8 kHz
// mono WAV), so what a flow author hears is what a callee will hear. Each preview renders in a
// directory of its own that is removed afterwards: previews of arbitrary text are not worth caching
// on disk. Rendering spawns processes, so at most `concurrency` previews run at once, a few more
// wait, and beyond that the caller is told to come back (TtsBusyError).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pLimit, { type LimitFunction } from 'p-limit';
import { MediaCache, MediaToolError, type MediaWarning, type SpeechRequest } from './sip/media.js';

/** espeak-ng or sox is not installed (or not on PATH). */
export class TtsUnavailableError extends Error {
  override readonly name = 'TtsUnavailableError';
}

/** Too many previews are rendering or waiting. */
export class TtsBusyError extends Error {
  override readonly name = 'TtsBusyError';
}

export interface TtsPreviewOptions {
  /** Previews rendering at once (default 2). */
  concurrency?: number;
  /** Previews waiting for a turn before more are refused (default 4). */
  queue?: number;
  /** Commands to run; by default `espeak-ng` and `sox` from PATH. */
  commands?: { espeak?: string; sox?: string };
  /** One espeak-ng or sox run (default 20 s). */
  toolTimeoutMs?: number;
}

export interface TtsPreview {
  /** An 8 kHz mono 16-bit PCM WAV. */
  wav: Buffer;
  durationMs: number;
  /** The espeak-ng voice used, e.g. `en-us+f3`. */
  voice: string;
  /** Fallbacks taken (an unknown language or voice). */
  warnings: MediaWarning[];
}

export class TtsPreviewer {
  private readonly limit: LimitFunction;
  private readonly queue: number;

  constructor(private readonly options: TtsPreviewOptions = {}) {
    this.limit = pLimit(Math.max(1, options.concurrency ?? 2));
    this.queue = Math.max(0, options.queue ?? 4);
  }

  render(request: SpeechRequest): Promise<TtsPreview> {
    if (this.limit.pendingCount >= this.queue && this.limit.activeCount >= this.limit.concurrency)
      return Promise.reject(
        new TtsBusyError(`${this.limit.activeCount} previews are rendering and ${this.limit.pendingCount} waiting`),
      );
    return this.limit(() => this.renderNow(request));
  }

  private async renderNow(request: SpeechRequest): Promise<TtsPreview> {
    const dir = await mkdtemp(join(tmpdir(), 'dialflow-tts-'));
    try {
      const cache = new MediaCache(dir, {
        concurrency: 1,
        ...(this.options.commands ? { commands: this.options.commands } : {}),
        toolTimeoutMs: this.options.toolTimeoutMs ?? 20_000,
      });
      const speech = await cache.renderSpeech(request);
      return {
        wav: await readFile(speech.path),
        durationMs: speech.durationMs,
        voice: speech.voice,
        warnings: speech.warnings,
      };
    } catch (err) {
      if (err instanceof MediaToolError && err.reason === 'missing')
        throw new TtsUnavailableError(`text-to-speech needs espeak-ng and sox on this host: ${err.message}`, {
          cause: err,
        });
      throw err;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}
