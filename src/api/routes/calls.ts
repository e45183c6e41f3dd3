// /api/calls: start one call of a published flow (operator), read a call's status, result and
// transcript, and search calls by campaign and recipient. A call is its workflow, `call:{campaignId}:{recipientId}`:
// the id is the call's identity, so one recipient is called once per campaign id. A call started
// here is always of campaign `api` (a name no campaign may take, src/client/campaigns.ts): a
// one-off call under a campaign's id would land in that campaign's report, and the campaign would
// take its recipient as called already and never call them.
import { randomBytes } from 'node:crypto';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { z } from 'zod';
import { startCall } from '../../client/calls.js';
import { CAMPAIGN_ID } from '../../client/campaigns.js';
import {
  BadPageTokenError,
  CALL_STATUSES,
  PageTokens,
  readCall,
  readCallTranscript,
  searchCalls,
  UNQUOTABLE,
} from '../../client/call-status.js';
import { withTimeZone } from '../../flow/zone.js';
import { callWorkflowId } from '../../workflows/messages.js';
import { audited, sendError } from '../auth.js';
import type { ApiDeps } from '../deps.js';
import { errorBodySchema, flowVersionParamsSchema } from '../schemas.js';
import {
  apiPersonaSchema,
  callResultReportSchema,
  checkRecipient,
  recipientInputSchema,
  transcriptEventSchema,
} from './call-schemas.js';

/** Campaign id of every call started through the API: workflow ids `call:api:{recipientId}`. */
export const API_CAMPAIGN = 'api';

const commonErrors = { 400: errorBodySchema, 401: errorBodySchema, 403: errorBodySchema };

const campaignIdSchema = z.string().regex(CAMPAIGN_ID, 'letters, digits, "-" and "_", at most 64, no ":"');

// Strict: a `campaignId` (which earlier versions took) is refused rather than silently ignored.
const startCallBodySchema = z
  .object({
    flow: z.object({
      id: flowVersionParamsSchema.shape.id,
      version: z.number().int().positive().optional().describe('default: the latest published version'),
    }),
    recipient: recipientInputSchema,
    persona: apiPersonaSchema.optional(),
  })
  .strict()
  .describe('the call is workflow call:api:{recipient.id}');

const callSummarySchema = z.object({
  callId: z.string().describe('the workflow id, call:{campaignId}:{recipientId}'),
  campaignId: z.string(),
  recipientId: z.string(),
  status: z.enum(CALL_STATUSES),
  startTime: z.string(),
  closeTime: z.string().optional(),
  outcome: z.string().optional().describe('for a completed call'),
});

const callDetailsSchema = callSummarySchema.omit({ outcome: true }).extend({
  result: callResultReportSchema.optional().describe('once the call completed'),
});

const callParamsSchema = z.object({
  callId: z.string().min(1).max(300).describe('the workflow id, URL-encoded: call%3Aapi%3Ar1'),
});

const searchQuerySchema = z.object({
  campaignId: campaignIdSchema.optional(),
  recipientId: z
    .string()
    .min(1)
    .max(200)
    .refine((v) => !UNQUOTABLE.test(v), 'quotes, backslashes and control characters cannot be searched for')
    .optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  pageToken: z
    .string()
    .max(4096)
    .regex(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'a nextPageToken as a previous page gave it')
    .optional(),
});

const callNotFound = (callId: string) =>
  `no call ${JSON.stringify(callId)} (call ids read call:{campaignId}:{recipientId})`;

export const callRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, { client, codec, taskQueue, flows, audit }) => {
  const pageTokens = new PageTokens(codec.deriveSecret('dialflow-api-call-search-pages'));
  app.post(
    '/api/calls',
    {
      config: { minRole: 'operator' },
      schema: {
        summary: 'Start one call of a published flow',
        description:
          'As `dialflow call` does, without waiting: the call runs on the stack whatever provider it runs. Its id is `call:api:{recipient.id}` (campaign id `api`, which no campaign may take): one recipient id is called once, the same id again is 409.',
        tags: ['calls'],
        body: startCallBodySchema,
        response: {
          201: z.object({ callId: z.string(), campaignId: z.string(), recipientId: z.string() }),
          ...commonErrors,
          404: errorBodySchema.describe('no such published flow (version)'),
          409: errorBodySchema.describe('call.duplicate: that call id exists already (running or over)'),
          413: errorBodySchema,
          415: errorBodySchema,
        },
      },
    },
    async (request, reply) => {
      const { body } = request;
      const flow = await flows.get(body.flow.id, body.flow.version);
      if (!flow)
        return sendError(
          reply,
          404,
          'not_found',
          body.flow.version === undefined
            ? `flow "${body.flow.id}" is not published`
            : `flow "${body.flow.id}" version ${body.flow.version} is not published`,
        );
      if (!flow.start)
        return sendError(
          reply,
          400,
          'flow.inbound',
          `flow "${flow.id}" is an inbound flow: it answers calls to its number and cannot call out`,
        );
      const checked = checkRecipient(body.recipient);
      if (!checked.ok) return sendError(reply, 400, checked.code, checked.message);
      const recipientId = checked.recipient.id ?? `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
      // A recipient without a zone (a SIP URI, a number of a country with several) keeps the reason,
      // and a flow with a `recipient` window ends notCalled saying so.
      const recipient = withTimeZone({ ...checked.recipient, id: recipientId });
      const campaignId = API_CAMPAIGN;
      const callId = callWorkflowId(campaignId, recipientId);
      const target = { callId, flowId: flow.id, version: flow.version };
      try {
        await startCall(client, {
          flow,
          recipient,
          campaignId,
          taskQueue,
          ...(body.persona ? { hints: { persona: body.persona } } : {}),
        });
      } catch (err) {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
        await audited(audit, request, 'call.start', target, 'duplicate');
        return sendError(
          reply,
          409,
          'call.duplicate',
          `call ${callId} exists already: a recipient id is called once (give another recipient.id)`,
        );
      }
      await audited(audit, request, 'call.start', target, 'started');
      request.log.info({ callId, flowId: flow.id, version: flow.version, by: request.principal?.name }, 'call started');
      return reply.code(201).send({ callId, campaignId, recipientId });
    },
  );

  app.get(
    '/api/calls',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'Search calls by campaign and recipient',
        description:
          'Newest first. With a recipient alone, calls are scanned a page at a time: a page may come back with fewer calls than `limit` (even none) and a `nextPageToken`; follow it to search on.',
        tags: ['calls'],
        querystring: searchQuerySchema,
        response: {
          200: z.object({
            calls: z.array(callSummarySchema),
            nextPageToken: z.string().optional().describe('pass as pageToken for the next page'),
          }),
          ...commonErrors,
        },
      },
    },
    async (request, reply) => {
      const { campaignId, recipientId, limit, pageToken } = request.query;
      try {
        return await searchCalls(client, pageTokens, {
          limit,
          ...(campaignId !== undefined ? { campaignId } : {}),
          ...(recipientId !== undefined ? { recipientId } : {}),
          ...(pageToken !== undefined ? { pageToken } : {}),
        });
      } catch (err) {
        if (!(err instanceof BadPageTokenError)) throw err;
        return sendError(reply, 400, 'bad_request', err.message);
      }
    },
  );

  app.get(
    '/api/calls/:callId',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: "A call's status, and its result once it completed",
        tags: ['calls'],
        params: callParamsSchema,
        response: { 200: callDetailsSchema, ...commonErrors, 404: errorBodySchema.describe('call.notFound') },
      },
    },
    async (request, reply) => {
      const { callId } = request.params;
      const call = await readCall(client, codec, callId);
      if (!call) return sendError(reply, 404, 'call.notFound', callNotFound(callId));
      return call;
    },
  );

  app.get(
    '/api/calls/:callId/transcript',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: "A call's transcript",
        description:
          'What the call did so far (all of it once it is over), as `dialflow call --json` shows it. Digits entered at masked and hidden collects appear nowhere.',
        tags: ['calls'],
        params: callParamsSchema,
        response: {
          200: z.object({ events: z.array(transcriptEventSchema) }),
          ...commonErrors,
          404: errorBodySchema.describe('call.notFound'),
        },
      },
    },
    async (request, reply) => {
      const { callId } = request.params;
      const events = await readCallTranscript(client, codec, callId);
      if (!events) return sendError(reply, 404, 'call.notFound', callNotFound(callId));
      return { events };
    },
  );
};
