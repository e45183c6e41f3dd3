// The flow interpreter: a pure reducer `step(flow, state, event) → { state, commands }`.
// No I/O, no clock, no randomness of its own: time comes in on events (`at`), randomness from a
// seeded PRNG kept in the state, so a workflow replays it exactly and tests run it without Temporal.
// It is async only because JSONata evaluates asynchronously; it never waits on anything external.
//
// This file keeps navigation (entering elements, taking branches, the transition guard), the call
// session rules, the routing of events to the element that waits for them, and finishing (with the
// result redacted). What each element does lives in its module, src/flow/elements/<type>.ts.
import { mulberry32 } from './random.js';
import type { TelephonyCommand, TelephonyEvent } from '../telephony/contract.js';
import type { Collect, FlowElement, ForwardCall, Flow, Play, RecordVoicemail, StartIncomingCall } from './schema.js';
import { render } from './template.js';
import { evaluate } from './expressions.js';
import { Redactor, type Sensitive } from './redact.js';
import { IVR_TYPES } from './elements/session.js';
import { answer, runtimeOf, type StepContext } from './elements/index.js';
import type {
  ActionRequest,
  CallOutcome,
  CallResult,
  CallState,
  FlowCommand,
  FlowEvent,
  Recipient,
  SleepResume,
  StepResult,
} from './state.js';

export type {
  ActionRequest,
  CallOutcome,
  CallResult,
  CallState,
  DialOutcome,
  FlowCommand,
  FlowEvent,
  HttpResponseData,
  Recipient,
  Recording,
  StepResult,
  TrailEntry,
} from './state.js';
export { DEFAULT_VALIDITY_MS, TIMEOUTS } from './elements/index.js';

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
  /** A campaign placed the call: redials ask it for their slots. */
  dialSlots?: boolean;
}): CallState {
  const vars: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(input.flow.variables)) if (v.default !== undefined) vars[name] = v.default;
  return {
    workflowId: input.workflowId,
    recipient: input.recipient,
    ...(input.dialSlots ? { dialSlots: true } : {}),
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

type IvrElement = Play | Collect | ForwardCall | RecordVoicemail;
const isIvr = (el: FlowElement): el is IvrElement => IVR_TYPES.has(el.type);

class Step implements StepContext {
  readonly commands: FlowCommand[] = [];
  private transitions = 0;
  private readonly elements: Map<string, FlowElement>;
  /** The leg this step hung up (or whose hang-up a prompt's follow-up runs): its end is awaited. */
  private hungUpLeg: string | undefined;
  /** This step learnt that the leg has ended already: there is no end left to await. */
  private hasLegEnded = false;
  /** Built from the state's sensitive inputs when first needed, dropped when one is added. */
  private redactor: Redactor | undefined;

  constructor(
    readonly flow: Flow,
    readonly state: CallState,
    readonly at: number,
  ) {
    this.elements = new Map(flow.elements.map((e) => [e.id, e]));
  }

  // --- what element modules use ---------------------------------------------------------------
  byId(id: string): FlowElement | undefined {
    return this.elements.get(id);
  }
  private data() {
    const d = this.state;
    return {
      recipient: d.recipient,
      vars: d.vars,
      profile: d.profile,
      call: { id: d.callId ?? null, dials: d.dials, attempt: d.attempt, direction: d.direction ?? null },
    };
  }
  t(template: string): string {
    return render(template, this.data());
  }
  async expr(source: string, data: unknown = this.data()): Promise<unknown> {
    return evaluate(source, data, { now: this.at, random: () => nextRandom(this.state) });
  }
  random(): number {
    return nextRandom(this.state);
  }
  token(): number {
    return ++this.state.seq;
  }
  commandId(): string {
    return `${this.state.callId ?? this.state.workflowId}#${this.state.seq}`;
  }
  send(command: TelephonyCommand): void {
    this.commands.push({ kind: 'telephony', command });
  }
  await(token: number, timeoutMs: number, command?: TelephonyCommand): void {
    this.commands.push({ kind: 'awaitEvent', token, timeoutMs, ...(command ? { command } : {}) });
  }
  action(request: ActionRequest): void {
    const token = this.token();
    this.state.phase = { kind: 'acting', token };
    this.commands.push({ kind: 'action', token, request });
  }
  sleep(ms: number, reason: string, resume: SleepResume): void {
    const token = this.token();
    this.state.phase = { kind: 'sleeping', token, resume };
    this.commands.push({ kind: 'sleep', token, ms: Math.max(1, Math.round(ms)), reason });
  }
  warn(element: string, message: string): void {
    this.state.warnings.push({ element, message: this.redact().text(message) });
  }
  sensitive(digits: string, mode: Sensitive): void {
    if (digits === '') return;
    const inputs = (this.state.sensitiveInputs ??= []);
    if (inputs.some((i) => i.digits === digits && i.mode === mode)) return;
    inputs.push({ digits, mode });
    this.redactor = undefined;
  }
  legEnded(): void {
    this.hasLegEnded = true;
  }
  current(): FlowElement | undefined {
    return this.state.element ? this.elements.get(this.state.element) : undefined;
  }

  // --- navigation ---------------------------------------------------------------------------
  async enter(id: string): Promise<void> {
    const d = this.state;
    const el = this.elements.get(id);
    if (!el) return this.fail(`element "${id}" does not exist`);
    const endsPath = el.type === 'hangUp' && !el.next;
    if (!endsPath && ++this.transitions > MAX_TRANSITIONS_PER_STEP) {
      const message = `more than ${MAX_TRANSITIONS_PER_STEP} elements visited without waiting: check the flow for a cycle`;
      this.warn(d.element ?? id, message);
      return this.fail(message);
    }
    // Keys typed during a prompt belong to the collect right after it, and to no later element.
    const typedAhead = d.bargeIn ?? '';
    delete d.bargeIn;
    d.element = id;
    d.visited.push(id);
    // Session rules: no call inside a call; an IVR element where the call has ended takes `callEnded`.
    if (el.type === 'startOutgoingCall' && d.session === 'active')
      return this.fail(`startOutgoingCall "${el.id}" inside an active call session`);
    if (isIvr(el) && d.session !== 'active') return this.take(el, 'callEnded', el.next.callEnded);
    return runtimeOf(el).enter(this, el, typedAhead);
  }

  /** Follow a branch; a branch left open ends the path (closing the call session if one is active). */
  async take(
    el: FlowElement,
    branch: string,
    target: string | null | undefined,
    input?: string,
    record = true,
  ): Promise<void> {
    if (record) this.state.trail.push({ element: el.id, branch, ...(input !== undefined ? { input } : {}) });
    if (target) return this.enter(target);
    this.hangUpIfActive(el.id);
    this.finish();
  }

  /**
   * The call cannot go on: it ends `failed`, and a call still live is hung up first, so no leg is
   * left up behind a finished workflow.
   */
  fail(message: string): void {
    this.hangUpIfActive(this.state.element ?? '');
    this.finish('failed', message);
  }

  hangUpIfActive(elementId: string): void {
    const d = this.state;
    if (d.session !== 'active' || !d.callId) return;
    if (!this.hasLegEnded) this.hungUpLeg = d.callId;
    d.session = 'ended';
    if (d.queuedHangup) {
      delete d.queuedHangup;
      return;
    }
    this.token();
    this.send({ action: 'hangup', callId: d.callId, commandId: this.commandId(), elementId });
  }

  // --- finishing ----------------------------------------------------------------------------
  private redact(): Redactor {
    if (!this.redactor) {
      this.redactor = new Redactor();
      for (const input of this.state.sensitiveInputs ?? []) this.redactor.add(input.digits, input.mode);
    }
    return this.redactor;
  }

  finish(outcome?: CallOutcome, error?: string): void {
    const d = this.state;
    const derived: CallOutcome =
      d.direction === 'inbound' ? 'inbound' : d.lastDial === 'error' ? 'failed' : (d.lastDial ?? 'notCalled');
    if (!error && !outcome && derived === 'failed') error = d.failure;
    // Input of masked and hidden collects shows nowhere in the result: the collect's own variable is
    // masked whole or left out, and wherever else the flow copied or rendered the digits (a derived
    // variable, the tracking payload, an expression's error) they are replaced by value.
    const redactor = this.redact();
    const variables: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(d.vars)) {
      const mode = d.sensitiveVars[k];
      if (mode === 'hidden') continue;
      variables[k] = mode === 'masked' ? 'xxxx' : redactor.value(v);
    }
    const result: CallResult = {
      outcome: outcome ?? derived,
      dials: d.dials,
      // Element ids, branch names and each collect's input as its reporting allows: nothing to redact.
      trail: d.trail,
      visited: d.visited,
      variables,
      recordings: d.recordings,
      ...(d.dataPayload ? { dataPayload: redactor.value(d.dataPayload) } : {}),
      warnings: d.warnings.map((w) => ({ ...w, message: redactor.text(w.message) })),
      ...(error ? { error: redactor.text(error) } : {}),
    };
    d.phase = { kind: 'done' };
    d.element = null;
    d.result = result;
    this.commands.push({ kind: 'finish', result, ...(this.hungUpLeg ? { awaitLegEnd: this.hungUpLeg } : {}) });
  }

  // --- events ---------------------------------------------------------------------------------
  async incoming(ev: Extract<FlowEvent, { type: 'incoming' }>): Promise<void> {
    const el = this.flow.elements.find(
      (e): e is StartIncomingCall =>
        e.type === 'startIncomingCall' && e.number.replace(/^\+/, '') === ev.to.replace(/^\+/, ''),
    );
    if (!el) return this.finish('failed', `no startIncomingCall element for number ${ev.to}`);
    this.state.element = el.id;
    this.state.visited.push(el.id);
    answer(this, el, ev.callId);
  }

  async onTelephony(ev: TelephonyEvent): Promise<void> {
    const el = this.current();
    if (!el) return this.stillWaiting();
    const runtime = runtimeOf(el);
    if (ev.callId !== this.state.callId)
      // Another leg of the call (a forward's destination): only its element knows what it means.
      return runtime.onLegEvent ? runtime.onLegEvent(this, el, ev) : this.stillWaiting();
    return runtime.onEvent ? runtime.onEvent(this, el, ev) : this.otherEvent(el, ev);
  }

  async otherEvent(el: FlowElement, ev: TelephonyEvent): Promise<void> {
    if (ev.type !== 'CALL_FINISHED' && ev.type !== 'CALL_FAILED') return this.stillWaiting();
    // The far end or the platform ended an established call.
    if (this.state.session !== 'active') return this.stillWaiting();
    this.state.session = 'ended';
    const branch = ev.properties.hangupSource === 'ENDPOINT' ? 'hungUp' : 'callEnded';
    const runtime = runtimeOf(el);
    // Without a handler an action or pause is running: it completes, and the session is simply over.
    return runtime.onCallEnded ? runtime.onCallEnded(this, el, branch) : this.stillWaiting();
  }

  async onTimeout(token: number, redialAtOnce = false): Promise<void> {
    const el = this.current();
    const phase = this.state.phase;
    if (!el || !('token' in phase) || phase.token !== token) return this.stillWaiting();
    const runtime = runtimeOf(el);
    return runtime.onTimeout ? runtime.onTimeout(this, el, phase, redialAtOnce) : this.stillWaiting();
  }

  async onTimer(token: number): Promise<void> {
    const el = this.current();
    const phase = this.state.phase;
    if (!el || phase.kind !== 'sleeping' || phase.token !== token) return this.stillWaiting();
    const runtime = runtimeOf(el);
    return runtime.onTimer ? runtime.onTimer(this, el, phase) : this.stillWaiting();
  }

  async onActionResult(ev: Extract<FlowEvent, { type: 'actionResult' }>): Promise<void> {
    const el = this.current();
    const phase = this.state.phase;
    if (!el || phase.kind !== 'acting' || phase.token !== ev.token) return this.stillWaiting();
    return runtimeOf(el).onActionResult?.(this, el, ev);
  }

  /** An event that changes nothing (duplicate, stale, unrelated): the current wait goes on. */
  stillWaiting(): void {
    const phase = this.state.phase;
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
  return { state: s.state, commands: s.commands };
}
