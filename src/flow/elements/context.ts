// What an element module (src/flow/elements/<type>.ts) gets from the interpreter, and what it offers
// it. The interpreter keeps navigation (entering elements, taking branches), the session rules and
// finishing; an element module says what its element does when entered and when an event, a timeout,
// a timer or an action result comes while it runs. Runtime code: it imports only types from the
// schema modules, so zod stays out of the workflow bundle.
import type { TelephonyCommand, TelephonyEvent } from '../../telephony/contract.js';
import type { FlowElement } from '../schema.js';
import type { Sensitive } from '../redact.js';
import type { ActionRequest, CallOutcome, CallState, FlowEvent, PhaseOf, SleepResume, WaitingPhase } from '../state.js';

// How long to wait for the provider before assuming something went wrong on its side.
export const TIMEOUTS = {
  dialMs: 180_000,
  answerMs: 30_000,
  machineDetectionMs: 15_000,
  promptSlackMs: 120_000,
  collectSlackMs: 30_000,
  forwardSlackMs: 30_000,
  recordSlackMs: 60_000,
  /** After hanging up a dial of unknown outcome: how long its CALL_FINISHED / CALL_FAILED may take. */
  reconcileMs: 60_000,
};

export const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

/** Why the recipient has no zone: set by `withTimeZone` at the edge, where numbers are parsed. */
export function zoneUnknownReason(state: CallState): string {
  const reason = state.recipient.timeZoneUnknown;
  return typeof reason === 'string' ? reason : 'no timeZone given';
}

/** One step of the interpreter, as an element module sees it. */
export interface StepContext {
  /** The call's state, changed in place by the step. */
  readonly state: CallState;
  /** The time of the event being handled (epoch ms): the only clock. */
  readonly at: number;
  byId(id: string): FlowElement | undefined;
  /** A new wait token (and the sequence number `commandId` is made of). */
  token(): number;
  /** The id of the command sent under the latest token. */
  commandId(): string;
  send(command: TelephonyCommand): void;
  /** Wait for the provider's next event; `command`: the command waited for, if not the one just sent. */
  await(token: number, timeoutMs: number, command?: TelephonyCommand): void;
  /** Run a non-IVR action: its result is the next event. */
  action(request: ActionRequest): void;
  sleep(ms: number, reason: string, resume: SleepResume): void;
  /** A `{{placeholder}}` template rendered over the call's data. */
  t(template: string): string;
  /** A JSONata expression over the call's data (or over `data`). */
  expr(source: string, data?: unknown): Promise<unknown>;
  /** The call's seeded PRNG. */
  random(): number;
  /** A problem that does not stop the call, reported in the result (redacted). */
  warn(element: string, message: string): void;
  /** Digits entered at a masked or hidden collect: redacted wherever the result would show them. */
  sensitive(digits: string, mode: Sensitive): void;
  /** Follow a branch; left open, the path ends there (closing a live call session). */
  take(
    el: FlowElement,
    branch: string,
    target: string | null | undefined,
    input?: string,
    record?: boolean,
  ): Promise<void>;
  /** Hang up the call if its session is live (no command when a prompt's follow-up runs the hang-up). */
  hangUpIfActive(elementId: string): void;
  /** This step learnt that the call's leg has ended already: there is no end left to await. */
  legEnded(): void;
  finish(outcome?: CallOutcome, error?: string): void;
  /** The call cannot go on: hung up if live, and finished `failed`. */
  fail(message: string): void;
  /** The event changed nothing: the current wait goes on. */
  stillWaiting(): void;
  /**
   * An event of the call's own leg the element does not handle itself: the interpreter's rules
   * apply (the call ended while the session was live: the element's `onCallEnded`; otherwise the
   * wait goes on).
   */
  otherEvent(el: FlowElement, ev: TelephonyEvent): Promise<void>;
}

type Handled = void | Promise<void>;

/** What an element does. Handlers not given: the event changes nothing. */
export interface ElementRuntime<E extends FlowElement> {
  /**
   * The element is entered (the interpreter has checked the session rules). `typedAhead`: keys
   * pressed during the prompt just before, which only a collect takes.
   */
  enter(ctx: StepContext, el: E, typedAhead: string): Handled;
  /** An event of the call's leg. Without it, or for events it does not handle: `ctx.otherEvent`. */
  onEvent?(ctx: StepContext, el: E, ev: TelephonyEvent): Handled;
  /** An event of another leg of the call (a forward's destination). Without it: the wait goes on. */
  onLegEvent?(ctx: StepContext, el: E, ev: TelephonyEvent): Handled;
  /**
   * The call ended while the element ran inside the live session (the session is now `ended`):
   * `branch` is `hungUp` when the end user hung up, `callEnded` otherwise. Without it: the element
   * (an action, a pause) completes, and the session is simply over.
   */
  onCallEnded?(ctx: StepContext, el: E, branch: 'hungUp' | 'callEnded'): Handled;
  /** The wait armed with the phase's token ended without the event. */
  onTimeout?(ctx: StepContext, el: E, phase: WaitingPhase, redialAtOnce: boolean): Handled;
  /** The sleep armed with the phase's token is over. */
  onTimer?(ctx: StepContext, el: E, phase: PhaseOf<'sleeping'>): Handled;
  /** The result of the action the element started. */
  onActionResult?(ctx: StepContext, el: E, result: Extract<FlowEvent, { type: 'actionResult' }>): Handled;
}
