// /api/flows: validate a document, publish a version (operator), list, read a version and its graph.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { z } from 'zod';
import { validateFlow } from '../../flow/validate.js';
import { branchesOf } from '../../flow/graph.js';
import { toMermaid } from '../../flow/mermaid.js';
import { providerIssues } from '../../telephony/capabilities.js';
import { FlowVersionConflictError } from '../../store/flows.js';
import type { AudioAssetStore } from '../../store/assets.js';
import type { Flow } from '../../flow/schema.js';
import { audited, sendError } from '../auth.js';
import type { ApiDeps } from '../deps.js';
import {
  errorBodySchema,
  flowDocumentSchema,
  flowListSchema,
  flowVersionParamsSchema,
  graphResponseSchema,
  invalidFlowResponseSchema,
  providerQuerySchema,
  publishedFlowSchema,
  publishResponseSchema,
  toProblem,
  validateResponseSchema,
  type Problem,
} from '../schemas.js';

const commonErrors = { 400: errorBodySchema, 401: errorBodySchema, 403: errorBodySchema };

/** Audio files the flow plays that are not uploaded: the API takes JSON only, so they must be there already. */
async function missingAudio(flow: Flow, assets: AudioAssetStore): Promise<Problem[]> {
  const out: Problem[] = [];
  for (const [i, el] of flow.elements.entries()) {
    if (el.type !== 'play' || !el.audio || !('file' in el.audio)) continue;
    if (await assets.get(el.audio.file)) continue;
    out.push({
      severity: 'error',
      code: 'audio.fileMissing',
      elementId: el.id,
      path: `elements[${i}].audio.file`,
      message: `${el.audio.file} is not uploaded: publish this flow once with \`dialflow flows publish\`, which uploads the files it plays`,
    });
  }
  return out;
}

export const flowRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, { flows, assets, audit }) => {
  app.post(
    '/api/flows/validate',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'Validate a flow document',
        description: 'Every problem at once, as `dialflow validate --json` reports them; nothing is stored.',
        tags: ['flows'],
        querystring: providerQuerySchema,
        body: flowDocumentSchema,
        response: { 200: validateResponseSchema, ...commonErrors, 413: errorBodySchema },
      },
    },
    async (request) => {
      const result = validateFlow(request.body);
      const { provider } = request.query;
      const issues =
        result.flow && provider ? [...result.issues, ...providerIssues(result.flow, provider)] : result.issues;
      return { valid: result.ok, problems: issues.map(toProblem) };
    },
  );

  app.post(
    '/api/flows',
    {
      config: { minRole: 'operator' },
      schema: {
        summary: 'Publish a flow version',
        description:
          'Validates, then publishes like `dialflow flows publish`; a published version never changes. Audio files the flow plays must have been uploaded already.',
        tags: ['flows'],
        querystring: providerQuerySchema,
        body: flowDocumentSchema,
        response: {
          200: publishResponseSchema.describe('this version was already published with the same content'),
          201: publishResponseSchema.describe('published'),
          ...commonErrors,
          409: errorBodySchema.describe('this version is published with other content'),
          413: errorBodySchema,
          422: invalidFlowResponseSchema,
        },
      },
    },
    async (request, reply) => {
      const result = validateFlow(request.body);
      const flow = result.flow;
      const problems = flow ? await missingAudio(flow, assets) : [];
      if (!flow || problems.length > 0) {
        const all = [...result.issues.map(toProblem), ...problems];
        return reply.code(422).send({
          error: {
            code: 'flow.invalid' as const,
            message: `the flow has ${all.filter((p) => p.severity === 'error').length} error(s): nothing was published`,
          },
          problems: all,
        });
      }
      const { provider } = request.query;
      const warnings = [...result.issues, ...(provider ? providerIssues(flow, provider) : [])].map(toProblem);
      let published: { id: string; version: number; created: boolean };
      try {
        published = await flows.publish(flow);
      } catch (err) {
        if (!(err instanceof FlowVersionConflictError)) throw err;
        return sendError(reply, 409, 'flow.versionConflict', err.message);
      }
      await audited(
        audit,
        request,
        'flow.publish',
        { flowId: published.id, version: published.version },
        published.created ? 'published' : 'unchanged',
      );
      request.log.info(
        { flowId: published.id, version: published.version, created: published.created, by: request.principal?.name },
        'flow published',
      );
      return reply.code(published.created ? 201 : 200).send({ ...published, problems: warnings });
    },
  );

  app.get(
    '/api/flows',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'List published flows and their latest version',
        tags: ['flows'],
        response: { 200: flowListSchema, 401: errorBodySchema, 403: errorBodySchema },
      },
    },
    async () => ({ flows: await flows.list() }),
  );

  const readVersion = async (id: string, version: number) => flows.get(id, version);
  const notPublished = (id: string, version: number) => `flow "${id}" version ${version} is not published`;

  app.get(
    '/api/flows/:id/versions/:version',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'Read a published flow version',
        tags: ['flows'],
        params: flowVersionParamsSchema,
        response: { 200: publishedFlowSchema, ...commonErrors, 404: errorBodySchema },
      },
    },
    async (request, reply) => {
      const { id, version } = request.params;
      const flow = await readVersion(id, version);
      if (!flow) return sendError(reply, 404, 'not_found', notPublished(id, version));
      return flow as unknown as Record<string, unknown>;
    },
  );

  app.get(
    '/api/flows/:id/versions/:version/graph',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'The graph of a published flow version',
        description: 'A Mermaid flowchart (as `dialflow graph` prints it) and the same graph as nodes and edges.',
        tags: ['flows'],
        params: flowVersionParamsSchema,
        response: { 200: graphResponseSchema, ...commonErrors, 404: errorBodySchema },
      },
    },
    async (request, reply) => {
      const { id, version } = request.params;
      const flow = await readVersion(id, version);
      if (!flow) return sendError(reply, 404, 'not_found', notPublished(id, version));
      return {
        id,
        version,
        mermaid: toMermaid(flow),
        nodes: flow.elements.map((el) => ({ id: el.id, type: el.type })),
        edges: flow.elements.flatMap((el) =>
          branchesOf(el).flatMap((b) =>
            typeof b.target === 'string' ? [{ from: el.id, to: b.target, branch: b.name, session: b.effect }] : [],
          ),
        ),
      } satisfies z.infer<typeof graphResponseSchema>;
    },
  );
};
