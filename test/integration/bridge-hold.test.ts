// Held events (see `holdEvents` in the telephony contract) on the real servers: the bridge signals a
// held event together with the call's next event, alone once its hold ends, and a bridge that
// stops while holding one leaves it to the next bridge. The call is a real outboundCall that waits
// for its delivery window (so it sends no command of its own and accepts whatever it is sent).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import type { WorkflowHandle } from '@temporalio/client';
import protos from '@temporalio/proto';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { startEphemeralStack, type EphemeralStack } from '../../src/dev/ephemeral.js';
import { startCall } from '../../src/client/calls.js';
import { parseFlow } from '../../src/flow/validate.js';
import { bridgeMetrics, startBridge, type RunningBridge } from '../../src/workers/bridge.js';
import { eventSubject } from '../../src/telephony/nats.js';
import { callStatusQuery } from '../../src/workflows/messages.js';
import type { TelephonyEvent } from '../../src/telephony/contract.js';

const EventType = protos.temporal.api.enums.v1.EventType;
const HOLD_MS = 1_500;
const WEEKDAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] as const;

let s: EphemeralStack;
let nc: NatsConnection;
let handle: WorkflowHandle;
let bridge: RunningBridge | undefined;
let seq = 0;

let registry = new Registry();
const start = () => {
  registry = new Registry();
  return startBridge({
    nc,
    client: s.client,
    metrics: bridgeMetrics(registry),
    provider: 'simulator',
    holdMaxMs: HOLD_MS,
  });
};
/** How many events of `type` the running bridge holds or held. */
async function heldCount(type: string): Promise<number> {
  const m = await registry.getSingleMetric('dialflow_bridge_events_total')?.get();
  return m?.values.find((v) => v.labels.type === type && v.labels.result === 'held')?.value ?? 0;
}

async function publish(type: TelephonyEvent['type'], properties: Record<string, unknown>): Promise<void> {
  const callId = `${handle.workflowId}~1`;
  const ev: TelephonyEvent = {
    id: `${callId}:test:${++seq}`,
    type,
    callId,
    timestamp: new Date().toISOString(),
    properties,
  };
  await jetstream(nc).publish(eventSubject('simulator', callId), JSON.stringify(ev), { msgID: ev.id });
}

/** Names of the signals the call received so far. */
async function signals(): Promise<string[]> {
  const events = (await handle.fetchHistory()).events ?? [];
  return events
    .filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
    .map((e) => e.workflowExecutionSignaledEventAttributes?.signalName ?? '');
}

async function waitForSignals(n: number, timeoutMs = 20_000): Promise<string[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const got = await signals();
    if (got.length >= n || Date.now() > until) return got;
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  s = await startEphemeralStack({ services: ['worker'], taskQueue: 'bridge-hold' });
  nc = await s.natsConnect('bridge-hold-test');
  // A delivery window open only tomorrow (UTC): the call waits for it without a command.
  const tomorrow = WEEKDAYS[(new Date().getUTCDay() + 1) % 7] as string;
  const flow = parseFlow({
    id: 'hold',
    version: 1,
    start: 'call',
    elements: [
      {
        id: 'call',
        type: 'startOutgoingCall',
        from: '+14155550100',
        deliveryWindow: { days: [tomorrow], from: '10:00', to: '11:00', timeZone: 'UTC' },
        next: { answered: 'end' },
      },
      { id: 'end', type: 'hangUp' },
    ],
  });
  handle = await startCall(s.client, {
    flow,
    campaignId: 'bridge-hold',
    taskQueue: 'bridge-hold',
    recipient: { id: 'r1', phone: '+385915550001' },
  });
  for (let i = 0; i < 100 && (await handle.query(callStatusQuery)).phase !== 'sleeping'; i++)
    await new Promise((r) => setTimeout(r, 100));
  bridge = await start();
}, 120_000);

afterAll(async () => {
  await bridge?.stop();
  await handle?.terminate('test over').catch(() => undefined);
  await nc?.close();
  await s?.stop();
});

describe('the bridge holds events a command asked to hold', () => {
  it('a held event goes with the next event of its call: one signal', async () => {
    await publish('SAY_FINISHED', { commandId: 'c1', hold: true });
    await publish('DTMF_CAPTURED', { commandId: 'c2', dtmf: '1' });
    expect(await waitForSignals(1)).toEqual(['telephonyEvents']);
    // Nothing else follows (the held event is not signalled again when its hold would have ended).
    await new Promise((r) => setTimeout(r, HOLD_MS + 1_000));
    expect(await signals()).toEqual(['telephonyEvents']);
  });

  it('a held event with nothing after it is signalled alone when its hold ends, not before', async () => {
    const sent = Date.now();
    await publish('SAY_FINISHED', { commandId: 'c3', hold: true });
    await new Promise((r) => setTimeout(r, HOLD_MS / 2));
    expect(await signals()).toHaveLength(1);
    expect(await waitForSignals(2)).toEqual(['telephonyEvents', 'telephonyEvent']);
    expect(Date.now() - sent).toBeGreaterThanOrEqual(HOLD_MS);
  });

  it('a bridge that stops while holding an event leaves it to the next bridge', async () => {
    await publish('CALL_ESTABLISHED', { commandId: 'c4', hold: true });
    for (let i = 0; i < 100 && (await heldCount('CALL_ESTABLISHED')) === 0; i++)
      await new Promise((r) => setTimeout(r, 50));
    expect(await heldCount('CALL_ESTABLISHED')).toBe(1);
    await bridge?.stop();
    bridge = await start();
    await publish('MACHINE_DETECTION_FINISHED', { commandId: 'c4', detectionResult: 'HUMAN' });
    // The held answer went back to the stream and came to the new bridge before the detection result.
    expect(await waitForSignals(3)).toEqual(['telephonyEvents', 'telephonyEvent', 'telephonyEvents']);
    expect(await heldCount('CALL_ESTABLISHED')).toBe(1);
  });
});
