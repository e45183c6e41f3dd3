// What the three actions (sendSms, updateProfile, httpRequest) share: their branches. Each action
// runs once the element is entered; its result decides between `next` and `onError`.
import type { BranchTable } from './branch-table.js';
import { fieldBranches } from './common.schema.js';

export const actionBranches = {
  next: { session: 'keep', written: 'field', when: 'the action succeeded, or failed where there is no `onError`' },
  onError: {
    session: 'keep',
    written: 'field',
    optional: true,
    when: "the action failed after its retries (the failure is also in the call's warnings)",
  },
} as const satisfies BranchTable;

/** `next` and `onError` of an action. */
export const actionBranchFields = () =>
  fieldBranches(actionBranches, {
    onError: 'where to go when the action fails after its retries; without it the flow continues at `next`',
  });
