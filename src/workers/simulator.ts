// The telephony simulator process: answers provider commands on NATS and publishes the events a
// scripted person would cause, on JetStream, with the latencies of the chosen profile.
//
// Nothing is lost when nats-server or this process goes away: a command is acknowledged only after
// the events it causes, and the simulated person's state of the call, are stored in the durable
// outbox (src/telephony/outbox.ts, KV bucket `dialflow_sim_outbox`); events are published from
// there at their time, retried until JetStream acknowledges them. A restarted simulator reads the
// bucket back: every call goes on where it was, overdue events go out at once.
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Counter, type Registry } from 'prom-client';
import { TELEPHONY_ACTIONS, type TelephonyCommand } from '../telephony/contract.js';
import { commandSubject, publishEvent, smsSubject } from '../telephony/nats.js';
import {
  applyChaos,
  chaosSchema,
  DEMO_LATENCY,
  INSTANT,
  NO_CHAOS,
  simCallStateSchema,
  SimulatorEngine,
  type Chaos,
  type SimCallState,
  type SimulatorLatency,
  type WireEvent,
} from '../telephony/simulator.js';
import { seededRandom } from '../flow/random.js';
import { textSealer } from '../telephony/event-seal.js';
import { ObjectRecordingStore, synthesizeWav } from '../store/recordings.js';
import { createLogger, type Logger } from '../logging.js';
import {
  EventOutbox,
  KvOutboxStore,
  OutboxUnavailableError,
  idOfKey,
  outboxKey,
  type OutboxEvent,
  type OutboxStats,
} from '../telephony/outbox.js';

/** The simulator's outbox and call states; dial counters live beside them under `d.`. */
export const SIM_OUTBOX_BUCKET = 'dialflow_sim_outbox';
/**
 * A finished call's state is kept this long: a redelivered dial is not placed again, and a command a
 * workflow re-sends to confirm the call's state after an outage (its command window is 10 minutes)
 * meets the call as it ended, not a call the simulator never knew (which it reports as lost, a
 * CALL_FINISHED INTERNAL_ERROR that could overtake the call's real, delayed end).
 */
const FORGET_AFTER_MS = 12 * 60_000;

export const simulatorStatsSubject = (provider: string) => `dialflow.sim.${provider}.stats`;
/** The reply on the stats subject. */
export interface SimulatorStatsReply {
  sms: number;
  dials: number;
  commands: number;
  events: number;
  dialsByCall: Record<string, number>;
  chaos: { duplicate: number; reorder: number; redeliver: number };
  /** Events stored and not yet acknowledged by JetStream, published, publish retries, commands left unanswered. */
  outbox: OutboxStats;
  /** Calls taken up again from the outbox at the last start. */
  recovered: number;
}
/** Request `{ from, to, persona }`: a simulated person calls `to`; replies `{ callId }`. */
export const simulatorCallInSubject = (provider: string) => `dialflow.sim.${provider}.call-in`;

export function parseLatency(spec: string): SimulatorLatency {
  if (spec === 'demo') return DEMO_LATENCY;
  if (spec === 'instant') return INSTANT;
  const parsed = JSON.parse(spec) as Partial<SimulatorLatency>;
  return { ...DEMO_LATENCY, ...parsed };
}

/** `DIALFLOW_SIM_CHAOS`: empty for none, or JSON such as `{"duplicate":0.1,"reorder":0.1,"redeliver":0.05}`. */
export function parseChaos(spec: string): Chaos {
  if (spec.trim() === '') return NO_CHAOS;
  return chaosSchema.parse(JSON.parse(spec));
}

const ACTIONS = new Set<string>(TELEPHONY_ACTIONS);

/** A request's JSON body, or undefined when it is not JSON (the caller answers what it expected). */
function jsonOf(msg: Msg): unknown {
  try {
    return msg.json<unknown>();
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    return undefined;
  }
}

// Outbox records carry digits (DTMF events) and personas: sealed with the payload key like events
// on JetStream, where the process has one.
const recordSealer = {
  seal: (plain: string) => textSealer.seal(plain),
  open: (stored: string) => textSealer.open(stored),
};

export interface RunningSimulator {
  engine: SimulatorEngine;
  outbox: EventOutbox<SimCallState>;
  stop(): Promise<void>;
}

export async function startSimulator(opts: {
  nc: NatsConnection;
  provider: string;
  latency: SimulatorLatency;
  chaos?: Chaos;
  registry?: Registry;
  /** The service's logger; one of its own at `info` by default (in-process use). */
  logger?: Logger;
  bucket?: string;
}): Promise<RunningSimulator> {
  const { nc, provider } = opts;
  const log = opts.logger ?? createLogger('simulator', 'info');
  const js = jetstream(nc);
  const recordings = await ObjectRecordingStore.open(nc);
  const engine = new SimulatorEngine(opts.latency);
  const commands = opts.registry
    ? new Counter({
        name: 'dialflow_simulator_commands_total',
        help: 'Commands received by the simulator',
        labelNames: ['action'],
        registers: [opts.registry],
      })
    : undefined;
  const chaos = opts.chaos ?? NO_CHAOS;
  const random = seededRandom(chaos.seed);
  const chaosCounts = { duplicate: 0, reorder: 0, redeliver: 0 };
  const chaosCounter = opts.registry
    ? new Counter({
        name: 'dialflow_simulator_chaos_events_total',
        help: 'Events the simulator duplicated, reordered or sent again on purpose',
        labelNames: ['kind'],
        registers: [opts.registry],
      })
    : undefined;

  // The simulator's NATS identity may use this bucket (src/telephony/nats-auth.ts); without it
  // the simulator does not start: it would otherwise acknowledge commands it could lose.
  const store = await KvOutboxStore.open(nc, opts.bucket ?? SIM_OUTBOX_BUCKET);
  // Dials per call id outlive the call's state (forgotten after 12 minutes), so the stats that tell
  // a double dial survive a restart of this process.
  const dialStore = store.withPrefix('d.');
  const outboxLog = log.child({ module: 'outbox' });
  const outbox = new EventOutbox<SimCallState>(store, {
    stateSchema: simCallStateSchema,
    // The outbox reports skipped records, retries and late publishes: all worth a look, none fatal.
    log: (m) => outboxLog.warn(m),
    sealer: recordSealer,
    // A recording is stored before its CALL_RECORDING_READY goes out, so whoever reacts can fetch it.
    publish: async (e) => {
      if (e.recording) await recordings.put(e.recording, synthesizeWav(e.recording.durationMs));
      await publishEvent(js, provider, e.event, e.msgId);
    },
  });
  const states = await outbox.recover();
  for (const [callId, state] of states) engine.restore(callId, state);
  for await (const [key, value] of dialStore.entries()) {
    const callId = idOfKey(key);
    const n = Number(value);
    if (Number.isInteger(n) && n > (engine.stats.dialsByCall.get(callId) ?? 0)) {
      engine.stats.dials += n - (engine.stats.dialsByCall.get(callId) ?? 0);
      engine.stats.dialsByCall.set(callId, n);
    }
  }
  if (states.size > 0) log.info({ calls: states.size, pending: outbox.stats.pending }, 'took up calls from the outbox');

  // Commands of one call are handled one at a time: a retried command waits for the first to be
  // stored, then finds its id and plans nothing.
  const callChains = new Map<string, Promise<void>>();
  function perCall(callId: string, fn: () => Promise<void>): void {
    const next = (callChains.get(callId) ?? Promise.resolve())
      .then(fn)
      .catch((err: unknown) => log.error({ err, callId }, 'command failed'));
    callChains.set(callId, next);
    void next.finally(() => {
      if (callChains.get(callId) === next) callChains.delete(callId);
    });
  }

  const toOutbox = (planned: WireEvent[], at: number): OutboxEvent[] =>
    planned.map((p) => ({
      at: at + p.delayMs,
      msgId: p.msgId,
      event: p.event,
      ...(p.recording ? { recording: p.recording } : {}),
    }));

  async function handleCommand(cmd: TelephonyCommand, respond: (body: string) => void): Promise<void> {
    const callId = cmd.callId;
    const before = engine.snapshot(callId);
    const at = Date.now();
    const planned = applyChaos(engine.plan(cmd), chaos, random);
    const after = engine.snapshot(callId);
    if (planned.length === 0 && JSON.stringify(before) === JSON.stringify(after)) {
      // A command seen before (its events are in the outbox or out already) or one that changes
      // nothing (a command after the person hung up).
      respond(JSON.stringify({ ok: true }));
      return;
    }
    try {
      await outbox.commit(callId, after ?? null, toOutbox(planned, at));
    } catch (err) {
      if (!(err instanceof OutboxUnavailableError)) throw err;
      // Undo, and leave the command unanswered: the requester times out and retries, and the
      // person acts on it then as if it came for the first time.
      engine.restore(callId, before);
      log.warn({ action: cmd.action, callId, reason: err.message }, 'command not acknowledged');
      return;
    }
    for (const p of planned) {
      if (!p.chaos) continue;
      chaosCounts[p.chaos] += 1;
      chaosCounter?.inc({ kind: p.chaos });
    }
    if (cmd.action === 'dial' && after) {
      // Only the stats depend on this write; the call itself is stored above.
      await dialStore
        .put(outboxKey(callId), String(engine.stats.dialsByCall.get(callId) ?? after.d))
        .catch((err: unknown) => log.warn({ err, callId }, 'cannot store the dial count'));
    }
    respond(JSON.stringify({ ok: true }));
  }

  const sub: Subscription = nc.subscribe(commandSubject(provider), {
    queue: `dialflow-sim-${provider}`,
    callback: (err, msg) => {
      if (err) return log.error({ err }, 'command subscription error');
      const cmd = jsonOf(msg) as TelephonyCommand | undefined;
      if (
        !cmd ||
        typeof cmd !== 'object' ||
        !ACTIONS.has(cmd.action) ||
        typeof cmd.callId !== 'string' ||
        typeof cmd.commandId !== 'string'
      ) {
        msg.respond(JSON.stringify({ ok: false, error: 'not a telephony command' }));
        return;
      }
      commands?.inc({ action: cmd.action });
      perCall(cmd.callId, () => handleCommand(cmd, (body) => msg.respond(body)));
    },
  });
  let smsCount = 0;
  const smsSub = nc.subscribe(smsSubject(provider), {
    queue: `dialflow-sim-${provider}`,
    callback: (_err, msg) => {
      const sms = (jsonOf(msg) ?? {}) as { to?: unknown; text?: unknown };
      if (typeof sms.to !== 'string' || typeof sms.text !== 'string' || sms.text.length === 0) {
        msg.respond(JSON.stringify({ ok: false, error: 'an SMS needs `to` and `text`' }));
        return;
      }
      smsCount += 1;
      msg.respond(JSON.stringify({ ok: true, messageId: `sim-sms-${smsCount}` }));
    },
  });
  let inbound = 0;
  const callInSub = nc.subscribe(simulatorCallInSubject(provider), {
    callback: (_err, msg) => {
      const req = (jsonOf(msg) ?? {}) as { from?: unknown; to?: unknown; persona?: unknown };
      const { from, to } = req;
      if (typeof to !== 'string' || typeof from !== 'string') {
        msg.respond(JSON.stringify({ ok: false, error: 'a simulated inbound call needs `from` and `to`' }));
        return;
      }
      // Provider-assigned id without "~": the bridge routes it to inbound:{callId}.
      const callId = `sim-in-${Date.now().toString(36)}-${++inbound}`;
      perCall(callId, async () => {
        const received = engine.incomingCall(callId, from, to, req.persona ?? {});
        try {
          await outbox.commit(
            callId,
            engine.snapshot(callId) ?? null,
            toOutbox([{ ...received, msgId: received.event.id }], Date.now()),
          );
        } catch (err) {
          if (!(err instanceof OutboxUnavailableError)) throw err;
          engine.restore(callId, undefined);
          msg.respond(JSON.stringify({ ok: false, error: err.message }));
          return;
        }
        msg.respond(JSON.stringify({ ok: true, callId }));
      });
    },
  });
  const statsSub = nc.subscribe(simulatorStatsSubject(provider), {
    callback: (_err, msg) => {
      const reply: SimulatorStatsReply = {
        sms: smsCount,
        dials: engine.stats.dials,
        commands: engine.stats.commands,
        events: engine.stats.events,
        dialsByCall: Object.fromEntries(engine.stats.dialsByCall),
        chaos: chaosCounts,
        outbox: { ...outbox.stats },
        recovered: states.size,
      };
      msg.respond(JSON.stringify(reply));
    },
  });
  // Memory and the bucket stay bounded: a finished call is dropped 12 minutes after it ended, once
  // none of its events is still owed.
  const sweeper = setInterval(() => {
    for (const callId of engine.forgetFinished(FORGET_AFTER_MS, (id) => outbox.pendingOf(id) === 0))
      void outbox.forget(callId);
    for (const id of outbox.stateless()) void outbox.forget(id);
  }, 30_000);
  sweeper.unref();

  return {
    engine,
    outbox,
    async stop() {
      clearInterval(sweeper);
      sub.unsubscribe();
      smsSub.unsubscribe();
      callInSub.unsubscribe();
      statsSub.unsubscribe();
      await Promise.allSettled([...callChains.values()]);
      await outbox.stop();
    },
  };
}
