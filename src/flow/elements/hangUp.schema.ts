// hangUp: ends the call session; accepted anywhere (a no-op where the session has ended already).
import { z } from 'zod';
import type { BranchTable } from './branch-table.js';
import { base, fieldBranches } from './common.schema.js';

export const hangUpBranches = {
  next: {
    session: 'end',
    written: 'field',
    when: 'after the hang-up: only non-IVR actions or a new call may follow; absent, the path ends',
  },
} as const satisfies BranchTable;

export const hangUpSchema = z.object({ ...base, type: z.literal('hangUp'), ...fieldBranches(hangUpBranches) }).strict();
