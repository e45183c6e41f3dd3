// The audio files the agents play: rendered speech, fetched audio, the pause before a prompt,
// silence and the voicemail beep — all 8 kHz mono 16-bit WAV, which is what baresip's aufile
// source needs. Every prompt gets a silent tail: aufile hangs the call up when its file ends, so
// the agent switches back to silence (after the prompt's known duration) well before that.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { concat, encodeWav, parseWav, silence, toMono, tone, TELEPHONY_RATE } from './wav.js';

const run = promisify(execFile);

export class PromptError extends Error {
  override readonly name = 'PromptError';
}

export interface PromptFile {
  path: string;
  /** Audible length (pause + body), without the silent tail. */
  durationMs: number;
}

/** Silence after every prompt, so the file never ends while it is the source of a call. */
export const PROMPT_TAIL_MS = 3000;
/** The idle source; the agent re-arms it before it runs out. */
export const SILENCE_MS = 60_000;
const MAX_AUDIO_BYTES = 4 * 1024 * 1024;

export interface SpeechRequest {
  text: string;
  language: string;
  voice: string;
  speechRate: number;
}

export class Prompts {
  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  private key(...parts: unknown[]): string {
    return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 24);
  }

  private write(name: string, samples: Int16Array): string {
    const path = join(this.dir, name);
    if (!existsSync(path)) {
      const tmp = `${path}.${process.pid}.tmp`;
      writeFileSync(tmp, encodeWav(samples, TELEPHONY_RATE));
      renameSync(tmp, path);
    }
    return path;
  }

  /** The idle source: SILENCE_MS of digital silence. */
  silence(): string {
    return this.write(`silence-${SILENCE_MS}.wav`, silence(SILENCE_MS));
  }

  /** A 440 Hz / 500 ms beep before a voicemail recording. */
  beep(): PromptFile {
    return { path: this.write('beep.wav', concat(tone(1000, 400, TELEPHONY_RATE, 0.4), silence(PROMPT_TAIL_MS))), durationMs: 400 };
  }

  /** Text to speech (espeak-ng), resampled to 8 kHz mono. Cached by content. */
  async speech(req: SpeechRequest): Promise<Int16Array> {
    const k = this.key('tts', req.text, req.language, req.voice, req.speechRate);
    const raw = join(this.dir, `tts-${k}.raw.wav`);
    const out = join(this.dir, `tts-${k}.8k.wav`);
    if (!existsSync(out)) {
      const voice = `${safeLang(req.language)}${req.voice === 'male' ? '+m3' : '+f3'}`;
      const wpm = String(Math.round(Math.max(80, Math.min(450, 175 * (req.speechRate || 1)))));
      try {
        await run('espeak-ng', ['-v', voice, '-s', wpm, '-w', raw, '--', req.text]);
      } catch (err) {
        // An unknown language: fall back to English rather than failing the call.
        await run('espeak-ng', ['-v', req.voice === 'male' ? 'en+m3' : 'en+f3', '-s', wpm, '-w', raw, '--', req.text]).catch((e: Error) => {
          throw new PromptError(`text to speech failed: ${(err as Error).message}; ${e.message}`);
        });
      }
      await toTelephony(raw, out);
    }
    return toMono(parseWav(readFileSync(out)));
  }

  /** Fetch an audio URL (wav or mp3, ≤ 4 MB) and convert it. Cached by URL. */
  async audio(url: string): Promise<Int16Array> {
    const k = this.key('url', url);
    const out = join(this.dir, `url-${k}.8k.wav`);
    if (!existsSync(out)) {
      const res = await fetch(url);
      if (!res.ok) throw new PromptError(`GET ${url}: HTTP ${res.status}`);
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (bytes.byteLength > MAX_AUDIO_BYTES) throw new PromptError(`${url} is larger than 4 MB`);
      const isWav = bytes.length > 12 && Buffer.from(bytes.subarray(0, 4)).toString('ascii') === 'RIFF';
      const src = join(this.dir, `url-${k}.src.${isWav ? 'wav' : 'mp3'}`);
      writeFileSync(src, bytes);
      await toTelephony(src, out);
    }
    return toMono(parseWav(readFileSync(out)));
  }

  /** pause + body + silent tail, as one file. */
  prompt(body: Int16Array, pauseMs: number): PromptFile {
    const samples = concat(silence(pauseMs), body);
    const k = this.key('prompt', pauseMs, createHash('sha256').update(body).digest('hex'));
    return { path: this.write(`prompt-${k}.wav`, concat(samples, silence(PROMPT_TAIL_MS))), durationMs: Math.round((samples.length / TELEPHONY_RATE) * 1000) };
  }
}

function safeLang(lang: string): string {
  return /^[a-z]{2,3}(-[a-z0-9]{2,8})?$/i.test(lang) ? lang.toLowerCase() : 'en';
}

async function toTelephony(src: string, out: string): Promise<void> {
  const tmp = `${out}.${process.pid}.tmp.wav`;
  try {
    await run('sox', [src, '-r', String(TELEPHONY_RATE), '-c', '1', '-b', '16', '-e', 'signed-integer', tmp]);
  } catch (err) {
    throw new PromptError(`cannot convert ${src} to 8 kHz mono: ${(err as Error).message}`);
  }
  renameSync(tmp, out);
}
