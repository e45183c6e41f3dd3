// recordVoicemail: records the caller; the recording is listed in the call result.
import { z } from 'zod';
import type { BranchTable } from './branch-table.js';
import { base, nextBranches, variableName } from './common.schema.js';

export const recordVoicemailBranches = {
  recorded: { session: 'keep', when: 'the recording is ready (listed in the call result)' },
  hungUp: { session: 'end', when: 'the end user hung up' },
  callEnded: {
    session: 'end',
    when: 'the call ended otherwise (the platform, a technical issue, the provider never confirmed the recording), or there was no call session',
  },
} as const satisfies BranchTable;

export const recordVoicemailSchema = z
  .object({
    ...base,
    type: z.literal('recordVoicemail'),
    /** File name of the recording; a template. */
    name: z.string().min(1).max(200),
    maxDurationSeconds: z.number().int().min(1).max(3600).default(60),
    maxSilenceSeconds: z.number().int().min(1).max(60).default(5),
    escapeDigits: z
      .string()
      .regex(/^[0-9*#]{0,12}$/, 'keypad keys 0–9, * or #')
      .default(''),
    beep: z.boolean().default(true),
    saveTo: variableName.optional(),
    next: nextBranches(recordVoicemailBranches).default({}),
  })
  .strict();
