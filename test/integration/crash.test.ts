// kill -9 of the flow worker in the middle of calls: every call completes exactly once, and the
// simulator sees exactly one dial per call.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { startCall } from '../../src/client/calls.js';
import { parseFlow } from '../../src/flow/validate.js';
import { startEphemeralStack, type EphemeralStack } from '../../src/dev/ephemeral.js';

const flow = parseFlow(
  JSON.parse(readFileSync(new URL('../../examples/appointment-reminder.json', import.meta.url), 'utf8')),
);
let t: EphemeralStack;
beforeAll(async () => {
  // Demo latencies: a call takes a few seconds, so the kill lands mid-call.
  t = await startEphemeralStack({ simLatency: 'demo', taskQueue: 'it-crash' });
});
afterAll(async () => {
  await t?.stop();
});

describe('worker crash', () => {
  it('kill -9 of the worker mid-call: all calls complete once, one dial each', async () => {
    const campaignId = `crash-${Date.now()}`;
    const handles = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        startCall(t.client, {
          flow,
          campaignId,
          taskQueue: t.config.temporal.taskQueue,
          recipient: { id: `k${i}`, phone: `+38591556${String(1000 + i)}`, firstName: 'Ana' },
          hints: { persona: { attempts: ['answered'], keys: [i % 2 ? '1' : '2'] } },
        }),
      ),
    );
    await new Promise((r) => setTimeout(r, 1500));
    const runningAtKill = (await Promise.all(handles.map(async (h) => (await h.describe()).status.name))).filter(
      (s) => s === 'RUNNING',
    ).length;
    await t.stack.kill('worker', 'SIGKILL');
    // The kill must land mid-call for this test to mean anything.
    expect(runningAtKill).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 500));
    await t.stack.startService('worker-restarted', 'worker', t.env);
    const results = await Promise.all(handles.map((h) => h.result()));
    results.forEach((r, i) => {
      expect(r.outcome).toBe('answered');
      expect(r.trail.map((x) => `${x.element}:${x.branch}`)).toEqual([
        'call:answered',
        'menu:played',
        `ask:${i % 2 ? '1' : '2'}`,
        i % 2 ? 'confirmed:played' : 'cancelled:played',
      ]);
      expect(r.dials).toBe(1);
    });
    const ours = await t.simulatorDials(`call:${campaignId}:`);
    expect(ours).toHaveLength(12);
    expect(ours.every(([, d]) => d === 1)).toBe(true);
  }, 120_000);
});
