// The flow interpreter: a pure reducer `step(flow, state, event) → { state, commands }`.
// No I/O, no clock, no randomness of its own: time comes in on events (`at`), randomness from a
// seeded PRNG kept in the state, so a workflow replays it exactly and tests run it without Temporal.
// It is async only because JSONata evaluates asynchronously; it never waits on anything external.
import { mulberry32 } from './random.js';
import type {
  CaptureDtmfCommand,
  ErrorCode,
  PromptFollowUp,
  TelephonyCommand,
  TelephonyEvent,
} from '../telephony/contract.js';
import { callIdFor } from '../telephony/ids.js';
import type {
  Collect,
  Condition,
  FlowElement,
  ForwardCall,
  HttpRequest,
  Pause,
  Play,
  RecordVoicemail,
  SendSms,
  SetVariable,
  StartIncomingCall,
  StartOutgoingCall,
  UpdateProfile,
  Flow,
} from './schema.js';
import { Duration } from 'luxon';
import { render } from './template.js';
import { evaluate, truthy } from './expressions.js';
import { nextWeekdayTime, nextWindowOpening } from './window.js';

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
const KNOWN_FAILURES = new Set<DialOutcome>(['noAnswer', 'busy', 'declined', 'unreachable', 'network']);

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

type SleepResume = 'dial' | 'continue';
type Phase =
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
  /** Known failures (busy, no answer …) on the current element: only these use the call-retry budget. */
  knownFailures: number;
  /** Internal-error redials on the current element: only these use the validity period. */
  errorRetries: number;
  vars: Record<string, unknown>;
  /** Variables holding masked or hidden input: never shown in results. */
  sensitiveVars: Record<string, 'masked' | 'hidden'>;
  /**
   * Digits pressed during an interruptible prompt, handed to the collect its `played` branch leads to.
   * Set and consumed in the same step; dropped by any other element entered.
   */
  bargeIn?: string;
  /**
   * The capture a prompt's follow-up started for the collect its `played` branch leads to, and
   * (when its result came before the prompt's end) the digits it reported. Set and consumed in the same step.
   */
  queuedCapture?: { elementId: string; command: CaptureDtmfCommand; digits?: string };
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
export const DEFAULT_VALIDITY_MS = 48 * 3600_000;
const ERROR_BACKOFF_MS = { initial: 60_000, max: 30 * 60_000 };
/**
 * Elements entered in one step without waiting for anything: a guard against `next` cycles. A
 * `hangUp` that ends the path (the automatic one included) is not counted: it cannot continue a cycle,
 * and closing the call must never be what pushes a flow past the guard.
 */
export const MAX_TRANSITIONS_PER_STEP = 500;

export function initialState(input: {
  workflowId: string;
  recipient: Recipient;
  seed: number;
  hints?: Record<string, unknown>;
  profile?: Record<string, unknown>;
  flow: Flow;
}): CallState {
  const vars: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(input.flow.variables)) if (v.default !== undefined) vars[name] = v.default;
  return {
    workflowId: input.workflowId,
    recipient: input.recipient,
    profile: input.profile ?? {},
    ...(input.hints ? { hints: input.hints } : {}),
    element: null,
    phase: { kind: 'idle' },
    session: 'none',
    attempt: 0,
    dials: 0,
    forwards: 0,
    knownFailures: 0,
    errorRetries: 0,
    vars,
    sensitiveVars: {},
    seq: 0,
    rng: input.seed >>> 0,
    trail: [],
    visited: [],
    recordings: [],
    warnings: [],
  };
}

/** The call's seeded PRNG; its state lives in the call state, so replays draw the same numbers. */
function nextRandom(d: CallState): number {
  const r = mulberry32(d.rng);
  d.rng = r.state;
  return r.value;
}

function classifyFailure(code: unknown): DialOutcome {
  switch (code as ErrorCode) {
    case 'NO_ANSWER':
      return 'noAnswer';
    case 'BUSY':
      return 'busy';
    case 'REJECTED':
      return 'declined';
    case 'UNREACHABLE':
      return 'unreachable';
    case 'NETWORK_ERROR':
      return 'network';
    case 'MACHINE_DETECTED':
      return 'voicemail';
    default:
      return 'error';
  }
}

const has = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

class Step {
  readonly commands: FlowCommand[] = [];
  private transitions = 0;
  private readonly byId: Map<string, FlowElement>;
  constructor(
    readonly flow: Flow,
    readonly d: CallState,
    readonly at: number,
  ) {
    this.byId = new Map(flow.elements.map((e) => [e.id, e]));
  }

  // --- helpers ------------------------------------------------------------------------------
  private data() {
    return {
      recipient: this.d.recipient,
      vars: this.d.vars,
      profile: this.d.profile,
      call: {
        id: this.d.callId ?? null,
        dials: this.d.dials,
        attempt: this.d.attempt,
        direction: this.d.direction ?? null,
      },
    };
  }
  private t(template: string): string {
    return render(template, this.data());
  }
  private async expr(source: string, data: unknown = this.data()): Promise<unknown> {
    return evaluate(source, data, { now: this.at, random: () => nextRandom(this.d) });
  }
  private token(): number {
    return ++this.d.seq;
  }
  private commandId(): string {
    return `${this.d.callId ?? this.d.workflowId}#${this.d.seq}`;
  }
  private send(command: TelephonyCommand): void {
    this.commands.push({ kind: 'telephony', command });
  }
  private await(token: number, timeoutMs: number, command?: TelephonyCommand): void {
    this.commands.push({ kind: 'awaitEvent', token, timeoutMs, ...(command ? { command } : {}) });
  }
  private warn(element: string, message: string): void {
    this.d.warnings.push({ element, message });
  }
  current(): FlowElement | undefined {
    return this.d.element ? this.byId.get(this.d.element) : undefined;
  }

  // --- navigation ---------------------------------------------------------------------------
  async enter(id: string): Promise<void> {
    const el = this.byId.get(id);
    if (!el) return this.fail(`element "${id}" does not exist`);
    const endsPath = el.type === 'hangUp' && !el.next;
    if (!endsPath && ++this.transitions > MAX_TRANSITIONS_PER_STEP) {
      const message = `more than ${MAX_TRANSITIONS_PER_STEP} elements visited without waiting: check the flow for a cycle`;
      this.warn(this.d.element ?? id, message);
      return this.fail(message);
    }
    // Keys typed during a prompt belong to the collect right after it, and to no later element.
    const typedAhead = this.d.bargeIn ?? '';
    delete this.d.bargeIn;
    this.d.element = id;
    this.d.visited.push(id);
    switch (el.type) {
      case 'startIncomingCall':
        // Reached only as the entry of an inbound call (handled by `incoming`).
        return this.take(el, 'next', el.next);
      case 'startOutgoingCall':
        if (this.d.session === 'active') return this.fail(`startOutgoingCall "${el.id}" inside an active call session`);
        this.d.attempt = 0;
        this.d.knownFailures = 0;
        this.d.errorRetries = 0;
        delete this.d.firstDialAt;
        delete this.d.failure;
        if (el.tracking)
          this.d.dataPayload = Object.fromEntries(
            Object.entries(el.tracking.dataPayload).map(([k, v]) => [k, this.t(v)]),
          );
        return this.dial(el);
      case 'play':
        if (this.d.session !== 'active') return this.take(el, 'callEnded', el.next.callEnded);
        return this.play(el, 1);
      case 'collect':
        if (this.d.session !== 'active') return this.take(el, 'callEnded', el.next.callEnded);
        return this.collect(el, typedAhead);
      case 'forwardCall':
        if (this.d.session !== 'active') return this.take(el, 'callEnded', el.next.callEnded);
        return this.forward(el);
      case 'recordVoicemail':
        if (this.d.session !== 'active') return this.take(el, 'callEnded', el.next.callEnded);
        return this.record(el);
      case 'hangUp':
        // Accepted anywhere: where the session has already ended it is a no-op.
        this.hangUpIfActive(el.id);
        return this.take(el, 'next', el.next, undefined, false);
      case 'pause':
        return this.pause(el);
      case 'sendSms':
        return this.sendSms(el);
      case 'updateProfile':
        return this.updateProfile(el);
      case 'httpRequest':
        return this.httpRequest(el);
      case 'condition':
        return this.condition(el);
      case 'setVariable':
        return this.setVariable(el);
    }
  }

  /** Follow a branch; a branch left open ends the path (closing the call session if one is active). */
  async take(
    el: FlowElement,
    branch: string,
    target: string | null | undefined,
    input?: string,
    record = true,
  ): Promise<void> {
    if (record) this.d.trail.push({ element: el.id, branch, ...(input !== undefined ? { input } : {}) });
    if (target) return this.enter(target);
    this.hangUpIfActive(el.id);
    this.finish();
  }

  /**
   * The call cannot go on: it ends `failed`, and a call still live is hung up first, so no leg is
   * left up behind a finished workflow.
   */
  private fail(message: string): void {
    this.hangUpIfActive(this.d.element ?? '');
    this.finish('failed', message);
  }

  /** The leg this step hung up (or whose hang-up a prompt's follow-up runs): its end is awaited. */
  private hungUpLeg: string | undefined;
  /** This step learnt that the leg has ended already: there is no end left to await. */
  private legEnded = false;

  private hangUpIfActive(elementId: string): void {
    if (this.d.session !== 'active' || !this.d.callId) return;
    if (!this.legEnded) this.hungUpLeg = this.d.callId;
    this.d.session = 'ended';
    if (this.d.queuedHangup) {
      delete this.d.queuedHangup;
      return;
    }
    this.token();
    this.send({ action: 'hangup', callId: this.d.callId, commandId: this.commandId(), elementId });
  }

  finish(outcome?: CallOutcome, error?: string): void {
    const variables: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(this.d.vars)) {
      const mode = this.d.sensitiveVars[k];
      if (mode === 'hidden') continue;
      variables[k] = mode === 'masked' ? 'xxxx' : v;
    }
    const derived: CallOutcome =
      this.d.direction === 'inbound'
        ? 'inbound'
        : this.d.lastDial === 'error'
          ? 'failed'
          : (this.d.lastDial ?? 'notCalled');
    if (!error && !outcome && derived === 'failed') error = this.d.failure;
    const result: CallResult = {
      outcome: outcome ?? derived,
      dials: this.d.dials,
      trail: this.d.trail,
      visited: this.d.visited,
      variables,
      recordings: this.d.recordings,
      ...(this.d.dataPayload ? { dataPayload: this.d.dataPayload } : {}),
      warnings: this.d.warnings,
      ...(error ? { error } : {}),
    };
    this.d.phase = { kind: 'done' };
    this.d.element = null;
    this.d.result = result;
    this.commands.push({ kind: 'finish', result, ...(this.hungUpLeg ? { awaitLegEnd: this.hungUpLeg } : {}) });
  }

  private sleep(ms: number, reason: string, resume: SleepResume): void {
    const token = this.token();
    this.d.phase = { kind: 'sleeping', token, resume };
    this.commands.push({ kind: 'sleep', token, ms: Math.max(1, Math.round(ms)), reason });
  }

  // --- startIncomingCall --------------------------------------------------------------------
  async incoming(ev: Extract<FlowEvent, { type: 'incoming' }>): Promise<void> {
    const el = this.flow.elements.find(
      (e): e is StartIncomingCall =>
        e.type === 'startIncomingCall' && e.number.replace(/^\+/, '') === ev.to.replace(/^\+/, ''),
    );
    if (!el) return this.finish('failed', `no startIncomingCall element for number ${ev.to}`);
    this.d.direction = 'inbound';
    this.d.callId = ev.callId;
    this.d.element = el.id;
    this.d.visited.push(el.id);
    const token = this.token();
    const commandId = this.commandId();
    this.send({ action: 'answer', callId: ev.callId, commandId, elementId: el.id });
    this.d.phase = { kind: 'answering', token, commandId };
    this.await(token, TIMEOUTS.answerMs);
  }

  // --- startOutgoingCall ----------------------------------------------------------------------
  async dial(el: StartOutgoingCall): Promise<void> {
    this.d.direction = 'outbound';
    if (el.deliveryWindow) {
      const zone = el.deliveryWindow.timeZone === 'recipient' ? this.d.recipient.timeZone : el.deliveryWindow.timeZone;
      if (!zone)
        return this.finish(
          'notCalled',
          `the delivery window of "${el.id}" uses the recipient's time zone, and recipient ${this.d.recipient.id} has none (${this.zoneUnknownReason()}): not dialling`,
        );
      const open = nextWindowOpening(el.deliveryWindow, zone, this.at);
      if (open > this.at) {
        // A redial after an internal error is made inside the validity period or not at all: when
        // the window opens only after the period, the call waits for the period's end and expires.
        const deadline = this.retryingAfterError() ? this.validityDeadline(el) : undefined;
        if (deadline !== undefined && open > deadline) {
          if (this.at >= deadline) return this.expire(el);
          return this.sleep(
            deadline - this.at,
            `outside the delivery window until ${new Date(open).toISOString()} (${zone}), after the validity period (until ${new Date(deadline).toISOString()})`,
            'dial',
          );
        }
        return this.sleep(
          open - this.at,
          `outside the delivery window until ${new Date(open).toISOString()} (${zone})`,
          'dial',
        );
      }
    }
    this.d.attempt += 1;
    this.d.dials += 1;
    this.d.firstDialAt ??= this.at;
    this.d.callId = callIdFor(this.d.workflowId, this.d.dials);
    this.d.session = 'none';
    const token = this.token();
    const commandId = this.commandId();
    const machineDetection = has(el.next, 'voicemail');
    this.send({
      action: 'dial',
      callId: this.d.callId,
      commandId,
      elementId: el.id,
      from: this.t(el.from),
      to: this.t(el.to),
      attempt: this.d.attempt,
      dialIndex: this.d.dials,
      recordCall: el.recordCall,
      machineDetection,
      // The answer alone changes nothing while detection runs: it comes with the detection result.
      ...(machineDetection ? { holdEvents: ['CALL_ESTABLISHED' as const] } : {}),
      ...(this.d.hints ? { hints: this.d.hints } : {}),
    });
    this.d.phase = { kind: 'dialing', token, commandId, established: false, machineDetection };
    this.await(token, TIMEOUTS.dialMs);
  }

  async dialOutcome(el: StartOutgoingCall, outcome: DialOutcome): Promise<void> {
    if (outcome === 'answered' || outcome === 'voicemail') {
      // Voicemail keeps the session so the flow can leave a message on the answering machine.
      this.d.session = 'active';
      this.d.lastDial = outcome;
      return this.take(el, outcome, el.next[outcome]);
    }
    this.d.session = 'ended';
    if (KNOWN_FAILURES.has(outcome)) {
      this.d.lastDial = outcome;
      this.d.knownFailures += 1;
      if (el.retry && this.d.knownFailures <= el.retry.count) {
        const span = el.retry.maxMinutes - el.retry.minMinutes;
        const minutes = el.retry.minMinutes + nextRandom(this.d) * span;
        return this.sleep(minutes * 60_000, `retry ${this.d.knownFailures}/${el.retry.count} after ${outcome}`, 'dial');
      }
      const branch = outcome === 'noAnswer' || outcome === 'busy' || outcome === 'declined' ? outcome : 'callEnded';
      return this.take(el, branch, el.next[branch]);
    }
    // Internal or unidentified errors: keep trying until the validity period ends (seed).
    this.d.lastDial = 'error';
    const deadline = this.validityDeadline(el);
    if (this.at >= deadline) return this.expire(el);
    const backoff = Math.min(ERROR_BACKOFF_MS.max, ERROR_BACKOFF_MS.initial * 2 ** this.d.errorRetries);
    this.d.errorRetries += 1;
    // A back-off that would end after the period is cut to end with it: the period's last attempt is
    // made at its end instead of being given up a back-off early.
    return this.sleep(
      Math.min(backoff, deadline - this.at),
      `retry after a provider error (validity until ${new Date(deadline).toISOString()})`,
      'dial',
    );
  }

  /** The end of the validity period of `el`'s current run of dials: it starts at the first dial. */
  private validityDeadline(el: StartOutgoingCall): number {
    const validityMs = el.validityPeriod
      ? el.validityPeriod.value * (el.validityPeriod.unit === 'hours' ? 3600_000 : 60_000)
      : DEFAULT_VALIDITY_MS;
    return (this.d.firstDialAt ?? this.at) + validityMs;
  }

  /** The next dial is a redial after an internal error (so it is bound by the validity period). */
  private retryingAfterError(): boolean {
    return this.d.lastDial === 'error' && this.d.errorRetries > 0;
  }

  /** The validity period is over without an established call. */
  private expire(el: StartOutgoingCall): Promise<void> {
    this.d.lastDial = 'expired';
    return this.take(el, 'callEnded', el.next.callEnded);
  }

  /**
   * The dial's wait ended with neither an answer nor a failure: the leg may be ringing or up, its
   * events late or lost (a NATS or provider outage). Hang it up and wait for its end before deciding,
   * so a redial never overlaps a leg that may still be live.
   */
  reconcile(el: StartOutgoingCall): void {
    const callId = this.d.callId ?? '';
    const token = this.token();
    const commandId = this.commandId();
    this.send({ action: 'hangup', callId, commandId, elementId: el.id });
    this.d.phase = { kind: 'reconciling', token, commandId, callId, answered: false };
    this.await(token, TIMEOUTS.reconcileMs);
  }

  /**
   * The end of a reconciled leg (`ended`), or nothing by the end of the wait. What the provider says
   * decides: a known failure is that failure (retried only as the flow's call retry allows); a leg
   * that was answered is not dialled again; a leg our hang-up ended rang without an answer; a leg the
   * provider lost, or a hang-up it acknowledged without news of the leg, is the internal error it was.
   */
  async reconciled(
    el: StartOutgoingCall,
    answered: boolean,
    ended: Record<string, unknown> | undefined,
  ): Promise<void> {
    const outcome: DialOutcome = ended ? classifyFailure(ended.errorCode) : 'error';
    const hungUpByUs = ended?.hangupSource === 'API';
    const wasUp = answered || outcome === 'voicemail' || (ended?.errorCode === 'NORMAL_HANGUP' && !hungUpByUs);
    if (wasUp) {
      this.d.session = 'ended';
      this.d.lastDial = 'error';
      this.d.failure =
        'the call was answered after its dial had timed out (events late or lost): hung up and not dialled again';
      this.warn(el.id, this.d.failure);
      return this.take(el, 'callEnded', el.next.callEnded);
    }
    if (KNOWN_FAILURES.has(outcome)) return this.dialOutcome(el, outcome);
    if (hungUpByUs) return this.dialOutcome(el, 'noAnswer');
    return this.dialOutcome(el, 'error');
  }

  // --- play -----------------------------------------------------------------------------------
  /**
   * Audio interruption works only when the `played` branch leads straight to a collect (seed); on any
   * other play the flag has no effect: the provider is told the prompt is not interruptible, and a
   * key reported during it is not kept.
   */
  interrupts(el: Play): boolean {
    const played = el.next.played;
    return el.interruptible && typeof played === 'string' && this.byId.get(played)?.type === 'collect';
  }

  play(el: Play, loop: number): void {
    const interruptible = this.interrupts(el);
    const token = this.token();
    const commandId = this.commandId();
    const callId = this.d.callId ?? '';
    // The pause applies only before the first play (seed).
    const pauseMs = loop === 1 ? Math.round(el.pauseSeconds * 1000) : 0;
    const followUp = loop === el.loopCount ? this.followUpOf(el, callId) : undefined;
    const ends = el.tts ? 'SAY_FINISHED' : 'PLAY_FINISHED';
    // With a follow-up the prompt's end changes nothing on its own: it comes with the follow-up's result.
    const chained = followUp ? { then: followUp.command, holdEvents: [ends] as Array<typeof ends> } : {};
    let lengthMs = 60_000;
    if (el.tts) {
      const text = this.t(el.tts.text);
      lengthMs = text.length * 200;
      this.send({
        action: 'say',
        callId,
        commandId,
        elementId: el.id,
        text,
        language: el.tts.language,
        voice: el.tts.neural ? `${el.tts.voice}-neural` : el.tts.voice,
        speechRate: el.tts.speechRate,
        pauseMs,
        interruptible,
        ...chained,
      });
    } else if (el.audio) {
      const url =
        'url' in el.audio
          ? this.t(el.audio.url)
          : 'file' in el.audio
            ? `file:${el.audio.file}`
            : `recording:${this.t(el.audio.voicemail)}`;
      this.send({ action: 'play', callId, commandId, elementId: el.id, url, pauseMs, interruptible, ...chained });
    }
    this.d.phase = { kind: 'playing', token, commandId, loop, ...(followUp ? { followUp: followUp.command } : {}) };
    this.await(token, pauseMs + lengthMs + TIMEOUTS.promptSlackMs + (followUp?.extraMs ?? 0));
  }

  /**
   * What the provider can do by itself when the last loop of `el` ends, saving the call a round trip:
   * start the capture of the collect `played` leads to, or hang up when the path ends there (left
   * open, or a final hangUp element). `extraMs`: how much longer the prompt's wait may then last.
   */
  private followUpOf(el: Play, callId: string): { command: PromptFollowUp; extraMs: number } | undefined {
    const played = el.next.played;
    const target = typeof played === 'string' ? this.byId.get(played) : undefined;
    if (target?.type === 'collect') {
      this.token();
      const command = this.captureCommand(target, this.commandId(), '');
      return { command, extraMs: this.collectWaitMs(target, target.maxDigits) };
    }
    if (!played || (target?.type === 'hangUp' && !target.next)) {
      this.token();
      return {
        command: { action: 'hangup', callId, commandId: this.commandId(), elementId: target?.id ?? el.id },
        extraMs: 0,
      };
    }
    return undefined;
  }

  /**
   * The prompt ended (or the follow-up's result came before word of it): the follow-up is running,
   * so the collect or the hang-up it stands for is not sent again. `captured`: its digits, if known.
   */
  private async promptEnded(el: Play, followUp: PromptFollowUp, captured?: string): Promise<void> {
    if (followUp.action === 'captureDtmf') {
      const queued = { elementId: el.next.played ?? '', command: followUp };
      this.d.queuedCapture = { ...queued, ...(captured !== undefined ? { digits: captured } : {}) };
    } else {
      this.d.queuedHangup = true;
    }
    await this.take(el, 'played', el.next.played);
    delete this.d.queuedCapture;
    delete this.d.queuedHangup;
  }

  // --- collect --------------------------------------------------------------------------------
  /** `prefix`: keys typed during the interruptible prompt that led here. */
  async collect(el: Collect, prefix: string): Promise<void> {
    const queued = this.d.queuedCapture?.elementId === el.id ? this.d.queuedCapture : undefined;
    delete this.d.queuedCapture;
    if (queued) {
      // The prompt's follow-up is capturing already (with any keys that interrupted the prompt).
      if (queued.digits !== undefined) return this.collected(el, queued.digits);
      const token = this.token();
      this.d.phase = { kind: 'collecting', token, commandId: queued.command.commandId, prefix: '' };
      return this.await(token, this.collectWaitMs(el, el.maxDigits) + TIMEOUTS.collectSlackMs, queued.command);
    }
    if (prefix.length >= el.maxDigits || prefix.includes('#')) return this.collected(el, prefix);
    const token = this.token();
    const command = this.captureCommand(el, this.commandId(), prefix);
    this.send(command);
    this.d.phase = { kind: 'collecting', token, commandId: command.commandId, prefix };
    this.await(token, this.collectWaitMs(el, el.maxDigits - prefix.length) + TIMEOUTS.collectSlackMs);
  }

  /** The capture of `el`; `prefix`: digits typed already, so the rest is waited for as between digits. */
  private captureCommand(el: Collect, commandId: string, prefix: string): CaptureDtmfCommand {
    return {
      action: 'captureDtmf',
      callId: this.d.callId ?? '',
      commandId,
      elementId: el.id,
      maxDigits: el.maxDigits - prefix.length,
      terminator: '#',
      firstDigitTimeoutMs: (prefix ? el.interDigitSeconds : el.waitSeconds) * 1000,
      interDigitTimeoutMs: el.interDigitSeconds * 1000,
    };
  }

  /** The longest a capture of `digits` digits for `el` can take by its own timeouts. */
  private collectWaitMs(el: Collect, digits: number): number {
    return el.waitSeconds * 1000 + digits * el.interDigitSeconds * 1000;
  }

  async collected(el: Collect, raw: string): Promise<void> {
    // `#` terminates input and is never collected.
    const hash = raw.indexOf('#');
    const digits = (hash >= 0 ? raw.slice(0, hash) : raw).slice(0, el.maxDigits);
    if (el.saveTo) {
      this.d.vars[el.saveTo] = digits;
      if (el.reporting !== 'always') this.d.sensitiveVars[el.saveTo] = el.reporting;
    }
    const shown = el.reporting === 'always' ? digits : el.reporting === 'masked' ? 'xxxx' : undefined;
    const target = has(el.responses, digits) ? el.responses[digits] : undefined;
    if (target !== undefined) return this.take(el, el.reporting === 'always' ? digits : 'response', target, shown);
    return this.take(el, 'noMatch', el.next.noMatch, shown);
  }

  // --- forwardCall ----------------------------------------------------------------------------
  forward(el: ForwardCall): void {
    this.d.forwards += 1;
    const token = this.token();
    const commandId = this.commandId();
    // The second leg's id keeps the owning workflow's prefix, so the bridge routes its events here.
    const legCallId = `${this.d.callId ?? ''}.f${this.d.forwards}`;
    this.send({
      action: 'forward',
      callId: this.d.callId ?? '',
      legCallId,
      commandId,
      elementId: el.id,
      from: this.t(el.from),
      to: this.t(el.to),
      ringSeconds: el.ringSeconds,
      ...(this.d.hints ? { hints: this.d.hints } : {}),
    });
    this.d.phase = { kind: 'forwarding', token, commandId, legCallId };
    this.await(token, el.ringSeconds * 1000 + TIMEOUTS.forwardSlackMs);
  }

  async forwardOutcome(
    el: ForwardCall,
    outcome: 'forwarded' | 'notForwarded' | 'noAnswer' | 'busy' | 'declined',
  ): Promise<void> {
    if (outcome === 'forwarded') {
      // The end user now talks to the destination: the flow has left the call session.
      this.d.session = 'ended';
      return this.take(el, 'forwarded', el.next.forwarded);
    }
    // Specific failure branches exist only when configured; otherwise "not forwarded".
    const branch = outcome !== 'notForwarded' && has(el.next, outcome) ? outcome : 'notForwarded';
    return this.take(el, branch, el.next[branch]);
  }

  /** Why the recipient has no zone: set by `withTimeZone` at the edge, where numbers are parsed. */
  zoneUnknownReason(): string {
    const reason = this.d.recipient.timeZoneUnknown;
    return typeof reason === 'string' ? reason : 'no timeZone given';
  }

  // --- recordVoicemail ------------------------------------------------------------------------
  record(el: RecordVoicemail): void {
    const token = this.token();
    const commandId = this.commandId();
    const name = this.t(el.name);
    this.send({
      action: 'record',
      callId: this.d.callId ?? '',
      commandId,
      elementId: el.id,
      name,
      maxDurationMs: el.maxDurationSeconds * 1000,
      maxSilenceMs: el.maxSilenceSeconds * 1000,
      escapeDigits: el.escapeDigits,
      beep: el.beep,
    });
    this.d.phase = { kind: 'recording', token, commandId, name };
    this.await(token, el.maxDurationSeconds * 1000 + TIMEOUTS.recordSlackMs);
  }

  // --- pause ----------------------------------------------------------------------------------
  pause(el: Pause): void {
    if (el.duration) return this.sleep(Duration.fromISO(el.duration).toMillis(), `pause ${el.duration}`, 'continue');
    const until = el.until;
    if (!until) return this.sleep(1, 'pause', 'continue');
    const zone = until.timeZone === 'recipient' ? this.d.recipient.timeZone : until.timeZone;
    if (!zone)
      return this.finish(
        'failed',
        `pause "${el.id}" uses the recipient's time zone, and recipient ${this.d.recipient.id} has none (${this.zoneUnknownReason()})`,
      );
    const when = nextWeekdayTime(until.weekday, until.time, zone, this.at);
    return this.sleep(
      when - this.at,
      `pause until ${until.weekday} ${until.time} ${zone} (${new Date(when).toISOString()})`,
      'continue',
    );
  }

  // --- non-IVR actions ------------------------------------------------------------------------
  private action(request: ActionRequest): void {
    const token = this.token();
    this.d.phase = { kind: 'acting', token };
    this.commands.push({ kind: 'action', token, request });
  }

  sendSms(el: SendSms): void {
    this.action({
      type: 'sendSms',
      elementId: el.id,
      ...(el.from ? { from: this.t(el.from) } : {}),
      to: this.t(el.to),
      text: this.t(el.text),
    });
  }

  async updateProfile(el: UpdateProfile): Promise<void> {
    const attributes: Record<string, unknown> = {};
    for (const [k, source] of Object.entries(el.attributes)) {
      try {
        attributes[k] = await this.expr(source);
      } catch (err) {
        this.warn(el.id, (err as Error).message);
      }
    }
    Object.assign(this.d.profile, attributes);
    this.action({ type: 'updateProfile', elementId: el.id, recipientId: this.d.recipient.id, attributes });
  }

  httpRequest(el: HttpRequest): void {
    const renderDeep = (v: unknown): unknown =>
      typeof v === 'string'
        ? this.t(v)
        : Array.isArray(v)
          ? v.map(renderDeep)
          : v && typeof v === 'object'
            ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, renderDeep(x)]))
            : v;
    this.action({
      type: 'httpRequest',
      elementId: el.id,
      method: el.method,
      url: this.t(el.url),
      headers: Object.fromEntries(Object.entries(el.headers).map(([k, v]) => [k, this.t(v)])),
      ...(el.body !== undefined ? { body: renderDeep(el.body) } : {}),
      timeoutMs: el.timeoutSeconds * 1000,
      retries: el.retries,
    });
  }

  async actionDone(el: FlowElement, ok: boolean, data: unknown, error: string | undefined): Promise<void> {
    if (el.type === 'httpRequest' && data && typeof data === 'object') {
      for (const [name, source] of Object.entries(el.saveTo)) {
        try {
          const v = await this.expr(source, data);
          if (v === undefined) delete this.d.vars[name];
          else this.d.vars[name] = v;
        } catch (err) {
          this.warn(el.id, (err as Error).message);
        }
      }
    }
    if (el.type !== 'sendSms' && el.type !== 'updateProfile' && el.type !== 'httpRequest') return;
    if (ok) return this.take(el, 'next', el.next);
    this.warn(el.id, error ?? 'action failed');
    if (el.onError !== undefined) return this.take(el, 'onError', el.onError);
    return this.take(el, 'next', el.next);
  }

  async condition(el: Condition): Promise<void> {
    for (const [i, c] of el.conditions.entries()) {
      let v: unknown;
      try {
        v = await this.expr(c.if);
      } catch (err) {
        // A failing condition counts as false; the call goes on and the problem is reported.
        this.warn(el.id, (err as Error).message);
        continue;
      }
      if (truthy(v)) return this.take(el, `conditions[${i}]`, c.next);
    }
    return this.take(el, 'else', el.else);
  }

  async setVariable(el: SetVariable): Promise<void> {
    try {
      const v = await this.expr(el.value);
      if (v === undefined) delete this.d.vars[el.variable];
      else this.d.vars[el.variable] = v;
    } catch (err) {
      this.warn(el.id, (err as Error).message);
    }
    return this.take(el, 'next', el.next);
  }

  // --- events ---------------------------------------------------------------------------------
  async onTelephony(ev: TelephonyEvent): Promise<void> {
    const el = this.current();
    const phase = this.d.phase;
    if (!el) return this.stillWaiting();
    const p = ev.properties;
    const commandId = typeof p.commandId === 'string' ? p.commandId : undefined;

    // The second leg of a forward.
    if (phase.kind === 'forwarding' && el.type === 'forwardCall' && ev.callId === phase.legCallId) {
      if (ev.type === 'CALL_ESTABLISHED') return this.forwardOutcome(el, 'forwarded');
      if (ev.type === 'CALL_FAILED' || ev.type === 'CALL_FINISHED') {
        const o = classifyFailure(p.errorCode);
        return this.forwardOutcome(el, o === 'noAnswer' || o === 'busy' || o === 'declined' ? o : 'notForwarded');
      }
      return this.stillWaiting();
    }
    if (ev.callId !== this.d.callId) return this.stillWaiting();

    if (phase.kind === 'answering' && el.type === 'startIncomingCall') {
      if (ev.type === 'CALL_ESTABLISHED') {
        this.d.session = 'active';
        return this.take(el, 'next', el.next);
      }
      if (ev.type === 'CALL_FINISHED' || ev.type === 'CALL_FAILED') {
        this.d.session = 'ended';
        return this.finish('inbound', 'the caller hung up before the call was answered');
      }
      return this.stillWaiting();
    }

    if (phase.kind === 'dialing' && el.type === 'startOutgoingCall') {
      switch (ev.type) {
        case 'CALL_ESTABLISHED':
          if (!phase.machineDetection) return this.dialOutcome(el, 'answered');
          phase.established = true;
          phase.token = this.token();
          return this.await(phase.token, TIMEOUTS.machineDetectionMs);
        case 'MACHINE_DETECTION_FINISHED':
          return this.dialOutcome(el, p.detectionResult === 'MACHINE' ? 'voicemail' : 'answered');
        case 'CALL_FAILED':
        case 'CALL_FINISHED':
          return this.dialOutcome(el, classifyFailure(p.errorCode));
        default:
          return this.stillWaiting();
      }
    }

    if (phase.kind === 'reconciling' && el.type === 'startOutgoingCall' && ev.callId === phase.callId) {
      switch (ev.type) {
        case 'CALL_ESTABLISHED':
          // Answered while its hang-up was on the way: the recipient was reached.
          phase.answered = true;
          return this.stillWaiting();
        case 'CALL_FAILED':
        case 'CALL_FINISHED':
          return this.reconciled(el, phase.answered, p);
        default:
          return this.stillWaiting();
      }
    }

    if (phase.kind === 'playing' && el.type === 'play' && phase.followUp && commandId === phase.followUp.commandId) {
      // The follow-up's result came first (the prompt's end was held or is late): the prompt ended.
      if (ev.type === 'DTMF_CAPTURED')
        return this.promptEnded(el, phase.followUp, typeof p.dtmf === 'string' ? p.dtmf : '');
      if (ev.type === 'CALL_FINISHED') {
        this.legEnded = true;
        return this.promptEnded(el, phase.followUp);
      }
    }

    if (ev.type === 'CALL_FINISHED' || ev.type === 'CALL_FAILED') {
      // The far end or the platform ended an established call.
      if (this.d.session !== 'active') return this.stillWaiting();
      this.d.session = 'ended';
      const branch = p.hangupSource === 'ENDPOINT' ? 'hungUp' : 'callEnded';
      switch (el.type) {
        case 'play':
        case 'collect':
        case 'recordVoicemail':
          return this.take(el, branch, (el.next as Record<string, string | null | undefined>)[branch]);
        case 'forwardCall':
          // Before the forward completed: "call ended" whoever hung up (seed).
          return this.take(el, 'callEnded', el.next.callEnded);
        default:
          // An action or pause is running: it completes, and the session is simply over.
          return this.stillWaiting();
      }
    }

    if (
      phase.kind === 'playing' &&
      el.type === 'play' &&
      (ev.type === 'SAY_FINISHED' || ev.type === 'PLAY_FINISHED') &&
      commandId === phase.commandId
    ) {
      // Keys that interrupted the prompt are the follow-up capture's first digits already.
      if (phase.followUp) return this.promptEnded(el, phase.followUp);
      const pressed = typeof p.dtmf === 'string' ? p.dtmf : '';
      if (pressed && this.interrupts(el)) {
        this.d.bargeIn = pressed;
        return this.take(el, 'played', el.next.played);
      }
      if (phase.loop < el.loopCount) return this.play(el, phase.loop + 1);
      return this.take(el, 'played', el.next.played);
    }

    if (
      phase.kind === 'collecting' &&
      el.type === 'collect' &&
      ev.type === 'DTMF_CAPTURED' &&
      commandId === phase.commandId
    ) {
      return this.collected(el, phase.prefix + (typeof p.dtmf === 'string' ? p.dtmf : ''));
    }

    if (
      phase.kind === 'recording' &&
      el.type === 'recordVoicemail' &&
      ev.type === 'CALL_RECORDING_READY' &&
      commandId === phase.commandId
    ) {
      const rec: Recording = {
        element: el.id,
        name: phase.name,
        recordingId: typeof p.recordingId === 'string' ? p.recordingId : `${this.d.callId ?? ''}:${phase.name}`,
        ...(typeof p.url === 'string' ? { url: p.url } : {}),
        ...(typeof p.durationMs === 'number' ? { durationMs: p.durationMs } : {}),
      };
      this.d.recordings.push(rec);
      if (el.saveTo) this.d.vars[el.saveTo] = rec.name;
      return this.take(el, 'recorded', el.next.recorded);
    }
    return this.stillWaiting();
  }

  async onTimeout(token: number, redialAtOnce = false): Promise<void> {
    const el = this.current();
    const phase = this.d.phase;
    if (!el || !('token' in phase) || phase.token !== token) return this.stillWaiting();
    switch (phase.kind) {
      case 'answering':
        this.d.session = 'ended';
        return this.finish('failed', 'the provider did not confirm answering the inbound call');
      case 'dialing':
        if (el.type !== 'startOutgoingCall') break;
        if (phase.established) return this.dialOutcome(el, 'answered');
        if (redialAtOnce) return this.dialOutcome(el, 'error');
        return this.reconcile(el);
      case 'reconciling':
        if (el.type === 'startOutgoingCall') return this.reconciled(el, phase.answered, undefined);
        break;
      case 'playing':
        if (el.type === 'play') {
          // The provider never confirmed the prompt: treat as a technical end of the call.
          this.hangUpIfActive(el.id);
          return this.take(el, 'callEnded', el.next.callEnded);
        }
        break;
      case 'collecting':
        if (el.type === 'collect') return this.collected(el, phase.prefix);
        break;
      case 'forwarding':
        if (el.type === 'forwardCall') return this.forwardOutcome(el, 'noAnswer');
        break;
      case 'recording':
        if (el.type === 'recordVoicemail') {
          this.hangUpIfActive(el.id);
          return this.take(el, 'callEnded', el.next.callEnded);
        }
        break;
    }
    return this.stillWaiting();
  }

  async onTimer(token: number): Promise<void> {
    const el = this.current();
    const phase = this.d.phase;
    if (!el || phase.kind !== 'sleeping' || phase.token !== token) return this.stillWaiting();
    if (phase.resume === 'dial' && el.type === 'startOutgoingCall') return this.dial(el);
    if (el.type === 'pause') return this.take(el, 'next', el.next);
    return this.stillWaiting();
  }

  async onActionResult(ev: Extract<FlowEvent, { type: 'actionResult' }>): Promise<void> {
    const el = this.current();
    const phase = this.d.phase;
    if (!el || phase.kind !== 'acting' || phase.token !== ev.token) return this.stillWaiting();
    return this.actionDone(el, ev.ok, ev.data, ev.error);
  }

  /** An event that changes nothing (duplicate, stale, unrelated): the current wait goes on. */
  stillWaiting(): void {
    const phase = this.d.phase;
    // A sleep's timer runs on by itself; an action's result is the runner's next event anyway.
    if ('token' in phase && phase.kind !== 'sleeping' && phase.kind !== 'acting')
      this.commands.push({ kind: 'continueWaiting', token: phase.token });
  }
}

function draft(state: CallState): CallState {
  // Plain JSON data by construction; a deep copy keeps the reducer free of aliasing bugs.
  return JSON.parse(JSON.stringify(state)) as CallState;
}

export async function step(flow: Flow, state: CallState, event: FlowEvent): Promise<StepResult> {
  if (state.phase.kind === 'done') return { state, commands: [] };
  const s = new Step(flow, draft(state), event.at);
  const fresh = state.element === null && state.visited.length === 0;
  switch (event.type) {
    case 'start':
      if (fresh) {
        if (flow.start) await s.enter(flow.start);
        else s.finish('failed', 'the flow has no `start` element for an outbound call');
      }
      break;
    case 'incoming':
      if (fresh) await s.incoming(event);
      break;
    case 'telephony':
      await s.onTelephony(event.event);
      break;
    case 'timeout':
      await s.onTimeout(event.token, event.redialAtOnce);
      break;
    case 'timer':
      await s.onTimer(event.token);
      break;
    case 'actionResult':
      await s.onActionResult(event);
      break;
  }
  return { state: s.d, commands: s.commands };
}
