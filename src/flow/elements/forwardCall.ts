// forwardCall at run time: rings a second leg and connects the caller to it; once connected, the
// flow has left the call session.
import type { ForwardCall } from '../schema.js';
import { TIMEOUTS, hasOwn, type ElementRuntime, type StepContext } from './context.js';
import { classifyFailure } from './failures.js';

type ForwardOutcome = 'forwarded' | 'notForwarded' | 'noAnswer' | 'busy' | 'declined';

async function forwardOutcome(ctx: StepContext, el: ForwardCall, outcome: ForwardOutcome): Promise<void> {
  if (outcome === 'forwarded') {
    // The end user now talks to the destination: the flow has left the call session.
    ctx.state.session = 'ended';
    return ctx.take(el, 'forwarded', el.next.forwarded);
  }
  // Specific failure branches exist only when configured; otherwise "not forwarded".
  const branch = outcome !== 'notForwarded' && hasOwn(el.next, outcome) ? outcome : 'notForwarded';
  return ctx.take(el, branch, el.next[branch]);
}

export const forwardCall: ElementRuntime<ForwardCall> = {
  enter(ctx, el) {
    const d = ctx.state;
    d.forwards += 1;
    const token = ctx.token();
    const commandId = ctx.commandId();
    // The second leg's id keeps the owning workflow's prefix, so the bridge routes its events here.
    const legCallId = `${d.callId ?? ''}.f${d.forwards}`;
    ctx.send({
      action: 'forward',
      callId: d.callId ?? '',
      legCallId,
      commandId,
      elementId: el.id,
      from: ctx.t(el.from),
      to: ctx.t(el.to),
      ringSeconds: el.ringSeconds,
      ...(d.hints ? { hints: d.hints } : {}),
    });
    d.phase = { kind: 'forwarding', token, commandId, legCallId };
    ctx.await(token, el.ringSeconds * 1000 + TIMEOUTS.forwardSlackMs);
  },

  // The second leg: its answer connects the caller, its end says why not.
  onLegEvent(ctx, el, ev) {
    const phase = ctx.state.phase;
    if (phase.kind !== 'forwarding' || ev.callId !== phase.legCallId) return ctx.stillWaiting();
    if (ev.type === 'CALL_ESTABLISHED') return forwardOutcome(ctx, el, 'forwarded');
    if (ev.type === 'CALL_FAILED' || ev.type === 'CALL_FINISHED') {
      const o = classifyFailure(ev.properties.errorCode);
      return forwardOutcome(ctx, el, o === 'noAnswer' || o === 'busy' || o === 'declined' ? o : 'notForwarded');
    }
    return ctx.stillWaiting();
  },

  // Before the forward completed: "call ended" whoever hung up (seed).
  onCallEnded: (ctx, el) => ctx.take(el, 'callEnded', el.next.callEnded),

  onTimeout(ctx, el, phase) {
    if (phase.kind === 'forwarding') return forwardOutcome(ctx, el, 'noAnswer');
    return ctx.stillWaiting();
  },
};
