// outboundCall and inboundCall (core v2): one call, a thin durable shell around the pure interpreter.
// It turns interpreter commands into an activity (telephony), timers (sleep) and signal waits.
import {
  proxyActivities,
  proxyLocalActivities,
  condition,
  sleep,
  setHandler,
  workflowInfo,
  allHandlersFinished,
  log,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  TemporalFailure,
  TimeoutFailure,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { ContactCap } from '../activities/index.js';
import type { Flow } from '../flow/schema.js';
import { runFlow, type ArmedWait, type FlowHost } from '../flow/run.js';
import { Redactor } from '../flow/redact.js';
import {
  initialState,
  type ActionRequest,
  type CallResult,
  type CallState,
  type FlowEvent,
  type Recipient,
  type Recording,
  type TrailEntry,
} from '../flow/interpreter.js';
import type { TelephonyCommand, TelephonyEvent } from '../telephony/contract.js';
import { ERROR_CODES } from '../telephony/ids.js';

const KNOWN_ERROR_CODES = new Set<string>(ERROR_CODES);
import { callStatusQuery, telephonyEventSignal, telephonyEventsSignal } from './messages.js';
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

// Telephony commands, the gate and the record are local activities: each is one marker in the history
// instead of three activity events and a workflow task of its own. That is safe because providers
// are idempotent by command id (a local activity may run again after a worker crash), the gate and
// the profile are reads, and the record is an idempotent put.
//
// Long enough to ride out a NATS restart or a provider redeploy (minutes), bounded so that a provider
// that stays away ends the call as failed rather than holding it.
const { sendTelephonyCommand, loadProfile } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  scheduleToCloseTimeout: '10 minutes',
  retry: {
    initialInterval: '200 milliseconds',
    backoffCoefficient: 2,
    maximumInterval: '10 seconds',
    nonRetryableErrorTypes: ['InvalidCommandError'],
  },
});
// The hang-up of a call that is already failing: best effort, short, so a dead provider does not hold it.
// A rare path, so an ordinary activity: its completion is a task of its own, apart from the failure.
const { sendTelephonyCommand: hangUpBestEffort } = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  scheduleToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '500 milliseconds',
    backoffCoefficient: 2,
    maximumInterval: '5 seconds',
    nonRetryableErrorTypes: ['InvalidCommandError'],
  },
});
// The gate before a dial: bounded, so a do-not-call store that stays away fails the call instead of
// holding it for the workflow's lifetime (and an unbounded schedule-to-close leaves a ten-year timer
// behind in the time-skipping test server, which it then skips to).
const { campaignGate } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  scheduleToCloseTimeout: '10 minutes',
  retry: { initialInterval: '500 milliseconds', maximumInterval: '10 seconds' },
});
// A call's record is retried for as long as it takes: the campaign counts completions from records.
const { publishCallRecord } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '500 milliseconds', maximumInterval: '10 seconds' },
});
const { sendSms, updateProfile } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  scheduleToCloseTimeout: '5 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});
// One attempt per activity attempt, bounded by the element's own timeout (at most 30 s); the
// element's retries (at most 5) are Temporal's: the activity asks for another attempt only while
// the element has retries left, and returns the last failure as the flow's error result.
const { httpRequest } = proxyActivities<Activities>({
  startToCloseTimeout: '45 seconds',
  scheduleToCloseTimeout: '5 minutes',
  retry: {
    initialInterval: '250 milliseconds',
    backoffCoefficient: 2,
    maximumInterval: '5 seconds',
    maximumAttempts: 6,
  },
});

// A redial's slot from its campaign (an update of the campaign workflow, answered at once while the
// campaign runs). Retried while the campaign's worker is away or the campaign hands over to a new
// run; bounded, so a call whose campaign stays unreachable ends instead of waiting for ever.
const { requestDialSlot } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '1 minute',
  scheduleToCloseTimeout: '1 hour',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

/** Runs a non-IVR action; a failure becomes a result the flow can branch on, not a failed call. */
async function runAction(
  request: ActionRequest,
  call: { recipientId: string; campaignWorkflowId?: string },
): Promise<{ ok: boolean; data?: unknown; error?: string }> {
  const { recipientId } = call;
  try {
    switch (request.type) {
      case 'dialSlot':
        if (!call.campaignWorkflowId) return { ok: false, error: 'the call was not placed by a campaign' };
        return {
          ok: true,
          data: await requestDialSlot({
            campaignWorkflowId: call.campaignWorkflowId,
            workflowId: workflowInfo().workflowId,
            dial: request.dial,
            request: request.request,
          }),
        };
      case 'sendSms':
        return await sendSms({ ...(request.from ? { from: request.from } : {}), to: request.to, text: request.text });
      case 'updateProfile':
        return await updateProfile(recipientId, request.attributes);
      case 'httpRequest':
        return await httpRequest({
          method: request.method,
          url: request.url,
          headers: request.headers,
          ...(request.body !== undefined ? { body: request.body } : {}),
          timeoutMs: request.timeoutMs,
          retries: request.retries,
        });
    }
  } catch (err) {
    return {
      ok: false,
      error: err instanceof ActivityFailure && err.cause ? err.cause.message : (err as Error).message,
    };
  }
}

/** Seen-event ids are kept to a bounded window: duplicates arrive close together. */
const SEEN_WINDOW = 512;

/**
 * A wait whose timer fires this long after its deadline fired late: Temporal or the worker was away,
 * and the events of that time (delivered by the bridge once Temporal is back) may not be in yet.
 */
const LATE_TIMER_MS = 2_000;
/** How long a late timeout waits for those queued events before it counts as a timeout. */
const LATE_GRACE_MS = 15_000;
/** How long a call waits for the end of a leg it hung up before it completes anyway. */
const LEG_END_WAIT_MS = 30_000;

/**
 * One timer watches every wait of a call, instead of a timer started and cancelled per wait (two
 * history events each). It is started for the deadline of the wait that finds none running; when
 * it fires before the current wait's deadline it is started again for that deadline. A wait whose
 * deadline is earlier than the running timer times out when the timer fires, later than its
 * deadline: those deadlines are fallbacks for a provider that never reports (every provider ends
 * prompts, collects and rings itself and says so), so a late fallback costs nothing in a working
 * call. Pauses, delivery windows and retry back-offs are real timers of their own.
 */
class Watchdog {
  /** When the running timer is due (undefined: none runs). */
  dueAt: number | undefined;
  /** Increases each time the timer fires. */
  private ticks = 0;
  /** How late the timer fired after its due time, the last time it fired. */
  lastLateMs = 0;

  /** Start the timer for `deadline`, unless one runs already (the wait then sees its deadline when it fires). */
  private ensure(deadline: number): void {
    if (this.dueAt !== undefined) return;
    this.dueAt = deadline;
    void sleep(Math.max(1, deadline - Date.now())).then(() => {
      this.lastLateMs = Date.now() - deadline;
      this.dueAt = undefined;
      this.ticks += 1;
    });
  }

  /** Wait until `done()` holds or `deadline` has passed, the deadline seen when the timer fires. */
  async waitFor(done: () => boolean, deadline: number): Promise<void> {
    while (!done() && Date.now() < deadline) {
      this.ensure(deadline);
      const ticks = this.ticks;
      await condition(() => done() || this.ticks !== ticks);
    }
  }
}

/**
 * After a wait's deadline passed with nothing queued: a timer that fired on time is a timeout;
 * one that fired late first gives the events queued during the outage a grace to arrive, so that a
 * key pressed before the deadline still decides the branch. Returns whether an event arrived.
 */
async function graceIfLate(armed: ArmedWait, queue: TelephonyEvent[], lateMs: number): Promise<boolean> {
  if (armed.graceUntil === undefined) {
    if (lateMs <= LATE_TIMER_MS) return false;
    armed.graceUntil = Date.now() + LATE_GRACE_MS;
    log.info('a wait timed out late: waiting for queued events before acting on it', { lateMs });
  }
  const left = armed.graceUntil - Date.now();
  return left > 0 && (await condition(() => queue.length > 0, left));
}

/**
 * A wait for a command's events timed out (a late timer's grace included): before acting on it, ask
 * the provider again with the same command — it is idempotent by command id, so nothing new
 * happens there. Its acknowledgement comes once the path to the provider works (a NATS outage
 * holds it, the command's retry window rides it out), and the events the provider kept during the
 * outage follow within a grace: so an outage of NATS does not turn waiting into a timeout either.
 * Dials are left out: a dial that timed out is reconciled by the flow (its leg hung up). Returns
 * whether an event arrived.
 */
async function confirmProvider(
  armed: ArmedWait,
  queue: TelephonyEvent[],
  send: (command: TelephonyCommand) => Promise<void>,
): Promise<boolean> {
  const command = armed.command;
  if (!command || armed.confirmed || command.action === 'dial' || command.action === 'hangup') return false;
  armed.confirmed = true;
  log.info('a wait for the provider timed out: asking it again before acting on it', {
    action: command.action,
    commandId: command.commandId,
  });
  await send(command);
  armed.graceUntil = Date.now() + LATE_GRACE_MS;
  return queue.length > 0 || (await condition(() => queue.length > 0, LATE_GRACE_MS));
}

/**
 * A command that could not reach its provider ends the call as failed: first, as far as it can,
 * hang up the leg that may be live, so no one is left on a line no flow drives.
 */
async function hangUpAfterFailure(
  state: CallState,
  failed: TelephonyCommand,
  awaitLegEnd: (callId: string) => Promise<unknown>,
): Promise<void> {
  const callId = state.callId;
  if (!callId) return;
  const mayBeLive =
    state.session === 'active' ||
    state.phase.kind === 'dialing' ||
    state.phase.kind === 'answering' ||
    state.phase.kind === 'reconciling' ||
    failed.action === 'dial' ||
    failed.action === 'answer';
  if (!mayBeLive || (failed.action === 'hangup' && failed.callId === callId)) return;
  const elementId = state.element ?? failed.elementId;
  if (await hangUpLeg(callId, `${callId}#failed`, elementId, 'the hang-up of a failing call'))
    await awaitLegEnd(callId);
}

/**
 * A hang-up sent outside the flow (a failing call's, or again for a leg that did not end), best
 * effort: whether the provider took it. One that cannot reach the provider is logged, not raised.
 */
async function hangUpLeg(callId: string, commandId: string, elementId: string, what: string): Promise<boolean> {
  try {
    await hangUpBestEffort({ action: 'hangup', callId, commandId, elementId });
    return true;
  } catch (err) {
    if (!activityFailed(err)) throw err;
    log.warn(`${what} did not reach the provider either`, { callId, reason: failureReason(err) });
    return false;
  }
}

export async function outboundCall(input: CallWorkflowInput): Promise<CallResult> {
  if (input.campaign) return campaignCall(input, input.campaign);
  // Any other start (CLI, API, a plain start by hand) passes the same gate, at its first dial.
  const gate = { ...(input.contactCap ? { contactCap: input.contactCap } : {}) };
  const startedAt = Date.now();
  return recorded(
    { campaignId: input.campaignId, recipientId: input.recipient.id, row: 0, slotAt: startedAt, direction: 'outbound' },
    input.flow,
    (progress) =>
      runCall({
        flow: input.flow,
        recipient: input.recipient,
        campaignId: input.campaignId,
        direction: 'outbound',
        ...(input.hints ? { hints: input.hints } : {}),
        gate,
        progress,
        first: async () => ({ type: 'start', at: Date.now() }),
      }),
  );
}

/**
 * A call placed by a campaign: wait for the slot (the only part a pause can withdraw: the call
 * then ends CANCELLED, never dialled, and may be placed again), check do-not-call and the contact
 * cap at dial time, run the flow, and store the call record for the campaign's counts and report.
 */
async function campaignCall(input: CallWorkflowInput, placement: CampaignPlacement): Promise<CallResult> {
  const wait = placement.slotAt - Date.now();
  if (wait > 0) await sleep(wait);
  return CancellationScope.nonCancellable(() =>
    recorded(
      {
        campaignId: input.campaignId,
        recipientId: input.recipient.id,
        row: placement.row,
        slotAt: placement.slotAt,
        direction: 'outbound',
      },
      input.flow,
      async (progress) => {
        const gate = await campaignGate({
          phone: input.recipient.phone,
          now: Date.now(),
          ...(placement.contactCap ? { contactCap: placement.contactCap } : {}),
        });
        if (gate !== 'ok') {
          metrics.callCompleted(input.flow.id, input.campaignId, 'outbound', gate);
          return { outcome: gate, dials: 0, trail: [], visited: [], variables: {}, recordings: [], warnings: [] };
        }
        return runCall({
          flow: input.flow,
          recipient: input.recipient,
          campaignId: input.campaignId,
          direction: 'outbound',
          ...(input.hints ? { hints: input.hints } : {}),
          progress,
          campaignWorkflowId: placement.workflowId,
          first: async () => ({ type: 'start', at: Date.now() }),
        });
      },
    ),
  );
}

interface RecordContext {
  campaignId: string;
  recipientId: string;
  /** Row of the recipients file (0 outside campaigns). */
  row: number;
  slotAt: number;
  direction: CallDirection;
}

/**
 * Run a call and write its record: every call has one (campaign, direct and inbound calls), with
 * what it got to when it failed on the way. A campaign counts its completions from the records: a
 * campaign call without one would be waited for forever.
 */
async function recorded(
  ctx: RecordContext,
  flow: Flow,
  run: (progress: CallProgress) => Promise<CallResult>,
): Promise<CallResult> {
  const startedAt = Date.now();
  const progress: CallProgress = { dials: 0, trail: [] };
  const record = (result: Pick<CallResult, 'outcome' | 'dials' | 'trail' | 'dataPayload' | 'error' | 'recordings'>) =>
    publishCallRecord({
      workflowId: workflowInfo().workflowId,
      record: {
        campaignId: ctx.campaignId,
        workflowId: workflowInfo().workflowId,
        direction: ctx.direction,
        recipientId: ctx.recipientId,
        row: ctx.row,
        outcome: result.outcome,
        dials: result.dials,
        durationMs: result.dials > 0 || ctx.direction === 'inbound' ? Date.now() - startedAt : 0,
        slotAt: ctx.slotAt,
        endedAt: Date.now(),
        responses: result.trail,
        ...(result.dataPayload ? { dataPayload: result.dataPayload } : {}),
        ...(result.error ? { error: result.error } : {}),
        ...(result.recordings.length > 0
          ? {
              recordings: result.recordings.map((r) => ({
                recordingId: r.recordingId,
                name: r.name,
                ...(r.durationMs !== undefined ? { durationMs: r.durationMs } : {}),
                ...(r.url ? { url: r.url } : {}),
              })),
            }
          : {}),
      },
    });
  let result: CallResult;
  try {
    result = await run(progress);
  } catch (err) {
    // A call that fails still has its record (and still counts for its campaign). A provider's or
    // an activity's message may quote what the caller typed: masked and hidden input is redacted.
    const redactor = new Redactor();
    for (const s of progress.sensitiveInputs ?? []) redactor.add(s.digits, s.mode);
    const reason = redactor.text(failureReason(err));
    log.warn('call failed', { reason });
    metrics.callCompleted(flow.id, ctx.campaignId, ctx.direction, 'failed');
    await record({ outcome: 'failed', dials: progress.dials, trail: progress.trail, error: reason, recordings: [] });
    // A Temporal failure fails the workflow; anything else would only fail the workflow task
    // and be retried for ever, so it becomes a failure too (the record is already written).
    if (err instanceof TemporalFailure) throw err;
    throw ApplicationFailure.nonRetryable(reason, 'CallFailed');
  }
  await record(result);
  return result;
}

/**
 * A (local) activity that failed for good. Local activities fail with the activity's own error
 * (an ApplicationFailure, or a TimeoutFailure), not wrapped in an ActivityFailure as activities are.
 */
function activityFailed(err: unknown): err is TemporalFailure {
  return err instanceof ActivityFailure || err instanceof ApplicationFailure || err instanceof TimeoutFailure;
}

/** A failure as one line for the call record: the activity's own error rather than its wrapper. */
function failureReason(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return `${err.activityType ?? 'activity'}: ${err.cause.message}`;
  return err instanceof Error ? err.message : String(err);
}

/**
 * Whole-call recordings (`recordCall`) become ready after the call ended: those already in when the
 * call completes join its result (and record); a later one reaches the record through the bridge.
 */
function withWholeCallRecordings(result: CallResult, queue: TelephonyEvent[]): CallResult {
  const known = new Set(result.recordings.map((r) => r.recordingId));
  const more: Recording[] = [];
  for (const ev of queue) {
    const p = ev.properties;
    if (ev.type !== 'CALL_RECORDING_READY' || typeof p.recordingId !== 'string' || known.has(p.recordingId)) continue;
    known.add(p.recordingId);
    more.push({
      element: '',
      name: typeof p.name === 'string' ? p.name : 'call',
      recordingId: p.recordingId,
      ...(typeof p.url === 'string' ? { url: p.url } : {}),
      ...(typeof p.durationMs === 'number' ? { durationMs: p.durationMs } : {}),
    });
  }
  return more.length > 0 ? { ...result, recordings: [...result.recordings, ...more] } : result;
}

/** How far a call got: kept up to date by `runCall` after every interpreter step. */
interface CallProgress {
  dials: number;
  trail: TrailEntry[];
  /** Digits of masked and hidden input so far: redacted from a failure's reason. */
  sensitiveInputs?: CallState['sensitiveInputs'];
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
export async function inboundCall(input: InboundCallWorkflowInput): Promise<CallResult> {
  return recorded(
    { campaignId: 'inbound', recipientId: input.from, row: 0, slotAt: Date.now(), direction: 'inbound' },
    input.flow,
    (progress) =>
      runCall({
        flow: input.flow,
        recipient: { id: input.from, phone: input.from },
        campaignId: 'inbound',
        direction: 'inbound',
        progress,
        first: async (queue) => {
          await condition(() => queue.some((e) => e.type === 'CALL_RECEIVED'), RECEIVED_WAIT_MS);
          const at = queue.findIndex((e) => e.type === 'CALL_RECEIVED');
          if (at > 0 || at === -1) log.warn('inbound call without CALL_RECEIVED first', { callId: input.callId });
          if (at >= 0) queue.splice(at, 1);
          return { type: 'incoming', at: Date.now(), callId: input.callId, to: input.to, from: input.from };
        },
      }),
  );
}

async function runCall(o: {
  flow: Flow;
  recipient: Recipient;
  campaignId: string;
  direction: CallDirection;
  hints?: Record<string, unknown>;
  gate?: { contactCap?: ContactCap };
  progress?: CallProgress;
  /** The campaign that placed the call: its redials ask it for their slots. */
  campaignWorkflowId?: string;
  first: (queue: TelephonyEvent[]) => Promise<FlowEvent>;
}): Promise<CallResult> {
  const { flow } = o;
  metrics.callStarted(flow.id, o.campaignId, o.direction);
  // Why the next dial is a retry: the error code of the last failed attempt (a bounded label).
  let lastFailure = 'first';
  const info = workflowInfo();
  const queue: TelephonyEvent[] = [];
  const seen = new Set<string>();
  const accept = (ev: TelephonyEvent): void => {
    if (seen.has(ev.id)) return;
    seen.add(ev.id);
    if (seen.size > SEEN_WINDOW) seen.delete(seen.values().next().value as string);
    queue.push(ev);
  };
  setHandler(telephonyEventSignal, accept);
  // Events the bridge held for the call's next event (see holdEvents), in order, with that event.
  setHandler(telephonyEventsSignal, (events) => events.forEach(accept));

  // Math.random is seeded by Temporal and replays identically.
  const seed = Math.floor(Math.random() * 2 ** 32);
  // Profiles are loaded only when the flow uses them, keeping histories of simple flows short.
  const profile = usesProfile(flow) ? await loadProfile(o.recipient.id) : {};
  let armed: ArmedWait | undefined;
  const watchdog = new Watchdog();
  let state = initialState({
    workflowId: info.workflowId,
    recipient: o.recipient,
    seed,
    profile,
    flow,
    ...(o.hints ? { hints: o.hints } : {}),
    ...(o.campaignWorkflowId ? { dialSlots: true } : {}),
  });
  setHandler(callStatusQuery, () => ({
    flowId: flow.id,
    flowVersion: flow.version,
    element: state.element,
    phase: state.phase.kind,
    dials: state.dials,
    trail: state.trail,
    ...(state.result ? { outcome: state.result.outcome } : {}),
    ...(armed && 'token' in state.phase && state.phase.token === armed.token
      ? {
          // When the call acts on the wait: its deadline is seen when the watchdog fires.
          waitUntil: new Date(armed.graceUntil ?? Math.max(armed.deadline, watchdog.dueAt ?? 0)).toISOString(),
        }
      : {}),
  }));

  /**
   * After our hang-up, wait for the leg's end before the workflow completes. Completing in the task
   * that ran the hang-up (a local activity) races the provider's CALL_FINISHED: Temporal refuses a
   * completion when a new event came in meanwhile, and the retried task runs its local activities
   * (and metrics) again. Bounded: a provider that never reports does not hold the call.
   */
  const legEnded = (callId: string) =>
    queue.some((e) => (e.type === 'CALL_FINISHED' || e.type === 'CALL_FAILED') && e.callId === callId);
  const awaitLegEnd = async (callId: string): Promise<boolean> => {
    if (legEnded(callId)) return true;
    const deadline = Date.now() + LEG_END_WAIT_MS;
    // The watchdog would notice this deadline only when its running timer fires (a dial's or a
    // prompt's fallback, minutes later): a wait of its own then, on this rare path.
    if (watchdog.dueAt !== undefined && watchdog.dueAt > deadline + LATE_TIMER_MS)
      await condition(() => legEnded(callId), LEG_END_WAIT_MS);
    else await watchdog.waitFor(() => legEnded(callId), deadline);
    return legEnded(callId);
  };

  /** A telephony command; one that cannot reach its provider ends the call as failed. */
  const send = async (command: TelephonyCommand): Promise<void> => {
    try {
      await sendTelephonyCommand(command);
    } catch (err) {
      if (!activityFailed(err)) throw err;
      const reason = `sendTelephonyCommand: ${failureReason(err)}`;
      log.warn('a telephony command failed: ending the call', { action: command.action, reason });
      await hangUpAfterFailure(state, command, awaitLegEnd);
      // The call fails with the command's own error; a campaign call writes its record (failed, reason).
      throw ApplicationFailure.create({
        message: reason,
        type: 'TelephonyCommandFailed',
        nonRetryable: true,
        cause: err,
      });
    }
  };

  const host: FlowHost = {
    now: () => Date.now(),
    async send(command) {
      // Do-not-call and the contact cap, checked when the first dial is due (after any wait for
      // the delivery window), as for campaign calls.
      if (o.gate && command.action === 'dial' && command.dialIndex === 1) {
        const gate = await campaignGate({ phone: command.to, now: Date.now(), ...o.gate });
        if (gate !== 'ok') {
          log.info('call not dialled', { outcome: gate });
          metrics.callCompleted(flow.id, o.campaignId, o.direction, gate);
          return { outcome: gate, dials: 0, trail: [], visited: [], variables: {}, recordings: [], warnings: [] };
        }
      }
      if (command.action === 'dial')
        metrics.dialAttempt(flow.id, o.campaignId, command.attempt > 1 ? lastFailure : 'first', command.commandId);
      await send(command);
      return undefined;
    },
    runAction: (request) =>
      runAction(request, {
        recipientId: o.recipient.id,
        ...(o.campaignWorkflowId ? { campaignWorkflowId: o.campaignWorkflowId } : {}),
      }),
    sleep: (ms) => sleep(ms),
    async nextEvent(wait) {
      armed = wait;
      await watchdog.waitFor(() => queue.length > 0, wait.deadline);
      const got =
        queue.length > 0 ||
        (await graceIfLate(wait, queue, watchdog.lastLateMs)) ||
        (await confirmProvider(wait, queue, send));
      const ev = got ? queue.shift() : undefined;
      if (ev?.type === 'CALL_FAILED')
        lastFailure = KNOWN_ERROR_CODES.has(ev.properties.errorCode as string)
          ? (ev.properties.errorCode as string)
          : 'other';
      return ev;
    },
    async finish(result, legToEnd) {
      if (legToEnd && !(await awaitLegEnd(legToEnd))) {
        // The leg did not end: a provider that does not know prompt follow-ups (one from before
        // them) played the last prompt without hanging up. Hang up once more, best effort.
        log.warn('the call leg did not end after its hang-up: hanging up again', { callId: legToEnd });
        await hangUpLeg(legToEnd, `${legToEnd}#end`, state.visited.at(-1) ?? '-', 'the second hang-up');
      }
      await condition(allHandlersFinished);
      log.info('call finished', { outcome: result.outcome, dials: result.dials });
      metrics.callCompleted(flow.id, o.campaignId, o.direction, result.outcome);
      return withWholeCallRecordings(result, queue);
    },
    stepped(next) {
      state = next;
      if (o.progress) {
        o.progress.dials = next.dials;
        o.progress.trail = next.trail;
        if (next.sensitiveInputs) o.progress.sensitiveInputs = next.sensitiveInputs;
      }
    },
  };
  const run = await runFlow(flow, state, await o.first(queue), host);
  return run.result;
}
