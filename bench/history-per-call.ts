// History cost per call: events and workflow tasks of one answered-and-confirmed appointment
// reminder, (1) started directly with the simulator's demo latencies (ring, answer, speech per
// character, key time: events arrive apart, as on a real line), (2) placed by a campaign (slot,
// compliance gate and call record included), (3) with instant latencies (events arrive together).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import protos from '@temporalio/proto';
import { startCall } from '../src/client/calls.js';
import { startCampaign } from '../src/client/campaigns.js';
import { startEphemeralStack } from '../src/dev/ephemeral.js';
import { parseFlow } from '../src/flow/validate.js';
import { stageRecipients } from '../src/campaign/recipients.js';
import { NatsCampaignStore } from '../src/store/campaigns.js';
import { connectNats } from '../src/telephony/nats.js';
import { callWorkflowId } from '../src/workflows/messages.js';

const EventType = protos.temporal.api.enums.v1.EventType;
const PERSONA = { attempts: ['answered'], keys: ['1'] };
const TRAIL = 'call:answered,menu:played,ask:1,confirmed:played';

export interface HistoryCost {
  events: number;
  workflowTasks: number;
  /** Payload bytes in the history, as stored (encrypted). */
  payloadBytes: number;
  /** Events per type, for reading where they go. */
  byType: Record<string, number>;
}

/** Bytes of the payloads anywhere in a history event. */
function payloadBytes(v: unknown): number {
  if (!v || typeof v !== 'object' || v instanceof Uint8Array) return 0;
  const o = v as { data?: unknown; metadata?: unknown };
  if (o.data instanceof Uint8Array && o.metadata && typeof o.metadata === 'object') return o.data.length;
  let n = 0;
  for (const x of Object.values(o)) n += payloadBytes(x);
  return n;
}

/** One workflow's history counted: events, workflow tasks, payload bytes, events by type. */
export async function costOf(handle: WorkflowHandle): Promise<HistoryCost> {
  const events = (await handle.fetchHistory()).events ?? [];
  const byType: Record<string, number> = {};
  let bytes = 0;
  for (const e of events) {
    const name = (EventType[e.eventType ?? 0] ?? String(e.eventType)).replace(/^EVENT_TYPE_/, '');
    byType[name] = (byType[name] ?? 0) + 1;
    bytes += payloadBytes(e);
  }
  return { events: events.length, workflowTasks: byType.WORKFLOW_TASK_COMPLETED ?? 0, payloadBytes: bytes, byType };
}

async function measure(simLatency: 'demo' | 'instant', campaign: boolean): Promise<HistoryCost> {
  const flow = parseFlow(
    JSON.parse(readFileSync(new URL('../examples/appointment-reminder.json', import.meta.url), 'utf8')),
  );
  const s = await startEphemeralStack({ simLatency, taskQueue: `history-${simLatency}` });
  try {
    const recipient = { id: 'r1', phone: '+385915550101', firstName: 'Ana', timeZone: 'Europe/Zagreb' };
    const campaignId = `history-${simLatency}-${campaign ? 'campaign' : 'call'}`;
    let handle: WorkflowHandle;
    if (campaign) {
      const nc = await connectNats(s.natsUrl, 'bench-history');
      try {
        const store = await NatsCampaignStore.open(nc);
        const file = join(s.dataDir, 'one.ndjson');
        writeFileSync(file, JSON.stringify({ ...recipient, persona: PERSONA }));
        const staged = await stageRecipients(file, (k, rows) => store.putPage(campaignId, k, rows));
        const c = await startCampaign(s.client, s.config.temporal.taskQueue, {
          campaignId,
          flow,
          pages: staged.pages,
          total: 1,
          speed: { calls: 60, per: 'minute' },
          maxConcurrent: 1,
          callTaskQueue: s.config.temporal.taskQueue,
        });
        await c.result();
      } finally {
        await nc.close();
      }
      handle = s.client.workflow.getHandle(callWorkflowId(campaignId, recipient.id));
    } else {
      handle = await startCall(s.client, {
        flow,
        campaignId,
        taskQueue: s.config.temporal.taskQueue,
        recipient,
        hints: { persona: PERSONA },
      });
    }
    const result = (await handle.result()) as { trail: Array<{ element: string; branch: string }> };
    const trail = result.trail.map((t) => `${t.element}:${t.branch}`).join(',');
    if (trail !== TRAIL) throw new Error(`the measured call took ${trail}, not ${TRAIL}`);
    return await costOf(handle);
  } finally {
    await s.stop();
  }
}

/** The three cases, each on a throwaway stack of its own. */
export async function historyPerCall(): Promise<{
  historyEventsPerCall: { demoLatency: number; campaignPlaced: number; instant: number };
  workflowTasksPerCall: { demoLatency: number; campaignPlaced: number; instant: number };
  byType: {
    demoLatency: Record<string, number>;
    campaignPlaced: Record<string, number>;
    instant: Record<string, number>;
  };
}> {
  const demoLatency = await measure('demo', false);
  const campaignPlaced = await measure('demo', true);
  const instant = await measure('instant', false);
  return {
    historyEventsPerCall: {
      demoLatency: demoLatency.events,
      campaignPlaced: campaignPlaced.events,
      instant: instant.events,
    },
    workflowTasksPerCall: {
      demoLatency: demoLatency.workflowTasks,
      campaignPlaced: campaignPlaced.workflowTasks,
      instant: instant.workflowTasks,
    },
    byType: { demoLatency: demoLatency.byType, campaignPlaced: campaignPlaced.byType, instant: instant.byType },
  };
}
