// /api/campaigns: create a draft (flow version and settings), upload its recipients (streamed, never
// buffered whole), forecast, start, pause/resume/cancel, status (also as Server-Sent Events) and
// the report (streamed). Staging, forecast, start, control and report are the CLI's own code
// (src/client/campaign-control.ts), so `dialflow campaign …` and the API agree.
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { IANAZone } from 'luxon';
import { stringify } from 'csv-stringify/sync';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { RecipientsFileError, stagingSummary, ROW_CODES } from '../../campaign/recipients.js';
import { REPORT_CSV_OPTIONS, reportHeader, reportRow } from '../../campaign/report.js';
import { formatSpeed } from '../../campaign/pacing.js';
import { parseSpeed } from '../../campaign/speed.js';
import { CAMPAIGN_ID, campaignIdProblem, RESERVED_CAMPAIGN_IDS } from '../../client/campaigns.js';
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
import { NatsCampaignStore, type PageStore } from '../../store/campaigns.js';
import {
  CampaignDraftStore,
  DraftChangedError,
  type CampaignDraft,
  type UploadClaim,
} from '../../store/campaign-drafts.js';
import { callingSpeedSchema, type Flow } from '../../flow/schema.js';
import type { CampaignStatus } from '../../workflows/messages.js';
import { audited, sendError } from '../auth.js';
import type { ApiDeps } from '../deps.js';
import { errorBodySchema, flowVersionParamsSchema } from '../schemas.js';
import { limitedBody, mediaTypeOf, UploadTooLargeError } from '../uploads.js';

/** The most bytes one recipients upload may have (a million rows of a few hundred bytes fit many times). */
export const RECIPIENTS_UPLOAD_LIMIT = 2 * 1024 ** 3;
/** Row problems an upload answers with; all of them are in the report's rejected rows. */
const LISTED_PROBLEMS = 100;
/** SSE: how often the status is read, and how long a quiet stream waits before a heartbeat comment. */
const EVENTS_POLL_MS = 1000;
const EVENTS_HEARTBEAT_MS = 15_000;
/** Event streams open at once per process: each holds a connection and polls; more answer 503. */
export const MAX_EVENT_STREAMS = 100;
/**
 * An upload's claim on its draft (see the recipients route): renewed this often while it stages;
 * its holder stops writing pages once its last renewal is older than UPLOAD_FENCE_MS (its own
 * clock), and another upload takes a claim over only once its last write is older than
 * UPLOAD_LEASE_MS (the NATS server's clock). The difference is the margin for a page write under
 * way and for clocks that disagree.
 */
const UPLOAD_RENEW_MS = 10_000;
const UPLOAD_FENCE_MS = 30_000;
const UPLOAD_LEASE_MS = 90_000;
/** The list reads this many campaigns of Temporal's visibility, newest first. */
const LIST_LIMIT = 200;

const UPLOAD_TYPES = { 'text/csv': 'csv', 'application/x-ndjson': 'ndjson' } as const;

const campaignIdSchema = z
  .string()
  .regex(CAMPAIGN_ID, 'campaign ids are letters, digits, "-" and "_", at most 64, starting with a letter or digit');
const paramsSchema = z.object({ id: campaignIdSchema });

const createBodySchema = z
  .object({
    // A new campaign may not take an id that labels calls of no campaign (api, cli, …).
    id: campaignIdSchema.refine((id) => campaignIdProblem(id) === undefined, {
      message: `${RESERVED_CAMPAIGN_IDS.join(', ')} are reserved: they label calls of no campaign`,
    }),
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

/** The upload's claim was taken over (it had not been renewed for UPLOAD_LEASE_MS) or the draft changed. */
class UploadClaimLostError extends Error {
  override readonly name = 'UploadClaimLostError';
}

/**
 * Two uploads of one campaign's recipients, on any API replicas, must not mix their pages: both
 * write `<campaign>/pages/<n>`, the names the campaign workflow reads. So an upload first claims the
 * draft with a compare-and-set write (`draft.upload`, its recipients removed); a second upload
 * meanwhile sees the claim and is refused, or loses the compare-and-set and is refused. The holder
 * renews the claim while it stages and commits its summary with a compare-and-set on the revision
 * it last wrote: the committed summary is that of the pages it wrote, for no one else wrote pages
 * while it held the claim. A holder that died leaves a claim that is no longer renewed: another
 * upload takes it over after UPLOAD_LEASE_MS; a holder that is alive but could not renew stops
 * writing pages after UPLOAD_FENCE_MS, long before that, and its commit fails.
 */
class UploadLease {
  private renewedAt = Date.now();
  private lost = false;
  private chain: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly drafts: CampaignDraftStore,
    private readonly claimed: CampaignDraft,
    private revision: number,
    onRenewFailure: (err: unknown) => void,
  ) {
    this.timer = setInterval(() => {
      this.chain = this.chain.then(async () => {
        if (this.lost) return;
        try {
          this.revision = await this.drafts.update(this.claimed, this.revision);
          this.renewedAt = Date.now();
        } catch (err) {
          if (err instanceof DraftChangedError) this.lost = true;
          // NATS away a moment: the next renewal tries again; the fence stops the writes meanwhile.
          else onRenewFailure(err);
        }
      });
    }, UPLOAD_RENEW_MS);
  }

  /** Before each write: UploadClaimLostError once the claim may be someone else's. */
  check(): void {
    if (this.lost || Date.now() - this.renewedAt > UPLOAD_FENCE_MS)
      throw new UploadClaimLostError(`another upload of campaign ${this.claimed.campaignId} took over`);
  }

  private async settle(): Promise<void> {
    clearInterval(this.timer);
    await this.chain;
  }

  /** Write the draft with the staged recipients, the claim removed; UploadClaimLostError if it is lost. */
  async commit(draft: CampaignDraft): Promise<void> {
    await this.settle();
    this.check();
    try {
      await this.drafts.update(draft, this.revision);
    } catch (err) {
      if (!(err instanceof DraftChangedError)) throw err;
      throw new UploadClaimLostError(`another upload of campaign ${this.claimed.campaignId} took over`);
    }
  }

  /** A failed upload: the claim removed (if still ours), the draft left without recipients. */
  async release(draft: CampaignDraft): Promise<void> {
    await this.settle();
    if (this.lost) return;
    try {
      await this.drafts.update(draft, this.revision);
    } catch (err) {
      if (!(err instanceof DraftChangedError)) throw err;
    }
  }

  /** The page store, writes refused once the claim may be lost. */
  fenced(store: PageStore): PageStore {
    return {
      putPage: async (campaignId, n, rows) => {
        this.check();
        await store.putPage(campaignId, n, rows);
      },
      getPage: (campaignId, n) => store.getPage(campaignId, n),
      putMeta: async (meta) => {
        this.check();
        await store.putMeta(meta);
      },
      getMeta: (campaignId) => store.getMeta(campaignId),
    };
  }
}

/** A claim still held: written less than UPLOAD_LEASE_MS ago (the draft's last write renews it). */
const heldClaim = (d: { draft: CampaignDraft; writtenAt: Date }): UploadClaim | undefined =>
  d.draft.upload && Date.now() - d.writtenAt.getTime() < UPLOAD_LEASE_MS ? d.draft.upload : undefined;

function settingsProblems(error: z.ZodError) {
  return error.issues.map((i) => {
    const path = i.path.map(String).join('.');
    if (i.code === 'unrecognized_keys')
      return { code: 'body.unknownField', path, message: `unknown field(s): ${i.keys.join(', ')}` };
    return { code: `${String(i.path[0] ?? 'body')}.invalid`, path, message: i.message };
  });
}

/** Wait `ms`, or less if `signal` aborts (no listener is left behind either way). */
async function pause(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch (err) {
    if (!signal.aborted) throw err;
  }
}

const isOver = (state: CampaignView['state']) => state === 'completed' || state === 'cancelled';

export const campaignRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, deps) => {
  const { nc, client, taskQueue, flows, audit } = deps;
  const [drafts, store] = await Promise.all([CampaignDraftStore.open(nc), NatsCampaignStore.open(nc)]);
  /** Branch counts and recent dials of the campaigns looked at, read incrementally from their records. */
  const tallies = new Map<string, RecordTally>();
  /** Open event streams, ended when the server closes (they would hold it open). */
  const streams = new Set<AbortController>();
  /**
   * The status the event streams of a campaign show, read at most once per poll interval however
   * many streams watch it: [campaign id → the last read and when it began, streams watching].
   */
  const polls = new Map<string, { at: number; view: Promise<CampaignView | undefined>; watchers: number }>();

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
    let status: CampaignStatus;
    try {
      // A draft not marked started is asked too: its workflow may exist all the same (a start whose
      // answer was lost after Temporal had started it).
      status = await campaignStatus(client, id);
    } catch (err) {
      if (!(err instanceof CampaignNotFoundError)) throw err;
      // No workflow: a draft (also one marked started whose start failed before the workflow existed).
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
      // No route bodyLimit: Fastify does not count a stream's bytes (limitedBody() does), and a JSON body
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
      const format = UPLOAD_TYPES[mediaTypeOf(request.headers['content-type']) as keyof typeof UPLOAD_TYPES];
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
      // Its workflow may exist without the draft saying so (a start whose answer was lost): the
      // workflow reads the pages as it goes, so they must not change under it.
      if (current.draft.startedAt || (await workflowExists(id)))
        return refuse(409, 'campaign.started', `campaign "${id}" has started: its recipients are fixed`);
      const inProgress = () =>
        refuse(409, 'campaign.uploadInProgress', `recipients of "${id}" are being uploaded already`);
      if (heldClaim(current)) return inProgress();
      // Claimed first (see UploadLease), the old recipients removed: a start meanwhile finds none.
      const { recipients: _old, upload: _stale, ...bare } = current.draft;
      const claimed: CampaignDraft = {
        ...bare,
        upload: {
          id: randomUUID(),
          ...(request.principal?.name ? { by: request.principal.name } : {}),
          claimedAt: new Date().toISOString(),
        },
      };
      let revision: number;
      try {
        revision = await drafts.update(claimed, current.revision);
      } catch (err) {
        if (!(err instanceof DraftChangedError)) throw err;
        const now = await drafts.get(id);
        if (now && heldClaim(now)) return inProgress();
        return refuse(409, 'campaign.changed', err.message);
      }
      const lease = new UploadLease(drafts, claimed, revision, (err) =>
        request.log.warn({ err, campaignId: id }, 'recipients upload: claim not renewed'),
      );
      let staging;
      try {
        staging = await stageCampaignRecipients(
          lease.fenced(store),
          id,
          {
            name: 'upload',
            stream: limitedBody(
              request.body,
              RECIPIENTS_UPLOAD_LIMIT,
              `recipients uploads are at most ${RECIPIENTS_UPLOAD_LIMIT} bytes`,
            ),
          },
          format,
        );
      } catch (err) {
        await lease.release(bare);
        if (err instanceof UploadTooLargeError) return refuse(413, 'payload_too_large', err.message);
        if (err instanceof RecipientsFileError) return refuse(400, 'recipients.unreadable', err.message);
        if (err instanceof UploadClaimLostError) return refuse(409, 'campaign.uploadInProgress', err.message);
        throw err;
      }
      const summary = stagingSummary(staging);
      try {
        await lease.commit({
          ...bare,
          recipients: {
            summary,
            pages: staging.pages,
            accepted: staging.accepted,
            format,
            uploadedAt: new Date().toISOString(),
          },
        });
      } catch (err) {
        if (!(err instanceof UploadClaimLostError)) throw err;
        return refuse(409, 'campaign.uploadInProgress', err.message);
      }
      request.log.info({ campaignId: id, ...summary, by: request.principal?.name }, 'campaign recipients staged');
      return { summary, problems: staging.rejected.slice(0, LISTED_PROBLEMS) };
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
      // The workflow decides, not the mark: one may run without the draft saying so (a start whose
      // answer was lost), and a draft marked started may have none (a failed start not undone).
      if (await workflowExists(id)) return sendError(reply, 409, 'campaign.started', `campaign "${id}" has started`);
      if (heldClaim(current))
        return sendError(reply, 409, 'campaign.uploadInProgress', `recipients of "${id}" are being uploaded`);
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
        // The start may have failed after Temporal started the workflow (its answer lost): the draft
        // is a draft again only if there is no workflow. If that cannot be told, it stays marked
        // (no upload can then change the pages), and a start may be tried again.
        const started = await workflowExists(id).catch((lookup: unknown) => {
          request.log.warn({ err: lookup, campaignId: id }, 'campaign start failed: workflow lookup failed too');
          return true;
        });
        if (!started) await drafts.update(d, revision);
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
        let outcome: string;
        try {
          // Whatever the draft says: the workflow is what runs (it may have been started without the draft knowing).
          outcome = (await controlCampaign(client, id, control)).state;
        } catch (err) {
          if (err instanceof CampaignNotFoundError) {
            if (await drafts.get(id))
              return sendError(reply, 409, 'campaign.notStarted', `campaign "${id}" is not started`);
            return unknown(reply, id);
          }
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

  /** The campaign's view for an event stream: one read per poll interval, shared by its streams. */
  const polledView = (id: string): Promise<CampaignView | undefined> => {
    const poll = polls.get(id);
    if (!poll) return viewOf(id);
    if (Date.now() - poll.at >= EVENTS_POLL_MS) {
      poll.at = Date.now();
      poll.view = viewOf(id);
      // A failed read is reported to the streams that wait for it; the next poll reads again.
      poll.view.catch(() => {
        poll.at = 0;
      });
    }
    return poll.view;
  };
  const watch = (id: string, first: CampaignView) => {
    const poll = polls.get(id);
    if (poll) poll.watchers += 1;
    else polls.set(id, { at: Date.now(), view: Promise.resolve(first), watchers: 1 });
    return () => {
      const p = polls.get(id);
      if (p && --p.watchers === 0) polls.delete(id);
    };
  };

  app.get(
    '/api/campaigns/:id/events',
    {
      config: { minRole: 'viewer' },
      // A HEAD would hold a stream open for nothing.
      exposeHeadRoute: false,
      schema: {
        summary: 'A campaign’s status as Server-Sent Events',
        description: `\`event: status\` with the status whenever it changes (read every ${EVENTS_POLL_MS} ms), heartbeat comments every ${EVENTS_HEARTBEAT_MS / 1000} s, \`event: end\` once the campaign is completed or cancelled. At most ${MAX_EVENT_STREAMS} streams at once per server (then 503 \`events.busy\`).`,
        tags: ['campaigns'],
        params: paramsSchema,
        response: { 200: z.string().describe('text/event-stream'), ...errors(400, 404, 503) },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      if (streams.size >= MAX_EVENT_STREAMS)
        return sendError(
          reply.header('retry-after', '5'),
          503,
          'events.busy',
          `this server has ${MAX_EVENT_STREAMS} event streams open: try again shortly`,
        );
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
      const unwatch = watch(id, view);
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
          await pause(EVENTS_POLL_MS, stop.signal);
          if (stop.signal.aborted) break;
          try {
            view = await polledView(id);
          } catch (err) {
            // A status read that failed (Temporal away a moment): the stream goes on, the next poll retries.
            request.log.warn({ err, campaignId: id }, 'campaign status read failed');
          }
        }
      } finally {
        unwatch();
        streams.delete(stop);
        res.end();
      }
    },
  );

  app.get(
    '/api/campaigns/:id/report',
    {
      config: { minRole: 'viewer' },
      // A HEAD would read the whole report to send none of it.
      exposeHeadRoute: false,
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
      // Readable.from pulls one line at a time as the client reads; a client that goes away destroys
      // it, which ends the generators (and the records they read) at once.
      const streamed = (lines: AsyncGenerator<string>) => Readable.from(lines) as unknown as string;
      if (request.query.format === 'json') {
        return reply.type('application/x-ndjson; charset=utf-8').send(
          streamed(
            (async function* () {
              for await (const r of records) yield `${JSON.stringify(r)}\n`;
            })(),
          ),
        );
      }
      const keys = scan.payloadKeys;
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="${id}-report.csv"`)
        .send(
          streamed(
            (async function* () {
              yield stringify([reportHeader(keys)], REPORT_CSV_OPTIONS);
              for await (const r of records) yield stringify([reportRow(r, keys)], REPORT_CSV_OPTIONS);
            })(),
          ),
        );
    },
  );
};
