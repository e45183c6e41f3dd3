// updateProfile at run time: evaluates the attributes, applies them to the call's profile at once
// (later placeholders see them) and stores them through an action.
import type { UpdateProfile } from '../schema.js';
import { actionDone } from './action.js';
import type { ElementRuntime } from './context.js';

export const updateProfile: ElementRuntime<UpdateProfile> = {
  async enter(ctx, el) {
    const attributes: Record<string, unknown> = {};
    for (const [k, source] of Object.entries(el.attributes)) {
      try {
        attributes[k] = await ctx.expr(source);
      } catch (err) {
        ctx.warn(el.id, (err as Error).message);
      }
    }
    Object.assign(ctx.state.profile, attributes);
    ctx.action({ type: 'updateProfile', elementId: el.id, recipientId: ctx.state.recipient.id, attributes });
  },

  onActionResult: (ctx, el, result) => actionDone(ctx, el, result.ok, result.error),
};
