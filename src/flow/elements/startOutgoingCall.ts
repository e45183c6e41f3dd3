// startOutgoingCall at run time: dials the recipient inside its delivery window, retries known
// failures as the flow says and internal errors within the validity period, reconciles a dial whose
// outcome is unknown, and starts the outbound session on an answer (or an answering machine).
import { callIdFor } from '../../telephony/ids.js';
import type { StartOutgoingCall } from '../schema.js';
import type { DialOutcome } from '../state.js';
import { nextWindowOpening } from '../window.js';
import { TIMEOUTS, hasOwn, zoneUnknownReason, type ElementRuntime, type StepContext } from './context.js';
import { KNOWN_FAILURES, classifyFailure } from './failures.js';

export const DEFAULT_VALIDITY_MS = 48 * 3600_000;
const ERROR_BACKOFF_MS = { initial: 60_000, max: 30 * 60_000 };

async function dial(ctx: StepContext, el: StartOutgoingCall): Promise<void> {
  const d = ctx.state;
  const at = ctx.at;
  d.direction = 'outbound';
  if (el.deliveryWindow) {
    const zone = el.deliveryWindow.timeZone === 'recipient' ? d.recipient.timeZone : el.deliveryWindow.timeZone;
    if (!zone)
      return ctx.finish(
        'notCalled',
        `the delivery window of "${el.id}" uses the recipient's time zone, and recipient ${d.recipient.id} has none (${zoneUnknownReason(d)}): not dialling`,
      );
    const open = nextWindowOpening(el.deliveryWindow, zone, at);
    if (open > at) {
      // A redial after an internal error is made inside the validity period or not at all: when
      // the window opens only after the period, the call waits for the period's end and expires.
      const deadline = retryingAfterError(ctx) ? validityDeadline(ctx, el) : undefined;
      if (deadline !== undefined && open > deadline) {
        if (at >= deadline) return expire(ctx, el);
        return ctx.sleep(
          deadline - at,
          `outside the delivery window until ${new Date(open).toISOString()} (${zone}), after the validity period (until ${new Date(deadline).toISOString()})`,
          'dial',
        );
      }
      return ctx.sleep(
        open - at,
        `outside the delivery window until ${new Date(open).toISOString()} (${zone})`,
        'dial',
      );
    }
  }
  // A campaign's redial dials in a slot of the campaign's calling speed (its first dial was placed in one).
  const next = d.dials + 1;
  if (d.dialSlots && next > 1) {
    const slot = d.slot?.dial === next ? d.slot : undefined;
    if (!slot || at >= slot.until) {
      const request = (slot?.request ?? 0) + 1;
      d.slot = { dial: next, at: 0, until: 0, request };
      return ctx.action({ type: 'dialSlot', elementId: el.id, dial: next, request });
    }
  }
  d.attempt += 1;
  d.dials += 1;
  d.firstDialAt ??= at;
  d.callId = callIdFor(d.workflowId, d.dials);
  d.session = 'none';
  const token = ctx.token();
  const commandId = ctx.commandId();
  const machineDetection = hasOwn(el.next, 'voicemail');
  ctx.send({
    action: 'dial',
    callId: d.callId,
    commandId,
    elementId: el.id,
    from: ctx.t(el.from),
    to: ctx.t(el.to),
    attempt: d.attempt,
    dialIndex: d.dials,
    recordCall: el.recordCall,
    machineDetection,
    // The answer alone changes nothing while detection runs: it comes with the detection result.
    ...(machineDetection ? { holdEvents: ['CALL_ESTABLISHED' as const] } : {}),
    ...(d.hints ? { hints: d.hints } : {}),
  });
  d.phase = { kind: 'dialing', token, commandId, established: false, machineDetection };
  ctx.await(token, TIMEOUTS.dialMs);
}

async function dialOutcome(ctx: StepContext, el: StartOutgoingCall, outcome: DialOutcome): Promise<void> {
  const d = ctx.state;
  if (outcome === 'answered' || outcome === 'voicemail') {
    // Voicemail keeps the session so the flow can leave a message on the answering machine.
    d.session = 'active';
    d.lastDial = outcome;
    return ctx.take(el, outcome, el.next[outcome]);
  }
  d.session = 'ended';
  if (KNOWN_FAILURES.has(outcome)) {
    d.lastDial = outcome;
    d.knownFailures += 1;
    if (el.retry && d.knownFailures <= el.retry.count) {
      const span = el.retry.maxMinutes - el.retry.minMinutes;
      const minutes = el.retry.minMinutes + ctx.random() * span;
      return ctx.sleep(minutes * 60_000, `retry ${d.knownFailures}/${el.retry.count} after ${outcome}`, 'dial');
    }
    const branch = outcome === 'noAnswer' || outcome === 'busy' || outcome === 'declined' ? outcome : 'callEnded';
    return ctx.take(el, branch, el.next[branch]);
  }
  // Internal or unidentified errors: keep trying until the validity period ends (seed).
  d.lastDial = 'error';
  const deadline = validityDeadline(ctx, el);
  if (ctx.at >= deadline) return expire(ctx, el);
  const backoff = Math.min(ERROR_BACKOFF_MS.max, ERROR_BACKOFF_MS.initial * 2 ** d.errorRetries);
  d.errorRetries += 1;
  // A back-off that would end after the period is cut to end with it: the period's last attempt is
  // made at its end instead of being given up a back-off early.
  return ctx.sleep(
    Math.min(backoff, deadline - ctx.at),
    `retry after a provider error (validity until ${new Date(deadline).toISOString()})`,
    'dial',
  );
}

/** The end of the validity period of `el`'s current run of dials: it starts at the first dial. */
function validityDeadline(ctx: StepContext, el: StartOutgoingCall): number {
  const validityMs = el.validityPeriod
    ? el.validityPeriod.value * (el.validityPeriod.unit === 'hours' ? 3600_000 : 60_000)
    : DEFAULT_VALIDITY_MS;
  return (ctx.state.firstDialAt ?? ctx.at) + validityMs;
}

/** The next dial is a redial after an internal error (so it is bound by the validity period). */
function retryingAfterError(ctx: StepContext): boolean {
  return ctx.state.lastDial === 'error' && ctx.state.errorRetries > 0;
}

/** The validity period is over without an established call. */
function expire(ctx: StepContext, el: StartOutgoingCall): Promise<void> {
  ctx.state.lastDial = 'expired';
  return ctx.take(el, 'callEnded', el.next.callEnded);
}

/**
 * The dial's wait ended with neither an answer nor a failure: the leg may be ringing or up, its
 * events late or lost (a NATS or provider outage). Hang it up and wait for its end before deciding,
 * so a redial never overlaps a leg that may still be live.
 */
function reconcile(ctx: StepContext, el: StartOutgoingCall): void {
  const callId = ctx.state.callId ?? '';
  const token = ctx.token();
  const commandId = ctx.commandId();
  ctx.send({ action: 'hangup', callId, commandId, elementId: el.id });
  ctx.state.phase = { kind: 'reconciling', token, commandId, callId, answered: false };
  ctx.await(token, TIMEOUTS.reconcileMs);
}

/**
 * The end of a reconciled leg (`ended`), or nothing by the end of the wait. What the provider says
 * decides: a known failure is that failure (retried only as the flow's call retry allows); a leg
 * that was answered is not dialled again; a leg our hang-up ended rang without an answer; a leg the
 * provider lost, or a hang-up it acknowledged without news of the leg, is the internal error it was.
 */
async function reconciled(
  ctx: StepContext,
  el: StartOutgoingCall,
  answered: boolean,
  ended: Record<string, unknown> | undefined,
): Promise<void> {
  const d = ctx.state;
  const outcome: DialOutcome = ended ? classifyFailure(ended.errorCode) : 'error';
  const hungUpByUs = ended?.hangupSource === 'API';
  const wasUp = answered || outcome === 'voicemail' || (ended?.errorCode === 'NORMAL_HANGUP' && !hungUpByUs);
  if (wasUp) {
    d.session = 'ended';
    d.lastDial = 'error';
    d.failure =
      'the call was answered after its dial had timed out (events late or lost): hung up and not dialled again';
    ctx.warn(el.id, d.failure);
    return ctx.take(el, 'callEnded', el.next.callEnded);
  }
  if (KNOWN_FAILURES.has(outcome)) return dialOutcome(ctx, el, outcome);
  if (hungUpByUs) return dialOutcome(ctx, el, 'noAnswer');
  return dialOutcome(ctx, el, 'error');
}

export const startOutgoingCall: ElementRuntime<StartOutgoingCall> = {
  enter(ctx, el) {
    const d = ctx.state;
    d.attempt = 0;
    d.knownFailures = 0;
    d.errorRetries = 0;
    delete d.firstDialAt;
    delete d.failure;
    if (el.tracking)
      d.dataPayload = Object.fromEntries(Object.entries(el.tracking.dataPayload).map(([k, v]) => [k, ctx.t(v)]));
    return dial(ctx, el);
  },

  onEvent(ctx, el, ev) {
    const phase = ctx.state.phase;
    const p = ev.properties;
    if (phase.kind === 'dialing') {
      switch (ev.type) {
        case 'CALL_ESTABLISHED':
          if (!phase.machineDetection) return dialOutcome(ctx, el, 'answered');
          phase.established = true;
          phase.token = ctx.token();
          return ctx.await(phase.token, TIMEOUTS.machineDetectionMs);
        case 'MACHINE_DETECTION_FINISHED':
          return dialOutcome(ctx, el, p.detectionResult === 'MACHINE' ? 'voicemail' : 'answered');
        case 'CALL_FAILED':
        case 'CALL_FINISHED':
          return dialOutcome(ctx, el, classifyFailure(p.errorCode));
        default:
          return ctx.stillWaiting();
      }
    }
    if (phase.kind === 'reconciling' && ev.callId === phase.callId) {
      switch (ev.type) {
        case 'CALL_ESTABLISHED':
          // Answered while its hang-up was on the way: the recipient was reached.
          phase.answered = true;
          return ctx.stillWaiting();
        case 'CALL_FAILED':
        case 'CALL_FINISHED':
          return reconciled(ctx, el, phase.answered, p);
        default:
          return ctx.stillWaiting();
      }
    }
    return ctx.otherEvent(el, ev);
  },

  onTimeout(ctx, el, phase, redialAtOnce) {
    if (phase.kind === 'dialing') {
      if (phase.established) return dialOutcome(ctx, el, 'answered');
      if (redialAtOnce) return dialOutcome(ctx, el, 'error');
      return reconcile(ctx, el);
    }
    if (phase.kind === 'reconciling') return reconciled(ctx, el, phase.answered, undefined);
    return ctx.stillWaiting();
  },

  onTimer(ctx, el, phase) {
    if (phase.resume === 'dial') return dial(ctx, el);
    return ctx.stillWaiting();
  },

  /** The campaign's answer to a redial's `dialSlot`: dial in the slot, or dial no more. */
  onActionResult(ctx, el, { ok, data, error }) {
    const d = ctx.state;
    const slot = d.slot;
    if (!slot) return ctx.stillWaiting();
    const answer = (ok ? data : undefined) as
      { granted: true; at: number; until: number } | { granted: false; reason: string; message: string } | undefined;
    if (!answer) return ctx.finish('failed', `no dial slot from the campaign: ${error ?? 'no answer'}`);
    if (!answer.granted) {
      d.failure = `not dialled again: ${answer.message}`;
      return ctx.finish(undefined, d.failure);
    }
    d.slot = { ...slot, at: answer.at, until: answer.until };
    // A redial after an internal error is made inside the validity period or not at all.
    if (retryingAfterError(ctx) && answer.at >= validityDeadline(ctx, el)) return expire(ctx, el);
    if (answer.at > ctx.at)
      return ctx.sleep(
        answer.at - ctx.at,
        `calling speed: dial ${slot.dial} in the campaign's slot at ${new Date(answer.at).toISOString()}`,
        'dial',
      );
    return dial(ctx, el);
  },
};
