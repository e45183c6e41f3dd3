// sendSms: sends a text message (an action: its result decides between `next` and `onError`).
import { z } from 'zod';
import { actionBranchFields, actionBranches } from './action.schema.js';
import { base, phoneOrTemplate } from './common.schema.js';

export const sendSmsBranches = actionBranches;

export const sendSmsSchema = z
  .object({
    ...base,
    type: z.literal('sendSms'),
    from: z.string().min(1).max(32).optional(),
    to: phoneOrTemplate.default('{{recipient.phone}}'),
    text: z.string().min(1).max(1600),
    ...actionBranchFields(),
  })
  .strict();
