// collect at run time: captures keypad input (taking keys typed during the prompt before it, and a
// capture the prompt's follow-up started already), matches it against the responses, and keeps the
// digits of masked and hidden input out of what the call result shows.
import type { CaptureDtmfCommand } from '../../telephony/contract.js';
import type { Collect } from '../schema.js';
import { TIMEOUTS, hasOwn, type ElementRuntime, type StepContext } from './context.js';

/** The capture of `el`; `prefix`: digits typed already, so the rest is waited for as between digits. */
export function captureCommand(ctx: StepContext, el: Collect, commandId: string, prefix: string): CaptureDtmfCommand {
  return {
    action: 'captureDtmf',
    callId: ctx.state.callId ?? '',
    commandId,
    elementId: el.id,
    maxDigits: el.maxDigits - prefix.length,
    terminator: '#',
    firstDigitTimeoutMs: (prefix ? el.interDigitSeconds : el.waitSeconds) * 1000,
    interDigitTimeoutMs: el.interDigitSeconds * 1000,
  };
}

/** The longest a capture of `digits` digits for `el` can take by its own timeouts. */
export function collectWaitMs(el: Collect, digits: number): number {
  return el.waitSeconds * 1000 + digits * el.interDigitSeconds * 1000;
}

async function collected(ctx: StepContext, el: Collect, raw: string): Promise<void> {
  const d = ctx.state;
  // `#` terminates input and is never collected.
  const hash = raw.indexOf('#');
  const digits = (hash >= 0 ? raw.slice(0, hash) : raw).slice(0, el.maxDigits);
  if (el.reporting !== 'always') ctx.sensitive(digits, el.reporting);
  if (el.saveTo) {
    d.vars[el.saveTo] = digits;
    if (el.reporting !== 'always') d.sensitiveVars[el.saveTo] = el.reporting;
  }
  const shown = el.reporting === 'always' ? digits : el.reporting === 'masked' ? 'xxxx' : undefined;
  const target = hasOwn(el.responses, digits) ? el.responses[digits] : undefined;
  if (target !== undefined) return ctx.take(el, el.reporting === 'always' ? digits : 'response', target, shown);
  return ctx.take(el, 'noMatch', el.next.noMatch, shown);
}

export const collect: ElementRuntime<Collect> = {
  /** `typedAhead`: keys typed during the interruptible prompt that led here. */
  enter(ctx, el, typedAhead) {
    const d = ctx.state;
    const prefix = typedAhead;
    const queued = d.queuedCapture?.elementId === el.id ? d.queuedCapture : undefined;
    delete d.queuedCapture;
    if (queued) {
      // The prompt's follow-up is capturing already (with any keys that interrupted the prompt).
      if (queued.digits !== undefined) return collected(ctx, el, queued.digits);
      if (queued.ended) return ctx.otherEvent(el, queued.ended);
      const token = ctx.token();
      d.phase = { kind: 'collecting', token, commandId: queued.command.commandId, prefix: '' };
      return ctx.await(token, collectWaitMs(el, el.maxDigits) + TIMEOUTS.collectSlackMs, queued.command);
    }
    if (prefix.length >= el.maxDigits || prefix.includes('#')) return collected(ctx, el, prefix);
    const token = ctx.token();
    const command = captureCommand(ctx, el, ctx.commandId(), prefix);
    ctx.send(command);
    d.phase = { kind: 'collecting', token, commandId: command.commandId, prefix };
    ctx.await(token, collectWaitMs(el, el.maxDigits - prefix.length) + TIMEOUTS.collectSlackMs);
  },

  onEvent(ctx, el, ev) {
    const phase = ctx.state.phase;
    const p = ev.properties;
    if (phase.kind === 'collecting' && ev.type === 'DTMF_CAPTURED' && p.commandId === phase.commandId)
      return collected(ctx, el, phase.prefix + (typeof p.dtmf === 'string' ? p.dtmf : ''));
    return ctx.otherEvent(el, ev);
  },

  onCallEnded: (ctx, el, branch) => ctx.take(el, branch, el.next[branch]),

  onTimeout(ctx, el, phase) {
    if (phase.kind === 'collecting') return collected(ctx, el, phase.prefix);
    return ctx.stillWaiting();
  },
};
