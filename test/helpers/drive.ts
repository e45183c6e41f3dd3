// Drives a flow with the workflows' runner (runFlow) against the simulator engine in memory: no
// Temporal, no NATS.
// Time is virtual: sleeps and timeouts advance `now`; planned events arrive in delay order.
import type { Flow, FlowInput } from '../../src/flow/schema.js';
import { parseFlow } from '../../src/flow/validate.js';
import {
  initialState,
  type ActionRequest,
  type CallResult,
  type CallState,
  type FlowEvent,
  type Recipient,
} from '../../src/flow/interpreter.js';
import { runFlow } from '../../src/flow/run.js';
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
  /** A campaign placed the call: redials ask for their slots (answered by `action`). */
  dialSlots?: boolean;
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
    ...(opts.dialSlots ? { dialSlots: true } : {}),
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
  // The same runner the workflows use; this host answers from the simulator in virtual time.
  let steps = 0;
  const run = await runFlow(flow, state, event, {
    now: () => now,
    async send(command) {
      sent.push(command);
      commands.push(command);
      const planned = engine.plan(command);
      // A prompt's follow-up is listed after the prompt when the provider ran it (not when the call ended first).
      const then = command.action === 'say' || command.action === 'play' ? command.then : undefined;
      if (then && planned.some((p) => p.event.properties.commandId === then.commandId)) commands.push(then);
      const events = opts.tamper ? opts.tamper(planned.map((p) => p.event)) : planned.map((p) => p.event);
      for (const ev of events)
        pending.push({ delayMs: 0, event: ev, due: now + (planned.find((p) => p.event.id === ev.id)?.delayMs ?? 0) });
      return undefined;
    },
    async runAction(request) {
      actions.push(request);
      return opts.action?.(request) ?? { ok: true };
    },
    async sleep(ms, reason) {
      sleeps.push({ ms, reason });
      now += ms;
    },
    async nextEvent(wait) {
      pending.sort((a, b) => a.due - b.due);
      const first = pending[0];
      if (first && first.due <= wait.deadline) {
        pending = pending.slice(1);
        now = Math.max(now, first.due);
        return first.event;
      }
      now = Math.max(now, wait.deadline);
      return undefined;
    },
    async finish() {},
    stepped(next) {
      state = next;
      if (++steps > (opts.maxSteps ?? 10_000)) throw new Error('call did not finish');
    },
  });
  return { result: run.result, commands, sent, actions, sleeps, state, elapsedMs: now - started, engine };
}
