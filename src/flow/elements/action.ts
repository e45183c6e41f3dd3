// What the three actions (sendSms, updateProfile, httpRequest) share at run time: their result
// decides between `next` and `onError`; a failure is a warning in the call result either way.
import type { HttpRequest, SendSms, UpdateProfile } from '../schema.js';
import type { StepContext } from './context.js';

export type ActionElement = SendSms | UpdateProfile | HttpRequest;

export function actionDone(ctx: StepContext, el: ActionElement, ok: boolean, error: string | undefined): Promise<void> {
  if (ok) return ctx.take(el, 'next', el.next);
  ctx.warn(el.id, error ?? 'action failed');
  if (el.onError !== undefined) return ctx.take(el, 'onError', el.onError);
  return ctx.take(el, 'next', el.next);
}
