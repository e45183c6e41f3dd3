// condition at run time: the first condition whose expression is truthy decides the branch.
import type { Condition } from '../schema.js';
import { truthy } from '../expressions.js';
import type { ElementRuntime } from './context.js';

export const condition: ElementRuntime<Condition> = {
  async enter(ctx, el) {
    for (const [i, c] of el.conditions.entries()) {
      let v: unknown;
      try {
        v = await ctx.expr(c.if);
      } catch (err) {
        // A failing condition counts as false; the call goes on and the problem is reported.
        ctx.warn(el.id, (err as Error).message);
        continue;
      }
      if (truthy(v)) return ctx.take(el, `conditions[${i}]`, c.next);
    }
    return ctx.take(el, 'else', el.else);
  },
};
