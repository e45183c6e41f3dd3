// The telephony simulator process: answers provider commands on NATS and publishes the events a
// scripted person would cause, on JetStream, with the latencies of the chosen profile.
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Counter, type Registry } from 'prom-client';
import { TELEPHONY_ACTIONS, type TelephonyCommand } from '../telephony/contract.js';
import { commandSubject, publishEvent, smsSubject } from '../telephony/nats.js';
import { DEMO_LATENCY, INSTANT, SimulatorEngine, type SimulatorLatency } from '../telephony/simulator.js';

export const simulatorStatsSubject = (provider: string) => `dialflow.sim.${provider}.stats`;
/** Request `{ from, to, persona }`: a simulated person calls `to`; replies `{ callId }`. */
export const simulatorCallInSubject = (provider: string) => `dialflow.sim.${provider}.call-in`;

export function parseLatency(spec: string): SimulatorLatency {
  if (spec === 'demo') return DEMO_LATENCY;
  if (spec === 'instant') return INSTANT;
  const parsed = JSON.parse(spec) as Partial<SimulatorLatency>;
  return { ...DEMO_LATENCY, ...parsed };
}

const ACTIONS = new Set<string>(TELEPHONY_ACTIONS);

export interface RunningSimulator {
  engine: SimulatorEngine;
  stop(): Promise<void>;
}

export async function startSimulator(opts: { nc: NatsConnection; provider: string; latency: SimulatorLatency; registry?: Registry; log?: (m: string) => void }): Promise<RunningSimulator> {
  const { nc, provider } = opts;
  const log = opts.log ?? ((m: string) => console.error(`simulator: ${m}`));
  const js = jetstream(nc);
  const engine = new SimulatorEngine(opts.latency);
  const commands = opts.registry ? new Counter({ name: 'dialflow_simulator_commands_total', help: 'Commands received by the simulator', labelNames: ['action'], registers: [opts.registry] }) : undefined;
  const publishChains = new Map<string, Promise<void>>();
  const timers = new Set<NodeJS.Timeout>();

  // Events of one call are published in order.
  function publishInOrder(callId: string, ev: Parameters<typeof publishEvent>[2]): void {
    const next = (publishChains.get(callId) ?? Promise.resolve()).then(() =>
      publishEvent(js, provider, ev).catch((err: unknown) => log(`publish ${ev.type} for ${callId} failed: ${(err as Error).message}`)),
    );
    publishChains.set(callId, next);
    void next.finally(() => {
      if (publishChains.get(callId) === next) publishChains.delete(callId);
    });
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
      const planned = engine.plan(cmd);
      msg.respond(JSON.stringify({ ok: true }));
      for (const p of planned) {
        if (p.delayMs <= 0) {
          publishInOrder(cmd.callId, p.event);
          continue;
        }
        const t = setTimeout(() => {
          timers.delete(t);
          publishInOrder(cmd.callId, p.event);
        }, p.delayMs);
        timers.add(t);
      }
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
      msg.respond(JSON.stringify({ sms: smsCount, dials: engine.stats.dials, commands: engine.stats.commands, events: engine.stats.events, dialsByCall: Object.fromEntries(engine.stats.dialsByCall) }));
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
