// The flow document: one zod schema is the source of truth for validation, the TypeScript types and
// the published JSON Schema (docs/flow.schema.json). Refinements carry a stable `code` in `params`
// that the validator reports as the issue code.
import { z } from 'zod';
import { Duration, IANAZone } from 'luxon';

export const MAX_ELEMENTS = 100;
export const TTS_MAX_CHARS = 160;
export const AUDIO_MAX_BYTES = 4 * 1024 * 1024;
export const MAX_VALIDITY_HOURS = 48;
export const RECOMMENDED_MAX_RETRIES = 3;

const coded = (code: string, message: string) => ({ message, params: { code } });

export const elementIdSchema = z
  .string()
  .regex(
    /^[A-Za-z][A-Za-z0-9_-]{0,63}$/,
    'element ids start with a letter and use letters, digits, "_" or "-" (at most 64)',
  );
const target = elementIdSchema;
/** A branch: an element id, or null for "enabled but not connected" (the validator adds a hang-up). */
const branchTarget = target.nullable().optional();
const variableName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'variable names are letters, digits and "_" and do not start with a digit');
const TEMPLATE = /\{\{.+?\}\}/;
const isTemplate = (s: string) => TEMPLATE.test(s);
/** A phone number in E.164 form, or a `{{placeholder}}` resolved per call. */
const phoneOrTemplate = z
  .string()
  .refine(
    (s) => /^\+?[0-9]{3,15}$/.test(s) || isTemplate(s),
    coded('field.phone', 'a phone number in E.164 form (+ and 3–15 digits) or a {{placeholder}}'),
  );
/** Forward destinations: a phone number, a SIP URI, a WebRTC identity, or a placeholder. */
const destination = z
  .string()
  .refine(
    (s) =>
      /^\+?[0-9]{3,15}$/.test(s) ||
      /^sips?:[^@\s]+@[^\s]+$/.test(s) ||
      /^webrtc:[A-Za-z0-9._@-]{1,128}$/.test(s) ||
      isTemplate(s),
    coded(
      'field.destination',
      'a phone number (E.164), a SIP URI (sip:user@host), a WebRTC identity (webrtc:name) or a {{placeholder}}',
    ),
  );
const zoneSchema = z
  .string()
  .refine(
    (z) => z === 'recipient' || IANAZone.isValidZone(z),
    coded('field.timeZone', 'an IANA time zone such as Europe/Zagreb, or "recipient"'),
  );
const hhmm = z.string().regex(/^([01][0-9]|2[0-3]):[0-5][0-9]$/, 'a time of day as HH:mm (00:00–23:59)');
import { WEEKDAYS } from './weekdays.js';
export { WEEKDAYS };
const nextString = target.optional();
const onError = target
  .optional()
  .describe('where to go when the action fails after its retries; without it the flow continues at `next`');
/** A JSONata expression over `{ recipient, vars, profile, call }`. */
const expression = z.string().min(1).max(2000);

const base = {
  id: elementIdSchema,
  label: z.string().max(200).optional(),
  description: z.string().max(2000).optional(),
};

function branches<const K extends readonly string[]>(keys: K) {
  return z
    .object(Object.fromEntries(keys.map((k) => [k, branchTarget])) as { [P in K[number]]: typeof branchTarget })
    .strict();
}

// --- call session elements --------------------------------------------------------------------
export const startIncomingCallSchema = z
  .object({
    ...base,
    type: z.literal('startIncomingCall'),
    number: z.string().regex(/^\+?[0-9]{3,15}$/, 'the phone number that receives calls, E.164'),
    next: nextString,
  })
  .strict();

export const retrySchema = z
  .object({
    minMinutes: z.number().int().min(1).max(1440),
    maxMinutes: z.number().int().min(1).max(1440),
    count: z.number().int().min(1).max(10),
  })
  .strict()
  .refine((r) => r.maxMinutes >= r.minMinutes, {
    ...coded('retry.range', 'maxMinutes must be ≥ minMinutes'),
    path: ['maxMinutes'],
  });

export const validityPeriodSchema = z
  .object({ value: z.number().int().min(1), unit: z.enum(['hours', 'minutes']) })
  .strict()
  .refine((v) => v.value * (v.unit === 'hours' ? 60 : 1) <= MAX_VALIDITY_HOURS * 60, {
    ...coded('validity.tooLong', `the validity period is at most ${MAX_VALIDITY_HOURS} hours`),
    path: ['value'],
  });

export const deliveryWindowSchema = z
  .object({
    days: z.array(z.enum(WEEKDAYS)).min(1).max(7),
    from: hhmm,
    to: hhmm,
    /** IANA zone, or `recipient` for the recipient's own zone. */
    timeZone: zoneSchema.default('recipient'),
  })
  .strict()
  .refine((w) => w.from < w.to, {
    ...coded('window.empty', '`from` must be earlier than `to` on the same day'),
    path: ['to'],
  })
  .refine((w) => new Set(w.days).size === w.days.length, {
    ...coded('window.duplicateDay', 'each day once'),
    path: ['days'],
  });

export const callingSpeedSchema = z
  .object({
    calls: z.number().int().min(1).max(1_000_000),
    per: z.enum(['minute', 'hour', 'day']),
    /**
     * Absent or false: up to `calls` dials at the start of each period, periods counted from the first
     * call. True: dials spaced evenly, one every period/calls.
     */
    spread: z
      .boolean()
      .optional()
      .describe(
        'false (default): up to `calls` dials start at the beginning of each period, counted from the first call; true: dials spaced evenly, period/calls apart',
      ),
  })
  .strict();

export const trackingSchema = z
  .object({
    deliveryReports: z.boolean().default(false),
    /** Stored with the call record for analytics, never shared with the end user; values are templates. */
    dataPayload: z.record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/), z.string().max(500)).default({}),
  })
  .strict();

export const START_OUTGOING_BRANCHES = ['answered', 'voicemail', 'noAnswer', 'busy', 'declined', 'callEnded'] as const;
export const startOutgoingCallSchema = z
  .object({
    ...base,
    type: z.literal('startOutgoingCall'),
    from: phoneOrTemplate,
    /** Defaults to the recipient's number. */
    to: phoneOrTemplate.default('{{recipient.phone}}'),
    recordCall: z.boolean().default(false),
    deliveryWindow: deliveryWindowSchema.optional(),
    callingSpeed: callingSpeedSchema.optional(),
    validityPeriod: validityPeriodSchema.optional(),
    retry: retrySchema.optional(),
    tracking: trackingSchema.optional(),
    next: branches(START_OUTGOING_BRANCHES).default({}),
  })
  .strict();

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

export const PLAY_BRANCHES = ['played', 'hungUp', 'callEnded'] as const;
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
    next: branches(PLAY_BRANCHES).default({}),
  })
  .strict()
  .refine((p) => (p.tts ? 1 : 0) + (p.audio ? 1 : 0) === 1, {
    ...coded('play.audioSource', 'a play element has exactly one audio source: `tts` or `audio`'),
    path: ['tts'],
  });

export const COLLECT_FIXED_BRANCHES = ['noMatch', 'hungUp', 'callEnded'] as const;
export const collectSchema = z
  .object({
    ...base,
    type: z.literal('collect'),
    maxDigits: z.number().int().min(1).max(32),
    /** Seconds to wait for the first key. */
    waitSeconds: z.number().int().min(1).max(60).default(5),
    /** Seconds allowed between two keys once the first key was pressed. */
    interDigitSeconds: z.number().int().min(1).max(30).default(3),
    reporting: z.enum(['always', 'masked', 'hidden']).default('always'),
    saveTo: variableName.optional(),
    /** Expected input → element id. `#` ends input and is never part of a response. */
    responses: z.record(z.string(), target).default({}),
    next: branches(COLLECT_FIXED_BRANCHES).default({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    for (const key of Object.keys(c.responses)) {
      if (key.includes('#'))
        ctx.addIssue({
          code: 'custom',
          path: ['responses', key],
          ...coded('collect.hashResponse', '# ends the input and can never be part of a response'),
        });
      else if (!/^[0-9*]+$/.test(key))
        ctx.addIssue({
          code: 'custom',
          path: ['responses', key],
          ...coded('collect.responseFormat', 'a response is keypad digits 0–9 or *'),
        });
      else if (key.length > c.maxDigits)
        ctx.addIssue({
          code: 'custom',
          path: ['responses', key],
          ...coded('collect.responseTooLong', `a response cannot be longer than maxDigits (${c.maxDigits})`),
        });
    }
  });

export const FORWARD_BRANCHES = ['forwarded', 'notForwarded', 'noAnswer', 'busy', 'declined', 'callEnded'] as const;
export const forwardCallSchema = z
  .object({
    ...base,
    type: z.literal('forwardCall'),
    /** Numeric senders only (seed). */
    from: phoneOrTemplate,
    to: destination,
    ringSeconds: z.number().int().min(5).max(120).default(30),
    next: branches(FORWARD_BRANCHES).default({}),
  })
  .strict();

export const RECORD_BRANCHES = ['recorded', 'hungUp', 'callEnded'] as const;
export const recordVoicemailSchema = z
  .object({
    ...base,
    type: z.literal('recordVoicemail'),
    /** File name of the recording; a template. */
    name: z.string().min(1).max(200),
    maxDurationSeconds: z.number().int().min(1).max(3600).default(60),
    maxSilenceSeconds: z.number().int().min(1).max(60).default(5),
    escapeDigits: z
      .string()
      .regex(/^[0-9*#]{0,12}$/, 'keypad keys 0–9, * or #')
      .default(''),
    beep: z.boolean().default(true),
    saveTo: variableName.optional(),
    next: branches(RECORD_BRANCHES).default({}),
  })
  .strict();

export const hangUpSchema = z.object({ ...base, type: z.literal('hangUp'), next: nextString }).strict();

// --- non-IVR elements ---------------------------------------------------------------------------
export const pauseSchema = z
  .object({
    ...base,
    type: z.literal('pause'),
    /** ISO-8601 duration, e.g. PT10M or P1D. */
    duration: z
      .string()
      .refine(
        (d) => Duration.fromISO(d).isValid && Duration.fromISO(d).toMillis() > 0,
        coded('pause.duration', 'an ISO-8601 duration such as PT10M or P1D'),
      )
      .refine(
        (d) => Duration.fromISO(d).toMillis() <= 366 * 24 * 3600_000,
        coded('pause.tooLong', 'a pause is at most one year'),
      )
      .optional(),
    /** Wait until the next such weekday and time. */
    until: z
      .object({ weekday: z.enum(WEEKDAYS), time: hhmm, timeZone: zoneSchema })
      .strict()
      .optional(),
    next: nextString,
  })
  .strict()
  .refine((p) => (p.duration ? 1 : 0) + (p.until ? 1 : 0) === 1, {
    ...coded('pause.kind', 'a pause has exactly one of `duration` or `until`'),
    path: ['duration'],
  });

export const sendSmsSchema = z
  .object({
    ...base,
    type: z.literal('sendSms'),
    from: z.string().min(1).max(32).optional(),
    to: phoneOrTemplate.default('{{recipient.phone}}'),
    text: z.string().min(1).max(1600),
    next: nextString,
    onError,
  })
  .strict();

export const updateProfileSchema = z
  .object({
    ...base,
    type: z.literal('updateProfile'),
    /** Attribute → JSONata expression, e.g. `{ "lastChoice": "vars.choice" }`. */
    attributes: z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/), expression)
      .refine((a) => Object.keys(a).length > 0, coded('profile.empty', 'name at least one attribute')),
    next: nextString,
    onError,
  })
  .strict();

export const httpRequestSchema = z
  .object({
    ...base,
    type: z.literal('httpRequest'),
    method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']).default('GET'),
    /** A template; http or https. */
    url: z
      .string()
      .refine(
        (u) => /^https?:\/\/\S+$/.test(u),
        coded('http.url', 'an http:// or https:// URL (placeholders allowed)'),
      ),
    headers: z.record(z.string().regex(/^[A-Za-z0-9-]{1,64}$/), z.string().max(2000)).default({}),
    /** JSON body; string values are templates. */
    body: z.unknown().optional(),
    timeoutSeconds: z.number().int().min(1).max(30).default(10),
    retries: z.number().int().min(0).max(5).default(2),
    /** Variable → JSONata expression over `{ status, body, headers }` of the response. */
    saveTo: z.record(variableName, expression).default({}),
    next: nextString,
    onError,
  })
  .strict();

export const conditionSchema = z
  .object({
    ...base,
    type: z.literal('condition'),
    /** Tried in order; the first whose JSONata `if` is truthy wins. */
    conditions: z
      .array(z.object({ if: expression, next: target }).strict())
      .min(1)
      .max(20),
    else: nextString,
  })
  .strict();

export const setVariableSchema = z
  .object({ ...base, type: z.literal('setVariable'), variable: variableName, value: expression, next: nextString })
  .strict();

export const elementSchema = z.discriminatedUnion('type', [
  startIncomingCallSchema,
  startOutgoingCallSchema,
  playSchema,
  collectSchema,
  forwardCallSchema,
  recordVoicemailSchema,
  hangUpSchema,
  pauseSchema,
  sendSmsSchema,
  updateProfileSchema,
  httpRequestSchema,
  conditionSchema,
  setVariableSchema,
]);

export const variableSchema = z
  .object({
    type: z.enum(['string', 'number', 'boolean', 'object']).default('string'),
    default: z.unknown().optional(),
  })
  .strict();

export const flowSchema = z
  .object({
    $schema: z.string().optional(),
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'flow ids are lowercase letters, digits and "-"'),
    version: z.number().int().min(1),
    name: z.string().max(200).optional(),
    description: z.string().max(5000).optional(),
    variables: z.record(variableName, variableSchema).default({}),
    /** Entry element of an outbound flow; inbound flows start at their startIncomingCall elements. */
    start: elementIdSchema.optional(),
    elements: z
      .array(elementSchema)
      .min(1, 'a flow has at least one element')
      .max(MAX_ELEMENTS, `a flow has at most ${MAX_ELEMENTS} elements`),
  })
  .strict();

export type Flow = z.infer<typeof flowSchema>;
export type FlowInput = z.input<typeof flowSchema>;
export type FlowElement = z.infer<typeof elementSchema>;
export type ElementType = FlowElement['type'];
export type ElementOf<T extends ElementType> = Extract<FlowElement, { type: T }>;
export type StartIncomingCall = ElementOf<'startIncomingCall'>;
export type StartOutgoingCall = ElementOf<'startOutgoingCall'>;
export type Play = ElementOf<'play'>;
export type Collect = ElementOf<'collect'>;
export type ForwardCall = ElementOf<'forwardCall'>;
export type RecordVoicemail = ElementOf<'recordVoicemail'>;
export type HangUp = ElementOf<'hangUp'>;
export type Pause = ElementOf<'pause'>;
export type SendSms = ElementOf<'sendSms'>;
export type UpdateProfile = ElementOf<'updateProfile'>;
export type HttpRequest = ElementOf<'httpRequest'>;
export type Condition = ElementOf<'condition'>;
export type SetVariable = ElementOf<'setVariable'>;
export type DeliveryWindow = z.infer<typeof deliveryWindowSchema>;

export const IVR_TYPES = new Set<ElementType>(['play', 'collect', 'forwardCall', 'recordVoicemail']);
/** Non-IVR actions that may run inside a call session (DESIGN.md). */
export const IN_SESSION_ACTIONS = new Set<ElementType>([
  'sendSms',
  'updateProfile',
  'httpRequest',
  'condition',
  'setVariable',
]);

/** JSON Schema of the flow document, published as docs/flow.schema.json. */
export function flowJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(flowSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
export type CallingSpeed = z.infer<typeof callingSpeedSchema>;
