// callWorkflow: one outbound call, a thin durable shell around the pure interpreter.
// It turns interpreter commands into an activity (telephony), timers (sleep) and signal waits.
import { proxyActivities, condition, sleep, setHandler, workflowInfo, allHandlersFinished, log, ActivityFailure, ApplicationFailure, CancellationScope, TemporalFailure, patched } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { ContactCap } from '../activities/index.js';
import type { Flow } from '../flow/schema.js';
import { initialState, step, type ActionRequest, type CallResult, type FlowEvent, type Recipient, type TrailEntry } from '../flow/interpreter.js';
import { startExpressionBudget } from '../flow/expressions.js';
import type { TelephonyEvent } from '../telephony/contract.js';
import { ERROR_CODES } from '../telephony/ids.js';

const KNOWN_ERROR_CODES = new Set<string>(ERROR_CODES);
import { callStatusQuery, telephonyEventSignal } from './messages.js';
import { metrics, type CallDirection } from './sinks.js';

/** Does any placeholder or expression read `profile.…`? */
function usesProfile(flow: Flow): boolean {
  return /\bprofile\./.test(JSON.stringify(flow.elements));
}

export interface CallWorkflowInput {
  /** The validated flow, embedded so a running call keeps the version it started with. */
  flow: Flow;
  recipient: Recipient;
  campaignId: string;
  /** Provider hints for this recipient (the simulator reads `persona`). */
  hints?: Record<string, unknown>;
  /** Set when a campaign placed the call: its dial slot and compliance settings. */
  campaign?: CampaignPlacement;
  /** A contact cap for a call outside campaigns (a campaign's own is in `campaign`). */
  contactCap?: ContactCap;
}

export interface CampaignPlacement {
  workflowId: string;
  /** The call may not dial before this instant (epoch ms): the campaign's calling speed. */
  slotAt: number;
  /** Row of the recipients file, for the report. */
  row: number;
  contactCap?: ContactCap;
}

const { sendTelephonyCommand, loadProfile } = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  scheduleToCloseTimeout: '2 minutes',
  retry: { initialInterval: '200 milliseconds', backoffCoefficient: 2, maximumInterval: '5 seconds', nonRetryableErrorTypes: ['InvalidCommandError'] },
});
// The gate before a dial: bounded, so a do-not-call store that stays away fails the call instead of
// holding it for the workflow's lifetime (and an unbounded schedule-to-close leaves a ten-year timer
// behind in the time-skipping test server, which it then skips to).
const { campaignGate } = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  scheduleToCloseTimeout: '10 minutes',
  retry: { initialInterval: '500 milliseconds', maximumInterval: '10 seconds' },
});
// A call's record is retried for as long as it takes: the campaign counts completions from records.
const { publishCallRecord } = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '500 milliseconds', maximumInterval: '10 seconds' },
});
const { sendSms, updateProfile } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  scheduleToCloseTimeout: '5 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});
// The element's own timeout and retries run inside the activity; it heartbeats between attempts.
const { httpRequest } = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '45 seconds',
  retry: { maximumAttempts: 1 },
});

/** Runs a non-IVR action; a failure becomes a result the flow can branch on, not a failed call. */
async function runAction(request: ActionRequest, recipientId: string): Promise<{ ok: boolean; data?: unknown; error?: string }> {
  try {
    switch (request.type) {
      case 'sendSms':
        return await sendSms({ ...(request.from ? { from: request.from } : {}), to: request.to, text: request.text });
      case 'updateProfile':
        return await updateProfile(recipientId, request.attributes);
      case 'httpRequest':
        return await httpRequest({ method: request.method, url: request.url, headers: request.headers, ...(request.body !== undefined ? { body: request.body } : {}), timeoutMs: request.timeoutMs, retries: request.retries });
    }
  } catch (err) {
    return { ok: false, error: err instanceof ActivityFailure && err.cause ? err.cause.message : (err as Error).message };
  }
}

/** Seen-event ids are kept to a bounded window: duplicates arrive close together. */
const SEEN_WINDOW = 512;

export async function callWorkflow(input: CallWorkflowInput): Promise<CallResult> {
  // Campaign placement is new input: no history without it can take this path, so no patch marker.
  if (input.campaign) return campaignCall(input, input.campaign);
  // Any other start (CLI, API, a plain start by hand) passes the same gate, at its first dial.
  const gate = { ...(input.contactCap ? { contactCap: input.contactCap } : {}) };
  return runCall({ flow: input.flow, recipient: input.recipient, campaignId: input.campaignId, direction: 'outbound', ...(input.hints ? { hints: input.hints } : {}), gate, first: async () => ({ type: 'start', at: Date.now() }) });
}

/**
 * A call placed by a campaign: wait for the slot (the only part a pause can withdraw: the call
 * then ends CANCELLED, never dialled, and may be placed again), check do-not-call and the contact
 * cap at dial time, run the flow, and store the call record for the campaign's counts and report.
 */
async function campaignCall(input: CallWorkflowInput, placement: CampaignPlacement): Promise<CallResult> {
  const wait = placement.slotAt - Date.now();
  if (wait > 0) await sleep(wait);
  return CancellationScope.nonCancellable(async () => {
    const dialFrom = Date.now();
    // What the call got to, for the record of a call that fails on the way.
    const progress: CallProgress = { dials: 0, trail: [] };
    const record = (result: Pick<CallResult, 'outcome' | 'dials' | 'trail' | 'dataPayload' | 'error'>) =>
      publishCallRecord({
        workflowId: workflowInfo().workflowId,
        record: {
          campaignId: input.campaignId,
          recipientId: input.recipient.id,
          row: placement.row,
          outcome: result.outcome,
          dials: result.dials,
          durationMs: result.dials > 0 ? Date.now() - dialFrom : 0,
          slotAt: placement.slotAt,
          endedAt: Date.now(),
          responses: result.trail,
          ...(result.dataPayload ? { dataPayload: result.dataPayload } : {}),
          ...(result.error ? { error: result.error } : {}),
        },
      });
    let result: CallResult;
    try {
      const gate = await campaignGate({ phone: input.recipient.phone, now: dialFrom, ...(placement.contactCap ? { contactCap: placement.contactCap } : {}) });
      result =
        gate === 'ok'
          ? await runCall({ flow: input.flow, recipient: input.recipient, campaignId: input.campaignId, direction: 'outbound', ...(input.hints ? { hints: input.hints } : {}), progress, first: async () => ({ type: 'start', at: Date.now() }) })
          : { outcome: gate, dials: 0, trail: [], visited: [], variables: {}, recordings: [], warnings: [] };
      if (gate !== 'ok') metrics.callCompleted(input.flow.id, input.campaignId, 'outbound', gate);
    } catch (err) {
      // A call that fails still counts for its campaign: without its record the campaign would
      // wait for it forever. Histories of calls that failed before this replay without the record.
      if (!patched('record-failed-calls')) throw err;
      const reason = failureReason(err);
      log.warn('call failed', { reason });
      metrics.callCompleted(input.flow.id, input.campaignId, 'outbound', 'failed');
      await record({ outcome: 'failed', dials: progress.dials, trail: progress.trail, error: reason });
      // A Temporal failure fails the workflow; anything else would only fail the workflow task
      // and be retried for ever, so it becomes a failure too (the record is already written).
      if (err instanceof TemporalFailure) throw err;
      throw ApplicationFailure.nonRetryable(reason, 'CallFailed');
    }
    await record(result);
    return result;
  });
}

/** A failure as one line for the call record: the activity's own error rather than its wrapper. */
function failureReason(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return `${err.activityType ?? 'activity'}: ${err.cause.message}`;
  return err instanceof Error ? err.message : String(err);
}

/** How far a call got: kept up to date by `runCall` after every interpreter step. */
interface CallProgress {
  dials: number;
  trail: TrailEntry[];
}

export interface InboundCallWorkflowInput {
  /** The flow routed to the dialled number, embedded so the call keeps its version. */
  flow: Flow;
  callId: string;
  /** The dialled number and the caller's. */
  to: string;
  from: string;
}

/** How long an inbound workflow waits for its CALL_RECEIVED (normally delivered with the start). */
const RECEIVED_WAIT_MS = 60_000;

/** inboundCallWorkflow: one inbound call, started by the bridge with signal-with-start on CALL_RECEIVED. */
export async function inboundCallWorkflow(input: InboundCallWorkflowInput): Promise<CallResult> {
  return runCall({
    flow: input.flow,
    recipient: { id: input.from, phone: input.from },
    campaignId: 'inbound',
    direction: 'inbound',
    first: async (queue) => {
      await condition(() => queue.some((e) => e.type === 'CALL_RECEIVED'), RECEIVED_WAIT_MS);
      const at = queue.findIndex((e) => e.type === 'CALL_RECEIVED');
      if (at > 0 || at === -1) log.warn('inbound call without CALL_RECEIVED first', { callId: input.callId });
      if (at >= 0) queue.splice(at, 1);
      return { type: 'incoming', at: Date.now(), callId: input.callId, to: input.to, from: input.from };
    },
  });
}

async function runCall(o: { flow: Flow; recipient: Recipient; campaignId: string; direction: CallDirection; hints?: Record<string, unknown>; gate?: { contactCap?: ContactCap }; progress?: CallProgress; first: (queue: TelephonyEvent[]) => Promise<FlowEvent> }): Promise<CallResult> {
  const { flow } = o;
  metrics.callStarted(flow.id, o.campaignId, o.direction);
  // Why the next dial is a retry: the error code of the last failed attempt (a bounded label).
  let lastFailure = 'first';
  const info = workflowInfo();
  const queue: TelephonyEvent[] = [];
  const seen = new Set<string>();
  setHandler(telephonyEventSignal, (ev) => {
    if (seen.has(ev.id)) return;
    seen.add(ev.id);
    if (seen.size > SEEN_WINDOW) seen.delete(seen.values().next().value as string);
    queue.push(ev);
  });

  // Math.random is seeded by Temporal and replays identically.
  const seed = Math.floor(Math.random() * 2 ** 32);
  // Profiles are loaded only when the flow uses them, keeping histories of simple flows short.
  const profile = usesProfile(flow) ? await loadProfile(o.recipient.id) : {};
  let state = initialState({ workflowId: info.workflowId, recipient: o.recipient, seed, profile, flow, ...(o.hints ? { hints: o.hints } : {}) });
  setHandler(callStatusQuery, () => ({
    flowId: flow.id,
    flowVersion: flow.version,
    element: state.element,
    phase: state.phase.kind,
    dials: state.dials,
    trail: state.trail,
    ...(state.result ? { outcome: state.result.outcome } : {}),
  }));

  let event: FlowEvent = await o.first(queue);
  let armed: { token: number; deadline: number } | undefined;
  for (;;) {
    // The expressions of one step share a step budget: however many elements a flow visits
    // between two waits, the activation stays far inside the worker's deadlock timeout.
    startExpressionBudget();
    const { state: next, commands } = await step(flow, state, event);
    state = next;
    if (o.progress) {
      o.progress.dials = state.dials;
      o.progress.trail = state.trail;
    }
    let following: FlowEvent | undefined;
    for (const cmd of commands) {
      switch (cmd.kind) {
        case 'telephony':
          // Do-not-call and the contact cap, checked when the first dial is due (after any wait
          // for the delivery window), as for campaign calls. Histories from before the gate replay without it.
          if (o.gate && cmd.command.action === 'dial' && cmd.command.dialIndex === 1 && patched('dnc-gate-all-calls')) {
            const gate = await campaignGate({ phone: cmd.command.to, now: Date.now(), ...o.gate });
            if (gate !== 'ok') {
              log.info('call not dialled', { outcome: gate });
              metrics.callCompleted(flow.id, o.campaignId, o.direction, gate);
              return { outcome: gate, dials: 0, trail: [], visited: [], variables: {}, recordings: [], warnings: [] };
            }
          }
          if (cmd.command.action === 'dial') metrics.dialAttempt(flow.id, o.campaignId, cmd.command.attempt > 1 ? lastFailure : 'first', cmd.command.commandId);
          await sendTelephonyCommand(cmd.command);
          break;
        case 'action': {
          const res = await runAction(cmd.request, o.recipient.id);
          following = { type: 'actionResult', token: cmd.token, at: Date.now(), ok: res.ok, ...(res.data !== undefined ? { data: res.data } : {}), ...(res.error ? { error: res.error } : {}) };
          break;
        }
        case 'sleep':
          await sleep(cmd.ms);
          following = { type: 'timer', token: cmd.token, at: Date.now() };
          break;
        case 'awaitEvent': {
          // An action already produced its result above; nothing to wait for.
          if (following?.type === 'actionResult') break;
          // A token keeps the deadline it was first armed with: stale events do not extend it.
          if (armed?.token !== cmd.token) armed = { token: cmd.token, deadline: Date.now() + cmd.timeoutMs };
          const remaining = Math.max(0, armed.deadline - Date.now());
          const got = queue.length > 0 || (await condition(() => queue.length > 0, remaining));
          const ev = got ? queue.shift() : undefined;
          if (ev?.type === 'CALL_FAILED') lastFailure = KNOWN_ERROR_CODES.has(ev.properties.errorCode as string) ? (ev.properties.errorCode as string) : 'other';
          following = ev ? { type: 'telephony', event: ev, at: Date.now() } : { type: 'timeout', token: cmd.token, at: Date.now() };
          break;
        }
        case 'finish':
          await condition(allHandlersFinished);
          log.info('call finished', { outcome: cmd.result.outcome, dials: cmd.result.dials });
          metrics.callCompleted(flow.id, o.campaignId, o.direction, cmd.result.outcome);
          return cmd.result;
      }
    }
    if (!following) throw new Error(`interpreter produced no wait in element ${state.element ?? '-'}`);
    event = following;
  }
}
