// httpRequest: calls an HTTP API and saves parts of the response into variables (an action).
import { z } from 'zod';
import { actionBranchFields, actionBranches } from './action.schema.js';
import { base, coded, expression, variableName } from './common.schema.js';

export const httpRequestBranches = actionBranches;

export const httpRequestSchema = z
  .object({
    ...base,
    type: z.literal('httpRequest'),
    method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']).default('GET'),
    /** A template; http or https. */
    url: z
      .string()
      .refine(
        (u) => /^https?:\/\/\S+$/.test(u),
        coded('http.url', 'an http:// or https:// URL (placeholders allowed)'),
      ),
    headers: z.record(z.string().regex(/^[A-Za-z0-9-]{1,64}$/), z.string().max(2000)).default({}),
    /** JSON body; string values are templates. */
    body: z.unknown().optional(),
    timeoutSeconds: z.number().int().min(1).max(30).default(10),
    retries: z.number().int().min(0).max(5).default(2),
    /** Variable → JSONata expression over `{ status, body, headers }` of the response. */
    saveTo: z.record(variableName, expression).default({}),
    ...actionBranchFields(),
  })
  .strict();
