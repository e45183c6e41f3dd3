import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { drive, flowOf, START } from '../helpers/drive.js';
import { initialState, step } from '../../src/flow/interpreter.js';
import type { FlowInput } from '../../src/flow/schema.js';
import type { TelephonyEvent } from '../../src/telephony/contract.js';

const reminder = flowOf(
  JSON.parse(readFileSync(new URL('../../examples/appointment-reminder.json', import.meta.url), 'utf8')) as FlowInput,
);

function branches(r: { trail: Array<{ element: string; branch: string }> }): string[] {
  return r.trail.map((t) => `${t.element}:${t.branch}`);
}

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
      next: { played: 'ask', hungUp: 'end', callEnded: 'end' },
    },
    {
      id: 'ask',
      type: 'collect',
      maxDigits: 1,
      saveTo: 'choice',
      responses: { '1': 'one', '2': 'end' },
      next: { noMatch: 'end', hungUp: 'end', callEnded: 'end' },
    },
    { id: 'one', type: 'play', tts: { text: 'One.' }, next: { played: 'end', hungUp: 'end', callEnded: 'end' } },
    { id: 'end', type: 'hangUp' },
  ],
});

describe('startOutgoingCall', () => {
  it('answered: continues the session into the answered branch', async () => {
    const d = await drive(flowOf(ivr()), { attempts: ['answered'], keys: ['1'] });
    expect(d.result.outcome).toBe('answered');
    expect(branches(d.result)).toEqual(['call:answered', 'menu:played', 'ask:1', 'one:played']);
    expect(d.commands.map((c) => c.action)).toEqual(['dial', 'say', 'captureDtmf', 'say', 'hangup']);
    expect(d.result.variables).toEqual({ choice: '1' });
  });

  it.each([
    ['busy', 'busy'],
    ['noAnswer', 'noAnswer'],
    ['declined', 'declined'],
  ] as const)('%s without retry takes the %s branch and never opens the session', async (attempt, branch) => {
    const d = await drive(flowOf(ivr()), { attempts: [attempt] });
    expect(d.result.outcome).toBe(attempt);
    expect(branches(d.result)).toEqual([`call:${branch}`]);
    expect(d.commands.map((c) => c.action)).toEqual(['dial']);
  });

  it('unreachable without retry takes callEnded', async () => {
    const d = await drive(flowOf(ivr()), { attempts: ['unreachable'] });
    expect(d.result.outcome).toBe('unreachable');
    expect(branches(d.result)).toEqual(['call:callEnded']);
  });

  it('retries known failures after a random wait between min and max minutes, up to count', async () => {
    const d = await drive(flowOf(ivr({ retry: { minMinutes: 5, maxMinutes: 30, count: 3 } })), {
      attempts: ['busy', 'noAnswer', 'busy', 'answered'],
      keys: ['2'],
    });
    expect(d.result.outcome).toBe('answered');
    expect(d.result.dials).toBe(4);
    expect(d.sleeps).toHaveLength(3);
    for (const s of d.sleeps) {
      expect(s.ms).toBeGreaterThanOrEqual(5 * 60_000);
      expect(s.ms).toBeLessThanOrEqual(30 * 60_000);
    }
    const dials = d.commands.filter((c) => c.action === 'dial');
    expect(dials.map((c) => (c.action === 'dial' ? c.attempt : 0))).toEqual([1, 2, 3, 4]);
    expect(new Set(dials.map((c) => c.callId)).size).toBe(4);
  });

  it('takes the outcome branch once retries are used up', async () => {
    const d = await drive(flowOf(ivr({ retry: { minMinutes: 1, maxMinutes: 2, count: 2 } })), {
      attempts: ['busy', 'busy', 'noAnswer'],
    });
    expect(d.result.dials).toBe(3);
    expect(d.result.outcome).toBe('noAnswer');
    expect(branches(d.result)).toEqual(['call:noAnswer']);
  });

  it('retry jitter is deterministic for a seed and differs between seeds', async () => {
    const f = flowOf(ivr({ retry: { minMinutes: 5, maxMinutes: 30, count: 3 } }));
    const p = { attempts: ['busy'] };
    expect((await drive(f, p, { seed: 7 })).sleeps).toEqual((await drive(f, p, { seed: 7 })).sleeps);
    expect((await drive(f, p, { seed: 7 })).sleeps).not.toEqual((await drive(f, p, { seed: 8 })).sleeps);
  });

  it('internal errors retry until the validity period ends, then callEnded with outcome expired', async () => {
    const d = await drive(flowOf(ivr({ validityPeriod: { value: 2, unit: 'hours' } })), { attempts: ['error'] });
    expect(d.result.outcome).toBe('expired');
    expect(branches(d.result)).toEqual(['call:callEnded']);
    expect(d.elapsedMs).toBeLessThanOrEqual(2 * 3600_000);
    // 1, 2, 4, 8, 16, 30, 30 … minutes
    expect(d.sleeps.slice(0, 5).map((s) => s.ms / 60_000)).toEqual([1, 2, 4, 8, 16]);
    expect(d.result.dials).toBeGreaterThan(5);
  });

  it('internal errors do not use call retry; known failures do not use the validity period', async () => {
    const d = await drive(
      flowOf(
        ivr({ retry: { minMinutes: 1, maxMinutes: 1, count: 1 }, validityPeriod: { value: 10, unit: 'minutes' } }),
      ),
      { attempts: ['error', 'error', 'busy', 'busy'] },
    );
    expect(d.result.outcome).toBe('busy');
    expect(d.result.dials).toBe(4);
    expect(d.sleeps.map((s) => s.ms / 60_000)).toEqual([1, 2, 1]);
  });

  it('a provider that never answers the dial counts as an internal error', async () => {
    const d = await drive(
      flowOf(ivr({ validityPeriod: { value: 5, unit: 'minutes' } })),
      { attempts: ['answered'] },
      { tamper: () => [] },
    );
    expect(d.result.outcome).toBe('expired');
  });

  it('voicemail: answering-machine detection is requested only when the branch exists', async () => {
    const f = flowOf(ivr({ next: { answered: 'menu', voicemail: 'one', callEnded: 'end' } }));
    const d = await drive(f, { attempts: ['voicemail'] });
    const dial = d.commands[0];
    expect(dial?.action === 'dial' && dial.machineDetection).toBe(true);
    expect(branches(d.result)).toEqual(['call:voicemail', 'one:played']);
    expect(d.result.outcome).toBe('voicemail');
    const human = await drive(f, { attempts: ['answered'], keys: ['2'] });
    expect(branches(human.result)[0]).toBe('call:answered');
    const noVm = await drive(flowOf(ivr()), { attempts: ['answered'], keys: ['2'] });
    expect(noVm.commands[0]?.action === 'dial' && noVm.commands[0].machineDetection).toBe(false);
  });

  it('renders the caller id and the destination from the recipient', async () => {
    const d = await drive(flowOf(ivr()), { attempts: ['busy'] }, { recipient: { phone: '+12025550123' } });
    expect(d.commands[0]).toMatchObject({ action: 'dial', to: '+12025550123', from: '+14155550100' });
  });
});

describe('play', () => {
  it('loops and pauses before the first play only', async () => {
    const f = flowOf({
      id: 'p',
      version: 1,
      start: 'call',
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'msg' } },
        {
          id: 'msg',
          type: 'play',
          tts: { text: 'Hello {{recipient.firstName}}' },
          pauseSeconds: 2,
          loopCount: 3,
          next: { played: 'end' },
        },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const d = await drive(f, { attempts: ['answered'] });
    const says = d.commands.filter((c) => c.action === 'say');
    expect(says).toHaveLength(3);
    expect(says.map((s) => (s.action === 'say' ? s.pauseMs : -1))).toEqual([2000, 0, 0]);
    expect(says[0]).toMatchObject({ text: 'Hello Ana' });
    expect(branches(d.result)).toEqual(['call:answered', 'msg:played']);
  });

  it('user hung up during the prompt → hungUp, and no hang-up command is sent', async () => {
    const d = await drive(reminder, { attempts: ['answered'], hangUpAt: 'menu' });
    expect(branches(d.result)).toEqual(['call:answered', 'menu:hungUp']);
    expect(d.commands.map((c) => c.action)).toEqual(['dial', 'say']);
  });

  it('call ended by the platform → callEnded', async () => {
    const platformEnd = (events: TelephonyEvent[]) =>
      events.map((e) =>
        e.type === 'SAY_FINISHED'
          ? {
              ...e,
              type: 'CALL_FINISHED' as const,
              properties: { hangupSource: 'PLATFORM', errorCode: 'NETWORK_ERROR' },
            }
          : e,
      );
    const d = await drive(flowOf(ivr()), { attempts: ['answered'] }, { tamper: platformEnd });
    expect(branches(d.result)).toEqual(['call:answered', 'menu:callEnded']);
  });

  it('audio interruption hands the pressed key to the following collect', async () => {
    const d = await drive(reminder, { attempts: ['answered'], keys: ['2'], pressDuringPrompt: true });
    expect(branches(d.result)).toEqual(['call:answered', 'menu:played', 'ask:2', 'cancelled:played']);
    // The key was consumed by the prompt: the collect completes without a capture command.
    expect(d.commands.filter((c) => c.action === 'captureDtmf')).toHaveLength(0);
  });

  it('ignores digits pressed during a prompt that is not interruptible', async () => {
    const d = await drive(flowOf(ivr()), { attempts: ['answered'], keys: ['1'], pressDuringPrompt: true });
    expect(branches(d.result)).toEqual(['call:answered', 'menu:played', 'ask:1', 'one:played']);
  });
});

describe('collect', () => {
  const collectFlow = (over: Record<string, unknown>) =>
    flowOf({
      id: 'c',
      version: 1,
      start: 'call',
      variables: { pin: { type: 'string' } },
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'ask' } },
        {
          id: 'ask',
          type: 'collect',
          maxDigits: 4,
          saveTo: 'pin',
          responses: { '1234': 'ok' },
          next: { noMatch: 'end' },
          ...over,
        },
        { id: 'ok', type: 'hangUp' },
        { id: 'end', type: 'hangUp' },
      ],
    });

  it('completes at max digits', async () => {
    const d = await drive(collectFlow({}), { keys: ['123456'] });
    expect(branches(d.result)).toEqual(['call:answered', 'ask:1234']);
    expect(d.result.variables.pin).toBe('1234');
  });

  it('# terminates input and is never collected', async () => {
    const d = await drive(collectFlow({ responses: { '12': 'ok' } }), { keys: ['12#9'] });
    expect(branches(d.result)).toEqual(['call:answered', 'ask:12']);
    expect(d.result.variables.pin).toBe('12');
  });

  it('completes when the inter-digit timeout passes after fewer than max digits', async () => {
    const d = await drive(collectFlow({ responses: { '12': 'ok' } }), { keys: ['12'] });
    expect(branches(d.result)).toEqual(['call:answered', 'ask:12']);
    expect(d.commands.find((c) => c.action === 'captureDtmf')).toMatchObject({
      maxDigits: 4,
      terminator: '#',
      firstDigitTimeoutMs: 5000,
      interDigitTimeoutMs: 3000,
    });
  });

  it('the platform ends the call during a collect → callEnded', async () => {
    const platformEnd = (events: TelephonyEvent[]) =>
      events.map((e) =>
        e.type === 'DTMF_CAPTURED'
          ? {
              ...e,
              type: 'CALL_FINISHED' as const,
              properties: { hangupSource: 'PLATFORM', errorCode: 'NETWORK_ERROR' },
            }
          : e,
      );
    const d = await drive(
      collectFlow({ next: { noMatch: 'end', callEnded: 'ok' } }),
      { keys: ['1234'] },
      { tamper: platformEnd },
    );
    expect(branches(d.result)).toEqual(['call:answered', 'ask:callEnded']);
    expect(d.commands.map((c) => c.action)).toEqual(['dial', 'captureDtmf']);
  });

  it('no key within the wait time → noMatch with empty input', async () => {
    const d = await drive(collectFlow({}), { keys: [] });
    expect(branches(d.result)).toEqual(['call:answered', 'ask:noMatch']);
    expect(d.result.trail[1]?.input).toBe('');
  });

  it('a provider that never reports the digits falls back to noMatch after the wait', async () => {
    const d = await drive(
      collectFlow({}),
      { keys: ['1234'] },
      { tamper: (evs) => evs.filter((e) => e.type !== 'DTMF_CAPTURED') },
    );
    expect(branches(d.result)).toEqual(['call:answered', 'ask:noMatch']);
  });

  it('masked reporting shows xxxx and never the digits, in the trail and the variables', async () => {
    const d = await drive(collectFlow({ reporting: 'masked' }), { keys: ['1234'] });
    expect(d.result.trail[1]).toEqual({ element: 'ask', branch: 'response', input: 'xxxx' });
    expect(d.result.variables.pin).toBe('xxxx');
    expect(JSON.stringify(d.result)).not.toContain('1234');
  });

  it('hidden reporting shows nothing', async () => {
    const d = await drive(collectFlow({ reporting: 'hidden' }), { keys: ['9999'] });
    expect(d.result.trail[1]).toEqual({ element: 'ask', branch: 'noMatch' });
    expect(d.result.variables).toEqual({});
  });

  it('user hangs up at the collect → hungUp', async () => {
    const d = await drive(reminder, { attempts: ['answered'], hangUpAt: 'ask' });
    expect(branches(d.result)).toEqual(['call:answered', 'menu:played', 'ask:hungUp']);
  });

  it('no match, then the second menu takes the response', async () => {
    const d = await drive(reminder, { attempts: ['answered'], keys: ['9', '1'] });
    expect(branches(d.result)).toEqual([
      'call:answered',
      'menu:played',
      'ask:noMatch',
      'menu-again:played',
      'ask-again:1',
      'confirmed:played',
    ]);
    expect(d.result.variables.choice).toBe('1');
  });
});

describe('hangUp, pause and open branches', () => {
  it('an open branch inside the session hangs up automatically', async () => {
    const f = flowOf({
      id: 'o',
      version: 1,
      start: 'call',
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'msg' } },
        { id: 'msg', type: 'play', tts: { text: 'Bye' } },
      ],
    });
    const d = await drive(f, { attempts: ['answered'] });
    expect(d.commands.map((c) => c.action)).toEqual(['dial', 'say', 'hangup']);
  });

  it('hangUp after the session ended is a no-op and non-IVR paths continue', async () => {
    const f = flowOf({
      id: 'h',
      version: 1,
      start: 'call',
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'bye', busy: 'end' } },
        { id: 'bye', type: 'hangUp', next: 'wait' },
        { id: 'wait', type: 'pause', duration: 'PT1H', next: 'end' },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const d = await drive(f, { attempts: ['answered'] });
    expect(d.commands.map((c) => c.action)).toEqual(['dial', 'hangup']);
    expect(d.result.visited).toEqual(['call', 'bye', 'wait', 'end']);
    expect(d.sleeps).toEqual([{ ms: 3600_000, reason: 'pause PT1H' }]);
  });

  it('pause then call again (the seed’s “call the next day”)', async () => {
    const f = flowOf({
      id: 'again',
      version: 1,
      start: 'first',
      elements: [
        { id: 'first', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'msg', noAnswer: 'wait' } },
        { id: 'wait', type: 'pause', duration: 'P3D', next: 'second' },
        { id: 'second', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'msg' } },
        { id: 'msg', type: 'play', tts: { text: 'Hi' }, next: { played: 'end' } },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const d = await drive(f, { attempts: ['noAnswer', 'answered'] });
    expect(branches(d.result)).toEqual(['first:noAnswer', 'wait:next', 'second:answered', 'msg:played']);
    expect(d.result.dials).toBe(2);
    expect(d.elapsedMs).toBeGreaterThanOrEqual(3 * 24 * 3600_000);
  });

  it('a cycle that never waits is stopped with a clear error', async () => {
    const f = flowOf({
      id: 'loop',
      version: 1,
      start: 'a',
      elements: [
        { id: 'a', type: 'hangUp', next: 'b' },
        { id: 'b', type: 'hangUp', next: 'a' },
      ],
    });
    const d = await drive(f);
    expect(d.result.outcome).toBe('failed');
    expect(d.result.error).toMatch(/cycle/);
  });
});

describe('robustness', () => {
  it('duplicated and reordered events give the same result', async () => {
    const base = await drive(reminder, { attempts: ['answered'], keys: ['9', '2'] });
    const dup = await drive(
      reminder,
      { attempts: ['answered'], keys: ['9', '2'] },
      { tamper: (evs) => [...evs, ...evs] },
    );
    const reversed = await drive(
      reminder,
      { attempts: ['answered'], keys: ['9', '2'] },
      { tamper: (evs) => [...evs].reverse() },
    );
    expect(dup.result).toEqual(base.result);
    expect(reversed.result.trail).toEqual(base.result.trail);
  });

  it('events for another call id are ignored', async () => {
    const f = flowOf(ivr());
    let { state } = await step(
      f,
      initialState({ workflowId: 'w', recipient: { id: 'r', phone: '+385915550001' }, seed: 1, flow: f }),
      { type: 'start', at: START },
    );
    const before = JSON.stringify(state);
    const out = await step(f, state, {
      type: 'telephony',
      at: START,
      event: { id: 'x', type: 'CALL_ESTABLISHED', callId: 'other~1', timestamp: '', properties: {} },
    });
    state = out.state;
    expect(out.commands).toEqual([{ kind: 'awaitEvent', token: 1, timeoutMs: 0 }]);
    expect(JSON.stringify(state)).toBe(before);
  });

  it('a stale timeout token does nothing', async () => {
    const f = flowOf(ivr());
    const { state } = await step(
      f,
      initialState({ workflowId: 'w', recipient: { id: 'r', phone: '+385915550001' }, seed: 1, flow: f }),
      { type: 'start', at: START },
    );
    const out = await step(f, state, { type: 'timeout', token: 99, at: START });
    expect(out.state.phase).toEqual(state.phase);
  });

  it('after finishing, further events are ignored', async () => {
    const d = await drive(flowOf(ivr()), { attempts: ['busy'] });
    const out = await step(flowOf(ivr()), d.state, { type: 'start', at: START });
    expect(out.commands).toEqual([]);
  });
});
