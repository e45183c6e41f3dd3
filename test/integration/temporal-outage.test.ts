// The bridge across a Temporal outage: events of calls that happen while Temporal is away are held
// and signalled as soon as it answers again — well inside a call's 15 s grace for the events of an
// outage (the `temporal-150s` drill cut off calls whose prompt ended during the outage, because the
// bridge delivered its backlog up to 20 s after Temporal was back).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCall } from '../../src/client/calls.js';
import { parseFlow } from '../../src/flow/validate.js';
import { startEphemeralStack, type EphemeralStack } from '../../src/dev/ephemeral.js';
import { callStatusQuery } from '../../src/workflows/messages.js';
import { decodeHistory } from '../../src/codec/encryption.js';
import { payloadCodec } from '../../src/config/index.js';

const flow = parseFlow(
  JSON.parse(readFileSync(new URL('../../examples/appointment-reminder.json', import.meta.url), 'utf8')),
);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let t: EphemeralStack;
beforeAll(async () => {
  // Slow speech: the menu prompt plays for several seconds, so it ends while Temporal is away.
  t = await startEphemeralStack({
    sqlite: true,
    simLatency: JSON.stringify({ msPerChar: 80 }),
    taskQueue: 'it-temporal-outage',
  });
});
afterAll(async () => {
  await t?.stop();
});

describe('Temporal outage', () => {
  it('events of the outage are signalled as soon as Temporal answers again', async () => {
    const handle = await startCall(t.client, {
      flow,
      campaignId: `outage-${Date.now()}`,
      taskQueue: t.config.temporal.taskQueue,
      recipient: { id: 'o1', phone: '+385915550101', firstName: 'Ana' },
      hints: { persona: { attempts: ['answered'], keys: ['1'] } },
    });
    // Kill the server while the menu prompt plays.
    for (let i = 0; ; i++) {
      const status = await handle.query(callStatusQuery);
      if (status.phase === 'playing') break;
      if (i > 100) throw new Error(`the call never reached its prompt (phase ${status.phase})`);
      await sleep(100);
    }
    await t.stack.kill('temporal', 'SIGKILL');
    const killedAt = Date.now();
    // Long enough for reconnect back-off and redelivery back-off to grow past the call's grace.
    await sleep(30_000);
    await t.stack.startTemporal({
      port: Number(t.config.temporal.address.split(':').at(-1)),
      dbFile: join(t.dataDir, 'temporal.db'),
      deadlineMs: 120_000,
    });
    const backAt = Date.now();

    const result = await handle.result();
    expect(result.trail.map((x) => `${x.element}:${x.branch}`)).toEqual([
      'call:answered',
      'menu:played',
      'ask:1',
      'confirmed:played',
    ]);
    const history = await decodeHistory(await handle.fetchHistory(), payloadCodec(t.config));
    const signals = (history.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes);
    const atMs = (e: (typeof signals)[number]) =>
      Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);
    // The prompt's end happened during the outage; its signal came after the restart.
    const promptEnd = signals.find((e) =>
      Buffer.from(e.workflowExecutionSignaledEventAttributes?.input?.payloads?.[0]?.data ?? [])
        .toString()
        .includes('"SAY_FINISHED"'),
    );
    expect(promptEnd).toBeDefined();
    const signalledAt = atMs(promptEnd!);
    expect(signalledAt).toBeGreaterThan(killedAt);
    // Held, not backed off: out within a few seconds of Temporal answering (the call's grace is 15 s).
    expect(signalledAt - backAt).toBeLessThan(5_000);
  }, 180_000);
});
