// The flow interpreter: a pure reducer `step(flow, state, event) → { state, commands }`.
// No I/O, no clock, no randomness of its own: time comes in on events (`at`), randomness from a
// seeded PRNG kept in the state, so a workflow replays it exactly and tests run it without Temporal.
import type { TelephonyCommand, TelephonyEvent, ErrorCode } from '../telephony/contract.js';
import { callIdFor } from '../telephony/contract.js';
import type { Collect, Flow, FlowElement, Pause, Play, StartOutgoingCall } from './schema.js';
import { Duration } from 'luxon';
import { render, type TemplateContext } from './template.js';

export interface Recipient {
  id: string;
  phone: string;
  timeZone?: string;
  [attribute: string]: unknown;
}

/** What a dial attempt (and so the call) ended in. */
export type DialOutcome = 'answered' | 'voicemail' | 'noAnswer' | 'busy' | 'declined' | 'unreachable' | 'network' | 'error';
export type CallOutcome = Exclude<DialOutcome, 'error'> | 'expired' | 'notCalled' | 'failed';
const KNOWN_FAILURES = new Set<DialOutcome>(['noAnswer', 'busy', 'declined', 'unreachable', 'network']);

export interface TrailEntry {
  element: string;
  branch: string;
  /** Digits entered at a collect, as its reporting setting allows them to be shown. */
  input?: string;
}

export interface CallResult {
  outcome: CallOutcome;
  dials: number;
  trail: TrailEntry[];
  visited: string[];
  variables: Record<string, unknown>;
  /** Why a call ended in `failed`. */
  error?: string;
}

type Phase =
  | { kind: 'idle' }
  | { kind: 'dialing'; token: number; commandId: string; established: boolean; machineDetection: boolean }
  | { kind: 'retryWait'; token: number }
  | { kind: 'playing'; token: number; commandId: string; loop: number }
  | { kind: 'collecting'; token: number; commandId: string; prefix: string }
  | { kind: 'pausing'; token: number }
  | { kind: 'done' };

export interface CallState {
  workflowId: string;
  recipient: Recipient;
  hints?: Record<string, unknown>;
  element: string | null;
  phase: Phase;
  session: 'none' | 'active' | 'ended';
  callId?: string;
  /** Dial attempts on the current startOutgoingCall element. */
  attempt: number;
  /** Dials made by this call over all its startOutgoingCall elements. */
  dials: number;
  firstDialAt?: number;
  /** Known failures (busy, no answer …) on the current element: only these use the call-retry budget. */
  knownFailures: number;
  /** Internal-error redials on the current element: only these use the validity period. */
  errorRetries: number;
  vars: Record<string, unknown>;
  /** Variables holding masked or hidden input: never shown in results. */
  sensitiveVars: Record<string, 'masked' | 'hidden'>;
  /** Digits pressed during an interruptible prompt, handed to the next collect. */
  bargeIn?: string;
  seq: number;
  rng: number;
  trail: TrailEntry[];
  visited: string[];
  lastDial?: DialOutcome | 'expired';
  result?: CallResult;
}

export type FlowEvent =
  | { type: 'start'; at: number }
  | { type: 'telephony'; at: number; event: TelephonyEvent }
  | { type: 'timeout'; at: number; token: number }
  | { type: 'timer'; at: number; token: number };

export type FlowCommand =
  | { kind: 'telephony'; command: TelephonyCommand }
  | { kind: 'awaitEvent'; token: number; timeoutMs: number }
  | { kind: 'sleep'; token: number; ms: number; reason: string }
  | { kind: 'finish'; result: CallResult };

export interface StepResult {
  state: CallState;
  commands: FlowCommand[];
}

// How long to wait for the provider before assuming something went wrong on its side.
export const TIMEOUTS = {
  dialMs: 180_000,
  machineDetectionMs: 15_000,
  promptSlackMs: 120_000,
  collectSlackMs: 30_000,
};
export const DEFAULT_VALIDITY_MS = 48 * 3600_000;
const ERROR_BACKOFF_MS = { initial: 60_000, max: 30 * 60_000 };
/** Transitions allowed in one step without waiting for anything: a guard against `next` cycles. */
const MAX_TRANSITIONS_PER_STEP = 500;

export function initialState(input: { workflowId: string; recipient: Recipient; seed: number; hints?: Record<string, unknown>; flow: Flow }): CallState {
  const vars: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(input.flow.variables)) if (v.default !== undefined) vars[name] = v.default;
  return {
    workflowId: input.workflowId,
    recipient: input.recipient,
    ...(input.hints ? { hints: input.hints } : {}),
    element: null,
    phase: { kind: 'idle' },
    session: 'none',
    attempt: 0,
    dials: 0,
    knownFailures: 0,
    errorRetries: 0,
    vars,
    sensitiveVars: {},
    seq: 0,
    rng: input.seed >>> 0,
    trail: [],
    visited: [],
  };
}

/** mulberry32: small, fast, good enough for jitter; its whole state is one uint32. */
function nextRandom(d: CallState): number {
  d.rng = (d.rng + 0x6d2b79f5) >>> 0;
  let t = d.rng;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

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

  private ctx(): TemplateContext {
    return { recipient: this.d.recipient, vars: this.d.vars };
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
  private await(token: number, timeoutMs: number): void {
    this.commands.push({ kind: 'awaitEvent', token, timeoutMs });
  }

  current(): FlowElement | undefined {
    return this.d.element ? this.byId.get(this.d.element) : undefined;
  }

  enter(id: string): void {
    const el = this.byId.get(id);
    if (!el) return this.finish('failed', `element "${id}" does not exist`);
    if (++this.transitions > MAX_TRANSITIONS_PER_STEP) return this.finish('failed', `more than ${MAX_TRANSITIONS_PER_STEP} elements visited without waiting: check the flow for a cycle`);
    this.d.element = id;
    this.d.visited.push(id);
    switch (el.type) {
      case 'startOutgoingCall':
        this.d.attempt = 0;
        this.d.knownFailures = 0;
        this.d.errorRetries = 0;
        delete this.d.firstDialAt;
        return this.dial(el);
      case 'play':
        if (this.d.session !== 'active') return this.take(el, 'callEnded', el.next.callEnded);
        return this.say(el, 1);
      case 'collect':
        if (this.d.session !== 'active') return this.take(el, 'callEnded', el.next.callEnded);
        return this.collect(el);
      case 'hangUp':
        // Accepted anywhere: where the session has already ended it is a no-op.
        this.hangUpIfActive(el.id);
        return el.next ? this.enter(el.next) : this.finish();
      case 'pause':
        return this.pause(el);
    }
  }

  /** Follow a branch; a branch left open ends the path (closing the call session if one is active). */
  take(el: FlowElement, branch: string, target: string | undefined, input?: string): void {
    this.d.trail.push({ element: el.id, branch, ...(input !== undefined ? { input } : {}) });
    if (target) return this.enter(target);
    this.hangUpIfActive(el.id);
    this.finish();
  }

  private hangUpIfActive(elementId: string): void {
    if (this.d.session !== 'active' || !this.d.callId) return;
    this.token();
    this.send({ action: 'hangup', callId: this.d.callId, commandId: this.commandId(), elementId });
    this.d.session = 'ended';
  }

  finish(outcome?: CallOutcome, error?: string): void {
    const variables: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(this.d.vars)) {
      const mode = this.d.sensitiveVars[k];
      if (mode === 'hidden') continue;
      variables[k] = mode === 'masked' ? 'xxxx' : v;
    }
    const result: CallResult = {
      outcome: outcome ?? (this.d.lastDial === 'error' ? 'failed' : (this.d.lastDial ?? 'notCalled')),
      dials: this.d.dials,
      trail: this.d.trail,
      visited: this.d.visited,
      variables,
      ...(error ? { error } : {}),
    };
    this.d.phase = { kind: 'done' };
    this.d.element = null;
    this.d.result = result;
    this.commands.push({ kind: 'finish', result });
  }

  // --- startOutgoingCall -------------------------------------------------------------------
  dial(el: StartOutgoingCall): void {
    this.d.attempt += 1;
    this.d.dials += 1;
    this.d.firstDialAt ??= this.at;
    this.d.callId = callIdFor(this.d.workflowId, this.d.dials);
    this.d.session = 'none';
    const token = this.token();
    const commandId = this.commandId();
    const machineDetection = el.next.voicemail !== undefined;
    this.send({
      action: 'dial',
      callId: this.d.callId,
      commandId,
      elementId: el.id,
      from: render(el.from, this.ctx()),
      to: render(el.to, this.ctx()),
      attempt: this.d.attempt,
      dialIndex: this.d.dials,
      recordCall: el.recordCall,
      machineDetection,
      ...(this.d.hints ? { hints: this.d.hints } : {}),
    });
    this.d.phase = { kind: 'dialing', token, commandId, established: false, machineDetection };
    this.await(token, TIMEOUTS.dialMs);
  }

  dialOutcome(el: StartOutgoingCall, outcome: DialOutcome): void {
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
        return this.sleep(Math.round(minutes * 60_000), `retry ${this.d.knownFailures}/${el.retry.count} after ${outcome}`);
      }
      const branch = outcome === 'noAnswer' || outcome === 'busy' || outcome === 'declined' ? outcome : 'callEnded';
      return this.take(el, branch, el.next[branch]);
    }
    // Internal or unidentified errors: keep trying until the validity period ends (seed).
    const validityMs = el.validityPeriod ? el.validityPeriod.value * (el.validityPeriod.unit === 'hours' ? 3600_000 : 60_000) : DEFAULT_VALIDITY_MS;
    const deadline = (this.d.firstDialAt ?? this.at) + validityMs;
    const backoff = Math.min(ERROR_BACKOFF_MS.max, ERROR_BACKOFF_MS.initial * 2 ** this.d.errorRetries);
    this.d.errorRetries += 1;
    if (this.at + backoff < deadline) return this.sleep(backoff, `retry after provider error (validity until ${new Date(deadline).toISOString()})`);
    this.d.lastDial = 'expired';
    return this.take(el, 'callEnded', el.next.callEnded);
  }

  private sleep(ms: number, reason: string): void {
    const token = this.token();
    this.d.phase = { kind: 'retryWait', token };
    this.commands.push({ kind: 'sleep', token, ms, reason });
  }

  // --- play ---------------------------------------------------------------------------------
  say(el: Play, loop: number): void {
    const token = this.token();
    const commandId = this.commandId();
    const callId = this.d.callId ?? '';
    // The pause applies only before the first play (seed).
    const pauseMs = loop === 1 ? Math.round(el.pauseSeconds * 1000) : 0;
    if (el.tts) {
      this.send({
        action: 'say',
        callId,
        commandId,
        elementId: el.id,
        text: render(el.tts.text, this.ctx()),
        language: el.tts.language,
        voice: el.tts.voice,
        speechRate: el.tts.speechRate,
        pauseMs,
        interruptible: el.interruptible,
      });
    } else if (el.audio) {
      this.send({ action: 'play', callId, commandId, elementId: el.id, url: render(el.audio.url, this.ctx()), pauseMs, interruptible: el.interruptible });
    }
    this.d.phase = { kind: 'playing', token, commandId, loop };
    const textMs = el.tts ? el.tts.text.length * 200 : 0;
    this.await(token, pauseMs + textMs + TIMEOUTS.promptSlackMs);
  }

  // --- collect ------------------------------------------------------------------------------
  collect(el: Collect): void {
    const prefix = this.d.bargeIn ?? '';
    delete this.d.bargeIn;
    if (prefix.length >= el.maxDigits) return this.collected(el, prefix.slice(0, el.maxDigits));
    const token = this.token();
    const commandId = this.commandId();
    const maxDigits = el.maxDigits - prefix.length;
    this.send({
      action: 'captureDtmf',
      callId: this.d.callId ?? '',
      commandId,
      elementId: el.id,
      maxDigits,
      terminator: '#',
      firstDigitTimeoutMs: el.waitSeconds * 1000,
      interDigitTimeoutMs: el.interDigitSeconds * 1000,
    });
    this.d.phase = { kind: 'collecting', token, commandId, prefix };
    this.await(token, el.waitSeconds * 1000 + maxDigits * el.interDigitSeconds * 1000 + TIMEOUTS.collectSlackMs);
  }

  collected(el: Collect, raw: string): void {
    // `#` terminates input and is never collected.
    const hash = raw.indexOf('#');
    const digits = (hash >= 0 ? raw.slice(0, hash) : raw).slice(0, el.maxDigits);
    if (el.saveTo) {
      this.d.vars[el.saveTo] = digits;
      if (el.reporting !== 'always') this.d.sensitiveVars[el.saveTo] = el.reporting;
    }
    const shown = el.reporting === 'always' ? digits : el.reporting === 'masked' ? 'xxxx' : undefined;
    const target = Object.prototype.hasOwnProperty.call(el.responses, digits) ? el.responses[digits] : undefined;
    if (target !== undefined) return this.take(el, el.reporting === 'always' ? digits : 'response', target, shown);
    return this.take(el, 'noMatch', el.next.noMatch, shown);
  }

  // --- pause --------------------------------------------------------------------------------
  pause(el: Pause): void {
    const token = this.token();
    this.d.phase = { kind: 'pausing', token };
    this.commands.push({ kind: 'sleep', token, ms: Duration.fromISO(el.duration).toMillis(), reason: `pause ${el.duration}` });
  }

  // --- events -------------------------------------------------------------------------------
  onTelephony(ev: TelephonyEvent): void {
    const el = this.current();
    const phase = this.d.phase;
    if (!el || ev.callId !== this.d.callId) return this.stillWaiting();
    const p = ev.properties;
    const commandId = typeof p.commandId === 'string' ? p.commandId : undefined;

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

    if (ev.type === 'CALL_FINISHED' || ev.type === 'CALL_FAILED') {
      // The far end or the platform ended an established call.
      if (this.d.session !== 'active') return this.stillWaiting();
      this.d.session = 'ended';
      const branch = p.hangupSource === 'ENDPOINT' ? 'hungUp' : 'callEnded';
      if (el.type === 'play' || el.type === 'collect') return this.take(el, branch, (el.next as Record<string, string | undefined>)[branch]);
      return this.stillWaiting();
    }

    if (phase.kind === 'playing' && el.type === 'play' && (ev.type === 'SAY_FINISHED' || ev.type === 'PLAY_FINISHED') && commandId === phase.commandId) {
      const pressed = typeof p.dtmf === 'string' ? p.dtmf : '';
      if (el.interruptible && pressed) {
        this.d.bargeIn = pressed;
        return this.take(el, 'played', el.next.played);
      }
      if (phase.loop < el.loopCount) return this.say(el, phase.loop + 1);
      return this.take(el, 'played', el.next.played);
    }

    if (phase.kind === 'collecting' && el.type === 'collect' && ev.type === 'DTMF_CAPTURED' && commandId === phase.commandId) {
      return this.collected(el, phase.prefix + (typeof p.dtmf === 'string' ? p.dtmf : ''));
    }
    return this.stillWaiting();
  }

  onTimeout(token: number): void {
    const el = this.current();
    const phase = this.d.phase;
    if (!el || !('token' in phase) || phase.token !== token) return this.stillWaiting();
    if (phase.kind === 'dialing' && el.type === 'startOutgoingCall') return this.dialOutcome(el, phase.established ? 'answered' : 'error');
    if (phase.kind === 'playing' && el.type === 'play') {
      // The provider never confirmed the prompt: treat as a technical end of the call.
      this.hangUpIfActive(el.id);
      return this.take(el, 'callEnded', el.next.callEnded);
    }
    if (phase.kind === 'collecting' && el.type === 'collect') return this.collected(el, phase.prefix);
    return this.stillWaiting();
  }

  onTimer(token: number): void {
    const el = this.current();
    const phase = this.d.phase;
    if (!el || !('token' in phase) || phase.token !== token) return this.stillWaiting();
    if (phase.kind === 'retryWait' && el.type === 'startOutgoingCall') return this.dial(el);
    if (phase.kind === 'pausing' && el.type === 'pause') return this.take(el, 'next', el.next);
    return this.stillWaiting();
  }

  /** An event that changes nothing (duplicate, stale, unrelated): keep waiting on the same token. */
  stillWaiting(): void {
    const phase = this.d.phase;
    if (phase.kind === 'dialing' || phase.kind === 'playing' || phase.kind === 'collecting') {
      // The workflow keeps the original deadline for a token it already armed.
      this.await(phase.token, 0);
    }
  }
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

function draft(state: CallState): CallState {
  // Plain JSON data by construction; a deep copy keeps the reducer free of aliasing bugs.
  return JSON.parse(JSON.stringify(state)) as CallState;
}

export function step(flow: Flow, state: CallState, event: FlowEvent): StepResult {
  if (state.phase.kind === 'done') return { state, commands: [] };
  const s = new Step(flow, draft(state), event.at);
  switch (event.type) {
    case 'start':
      if (state.element === null && state.visited.length === 0) s.enter(flow.start);
      break;
    case 'telephony':
      s.onTelephony(event.event);
      break;
    case 'timeout':
      s.onTimeout(event.token);
      break;
    case 'timer':
      s.onTimer(event.token);
      break;
  }
  return { state: s.d, commands: s.commands };
}
