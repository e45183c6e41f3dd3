// Answering-machine detection on received audio, for providers whose carrier gives none (SIP).
//
// The classic energy/cadence heuristic (the one Asterisk's AMD application uses): a person who
// picks up says something short — "Hello?", "Yes?" — and then waits for the caller; a machine
// starts a long greeting ("Hi, you have reached …") and keeps talking. So, on the audio received
// since the call was answered, in 20 ms frames:
//   - silence for `initialSilenceMs` before anyone speaks          → MACHINE (machines often wait)
//   - speech, then `afterGreetingSilenceMs` of silence              → HUMAN   (a short greeting, then waiting)
//   - one stretch of speech runs longer than `maxGreetingMs`      → MACHINE
//   - more than `maxWords` words in the greeting                    → MACHINE
//   - nothing decided after `totalAnalysisMs`                       → NOTSURE (the flow takes `answered`)
// It is a heuristic: a person who answers with a long sentence is taken for a machine, and a
// machine with a one-word greeting for a person. docs/providers.md gives the figures measured.
import { analyseSpeech, TELEPHONY_RATE, type SpeechAnalysis } from './sip/wav.js';

export interface AmdOptions {
  initialSilenceMs: number;
  afterGreetingSilenceMs: number;
  maxGreetingMs: number;
  maxWords: number;
  /** A pause at least this long ends a word. */
  betweenWordsSilenceMs: number;
  /** A speech run shorter than this is noise, not a word. */
  minWordMs: number;
  totalAnalysisMs: number;
  /** Frame level that counts as speech, in dBFS. */
  thresholdDb: number;
}

/** Asterisk's AMD defaults, with the word limit raised by one: "Yes, hello?" is a person. */
export const AMD_DEFAULTS: AmdOptions = {
  initialSilenceMs: 2500,
  afterGreetingSilenceMs: 800,
  maxGreetingMs: 1500,
  maxWords: 3,
  betweenWordsSilenceMs: 50,
  minWordMs: 100,
  totalAnalysisMs: 5000,
  thresholdDb: -40,
};

export type AmdResult = 'HUMAN' | 'MACHINE' | 'NOTSURE';
export interface AmdDecision {
  result: AmdResult;
  /** Why, in words (logs, the CALL_ESTABLISHED event's properties). */
  reason: string;
  /** Audio time at which the decision fell. */
  atMs: number;
  /** 0–1: how far past its threshold the deciding measure was. */
  confidence: number;
}

/**
 * Decide on the audio received so far; `undefined` while more audio is needed. Call it again with
 * the longer audio as it arrives (the answer for a prefix never changes once given).
 */
export function detectMachine(
  samples: Int16Array,
  options: Partial<AmdOptions> = {},
  rate: number = TELEPHONY_RATE,
): AmdDecision | undefined {
  const o = { ...AMD_DEFAULTS, ...options };
  const a: SpeechAnalysis = analyseSpeech(samples, rate, {
    frameMs: 20,
    thresholdDb: o.thresholdDb,
    minSpeechMs: o.minWordMs,
  });
  const frameMs = a.frameMs;
  const decide = (
    result: AmdResult,
    reason: string,
    frame: number,
    measure: number,
    threshold: number,
  ): AmdDecision => ({
    result,
    reason,
    atMs: (frame + 1) * frameMs,
    confidence: Math.min(1, Math.max(0, threshold > 0 ? Math.abs(measure - threshold) / threshold + 0.5 : 1)),
  });
  let firstSpeech = -1;
  let silenceRun = 0;
  let voiceRun = 0;
  let words = 0;
  let inWord = false;
  for (let f = 0; f < a.speech.length; f++) {
    const t = (f + 1) * frameMs;
    const speaking = a.speech[f] === 1;
    if (speaking) {
      if (firstSpeech < 0) firstSpeech = f;
      if (!inWord) {
        words += 1;
        inWord = true;
        if (words > o.maxWords) return decide('MACHINE', `${words} words before a pause`, f, words, o.maxWords);
      }
      silenceRun = 0;
      voiceRun += frameMs;
      if (voiceRun > o.maxGreetingMs)
        return decide(
          'MACHINE',
          `speech longer than ${o.maxGreetingMs} ms without a pause`,
          f,
          voiceRun,
          o.maxGreetingMs,
        );
    } else {
      silenceRun += frameMs;
      if (silenceRun >= o.betweenWordsSilenceMs) {
        inWord = false;
        voiceRun = 0;
      }
      if (firstSpeech < 0 && silenceRun >= o.initialSilenceMs)
        return decide(
          'MACHINE',
          `${o.initialSilenceMs} ms of silence before anyone spoke`,
          f,
          silenceRun,
          o.initialSilenceMs,
        );
      if (firstSpeech >= 0 && silenceRun >= o.afterGreetingSilenceMs)
        return decide(
          'HUMAN',
          `a short greeting, then ${o.afterGreetingSilenceMs} ms of silence`,
          f,
          silenceRun,
          o.afterGreetingSilenceMs,
        );
    }
    if (t >= o.totalAnalysisMs)
      return { result: 'NOTSURE', reason: `no decision within ${o.totalAnalysisMs} ms`, atMs: t, confidence: 0 };
  }
  return undefined;
}
