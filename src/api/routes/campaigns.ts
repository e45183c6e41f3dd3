// /api/campaigns: create a draft (flow version and settings), upload its recipients (streamed, never
// buffered whole), forecast, start, pause/resume/cancel, status (also as Server-Sent Events) and
// the report (streamed). Staging, forecast, start, control and report are the CLI's own code
// (src/client/campaign-control.ts), so `dialflow campaign …` and the API agree.
import { once } from 'node:events';
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { IANAZone } from 'luxon';
import { stringify } from 'csv-stringify';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { RecipientsFileError, stagingSummary, ROW_CODES } from '../../campaign/recipients.js';
import { REPORT_CSV_OPTIONS, reportHeader, reportRow } from '../../campaign/report.js';
import { formatSpeed } from '../../campaign/pacing.js';
import { parseSpeed } from '../../campaign/speed.js';
import { CAMPAIGN_ID } from '../../client/campaigns.js';
import {
  campaignForecast,
  campaignHandle,
  campaignSpeed,
  campaignStatus,
  CampaignControlError,
  CampaignNotFoundError,
  controlCampaign,
  DEFAULT_AVG_CALL_SECONDS,
  DEFAULT_MAX_CONCURRENT,
  launchCampaign,
  RecordTally,
  scanReport,
  stageCampaignRecipients,
  stagedZones,
  streamCallRecords,
  type CampaignControl,
} from '../../client/campaign-control.js';
import { NatsCampaignStore } from '../../store/campaigns.js';
import { CampaignDraftStore, DraftChangedError, type CampaignDraft } from '../../store/campaign-drafts.js';
import { callingSpeedSchema, type Flow } from '../../flow/schema.js';
import type { CampaignStatus } from '../../workflows/messages.js';
import { audited, sendError } from '../auth.js';
import type { ApiDeps } from '../deps.js';
import { errorBodySchema, flowVersionParamsSchema } from '../schemas.js';

/** The most bytes one recipients upload may have (a million rows of a few hundred bytes fit many times). */
export const RECIPIENTS_UPLOAD_LIMIT = 2 * 1024 ** 3;
/** Row problems an upload answers with; all of them are in the report's rejected rows. */
const LISTED_PROBLEMS = 100;
/** SSE: how often the status is read, and how long a quiet stream waits before a heartbeat comment. */
const EVENTS_POLL_MS = 1000;
const EVENTS_HEARTBEAT_MS = 15_000;
/** The list reads this many campaigns of Temporal's visibility, newest first. */
const LIST_LIMIT = 200;

const UPLOAD_TYPES = { 'text/csv': 'csv', 'application/x-ndjson': 'ndjson' } as const;

const campaignIdSchema = z
  .string()
  .regex(CAMPAIGN_ID, 'campaign ids are letters, digits, "-" and "_", at most 64, starting with a letter or digit');
const paramsSchema = z.object({ id: campaignIdSchema });

const createBodySchema = z
  .object({
    id: campaignIdSchema,
    flow: z
      .object({ id: flowVersionParamsSchema.shape.id, version: z.number().int().positive() })
      .strict()
      .describe('a published flow version with a startOutgoingCall as its start'),
    callingSpeed: z
      .union([z.string().max(100), callingSpeedSchema])
      .optional()
      .describe(
        'e.g. "100/minute", "1000/day spread" or {calls, per, spread}; unset: the flow’s callingSpeed, else 60/minute',
      ),
    maxConcurrent: z.number().int().min(1).max(100_000).default(DEFAULT_MAX_CONCURRENT),
    contactCap: z
      .object({ max: z.number().int().min(1).max(1000), windowDays: z.number().int().min(1).max(3650) })
      .strict()
      .optional()
      .describe('at most `max` calls per recipient within `windowDays`, across campaigns'),
    startAt: z.iso.datetime({ offset: true }).optional().describe('planned start, for the forecast (unset: now)'),
    timeZone: z
      .string()
      .refine((zone) => IANAZone.isValidZone(zone), 'an IANA time zone such as Europe/Zagreb or UTC')
      .optional()
      .describe('the zone the console shows this campaign’s times in (as `dialflow campaign forecast --zone`)'),
    avgCallSeconds: z
      .number()
      .int()
      .min(1)
      .max(86_400)
      .default(DEFAULT_AVG_CALL_SECONDS)
      .describe('average call length the forecast assumes'),
  })
  .strict();

const settingProblemSchema = z.object({
  code: z.string().describe('`<field>.invalid`, or `body.unknownField`'),
  path: z.string(),
  message: z.string(),
});
const invalidSettingsSchema = z
  .object({
    error: z.object({ code: z.literal('campaign.invalidSettings'), message: z.string() }),
    problems: z.array(settingProblemSchema),
  })
  .describe('the settings are invalid: nothing was created');

const countsSchema = z.record(z.string(), z.number().int());
const summarySchema = z.object({
  rows: z.number().int().describe('data rows read: valid + duplicates + invalid'),
  valid: z.number().int(),
  duplicates: z.number().int(),
  invalid: z.number().int(),
  byCode: countsSchema.describe(`rejected rows by code: ${ROW_CODES.join(', ')}`),
});

const campaignViewSchema = z.object({
  campaignId: z.string(),
  state: z.enum(['draft', 'running', 'paused', 'cancelling', 'cancelled', 'completed']),
  total: z.number().int().describe('recipients to call (valid rows)'),
  placed: z.number().int(),
  completed: z.number().int(),
  inFlight: z.number().int(),
  remaining: z.number().int(),
  byOutcome: countsSchema,
  byBranch: countsSchema.optional().describe('branches taken, keyed `element → branch`'),
  waitingForWindow: z.number().int(),
  pass: z.number().int(),
  speed: z.string().describe('the calling speed, as `100/minute` or `1000/day spread`'),
  maxConcurrent: z.number().int(),
  firstSlotAt: z.string().optional(),
  lastSlotAt: z.string().optional(),
  eta: z.string().optional().describe('estimated last first dial'),
  run: z.number().int(),
  retrySlots: z.number().int().optional(),
  dialsPerMinute: z.number().int().optional().describe('dials of the calls that ended within the last minute'),
  flow: z.object({ id: z.string(), version: z.number().int() }).optional(),
  contactCap: z.object({ max: z.number().int(), windowDays: z.number().int() }).optional(),
  startAt: z.string().optional(),
  timeZone: z.string().optional(),
  avgCallSeconds: z.number().int().optional(),
  createdAt: z.string().optional(),
  createdBy: z.string().optional(),
  startedAt: z.string().optional(),
  recipients: summarySchema.extend({ uploadedAt: z.string() }).optional(),
});
type CampaignView = z.infer<typeof campaignViewSchema>;

const uploadResponseSchema = z.object({
  summary: summarySchema,
  problems: z
    .array(z.object({ row: z.number().int(), code: z.enum(ROW_CODES), message: z.string() }))
    .describe(`the first ${LISTED_PROBLEMS} rejected rows`),
});

const forecastSchema = z.object({
  recipients: z.number().int(),
  notCallable: z.number().int(),
  firstDialAt: z.string().optional(),
  lastFirstDialAt: z.string().optional(),
  finishAt: z.string().optional(),
  finishWorstCaseAt: z.string().optional(),
  effectiveCallsPerHour: z.number(),
  passes: z.number().int(),
  perDay: z.array(z.object({ date: z.string(), dials: z.number().int() })),
  zones: z.array(z.object({ zone: z.string(), recipients: z.number().int() })),
});

const errors = (...statuses: number[]) =>
  Object.fromEntries([401, 403, ...statuses].map((s) => [s, errorBodySchema])) as Record<
    number,
    typeof errorBodySchema
  >;

const isStream = (body: unknown): body is Readable => body instanceof Readable;

/** The body's media type without parameters, lower case. */
const mediaType = (request: FastifyRequest) =>
  (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';

class UploadTooLargeError extends Error {
  override readonly name = 'UploadTooLargeError';
}

/** The request's bytes, failing once more than `max` came (a content-length is checked before). */
async function* limited(stream: AsyncIterable<Buffer>, max: number): AsyncGenerator<Buffer> {
  let bytes = 0;
  for await (const chunk of stream) {
    bytes += chunk.length;
    if (bytes > max) throw new UploadTooLargeError(`recipients uploads are at most ${max} bytes`);
    yield chunk;
  }
}

function settingsProblems(error: z.ZodError) {
  return error.issues.map((i) => {
    const path = i.path.map(String).join('.');
    if (i.code === 'unrecognized_keys')
      return { code: 'body.unknownField', path, message: `unknown field(s): ${i.keys.join(', ')}` };
    return { code: `${String(i.path[0] ?? 'body')}.invalid`, path, message: i.message };
  });
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });

const isOver = (state: CampaignView['state']) => state === 'completed' || state === 'cancelled';

export const campaignRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, deps) => {
  const { nc, client, taskQueue, flows, audit } = deps;
  const [drafts, store] = await Promise.all([CampaignDraftStore.open(nc), NatsCampaignStore.open(nc)]);
  /** Branch counts and recent dials of the campaigns looked at, read incrementally from their records. */
  const tallies = new Map<string, RecordTally>();
  /** Uploads under way in this process: a second upload of the same campaign meanwhile is refused. */
  const uploading = new Set<string>();
  /** Open event streams, ended when the server closes (they would hold it open). */
  const streams = new Set<AbortController>();

  // Recipients come as the raw request stream: the route reads it row by row.
  app.addContentTypeParser(Object.keys(UPLOAD_TYPES), (_request, payload, done) => done(null, payload));
  app.addHook('preClose', async () => {
    for (const s of streams) s.abort();
  });

  const tallyOf = (id: string) => {
    let t = tallies.get(id);
    if (!t) tallies.set(id, (t = new RecordTally(store, id)));
    return t;
  };

  /** Whether a campaign workflow with this id exists (running or closed). */
  const workflowExists = async (id: string): Promise<boolean> => {
    try {
      await campaignHandle(client, id).describe();
      return true;
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      return false;
    }
  };

  const draftFields = (d: CampaignDraft): Partial<CampaignView> => ({
    flow: d.flow,
    ...(d.contactCap ? { contactCap: d.contactCap } : {}),
    ...(d.startAt ? { startAt: d.startAt } : {}),
    ...(d.timeZone ? { timeZone: d.timeZone } : {}),
    avgCallSeconds: d.avgCallSeconds,
    createdAt: d.createdAt,
    createdBy: d.createdBy,
    ...(d.startedAt ? { startedAt: d.startedAt } : {}),
    ...(d.recipients ? { recipients: { ...d.recipients.summary, uploadedAt: d.recipients.uploadedAt } } : {}),
  });

  const draftView = async (d: CampaignDraft): Promise<CampaignView> => {
    const flow = await flows.get(d.flow.id, d.flow.version);
    const total = d.recipients?.accepted ?? 0;
    return {
      campaignId: d.campaignId,
      state: 'draft',
      total,
      placed: 0,
      completed: 0,
      inFlight: 0,
      remaining: total,
      byOutcome: {},
      waitingForWindow: 0,
      pass: 0,
      speed: flow ? formatSpeed(campaignSpeed(flow, d.speed)) : d.speed ? formatSpeed(d.speed) : '',
      maxConcurrent: d.maxConcurrent,
      run: 0,
      ...draftFields(d),
    };
  };

  const statusView = (s: CampaignStatus, d: CampaignDraft | undefined): CampaignView => ({
    ...s,
    ...(d ? draftFields(d) : {}),
  });

  /** The campaign's status with what its records add, or undefined when there is no such campaign. */
  const viewOf = async (id: string): Promise<CampaignView | undefined> => {
    const draft = (await drafts.get(id))?.draft;
    if (draft && !draft.startedAt) return draftView(draft);
    let status: CampaignStatus;
    try {
      status = await campaignStatus(client, id);
    } catch (err) {
      if (!(err instanceof CampaignNotFoundError)) throw err;
      // Marked started, but its start failed before the workflow existed: still a draft.
      return draft ? draftView(draft) : undefined;
    }
    const tally = tallyOf(id);
    await tally.refresh();
    return { ...statusView(status, draft), byBranch: { ...tally.byBranch }, dialsPerMinute: tally.dialsLastMinute() };
  };

  const unknown = (reply: FastifyReply, id: string) => sendError(reply, 404, 'not_found', `no campaign "${id}"`);

  app.post(
    '/api/campaigns',
    {
      config: { minRole: 'operator' },
      attachValidation: true,
      schema: {
        summary: 'Create a campaign (a draft: stored, not started)',
        description:
          'A published outbound flow version and the settings `dialflow campaign start` takes. Upload its recipients next, then start it.',
        tags: ['campaigns'],
        body: createBodySchema,
        response: {
          201: z.object({ campaign: campaignViewSchema }),
          ...errors(409, 415),
          400: z.union([invalidSettingsSchema, errorBodySchema.describe('flow.notPublished, flow.inbound')]),
        },
      },
    },
    async (request, reply) => {
      if (isStream(request.body))
        return sendError(reply, 415, 'unsupported_media_type', 'send the campaign as application/json');
      const parsed = createBodySchema.safeParse(request.body);
      if (!parsed.success)
        return reply.code(400).send({
          error: { code: 'campaign.invalidSettings' as const, message: 'the campaign settings are invalid' },
          problems: settingsProblems(parsed.error),
        });
      const body = parsed.data;
      let speed;
      try {
        speed = typeof body.callingSpeed === 'string' ? parseSpeed(body.callingSpeed) : body.callingSpeed;
      } catch (err) {
        if (!(err instanceof RangeError)) throw err;
        return reply.code(400).send({
          error: { code: 'campaign.invalidSettings' as const, message: 'the campaign settings are invalid' },
          problems: [{ code: 'callingSpeed.invalid', path: 'callingSpeed', message: err.message }],
        });
      }
      const flow = await flows.get(body.flow.id, body.flow.version);
      if (!flow)
        return sendError(
          reply,
          400,
          'flow.notPublished',
          `flow "${body.flow.id}" version ${body.flow.version} is not published`,
        );
      if (!flow.start)
        return sendError(
          reply,
          400,
          'flow.inbound',
          `flow "${flow.id}" is an inbound flow: campaigns call out (it needs a startOutgoingCall as its start)`,
        );
      const exists = `campaign "${body.id}" exists: a campaign id is used once`;
      if ((await workflowExists(body.id)) || (await store.getMeta(body.id)))
        return sendError(reply, 409, 'campaign.exists', exists);
      const draft: CampaignDraft = {
        campaignId: body.id,
        flow: body.flow,
        ...(speed ? { speed } : {}),
        maxConcurrent: body.maxConcurrent,
        ...(body.contactCap ? { contactCap: body.contactCap } : {}),
        ...(body.startAt ? { startAt: new Date(body.startAt).toISOString() } : {}),
        ...(body.timeZone ? { timeZone: body.timeZone } : {}),
        avgCallSeconds: body.avgCallSeconds,
        createdAt: new Date().toISOString(),
        createdBy: request.principal?.name ?? 'unknown',
      };
      if (!(await drafts.create(draft))) return sendError(reply, 409, 'campaign.exists', exists);
      await audited(
        audit,
        request,
        'campaign.create',
        { campaignId: draft.campaignId, flowId: flow.id, version: flow.version },
        'created',
      );
      return reply.code(201).send({ campaign: await draftView(draft) });
    },
  );

  app.put(
    '/api/campaigns/:id/recipients',
    {
      // No route bodyLimit: Fastify does not count a stream's bytes (limited() does), and a JSON body
      // sent here stays under the server's 1 MB before it is refused.
      config: { minRole: 'operator' },
      schema: {
        summary: 'Upload the recipients of a campaign (CSV or NDJSON, streamed)',
        description:
          'The raw file as the body, `text/csv` or `application/x-ndjson`, checked and staged as `dialflow campaign start` does. A new upload before the start replaces the recipients.',
        tags: ['campaigns'],
        params: paramsSchema,
        response: { 200: uploadResponseSchema, ...errors(400, 404, 409, 413, 415) },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      // An early answer leaves the body unread: close the connection rather than drain gigabytes.
      const refuse = (status: number, code: string, message: string) =>
        sendError(reply.header('connection', 'close'), status, code, message);
      const format = UPLOAD_TYPES[mediaType(request) as keyof typeof UPLOAD_TYPES];
      if (!format || !isStream(request.body))
        return refuse(415, 'unsupported_media_type', 'send the recipients as text/csv or application/x-ndjson');
      const declared = Number(request.headers['content-length'] ?? 0);
      if (declared > RECIPIENTS_UPLOAD_LIMIT)
        return refuse(413, 'payload_too_large', `recipients uploads are at most ${RECIPIENTS_UPLOAD_LIMIT} bytes`);
      const current = await drafts.get(id);
      if (!current) {
        if (await workflowExists(id)) return refuse(409, 'campaign.started', `campaign "${id}" has started`);
        return refuse(404, 'not_found', `no campaign "${id}"`);
      }
      if (current.draft.startedAt)
        return refuse(409, 'campaign.started', `campaign "${id}" has started: its recipients are fixed`);
      if (uploading.has(id))
        return refuse(409, 'campaign.uploadInProgress', `recipients of "${id}" are being uploaded already`);
      uploading.add(id);
      try {
        // The old recipients go first: a start while the new ones stream in finds none.
        const { recipients: _old, ...bare } = current.draft;
        const revision = await drafts.update(bare, current.revision);
        let staging;
        try {
          staging = await stageCampaignRecipients(
            store,
            id,
            { name: 'upload', stream: limited(request.body as AsyncIterable<Buffer>, RECIPIENTS_UPLOAD_LIMIT) },
            format,
          );
        } catch (err) {
          if (err instanceof UploadTooLargeError) return refuse(413, 'payload_too_large', err.message);
          if (err instanceof RecipientsFileError) return refuse(400, 'recipients.unreadable', err.message);
          throw err;
        }
        const summary = stagingSummary(staging);
        await drafts.update(
          {
            ...bare,
            recipients: {
              summary,
              pages: staging.pages,
              accepted: staging.accepted,
              format,
              uploadedAt: new Date().toISOString(),
            },
          },
          revision,
        );
        request.log.info({ campaignId: id, ...summary, by: request.principal?.name }, 'campaign recipients staged');
        return { summary, problems: staging.rejected.slice(0, LISTED_PROBLEMS) };
      } catch (err) {
        if (!(err instanceof DraftChangedError)) throw err;
        return refuse(409, 'campaign.changed', err.message);
      } finally {
        uploading.delete(id);
      }
    },
  );

  app.get(
    '/api/campaigns/:id/forecast',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'Forecast a campaign',
        description:
          'When it would finish with its settings and recipients, as `dialflow campaign forecast --json` prints it.',
        tags: ['campaigns'],
        params: paramsSchema,
        querystring: z.object({
          start: z.iso.datetime({ offset: true }).optional().describe('start instead of the planned one'),
          avgCallSeconds: z.coerce.number().int().min(1).max(86_400).optional(),
        }),
        response: { 200: forecastSchema, ...errors(400, 404, 409) },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const d = (await drafts.get(id))?.draft;
      if (!d) return unknown(reply, id);
      if (!d.recipients)
        return sendError(reply, 409, 'campaign.noRecipients', `upload the recipients of "${id}" first`);
      const flow = await flows.get(d.flow.id, d.flow.version);
      if (!flow) return unknown(reply, id);
      const start = request.query.start ?? d.startAt;
      return campaignForecast(flow, await stagedZones(store, id, d.recipients.pages), {
        ...(d.speed ? { speed: d.speed } : {}),
        maxConcurrent: d.maxConcurrent,
        ...(start ? { start: Date.parse(start) } : {}),
        avgCallSeconds: request.query.avgCallSeconds ?? d.avgCallSeconds,
      });
    },
  );

  app.post(
    '/api/campaigns/:id/start',
    {
      config: { minRole: 'operator' },
      schema: {
        summary: 'Start a campaign',
        description: 'Starts calling its staged recipients with its settings; a campaign starts once.',
        tags: ['campaigns'],
        params: paramsSchema,
        response: { 200: campaignViewSchema, ...errors(400, 404, 409) },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const current = await drafts.get(id);
      if (!current) {
        if (await workflowExists(id)) return sendError(reply, 409, 'campaign.started', `campaign "${id}" has started`);
        return unknown(reply, id);
      }
      const d = current.draft;
      if (d.startedAt) return sendError(reply, 409, 'campaign.started', `campaign "${id}" has started`);
      if (!d.recipients || d.recipients.accepted === 0)
        return sendError(
          reply,
          409,
          'campaign.noRecipients',
          d.recipients ? `campaign "${id}" has no valid recipient` : `upload the recipients of "${id}" first`,
        );
      const flow: Flow | undefined = await flows.get(d.flow.id, d.flow.version);
      if (!flow) return sendError(reply, 409, 'flow.notPublished', `flow "${d.flow.id}" is not published`);
      // Marked first, compare-and-set: of two starts, or a start and an upload, one wins.
      let revision: number;
      try {
        revision = await drafts.update({ ...d, startedAt: new Date().toISOString() }, current.revision);
      } catch (err) {
        if (!(err instanceof DraftChangedError)) throw err;
        return sendError(reply, 409, 'campaign.changed', err.message);
      }
      try {
        await launchCampaign(client, taskQueue, {
          campaignId: id,
          flow,
          pages: d.recipients.pages,
          total: d.recipients.accepted,
          settings: {
            ...(d.speed ? { speed: d.speed } : {}),
            maxConcurrent: d.maxConcurrent,
            ...(d.contactCap ? { contactCap: d.contactCap } : {}),
          },
        });
      } catch (err) {
        if (err instanceof WorkflowExecutionAlreadyStartedError)
          return sendError(reply, 409, 'campaign.started', `campaign "${id}" has started`);
        // Not started: the draft is a draft again.
        await drafts.update(d, revision);
        throw err;
      }
      await audited(audit, request, 'campaign.start', { campaignId: id }, 'started');
      request.log.info({ campaignId: id, by: request.principal?.name }, 'campaign started');
      const view = await viewOf(id);
      if (!view) return unknown(reply, id);
      return view;
    },
  );

  for (const control of ['pause', 'resume', 'cancel'] as const satisfies readonly CampaignControl[]) {
    app.post(
      `/api/campaigns/:id/${control}`,
      {
        config: { minRole: 'operator' },
        schema: {
          summary: `${control[0]?.toUpperCase()}${control.slice(1)} a campaign`,
          description: {
            pause: 'Stops placing calls; calls waiting for their slot are withdrawn.',
            resume: 'Continues a paused campaign.',
            cancel: 'Stops for good; calls in progress finish.',
          }[control],
          tags: ['campaigns'],
          params: paramsSchema,
          response: { 200: campaignViewSchema, ...errors(400, 404, 409) },
        },
      },
      async (request, reply) => {
        const { id } = request.params;
        const d = (await drafts.get(id))?.draft;
        if (d && !d.startedAt) return sendError(reply, 409, 'campaign.notStarted', `campaign "${id}" is not started`);
        let outcome: string;
        try {
          outcome = (await controlCampaign(client, id, control)).state;
        } catch (err) {
          if (err instanceof CampaignNotFoundError) return unknown(reply, id);
          if (err instanceof CampaignControlError) return sendError(reply, 409, 'campaign.control', err.message);
          throw err;
        }
        await audited(audit, request, `campaign.${control}`, { campaignId: id }, outcome);
        const view = await viewOf(id);
        if (!view) return unknown(reply, id);
        return view;
      },
    );
  }

  app.get(
    '/api/campaigns',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'List campaigns',
        description: `Drafts, and the ${LIST_LIMIT} newest started campaigns (also those started with the CLI).`,
        tags: ['campaigns'],
        response: { 200: z.object({ campaigns: z.array(campaignViewSchema) }), ...errors() },
      },
    },
    async () => {
      const all = await drafts.list();
      const byId = new Map(all.map((d) => [d.campaignId, d]));
      const started: string[] = [];
      for await (const w of client.workflow.list({ query: `WorkflowType = 'campaignWorkflow'` })) {
        started.push(w.workflowId.replace(/^campaign:/, ''));
        if (started.length >= LIST_LIMIT) break;
      }
      // Visibility lags a start by a moment: a draft marked started is asked directly.
      for (const d of all) if (d.startedAt && !started.includes(d.campaignId)) started.push(d.campaignId);
      const unstarted = all.filter((d) => !d.startedAt && !started.includes(d.campaignId));
      const views = await Promise.all([
        ...unstarted.map((d) => draftView(d)),
        ...started.map(async (id) => {
          try {
            return statusView(await campaignStatus(client, id), byId.get(id));
          } catch (err) {
            if (!(err instanceof CampaignNotFoundError)) throw err;
            return undefined;
          }
        }),
      ]);
      return { campaigns: views.filter((v): v is CampaignView => v !== undefined) };
    },
  );

  app.get(
    '/api/campaigns/:id',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'A campaign’s status',
        description: 'Counts by outcome and by branch, in flight, remaining, ETA; a draft’s settings and recipients.',
        tags: ['campaigns'],
        params: paramsSchema,
        response: { 200: campaignViewSchema, ...errors(400, 404) },
      },
    },
    async (request, reply) => {
      const view = await viewOf(request.params.id);
      return view ?? unknown(reply, request.params.id);
    },
  );

  app.get(
    '/api/campaigns/:id/events',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'A campaign’s status as Server-Sent Events',
        description: `\`event: status\` with the status whenever it changes (read every ${EVENTS_POLL_MS} ms), heartbeat comments every ${EVENTS_HEARTBEAT_MS / 1000} s, \`event: end\` once the campaign is completed or cancelled.`,
        tags: ['campaigns'],
        params: paramsSchema,
        response: { 200: z.string().describe('text/event-stream'), ...errors(400, 404) },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      let view = await viewOf(id);
      if (!view) return unknown(reply, id);
      const res = reply.raw;
      reply.hijack();
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      const stop = new AbortController();
      streams.add(stop);
      res.on('close', () => stop.abort());
      if (res.destroyed) stop.abort();
      let sent = '';
      let lastWrite = Date.now();
      const write = (text: string) => {
        res.write(text);
        lastWrite = Date.now();
      };
      try {
        while (!stop.signal.aborted) {
          if (view) {
            const json = JSON.stringify(view);
            if (json !== sent) write(`event: status\ndata: ${json}\n\n`);
            sent = json;
            if (isOver(view.state)) {
              write(`event: end\ndata: ${json}\n\n`);
              break;
            }
          }
          if (Date.now() - lastWrite >= EVENTS_HEARTBEAT_MS) write(': heartbeat\n\n');
          await sleep(EVENTS_POLL_MS, stop.signal);
          if (stop.signal.aborted) break;
          try {
            view = await viewOf(id);
          } catch (err) {
            // A status read that failed (Temporal away a moment): the stream goes on, the next poll retries.
            request.log.warn({ err, campaignId: id }, 'campaign status read failed');
          }
        }
      } finally {
        streams.delete(stop);
        res.end();
      }
    },
  );

  app.get(
    '/api/campaigns/:id/report',
    {
      config: { minRole: 'viewer' },
      schema: {
        summary: 'A campaign’s report, streamed',
        description:
          'One line per call in the order calls ended: CSV with the columns of `dialflow campaign report` (default), or NDJSON call records with `format=json`.',
        tags: ['campaigns'],
        params: paramsSchema,
        querystring: z.object({ format: z.enum(['csv', 'json']).default('csv') }),
        response: { 200: z.string().describe('text/csv or application/x-ndjson'), ...errors(400, 404) },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      if (!(await drafts.get(id)) && !(await store.getMeta(id)) && !(await workflowExists(id)))
        return unknown(reply, id);
      const scan = await scanReport(store, id);
      const records = streamCallRecords(store, id, scan.late);
      // A stream is sent as it is (no serializer); the schema's string type only documents the body.
      const streamed = (body: Readable) => body as unknown as string;
      if (request.query.format === 'json') {
        return reply.type('application/x-ndjson; charset=utf-8').send(
          streamed(
            Readable.from(
              (async function* () {
                for await (const r of records) yield `${JSON.stringify(r)}\n`;
              })(),
            ),
          ),
        );
      }
      const csv = stringify(REPORT_CSV_OPTIONS);
      void (async () => {
        try {
          csv.write(reportHeader(scan.payloadKeys));
          for await (const r of records) if (!csv.write(reportRow(r, scan.payloadKeys))) await once(csv, 'drain');
          csv.end();
        } catch (err) {
          csv.destroy(err instanceof Error ? err : new Error(String(err)));
        }
      })();
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="${id}-report.csv"`)
        .send(streamed(csv));
    },
  );
};
