// pause at run time: a durable sleep, for a duration or until the next such weekday and time.
import { Duration } from 'luxon';
import type { Pause } from '../schema.js';
import { nextWeekdayTime } from '../window.js';
import { zoneUnknownReason, type ElementRuntime } from './context.js';

export const pause: ElementRuntime<Pause> = {
  enter(ctx, el) {
    const d = ctx.state;
    if (el.duration) return ctx.sleep(Duration.fromISO(el.duration).toMillis(), `pause ${el.duration}`, 'continue');
    const until = el.until;
    if (!until) return ctx.sleep(1, 'pause', 'continue');
    const zone = until.timeZone === 'recipient' ? d.recipient.timeZone : until.timeZone;
    if (!zone)
      return ctx.finish(
        'failed',
        `pause "${el.id}" uses the recipient's time zone, and recipient ${d.recipient.id} has none (${zoneUnknownReason(d)})`,
      );
    const when = nextWeekdayTime(until.weekday, until.time, zone, ctx.at);
    return ctx.sleep(
      when - ctx.at,
      `pause until ${until.weekday} ${until.time} ${zone} (${new Date(when).toISOString()})`,
      'continue',
    );
  },

  onTimer: (ctx, el) => ctx.take(el, 'next', el.next),
};
