// Outages on the time-skipping server: waiting is not a timeout, a command that cannot reach its
// provider ends the call as failed after a hang-up, and a dial of unknown outcome is hung up and
// its end awaited before anything else is decided.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { Registry } from 'prom-client';
import { createActivities } from '../../src/activities/index.js';
import { startCall } from '../../src/client/calls.js';
import { startCampaign } from '../../src/client/campaigns.js';
import { EncryptionCodec } from '../../src/codec/encryption.js';
import { toolPaths } from '../../src/config/tools.js';
import { parseFlow } from '../../src/flow/validate.js';
import { TIMEOUTS } from '../../src/flow/interpreter.js';
import { MemoryCampaignStore } from '../../src/store/campaigns.js';
import { MemoryProfileStore } from '../../src/store/profiles.js';
import { InlineSimulatorProvider } from '../../src/telephony/inline.js';
import { workflowIdOfCallId, type TelephonyCommand, type TelephonyEvent } from '../../src/telephony/contract.js';
import { callStatusQuery, callWorkflowId, telephonyEventSignal } from '../../src/workflows/messages.js';
import { WORKFLOWS_PATH } from '../../src/workers/flow-worker.js';
import { workflowMetricSinks } from '../../src/workers/metrics.js';
import { recordHistory } from '../helpers/histories.js';

const TASK_QUEUE = 'outages';
/** What the provider does with a command: by default the in-process simulator plans its events. */
type Behaviour = (command: TelephonyCommand, simulate: (c: TelephonyCommand) => Promise<unknown>) => Promise<unknown>;

let env: TestWorkflowEnvironment;
const codec = new EncryptionCodec(randomBytes(32));
const store = new MemoryCampaignStore();
let provider: InlineSimulatorProvider;
/** Behaviour per call workflow id; commands seen, in order, per call workflow id. */
const behaviours = new Map<string, Behaviour>();
const seen = new Map<string, TelephonyCommand[]>();
let worker: { worker: Worker; running: Promise<void> } | undefined;

async function startWorker(): Promise<void> {
  const activities = createActivities({
    telephony: provider,
    sms: provider,
    profiles: new MemoryProfileStore(),
    campaigns: { client: env.client, store },
  });
  const simulate = activities.sendTelephonyCommand;
  activities.sendTelephonyCommand = async (command) => {
    const owner = workflowIdOfCallId(command.callId) ?? '';
    seen.set(owner, [...(seen.get(owner) ?? []), command]);
    const behaviour = behaviours.get(owner);
    await (behaviour ? behaviour(command, simulate) : simulate(command));
    return command;
  };
  const w = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: TASK_QUEUE,
    workflowsPath: WORKFLOWS_PATH,
    dataConverter: { payloadCodecs: [codec] },
    sinks: workflowMetricSinks(new Registry()),
    activities,
    // No sticky queue: a workflow task due while the worker is away goes to the next worker at once
    // (and every activation replays the history from the start: determinism is checked on the way).
    maxCachedWorkflows: 0,
  });
  worker = { worker: w, running: w.run() };
}

async function stopWorker(): Promise<void> {
  if (!worker) return;
  worker.worker.shutdown();
  await worker.running;
  worker = undefined;
}

let eventIds = 0;
async function signal(
  callId: string,
  type: TelephonyEvent['type'],
  properties: Record<string, unknown>,
  timestamp?: Date,
): Promise<void> {
  const at = timestamp ?? new Date(await env.currentTimeMs());
  const ev: TelephonyEvent = { id: `outage-${++eventIds}`, type, callId, timestamp: at.toISOString(), properties };
  await env.client.workflow.getHandle(workflowIdOfCallId(callId) ?? '').signal(telephonyEventSignal, ev);
}

const actions = (workflowId: string) =>
  (seen.get(workflowId) ?? []).map((c) => `${c.action}:${c.callId.slice(c.callId.lastIndexOf('~'))}`);

beforeAll(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: toolPaths().testServer } },
    client: { dataConverter: { payloadCodecs: [codec] } },
  });
  provider = new InlineSimulatorProvider(() => env.client);
  await startWorker();
});
afterAll(async () => {
  await stopWorker();
  await env?.teardown();
});

describe('outages', () => {
  it('a collect timer that fires late (Temporal away) lets the key pressed before its deadline decide', async () => {
    const flow = parseFlow({
      id: 'late',
      version: 1,
      start: 'call',
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'ask' } },
        {
          id: 'ask',
          type: 'collect',
          maxDigits: 1,
          waitSeconds: 5,
          responses: { '1': 'thanks' },
          next: { noMatch: 'end' },
        },
        { id: 'thanks', type: 'play', tts: { text: 'Thank you.' }, next: { played: 'end' } },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const workflowId = callWorkflowId('late', 'r1');
    // The key capture is accepted, but its DTMF_CAPTURED is held back as by an outage.
    behaviours.set(workflowId, async (command, simulate) =>
      command.action === 'captureDtmf' ? undefined : simulate(command),
    );
    const handle = await startCall(env.client, {
      flow,
      campaignId: 'late',
      taskQueue: TASK_QUEUE,
      recipient: { id: 'r1', phone: '+385915550001' },
      hints: { persona: { attempts: ['answered'] } },
    });
    let status = await handle.query(callStatusQuery);
    // Collecting, its command sent and its wait armed.
    for (let i = 0; i < 200 && (status.phase !== 'collecting' || status.waitUntil === undefined); i++) {
      await new Promise((r) => setTimeout(r, 50));
      status = await handle.query(callStatusQuery);
    }
    expect(status).toMatchObject({ element: 'ask', phase: 'collecting' });
    const capture = seen.get(workflowId)?.find((c) => c.action === 'captureDtmf');
    if (!capture) throw new Error('no key capture sent');
    const pressedAt = new Date(await env.currentTimeMs());

    // The worker (or Temporal) is away when the collect's timer fires, and for seconds after.
    await stopWorker();
    const deadline = Date.parse(status.waitUntil ?? '');
    await env.sleep(deadline - (await env.currentTimeMs()) + 100);
    await new Promise((r) => setTimeout(r, 3_000));
    await startWorker();
    // The late timer is handled first; the key pressed before the deadline arrives with the backlog.
    for (let i = 0; i < 100 && Date.parse(status.waitUntil ?? '') === deadline; i++) {
      await new Promise((r) => setTimeout(r, 50));
      status = await handle.query(callStatusQuery);
    }
    expect(Date.parse(status.waitUntil ?? '')).toBeGreaterThan(deadline + 10_000);
    await signal(
      capture.callId,
      'DTMF_CAPTURED',
      { commandId: capture.commandId, dtmf: '1', reason: 'maxDigits' },
      pressedAt,
    );
    const result = await handle.result();
    expect(result.trail.map((t) => `${t.element}:${t.branch}`)).toEqual(['call:answered', 'ask:1', 'thanks:played']);
    expect(result.outcome).toBe('answered');
    await recordHistory('core2-outbound-late-timer-grace', handle, codec);
  }, 120_000);

  it('a prompt whose events are held by a NATS outage: asked again before its timeout, the prompt completes', async () => {
    const flow = parseFlow({
      id: 'held',
      version: 1,
      start: 'call',
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'menu' } },
        { id: 'menu', type: 'play', tts: { text: 'Hello.' }, next: { played: 'thanks', callEnded: 'end' } },
        { id: 'thanks', type: 'play', tts: { text: 'Thank you.' }, next: { played: 'end' } },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const workflowId = callWorkflowId('held', 'r1');
    let heldSay: TelephonyCommand | undefined;
    let refused = 0;
    behaviours.set(workflowId, async (command, simulate) => {
      if (command.action === 'say' && command.elementId === 'menu') {
        // The first say is acknowledged, then NATS goes down: its SAY_FINISHED is held by the provider.
        if (!heldSay) {
          heldSay = command;
          return;
        }
        // Asked again (same command id) while NATS is still down: refused, retried by the activity.
        if (refused++ < 2) throw new Error('no responders');
        // NATS is back: the provider does nothing new for a command it knows, and its backlog goes out.
        await signal(command.callId, 'SAY_FINISHED', { commandId: heldSay.commandId });
        return;
      }
      return simulate(command);
    });
    const handle = await startCall(env.client, {
      flow,
      campaignId: 'held',
      taskQueue: TASK_QUEUE,
      recipient: { id: 'r1', phone: '+385915550001' },
      hints: { persona: { attempts: ['answered'] } },
    });
    const result = await handle.result();
    expect(result.trail.map((t) => `${t.element}:${t.branch}`)).toEqual([
      'call:answered',
      'menu:played',
      'thanks:played',
    ]);
    const says = (seen.get(workflowId) ?? []).filter((c) => c.action === 'say' && c.elementId === 'menu');
    expect(says.map((c) => c.commandId)).toEqual([
      heldSay?.commandId,
      heldSay?.commandId,
      heldSay?.commandId,
      heldSay?.commandId,
    ]);
    await recordHistory('core2-outbound-confirm-provider', handle, codec);
  }, 120_000);

  it('a command that cannot reach its provider ends the call as failed, after a hang-up, with its record', async () => {
    const flow = parseFlow({
      id: 'unreachable',
      version: 1,
      start: 'call',
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'menu' } },
        { id: 'menu', type: 'play', tts: { text: 'Hello.' }, next: { played: 'end' } },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const campaignId = 'unreachable';
    const workflowId = callWorkflowId(campaignId, 'r1');
    behaviours.set(workflowId, async (command, simulate) => {
      // Answered, then the provider is gone for good: the prompt never reaches it.
      if (command.action === 'say')
        throw ApplicationFailure.nonRetryable('provider unreachable', 'ProviderUnavailableError');
      return simulate(command);
    });
    await store.putPage(campaignId, 0, [
      {
        row: 2,
        recipient: { id: 'r1', phone: '+385915550001', timeZone: 'Europe/Zagreb' },
        hints: { persona: { attempts: ['answered'] } },
      },
    ]);
    const handle = await startCampaign(env.client, TASK_QUEUE, {
      campaignId,
      flow,
      pages: 1,
      total: 1,
      speed: { calls: 60, per: 'minute' },
      maxConcurrent: 10,
      callTaskQueue: TASK_QUEUE,
    });
    const final = await handle.result();
    expect(final).toMatchObject({ state: 'completed', completed: 1, byOutcome: { failed: 1 } });
    expect(actions(workflowId)).toEqual(['dial:~1', 'say:~1', 'hangup:~1']);
    const records = store.records.filter((r) => r.record.campaignId === campaignId).map((r) => r.record);
    expect(records).toEqual([
      expect.objectContaining({
        outcome: 'failed',
        dials: 1,
        error: expect.stringMatching(/sendTelephonyCommand: provider unreachable/),
      }),
    ]);
    await expect(env.client.workflow.getHandle(workflowId).result()).rejects.toBeInstanceOf(WorkflowFailedError);
  }, 120_000);

  it('when the hang-up cannot reach the provider either, the call still ends failed with its record', async () => {
    const flow = parseFlow({
      id: 'gone',
      version: 1,
      start: 'call',
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'menu' } },
        { id: 'menu', type: 'play', tts: { text: 'Hello.' }, next: { played: 'end' } },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const campaignId = 'gone';
    const workflowId = callWorkflowId(campaignId, 'r1');
    behaviours.set(workflowId, async (command, simulate) => {
      if (command.action === 'say')
        throw ApplicationFailure.nonRetryable('provider unreachable', 'ProviderUnavailableError');
      // A retryable failure: the best-effort hang-up gives up after its short window.
      if (command.action === 'hangup') throw new Error('no responders');
      return simulate(command);
    });
    await store.putPage(campaignId, 0, [
      {
        row: 2,
        recipient: { id: 'r1', phone: '+385915550001', timeZone: 'Europe/Zagreb' },
        hints: { persona: { attempts: ['answered'] } },
      },
    ]);
    const handle = await startCampaign(env.client, TASK_QUEUE, {
      campaignId,
      flow,
      pages: 1,
      total: 1,
      speed: { calls: 60, per: 'minute' },
      maxConcurrent: 10,
      callTaskQueue: TASK_QUEUE,
    });
    const final = await handle.result();
    expect(final).toMatchObject({ state: 'completed', completed: 1, byOutcome: { failed: 1 } });
    const hangups = actions(workflowId).filter((a) => a === 'hangup:~1').length;
    expect(hangups).toBeGreaterThan(1);
    const records = store.records.filter((r) => r.record.campaignId === campaignId).map((r) => r.record);
    expect(records).toEqual([
      expect.objectContaining({ outcome: 'failed', error: expect.stringMatching(/provider unreachable/) }),
    ]);
  }, 120_000);

  it('a dial whose events are lost is hung up and its end awaited; no retry in the flow: never dialled twice', async () => {
    const flow = parseFlow({
      id: 'lost',
      version: 1,
      start: 'call',
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'end', noAnswer: 'end' } },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const workflowId = callWorkflowId('lost', 'r1');
    behaviours.set(workflowId, async (command) => {
      // The dial is accepted and its events lost; the hang-up ends the leg that was ringing.
      if (command.action === 'hangup')
        await signal(command.callId, 'CALL_FAILED', {
          commandId: command.commandId,
          errorCode: 'NORMAL_HANGUP',
          hangupSource: 'API',
        });
    });
    const t0 = await env.currentTimeMs();
    const handle = await startCall(env.client, {
      flow,
      campaignId: 'lost',
      taskQueue: TASK_QUEUE,
      recipient: { id: 'r1', phone: '+385915550001' },
    });
    const result = await handle.result();
    expect(result).toMatchObject({ outcome: 'noAnswer', dials: 1 });
    expect(actions(workflowId)).toEqual(['dial:~1', 'hangup:~1']);
    expect((await env.currentTimeMs()) - t0).toBeGreaterThanOrEqual(TIMEOUTS.dialMs);
    await recordHistory('core2-outbound-reconcile-no-retry', handle, codec);
  }, 120_000);

  it('a dial whose events are lost, validity retries: the redial comes only after the old leg ended', async () => {
    const flow = parseFlow({
      id: 'lost2',
      version: 1,
      start: 'call',
      elements: [
        {
          id: 'call',
          type: 'startOutgoingCall',
          from: '+14155550100',
          validityPeriod: { value: 30, unit: 'minutes' },
          next: { answered: 'end' },
        },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const workflowId = callWorkflowId('lost2', 'r1');
    behaviours.set(workflowId, async (command, simulate) => {
      // The first dial's events are lost and the provider says nothing of its leg; the second goes through.
      if (command.action === 'dial' && command.dialIndex === 1) return;
      if (command.action === 'hangup' && command.callId.endsWith('~1')) return;
      return simulate(command);
    });
    const handle = await startCall(env.client, {
      flow,
      campaignId: 'lost2',
      taskQueue: TASK_QUEUE,
      recipient: { id: 'r1', phone: '+385915550001' },
      hints: { persona: { attempts: ['answered'] } },
    });
    const result = await handle.result();
    expect(result).toMatchObject({ outcome: 'answered', dials: 2 });
    expect(actions(workflowId)).toEqual(['dial:~1', 'hangup:~1', 'dial:~2', 'hangup:~2']);
    await recordHistory('core2-outbound-reconcile-redial', handle, codec);
  }, 120_000);
});
