// httpRequest at run time: an action that sends the rendered request; the response's parts named in
// `saveTo` become variables (whatever the result, as far as the response has them).
import type { HttpRequest } from '../schema.js';
import { actionDone } from './action.js';
import type { ElementRuntime } from './context.js';

export const httpRequest: ElementRuntime<HttpRequest> = {
  enter(ctx, el) {
    const renderDeep = (v: unknown): unknown =>
      typeof v === 'string'
        ? ctx.t(v)
        : Array.isArray(v)
          ? v.map(renderDeep)
          : v && typeof v === 'object'
            ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, renderDeep(x)]))
            : v;
    ctx.action({
      type: 'httpRequest',
      elementId: el.id,
      method: el.method,
      url: ctx.t(el.url),
      headers: Object.fromEntries(Object.entries(el.headers).map(([k, v]) => [k, ctx.t(v)])),
      ...(el.body !== undefined ? { body: renderDeep(el.body) } : {}),
      timeoutMs: el.timeoutSeconds * 1000,
      retries: el.retries,
    });
  },

  async onActionResult(ctx, el, { ok, data, error }) {
    if (data && typeof data === 'object') {
      for (const [name, source] of Object.entries(el.saveTo)) {
        try {
          const v = await ctx.expr(source, data);
          if (v === undefined) delete ctx.state.vars[name];
          else ctx.state.vars[name] = v;
        } catch (err) {
          ctx.warn(el.id, (err as Error).message);
        }
      }
    }
    return actionDone(ctx, el, ok, error);
  },
};
