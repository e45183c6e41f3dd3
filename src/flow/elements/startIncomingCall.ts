// startIncomingCall at run time: answers the inbound call it is the entry of; the session starts
// when the provider confirms the answer.
import type { StartIncomingCall } from '../schema.js';
import { TIMEOUTS, type ElementRuntime, type StepContext } from './context.js';

/** The call arrived for this element's number (the interpreter has made it the current element). */
export function answer(ctx: StepContext, el: StartIncomingCall, callId: string): void {
  const d = ctx.state;
  d.direction = 'inbound';
  d.callId = callId;
  const token = ctx.token();
  const commandId = ctx.commandId();
  ctx.send({ action: 'answer', callId, commandId, elementId: el.id });
  d.phase = { kind: 'answering', token, commandId };
  ctx.await(token, TIMEOUTS.answerMs);
}

export const startIncomingCall: ElementRuntime<StartIncomingCall> = {
  // Reached only as the entry of an inbound call (answered by `answer`).
  enter: (ctx, el) => ctx.take(el, 'next', el.next),

  onEvent(ctx, el, ev) {
    const d = ctx.state;
    if (d.phase.kind !== 'answering') return ctx.otherEvent(el, ev);
    if (ev.type === 'CALL_ESTABLISHED') {
      d.session = 'active';
      return ctx.take(el, 'next', el.next);
    }
    if (ev.type === 'CALL_FINISHED' || ev.type === 'CALL_FAILED') {
      d.session = 'ended';
      return ctx.finish('inbound', 'the caller hung up before the call was answered');
    }
    return ctx.stillWaiting();
  },

  onTimeout(ctx, _el, phase) {
    if (phase.kind !== 'answering') return ctx.stillWaiting();
    ctx.state.session = 'ended';
    return ctx.finish('failed', 'the provider did not confirm answering the inbound call');
  },
};
