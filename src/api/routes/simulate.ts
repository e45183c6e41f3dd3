// /api/simulate: one call of a flow (a document, or a published version) with a simulated person,
// time-skipped: the JSON `dialflow simulate --json` prints, from the same code. Each run starts a
// Temporal test server process, so a few run at once, a few more wait, and the rest get 503.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { validateFlow } from '../../flow/validate.js';
import type { Flow } from '../../flow/schema.js';
import {
  DEFAULT_SIMULATED_RECIPIENT,
  installQuietSdkRuntime,
  SimulationBusyError,
  SimulationQueue,
  simulateFlow,
} from '../../client/simulate.js';
import { sendError } from '../auth.js';
import type { ApiDeps } from '../deps.js';
import {
  errorBodySchema,
  flowDocumentSchema,
  flowVersionParamsSchema,
  invalidFlowResponseSchema,
  toProblem,
} from '../schemas.js';
import { apiPersonaSchema, checkRecipient, recipientInputSchema, simulationReportSchema } from './call-schemas.js';

/** Simulations running at once: each is a test server process and a worker in this one. */
export const SIMULATIONS_RUNNING = 2;
/** Simulations waiting for a turn; beyond them, 503. */
export const SIMULATIONS_WAITING = 4;
/** A simulation takes seconds: come back after a few. */
const RETRY_AFTER_SECONDS = 5;

const flowRefSchema = z
  .object({ id: flowVersionParamsSchema.shape.id, version: z.number().int().positive() })
  .strict()
  .describe('a published flow version');

const simulateBodySchema = z.object({
  flow: z.union([flowRefSchema, flowDocumentSchema]).describe('a flow document, or {id, version} of a published one'),
  persona: apiPersonaSchema.optional(),
  recipient: recipientInputSchema
    .partial({ phone: true })
    .optional()
    .describe(
      'who is called (the caller, for an inbound flow); default {"id":"sim-1","phone":"+385915550000","firstName":"Ana"}',
    ),
});

export const simulateRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, { flows, logger, simulations }) => {
  const queue = new SimulationQueue(
    simulations?.running ?? SIMULATIONS_RUNNING,
    simulations?.waiting ?? SIMULATIONS_WAITING,
  );

  app.post(
    '/api/simulate',
    {
      // Operator: a simulation starts a test server here, and a flow's httpRequest elements send
      // their requests from this host.
      config: { minRole: 'operator' },
      schema: {
        summary: 'Simulate one call of a flow',
        description:
          "Runs the flow on a time-skipping test server with a simulated person (a week of retries takes seconds) and answers what `dialflow simulate --json` prints. Digits entered at masked and hidden collects appear nowhere. Needs the operator role: the flow's httpRequest elements send their requests from the API host.",
        tags: ['simulate'],
        body: simulateBodySchema,
        response: {
          200: simulationReportSchema,
          400: z.union([invalidFlowResponseSchema, errorBodySchema]),
          401: errorBodySchema,
          403: errorBodySchema,
          404: errorBodySchema.describe('no such published flow version'),
          413: errorBodySchema,
          503: errorBodySchema.describe('simulate.busy: too many simulations; see retry-after'),
        },
      },
    },
    async (request, reply) => {
      const { body } = request;
      let flow: Flow;
      const ref = flowRefSchema.safeParse(body.flow);
      if (ref.success) {
        const published = await flows.get(ref.data.id, ref.data.version);
        if (!published)
          return sendError(
            reply,
            404,
            'not_found',
            `flow "${ref.data.id}" version ${ref.data.version} is not published`,
          );
        flow = published;
      } else {
        const result = validateFlow(body.flow);
        if (!result.flow) {
          const problems = result.issues.map(toProblem);
          return reply.code(400).send({
            error: {
              code: 'flow.invalid' as const,
              message: `the flow has ${problems.filter((p) => p.severity === 'error').length} error(s): nothing was simulated`,
            },
            problems,
          });
        }
        flow = result.flow;
      }
      const checked = checkRecipient({ ...DEFAULT_SIMULATED_RECIPIENT, ...body.recipient });
      if (!checked.ok) return sendError(reply, 400, checked.code, checked.message);
      const persona = apiPersonaSchema.parse(body.persona ?? {});
      // The SDK logs into ours, errors only (a simulation's worker would otherwise log every start and stop).
      installQuietSdkRuntime((level, message) => logger.error({ sdkLevel: level }, message));
      try {
        const report = await queue.run(() => simulateFlow(flow, { persona, recipient: checked.recipient }));
        request.log.info(
          { flowId: flow.id, version: flow.version, outcome: report.outcome, by: request.principal?.name },
          'flow simulated',
        );
        return report;
      } catch (err) {
        if (!(err instanceof SimulationBusyError)) throw err;
        reply.header('retry-after', String(RETRY_AFTER_SECONDS));
        return sendError(reply, 503, 'simulate.busy', err.message);
      }
    },
  );
};
