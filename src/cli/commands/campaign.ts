// `dialflow campaign start|check|status|pause|resume|cancel|report|forecast`.
import { existsSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { DateTime } from 'luxon';
import { SingleBar, Presets } from 'cli-progress';
import type { WorkflowHandle } from '@temporalio/client';
import { NatsCampaignStore } from '../../store/campaigns.js';
import { CampaignDraftStore } from '../../store/campaign-drafts.js';
import {
  formatOf,
  RecipientsFileError,
  stageRecipients,
  stagingSummary,
  type StagingResult,
  type StagingSummary,
} from '../../campaign/recipients.js';
import { reportCsv } from '../../campaign/report.js';
import { formatSpeed } from '../../campaign/pacing.js';
import type { Forecast } from '../../campaign/forecast.js';
import { campaignIdProblem } from '../../client/campaigns.js';
import {
  campaignForecast,
  campaignReport,
  campaignSpeed,
  campaignStatus,
  CampaignControlError,
  CampaignNotFoundError,
  controlCampaign,
  DEFAULT_AVG_CALL_SECONDS,
  DEFAULT_MAX_CONCURRENT,
  launchCampaign,
  recipientZones,
  reportJson,
  stageCampaignRecipients,
} from '../../client/campaign-control.js';
import type { campaignWorkflow } from '../../workflows/index.js';
import { campaignStatusQuery, type CampaignStatus } from '../../workflows/messages.js';
import { CliError } from '../errors.js';
import { withNats, withTemporal, type CliContext } from '../connections.js';
import { requireValidFlow } from '../validate.js';
import { contactCapOption, ianaZone, isoDateTime, positiveInteger, speedOption } from '../options.js';
import type { CallingSpeed } from '../../flow/schema.js';

function reportProblems(file: string, s: StagingResult): void {
  for (const p of s.rejected.slice(0, 20)) process.stderr.write(`${file}: ${p.message} [${p.code}]\n`);
  if (s.rejectedTotal > 20)
    process.stderr.write(`${file}: … ${s.rejectedTotal - 20} more rows skipped (see \`dialflow campaign report\`)\n`);
}

/** `20000 rows: 19999 valid, 0 duplicates, 1 invalid (row.malformed 1)`. */
function summaryLine(s: StagingSummary): string {
  const codes = Object.entries(s.byCode)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return `${s.rows} rows: ${s.valid} valid, ${s.duplicates} duplicate${s.duplicates === 1 ? '' : 's'}, ${s.invalid} invalid${codes ? ` (${codes})` : ''}`;
}

/** A recipients file that cannot be read at all is exit 2, like an unreadable flow. */
async function staged<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof RecipientsFileError) throw new CliError(err.message, 2);
    throw err;
  }
}

function statusLine(s: CampaignStatus): string {
  const outcomes = Object.entries(s.byOutcome)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return `${s.campaignId}: ${s.state}, ${s.completed}/${s.total} done, ${s.inFlight} in flight, ${s.remaining} to place${s.waitingForWindow ? ` (${s.waitingForWindow} waiting for their window)` : ''}, speed ${s.speed}${s.eta ? `, ETA ${s.eta}` : ''}${outcomes ? ` — ${outcomes}` : ''}`;
}

async function follow(handle: WorkflowHandle<typeof campaignWorkflow>, json: boolean): Promise<CampaignStatus> {
  const tty = Boolean(process.stderr.isTTY) && !json;
  const bar = tty
    ? new SingleBar(
        {
          format: 'calls {bar} {value}/{total} | {inflight} in flight | ETA {eta_formatted}',
          stream: process.stderr,
          hideCursor: true,
        },
        Presets.shades_classic,
      )
    : undefined;
  let started = false;
  let lastLine = 0;
  for (;;) {
    const s = await handle.query(campaignStatusQuery);
    if (bar) {
      if (!started) bar.start(s.total, s.completed, { inflight: s.inFlight });
      bar.update(s.completed, { inflight: s.inFlight });
      started = true;
    } else if (!json && Date.now() - lastLine > 5_000) {
      process.stderr.write(`${statusLine(s)}\n`);
      lastLine = Date.now();
    }
    if (s.state === 'completed' || s.state === 'cancelled') {
      bar?.stop();
      return s;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

export function formatForecast(f: Forecast, zone = 'UTC'): string {
  const at = (iso?: string) => (iso ? DateTime.fromISO(iso, { zone }).toFormat('ccc yyyy-LL-dd HH:mm') : '-');
  const lines = [
    `recipients:        ${f.recipients} (${f.notCallable} not callable: no known zone)`,
    `placement rate:    ${f.effectiveCallsPerHour}/hour`,
    `first dial:        ${at(f.firstDialAt)}`,
    `last first dial:   ${at(f.lastFirstDialAt)}`,
    `all done:          ${at(f.finishAt)} (no retries)  ·  ${at(f.finishWorstCaseAt)} (every retry used)`,
    `dials per day:     ${f.perDay.map((d) => `${d.date} ${d.dials}`).join(', ')}`,
    `zones:             ${f.zones.map((z) => `${z.zone} ${z.recipients}`).join(', ')}`,
  ];
  return `${lines.join('\n')}\n`;
}

export function registerCampaignCommands(program: Command, ctx: CliContext): void {
  const campaign = program
    .command('campaign')
    .description('run outbound campaigns: start, follow, control, report and forecast');

  ctx
    .connects(
      campaign
        .command('start')
        .description('stage the recipients and start a campaign')
        .requiredOption('--flow <file>', 'flow document (JSON or YAML)')
        .requiredOption(
          '--recipients <file>',
          'CSV or NDJSON: id, phone, optional timeZone, any attributes; persona for the simulator',
        )
        .option('--id <campaignId>', 'campaign id (default: the flow id and the time)')
        .addOption(
          new Option(
            '--speed <n/period>',
            'calling speed, e.g. 100/minute (default: the flow’s callingSpeed, else 60/minute)',
          ).argParser(speedOption),
        )
        .addOption(
          new Option('--max-concurrent <n>', 'at most this many calls at once')
            .default(DEFAULT_MAX_CONCURRENT)
            .argParser(positiveInteger),
        )
        .addOption(
          new Option(
            '--contact-cap <n/days>',
            'at most N calls per recipient within D days, across campaigns, e.g. 3/30d',
          ).argParser(contactCapOption),
        )
        .option('--follow', 'follow progress until the campaign ends', false)
        .option('--json', 'print JSON (with --follow: the final report with counts by outcome)', false),
    )
    .action(
      async (o: {
        flow: string;
        recipients: string;
        id?: string;
        speed?: CallingSpeed;
        maxConcurrent: number;
        contactCap?: { max: number; windowDays: number };
        follow: boolean;
        json: boolean;
      }) => {
        const idProblem = o.id === undefined ? undefined : campaignIdProblem(o.id);
        if (idProblem) throw new CliError(`--id: ${idProblem}`, 2);
        const flow = requireValidFlow(o.flow);
        if (!flow.start)
          throw new CliError(
            `${o.flow} is an inbound flow: campaigns call out (it needs a startOutgoingCall as its start)`,
            1,
          );
        if (!existsSync(o.recipients)) throw new CliError(`cannot read ${o.recipients}`, 2);
        const campaignId =
          o.id ?? `${flow.id}-${DateTime.utc().toFormat('yyyyMMddHHmmss')}`.replace(/[^A-Za-z0-9_-]/g, '-');
        if (campaignIdProblem(campaignId))
          throw new CliError(`campaign id "${campaignId}" (from the flow id): give one with --id`, 2);
        const speed = campaignSpeed(flow, o.speed);
        const config = ctx.config();
        const staging = await withNats(config.nats, async (nc) => {
          // A campaign created through the API (a draft) is started there: its recipients are the
          // ones uploaded to it, and staging these over them would change what the API shows.
          if (await (await CampaignDraftStore.open(nc)).get(campaignId))
            throw new CliError(
              `campaign "${campaignId}" was created through the API: start it there (POST /api/campaigns/${campaignId}/start or the console), or pick another --id`,
              1,
            );
          const store = await NatsCampaignStore.open(nc);
          return staged(() => stageCampaignRecipients(store, campaignId, o.recipients, formatOf(o.recipients)));
        });
        reportProblems(o.recipients, staging);
        process.stderr.write(`${o.recipients}: ${summaryLine(stagingSummary(staging))}\n`);
        if (staging.accepted === 0)
          throw new CliError(`${o.recipients}: no valid recipient (${staging.rejectedTotal} rows skipped)`, 1);
        const final = await withTemporal(config, async (client) => {
          const handle = await launchCampaign(client, config.temporal.taskQueue, {
            campaignId,
            flow,
            pages: staging.pages,
            total: staging.accepted,
            settings: { speed, maxConcurrent: o.maxConcurrent, ...(o.contactCap ? { contactCap: o.contactCap } : {}) },
          });
          process.stderr.write(
            `campaign ${campaignId}: ${staging.accepted} recipients (${staging.rejectedTotal} rows skipped), ${formatSpeed(speed)}, at most ${o.maxConcurrent} at once\n`,
          );
          return o.follow ? follow(handle, o.json) : undefined;
        });
        if (final)
          process.stdout.write(
            o.json
              ? `${JSON.stringify({ ...final, rejectedRows: staging.rejectedTotal }, null, 2)}\n`
              : `${statusLine(final)}\n`,
          );
        else
          process.stdout.write(
            o.json
              ? `${JSON.stringify({ campaignId, recipients: staging.accepted, rejectedRows: staging.rejectedTotal })}\n`
              : `${campaignId}\n`,
          );
      },
    );

  const asCliError = (err: unknown): never => {
    if (err instanceof CampaignNotFoundError || err instanceof CampaignControlError) throw new CliError(err.message, 1);
    throw err;
  };

  ctx
    .connects(
      campaign
        .command('status')
        .description('counts by outcome, in flight, remaining, ETA')
        .argument('<campaignId>')
        .option('--json', 'print JSON', false),
    )
    .action(async (id: string, o: { json: boolean }) => {
      const s = await withTemporal(ctx.config(), (client) => campaignStatus(client, id).catch(asCliError));
      process.stdout.write(o.json ? `${JSON.stringify(s, null, 2)}\n` : `${statusLine(s)}\n`);
    });

  for (const [name, what] of [
    ['pause', 'stop placing calls; calls waiting for their slot are withdrawn'],
    ['resume', 'continue a paused campaign'],
    ['cancel', 'stop for good; calls in progress finish'],
  ] as const) {
    ctx.connects(campaign.command(name).description(what).argument('<campaignId>')).action(async (id: string) => {
      const r = await withTemporal(ctx.config(), (client) => controlCampaign(client, id, name).catch(asCliError));
      process.stdout.write(
        `${id}: ${r.state}${r.withdrawn !== undefined ? ` (${r.withdrawn} waiting calls withdrawn)` : ''}\n`,
      );
    });
  }

  ctx
    .connects(
      campaign
        .command('report')
        .description('per recipient: outcome, attempts, duration, responses (masked per reporting), data payload')
        .argument('<campaignId>')
        .option('--csv', 'CSV (default)', false)
        .option('--json', 'JSON', false),
    )
    .action(async (id: string, o: { csv: boolean; json: boolean }) => {
      const { records, meta } = await withNats(ctx.config().nats, async (nc) =>
        campaignReport(await NatsCampaignStore.open(nc), id),
      );
      if (!meta && records.length === 0) throw new CliError(`no campaign "${id}"`, 1);
      if (o.json) {
        process.stdout.write(`${JSON.stringify(reportJson(id, records, meta), null, 2)}\n`);
        return;
      }
      process.stdout.write(reportCsv(records));
    });

  campaign
    .command('check')
    .description('stage the recipients as a dry run (nothing is written): rows, valid, duplicates, invalid by code')
    .requiredOption('--recipients <file>', 'CSV or NDJSON')
    .option('--json', 'print JSON: {rows, valid, duplicates, invalid, byCode, problems}', false)
    .action(async (o: { recipients: string; json: boolean }) => {
      if (!existsSync(o.recipients)) throw new CliError(`cannot read ${o.recipients}`, 2);
      // Same reader and checks as `campaign start`, with pages thrown away instead of stored.
      const staging = await staged(() =>
        stageRecipients(o.recipients, async () => undefined, { format: formatOf(o.recipients) }),
      );
      const summary = stagingSummary(staging);
      if (o.json) process.stdout.write(`${JSON.stringify({ ...summary, problems: staging.rejected }, null, 2)}\n`);
      else {
        reportProblems(o.recipients, staging);
        process.stdout.write(`${o.recipients}: ${summaryLine(summary)}\n`);
      }
    });

  campaign
    .command('forecast')
    .description('estimate when a campaign would finish: speed, concurrency, windows in each recipient’s zone, retries')
    .requiredOption('--flow <file>', 'flow document')
    .requiredOption('--recipients <file>', 'CSV or NDJSON')
    .addOption(
      new Option(
        '--speed <n/period>',
        'calling speed, e.g. 1000/day; append "spread" for even spacing (default: the flow’s, else 60/minute)',
      ).argParser(speedOption),
    )
    .addOption(
      new Option('--max-concurrent <n>', 'at most this many calls at once')
        .default(DEFAULT_MAX_CONCURRENT)
        .argParser(positiveInteger),
    )
    .addOption(
      new Option('--avg-call-seconds <n>', 'average call length')
        .default(DEFAULT_AVG_CALL_SECONDS)
        .argParser(positiveInteger),
    )
    .addOption(new Option('--start <iso>', 'campaign start (default: now)').argParser(isoDateTime))
    .addOption(new Option('--zone <iana>', 'show times in this zone').default('UTC').argParser(ianaZone))
    .option('--json', 'print JSON', false)
    .action(
      async (o: {
        flow: string;
        recipients: string;
        speed?: CallingSpeed;
        maxConcurrent: number;
        avgCallSeconds: number;
        start?: number;
        zone: string;
        json: boolean;
      }) => {
        const flow = requireValidFlow(o.flow);
        if (!existsSync(o.recipients)) throw new CliError(`cannot read ${o.recipients}`, 2);
        const { zones, staging } = await staged(() => recipientZones(o.recipients));
        reportProblems(o.recipients, staging);
        const f = campaignForecast(flow, zones, {
          ...(o.speed ? { speed: o.speed } : {}),
          maxConcurrent: o.maxConcurrent,
          ...(o.start !== undefined ? { start: o.start } : {}),
          avgCallSeconds: o.avgCallSeconds,
        });
        process.stdout.write(o.json ? `${JSON.stringify(f, null, 2)}\n` : formatForecast(f, o.zone));
      },
    );
}
