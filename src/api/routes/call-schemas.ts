// Shapes shared by /api/simulate and /api/calls: the recipient a request names, and the report of a
// call (what `dialflow simulate --json` and `dialflow call --json` print).
import { IANAZone } from 'luxon';
import { z } from 'zod';
import { normaliseDestination, ONE_OFF_RECIPIENT_ID } from '../../client/calls.js';
import { personaSchema } from '../../telephony/simulator.js';
import type { Recipient } from '../../flow/interpreter.js';

export const transcriptEventSchema = z.object({
  at: z.string().describe('ISO 8601 (simulated time for a simulation)'),
  kind: z.enum(['command', 'event', 'wait', 'action']),
  elementId: z.string().optional(),
  text: z.string().describe('what happened, e.g. `say "Hello Ana"` or `DTMF_CAPTURED "xxxx"` (masked input)'),
  until: z.string().optional().describe('for waits: when the wait ends'),
});

/** The fields of CallReport (src/client/call-report.ts): a field added there must be added here, or the API drops it. */
export const callResultReportSchema = z
  .object({
    flow: z.object({ id: z.string(), version: z.number().int() }),
    visited: z.array(z.string()),
    dials: z.number().int(),
    outcome: z.string().describe('answered, busy, noAnswer, voicemail, notCalled, failed …'),
    error: z.string().optional().describe('why the call ended in failed or notCalled'),
    variables: z.record(z.string(), z.unknown()).describe('masked and hidden input replaced'),
    trail: z.array(
      z.object({
        element: z.string(),
        branch: z.string(),
        input: z.string().optional().describe("digits entered, as the collect's reporting allows"),
      }),
    ),
    recordings: z.array(
      z.object({
        element: z.string(),
        name: z.string(),
        recordingId: z.string(),
        url: z.string().optional(),
        durationMs: z.number().optional(),
      }),
    ),
    warnings: z.array(z.object({ element: z.string(), message: z.string() })),
    timeZone: z.string().describe("the recipient's zone: the transcript's clock"),
  })
  .describe('the report of a finished call, as `dialflow call --json` prints it without its events');

export const simulationReportSchema = callResultReportSchema
  .extend({
    events: z.array(transcriptEventSchema),
    simulatedSeconds: z.number().int().describe('simulated time from the first to the last event of the call'),
  })
  .describe('what `dialflow simulate --json` prints');

export const apiPersonaSchema = personaSchema.describe(
  'the simulated person: {"attempts":["busy","answered"],"keys":["1"],"hangUpAt":"menu",…} (the simulator provider only)',
);

/** A recipient as a request gives it: its phone and zone are checked by `checkRecipient`. */
export const recipientInputSchema = z
  .looseObject({
    id: z
      .string()
      .regex(ONE_OFF_RECIPIENT_ID, 'letters, digits, ".", "-" and "_", at most 64')
      .optional()
      .describe('default: generated; the call is workflow call:{campaignId}:{id}'),
    phone: z.string().max(256).describe('an international number (+14155550123) or a SIP URI'),
    timeZone: z.string().max(64).optional().describe('IANA zone; default: derived from the number where it has one'),
  })
  .describe('the recipient and its attributes (firstName …), as flows read them under `recipient.`');

export type RecipientCheck =
  | { ok: true; recipient: Partial<Recipient> & { phone: string } }
  | { ok: false; code: 'recipient.invalidPhone' | 'recipient.invalidTimeZone'; message: string };

/** The phone normalised (E.164) and the zone checked, as `dialflow call --to` does. */
export function checkRecipient(given: z.infer<typeof recipientInputSchema>): RecipientCheck {
  const phone = normaliseDestination(given.phone);
  if (phone === undefined)
    return {
      ok: false,
      code: 'recipient.invalidPhone',
      message: `recipient.phone ${JSON.stringify(given.phone)}: give an international number such as +14155550123, or a SIP URI such as sip:1001@127.0.0.1:5080`,
    };
  if (given.timeZone !== undefined && !IANAZone.isValidZone(given.timeZone))
    return {
      ok: false,
      code: 'recipient.invalidTimeZone',
      message: `recipient.timeZone ${JSON.stringify(given.timeZone)} is not an IANA time zone (e.g. Europe/Zagreb)`,
    };
  return { ok: true, recipient: { ...given, phone } };
}
