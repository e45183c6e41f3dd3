// Outages seen from the pure interpreter: a dial whose outcome is unknown (its events late or lost,
// e.g. NATS was down) is reconciled — its leg hung up and its end awaited — before anything else is
// decided, so a redial never overlaps a leg that may still be live, and never happens where the
// flow has no retry for what the provider reports.
import { describe, expect, it } from 'vitest';
import { drive, flowOf, START } from '../helpers/drive.js';
import {
  initialState,
  step,
  TIMEOUTS,
  type CallState,
  type FlowCommand,
  type FlowEvent,
} from '../../src/flow/interpreter.js';
import type { Flow, FlowInput } from '../../src/flow/schema.js';
import type { TelephonyCommand, TelephonyEvent } from '../../src/telephony/contract.js';

const ivr = (over: Partial<Record<string, unknown>> = {}): FlowInput => ({
  id: 'ivr',
  version: 1,
  start: 'call',
  elements: [
    {
      id: 'call',
      type: 'startOutgoingCall',
      from: '+14155550100',
      next: { answered: 'menu', busy: 'end', noAnswer: 'end', declined: 'end', callEnded: 'end' },
      ...over,
    },
    {
      id: 'menu',
      type: 'play',
      tts: { text: 'Press 1 or 2.' },
      next: { played: 'end', hungUp: 'end', callEnded: 'end' },
    },
    { id: 'end', type: 'hangUp' },
  ],
});

/** Steps the interpreter by hand: each event is chosen by the test, time included. */
class Stepper {
  state: CallState;
  now = START;
  readonly sent: TelephonyCommand[] = [];
  last: FlowCommand[] = [];
  private ids = 0;
  constructor(readonly flow: Flow) {
    this.state = initialState({
      workflowId: 'call:test:r1',
      recipient: { id: 'r1', phone: '+385915550001' },
      seed: 42,
      flow,
    });
  }
  async feed(event: FlowEvent): Promise<FlowCommand[]> {
    const out = await step(this.flow, this.state, event);
    this.state = out.state;
    this.last = out.commands;
    for (const c of out.commands) if (c.kind === 'telephony') this.sent.push(c.command);
    return out.commands;
  }
  start() {
    return this.feed({ type: 'start', at: this.now });
  }
  /** The wait armed by the last step times out, `afterMs` later. */
  timeout(afterMs: number, extra: { redialAtOnce?: boolean } = {}) {
    const wait = this.last.find((c) => c.kind === 'awaitEvent');
    if (!wait || wait.kind !== 'awaitEvent') throw new Error('no wait armed');
    this.now += afterMs;
    return this.feed({ type: 'timeout', token: wait.token, at: this.now, ...extra });
  }
  /** The sleep the last step asked for ends. */
  wake() {
    const sleep = this.last.find((c) => c.kind === 'sleep');
    if (!sleep || sleep.kind !== 'sleep') throw new Error('no sleep');
    this.now += sleep.ms;
    return this.feed({ type: 'timer', token: sleep.token, at: this.now });
  }
  event(type: TelephonyEvent['type'], properties: Record<string, unknown> = {}, callId = this.state.callId ?? '') {
    const ev: TelephonyEvent = {
      id: `e${++this.ids}`,
      type,
      callId,
      timestamp: new Date(this.now).toISOString(),
      properties,
    };
    return this.feed({ type: 'telephony', event: ev, at: this.now });
  }
  actions(): string[] {
    return this.sent.map((c) => `${c.action}:${c.callId}`);
  }
}

const kinds = (cs: FlowCommand[]) => cs.map((c) => (c.kind === 'telephony' ? `telephony:${c.command.action}` : c.kind));

describe('a dial of unknown outcome is reconciled before anything else', () => {
  it('the dial wait times out: its leg is hung up and its end awaited, no redial yet', async () => {
    const s = new Stepper(flowOf(ivr()));
    await s.start();
    const cmds = await s.timeout(TIMEOUTS.dialMs);
    expect(kinds(cmds)).toEqual(['telephony:hangup', 'awaitEvent']);
    expect(s.state.phase.kind).toBe('reconciling');
    expect(s.actions()).toEqual(['dial:call:test:r1~1', 'hangup:call:test:r1~1']);
    expect(s.state.dials).toBe(1);
  });

  it('our hang-up ended a leg that rang unanswered: noAnswer, and no retry where the flow has none', async () => {
    const s = new Stepper(flowOf(ivr()));
    await s.start();
    await s.timeout(TIMEOUTS.dialMs);
    const cmds = await s.event('CALL_FINISHED', { errorCode: 'NORMAL_HANGUP', hangupSource: 'API' });
    expect(s.state.result).toMatchObject({
      outcome: 'noAnswer',
      dials: 1,
      trail: [{ element: 'call', branch: 'noAnswer' }],
    });
    expect(kinds(cmds)).toEqual(['finish']);
    expect(s.actions()).toEqual(['dial:call:test:r1~1', 'hangup:call:test:r1~1']);
  });

  it('with a call retry, the redial comes only after the old leg ended', async () => {
    const s = new Stepper(flowOf(ivr({ retry: { minMinutes: 5, maxMinutes: 5, count: 1 } })));
    await s.start();
    await s.timeout(TIMEOUTS.dialMs);
    await s.event('CALL_FAILED', { errorCode: 'NORMAL_HANGUP', hangupSource: 'API' });
    expect(s.state.phase.kind).toBe('sleeping');
    await s.wake();
    expect(s.actions()).toEqual(['dial:call:test:r1~1', 'hangup:call:test:r1~1', 'dial:call:test:r1~2']);
  });

  it('a known failure reported while reconciling is that failure (busy, no retry: the busy branch)', async () => {
    const s = new Stepper(flowOf(ivr()));
    await s.start();
    await s.timeout(TIMEOUTS.dialMs);
    await s.event('CALL_FAILED', { errorCode: 'BUSY', hangupSource: 'ENDPOINT' });
    expect(s.state.result).toMatchObject({ outcome: 'busy', dials: 1 });
  });

  it.each([
    [
      'CALL_ESTABLISHED then our hang-up ends it',
      [
        ['CALL_ESTABLISHED', {}],
        ['CALL_FINISHED', { errorCode: 'NORMAL_HANGUP', hangupSource: 'API' }],
      ],
    ],
    [
      'the recipient answered and hung up during the outage',
      [['CALL_FINISHED', { errorCode: 'NORMAL_HANGUP', hangupSource: 'ENDPOINT' }]],
    ],
    ['an answering machine picked up', [['CALL_FAILED', { errorCode: 'MACHINE_DETECTED', hangupSource: 'PLATFORM' }]]],
  ] as const)(
    'a leg that was answered is never dialled again, even within the validity period: %s',
    async (_name, events) => {
      const s = new Stepper(flowOf(ivr({ validityPeriod: { value: 48, unit: 'hours' } })));
      await s.start();
      await s.timeout(TIMEOUTS.dialMs);
      for (const [type, props] of events) await s.event(type, props);
      expect(s.state.result).toMatchObject({
        outcome: 'failed',
        dials: 1,
        trail: [{ element: 'call', branch: 'callEnded' }],
        error: expect.stringMatching(/answered after its dial had timed out/),
      });
      expect(s.actions().filter((a) => a.startsWith('dial:'))).toHaveLength(1);
    },
  );

  it('events of other legs and stale events do not end the reconciliation', async () => {
    const s = new Stepper(flowOf(ivr()));
    await s.start();
    await s.timeout(TIMEOUTS.dialMs);
    const token = s.state.phase.kind === 'reconciling' ? s.state.phase.token : -1;
    expect(kinds(await s.event('CALL_RINGING'))).toEqual(['continueWaiting']);
    expect(
      kinds(await s.event('CALL_FINISHED', { errorCode: 'NORMAL_HANGUP', hangupSource: 'API' }, 'call:test:r1~9')),
    ).toEqual(['continueWaiting']);
    expect(s.state.phase).toMatchObject({ kind: 'reconciling', token });
  });

  it('the provider lost the leg, or acknowledged the hang-up without news: an internal error, retried after a back-off', async () => {
    const lost = new Stepper(flowOf(ivr()));
    await lost.start();
    await lost.timeout(TIMEOUTS.dialMs);
    await lost.event('CALL_FINISHED', { errorCode: 'INTERNAL_ERROR', hangupSource: 'PLATFORM' });
    expect(lost.state.phase).toMatchObject({ kind: 'sleeping', resume: 'dial' });

    const silent = new Stepper(flowOf(ivr()));
    await silent.start();
    await silent.timeout(TIMEOUTS.dialMs);
    const cmds = await silent.timeout(TIMEOUTS.reconcileMs);
    expect(kinds(cmds)).toEqual(['sleep']);
    await silent.wake();
    expect(silent.actions()).toEqual(['dial:call:test:r1~1', 'hangup:call:test:r1~1', 'dial:call:test:r1~2']);
  });

  it('calls recorded before reconciliation (redialAtOnce) keep deciding at once', async () => {
    const s = new Stepper(flowOf(ivr()));
    await s.start();
    const cmds = await s.timeout(TIMEOUTS.dialMs, { redialAtOnce: true });
    expect(kinds(cmds)).toEqual(['sleep']);
    expect(s.actions()).toEqual(['dial:call:test:r1~1']);
  });

  it('an established call whose machine detection never reports is answered, not reconciled', async () => {
    const s = new Stepper(flowOf(ivr({ next: { answered: 'menu', voicemail: 'end', callEnded: 'end' } })));
    await s.start();
    await s.event('CALL_ESTABLISHED');
    await s.timeout(TIMEOUTS.machineDetectionMs);
    expect(s.state.phase.kind).toBe('playing');
    expect(s.actions()).toEqual(['dial:call:test:r1~1', 'say:call:test:r1~1']);
  });
});

describe('the validity period with dials whose error takes minutes to be known', () => {
  it('each error is retried until the period is over; the last back-off ends at the end of the period', async () => {
    const s = new Stepper(flowOf(ivr({ validityPeriod: { value: 30, unit: 'minutes' } })));
    const deadline = START + 30 * 60_000;
    const dialedAt: number[] = [];
    await s.start();
    for (;;) {
      dialedAt.push(s.now);
      // Nothing comes back: the dial times out (3 min), its leg is hung up and the hang-up goes unanswered (1 min).
      await s.timeout(TIMEOUTS.dialMs);
      await s.timeout(TIMEOUTS.reconcileMs);
      if (s.state.result) break;
      await s.wake();
    }
    // Errors known at 4, 9, 15, 23 min; back-offs 1, 2, 4, then 8 is shortened to 7 so the fifth dial is at 30.
    expect(dialedAt.map((t) => (t - START) / 60_000)).toEqual([0, 5, 11, 19, 30]);
    expect(dialedAt.every((t) => t <= deadline)).toBe(true);
    expect(s.state.result).toMatchObject({
      outcome: 'expired',
      dials: 5,
      trail: [{ element: 'call', branch: 'callEnded' }],
    });
    // The call ends only once the period is over.
    expect(s.now).toBeGreaterThan(deadline);
    expect(s.actions().filter((a) => a.startsWith('dial:'))).toHaveLength(5);
  });

  it('an error known at the very end of the period ends the call: no dial after the period', async () => {
    const s = new Stepper(flowOf(ivr({ validityPeriod: { value: 5, unit: 'minutes' } })));
    await s.start();
    s.now += 5 * 60_000;
    const cmds = await s.event('CALL_FAILED', { errorCode: 'INTERNAL_ERROR', hangupSource: 'PLATFORM' });
    expect(kinds(cmds)).toEqual(['finish']);
    expect(s.state.result).toMatchObject({ outcome: 'expired', dials: 1 });
  });
});

describe('against the simulator, events of the dial lost', () => {
  const dropDialEvents = (events: TelephonyEvent[]) =>
    events.filter((e) => !['CALL_RINGING', 'CALL_ESTABLISHED', 'MACHINE_DETECTION_FINISHED'].includes(e.type));

  it('answered, its events lost: hung up once and never dialled twice', async () => {
    const d = await drive(flowOf(ivr()), { attempts: ['answered'] }, { tamper: dropDialEvents });
    // The simulator ends the answered leg on our hang-up (NORMAL_HANGUP from API): it rang or was up, unknown.
    expect(d.commands.map((c) => `${c.action}:${c.callId}`)).toEqual(['dial:call:test:r1~1', 'hangup:call:test:r1~1']);
    expect(d.result).toMatchObject({ outcome: 'noAnswer', dials: 1 });
    expect(d.engine.stats.dials).toBe(1);
  });

  it('with retries configured, each redial follows the hang-up of the leg before it', async () => {
    const d = await drive(
      flowOf(ivr({ retry: { minMinutes: 1, maxMinutes: 2, count: 2 } })),
      { attempts: ['answered'] },
      { tamper: dropDialEvents },
    );
    const seq = d.commands.map((c) => `${c.action}:${c.callId.slice(-2)}`);
    expect(seq).toEqual(['dial:~1', 'hangup:~1', 'dial:~2', 'hangup:~2', 'dial:~3', 'hangup:~3']);
    expect(d.result).toMatchObject({ outcome: 'noAnswer', dials: 3 });
  });
});
