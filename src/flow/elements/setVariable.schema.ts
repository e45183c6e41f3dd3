// setVariable: sets a flow variable to the value of a JSONata expression.
import { z } from 'zod';
import type { BranchTable } from './branch-table.js';
import { base, expression, fieldBranches, variableName } from './common.schema.js';

export const setVariableBranches = {
  next: {
    session: 'keep',
    written: 'field',
    when: 'the variable is set (removed when the expression gives nothing; unchanged when it fails)',
  },
} as const satisfies BranchTable;

export const setVariableSchema = z
  .object({
    ...base,
    type: z.literal('setVariable'),
    variable: variableName,
    value: expression,
    ...fieldBranches(setVariableBranches),
  })
  .strict();
