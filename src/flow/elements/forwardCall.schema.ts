// forwardCall: connects the caller to another destination (a number, a SIP URI, a WebRTC identity).
import { z } from 'zod';
import type { BranchTable } from './branch-table.js';
import { base, coded, isTemplate, nextBranches, phoneOrTemplate } from './common.schema.js';

export const forwardCallBranches = {
  forwarded: { session: 'end', when: 'the caller now talks to the destination: the flow leaves the call session' },
  notForwarded: {
    session: 'keep',
    when: 'the forward failed (also no answer, busy or declined, when their branch is absent); the call goes on between caller and flow',
  },
  noAnswer: { session: 'keep', optional: true, when: 'the destination did not answer within `ringSeconds`' },
  busy: { session: 'keep', optional: true, when: 'the destination was busy' },
  declined: { session: 'keep', optional: true, when: 'the destination declined' },
  callEnded: { session: 'end', when: 'the call ended before it was forwarded, or there was no call session' },
} as const satisfies BranchTable;

/** Forward destinations: a phone number, a SIP URI, a WebRTC identity, or a placeholder. */
const destination = z
  .string()
  .refine(
    (s) =>
      /^\+?[0-9]{3,15}$/.test(s) ||
      /^sips?:[^@\s]+@[^\s]+$/.test(s) ||
      /^webrtc:[A-Za-z0-9._@-]{1,128}$/.test(s) ||
      isTemplate(s),
    coded(
      'field.destination',
      'a phone number (E.164), a SIP URI (sip:user@host), a WebRTC identity (webrtc:name) or a {{placeholder}}',
    ),
  );

export const forwardCallSchema = z
  .object({
    ...base,
    type: z.literal('forwardCall'),
    /** Numeric senders only (seed). */
    from: phoneOrTemplate,
    to: destination,
    ringSeconds: z.number().int().min(5).max(120).default(30),
    next: nextBranches(forwardCallBranches).default({}),
  })
  .strict();
