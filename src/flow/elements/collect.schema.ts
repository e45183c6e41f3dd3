// collect: keypad input, matched against the expected responses.
import { z } from 'zod';
import type { BranchTable } from './branch-table.js';
import { base, coded, nextBranches, target, variableName } from './common.schema.js';

export const collectBranches = {
  response: {
    session: 'keep',
    written: 'each',
    when: 'the input is one of `responses`: one branch per response, named by its digits (`response` in the trail when reporting is masked or hidden)',
  },
  noMatch: { session: 'keep', when: 'any other input, or none before the wait ended' },
  hungUp: { session: 'end', when: 'the end user hung up' },
  callEnded: {
    session: 'end',
    when: 'the call ended otherwise (the platform, a technical issue), or there was no call session',
  },
} as const satisfies BranchTable;

export const collectSchema = z
  .object({
    ...base,
    type: z.literal('collect'),
    maxDigits: z.number().int().min(1).max(32),
    /** Seconds to wait for the first key. */
    waitSeconds: z.number().int().min(1).max(60).default(5),
    /** Seconds allowed between two keys once the first key was pressed. */
    interDigitSeconds: z.number().int().min(1).max(30).default(3),
    reporting: z.enum(['always', 'masked', 'hidden']).default('always'),
    saveTo: variableName.optional(),
    /** Expected input → element id. `#` ends input and is never part of a response. */
    responses: z.record(z.string(), target).default({}),
    next: nextBranches(collectBranches).default({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    for (const key of Object.keys(c.responses)) {
      if (key.includes('#'))
        ctx.addIssue({
          code: 'custom',
          path: ['responses', key],
          ...coded('collect.hashResponse', '# ends the input and can never be part of a response'),
        });
      else if (!/^[0-9*]+$/.test(key))
        ctx.addIssue({
          code: 'custom',
          path: ['responses', key],
          ...coded('collect.responseFormat', 'a response is keypad digits 0–9 or *'),
        });
      else if (key.length > c.maxDigits)
        ctx.addIssue({
          code: 'custom',
          path: ['responses', key],
          ...coded('collect.responseTooLong', `a response cannot be longer than maxDigits (${c.maxDigits})`),
        });
    }
  });
