// Calendar behaviour of real call workflows on the time-skipping test server: windows, retries,
// validity, pauses and DST. Each test first moves the server's clock to its start time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DateTime } from 'luxon';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, type Worker } from '@temporalio/worker';
import { startCall } from '../../src/client/calls.js';
import { parseFlow } from '../../src/flow/validate.js';
import { startTimeSkipping } from '../../src/dev/time-skipping.js';
import { decodeHistory, type EncryptionCodec } from '../../src/codec/encryption.js';
import type { FlowInput } from '../../src/flow/schema.js';

const TASK_QUEUE = 'schedules';
const ZONE = 'Europe/Zagreb';
let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
let codec: EncryptionCodec;

beforeAll(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  ({ env, worker, codec } = await startTimeSkipping(TASK_QUEUE));
  running = worker.run();
});
afterAll(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
});

/** Advance the server clock to the next `weekday` `time` in Zagreb (at least a day ahead, so tests never go back). */
async function advanceTo(predicate: (d: DateTime) => boolean): Promise<number> {
  let d = DateTime.fromMillis(await env.currentTimeMs(), { zone: ZONE })
    .plus({ days: 1 })
    .startOf('minute');
  for (let i = 0; i < 400 * 24 * 60 && !predicate(d); i++) d = d.plus({ minutes: 1 });
  await env.sleep(d.toMillis() - (await env.currentTimeMs()));
  return env.currentTimeMs();
}

let n = 0;
async function call(doc: FlowInput, persona: unknown) {
  n += 1;
  const handle = await startCall(env.client, {
    flow: parseFlow(doc),
    campaignId: 'schedules',
    taskQueue: TASK_QUEUE,
    recipient: { id: `s${n}`, phone: '+385915550000', timeZone: ZONE },
    hints: { persona },
  });
  const result = await handle.result();
  const history = await decodeHistory(await handle.fetchHistory(), codec);
  // Telephony commands are local activities (markers without their input), so a dial is read from
  // what it caused: with instant latencies each dial's CALL_ESTABLISHED or CALL_FAILED arrives at
  // once, exactly one per dial.
  const dialTimes = (history.events ?? [])
    .filter((e) => {
      const payload = Buffer.from(
        e.workflowExecutionSignaledEventAttributes?.input?.payloads?.[0]?.data ?? new Uint8Array(),
      ).toString();
      return /"type":"(CALL_ESTABLISHED|CALL_FAILED)"/.test(payload);
    })
    .map((e) => DateTime.fromMillis(Number(e.eventTime?.seconds ?? 0) * 1000, { zone: ZONE }));
  return { result, dialTimes };
}

const weekdays: FlowInput['elements'][number] = {
  id: 'call',
  type: 'startOutgoingCall',
  from: '+14155550100',
  deliveryWindow: { days: ['MON', 'TUE', 'WED', 'THU', 'FRI'], from: '09:00', to: '17:00', timeZone: 'recipient' },
  retry: { minMinutes: 5, maxMinutes: 10, count: 3 },
  next: { answered: 'end', busy: 'end' },
};

describe('schedules on the time-skipping server', () => {
  it('Friday 16:55 busy, Mon–Fri 09:00–17:00, 3 retries: every dial inside the window, done on Monday', async () => {
    await advanceTo((d) => d.weekday === 5 && d.hour === 16 && d.minute === 55);
    const { result, dialTimes } = await call(
      { id: 'fri', version: 1, start: 'call', elements: [weekdays, { id: 'end', type: 'hangUp' }] },
      { attempts: ['busy', 'busy', 'busy', 'answered'] },
    );
    expect(result).toMatchObject({ outcome: 'answered', dials: 4 });
    expect(dialTimes[0]?.toFormat('ccc HH:mm')).toBe('Fri 16:55');
    for (const t of dialTimes) expect(t.weekday <= 5 && t.hour >= 9 && t.hour < 17, t.toISO() ?? '').toBe(true);
    expect(dialTimes.at(-1)?.weekday).toBe(1);
  });

  it('validity period: internal errors are retried until it expires', async () => {
    const { result, dialTimes } = await call(
      {
        id: 'val',
        version: 1,
        start: 'call',
        elements: [
          {
            id: 'call',
            type: 'startOutgoingCall',
            from: '+14155550100',
            validityPeriod: { value: 30, unit: 'minutes' },
            next: { callEnded: 'end' },
          },
          { id: 'end', type: 'hangUp' },
        ],
      },
      { attempts: ['error'] },
    );
    expect(result.outcome).toBe('expired');
    // 1 + 2 + 4 + 8 minutes of back-off, then the 16 is shortened to 15: the sixth dial is at the
    // period's end (history times are whole seconds, so allow the second Temporal adds).
    expect(dialTimes).toHaveLength(6);
    expect(dialTimes.at(-1)!.diff(dialTimes[0]!, 'seconds').seconds).toBeLessThanOrEqual(30 * 60 + 1);
    expect(dialTimes.at(-1)!.diff(dialTimes[0]!, 'minutes').minutes).toBeGreaterThanOrEqual(29);
  });

  it('a pause of one day', async () => {
    const t0 = await env.currentTimeMs();
    const { result } = await call(
      {
        id: 'day',
        version: 1,
        start: 'wait',
        elements: [
          { id: 'wait', type: 'pause', duration: 'P1D', next: 'call' },
          { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'end' } },
          { id: 'end', type: 'hangUp' },
        ],
      },
      {},
    );
    expect(result.outcome).toBe('answered');
    expect((await env.currentTimeMs()) - t0).toBeGreaterThanOrEqual(24 * 3600_000);
  });

  it('a window across the spring DST change opens at 09:00 local time', async () => {
    // Saturday before the last Sunday of March: Monday 09:00 is CEST (UTC+2), two days later.
    await advanceTo(
      (d) => d.month === 3 && d.weekday === 6 && d.day + 8 > 31 && d.day + 1 <= 31 && d.hour === 12 && d.minute === 0,
    );
    const { result, dialTimes } = await call(
      { id: 'dst', version: 1, start: 'call', elements: [weekdays, { id: 'end', type: 'hangUp' }] },
      { attempts: ['answered'] },
    );
    expect(result.outcome).toBe('answered');
    expect(dialTimes[0]?.toFormat('ccc HH:mm ZZ')).toBe('Mon 09:00 +02:00');
  });
});
