// hangUp at run time: ends the call session where it is live; accepted anywhere, a no-op where the
// session has ended already. Not a branch of the trail: the hang-up itself is not a decision.
import type { HangUp } from '../schema.js';
import type { ElementRuntime } from './context.js';

export const hangUp: ElementRuntime<HangUp> = {
  enter(ctx, el) {
    ctx.hangUpIfActive(el.id);
    return ctx.take(el, 'next', el.next, undefined, false);
  },
};
