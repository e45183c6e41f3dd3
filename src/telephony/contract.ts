// The telephony contract between dialflow and providers (the simulator now, carriers later).
// Events use the Infobip Calls API vocabulary so that a real adapter is a thin mapping.
// Pure types and schemas only: imported by the interpreter, the simulator and the bridge alike.
import { z } from 'zod';

export const TELEPHONY_EVENT_TYPES = [
  'CALL_RECEIVED',
  'CALL_RINGING',
  'CALL_ESTABLISHED',
  'CALL_FINISHED',
  'CALL_FAILED',
  'PLAY_FINISHED',
  'SAY_FINISHED',
  'DTMF_CAPTURED',
  'MACHINE_DETECTION_FINISHED',
  'CALL_RECORDING_READY',
] as const;
export type TelephonyEventType = (typeof TELEPHONY_EVENT_TYPES)[number];

/**
 * Events no element reacts to: the bridge acknowledges them without signalling the call, which
 * saves the call a signal and a workflow task each (a ringing leg changes nothing in a flow; the
 * dial's outcome comes with CALL_ESTABLISHED or CALL_FAILED).
 */
export const EVENTS_NO_ELEMENT_READS: ReadonlySet<TelephonyEventType> = new Set(['CALL_RINGING']);

/** Events a command asked to hold (see `holdEvents`): delivered with the call's next event. */
export function isHeldEvent(ev: { properties: Record<string, unknown> }): boolean {
  return ev.properties.hold === true;
}

/** The properties a provider adds to an event of `command` of type `type`: `{hold: true}` when asked to hold it. */
export function holdMark(command: { holdEvents?: readonly string[] } | undefined, type: string): { hold?: true } {
  return command?.holdEvents?.includes(type) ? { hold: true } : {};
}

export { ERROR_CODES, type ErrorCode } from './ids.js';
export const HANGUP_SOURCES = ['ENDPOINT', 'API', 'PLATFORM'] as const;
export type HangupSource = (typeof HANGUP_SOURCES)[number];

/** Webhook-style envelope: `{ id, type, callId, timestamp, properties }`. */
export const telephonyEventSchema = z.object({
  id: z.string().min(1).max(200),
  type: z.enum(TELEPHONY_EVENT_TYPES),
  callId: z.string().min(1).max(300),
  timestamp: z.string().min(1),
  properties: z.record(z.string(), z.unknown()).default({}),
});
export type TelephonyEvent = z.infer<typeof telephonyEventSchema>;

interface CommandBase {
  callId: string;
  /** Unique per command; echoed by the provider in the events it causes, so stale events are recognised. */
  commandId: string;
  /** The flow element that issued the command (logs, the simulator's `hangUpAt`). */
  elementId: string;
  /**
   * Events of this command the call need not wake for on their own: the provider marks them
   * `properties.hold: true`, and the bridge delivers them together with the call's next event (one
   * signal, one workflow task) or, if none follows within its hold limit, alone. Used for a
   * CALL_ESTABLISHED that is followed by a machine-detection result, and for the end of a prompt
   * that has a follow-up (`then`).
   */
  holdEvents?: TelephonyEventType[];
}

export interface DialCommand extends CommandBase {
  action: 'dial';
  from: string;
  to: string;
  /** Attempt number on this startOutgoingCall element (1 = first try). */
  attempt: number;
  /** Dial number within the whole call workflow (a flow may call again after a pause). */
  dialIndex: number;
  recordCall: boolean;
  /** Ask the provider for answering-machine detection (needed for the voicemail branch). */
  machineDetection: boolean;
  /** Opaque per-recipient hints for providers; the simulator reads `persona`. */
  hints?: Record<string, unknown>;
}

export interface SayCommand extends CommandBase {
  action: 'say';
  text: string;
  language: string;
  voice: string;
  speechRate: number;
  /** Silence before the prompt (the Play element's "duration of pause", first loop only). */
  pauseMs: number;
  /** Audio interruption: a key press stops the prompt and the digits are reported with SAY_FINISHED. */
  interruptible: boolean;
  then?: PromptFollowUp;
}

export interface PlayCommand extends CommandBase {
  action: 'play';
  url: string;
  pauseMs: number;
  interruptible: boolean;
  then?: PromptFollowUp;
}

/**
 * What the provider does the moment a prompt ends (played out, or stopped by a key when it is
 * interruptible), as if the command had been sent then: one command from the call instead of two,
 * and no round trip through the workflow between them (a menu followed by its collect, a last
 * prompt followed by the hang-up).
 *
 * - `captureDtmf`: its timeouts start when the prompt ends. Keys that interrupted an interruptible
 *   prompt are its first digits (and are reported again in its DTMF_CAPTURED); keys pressed during
 *   a prompt that is not interruptible are dropped. The prompt's own SAY_FINISHED / PLAY_FINISHED
 *   is still sent, first.
 * - `hangup`: the call is hung up (CALL_FINISHED, hangupSource API) right after the prompt's end event.
 *
 * If the call ends during the prompt, the follow-up does not run; if it ends during the follow-up's
 * capture, its CALL_FINISHED names the capture (`commandId`), so the flow takes the collect's branch
 * even when that event reaches it before the prompt's end. A follow-up is idempotent by its own
 * commandId, like any command: sent again on its own, it does nothing new.
 */
export type PromptFollowUp = CaptureDtmfCommand | HangupCommand;

export interface CaptureDtmfCommand extends CommandBase {
  action: 'captureDtmf';
  maxDigits: number;
  /** `#` ends input and is never part of the collected digits. */
  terminator: '#';
  firstDigitTimeoutMs: number;
  interDigitTimeoutMs: number;
}

export interface HangupCommand extends CommandBase {
  action: 'hangup';
}

/** Answer an inbound call (after CALL_RECEIVED); CALL_ESTABLISHED follows. */
export interface AnswerCommand extends CommandBase {
  action: 'answer';
}

/**
 * Connect the call to another destination over a second leg `legCallId`. Events of the leg carry
 * `legCallId`: CALL_ESTABLISHED (forwarded) or CALL_FAILED with BUSY / NO_ANSWER / REJECTED / ….
 */
export interface ForwardCommand extends CommandBase {
  action: 'forward';
  legCallId: string;
  from: string;
  /** Phone number, `sip:user@host` or `webrtc:identity`. */
  to: string;
  ringSeconds: number;
  hints?: Record<string, unknown>;
}

/** Record the caller; CALL_RECORDING_READY (recordingId, url, durationMs) follows. */
export interface RecordCommand extends CommandBase {
  action: 'record';
  name: string;
  maxDurationMs: number;
  maxSilenceMs: number;
  /** Keys that stop the recording. */
  escapeDigits: string;
  beep: boolean;
}

export type TelephonyCommand =
  | DialCommand
  | AnswerCommand
  | SayCommand
  | PlayCommand
  | CaptureDtmfCommand
  | ForwardCommand
  | RecordCommand
  | HangupCommand;
export const TELEPHONY_ACTIONS = [
  'dial',
  'answer',
  'say',
  'play',
  'captureDtmf',
  'forward',
  'record',
  'hangup',
] as const satisfies ReadonlyArray<TelephonyCommand['action']>;

/** The reply a provider sends when it accepted a command (NATS request/reply). */
export interface CommandAck {
  ok: boolean;
  error?: string;
}

export { CALL_ID_SEPARATOR, callIdFor, inboundWorkflowId, workflowIdOfCallId } from './ids.js';
