// Pure PCM helpers for the SIP provider: read and write 16-bit PCM WAV, build silence and beep
// tones, G.711 companding, and the two measurements the provider makes on real call audio —
// "does what the callee heard match the prompt we rendered" (normalized cross-correlation) and
// "how long has the caller been silent" (frame energies). No I/O here: files are media.ts's job.

/** Base class of everything parseWav rejects. */
export class WavError extends Error {
  override readonly name: string = 'WavError';
}

/** The bytes are not a RIFF/WAVE file, or its chunk structure is broken. */
export class InvalidWavError extends WavError {
  override readonly name = 'InvalidWavError';
}

/** A well-formed WAV whose encoding this module does not read (only 16-bit integer PCM). */
export class UnsupportedWavError extends WavError {
  override readonly name = 'UnsupportedWavError';
}

export interface WavAudio {
  sampleRate: number;
  channels: number;
  /** Interleaved when channels > 1 (use toMono). */
  samples: Int16Array;
}

/** The rate baresip plays and records at, and therefore the rate of every file we hand it. */
export const TELEPHONY_RATE = 8000;

const WAVE_FORMAT_PCM = 0x0001;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;
/** Writers that stream (recorders still running, pipes) leave the size field at one of these. */
const UNKNOWN_SIZES = new Set([0, 0xffffffff]);

function ascii(bytes: Uint8Array, at: number): string {
  return String.fromCharCode(bytes[at] ?? 0, bytes[at + 1] ?? 0, bytes[at + 2] ?? 0, bytes[at + 3] ?? 0);
}

/** True when the bytes start like a RIFF/WAVE file (a cheap content sniff, no full parse). */
export function looksLikeWav(bytes: Uint8Array): boolean {
  return bytes.length >= 12 && ascii(bytes, 0) === 'RIFF' && ascii(bytes, 8) === 'WAVE';
}

export type AudioKind = 'wav' | 'mp3';

/** Content sniffing by magic bytes: a WAV (RIFF/WAVE), an MP3 (ID3 tag or MPEG audio frame header), or neither. */
export function sniffAudio(bytes: Uint8Array): AudioKind | undefined {
  if (looksLikeWav(bytes)) return 'wav';
  if (bytes.length >= 3 && bytes[0] === 0x49 && bytes[1] === 0x44 && bytes[2] === 0x33) return 'mp3'; // "ID3"
  const [b0 = 0, b1 = 0, b2 = 0] = bytes;
  // 11 sync bits, then version ≠ reserved (01), layer ≠ reserved (00; also what AAC ADTS uses),
  // bitrate index ≠ 1111 and sample-rate index ≠ 11.
  const frameSync = b0 === 0xff && (b1 & 0xe0) === 0xe0;
  if (
    frameSync &&
    ((b1 >> 3) & 0x03) !== 0x01 &&
    ((b1 >> 1) & 0x03) !== 0x00 &&
    b2 >> 4 !== 0x0f &&
    ((b2 >> 2) & 0x03) !== 0x03
  )
    return 'mp3';
  return undefined;
}

/**
 * Parses a 16-bit PCM WAV (plain or WAVE_FORMAT_EXTENSIBLE with a PCM sub-format).
 * The data chunk may be shorter than its header claims, or claim 0 / 0xFFFFFFFF bytes: a call
 * recorder writes the final sizes only when it closes the file, and the provider reads the file
 * while the call is still being recorded (max-silence detection) or after the recorder was killed.
 */
export function parseWav(bytes: Uint8Array): WavAudio {
  if (!looksLikeWav(bytes)) throw new InvalidWavError('not a WAV file (no RIFF/WAVE header)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let fmt: { format: number; channels: number; sampleRate: number; bits: number } | undefined;
  let at = 12;
  while (at + 8 <= bytes.length) {
    const id = ascii(bytes, at);
    const size = view.getUint32(at + 4, true);
    const body = at + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > bytes.length) throw new InvalidWavError(`fmt chunk too short (${size} bytes)`);
      let format = view.getUint16(body, true);
      // The extensible header keeps the real format in the first two bytes of its sub-format GUID.
      if (format === WAVE_FORMAT_EXTENSIBLE && size >= 40 && body + 26 <= bytes.length)
        format = view.getUint16(body + 24, true);
      fmt = {
        format,
        channels: view.getUint16(body + 2, true),
        sampleRate: view.getUint32(body + 4, true),
        bits: view.getUint16(body + 14, true),
      };
    } else if (id === 'data') {
      if (!fmt) throw new InvalidWavError('data chunk before fmt chunk');
      if (fmt.format !== WAVE_FORMAT_PCM)
        throw new UnsupportedWavError(`unsupported WAV encoding 0x${fmt.format.toString(16)} (only integer PCM)`);
      if (fmt.bits !== 16) throw new UnsupportedWavError(`unsupported WAV sample size ${fmt.bits} bits (only 16)`);
      if (fmt.channels < 1) throw new InvalidWavError('WAV declares 0 channels');
      if (fmt.sampleRate < 1) throw new InvalidWavError('WAV declares a sample rate of 0');
      const available = bytes.length - body;
      const declared = UNKNOWN_SIZES.has(size) ? available : Math.min(size, available);
      const frameBytes = 2 * fmt.channels;
      const usable = declared - (declared % frameBytes);
      const samples = new Int16Array(usable / 2);
      for (let i = 0; i < samples.length; i++) samples[i] = view.getInt16(body + i * 2, true);
      return { sampleRate: fmt.sampleRate, channels: fmt.channels, samples };
    }
    // Chunks are word-aligned: an odd size is followed by one pad byte.
    at = body + size + (size % 2);
  }
  throw new InvalidWavError(fmt ? 'WAV has no data chunk' : 'WAV has no fmt chunk');
}

/** Encodes mono (or interleaved multi-channel) 16-bit samples as a canonical 44-byte-header WAV. */
export function encodeWav(samples: Int16Array, sampleRate: number = TELEPHONY_RATE, channels = 1): Uint8Array {
  const dataBytes = samples.length * 2;
  const out = new Uint8Array(44 + dataBytes);
  const view = new DataView(out.buffer);
  const put = (at: number, s: string) => {
    for (let i = 0; i < 4; i++) out[at + i] = s.charCodeAt(i);
  };
  put(0, 'RIFF');
  view.setUint32(4, 36 + dataBytes, true);
  put(8, 'WAVE');
  put(12, 'fmt ');
  view.setUint32(16, 16, true);
  view.setUint16(20, WAVE_FORMAT_PCM, true);
  view.setUint16(22, channels, true);
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * channels * 2, true);
  view.setUint16(32, channels * 2, true);
  view.setUint16(34, 16, true);
  put(36, 'data');
  view.setUint32(40, dataBytes, true);
  for (let i = 0; i < samples.length; i++) view.setInt16(44 + i * 2, samples[i] ?? 0, true);
  return out;
}

/** Averages interleaved channels into one. */
export function toMono(audio: WavAudio): Int16Array {
  if (audio.channels === 1) return audio.samples;
  const n = Math.floor(audio.samples.length / audio.channels);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let c = 0; c < audio.channels; c++) sum += audio.samples[i * audio.channels + c] ?? 0;
    out[i] = Math.round(sum / audio.channels);
  }
  return out;
}

/** Duration in milliseconds of a mono sample count (or array) at the given rate. */
export function durationMs(samples: ArrayLike<number> | number, sampleRate: number = TELEPHONY_RATE): number {
  const n = typeof samples === 'number' ? samples : samples.length;
  return (n * 1000) / sampleRate;
}

function sampleCount(ms: number, rate: number): number {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`duration must be a non-negative number of ms, got ${ms}`);
  return Math.round((ms * rate) / 1000);
}

export function silence(ms: number, rate: number = TELEPHONY_RATE): Int16Array {
  return new Int16Array(sampleCount(ms, rate));
}

/**
 * A sine tone (the recordVoicemail beep is tone(1000, 400)). The 5 ms raised-cosine edges keep
 * it from clicking, which a listener hears and a codec smears into a broadband burst.
 */
export function tone(freqHz: number, ms: number, rate: number = TELEPHONY_RATE, amplitude = 0.5): Int16Array {
  const n = sampleCount(ms, rate);
  const out = new Int16Array(n);
  const edge = Math.min(Math.round(rate * 0.005), Math.floor(n / 2));
  for (let i = 0; i < n; i++) {
    const fromEdge = Math.min(i, n - 1 - i);
    const env = fromEdge < edge ? 0.5 - 0.5 * Math.cos((Math.PI * fromEdge) / edge) : 1;
    out[i] = Math.round(32767 * amplitude * env * Math.sin((2 * Math.PI * freqHz * i) / rate));
  }
  return out;
}

export function concat(...parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// G.711 (ITU-T), so tests and diagnostics can put audio through what an RTP leg does to it.

const MULAW_BIAS = 0x84;
const MULAW_CLIP = 32635;

export function encodeMuLaw(samples: Int16Array): Uint8Array {
  const out = new Uint8Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    let s = samples[i] ?? 0;
    const sign = s < 0 ? 0x80 : 0;
    if (s < 0) s = -s;
    s = Math.min(s, MULAW_CLIP) + MULAW_BIAS;
    let exponent = 7;
    for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
    const mantissa = (s >> (exponent + 3)) & 0x0f;
    out[i] = ~(sign | (exponent << 4) | mantissa) & 0xff;
  }
  return out;
}

export function decodeMuLaw(bytes: Uint8Array): Int16Array {
  const out = new Int16Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const u = ~(bytes[i] ?? 0) & 0xff;
    const exponent = (u >> 4) & 0x07;
    const magnitude = ((((u & 0x0f) << 3) + MULAW_BIAS) << exponent) - MULAW_BIAS;
    out[i] = u & 0x80 ? -magnitude : magnitude;
  }
  return out;
}

export function encodeALaw(samples: Int16Array): Uint8Array {
  const out = new Uint8Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    // The reference coder works on 13-bit magnitudes; segment ends are 0x1F, 0x3F, … 0xFFF.
    let v = (samples[i] ?? 0) >> 3;
    let mask = 0xd5;
    if (v < 0) {
      mask = 0x55;
      v = -v - 1;
    }
    let seg = 0;
    while (seg < 8 && v >= 0x20 << seg) seg++;
    if (seg >= 8) {
      out[i] = 0x7f ^ mask;
      continue;
    }
    const mantissa = (seg < 2 ? v >> 1 : v >> seg) & 0x0f;
    out[i] = ((seg << 4) | mantissa) ^ mask;
  }
  return out;
}

export function decodeALaw(bytes: Uint8Array): Int16Array {
  const out = new Int16Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const a = (bytes[i] ?? 0) ^ 0x55;
    const exponent = (a >> 4) & 0x07;
    const mantissa = a & 0x0f;
    const magnitude = exponent === 0 ? (mantissa << 4) + 8 : ((mantissa << 4) + 0x108) << (exponent - 1);
    out[i] = a & 0x80 ? magnitude : -magnitude;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Cross-correlation

export interface Alignment {
  /** Best normalized correlation over all admissible lags, in [-1, 1] (1 = identical shape). */
  correlation: number;
  /** Samples by which `b` starts later inside `a` at the best lag (negative: `b` starts earlier). */
  lagSamples: number;
  /** Number of samples overlapping at the best lag. */
  overlapSamples: number;
}

export interface CorrelationOptions {
  /**
   * Smallest overlap considered, as a fraction of the shorter signal (default 0.5). Without it a
   * few overlapping samples at the extreme lags can correlate perfectly by accident.
   */
  minOverlap?: number;
}

/**
 * Finds where `b` (e.g. the rendered prompt) sits inside `a` (e.g. what the callee recorded) and
 * how alike they are there: for each lag, the Pearson-style correlation of the overlapping parts
 * (each with its own mean removed over the whole signal, normalized by the energies of the
 * overlapping parts), maximized over lags. Gain differences (level of the call path) do not
 * matter; codec noise lowers the value a little (G.711 keeps it above 0.99 on speech).
 *
 * Every lag is evaluated exactly, via FFT: O((n+m) log(n+m)), about 0.1 s for 10 s × 10 s at 8 kHz.
 */
export function bestAlignment(a: ArrayLike<number>, b: ArrayLike<number>, options: CorrelationOptions = {}): Alignment {
  const na = a.length;
  const nb = b.length;
  const none: Alignment = { correlation: 0, lagSamples: 0, overlapSamples: 0 };
  if (na === 0 || nb === 0) return none;
  const minOverlapFraction = options.minOverlap ?? 0.5;
  if (!(minOverlapFraction > 0 && minOverlapFraction <= 1))
    throw new RangeError(`minOverlap must be in (0, 1], got ${minOverlapFraction}`);
  const minOverlap = Math.max(1, Math.ceil(Math.min(na, nb) * minOverlapFraction));

  const da = centered(a);
  const db = centered(b);
  const size = nextPow2(na + nb - 1);
  const num = crossCorrelate(da, db, size);
  const ea = prefixEnergy(da);
  const eb = prefixEnergy(db);
  // Energies below this are digital silence (or dither): a ratio of two near-zero sums is noise.
  const floor = 1e-6 * Math.max(ea[na] ?? 0, eb[nb] ?? 0) + 1e-9;

  let best = none;
  let bestValue = -Infinity;
  // lag L: a[i + L] is compared with b[i], for i in [max(0, -L), min(nb, na - L)).
  for (let lag = -(nb - 1); lag <= na - 1; lag++) {
    const i0 = Math.max(0, -lag);
    const i1 = Math.min(nb, na - lag);
    const overlap = i1 - i0;
    if (overlap < minOverlap) continue;
    const energyA = (ea[i1 + lag] ?? 0) - (ea[i0 + lag] ?? 0);
    const energyB = (eb[i1] ?? 0) - (eb[i0] ?? 0);
    if (energyA <= floor || energyB <= floor) continue;
    const value = (num[lag >= 0 ? lag : size + lag] ?? 0) / Math.sqrt(energyA * energyB);
    if (value > bestValue) {
      bestValue = value;
      best = { correlation: Math.max(-1, Math.min(1, value)), lagSamples: lag, overlapSamples: overlap };
    }
  }
  return best;
}

/** The best normalized cross-correlation of two signals over all lags (see bestAlignment). */
export function normalizedCrossCorrelation(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  options: CorrelationOptions = {},
): number {
  return bestAlignment(a, b, options).correlation;
}

function centered(x: ArrayLike<number>): Float64Array {
  let mean = 0;
  for (let i = 0; i < x.length; i++) mean += x[i] ?? 0;
  mean /= x.length;
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = (x[i] ?? 0) - mean;
  return out;
}

function prefixEnergy(x: Float64Array): Float64Array {
  const out = new Float64Array(x.length + 1);
  for (let i = 0; i < x.length; i++) out[i + 1] = (out[i] ?? 0) + (x[i] ?? 0) * (x[i] ?? 0);
  return out;
}

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/**
 * c[L] = Σ a[i + L]·b[i] for every lag, circularly indexed (negative lags at size + L). Both real
 * signals go through one complex FFT (a as the real part, b as the imaginary part) and are
 * separated by conjugate symmetry, so the whole thing costs two transforms instead of three.
 */
function crossCorrelate(a: Float64Array, b: Float64Array, size: number): Float64Array {
  const re = new Float64Array(size);
  const im = new Float64Array(size);
  re.set(a);
  im.set(b);
  fft(re, im, false);
  const outRe = new Float64Array(size);
  const outIm = new Float64Array(size);
  for (let k = 0; k < size; k++) {
    const j = (size - k) % size;
    const xr = re[k] ?? 0;
    const xi = im[k] ?? 0;
    const yr = re[j] ?? 0;
    const yi = im[j] ?? 0;
    // A = (X[k] + conj X[N-k]) / 2, B = (X[k] - conj X[N-k]) / 2i
    const ar = (xr + yr) / 2;
    const ai = (xi - yi) / 2;
    const br = (xi + yi) / 2;
    const bi = -(xr - yr) / 2;
    // A · conj(B)
    outRe[k] = ar * br + ai * bi;
    outIm[k] = ai * br - ar * bi;
  }
  fft(outRe, outIm, true);
  return outRe;
}

/** In-place iterative radix-2 FFT; `inverse` also scales by 1/n. */
function fft(re: Float64Array, im: Float64Array, inverse: boolean): void {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      const tr = re[i] ?? 0;
      re[i] = re[j] ?? 0;
      re[j] = tr;
      const ti = im[i] ?? 0;
      im[i] = im[j] ?? 0;
      im[j] = ti;
    }
  }
  for (let len = 2; len <= n; len *= 2) {
    const angle = ((inverse ? 2 : -2) * Math.PI) / len;
    const wr = Math.cos(angle);
    const wi = Math.sin(angle);
    const half = len / 2;
    for (let start = 0; start < n; start += len) {
      let cr = 1;
      let ci = 0;
      for (let k = 0; k < half; k++) {
        const p = start + k;
        const q = p + half;
        const qr = re[q] ?? 0;
        const qi = im[q] ?? 0;
        const tr = qr * cr - qi * ci;
        const ti = qr * ci + qi * cr;
        const pr = re[p] ?? 0;
        const pi = im[p] ?? 0;
        re[q] = pr - tr;
        im[q] = pi - ti;
        re[p] = pr + tr;
        im[p] = pi + ti;
        const ncr = cr * wr - ci * wi;
        ci = cr * wi + ci * wr;
        cr = ncr;
      }
    }
  }
  if (inverse) {
    for (let i = 0; i < n; i++) {
      re[i] = (re[i] ?? 0) / n;
      im[i] = (im[i] ?? 0) / n;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Speech activity

export interface SpeechAnalysisOptions {
  /** Frame length (default 20 ms, one RTP packet). */
  frameMs?: number;
  /** A frame whose RMS level is at or above this many dBFS counts as speech (default -40). */
  thresholdDb?: number;
  /** Runs of speech frames shorter than this are clicks or line noise, not speech (default 60 ms). */
  minSpeechMs?: number;
}

export interface SpeechAnalysis {
  frameMs: number;
  /** RMS level of each frame in dBFS (-Infinity for digital silence); the last frame may be partial. */
  frameDb: Float64Array;
  /** Which frames count as speech (after dropping too-short runs). */
  speech: Uint8Array;
  /** Total time judged to be speech. */
  speechMs: number;
  /** Time before the first speech frame (the whole duration when there is no speech). */
  leadingSilenceMs: number;
  /** Time from the end of the last speech frame to the end of the audio (the whole duration when there is no speech). */
  trailingSilenceMs: number;
  durationMs: number;
}

/**
 * Frame energies and silence measurements on received audio: the voicemail recorder stops after
 * `maxSilenceSeconds` of trailingSilenceMs once speechMs > 0, and the same numbers serve a greeting
 * length check. Levels are absolute (dBFS), so pass the audio as received, not normalized.
 */
export function analyseSpeech(
  samples: Int16Array,
  rate: number = TELEPHONY_RATE,
  options: SpeechAnalysisOptions = {},
): SpeechAnalysis {
  const frameMs = options.frameMs ?? 20;
  const thresholdDb = options.thresholdDb ?? -40;
  const minSpeechMs = options.minSpeechMs ?? 60;
  if (!(frameMs > 0)) throw new RangeError(`frameMs must be positive, got ${frameMs}`);
  const frameLen = Math.max(1, Math.round((frameMs * rate) / 1000));
  const frames = Math.ceil(samples.length / frameLen);
  const frameDb = new Float64Array(frames);
  const speech = new Uint8Array(frames);
  for (let f = 0; f < frames; f++) {
    const start = f * frameLen;
    const end = Math.min(samples.length, start + frameLen);
    let sum = 0;
    for (let i = start; i < end; i++) sum += (samples[i] ?? 0) ** 2;
    const rms = Math.sqrt(sum / (end - start));
    frameDb[f] = rms > 0 ? 20 * Math.log10(rms / 32768) : -Infinity;
    speech[f] = (frameDb[f] ?? -Infinity) >= thresholdDb ? 1 : 0;
  }
  const minRun = Math.max(1, Math.ceil(minSpeechMs / frameMs));
  for (let f = 0; f < frames;) {
    if (!speech[f]) {
      f++;
      continue;
    }
    let end = f;
    while (end < frames && speech[end]) end++;
    if (end - f < minRun) speech.fill(0, f, end);
    f = end;
  }
  const total = durationMs(samples.length, rate);
  let first = -1;
  let last = -1;
  let count = 0;
  for (let f = 0; f < frames; f++) {
    if (!speech[f]) continue;
    if (first < 0) first = f;
    last = f;
    count++;
  }
  if (first < 0)
    return {
      frameMs,
      frameDb,
      speech,
      speechMs: 0,
      leadingSilenceMs: total,
      trailingSilenceMs: total,
      durationMs: total,
    };
  const lastEnd = Math.min(samples.length, (last + 1) * frameLen);
  return {
    frameMs,
    frameDb,
    speech,
    speechMs: Math.min(total, count * durationMs(frameLen, rate)),
    leadingSilenceMs: durationMs(first * frameLen, rate),
    trailingSilenceMs: durationMs(samples.length - lastEnd, rate),
    durationMs: total,
  };
}
