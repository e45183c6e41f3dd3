// The telephony simulator process: answers provider commands on NATS and publishes the events a
// scripted person would cause, on JetStream, with the latencies of the chosen profile.
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Counter, type Registry } from 'prom-client';
import { TELEPHONY_ACTIONS, type TelephonyCommand } from '../telephony/contract.js';
import { commandSubject, publishEvent, smsSubject } from '../telephony/nats.js';
import { applyChaos, chaosSchema, DEMO_LATENCY, INSTANT, NO_CHAOS, SimulatorEngine, type Chaos, type SimulatorLatency, type WireEvent } from '../telephony/simulator.js';
import { seededRandom } from '../flow/random.js';
import type { TelephonyEvent } from '../telephony/contract.js';
import { ObjectRecordingStore, synthesizeWav, type RecordingMeta } from '../store/recordings.js';

export const simulatorStatsSubject = (provider: string) => `dialflow.sim.${provider}.stats`;
/** The reply on the stats subject. */
export interface SimulatorStatsReply {
  sms: number;
  dials: number;
  commands: number;
  events: number;
  dialsByCall: Record<string, number>;
  chaos: { duplicate: number; reorder: number; redeliver: number };
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

export interface RunningSimulator {
  engine: SimulatorEngine;
  stop(): Promise<void>;
}

export async function startSimulator(opts: { nc: NatsConnection; provider: string; latency: SimulatorLatency; chaos?: Chaos; registry?: Registry; log?: (m: string) => void }): Promise<RunningSimulator> {
  const { nc, provider } = opts;
  const log = opts.log ?? ((m: string) => console.error(`simulator: ${m}`));
  const js = jetstream(nc);
  const recordings = await ObjectRecordingStore.open(nc);
  const engine = new SimulatorEngine(opts.latency);
  const commands = opts.registry ? new Counter({ name: 'dialflow_simulator_commands_total', help: 'Commands received by the simulator', labelNames: ['action'], registers: [opts.registry] }) : undefined;
  const chaos = opts.chaos ?? NO_CHAOS;
  const random = seededRandom(chaos.seed);
  const chaosCounts = { duplicate: 0, reorder: 0, redeliver: 0 };
  const chaosCounter = opts.registry ? new Counter({ name: 'dialflow_simulator_chaos_events_total', help: 'Events the simulator duplicated, reordered or sent again on purpose', labelNames: ['kind'], registers: [opts.registry] }) : undefined;
  const publishChains = new Map<string, Promise<void>>();
  const timers = new Set<NodeJS.Timeout>();

  // Events of one call are published in the order they were scheduled.
  // A recording is stored before its CALL_RECORDING_READY goes out, so whoever reacts can fetch it.
  function publishInOrder(callId: string, ev: TelephonyEvent, msgId: string = ev.id, recording?: RecordingMeta): void {
    const next = (publishChains.get(callId) ?? Promise.resolve()).then(async () => {
      try {
        if (recording) await recordings.put(recording, synthesizeWav(recording.durationMs));
        await publishEvent(js, provider, ev, msgId);
      } catch (err) {
        log(`publish ${ev.type} for ${callId} failed: ${(err as Error).message}`);
      }
    });
    publishChains.set(callId, next);
    void next.finally(() => {
      if (publishChains.get(callId) === next) publishChains.delete(callId);
    });
  }

  function schedule(p: WireEvent): void {
    if (p.chaos) {
      chaosCounts[p.chaos] += 1;
      chaosCounter?.inc({ kind: p.chaos });
    }
    if (p.delayMs <= 0) return publishInOrder(p.event.callId, p.event, p.msgId, p.recording);
    const t = setTimeout(() => {
      timers.delete(t);
      publishInOrder(p.event.callId, p.event, p.msgId, p.recording);
    }, p.delayMs);
    timers.add(t);
  }

  const sub: Subscription = nc.subscribe(commandSubject(provider), {
    queue: `dialflow-sim-${provider}`,
    callback: (err, msg) => {
      if (err) return log(`subscription error: ${err.message}`);
      let cmd: TelephonyCommand;
      try {
        cmd = msg.json<TelephonyCommand>();
        if (!cmd || typeof cmd !== 'object' || !ACTIONS.has(cmd.action) || typeof cmd.callId !== 'string' || typeof cmd.commandId !== 'string') throw new Error('not a telephony command');
      } catch (e) {
        msg.respond(JSON.stringify({ ok: false, error: (e as Error).message }));
        return;
      }
      commands?.inc({ action: cmd.action });
      const planned = applyChaos(engine.plan(cmd), chaos, random);
      msg.respond(JSON.stringify({ ok: true }));
      for (const p of planned) schedule(p);
    },
  });
  let smsCount = 0;
  const smsSub = nc.subscribe(smsSubject(provider), {
    queue: `dialflow-sim-${provider}`,
    callback: (_err, msg) => {
      let sms: { to?: unknown; text?: unknown };
      try {
        sms = msg.json();
      } catch {
        sms = {};
      }
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
      let req: { from?: unknown; to?: unknown; persona?: unknown };
      try {
        req = msg.json();
      } catch {
        req = {};
      }
      if (typeof req.to !== 'string' || typeof req.from !== 'string') {
        msg.respond(JSON.stringify({ ok: false, error: 'a simulated inbound call needs `from` and `to`' }));
        return;
      }
      // Provider-assigned id without "~": the bridge routes it to inbound:{callId}.
      const callId = `sim-in-${Date.now().toString(36)}-${++inbound}`;
      publishInOrder(callId, engine.incomingCall(callId, req.from, req.to, req.persona ?? {}).event);
      msg.respond(JSON.stringify({ ok: true, callId }));
    },
  });
  const statsSub = nc.subscribe(simulatorStatsSubject(provider), {
    callback: (_err, msg) => {
      const reply: SimulatorStatsReply = { sms: smsCount, dials: engine.stats.dials, commands: engine.stats.commands, events: engine.stats.events, dialsByCall: Object.fromEntries(engine.stats.dialsByCall), chaos: chaosCounts };
      msg.respond(JSON.stringify(reply));
    },
  });
  const sweeper = setInterval(() => engine.forgetFinished(60_000), 30_000);
  sweeper.unref();

  return {
    engine,
    async stop() {
      clearInterval(sweeper);
      sub.unsubscribe();
      smsSub.unsubscribe();
      callInSub.unsubscribe();
      statsSub.unsubscribe();
      for (const t of timers) clearTimeout(t);
      await Promise.allSettled([...publishChains.values()]);
    },
  };
}
