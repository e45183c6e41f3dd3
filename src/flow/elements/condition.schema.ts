// condition: branches on JSONata conditions, tried in order; `else` when none is true.
import { z } from 'zod';
import type { BranchTable } from './branch-table.js';
import { base, expression, fieldBranches, target } from './common.schema.js';

export const conditionBranches = {
  'conditions[i]': {
    session: 'keep',
    written: 'each',
    when: 'the first condition, in order, whose `if` is true (one branch per condition; a condition that fails to evaluate is false)',
  },
  else: { session: 'keep', written: 'field', when: 'no condition is true' },
} as const satisfies BranchTable;

export const conditionSchema = z
  .object({
    ...base,
    type: z.literal('condition'),
    /** Tried in order; the first whose JSONata `if` is truthy wins. */
    conditions: z
      .array(z.object({ if: expression, next: target }).strict())
      .min(1)
      .max(20),
    ...fieldBranches(conditionBranches),
  })
  .strict();
