// The flow document: one zod schema is the source of truth for validation and the TypeScript types.
import { z } from 'zod';
import { Duration } from 'luxon';

export const MAX_ELEMENTS = 100;
export const TTS_MAX_CHARS = 160;

export const elementIdSchema = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, 'element ids start with a letter and use letters, digits, "_" or "-" (at most 64)');
const target = elementIdSchema;
/** A phone number in E.164 form, or a `{{placeholder}}` resolved per call. */
const phoneOrTemplate = z
  .string()
  .regex(/^(\+?[0-9]{3,15}|.*\{\{.+\}\}.*)$/, 'a phone number in E.164 form (+ and 3–15 digits) or a {{placeholder}}');

export const retrySchema = z
  .object({
    minMinutes: z.number().int().min(1).max(1440),
    maxMinutes: z.number().int().min(1).max(1440),
    count: z.number().int().min(1).max(10),
  })
  .strict()
  .refine((r) => r.maxMinutes >= r.minMinutes, { message: 'maxMinutes must be ≥ minMinutes', path: ['maxMinutes'] });

export const validityPeriodSchema = z
  .object({ value: z.number().int().min(1), unit: z.enum(['hours', 'minutes']) })
  .strict()
  .refine((v) => (v.unit === 'hours' ? v.value <= 48 : v.value <= 48 * 60), { message: 'the validity period is at most 48 hours', path: ['value'] });

export const START_OUTGOING_BRANCHES = ['answered', 'voicemail', 'noAnswer', 'busy', 'declined', 'callEnded'] as const;
export const PLAY_BRANCHES = ['played', 'hungUp', 'callEnded'] as const;
export const COLLECT_FIXED_BRANCHES = ['noMatch', 'hungUp', 'callEnded'] as const;

function branches<const K extends readonly string[]>(keys: K) {
  return z.object(Object.fromEntries(keys.map((k) => [k, target.optional()])) as { [P in K[number]]: z.ZodOptional<typeof target> }).strict();
}

export const startOutgoingCallSchema = z
  .object({
    id: elementIdSchema,
    type: z.literal('startOutgoingCall'),
    from: phoneOrTemplate,
    /** Defaults to the recipient's number. */
    to: phoneOrTemplate.default('{{recipient.phone}}'),
    recordCall: z.boolean().default(false),
    validityPeriod: validityPeriodSchema.optional(),
    retry: retrySchema.optional(),
    next: branches(START_OUTGOING_BRANCHES).default({}),
  })
  .strict();

export const ttsSchema = z
  .object({
    text: z.string().min(1).max(TTS_MAX_CHARS, `text-to-speech content is at most ${TTS_MAX_CHARS} characters`),
    language: z.string().min(2).max(16).default('en'),
    voice: z.enum(['female', 'male']).default('female'),
    speechRate: z.number().min(0.5).max(2).default(1),
  })
  .strict();

export const audioSchema = z
  .object({ url: z.url().regex(/\.(mp3|wav)(\?.*)?$/i, 'audio files are .mp3 or .wav') })
  .strict();

export const playSchema = z
  .object({
    id: elementIdSchema,
    type: z.literal('play'),
    tts: ttsSchema.optional(),
    audio: audioSchema.optional(),
    pauseSeconds: z.number().min(0).max(5).default(0),
    loopCount: z.number().int().min(1).max(10).default(1),
    interruptible: z.boolean().default(false),
    next: branches(PLAY_BRANCHES).default({}),
  })
  .strict()
  .refine((p) => (p.tts ? 1 : 0) + (p.audio ? 1 : 0) === 1, { message: 'a play element has exactly one audio source: tts or audio', path: ['tts'] });

export const collectSchema = z
  .object({
    id: elementIdSchema,
    type: z.literal('collect'),
    maxDigits: z.number().int().min(1).max(32),
    waitSeconds: z.number().int().min(1).max(60).default(5),
    /** Seconds allowed between two key presses once the first key was pressed. */
    interDigitSeconds: z.number().int().min(1).max(30).default(3),
    reporting: z.enum(['always', 'masked', 'hidden']).default('always'),
    saveTo: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).optional(),
    /** Expected input → element id. `#` terminates input and can never be part of a response. */
    responses: z.record(z.string().regex(/^[0-9*]+$/, 'a response is digits or * (# ends input and is never collected)'), target).default({}),
    next: branches(COLLECT_FIXED_BRANCHES).default({}),
  })
  .strict();

export const hangUpSchema = z
  .object({ id: elementIdSchema, type: z.literal('hangUp'), next: target.optional() })
  .strict();

export const pauseSchema = z
  .object({
    id: elementIdSchema,
    type: z.literal('pause'),
    /** ISO-8601 duration, e.g. PT10M or P1D. */
    duration: z.string().refine((d) => Duration.fromISO(d).isValid && Duration.fromISO(d).toMillis() > 0, 'an ISO-8601 duration such as PT10M or P1D'),
    next: target.optional(),
  })
  .strict();

export const elementSchema = z.discriminatedUnion('type', [startOutgoingCallSchema, playSchema, collectSchema, hangUpSchema, pauseSchema]);

export const variableSchema = z
  .object({ type: z.enum(['string', 'number', 'boolean']).default('string'), default: z.union([z.string(), z.number(), z.boolean()]).optional() })
  .strict();

export const flowSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'flow ids are lowercase letters, digits and "-"'),
    version: z.number().int().min(1),
    name: z.string().max(200).optional(),
    variables: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), variableSchema).default({}),
    start: elementIdSchema,
    elements: z.array(elementSchema).min(1).max(MAX_ELEMENTS, `a flow has at most ${MAX_ELEMENTS} elements`),
  })
  .strict();

export type Flow = z.infer<typeof flowSchema>;
export type FlowInput = z.input<typeof flowSchema>;
export type FlowElement = z.infer<typeof elementSchema>;
export type StartOutgoingCall = z.infer<typeof startOutgoingCallSchema>;
export type Play = z.infer<typeof playSchema>;
export type Collect = z.infer<typeof collectSchema>;
export type HangUp = z.infer<typeof hangUpSchema>;
export type Pause = z.infer<typeof pauseSchema>;
export type ElementType = FlowElement['type'];
