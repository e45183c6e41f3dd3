// Infobip webhook events → our telephony envelope. The schemas accept what the official models
// describe (CallsEvent and its subtypes in infobip-api-java-client) and let unknown extra fields
// through, because Infobip adds fields over time and a new field must not stop calls.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import {
  holdMark,
  type ErrorCode,
  type HangupSource,
  type TelephonyEvent,
  type TelephonyEventType,
} from '../contract.js';
import type { CommandRecord, DialRecord, InfobipIdRecord, MediaAction, PendingRecording } from './calls.js';
import type { FollowUpToRun } from './actions.js';

/**
 * Infobip error code names (model CallsErrorCode) → ours. Exported for docs/providers.md; every
 * row is unit-tested. Names not listed map to INTERNAL_ERROR (retried within the validity period).
 */
export const INFOBIP_ERROR_CODE_MAP = {
  NORMAL_HANGUP: 'NORMAL_HANGUP',
  MACHINE_DETECTED: 'MACHINE_DETECTED',
  NO_ANSWER: 'NO_ANSWER',
  BUSY: 'BUSY',
  CANCELLED: 'NORMAL_HANGUP',
  REJECTED: 'REJECTED',
  FORBIDDEN: 'REJECTED',
  DESTINATION_NOT_FOUND: 'UNREACHABLE',
  DESTINATION_UNAVAILABLE: 'UNREACHABLE',
  INVALID_DESTINATION: 'UNREACHABLE',
  INVALID_REQUEST: 'INTERNAL_ERROR',
  REQUEST_TIMEOUT: 'NO_ANSWER',
  SERVICE_UNAVAILABLE: 'NETWORK_ERROR',
} as const satisfies Record<string, ErrorCode>;

export function mapErrorCode(name: string | undefined, fallback: ErrorCode): ErrorCode {
  if (name === undefined) return fallback;
  return (INFOBIP_ERROR_CODE_MAP as Record<string, ErrorCode>)[name] ?? 'INTERNAL_ERROR';
}

const customData = z.record(z.string(), z.string()).nullish();
const str = z.string().nullish();

const callSchema = z.looseObject({
  id: z.string().min(1),
  from: str,
  to: str,
  direction: z.enum(['INBOUND', 'OUTBOUND']).nullish(),
  state: str,
  parentCallId: str,
  dialogId: str,
  customData,
  externalId: str,
});
const errorCodeInfo = z.looseObject({ id: z.number().nullish(), name: z.string(), description: str });
const hangupSource = z.enum(['ENDPOINT', 'API', 'PLATFORM']).nullish();
const callLogSchema = z.looseObject({
  callId: str,
  from: str,
  to: str,
  direction: z.enum(['INBOUND', 'OUTBOUND']).nullish(),
  parentCallId: str,
  dialogId: str,
  errorCode: errorCodeInfo.nullish(),
  hangupSource,
  customData,
  externalId: str,
});
const recordingFile = z.looseObject({
  id: z.string().min(1),
  name: str,
  fileFormat: str,
  size: z.number().nullish(),
  duration: z.number().nullish(),
  location: str,
  customData,
});
const dialogSchema = z.looseObject({
  id: z.string().min(1),
  state: str,
  parentCall: callSchema.nullish(),
  childCall: callSchema.nullish(),
});

export const infobipEnvelopeSchema = z.looseObject({
  type: z.string().min(1).max(100),
  callId: str,
  conferenceId: str,
  dialogId: str,
  bulkId: str,
  timestamp: str,
  callsConfigurationId: str,
  platform: z.looseObject({}).nullish(),
  properties: z.record(z.string(), z.unknown()).nullish(),
});
export type InfobipEnvelope = z.infer<typeof infobipEnvelopeSchema>;

export const propertySchemas = {
  call: z.looseObject({ call: callSchema }),
  callLog: z.looseObject({ callLog: callLogSchema }),
  sayPlay: z.looseObject({
    duration: z.number().nullish(),
    playedCompletely: z.boolean().nullish(),
    capturedDtmf: str,
    customData,
  }),
  dtmf: z.looseObject({ dtmf: str, timeout: z.boolean().nullish(), customData }),
  machineDetection: z.looseObject({
    detectionResult: z.enum(['HUMAN', 'MACHINE']),
    confidenceRating: z.record(z.string(), z.number()).nullish(),
    customData,
  }),
  machineDetectionFailed: z.looseObject({ reason: str, customData }),
  recordingReady: z.looseObject({
    recording: z.looseObject({ callId: str, files: z.array(recordingFile).nullish(), customData }),
  }),
  error: z.looseObject({ actionType: str, errorCode: str, errorDetails: str }),
  dialog: z.looseObject({ dialog: dialogSchema, errorCode: errorCodeInfo.nullish(), hangupSource: str }),
};

/** Infobip event types that carry nothing our flows need (counted, answered 2xx). */
export const IGNORED_TYPES = new Set([
  'CALL_PRE_ESTABLISHED',
  'CALL_STARTED',
  'CALL_MEDIA_CHANGED',
  'CALL_RECORDING_STARTED',
  'CALL_RECORDING_STOPPED',
  'CALL_RECORDING_DELETED',
  'CALL_DISCONNECTED',
  'CALL_RECONNECTED',
  'DIALOG_CREATED',
  'DIALOG_FINISHED',
  'DIALOG_RECORDING_STARTED',
  'DIALOG_RECORDING_STOPPED',
  'DIALOG_RECORDING_READY',
  'DIALOG_RECORDING_FAILED',
  'DIALOG_RECORDING_DELETED',
  'MACHINE_MESSAGE_DETECTION_FINISHED',
  'MACHINE_MESSAGE_DETECTION_FAILED',
  'BULK_CALL_STATUS',
]);

/** What the mapper needs to know beyond the event: the adapter's KV records. */
export interface CallResolver {
  byInfobipId(infobipId: string): Promise<InfobipIdRecord | undefined>;
  byDialogId(dialogId: string): Promise<InfobipIdRecord | undefined>;
  pendingRecording(callId: string): Promise<PendingRecording | undefined>;
  lastMediaAction(callId: string): Promise<MediaAction | undefined>;
  /** A command's record: the events it asked to hold, a prompt's follow-up. */
  command(commandId: string): Promise<CommandRecord | undefined>;
  /** A dial's record (keyed by our call id): the events the dial asked to hold. */
  dial(callId: string): Promise<DialRecord | undefined>;
}

export interface RecordingToFetch {
  fileId: string;
  /** Our recording id: `{callId}:{commandId}` for a voicemail, `{callId}:call` for the whole call. */
  id: string;
  callId: string;
  name: string;
  durationMs: number;
  fileFormat?: string;
  /** A voicemail: its element name is remembered so `play.audio.voicemail` can play it back. */
  voicemail: boolean;
}

export type MappedWebhook =
  | {
      kind: 'events';
      events: TelephonyEvent[];
      recordings: RecordingToFetch[];
      /** Inbound: remember Infobip's id as ours. */
      identity?: string;
      /**
       * Our call id ↔ Infobip's, learnt from the call's own customData: the way a call whose create
       * request timed out (its id never came back) still gets its later commands.
       */
      link?: { callId: string; infobipId: string; commandId?: string };
      /** Worth an operator's eye (an ERROR event turned into an outcome). */
      warning?: string;
      /**
       * A prompt ended whose command has a follow-up (`then`): the ingress runs it after publishing
       * the events, and answers the webhook only once it ran (see InfobipActions.runFollowUp).
       */
      followUp?: FollowUpToRun;
    }
  | { kind: 'ignored'; reason: string }
  | { kind: 'unknownType' }
  | { kind: 'unresolved'; infobipId: string | undefined }
  | { kind: 'error'; message: string };

export class InvalidWebhookError extends Error {
  override readonly name = 'InvalidWebhookError';
}

/** The event id: a hash of the raw body, so a redelivered webhook gets the same id (JetStream dedupe). */
export function webhookEventId(raw: Uint8Array | string): string {
  return createHash('sha256').update(raw).digest('hex');
}

function parseProps<T extends z.ZodType>(schema: T, env: InfobipEnvelope): z.infer<T> {
  // Parsed in place, so that every problem names its path from the body (`properties.dtmf`).
  const r = z.object({ properties: schema }).safeParse({ properties: env.properties ?? {} });
  if (!r.success) throw new InvalidWebhookError(`${env.type}:\n${z.prettifyError(r.error)}`);
  return (r.data as { properties: z.infer<T> }).properties;
}

const ours = (cd: Record<string, string> | null | undefined, externalId: string | null | undefined) =>
  cd?.callId ?? externalId ?? undefined;

/**
 * Map one Infobip webhook to our events. `eventId` is the hash of the raw body; a webhook that
 * yields several events (several recorded files) suffixes the later ones with `:n`.
 */
export async function mapInfobipEvent(
  env: InfobipEnvelope,
  eventId: string,
  resolver: CallResolver,
  now: () => Date = () => new Date(),
): Promise<MappedWebhook> {
  // A prompt's record is read for its follow-up and again for its hold mark: once is enough.
  const commands = new Map<string, Promise<CommandRecord | undefined>>();
  const cached: CallResolver = {
    byInfobipId: (id) => resolver.byInfobipId(id),
    byDialogId: (id) => resolver.byDialogId(id),
    pendingRecording: (callId) => resolver.pendingRecording(callId),
    lastMediaAction: (callId) => resolver.lastMediaAction(callId),
    dial: (callId) => resolver.dial(callId),
    command: (commandId) => {
      const known = commands.get(commandId);
      if (known) return known;
      const read = resolver.command(commandId);
      commands.set(commandId, read);
      return read;
    },
  };
  const mapped = await mapEvent(env, eventId, cached, now);
  if (mapped.kind === 'events') for (const ev of mapped.events) Object.assign(ev.properties, await holdFor(ev, cached));
  return mapped;
}

/** Types a dial causes: their command's record is most likely the call's dial record. */
const DIAL_EVENT_TYPES: ReadonlySet<TelephonyEventType> = new Set([
  'CALL_RINGING',
  'CALL_ESTABLISHED',
  'CALL_FAILED',
  'CALL_FINISHED',
  'MACHINE_DETECTION_FINISHED',
]);

/**
 * `{hold: true}` when the event's command asked to hold events of its type (`holdEvents`, kept in
 * its KV record). A dial's events carry the dial's command id, whose record is the call's dial
 * record (keyed by call id); any other command's is its claim. The likelier one is read first.
 */
async function holdFor(ev: TelephonyEvent, resolver: CallResolver): Promise<{ hold?: true }> {
  const commandId = ev.properties.commandId;
  if (typeof commandId !== 'string') return {};
  const asDial = async () => {
    const dial = await resolver.dial(ev.callId);
    return dial?.commandId === commandId ? dial : undefined;
  };
  const rec = DIAL_EVENT_TYPES.has(ev.type)
    ? ((await asDial()) ?? (await resolver.command(commandId)))
    : ((await resolver.command(commandId)) ?? (await asDial()));
  return holdMark(rec, ev.type);
}

async function mapEvent(
  env: InfobipEnvelope,
  eventId: string,
  resolver: CallResolver,
  now: () => Date,
): Promise<MappedWebhook> {
  const timestamp = env.timestamp ?? now().toISOString();
  const infobipId = env.callId ?? undefined;
  const make = (
    type: TelephonyEventType,
    callId: string,
    properties: Record<string, unknown>,
    n = 0,
  ): TelephonyEvent => ({
    id: n === 0 ? eventId : `${eventId}:${n}`,
    type,
    callId,
    timestamp,
    properties: { ...properties, ...(infobipId ? { infobipCallId: infobipId } : {}) },
  });
  const one = (type: TelephonyEventType, callId: string, properties: Record<string, unknown>): MappedWebhook => ({
    kind: 'events',
    events: [make(type, callId, properties)],
    recordings: [],
  });

  /** Our call id for a call-scoped event: customData/externalId, inbound identity, the KV map, the dialog. */
  async function resolve(
    cd: Record<string, string> | null | undefined,
    externalId: string | null | undefined,
    direction: string | null | undefined,
    dialogId: string | null | undefined,
  ): Promise<{ callId: string; commandId?: string } | undefined> {
    // Actions merge their customData into the call's, so `commandId` there is the latest action's;
    // the dial's own command id travels as `dialCommandId`.
    const fromData = ours(cd, externalId);
    if (fromData) return { callId: fromData, ...(cd?.dialCommandId ? { commandId: cd.dialCommandId } : {}) };
    if (infobipId) {
      const known = await resolver.byInfobipId(infobipId);
      if (known) return known;
      if (direction === 'INBOUND') return { callId: infobipId };
    }
    if (dialogId) return resolver.byDialogId(dialogId);
    return undefined;
  }
  const unresolved = (): MappedWebhook => ({ kind: 'unresolved', infobipId });

  switch (env.type) {
    case 'CALL_RECEIVED': {
      const { call } = parseProps(propertySchemas.call, env);
      // Infobip's id is ours (no "~"): the bridge routes it to the inbound workflow inbound:{callId}.
      const callId = infobipId ?? call.id;
      return {
        kind: 'events',
        events: [make('CALL_RECEIVED', callId, { from: call.from ?? '', to: call.to ?? '' })],
        recordings: [],
        identity: callId,
      };
    }
    case 'CALL_RINGING':
    case 'CALL_ESTABLISHED': {
      const { call } = parseProps(propertySchemas.call, env);
      const r = await resolve(call.customData, call.externalId, call.direction, call.dialogId ?? env.dialogId);
      if (!r) return unresolved();
      const mapped = one(env.type, r.callId, r.commandId ? { commandId: r.commandId } : {});
      const fromData = ours(call.customData, call.externalId);
      if (mapped.kind === 'events' && fromData && infobipId && call.direction !== 'INBOUND')
        mapped.link = { callId: fromData, infobipId, ...(r.commandId ? { commandId: r.commandId } : {}) };
      return mapped;
    }
    case 'CALL_FAILED':
    case 'CALL_FINISHED': {
      const { callLog } = parseProps(propertySchemas.callLog, env);
      const r = await resolve(
        callLog.customData,
        callLog.externalId,
        callLog.direction,
        callLog.dialogId ?? env.dialogId,
      );
      if (!r) return unresolved();
      const errorCode = mapErrorCode(
        callLog.errorCode?.name,
        env.type === 'CALL_FINISHED' ? 'NORMAL_HANGUP' : 'INTERNAL_ERROR',
      );
      const source: HangupSource = callLog.hangupSource ?? 'PLATFORM';
      // A call that ends while a key capture was the last media action names the capture (see
      // PromptFollowUp): the flow knows the prompt before it had played, in whatever order it hears.
      const last =
        env.type === 'CALL_FINISHED' && source !== 'API' ? await resolver.lastMediaAction(r.callId) : undefined;
      const commandId = last?.action === 'captureDtmf' ? last.commandId : r.commandId;
      return one(env.type, r.callId, {
        ...(commandId ? { commandId } : {}),
        errorCode,
        hangupSource: source,
        ...(callLog.errorCode ? { infobipErrorCode: callLog.errorCode.name } : {}),
      });
    }
    case 'SAY_FINISHED':
    case 'PLAY_FINISHED': {
      const p = parseProps(propertySchemas.sayPlay, env);
      const r = await resolve(p.customData, undefined, undefined, undefined);
      if (!r) return unresolved();
      const commandId = p.customData?.commandId;
      const prompt = commandId ? await resolver.command(commandId) : undefined;
      // Keys during a prompt that is not interruptible are dropped: no type-ahead into the next collect.
      const typed = prompt?.interruptible === false ? '' : (p.capturedDtmf ?? '');
      const pressed = stripTerminator(typed);
      const mapped = one(env.type, r.callId, {
        ...(commandId ? { commandId } : {}),
        ...(typeof p.duration === 'number' ? { durationMs: p.duration } : {}),
        ...(p.playedCompletely === false ? { interrupted: true } : {}),
        ...(pressed ? { dtmf: pressed } : {}),
      });
      return commandId && prompt?.then && mapped.kind === 'events'
        ? {
            ...mapped,
            followUp: { callId: r.callId, promptCommandId: commandId, command: prompt.then, typed, at: timestamp },
          }
        : mapped;
    }
    case 'DTMF_CAPTURED': {
      const p = parseProps(propertySchemas.dtmf, env);
      const r = await resolve(p.customData, undefined, undefined, undefined);
      if (!r) return unresolved();
      const raw = p.dtmf ?? '';
      // A capture that follows a prompt collects only what was not typed into the prompt: the keys
      // typed there come back in front (the adapter sends `typed` with every capture, '' if none).
      const dtmf = (p.customData?.typed ?? '') + stripTerminator(raw);
      const maxDigits = Number(p.customData?.maxDigits ?? NaN);
      const reason = p.timeout
        ? 'timeout'
        : raw.includes('#')
          ? 'terminator'
          : Number.isFinite(maxDigits) && dtmf.length < maxDigits
            ? 'terminator'
            : 'maxDigits';
      return one('DTMF_CAPTURED', r.callId, {
        ...(p.customData?.commandId ? { commandId: p.customData.commandId } : {}),
        dtmf,
        reason,
      });
    }
    case 'MACHINE_DETECTION_FINISHED':
    case 'MACHINE_DETECTION_FAILED': {
      const failed = env.type === 'MACHINE_DETECTION_FAILED';
      const p = failed
        ? {
            ...parseProps(propertySchemas.machineDetectionFailed, env),
            detectionResult: 'HUMAN' as const,
            confidenceRating: undefined,
          }
        : parseProps(propertySchemas.machineDetection, env);
      const r = await resolve(p.customData, undefined, undefined, undefined);
      if (!r) return unresolved();
      // Detection that failed is treated as a person answering, as the flow does when it times out.
      return one('MACHINE_DETECTION_FINISHED', r.callId, {
        ...(r.commandId ? { commandId: r.commandId } : {}),
        detectionResult: p.detectionResult,
        ...(p.confidenceRating ? { confidenceRating: p.confidenceRating } : {}),
        ...(failed ? { failed: true } : {}),
      });
    }
    case 'CALL_RECORDING_READY': {
      const { recording } = parseProps(propertySchemas.recordingReady, env);
      const r = await resolve(recording.customData, undefined, undefined, undefined);
      if (!r) return unresolved();
      const pending = await resolver.pendingRecording(r.callId);
      const events: TelephonyEvent[] = [];
      const recordings: RecordingToFetch[] = [];
      let wholeCall = 0;
      for (const [i, f] of (recording.files ?? []).entries()) {
        const cd = f.customData ?? recording.customData ?? undefined;
        const commandId = cd?.commandId ?? (cd?.kind === 'call' ? undefined : pending?.commandId);
        const voicemail = commandId !== undefined && cd?.kind !== 'call';
        const name = voicemail ? (cd?.name ?? pending?.name ?? 'voicemail') : 'call';
        const id = voicemail
          ? `${r.callId}:${commandId}`
          : `${r.callId}:call${wholeCall++ === 0 ? '' : `-${wholeCall}`}`;
        const durationMs = Math.round((f.duration ?? 0) * 1000);
        recordings.push({
          fileId: f.id,
          id,
          callId: r.callId,
          name,
          durationMs,
          ...(f.fileFormat ? { fileFormat: f.fileFormat } : {}),
          voicemail,
        });
        events.push(
          make(
            'CALL_RECORDING_READY',
            r.callId,
            { ...(voicemail ? { commandId } : {}), recordingId: id, name, durationMs, infobipFileId: f.id },
            i,
          ),
        );
      }
      if (events.length === 0) return { kind: 'ignored', reason: 'a recording without files' };
      return { kind: 'events', events, recordings };
    }
    case 'DIALOG_ESTABLISHED':
    case 'DIALOG_FAILED': {
      const p = parseProps(propertySchemas.dialog, env);
      const leg = await resolver.byDialogId(p.dialog.id);
      if (!leg) return unresolved();
      if (env.type === 'DIALOG_ESTABLISHED')
        return one('CALL_ESTABLISHED', leg.callId, leg.commandId ? { commandId: leg.commandId } : {});
      const source =
        p.hangupSource === 'CHILD_ENDPOINT' || p.hangupSource === 'PARENT_ENDPOINT'
          ? 'ENDPOINT'
          : p.hangupSource === 'API'
            ? 'API'
            : 'PLATFORM';
      return one('CALL_FAILED', leg.callId, {
        ...(leg.commandId ? { commandId: leg.commandId } : {}),
        errorCode: mapErrorCode(p.errorCode?.name, 'INTERNAL_ERROR'),
        hangupSource: source,
        ...(p.errorCode ? { infobipErrorCode: p.errorCode.name } : {}),
      });
    }
    case 'ERROR': {
      // A prompt or capture that failed (an unplayable file, a TTS error) never sends its
      // *_FINISHED / DTMF_CAPTURED: without an outcome the flow would sit out the prompt's timeout
      // (minutes) and then end the call. It becomes the outcome the flow waits for, flagged
      // `failed`: a prompt counts as played (the flow goes on, as the seed's "played" branch), a
      // capture as nothing pressed (noMatch). The event carries no customData, so the command is the
      // call's last prompt or capture of the failing kind, as the provider recorded it.
      const p = parseProps(propertySchemas.error, env);
      const message =
        `${p.actionType ?? 'action'} failed on call ${infobipId ?? '?'}: ${p.errorCode ?? ''} ${p.errorDetails ?? ''}`.trim();
      const action =
        p.actionType === 'SAY'
          ? 'say'
          : p.actionType === 'PLAY'
            ? 'play'
            : p.actionType === 'CAPTURE_DTMF'
              ? 'captureDtmf'
              : undefined;
      if (!action || !infobipId) return { kind: 'error', message };
      const r = await resolve(undefined, undefined, undefined, undefined);
      const last = r ? await resolver.lastMediaAction(r.callId) : undefined;
      if (!r || !last || last.action !== action) return { kind: 'error', message };
      const failure = {
        commandId: last.commandId,
        failed: true,
        ...(p.errorCode ? { infobipErrorCode: p.errorCode } : {}),
      };
      if (action === 'captureDtmf')
        return {
          kind: 'events',
          events: [make('DTMF_CAPTURED', r.callId, { ...failure, dtmf: '', reason: 'error' })],
          recordings: [],
          warning: message,
        };
      // A failed prompt counts as played, so its follow-up runs as after any prompt.
      const then = (await resolver.command(last.commandId))?.then;
      return {
        kind: 'events',
        events: [make(action === 'say' ? 'SAY_FINISHED' : 'PLAY_FINISHED', r.callId, failure)],
        recordings: [],
        warning: message,
        ...(then
          ? { followUp: { callId: r.callId, promptCommandId: last.commandId, command: then, typed: '', at: timestamp } }
          : {}),
      };
    }
    default:
      return IGNORED_TYPES.has(env.type)
        ? { kind: 'ignored', reason: `${env.type} is not used by flows` }
        : { kind: 'unknownType' };
  }
}

/** `#` ends input and is never part of the digits. */
function stripTerminator(dtmf: string): string {
  const at = dtmf.indexOf('#');
  return at >= 0 ? dtmf.slice(0, at) : dtmf;
}
