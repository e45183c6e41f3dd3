// updateProfile: writes attributes of the recipient's profile (an action).
import { z } from 'zod';
import { actionBranchFields, actionBranches } from './action.schema.js';
import { base, coded, expression } from './common.schema.js';

export const updateProfileBranches = actionBranches;

export const updateProfileSchema = z
  .object({
    ...base,
    type: z.literal('updateProfile'),
    /** Attribute → JSONata expression, e.g. `{ "lastChoice": "vars.choice" }`. */
    attributes: z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/), expression)
      .refine((a) => Object.keys(a).length > 0, coded('profile.empty', 'name at least one attribute')),
    ...actionBranchFields(),
  })
  .strict();
