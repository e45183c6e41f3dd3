// The durable outbox: nothing acknowledged that is not stored, nothing dropped while the broker is
// down, order per call kept through retries, and a restart takes the events up again.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  EventOutbox,
  MemoryOutboxStore,
  OutboxUnavailableError,
  type OutboxEvent,
} from '../../src/telephony/outbox.js';
import {
  personaSchema,
  SimulatorEngine,
  simCallStateSchema,
  type SimCallState,
} from '../../src/telephony/simulator.js';
import type { TelephonyCommand } from '../../src/telephony/contract.js';

const ev = (callId: string, n: number, at: number): OutboxEvent => ({
  at,
  msgId: `${callId}:${n}`,
  event: { id: `${callId}:${n}`, type: 'SAY_FINISHED', callId, timestamp: new Date(at).toISOString(), properties: {} },
});
const stateSchema = z.object({ step: z.number() });
const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A broker that can be down; records what it acknowledged, in order. */
function broker() {
  const acked: string[] = [];
  const b = {
    down: false,
    attempts: 0,
    acked,
    async publish(e: OutboxEvent) {
      b.attempts += 1;
      await tick(1);
      if (b.down) throw new Error('no responders');
      acked.push(e.msgId);
    },
  };
  return b;
}

const fast = { initialMs: 5, maxMs: 20 };

describe('durable outbox', () => {
  it('stores before it resolves, publishes at the due time, then drops the event from the store', async () => {
    const store = new MemoryOutboxStore();
    const b = broker();
    const box = new EventOutbox(store, { publish: b.publish, stateSchema, retry: fast, log: () => undefined });
    const now = Date.now();
    await box.commit('a', { step: 1 }, [ev('a', 1, now), ev('a', 2, now + 60)]);
    expect(JSON.parse([...store.data.values()][0]!).p).toHaveLength(2);
    await tick(20);
    expect(b.acked).toEqual(['a:1']);
    await tick(80);
    await box.idle();
    expect(b.acked).toEqual(['a:1', 'a:2']);
    await tick(5);
    expect(JSON.parse([...store.data.values()][0]!)).toEqual({ s: { step: 1 }, p: [] });
    expect(box.stats).toMatchObject({ pending: 0, published: 2, publishRetries: 0 });
    expect(await box.forget('a')).toBe(true);
    expect(store.data.size).toBe(0);
    await box.stop();
  });

  it('refuses a commit it cannot store, and changes nothing', async () => {
    const store = new MemoryOutboxStore();
    const b = broker();
    const box = new EventOutbox(store, { publish: b.publish, stateSchema, retry: fast, log: () => undefined });
    store.failing = true;
    await expect(box.commit('a', { step: 1 }, [ev('a', 1, Date.now())])).rejects.toBeInstanceOf(OutboxUnavailableError);
    expect(box.state('a')).toBeUndefined();
    await tick(30);
    expect(b.attempts).toBe(0);
    expect(box.stats.refused).toBe(1);
    await box.stop();
  });

  it('retries while the broker is down and keeps the order of each call', async () => {
    const store = new MemoryOutboxStore();
    const b = broker();
    const logs: string[] = [];
    const box = new EventOutbox(store, { publish: b.publish, stateSchema, retry: fast, log: (m) => logs.push(m) });
    b.down = true;
    const now = Date.now();
    await box.commit('a', { step: 1 }, [ev('a', 1, now), ev('a', 2, now + 5), ev('a', 3, now + 10)]);
    await box.commit('b', { step: 1 }, [ev('b', 1, now)]);
    await tick(150);
    expect(b.acked).toEqual([]);
    expect(b.attempts).toBeGreaterThan(4);
    // Still stored while unpublished.
    expect(box.pendingOf('a')).toBe(3);
    expect(await box.forget('a')).toBe(false);
    b.down = false;
    for (let i = 0; i < 50 && b.acked.length < 4; i++) await tick(20);
    expect(b.acked.filter((m) => m.startsWith('a:'))).toEqual(['a:1', 'a:2', 'a:3']);
    expect(b.acked).toContain('b:1');
    expect(logs.some((m) => /failed \(attempt 1, retrying\)/.test(m))).toBe(true);
    await box.stop();
  });

  it('a restart publishes what was owed: overdue at once and in order, later ones at their time', async () => {
    const store = new MemoryOutboxStore();
    const b1 = broker();
    b1.down = true;
    const first = new EventOutbox(store, { publish: b1.publish, stateSchema, retry: fast, log: () => undefined });
    const now = Date.now();
    await first.commit('a', { step: 7 }, [ev('a', 1, now), ev('a', 2, now + 1), ev('a', 3, now + 150)]);
    await tick(20);
    await first.stop(); // the process dies with three events owed

    const b2 = broker();
    const second = new EventOutbox(store, { publish: b2.publish, stateSchema, retry: fast, log: () => undefined });
    const states = await second.recover();
    expect(states.get('a')).toEqual({ step: 7 });
    await tick(40);
    expect(b2.acked).toEqual(['a:1', 'a:2']);
    for (let i = 0; i < 30 && b2.acked.length < 3; i++) await tick(20);
    expect(b2.acked).toEqual(['a:1', 'a:2', 'a:3']);
    await second.stop();
  });

  it('a publish acknowledged but whose removal could not be stored is published again (same msg-id) after a restart', async () => {
    const store = new MemoryOutboxStore();
    const b = broker();
    const box = new EventOutbox(store, {
      publish: b.publish,
      stateSchema,
      retry: { initialMs: 5, maxMs: 10_000 },
      log: () => undefined,
    });
    await box.commit('a', { step: 1 }, [ev('a', 1, Date.now() + 30)]);
    store.failing = true;
    await tick(80);
    expect(b.acked).toEqual(['a:1']);
    await box.stop();
    store.failing = false;
    const b2 = broker();
    const again = new EventOutbox(store, { publish: b2.publish, stateSchema, retry: fast, log: () => undefined });
    await again.recover();
    await tick(30);
    expect(b2.acked).toEqual(['a:1']);
    await again.stop();
  });
});

describe('simulator state survives a restart', () => {
  const dial = (callId: string): TelephonyCommand =>
    ({
      action: 'dial',
      callId,
      commandId: `${callId}#1`,
      dialIndex: 1,
      attempt: 1,
      from: '+1',
      to: '+2',
      hints: { persona: { attempts: ['answered'], keys: ['9', '2'] } },
    }) as unknown as TelephonyCommand;
  const collect = (callId: string, n: number): TelephonyCommand =>
    ({
      action: 'captureDtmf',
      callId,
      commandId: `${callId}#${n}`,
      elementId: 'ask',
      maxDigits: 1,
      firstDigitTimeoutMs: 5000,
      interDigitTimeoutMs: 2000,
      terminator: '#',
    }) as unknown as TelephonyCommand;

  it('a new engine restored from a snapshot continues the call: next key, same event ids, dials counted', () => {
    const a = new SimulatorEngine();
    a.plan(dial('c~1'));
    expect(a.plan(collect('c~1', 2))[0]?.event.properties.dtmf).toBe('9');
    const stored = simCallStateSchema.parse(JSON.parse(JSON.stringify(a.snapshot('c~1'))));
    const next = a.plan(collect('c~1', 3));

    const b = new SimulatorEngine();
    b.restore('c~1', stored);
    expect(b.stats.dialsByCall.get('c~1')).toBe(1);
    // The repeated command plans nothing; the next one gets the next key and the same id as before.
    expect(b.plan(collect('c~1', 2))).toEqual([]);
    const again = b.plan(collect('c~1', 3));
    expect(again.map((p) => [p.event.id, p.event.properties.dtmf])).toEqual(
      next.map((p) => [p.event.id, p.event.properties.dtmf]),
    );
    expect(again[0]?.event.properties.dtmf).toBe('2');
  });

  it('restore(undefined) undoes a dial, counters included', () => {
    const e = new SimulatorEngine();
    e.plan(dial('c~2'));
    e.restore('c~2', undefined);
    expect(e.knows('c~2')).toBe(false);
    expect(e.stats.dials).toBe(0);
    expect(e.stats.dialsByCall.has('c~2')).toBe(false);
    const state: SimCallState = {
      persona: personaSchema.parse({}),
      c: 0,
      e: true,
      f: false,
      k: false,
      cmd: ['x'],
      q: 2,
      d: 1,
    };
    e.restore('c~3', state);
    expect(e.snapshot('c~3')).toEqual(state);
  });
});
