// The simulator's chaos: copies keep the event id (workflows dedupe on it) but get their own msg-id
// (so JetStream's dedupe does not hide them); reordering swaps events planned by one command.
import { describe, expect, it } from 'vitest';
import { applyChaos, chaosSchema, type PlannedEvent } from '../../src/telephony/simulator.js';
import { seededRandom } from '../../src/flow/random.js';

const ev = (n: number, type: string, delayMs: number): PlannedEvent => ({
  delayMs,
  event: {
    id: `c~1:${n}:${type}`,
    type: type as PlannedEvent['event']['type'],
    callId: 'c~1',
    timestamp: '2026-11-23T09:00:00Z',
    properties: {},
  },
});
const batch = [ev(1, 'CALL_RINGING', 100), ev(2, 'CALL_ESTABLISHED', 300)];
const chaos = (c: object) => chaosSchema.parse(c);

describe('simulator chaos', () => {
  it('without chaos the wire carries the planned events unchanged', () => {
    expect(applyChaos(batch, chaos({}), seededRandom(1))).toEqual(batch.map((p) => ({ ...p, msgId: p.event.id })));
  });

  it('reorder swaps a pair, both at the later time', () => {
    const out = applyChaos(batch, chaos({ reorder: 1 }), seededRandom(1));
    expect(out.map((w) => [w.event.type, w.delayMs, w.chaos])).toEqual([
      ['CALL_ESTABLISHED', 300, 'reorder'],
      ['CALL_RINGING', 300, 'reorder'],
    ]);
  });

  it('duplicate and redeliver add copies with the same event id and a new msg-id', () => {
    const out = applyChaos(batch, chaos({ duplicate: 1, redeliver: 1, redeliverAfterMs: 1000 }), seededRandom(1));
    expect(out.map((w) => [w.event.id, w.msgId, w.delayMs])).toEqual([
      ['c~1:1:CALL_RINGING', 'c~1:1:CALL_RINGING', 100],
      ['c~1:1:CALL_RINGING', 'c~1:1:CALL_RINGING#dup', 100],
      ['c~1:2:CALL_ESTABLISHED', 'c~1:2:CALL_ESTABLISHED', 300],
      ['c~1:2:CALL_ESTABLISHED', 'c~1:2:CALL_ESTABLISHED#dup', 300],
      ['c~1:1:CALL_RINGING', 'c~1:1:CALL_RINGING#again', 1100],
      ['c~1:2:CALL_ESTABLISHED', 'c~1:2:CALL_ESTABLISHED#again', 1300],
    ]);
  });

  it('is deterministic for a seed and roughly honours the shares', () => {
    const many = Array.from({ length: 2000 }, (_, i) => ev(i, 'SAY_FINISHED', i));
    const a = applyChaos(many, chaos({ duplicate: 0.1, seed: 3 }), seededRandom(3));
    const b = applyChaos(many, chaos({ duplicate: 0.1, seed: 3 }), seededRandom(3));
    expect(a).toEqual(b);
    const dups = a.filter((w) => w.chaos === 'duplicate').length;
    expect(dups).toBeGreaterThan(150);
    expect(dups).toBeLessThan(250);
  });

  it('rejects shares outside 0..1', () => {
    expect(chaosSchema.safeParse({ duplicate: 2 }).success).toBe(false);
    expect(chaosSchema.safeParse({ shuffle: 0.1 }).success).toBe(false);
  });
});
