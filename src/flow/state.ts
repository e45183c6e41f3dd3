// The data of one call as the interpreter keeps it (CallState), what it is fed (FlowEvent) and what
// it asks for (FlowCommand). Types only: the interpreter, the element modules and the runner share
// them, and the workflow bundle carries nothing of this file.
import type { CaptureDtmfCommand, PromptFollowUp, TelephonyCommand, TelephonyEvent } from '../telephony/contract.js';
import type { Sensitive } from './redact.js';

export interface Recipient {
  id: string;
  phone: string;
  timeZone?: string;
  [attribute: string]: unknown;
}

/** What a dial attempt ended in. */
export type DialOutcome =
  'answered' | 'voicemail' | 'noAnswer' | 'busy' | 'declined' | 'unreachable' | 'network' | 'error';
/** What the call as a whole ended in (the last dial, or why there was none). */
/** `doNotCall` and `contactCapped`: a campaign call stopped by compliance before its first dial. */
export type CallOutcome =
  Exclude<DialOutcome, 'error'> | 'inbound' | 'expired' | 'notCalled' | 'failed' | 'doNotCall' | 'contactCapped';

export interface TrailEntry {
  element: string;
  branch: string;
  /** Digits entered at a collect, as its reporting setting allows them to be shown. */
  input?: string;
}

export interface Recording {
  element: string;
  name: string;
  recordingId: string;
  url?: string;
  durationMs?: number;
}

export interface CallResult {
  outcome: CallOutcome;
  dials: number;
  trail: TrailEntry[];
  visited: string[];
  variables: Record<string, unknown>;
  recordings: Recording[];
  /** Tracking data payload of the last startOutgoingCall, rendered per recipient. */
  dataPayload?: Record<string, string>;
  /** Problems that did not stop the call (an expression that failed, an action that failed). */
  warnings: Array<{ element: string; message: string }>;
  /** Why a call ended in `failed` or `notCalled`. */
  error?: string;
}

/** What a sleep's timer resumes: a dial of the current startOutgoingCall, or the flow after a pause. */
export type SleepResume = 'dial' | 'continue';
export type Phase =
  | { kind: 'idle' }
  | { kind: 'answering'; token: number; commandId: string }
  | { kind: 'dialing'; token: number; commandId: string; established: boolean; machineDetection: boolean }
  /** A dial whose outcome is unknown: its leg is being hung up before anything else is decided. */
  | { kind: 'reconciling'; token: number; commandId: string; callId: string; answered: boolean }
  | { kind: 'sleeping'; token: number; resume: SleepResume }
  /** `followUp`: what the provider runs when this prompt ends (the collect it leads to, or the hang-up). */
  | { kind: 'playing'; token: number; commandId: string; loop: number; followUp?: PromptFollowUp }
  | { kind: 'collecting'; token: number; commandId: string; prefix: string }
  | { kind: 'forwarding'; token: number; commandId: string; legCallId: string }
  | { kind: 'recording'; token: number; commandId: string; name: string }
  | { kind: 'acting'; token: number }
  | { kind: 'done' };
/** A phase that waits for something: the token its timeout, timer or action result carries. */
export type WaitingPhase = Extract<Phase, { token: number }>;
export type PhaseOf<K extends Phase['kind']> = Extract<Phase, { kind: K }>;

export interface CallState {
  workflowId: string;
  recipient: Recipient;
  profile: Record<string, unknown>;
  hints?: Record<string, unknown>;
  element: string | null;
  phase: Phase;
  session: 'none' | 'active' | 'ended';
  direction?: 'inbound' | 'outbound';
  callId?: string;
  /** Dial attempts on the current startOutgoingCall element. */
  attempt: number;
  /** Dials made by this call over all its startOutgoingCall elements. */
  dials: number;
  forwards: number;
  firstDialAt?: number;
  /**
   * A campaign placed the call: every dial after its first asks the campaign for a slot from the
   * calling speed's budget (`dialSlot` action), so retries count against the speed too.
   */
  dialSlots?: boolean;
  /** The slot granted for dial number `dial`: it may start from `at` until `until` (then ask again). */
  slot?: { dial: number; at: number; until: number; request: number };
  /** Known failures (busy, no answer …) on the current element: only these use the call-retry budget. */
  knownFailures: number;
  /** Internal-error redials on the current element: only these use the validity period. */
  errorRetries: number;
  vars: Record<string, unknown>;
  /** Variables holding masked or hidden input: never shown in results. */
  sensitiveVars: Record<string, 'masked' | 'hidden'>;
  /**
   * Digits entered at masked and hidden collects: redacted by value wherever the result would show
   * them (a variable derived from them, the tracking payload, a warning). Absent until the first.
   */
  sensitiveInputs?: Array<{ digits: string; mode: Sensitive }>;
  /**
   * Digits pressed during an interruptible prompt, handed to the collect its `played` branch leads to.
   * Set and consumed in the same step; dropped by any other element entered.
   */
  bargeIn?: string;
  /**
   * The capture a prompt's follow-up started for the collect its `played` branch leads to, and
   * (when its result came before the prompt's end) the digits it reported, or the end of the call
   * during it. Set and consumed in the same step.
   */
  queuedCapture?: { elementId: string; command: CaptureDtmfCommand; digits?: string; ended?: TelephonyEvent };
  /** The hang-up a prompt's follow-up runs: the path that ends after the prompt sends none of its own. */
  queuedHangup?: boolean;
  seq: number;
  rng: number;
  trail: TrailEntry[];
  visited: string[];
  recordings: Recording[];
  warnings: Array<{ element: string; message: string }>;
  dataPayload?: Record<string, string>;
  lastDial?: DialOutcome | 'expired';
  /** Why the call failed, when it ends with the outcome derived from its last dial (`failed`). */
  failure?: string;
  result?: CallResult;
}

export type FlowEvent =
  | { type: 'start'; at: number }
  /** An inbound call arrived (CALL_RECEIVED) for `to`. */
  | { type: 'incoming'; at: number; callId: string; to: string; from: string }
  | { type: 'telephony'; at: number; event: TelephonyEvent }
  /**
   * A wait ended without the event. `redialAtOnce`: a dial that timed out counts as an error at
   * once, without hanging up its leg first (calls recorded before reconciliation replay this way).
   */
  | { type: 'timeout'; at: number; token: number; redialAtOnce?: boolean }
  | { type: 'timer'; at: number; token: number }
  | { type: 'actionResult'; at: number; token: number; ok: boolean; data?: unknown; error?: string };

export type ActionRequest =
  | { type: 'sendSms'; elementId: string; from?: string; to: string; text: string }
  | { type: 'updateProfile'; elementId: string; recipientId: string; attributes: Record<string, unknown> }
  /**
   * Ask the campaign for the slot of dial number `dial` (`request`: 1, then 2… when a granted slot
   * passed unused). Data: `{granted: true, at, until}` or `{granted: false, reason, message}`.
   */
  | { type: 'dialSlot'; elementId: string; dial: number; request: number }
  | {
      type: 'httpRequest';
      elementId: string;
      method: string;
      url: string;
      headers: Record<string, string>;
      body?: unknown;
      timeoutMs: number;
      retries: number;
    };

/** The data an httpRequest action reports back. */
export interface HttpResponseData {
  status: number;
  body: unknown;
  headers: Record<string, string>;
}

export type FlowCommand =
  | { kind: 'telephony'; command: TelephonyCommand }
  /** Run a non-IVR action; its result is the next event (`actionResult` with the same token). */
  | { kind: 'action'; token: number; request: ActionRequest }
  /**
   * Wait for the provider's next event, for at most `timeoutMs` (then a `timeout` with the token);
   * `command`: the command the wait is for, asked again (idempotent) before a timeout is acted on.
   */
  | { kind: 'awaitEvent'; token: number; timeoutMs: number; command?: TelephonyCommand }
  /** The event changed nothing: the wait armed for `token` goes on, with the deadline it was armed with. */
  | { kind: 'continueWaiting'; token: number }
  | { kind: 'sleep'; token: number; ms: number; reason: string }
  /** `awaitLegEnd`: the call leg this step hung up, whose end the call waits for before it completes. */
  | { kind: 'finish'; result: CallResult; awaitLegEnd?: string };

export interface StepResult {
  state: CallState;
  commands: FlowCommand[];
}
