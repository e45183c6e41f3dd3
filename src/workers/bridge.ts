// The event bridge: consumes telephony events from JetStream and signals the owning workflow.
// Several instances share one durable consumer. A message is acked only after Temporal accepted
// the signal; failures are redelivered with backoff, poison messages are dead-lettered.
import type { NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import { isConsumerNotFound } from '../store/nats-errors.js';
import { isGrpcServiceError, ServiceError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import {
  EVENTS_NO_ELEMENT_READS,
  isHeldEvent,
  telephonyEventSchema,
  workflowIdOfCallId,
  type TelephonyEvent,
} from '../telephony/contract.js';
import { BRIDGE_CONSUMER, DEADLETTER_SUBJECT, EVENTS_STREAM, eventSubject } from '../telephony/nats.js';
import { recordsNameOfWorkflowId, telephonyEventSignal, telephonyEventsSignal } from '../workflows/messages.js';
import type { RecordStore } from '../store/campaigns.js';
import type { FlowStore } from '../store/flows.js';
import type { TelephonyProvider } from '../telephony/provider.js';
import { startInboundCall } from '../client/calls.js';
import { LRUCache } from 'lru-cache';
import { openEvent, SealedEventError } from '../telephony/event-seal.js';
import { createLogger, type Logger } from '../logging.js';

/**
 * Deliveries after which an event whose signal keeps failing for a reason of its own is
 * dead-lettered. Failures because Temporal is away do not count: those events wait, however long
 * the outage, so the consumer itself redelivers without limit.
 */
export const BRIDGE_MAX_DELIVER = 10;
/** gRPC codes that mean "Temporal is not there right now": DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, UNAVAILABLE. */
const TEMPORAL_AWAY = new Set([4, 8, 14]);

function temporalAway(err: unknown): boolean {
  const cause = err instanceof ServiceError ? err.cause : err;
  return isGrpcServiceError(cause) && TEMPORAL_AWAY.has(cause.code);
}
const ACK_WAIT_MS = 30_000;
/** How often a bridge that lost Temporal asks whether it is back. */
const PROBE_INTERVAL_MS = 500;
const MAX_IN_FLIGHT = 256;
/** An event larger than this is dead-lettered, never signalled: events are small; a big one is a bug or an attack. */
export const MAX_EVENT_BYTES = 64 * 1024;
/**
 * What one call may receive in signals through this bridge: enough for hours of IVR, far below
 * Temporal's history limits (50 MB, 50k events), so a flood at one call cannot kill it.
 */
export const MAX_EVENTS_PER_CALL = 2_000;
/**
 * How long an event a command asked to hold (`holdEvents`: the end of a prompt whose collect runs,
 * a CALL_ESTABLISHED whose machine detection runs) waits for the call's next event before it is
 * signalled alone. Longer than most collects and detections; a longer one only costs the call the
 * workflow task the hold would have saved.
 */
export const HOLD_MAX_MS = 30_000;
/** Held events per call at most: a provider that marks everything cannot make the bridge hoard. */
const MAX_HELD_PER_CALL = 8;
export const MAX_EVENT_BYTES_PER_CALL = 8 * 2 ** 20;

export interface BridgeMetrics {
  events: Counter<'type' | 'result'>;
  redeliveries: Counter;
  deadLetters: Counter<'reason'>;
  latency: Histogram;
  /** The SignalWorkflowExecution call alone: separates Temporal's share of the latency. */
  signalRpc: Histogram;
  pending: Gauge;
}

export function bridgeMetrics(registry: Registry): BridgeMetrics {
  return {
    events: new Counter({
      name: 'dialflow_bridge_events_total',
      help: 'Telephony events handled by the bridge',
      labelNames: ['type', 'result'],
      registers: [registry],
    }),
    redeliveries: new Counter({
      name: 'dialflow_bridge_redeliveries_total',
      help: 'Events delivered more than once to the bridge',
      registers: [registry],
    }),
    deadLetters: new Counter({
      name: 'dialflow_bridge_dead_letters_total',
      help: 'Events dead-lettered by the bridge',
      labelNames: ['reason'],
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'dialflow_event_to_signal_seconds',
      help: 'From the event timestamp to Temporal accepting the signal',
      buckets: [0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    signalRpc: new Histogram({
      name: 'dialflow_bridge_signal_rpc_seconds',
      help: 'Duration of the signal call to Temporal alone',
      buckets: [0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    pending: new Gauge({
      name: 'dialflow_bridge_pending_events',
      help: 'Events in JetStream not yet delivered or not yet acknowledged by the bridge (its lag)',
      registers: [registry],
    }),
  };
}

export interface RunningBridge {
  stop(): Promise<void>;
}

export interface InboundRouting {
  flows: FlowStore;
  /** Used to reject calls to numbers no flow answers. */
  provider: TelephonyProvider;
  taskQueue: string;
}

/**
 * `provider`: the provider this deployment places calls through. Events on another provider's
 * subjects are dead-lettered: a process allowed to publish as one provider cannot steer the calls
 * of another (say, inject a DTMF_CAPTURED into a SIP call through the simulator's subjects).
 */
export async function startBridge(opts: {
  nc: NatsConnection;
  client: Client;
  metrics: BridgeMetrics;
  inbound?: InboundRouting;
  provider?: string;
  /** Where a recording that is ready only after its call closed is added to the call's record. */
  records?: Pick<RecordStore, 'publish'>;
  /** The service's logger (default: warnings and errors to stderr). */
  logger?: Logger;
  /** How long a held event waits for the call's next event (default HOLD_MAX_MS). */
  holdMaxMs?: number;
}): Promise<RunningBridge> {
  const { nc, client, metrics, inbound } = opts;
  const ownSubjects = opts.provider ? eventSubject(opts.provider, '') : undefined;
  const log = opts.logger ?? createLogger('bridge', 'warn');
  const jsm = await jetstreamManager(nc);
  const consumerConfig = {
    durable_name: BRIDGE_CONSUMER,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: ACK_WAIT_MS * 1_000_000,
    max_deliver: -1,
    max_ack_pending: 20_000,
    filter_subject: 'dialflow.events.>',
  };
  try {
    const existing = await jsm.consumers.info(EVENTS_STREAM, BRIDGE_CONSUMER);
    // Consumers made by earlier versions stopped delivering after 10 tries, which lost the events of
    // a long Temporal outage.
    if (existing.config.max_deliver !== -1)
      await jsm.consumers.update(EVENTS_STREAM, BRIDGE_CONSUMER, { max_deliver: -1 });
  } catch (err) {
    if (!isConsumerNotFound(err)) throw err;
    await jsm.consumers.add(EVENTS_STREAM, consumerConfig);
  }
  const js = jetstream(nc);
  const consumer = await js.consumers.get(EVENTS_STREAM, BRIDGE_CONSUMER);
  const messages = await consumer.consume({ max_messages: 512 });
  // The consumer's backlog is the bridge's lag; every instance reports the same shared number.
  const lagTimer = setInterval(() => {
    jsm.consumers
      .info(EVENTS_STREAM, BRIDGE_CONSUMER)
      .then((i) => metrics.pending.set(i.num_pending + i.num_ack_pending))
      .catch(() => undefined);
  }, 5_000);
  lagTimer.unref();

  // Events of one call are signalled in order; different calls proceed concurrently.
  const chains = new Map<string, Promise<void>>();
  function enqueue(workflowId: string, work: () => Promise<void>): Promise<void> {
    const next = (chains.get(workflowId) ?? Promise.resolve()).then(work);
    chains.set(workflowId, next);
    void next.finally(() => {
      if (chains.get(workflowId) === next) chains.delete(workflowId);
    });
    return next;
  }

  // Held events per call, unacknowledged (kept in progress) until the signal that carries them is accepted.
  interface HeldEvent {
    m: JsMsg;
    ev: TelephonyEvent;
    keepAlive: ReturnType<typeof setInterval>;
  }
  const held = new Map<string, { events: HeldEvent[]; release: ReturnType<typeof setTimeout> }>();
  function hold(workflowId: string, m: JsMsg, ev: TelephonyEvent): void {
    const entry: HeldEvent = { m, ev, keepAlive: setInterval(() => m.working(), ACK_WAIT_MS / 3) };
    const existing = held.get(workflowId);
    if (existing) {
      existing.events.push(entry);
      return;
    }
    const release = setTimeout(() => {
      void enqueue(workflowId, async () => {
        const events = takeHeld(workflowId);
        const last = events.pop();
        if (!last) return;
        putBack(workflowId, events);
        clearInterval(last.keepAlive);
        await deliver(last.m, last.ev, workflowId, true);
      }).catch((err: unknown) => log.error({ err }, 'unexpected error'));
    }, opts.holdMaxMs ?? HOLD_MAX_MS);
    held.set(workflowId, { events: [entry], release });
  }
  /** The held events of a call, taken out of the hold (their keep-alives still run). */
  function takeHeld(workflowId: string): HeldEvent[] {
    const entry = held.get(workflowId);
    if (!entry) return [];
    clearTimeout(entry.release);
    held.delete(workflowId);
    return entry.events;
  }
  /** Held events whose signal failed go back to wait for the next attempt (a new release timer). */
  function putBack(workflowId: string, events: HeldEvent[]): void {
    for (const e of events) {
      clearInterval(e.keepAlive);
      hold(workflowId, e.m, e.ev);
    }
  }
  function settleHeld(events: HeldEvent[], how: 'ack' | 'nak'): void {
    for (const e of events) {
      clearInterval(e.keepAlive);
      if (how === 'ack') e.m.ack();
      else e.m.nak();
    }
  }
  // What each recent call has received (bounded: the oldest calls are forgotten first).
  const perCall = new LRUCache<string, { events: number; bytes: number }>({ max: 200_000 });
  // Events this bridge had Temporal accept lately: a copy (a provider's duplicate, a redelivery)
  // is acknowledged without a signal — the call ignores it anyway, and a copy of a held event
  // would otherwise wait out a whole hold for a next event that never comes.
  const signalled = new LRUCache<string, true>({ max: 100_000 });
  // Call legs whose end this bridge signalled: an event held after that has no next event to wait
  // for (a provider's events can come out of order: a prompt's end after the hang-up it ran).
  const endedLegs = new LRUCache<string, true>({ max: 100_000 });
  let inFlight = 0;
  let wake: (() => void) | undefined;

  async function deadLetter(m: JsMsg, reason: string, detail: string): Promise<void> {
    metrics.deadLetters.inc({ reason });
    log.warn({ reason, detail }, 'dead-lettered event');
    try {
      // An oversized event is kept in part: the dead-letter stream must not take what the bridge refused.
      const data = m.data.length > MAX_EVENT_BYTES ? `${m.string().slice(0, 1024)}…` : m.string();
      await js.publish(
        DEADLETTER_SUBJECT,
        JSON.stringify({
          reason,
          detail,
          subject: m.subject,
          deliveryCount: m.info.deliveryCount,
          bytes: m.data.length,
          data,
        }),
      );
    } finally {
      // Plain +TERM: servers before 2.11 ignore a term that carries a reason.
      m.term();
    }
  }

  /** CALL_RECEIVED starts (or signals) the inbound workflow of the number's flow; unknown numbers are rejected. */
  async function receive(ev: TelephonyEvent, workflowId: string): Promise<'started' | 'rejected'> {
    const to = typeof ev.properties.to === 'string' ? ev.properties.to : '';
    const flowId = inbound ? await inbound.flows.route(to) : undefined;
    const flow = flowId && inbound ? await inbound.flows.get(flowId) : undefined;
    if (!inbound || !flow) {
      log.warn(
        { callId: ev.callId, to: to || '(no number)' },
        'rejected inbound call: no published flow answers this number',
      );
      await inbound?.provider.send({
        action: 'hangup',
        callId: ev.callId,
        commandId: `${ev.callId}#reject`,
        elementId: '-',
      });
      return 'rejected';
    }
    await startInboundCall(client, { flow, received: ev, workflowId, taskQueue: inbound.taskQueue });
    return 'started';
  }

  /**
   * While Temporal is away, events are held in progress here rather than redelivered with back-off:
   * one probe asks Temporal every PROBE_INTERVAL_MS, and the moment it answers every held event is
   * signalled. A back-off of its own per event (up to 10 s, on top of the client's retries) delivered
   * events up to 20 s after Temporal was back — later than a call's grace for the events of an
   * outage, so answered calls were cut off at the prompt that was under way.
   */
  let temporalBack: Promise<void> | undefined;
  function whenTemporalAnswers(): Promise<void> {
    temporalBack ??= (async () => {
      log.warn('Temporal does not answer: holding events until it does');
      const since = Date.now();
      for (;;) {
        await new Promise((r) => setTimeout(r, PROBE_INTERVAL_MS));
        try {
          await client.connection.withDeadline(Date.now() + PROBE_INTERVAL_MS * 2, () =>
            client.connection.workflowService.getSystemInfo({}),
          );
          break;
        } catch (err) {
          if (!temporalAway(err)) break; // it answers, with an error of its own: the signal will tell
        }
      }
      log.info(
        { outageS: Math.round((Date.now() - since) / 1000) },
        'Temporal answers again: delivering the held events',
      );
    })().finally(() => {
      temporalBack = undefined;
    });
    return temporalBack;
  }
  async function holdWhileTemporalAway(m: JsMsg): Promise<void> {
    // Held past the ack wait, the event would be redelivered to another bridge instance meanwhile.
    const keepAlive = setInterval(() => m.working(), ACK_WAIT_MS / 3);
    try {
      await whenTemporalAnswers();
    } finally {
      clearInterval(keepAlive);
    }
  }

  /** `release`: a held event whose hold ended without a following event: signalled now. */
  async function deliver(m: JsMsg, ev: TelephonyEvent, workflowId: string, release = false): Promise<void> {
    if (m.info.redelivered) metrics.redeliveries.inc();
    // Known to be away: wait with the others instead of spending a failing call on it.
    if (temporalBack) await holdWhileTemporalAway(m);
    // Events held for this call before this one: signalled with it, settled with it.
    let before: HeldEvent[] = [];
    try {
      if (ev.type === 'CALL_RECEIVED') {
        const r = await receive(ev, workflowId);
        m.ack();
        metrics.events.inc({ type: ev.type, result: r });
        return;
      }
      if (EVENTS_NO_ELEMENT_READS.has(ev.type)) {
        m.ack();
        metrics.events.inc({ type: ev.type, result: 'dropped' });
        return;
      }
      if (signalled.has(ev.id)) {
        m.ack();
        metrics.events.inc({ type: ev.type, result: 'duplicate' });
        return;
      }
      const seen = perCall.get(workflowId) ?? { events: 0, bytes: 0 };
      if (seen.events >= MAX_EVENTS_PER_CALL || seen.bytes + m.data.length > MAX_EVENT_BYTES_PER_CALL) {
        return deadLetter(
          m,
          'callFlooded',
          `${ev.id}: ${workflowId} already received ${seen.events} events (${seen.bytes} bytes)`,
        );
      }
      if (
        !release &&
        isHeldEvent(ev) &&
        !endedLegs.has(ev.callId) &&
        (held.get(workflowId)?.events.length ?? 0) < MAX_HELD_PER_CALL
      ) {
        // Acknowledged with the signal that carries it: a bridge that dies meanwhile leaves it to another.
        hold(workflowId, m, ev);
        metrics.events.inc({ type: ev.type, result: 'held' });
        return;
      }
      before = takeHeld(workflowId);
      // A whole-call recording (it comes after the hang-up, and a flow may dial again meanwhile)
      // goes into the records whatever becomes of the signal: the call may close before it arrives,
      // or while it does. Idempotent by its id, and the reports join it once.
      if (ev.type === 'CALL_RECORDING_READY' && ev.properties.commandId === undefined)
        await recordWholeCallRecording(ev, workflowId);
      const sent = performance.now();
      if (before.length === 0) await client.workflow.getHandle(workflowId).signal(telephonyEventSignal, ev);
      else await client.workflow.getHandle(workflowId).signal(telephonyEventsSignal, [...before.map((h) => h.ev), ev]);
      perCall.set(workflowId, {
        events: seen.events + 1 + before.length,
        bytes: seen.bytes + m.data.length + before.reduce((n, h) => n + h.m.data.length, 0),
      });
      metrics.signalRpc.observe((performance.now() - sent) / 1000);
      for (const h of before) signalled.set(h.ev.id, true);
      signalled.set(ev.id, true);
      if (ev.type === 'CALL_FINISHED' || ev.type === 'CALL_FAILED') endedLegs.set(ev.callId, true);
      settleHeld(before, 'ack');
      m.ack();
      for (const h of before) metrics.events.inc({ type: h.ev.type, result: 'signalled' });
      metrics.events.inc({ type: ev.type, result: 'signalled' });
      const ts = Date.parse((before[0]?.ev ?? ev).timestamp);
      if (Number.isFinite(ts)) metrics.latency.observe(Math.max(0, Date.now() - ts) / 1000);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) {
        // A late or duplicate event of a call that already finished: nothing to do. An event for a
        // call that never existed is kept with the reason (a misrouted provider, or an injection).
        let exists: boolean;
        try {
          exists = await workflowExists(workflowId);
        } catch (describeErr) {
          // Temporal did not answer the question: try the event again later, like a failed signal.
          metrics.events.inc({ type: ev.type, result: 'retry' });
          log.warn({ workflowId, err: describeErr }, 'could not check whether the call exists');
          putBack(workflowId, before);
          m.nak(Math.min(10_000, 250 * 2 ** m.info.deliveryCount));
          return;
        }
        if (exists) {
          settleHeld(before, 'ack');
          m.ack();
          metrics.events.inc({ type: ev.type, result: 'callFinished' });
          return;
        }
        for (const h of before) clearInterval(h.keepAlive);
        // Each is terminated whether or not its dead letter could be written.
        await Promise.allSettled(
          before.map((h) => deadLetter(h.m, 'unknownCall', `${h.ev.id}: no call workflow ${workflowId}`)),
        );
        return deadLetter(m, 'unknownCall', `${ev.id}: no call workflow ${workflowId}`);
      }
      // Anything else happens to the events held before this one too: the retry carries them again.
      putBack(workflowId, before);
      if (temporalAway(err)) {
        // Temporal restarts or is unreachable: the event waits for it, whatever the delivery count,
        // and goes out as soon as Temporal answers again (see holdWhileTemporalAway).
        metrics.events.inc({ type: ev.type, result: 'retry' });
        await holdWhileTemporalAway(m);
        return deliver(m, ev, workflowId, release);
      }
      if (m.info.deliveryCount >= BRIDGE_MAX_DELIVER)
        return deadLetter(m, 'signalFailed', `${ev.id}: ${(err as Error).message}`);
      metrics.events.inc({ type: ev.type, result: 'retry' });
      m.nak(Math.min(10_000, 250 * 2 ** m.info.deliveryCount));
    }
  }

  /**
   * A whole-call recording: a record of its own next to the call's, which the reports join (the
   * call's own record has it too when it came in before the call closed).
   */
  async function recordWholeCallRecording(ev: TelephonyEvent, workflowId: string): Promise<void> {
    const p = ev.properties;
    const campaignId = recordsNameOfWorkflowId(workflowId);
    if (!opts.records || !campaignId || typeof p.recordingId !== 'string') return;
    await opts.records.publish(
      {
        kind: 'recording',
        campaignId,
        workflowId,
        recording: {
          recordingId: p.recordingId,
          name: typeof p.name === 'string' ? p.name : 'call',
          ...(typeof p.durationMs === 'number' ? { durationMs: p.durationMs } : {}),
          ...(typeof p.url === 'string' ? { url: p.url } : {}),
        },
      },
      `${workflowId}:recording:${p.recordingId}`,
    );
    metrics.events.inc({ type: ev.type, result: 'recorded' });
  }

  async function workflowExists(workflowId: string): Promise<boolean> {
    try {
      await client.workflow.getHandle(workflowId).describe();
      return true;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  }

  function handle(m: JsMsg): Promise<void> {
    if (m.data.length > MAX_EVENT_BYTES)
      return deadLetter(m, 'tooLarge', `${m.subject}: ${m.data.length} bytes (at most ${MAX_EVENT_BYTES})`);
    if (ownSubjects && !m.subject.startsWith(ownSubjects))
      return deadLetter(m, 'wrongProvider', `${m.subject}: this deployment's calls go through ${opts.provider}`);
    let raw: unknown;
    try {
      raw = JSON.parse(m.string());
    } catch {
      return deadLetter(m, 'malformedJson', m.subject);
    }
    const parsed = telephonyEventSchema.safeParse(raw);
    if (!parsed.success)
      return deadLetter(
        m,
        'invalidEvent',
        parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
      );
    const sealed = parsed.data;
    const workflowId = workflowIdOfCallId(sealed.callId);
    if (!workflowId) return deadLetter(m, 'unroutable', `callId ${sealed.callId}`);
    return enqueue(workflowId, async () => {
      let ev: TelephonyEvent;
      try {
        ev = await openEvent(sealed);
      } catch (err) {
        if (!(err instanceof SealedEventError)) throw err;
        return deadLetter(m, 'unreadable', err.message);
      }
      return deliver(m, ev, workflowId);
    });
  }

  const loop = (async () => {
    for await (const m of messages) {
      while (inFlight >= MAX_IN_FLIGHT) await new Promise<void>((r) => (wake = r));
      inFlight += 1;
      void handle(m)
        .catch((err: unknown) => log.error({ err }, 'unexpected error'))
        .finally(() => {
          inFlight -= 1;
          wake?.();
          wake = undefined;
        });
    }
  })();

  return {
    async stop() {
      clearInterval(lagTimer);
      await messages.close();
      await loop;
      await Promise.allSettled([...chains.values()]);
      // Held events go back to the stream at once, for another bridge (or this one restarted).
      for (const workflowId of [...held.keys()]) settleHeld(takeHeld(workflowId), 'nak');
    },
  };
}
