// pause: a durable delay outside call sessions, for a duration or until a weekday and time.
import { z } from 'zod';
import { Duration } from 'luxon';
import type { BranchTable } from './branch-table.js';
import { base, coded, fieldBranches, hhmm, zoneSchema } from './common.schema.js';
import { WEEKDAYS } from '../weekdays.js';

export const pauseBranches = {
  next: { session: 'keep', written: 'field', when: 'the pause is over' },
} as const satisfies BranchTable;

export const pauseSchema = z
  .object({
    ...base,
    type: z.literal('pause'),
    /** ISO-8601 duration, e.g. PT10M or P1D. */
    duration: z
      .string()
      .refine(
        (d) => Duration.fromISO(d).isValid && Duration.fromISO(d).toMillis() > 0,
        coded('pause.duration', 'an ISO-8601 duration such as PT10M or P1D'),
      )
      .refine(
        (d) => Duration.fromISO(d).toMillis() <= 366 * 24 * 3600_000,
        coded('pause.tooLong', 'a pause is at most one year'),
      )
      .optional(),
    /** Wait until the next such weekday and time. */
    until: z
      .object({ weekday: z.enum(WEEKDAYS), time: hhmm, timeZone: zoneSchema })
      .strict()
      .optional(),
    ...fieldBranches(pauseBranches),
  })
  .strict()
  .refine((p) => (p.duration ? 1 : 0) + (p.until ? 1 : 0) === 1, {
    ...coded('pause.kind', 'a pause has exactly one of `duration` or `until`'),
    path: ['duration'],
  });
