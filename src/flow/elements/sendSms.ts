// sendSms at run time: an action that sends a text message, its text, sender and number rendered.
import type { SendSms } from '../schema.js';
import { actionDone } from './action.js';
import type { ElementRuntime } from './context.js';

export const sendSms: ElementRuntime<SendSms> = {
  enter(ctx, el) {
    ctx.action({
      type: 'sendSms',
      elementId: el.id,
      ...(el.from ? { from: ctx.t(el.from) } : {}),
      to: ctx.t(el.to),
      text: ctx.t(el.text),
    });
  },

  onActionResult: (ctx, el, result) => actionDone(ctx, el, result.ok, result.error),
};
