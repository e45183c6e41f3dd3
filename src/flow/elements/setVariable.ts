// setVariable at run time: the expression's value becomes the variable (a missing value removes it; an
// expression that fails leaves it as it was, with a warning).
import type { SetVariable } from '../schema.js';
import type { ElementRuntime } from './context.js';

export const setVariable: ElementRuntime<SetVariable> = {
  async enter(ctx, el) {
    try {
      const v = await ctx.expr(el.value);
      if (v === undefined) delete ctx.state.vars[el.variable];
      else ctx.state.vars[el.variable] = v;
    } catch (err) {
      ctx.warn(el.id, (err as Error).message);
    }
    return ctx.take(el, 'next', el.next);
  },
};
