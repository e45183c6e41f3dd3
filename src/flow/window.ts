// Calendar maths in recipients' zones with luxon: delivery windows and pause-until. DST-safe:
// local wall-clock times are resolved in the zone for each day (a time that does not exist on a
// spring-forward day moves forward, as luxon does).
import { DateTime } from 'luxon';
import type { DeliveryWindow } from './schema.js';
import { WEEKDAYS } from './weekdays.js';

type Weekday = (typeof WEEKDAYS)[number];

function hm(s: string): { hour: number; minute: number } {
  const [h, m] = s.split(':').map(Number);
  return { hour: h ?? 0, minute: m ?? 0 };
}

function weekdayOf(d: DateTime): Weekday {
  return WEEKDAYS[d.weekday - 1] as Weekday;
}

/**
 * The first instant ≥ `at` at which dialling is allowed: `at` itself when inside the window,
 * otherwise the next opening. Windows are [from, to) in local time on the listed days.
 */
export function nextWindowOpening(
  window: Pick<DeliveryWindow, 'days' | 'from' | 'to'>,
  zone: string,
  at: number,
): number {
  const local = DateTime.fromMillis(at, { zone });
  if (!local.isValid) throw new RangeError(`invalid time zone "${zone}"`);
  const days = new Set(window.days);
  for (let d = 0; d <= 7; d++) {
    const day = local.startOf('day').plus({ days: d });
    if (!days.has(weekdayOf(day))) continue;
    const open = day.set(hm(window.from)).toMillis();
    const close = day.set(hm(window.to)).toMillis();
    if (at < open) return open;
    if (at < close) return at;
  }
  throw new RangeError('the delivery window has no day');
}

export function insideWindow(window: Pick<DeliveryWindow, 'days' | 'from' | 'to'>, zone: string, at: number): boolean {
  return nextWindowOpening(window, zone, at) === at;
}

/** The next instant strictly after `at` that is `weekday` at `time` in `zone`. */
export function nextWeekdayTime(weekday: Weekday, time: string, zone: string, at: number): number {
  const local = DateTime.fromMillis(at, { zone });
  if (!local.isValid) throw new RangeError(`invalid time zone "${zone}"`);
  for (let d = 0; d <= 7; d++) {
    const day = local.startOf('day').plus({ days: d });
    if (weekdayOf(day) !== weekday) continue;
    const t = day.set(hm(time)).toMillis();
    if (t > at) return t;
  }
  // Same weekday, time already passed today: one week later.
  return local.startOf('day').plus({ days: 7 }).set(hm(time)).toMillis();
}
