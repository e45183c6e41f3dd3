// Drives the pure interpreter against the simulator engine in memory: no Temporal, no NATS.
// Time is virtual: sleeps and timeouts advance `now`; planned events arrive in delay order.
import type { Flow, FlowInput } from '../../src/flow/schema.js';
import { parseFlow } from '../../src/flow/validate.js';
import {
  initialState,
  step,
  type ActionRequest,
  type CallResult,
  type CallState,
  type FlowCommand,
  type FlowEvent,
  type Recipient,
} from '../../src/flow/interpreter.js';
import { SimulatorEngine, personaSchema, type PlannedEvent } from '../../src/telephony/simulator.js';
import type { TelephonyCommand, TelephonyEvent } from '../../src/telephony/contract.js';

export interface Drive {
  result: CallResult;
  /** Commands the provider ran, in order: a prompt's follow-up (`then`) right after its prompt. */
  commands: TelephonyCommand[];
  /** Commands as the call sent them (follow-ups inside their prompts). */
  sent: TelephonyCommand[];
  actions: ActionRequest[];
  sleeps: Array<{ ms: number; reason: string }>;
  state: CallState;
  elapsedMs: number;
  engine: SimulatorEngine;
}

export const START = Date.parse('2026-11-23T09:00:00Z');

export function flowOf(doc: FlowInput): Flow {
  return parseFlow(doc);
}

export interface DriveOptions {
  recipient?: Partial<Recipient>;
  profile?: Record<string, unknown>;
  seed?: number;
  /** Start time (epoch ms). */
  at?: number;
  tamper?: (events: TelephonyEvent[]) => TelephonyEvent[];
  /** Result of each non-IVR action; default: success without data. */
  action?: (request: ActionRequest) => { ok: boolean; data?: unknown; error?: string };
  /** Drive an inbound call: the person calls `to`. */
  incoming?: { to: string; from?: string };
  maxSteps?: number;
}

export async function drive(flow: Flow, persona: unknown = {}, opts: DriveOptions = {}): Promise<Drive> {
  const engine = new SimulatorEngine(undefined, personaSchema.parse({}), () => new Date(now));
  let now = opts.at ?? START;
  const started = now;
  const recipient: Recipient = { id: 'r1', phone: '+385915550001', firstName: 'Ana', ...opts.recipient };
  let state = initialState({
    workflowId: 'call:test:r1',
    recipient,
    seed: opts.seed ?? 42,
    flow,
    hints: { persona },
    ...(opts.profile ? { profile: opts.profile } : {}),
  });
  const commands: TelephonyCommand[] = [];
  const sent: TelephonyCommand[] = [];
  const actions: ActionRequest[] = [];
  const sleeps: Array<{ ms: number; reason: string }> = [];
  let pending: Array<PlannedEvent & { due: number }> = [];
  let event: FlowEvent = { type: 'start', at: now };
  if (opts.incoming) {
    const callId = 'call:test:r1~in';
    event = { type: 'incoming', at: now, callId, to: opts.incoming.to, from: opts.incoming.from ?? recipient.phone };
    engine.incomingCall(callId, opts.incoming.from ?? recipient.phone, opts.incoming.to, persona);
  }
  let armed: { token: number; deadline: number } | undefined;
  for (let i = 0; i < (opts.maxSteps ?? 10_000); i++) {
    const out = await step(flow, state, event);
    state = out.state;
    let next: FlowEvent | undefined;
    for (const c of out.commands as FlowCommand[]) {
      if (c.kind === 'telephony') {
        sent.push(c.command);
        commands.push(c.command);
        const planned = engine.plan(c.command);
        // A prompt's follow-up is listed after the prompt when the provider ran it (not when the call ended first).
        const then = c.command.action === 'say' || c.command.action === 'play' ? c.command.then : undefined;
        if (then && planned.some((p) => p.event.properties.commandId === then.commandId)) commands.push(then);
        const events = opts.tamper ? opts.tamper(planned.map((p) => p.event)) : planned.map((p) => p.event);
        for (const ev of events)
          pending.push({ delayMs: 0, event: ev, due: now + (planned.find((p) => p.event.id === ev.id)?.delayMs ?? 0) });
      } else if (c.kind === 'action') {
        actions.push(c.request);
        const r = opts.action?.(c.request) ?? { ok: true };
        next = { type: 'actionResult', token: c.token, at: now, ...r };
      } else if (c.kind === 'sleep') {
        sleeps.push({ ms: c.ms, reason: c.reason });
        now += c.ms;
        next = { type: 'timer', token: c.token, at: now };
      } else if (c.kind === 'awaitEvent') {
        if (next?.type === 'actionResult') continue;
        if (armed?.token !== c.token) armed = { token: c.token, deadline: now + c.timeoutMs };
        pending.sort((a, b) => a.due - b.due);
        const first = pending[0];
        if (first && first.due <= armed.deadline) {
          pending = pending.slice(1);
          now = Math.max(now, first.due);
          next = { type: 'telephony', event: first.event, at: now };
        } else {
          now = armed.deadline;
          next = { type: 'timeout', token: c.token, at: now };
        }
      } else {
        return { result: c.result, commands, sent, actions, sleeps, state, elapsedMs: now - started, engine };
      }
    }
    if (!next) throw new Error(`no wait after step in ${state.element}`);
    event = next;
  }
  throw new Error('call did not finish');
}
