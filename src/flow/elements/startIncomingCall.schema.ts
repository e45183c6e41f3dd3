// startIncomingCall: the entry of an inbound call session, one per phone number.
import { z } from 'zod';
import type { BranchTable } from './branch-table.js';
import { base, fieldBranches } from './common.schema.js';

export const startIncomingCallBranches = {
  next: { session: 'start', written: 'field', when: 'the call was answered: the first element of the inbound session' },
} as const satisfies BranchTable;

export const startIncomingCallSchema = z
  .object({
    ...base,
    type: z.literal('startIncomingCall'),
    number: z.string().regex(/^\+?[0-9]{3,15}$/, 'the phone number that receives calls, E.164'),
    ...fieldBranches(startIncomingCallBranches),
  })
  .strict();
