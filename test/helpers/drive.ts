// Drives the pure interpreter against the simulator engine in memory: no Temporal, no NATS.
// Time is virtual: sleeps and timeouts advance `now`; planned events arrive in delay order.
import type { Flow, FlowInput } from '../../src/flow/schema.js';
import { parseFlow } from '../../src/flow/validate.js';
import { initialState, step, type CallResult, type CallState, type FlowCommand, type FlowEvent, type Recipient } from '../../src/flow/interpreter.js';
import { SimulatorEngine, personaSchema, type PlannedEvent } from '../../src/telephony/simulator.js';
import type { TelephonyCommand, TelephonyEvent } from '../../src/telephony/contract.js';

export interface Drive {
  result: CallResult;
  commands: TelephonyCommand[];
  sleeps: Array<{ ms: number; reason: string }>;
  state: CallState;
  elapsedMs: number;
  engine: SimulatorEngine;
}

export const START = Date.parse('2026-11-23T09:00:00Z');

export function flowOf(doc: FlowInput): Flow {
  return parseFlow(doc);
}

export function drive(
  flow: Flow,
  persona: unknown = {},
  opts: { recipient?: Partial<Recipient>; seed?: number; tamper?: (events: TelephonyEvent[]) => TelephonyEvent[]; maxSteps?: number } = {},
): Drive {
  const engine = new SimulatorEngine(undefined, personaSchema.parse({}), () => new Date(now));
  let now = START;
  const recipient: Recipient = { id: 'r1', phone: '+385915550001', firstName: 'Ana', ...opts.recipient };
  let state = initialState({ workflowId: 'call:test:r1', recipient, seed: opts.seed ?? 42, flow, hints: { persona } });
  const commands: TelephonyCommand[] = [];
  const sleeps: Array<{ ms: number; reason: string }> = [];
  let pending: Array<PlannedEvent & { due: number }> = [];
  let event: FlowEvent = { type: 'start', at: now };
  let armed: { token: number; deadline: number } | undefined;
  for (let i = 0; i < (opts.maxSteps ?? 10_000); i++) {
    const out = step(flow, state, event);
    state = out.state;
    let next: FlowEvent | undefined;
    for (const c of out.commands as FlowCommand[]) {
      if (c.kind === 'telephony') {
        commands.push(c.command);
        const planned = engine.plan(c.command);
        const events = opts.tamper ? opts.tamper(planned.map((p) => p.event)) : planned.map((p) => p.event);
        for (const ev of events) pending.push({ delayMs: 0, event: ev, due: now + (planned.find((p) => p.event.id === ev.id)?.delayMs ?? 0) });
      } else if (c.kind === 'sleep') {
        sleeps.push({ ms: c.ms, reason: c.reason });
        now += c.ms;
        next = { type: 'timer', token: c.token, at: now };
      } else if (c.kind === 'awaitEvent') {
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
        return { result: c.result, commands, sleeps, state, elapsedMs: now - START, engine };
      }
    }
    if (!next) throw new Error(`no wait after step in ${state.element}`);
    event = next;
  }
  throw new Error('call did not finish');
}
