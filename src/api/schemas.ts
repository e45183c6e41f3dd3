// The API's request and response shapes, in zod: Fastify validates requests with them and the
// OpenAPI document (GET /api/openapi.json) is generated from them, so the two cannot disagree.
import { z } from 'zod';
import type { ValidationIssue } from '../flow/validate.js';
import { PROVIDERS } from '../telephony/capabilities.js';
import { API_ROLES } from '../store/tokens.js';

export const errorBodySchema = z
  .object({
    error: z.object({
      code: z.string().describe('stable, machine-readable: unauthorized, forbidden, bad_request, payload_too_large …'),
      message: z.string(),
    }),
  })
  .describe('every error response');

export const problemSchema = z.object({
  severity: z.enum(['error', 'warning']),
  code: z.string().describe("the validator's stable code, e.g. next.unknownTarget"),
  elementId: z.string().nullable().describe('the element the problem is in, when there is one'),
  path: z.string().describe('field path in the document, e.g. elements[2].next.answered'),
  message: z.string(),
});
export type Problem = z.infer<typeof problemSchema>;

export const toProblem = (issue: ValidationIssue): Problem => ({
  severity: issue.severity,
  code: issue.code,
  elementId: issue.elementId ?? null,
  path: issue.path,
  message: issue.message,
});

/** A flow document is checked by the validator, not by the request schema: its problems are the answer. */
export const flowDocumentSchema = z
  .unknown()
  .describe('a flow document (JSON), as `dialflow validate` reads it; see docs/flows.md and schema/flow.schema.json');

export const providerQuerySchema = z.object({
  provider: z.enum(PROVIDERS).optional().describe('also warn about what this provider lacks'),
});

export const validateResponseSchema = z.object({
  valid: z.boolean(),
  problems: z.array(problemSchema),
});

export const invalidFlowResponseSchema = z
  .object({
    error: z.object({ code: z.literal('flow.invalid'), message: z.string() }),
    problems: z.array(problemSchema),
  })
  .describe('the flow has errors: nothing was published');

export const publishResponseSchema = z.object({
  id: z.string(),
  version: z.number().int(),
  created: z.boolean().describe('false when the same content was already published as this version'),
  problems: z.array(problemSchema).describe('warnings (a published flow has no errors)'),
});

export const flowListSchema = z.object({
  flows: z.array(z.object({ id: z.string(), latest: z.number().int() })),
});

export const flowVersionParamsSchema = z.object({
  id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'flow ids are lowercase letters, digits and "-"'),
  version: z.coerce.number().int().positive().max(1_000_000_000),
});

export const publishedFlowSchema = z
  .record(z.string(), z.unknown())
  .describe('the published flow document (normalised: defaults applied, automatic hang-ups added)');

export const graphResponseSchema = z.object({
  id: z.string(),
  version: z.number().int(),
  mermaid: z.string().describe('a Mermaid flowchart, as `dialflow graph` prints it'),
  nodes: z.array(z.object({ id: z.string(), type: z.string() })),
  edges: z.array(
    z.object({
      from: z.string(),
      to: z.string(),
      branch: z.string().describe('branch name: answered, 1, next, conditions[0] …'),
      session: z.enum(['start', 'end', 'keep']).describe('what the branch does to the call session'),
    }),
  ),
});

export const auditQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const roleSchema = z.enum(API_ROLES);

export const loginBodySchema = z.object({
  username: z.string().min(1).max(128),
  password: z.string().min(1).max(1024),
});

export const sessionResponseSchema = z
  .object({
    user: z.object({ name: z.string(), role: roleSchema }),
    csrfToken: z
      .string()
      .describe('send it as header x-csrf-token with every request but GET and HEAD that uses the session cookie'),
  })
  .describe('the console session: its user (role as of now) and its CSRF token');
