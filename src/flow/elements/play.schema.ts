// play: text-to-speech or an audio file, played to the caller (looped, optionally interruptible).
import { z } from 'zod';
import type { BranchTable } from './branch-table.js';
import { base, coded, nextBranches } from './common.schema.js';

export const TTS_MAX_CHARS = 160;
export const AUDIO_MAX_BYTES = 4 * 1024 * 1024;

export const playBranches = {
  played: { session: 'keep', when: 'the prompt played to its end (every loop), or a key interrupted it' },
  hungUp: { session: 'end', when: 'the end user hung up' },
  callEnded: {
    session: 'end',
    when: 'the call ended otherwise (the platform, a technical issue, the provider never confirmed the prompt), or there was no call session',
  },
} as const satisfies BranchTable;

export const ttsSchema = z
  .object({
    text: z.string().min(1).max(TTS_MAX_CHARS, `text-to-speech content is at most ${TTS_MAX_CHARS} characters`),
    language: z
      .string()
      .regex(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, 'a language tag such as en, es or en-GB')
      .default('en'),
    voice: z.enum(['female', 'male']).default('female'),
    neural: z.boolean().default(false),
    speechRate: z.number().min(0.5).max(2).default(1),
  })
  .strict();

const AUDIO_EXT = /\.(mp3|wav)(\?.*)?$/i;
export const audioSchema = z.union([
  z
    .object({
      url: z
        .url({ protocol: /^https?$/ })
        .refine(
          (u) => AUDIO_EXT.test(new URL(u).pathname),
          coded('audio.unsupportedType', 'audio files are .mp3 or .wav'),
        ),
    })
    .strict(),
  z
    .object({
      /** An uploaded file, relative to the flow document. */
      file: z
        .string()
        .min(1)
        .refine((f) => AUDIO_EXT.test(f), coded('audio.unsupportedType', 'audio files are .mp3 or .wav')),
      sizeBytes: z.number().int().min(1).max(AUDIO_MAX_BYTES, 'audio files are at most 4 MB').optional(),
    })
    .strict(),
  /** A voicemail recorded earlier in the flow, by its name. */
  z.object({ voicemail: z.string().min(1).max(200) }).strict(),
]);

export const playSchema = z
  .object({
    ...base,
    type: z.literal('play'),
    tts: ttsSchema.optional(),
    audio: audioSchema.optional(),
    /** Silence before the first play only, 0–5 s. */
    pauseSeconds: z.number().min(0).max(5).default(0),
    loopCount: z.number().int().min(1).max(10).default(1),
    /** Audio interruption: a key press ends the prompt and is handed to a following collect. */
    interruptible: z.boolean().default(false),
    next: nextBranches(playBranches).default({}),
  })
  .strict()
  .refine((p) => (p.tts ? 1 : 0) + (p.audio ? 1 : 0) === 1, {
    ...coded('play.audioSource', 'a play element has exactly one audio source: `tts` or `audio`'),
    path: ['tts'],
  });
