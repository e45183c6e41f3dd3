// Week-long schedules on Temporal's time-skipping test server (the binary installed under .tools/).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Runtime, DefaultLogger, type Worker } from '@temporalio/worker';
import { startCall, startInboundCall } from '../../src/client/calls.js';
import { parseFlow } from '../../src/flow/validate.js';
import type { InlineSimulatorProvider } from '../../src/telephony/inline.js';
import { startTimeSkipping } from '../../src/dev/time-skipping.js';
import { inboundWorkflowId } from '../../src/telephony/contract.js';
import type { EncryptionCodec } from '../../src/codec/encryption.js';
import { recordHistory } from '../helpers/histories.js';

const TASK_QUEUE = 'time-skipping';
let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
let provider: InlineSimulatorProvider;
let codec: EncryptionCodec;

beforeAll(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  ({ env, worker, provider, codec } = await startTimeSkipping(TASK_QUEUE));
  running = worker.run();
});
afterAll(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
});

const DAY = 24 * 3600_000;

describe('time-skipping', () => {
  it('no answer → pause 3 days → call again → answered completes in seconds of real time', async () => {
    const flow = parseFlow({
      id: 'callback',
      version: 1,
      start: 'first',
      elements: [
        { id: 'first', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'menu', noAnswer: 'wait' } },
        { id: 'wait', type: 'pause', duration: 'P3D', next: 'second' },
        { id: 'second', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'menu' } },
        { id: 'menu', type: 'play', tts: { text: 'Press 1 to confirm.' }, next: { played: 'ask' } },
        { id: 'ask', type: 'collect', maxDigits: 1, responses: { '1': 'thanks' }, next: { noMatch: 'end' } },
        { id: 'thanks', type: 'play', tts: { text: 'Thank you.' }, next: { played: 'end' } },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const t0 = await env.currentTimeMs();
    const wall = Date.now();
    const handle = await startCall(env.client, {
      flow,
      campaignId: 'ts',
      taskQueue: TASK_QUEUE,
      recipient: { id: 'r1', phone: '+385915550001' },
      hints: { persona: { attempts: ['noAnswer', 'answered'], keys: ['1'] } },
    });
    const result = await handle.result();
    const skipped = (await env.currentTimeMs()) - t0;
    expect(result.outcome).toBe('answered');
    expect(result.dials).toBe(2);
    expect(result.trail.map((t) => `${t.element}:${t.branch}`)).toEqual([
      'first:noAnswer',
      'wait:next',
      'second:answered',
      'menu:played',
      'ask:1',
      'thanks:played',
    ]);
    expect(skipped).toBeGreaterThanOrEqual(3 * DAY);
    expect(Date.now() - wall).toBeLessThan(60_000);
    await recordHistory('core2-outbound-callback', handle, codec);
  });

  it('busy with 3 retries of 60–120 minutes: four dials spread over hours', async () => {
    const flow = parseFlow({
      id: 'retry',
      version: 1,
      start: 'call',
      elements: [
        {
          id: 'call',
          type: 'startOutgoingCall',
          from: '+14155550100',
          retry: { minMinutes: 60, maxMinutes: 120, count: 3 },
          next: { answered: 'end', busy: 'end' },
        },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const t0 = await env.currentTimeMs();
    const handle = await startCall(env.client, {
      flow,
      campaignId: 'ts',
      taskQueue: TASK_QUEUE,
      recipient: { id: 'r2', phone: '+385915550002' },
      hints: { persona: { attempts: ['busy'] } },
    });
    const result = await handle.result();
    const skipped = (await env.currentTimeMs()) - t0;
    expect(result).toMatchObject({ outcome: 'busy', dials: 4 });
    expect(skipped).toBeGreaterThanOrEqual(3 * 60 * 60_000);
    expect(skipped).toBeLessThan(3 * 120 * 60_000 + 60_000);
    expect(provider.engine.stats.dialsByCall.get('call:ts:r2~4')).toBe(1);
    await recordHistory('core2-outbound-busy-retries', handle, codec);
  });

  it('an inbound call: the menu, a choice, a voicemail recording stored by the provider', async () => {
    const flow = parseFlow({
      id: 'inbound',
      version: 1,
      elements: [
        { id: 'incoming', type: 'startIncomingCall', number: '+14155550199', next: 'menu' },
        { id: 'menu', type: 'play', tts: { text: 'Press 1 to leave a message.' }, next: { played: 'ask' } },
        { id: 'ask', type: 'collect', maxDigits: 1, responses: { '1': 'vm' }, next: { noMatch: 'end' } },
        { id: 'vm', type: 'recordVoicemail', name: 'msg', maxDurationSeconds: 20, next: { recorded: 'end' } },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const received = provider.engine.incomingCall('ts-in-1', '+385915550003', '+14155550199', {
      keys: ['1'],
      speakSeconds: 4,
    }).event;
    const handle = await startInboundCall(env.client, {
      flow,
      received,
      workflowId: inboundWorkflowId(received.callId),
      taskQueue: TASK_QUEUE,
    });
    const result = await handle.result();
    expect(result.trail.map((t) => `${t.element}:${t.branch}`)).toEqual([
      'incoming:next',
      'menu:played',
      'ask:1',
      'vm:recorded',
    ]);
    const stored = await provider.recordings.list({ callId: 'ts-in-1' });
    expect(stored).toEqual([expect.objectContaining({ name: 'msg', durationMs: 9000, size: 44 + 9 * 16000 })]);
    expect(result.recordings[0]?.recordingId).toBe(stored[0]?.id);
    await recordHistory('core2-inbound-voicemail', handle, codec);
  });

  it('a second start of the same recipient in a campaign is refused', async () => {
    const flow = parseFlow({
      id: 'once',
      version: 1,
      start: 'call',
      elements: [{ id: 'call', type: 'startOutgoingCall', from: '+14155550100' }],
    });
    const opts = {
      flow,
      campaignId: 'dup',
      taskQueue: TASK_QUEUE,
      recipient: { id: 'r3', phone: '+385915550003' },
      hints: { persona: { attempts: ['busy'] } },
    };
    const first = await startCall(env.client, opts);
    await first.result();
    await expect(startCall(env.client, opts)).rejects.toThrow(/already/i);
  });
});
