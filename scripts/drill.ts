// Failure drills: `npm run drill -- <scenario>`. A throwaway stack on free loopback ports (Temporal
// dev server on SQLite, nats-server, worker, bridge, simulator with the demo latencies) runs a
// campaign of the appointment reminder to recipients with mixed personas, whose every expected
// trail is known; mid-campaign the scenario's failure is injected. JSON on stdout, progress on stderr.
//
//   none            no failure (the control)
//   nats-8s         nats-server killed (-9) for 8 s, restarted on the same port and store
//   simulator-kill  the simulator killed -9, restarted after 5 s
//   nats-150s       nats-server down for 150 s
//   temporal-150s   the Temporal dev server down for 150 s (same SQLite file)
//
// DRILL_RECIPIENTS (default 400), DRILL_SPEED calls per minute (default 240), DRILL_FAIL_AFTER_S
// seconds after the start (default 20), DRILL_DEADLINE_S (default 900). DRILL_HISTORIES=DIR writes the
// decoded workflow history of every call the drill counts as wrong (cut off, dialled twice, answers
// differ, off its trail) to DIR/{recipient}.json, and the services' logs to DIR/logs, to see why.
import { writeFileSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startEphemeralStack, type EphemeralStack } from '../src/dev/ephemeral.js';
import { parseFlow } from '../src/flow/validate.js';
import { connectNats } from '../src/telephony/nats.js';
import { NatsCampaignStore, readAllRecords, type CallRecord } from '../src/store/campaigns.js';
import { stageRecipients } from '../src/campaign/recipients.js';
import { startCampaign } from '../src/client/campaigns.js';
import { callWorkflowId, campaignStatusQuery, type CampaignStatus } from '../src/workflows/messages.js';
import { writeDecodedHistory } from '../src/dev/histories.js';
import { payloadCodec } from '../src/config/index.js';
import { cpSync, mkdirSync } from 'node:fs';

const SCENARIOS = ['none', 'nats-8s', 'simulator-kill', 'nats-150s', 'temporal-150s'] as const;
type Scenario = (typeof SCENARIOS)[number];

/** A persona and what its call must show: the trail (element:branch) and the outcome. */
interface Case {
  persona: Record<string, unknown>;
  outcome: string;
  trail: string[];
}
const CASES: Case[] = [
  {
    persona: { attempts: ['answered'], keys: ['1'] },
    outcome: 'answered',
    trail: ['call:answered', 'menu:played', 'ask:1', 'confirmed:played'],
  },
  {
    persona: { attempts: ['answered'], keys: ['2'] },
    outcome: 'answered',
    trail: ['call:answered', 'menu:played', 'ask:2', 'cancelled:played'],
  },
  {
    persona: { attempts: ['answered'], keys: ['9', '1'] },
    outcome: 'answered',
    trail: ['call:answered', 'menu:played', 'ask:noMatch', 'menu-again:played', 'ask-again:1', 'confirmed:played'],
  },
  {
    persona: { attempts: ['answered'], keys: ['2'], pressDuringPrompt: true },
    outcome: 'answered',
    trail: ['call:answered', 'menu:played', 'ask:2', 'cancelled:played'],
  },
  {
    persona: { attempts: ['answered'], keys: ['1'] },
    outcome: 'answered',
    trail: ['call:answered', 'menu:played', 'ask:1', 'confirmed:played'],
  },
  {
    persona: { attempts: ['answered'], hangUpAt: 'menu' },
    outcome: 'answered',
    trail: ['call:answered', 'menu:hungUp'],
  },
  {
    persona: { attempts: ['answered'], hangUpAt: 'ask' },
    outcome: 'answered',
    trail: ['call:answered', 'menu:played', 'ask:hungUp'],
  },
  { persona: { attempts: ['busy'] }, outcome: 'busy', trail: ['call:busy'] },
  { persona: { attempts: ['noAnswer'] }, outcome: 'noAnswer', trail: ['call:noAnswer'] },
  { persona: { attempts: ['declined'] }, outcome: 'declined', trail: ['call:declined'] },
];
const caseOf = (i: number) => CASES[i % CASES.length] as Case;
/** Keys a persona presses at the collects its trail reaches. */
const keysPressed = (c: Case) => c.trail.filter((t) => /^ask(-again)?:\d$/.test(t)).map((t) => t.split(':')[1]);

const log = (m: string) => process.stderr.write(`drill: ${m}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function inject(s: EphemeralStack, scenario: Scenario): Promise<void> {
  const natsPort = Number(new URL(s.natsUrl).port);
  const natsDown = async (ms: number) => {
    log(`killing nats-server for ${ms / 1000} s`);
    await s.stack.kill('nats', 'SIGKILL');
    await sleep(ms);
    await s.stack.startNats({ port: natsPort, storeDir: join(s.dataDir, 'nats') });
    log('nats-server is back');
  };
  switch (scenario) {
    case 'none':
      return;
    case 'nats-8s':
      return natsDown(8_000);
    case 'nats-150s':
      return natsDown(150_000);
    case 'simulator-kill':
      log('kill -9 of the simulator, restart in 5 s');
      await s.stack.kill('simulator', 'SIGKILL');
      await sleep(5_000);
      // As the stack started it: its own NATS identity.
      await s.stack.startService('simulator', 'simulator', { ...s.env, ...s.nats.env('simulator') });
      log('simulator is back');
      return;
    case 'temporal-150s': {
      log('stopping the Temporal dev server for 150 s');
      await s.stack.kill('temporal', 'SIGKILL');
      await sleep(150_000);
      // A dev server reopening the SQLite file of hundreds of calls can take over a minute on a busy machine.
      await s.stack.startTemporal({
        port: Number(s.config.temporal.address.split(':').at(-1)),
        dbFile: join(s.dataDir, 'temporal.db'),
        deadlineMs: 180_000,
      });
      log('Temporal is back');
      return;
    }
  }
}

export interface DrillResult {
  scenario: Scenario;
  recipients: number;
  completed: number;
  dialledTwice: number;
  cutOff: number;
  answersDiffer: number;
  wrongTrail: number;
  campaignState: string;
  durationSeconds: number;
  outbox: unknown;
  examples: {
    dialledTwice: string[];
    cutOff: string[];
    answersDiffer: string[];
    wrongTrail: Array<{ id: string; want: string; got: string }>;
  };
}

async function drill(scenario: Scenario): Promise<DrillResult> {
  const n = Number(process.env.DRILL_RECIPIENTS ?? 400);
  const speed = Number(process.env.DRILL_SPEED ?? 240);
  const failAfterMs = Number(process.env.DRILL_FAIL_AFTER_S ?? 20) * 1000;
  const deadlineMs = Number(process.env.DRILL_DEADLINE_S ?? 900) * 1000;
  const flow = parseFlow(
    JSON.parse(readFileSync(new URL('../examples/appointment-reminder.json', import.meta.url), 'utf8')),
  );
  const s = await startEphemeralStack({ sqlite: true, simLatency: 'demo' });
  const nc = await connectNats(s.natsUrl, 'drill');
  try {
    const store = await NatsCampaignStore.open(nc);
    const campaignId = `drill-${scenario}-${Date.now()}`;
    const file = join(s.dataDir, 'recipients.ndjson');
    writeFileSync(
      file,
      Array.from({ length: n }, (_, i) =>
        JSON.stringify({
          id: `r${i}`,
          phone: `+3859${String(40_000_000 + i)}`,
          firstName: 'Ana',
          timeZone: 'Europe/Zagreb',
          persona: caseOf(i).persona,
        }),
      ).join('\n'),
    );
    const staging = await stageRecipients(file, (k, rows) => store.putPage(campaignId, k, rows));
    if (staging.accepted !== n) throw new Error(`staged ${staging.accepted} of ${n} recipients`);
    const t0 = Date.now();
    const handle = await startCampaign(s.client, s.config.temporal.taskQueue, {
      campaignId,
      flow,
      pages: staging.pages,
      total: n,
      speed: { calls: speed, per: 'minute' },
      maxConcurrent: n,
      callTaskQueue: s.config.temporal.taskQueue,
    });
    log(`campaign ${campaignId}: ${n} recipients at ${speed}/min; ${scenario} after ${failAfterMs / 1000} s`);
    const failure = sleep(failAfterMs).then(() => inject(s, scenario));
    let status: CampaignStatus | undefined;
    let lastLog = 0;
    while (Date.now() - t0 < deadlineMs) {
      await sleep(2_000);
      try {
        status = await handle.query(campaignStatusQuery);
      } catch {
        continue; // Temporal down (the temporal drill): ask again
      }
      if (Date.now() - lastLog > 15_000) {
        lastLog = Date.now();
        log(`${status.state} ${status.completed}/${status.total} (in flight ${status.inFlight})`);
      }
      if (status.state === 'completed' || status.state === 'cancelled') break;
    }
    await failure;
    const durationSeconds = Math.round((Date.now() - t0) / 1000);

    const records = new Map<string, CallRecord>();
    for (const r of await readAllRecords(store, campaignId)) records.set(r.recipientId, r);
    const stats = await s.simulatorStats();
    // Dials per recipient workflow (call ids are `{workflowId}~{dial}`).
    const dialsByRecipient = new Map<string, number>();
    for (const [callId, dials] of Object.entries(stats.dialsByCall)) {
      if (!callId.startsWith(`call:${campaignId}:`)) continue;
      const wf = callId.slice(0, callId.lastIndexOf('~'));
      const id = wf.slice(`call:${campaignId}:`.length);
      dialsByRecipient.set(id, (dialsByRecipient.get(id) ?? 0) + dials);
    }
    const ex: DrillResult['examples'] = { dialledTwice: [], cutOff: [], answersDiffer: [], wrongTrail: [] };
    let cutOff = 0;
    let answersDiffer = 0;
    let wrongTrail = 0;
    for (let i = 0; i < n; i++) {
      const id = `r${i}`;
      const c = caseOf(i);
      const r = records.get(id);
      if (!r) continue;
      const trail = r.responses.map((t) => `${t.element}:${t.branch}`);
      const got = `${r.outcome} ${trail.join(',')}`;
      const want = `${c.outcome} ${c.trail.join(',')}`;
      if (got !== want) {
        wrongTrail += 1;
        if (ex.wrongTrail.length < 10) ex.wrongTrail.push({ id, want, got });
      }
      // Cut off: a call of a persona that answers, ended by the platform (`callEnded`) or failed.
      if (c.outcome === 'answered' && (trail.some((t) => t.endsWith(':callEnded')) || r.outcome !== 'answered')) {
        cutOff += 1;
        if (ex.cutOff.length < 10) ex.cutOff.push(id);
      }
      const answers = r.responses
        .filter((t) => /^ask(-again)?$/.test(t.element) && /^\d$/.test(t.branch))
        .map((t) => t.branch);
      const pressed = keysPressed(c);
      if (answers.some((a, k) => a !== pressed[k])) {
        answersDiffer += 1;
        if (ex.answersDiffer.length < 10) ex.answersDiffer.push(id);
      }
    }
    let dialledTwice = 0;
    for (const [id, d] of dialsByRecipient) {
      if (d <= 1) continue;
      dialledTwice += 1;
      if (ex.dialledTwice.length < 10) ex.dialledTwice.push(id);
    }
    const historiesDir = process.env.DRILL_HISTORIES;
    if (historiesDir) {
      mkdirSync(historiesDir, { recursive: true });
      const wrong = new Set([...ex.dialledTwice, ...ex.cutOff, ...ex.answersDiffer, ...ex.wrongTrail.map((w) => w.id)]);
      const codec = payloadCodec(s.config);
      for (const id of wrong)
        await writeDecodedHistory(
          join(historiesDir, `${id}.json`),
          s.client.workflow.getHandle(callWorkflowId(campaignId, id)),
          codec,
        );
      cpSync(s.stack.logDir, join(historiesDir, 'logs'), { recursive: true });
      log(`${wrong.size} histories and the services' logs in ${historiesDir}`);
    }
    return {
      scenario,
      recipients: n,
      completed: records.size,
      dialledTwice,
      cutOff,
      answersDiffer,
      wrongTrail,
      campaignState: status ? `${status.state} ${status.completed}/${status.total}` : 'unknown',
      durationSeconds,
      outbox: stats.outbox,
      examples: ex,
    };
  } finally {
    await nc.close().catch(() => undefined);
    await s.stop();
  }
}

const scenario = process.argv[2] ?? 'none';
if (!(SCENARIOS as readonly string[]).includes(scenario)) {
  process.stderr.write(`unknown drill "${scenario}" (available: ${SCENARIOS.join(', ')})\n`);
  process.exit(2);
}
const result = await drill(scenario as Scenario);
process.stdout.write(`${JSON.stringify({ drill: result.scenario, ...result })}\n`);
process.exit(0);
