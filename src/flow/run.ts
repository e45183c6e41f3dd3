// The flow runner: feeds the interpreter events and carries out the commands it returns, through a
// host that says how (a Temporal workflow: local activities, timers and signal waits; the unit-test
// driver: a simulated provider and virtual time). One loop, so what the tests run is what calls run.
// Pure: no clock, no I/O of its own.
import type { TelephonyCommand, TelephonyEvent } from '../telephony/contract.js';
import { startExpressionBudget } from './expressions.js';
import { step, type ActionRequest, type CallResult, type CallState, type FlowEvent } from './interpreter.js';
import type { Flow } from './schema.js';

/** A wait for the provider's next event, as armed by an `awaitEvent` command. */
export interface ArmedWait {
  token: number;
  /** When the wait times out (epoch ms). */
  deadline: number;
  /** The command the wait is for: asked again (idempotent) before a timeout is acted on. */
  command?: TelephonyCommand;
  /** Set by a host that gave the wait a grace after a late timer: the end of the grace. */
  graceUntil?: number;
  /** Set by a host once it asked the provider again. */
  confirmed?: boolean;
}

export interface ActionResult {
  ok: boolean;
  data?: unknown;
  error?: string;
}

export interface FlowHost {
  now(): number;
  /**
   * Send a telephony command. A host may end the call instead (the do-not-call gate before a first
   * dial): it returns the result the call ends with, and the command is not sent.
   */
  send(command: TelephonyCommand): Promise<CallResult | undefined>;
  runAction(request: ActionRequest): Promise<ActionResult>;
  sleep(ms: number, reason: string): Promise<void>;
  /** The call's next event, or undefined when the wait's deadline passed without one. */
  nextEvent(wait: ArmedWait): Promise<TelephonyEvent | undefined>;
  /**
   * The flow finished; `awaitLegEnd`: the leg the last step hung up, whose end the call waits for.
   * The host may return the result with what came with the end (a whole-call recording).
   */
  finish(result: CallResult, awaitLegEnd: string | undefined): Promise<CallResult | void>;
  /** After every step: the state so far (progress, status queries). */
  stepped?(state: CallState): void;
}

export interface FlowRun {
  result: CallResult;
  state: CallState;
  /** Whether the host ended the call instead of a command (the gate), rather than the flow. */
  endedByHost: boolean;
}

export async function runFlow(flow: Flow, initial: CallState, first: FlowEvent, host: FlowHost): Promise<FlowRun> {
  let state = initial;
  let event = first;
  let armed: ArmedWait | undefined;
  for (;;) {
    // The expressions of one step share a step budget: however many elements a flow visits
    // between two waits, the activation stays far inside the worker's deadlock timeout.
    startExpressionBudget();
    const out = await step(flow, state, event);
    state = out.state;
    host.stepped?.(state);
    let following: FlowEvent | undefined;
    // The command the step sent last: what a wait of the same step is for, unless it names its own.
    let sent: TelephonyCommand | undefined;
    for (const cmd of out.commands) {
      switch (cmd.kind) {
        case 'telephony': {
          const ended = await host.send(cmd.command);
          if (ended) return { result: ended, state, endedByHost: true };
          sent = cmd.command;
          break;
        }
        case 'action': {
          const res = await host.runAction(cmd.request);
          following = {
            type: 'actionResult',
            token: cmd.token,
            at: host.now(),
            ok: res.ok,
            ...(res.data !== undefined ? { data: res.data } : {}),
            ...(res.error ? { error: res.error } : {}),
          };
          break;
        }
        case 'sleep':
          await host.sleep(cmd.ms, cmd.reason);
          following = { type: 'timer', token: cmd.token, at: host.now() };
          break;
        case 'awaitEvent':
        case 'continueWaiting': {
          // A token keeps the deadline it was first armed with.
          if (cmd.kind === 'awaitEvent' && armed?.token !== cmd.token) {
            const command = cmd.command ?? sent;
            armed = { token: cmd.token, deadline: host.now() + cmd.timeoutMs, ...(command ? { command } : {}) };
          } else if (armed?.token !== cmd.token) {
            throw new Error(`the interpreter continued a wait (token ${cmd.token}) that was never armed`);
          }
          const ev = await host.nextEvent(armed);
          following = ev
            ? { type: 'telephony', event: ev, at: host.now() }
            : { type: 'timeout', token: cmd.token, at: host.now() };
          break;
        }
        case 'finish': {
          const result = (await host.finish(cmd.result, cmd.awaitLegEnd)) ?? cmd.result;
          return { result, state, endedByHost: false };
        }
      }
    }
    if (!following) throw new Error(`interpreter produced no wait in element ${state.element ?? '-'}`);
    event = following;
  }
}
