// startOutgoingCall: calls the recipient (inside its delivery window, retried as configured) and
// starts an outbound call session when someone, or a machine, answers.
import { z } from 'zod';
import type { BranchTable } from './branch-table.js';
import { base, coded, hhmm, nextBranches, phoneOrTemplate, zoneSchema } from './common.schema.js';
import { WEEKDAYS } from '../weekdays.js';

export const MAX_VALIDITY_HOURS = 48;
export const RECOMMENDED_MAX_RETRIES = 3;

export const startOutgoingCallBranches = {
  answered: { session: 'start', when: 'a person answered' },
  voicemail: {
    session: 'start',
    optional: true,
    when: 'an answering machine answered (the branch present switches machine detection on); the session goes on, so the flow can leave a message',
  },
  noAnswer: { session: 'end', optional: true, when: 'nobody answered, after the retries' },
  busy: { session: 'end', optional: true, when: 'the line was busy, after the retries' },
  declined: { session: 'end', optional: true, when: 'the call was declined, after the retries' },
  callEnded: {
    session: 'end',
    when: 'unreachable or a network error after the retries, the validity period over, or an answer that came after its dial had timed out',
  },
} as const satisfies BranchTable;

export const retrySchema = z
  .object({
    minMinutes: z.number().int().min(1).max(1440),
    maxMinutes: z.number().int().min(1).max(1440),
    count: z.number().int().min(1).max(10),
  })
  .strict()
  .refine((r) => r.maxMinutes >= r.minMinutes, {
    ...coded('retry.range', 'maxMinutes must be ≥ minMinutes'),
    path: ['maxMinutes'],
  });

export const validityPeriodSchema = z
  .object({ value: z.number().int().min(1), unit: z.enum(['hours', 'minutes']) })
  .strict()
  .refine((v) => v.value * (v.unit === 'hours' ? 60 : 1) <= MAX_VALIDITY_HOURS * 60, {
    ...coded('validity.tooLong', `the validity period is at most ${MAX_VALIDITY_HOURS} hours`),
    path: ['value'],
  });

export const deliveryWindowSchema = z
  .object({
    days: z.array(z.enum(WEEKDAYS)).min(1).max(7),
    from: hhmm,
    to: hhmm,
    /** IANA zone, or `recipient` for the recipient's own zone. */
    timeZone: zoneSchema.default('recipient'),
  })
  .strict()
  .refine((w) => w.from < w.to, {
    ...coded('window.empty', '`from` must be earlier than `to` on the same day'),
    path: ['to'],
  })
  .refine((w) => new Set(w.days).size === w.days.length, {
    ...coded('window.duplicateDay', 'each day once'),
    path: ['days'],
  });

export const callingSpeedSchema = z
  .object({
    calls: z.number().int().min(1).max(1_000_000),
    per: z.enum(['minute', 'hour', 'day']),
    /**
     * Absent or false: up to `calls` dials at the start of each period, periods counted from the first
     * call. True: dials spaced evenly, one every period/calls.
     */
    spread: z
      .boolean()
      .optional()
      .describe(
        'false (default): up to `calls` dials start at the beginning of each period, counted from the first call; true: dials spaced evenly, period/calls apart',
      ),
  })
  .strict();

export const trackingSchema = z
  .object({
    deliveryReports: z.boolean().default(false),
    /** Stored with the call record for analytics, never shared with the end user; values are templates. */
    dataPayload: z.record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/), z.string().max(500)).default({}),
  })
  .strict();

export const startOutgoingCallSchema = z
  .object({
    ...base,
    type: z.literal('startOutgoingCall'),
    from: phoneOrTemplate,
    /** Defaults to the recipient's number. */
    to: phoneOrTemplate.default('{{recipient.phone}}'),
    recordCall: z.boolean().default(false),
    deliveryWindow: deliveryWindowSchema.optional(),
    callingSpeed: callingSpeedSchema.optional(),
    validityPeriod: validityPeriodSchema.optional(),
    retry: retrySchema.optional(),
    tracking: trackingSchema.optional(),
    next: nextBranches(startOutgoingCallBranches).default({}),
  })
  .strict();
