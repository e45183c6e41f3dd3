import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { drive, flowOf, START } from '../helpers/drive.js';
import { DEFAULT_VALIDITY_MS, MAX_TRANSITIONS_PER_STEP, initialState, step } from '../../src/flow/interpreter.js';
import { AUTO_HANGUP_ID } from '../../src/flow/validate.js';
import { MAX_ELEMENTS } from '../../src/flow/schema.js';
import type { FlowInput } from '../../src/flow/schema.js';
import type { TelephonyCommand, TelephonyEvent } from '../../src/telephony/contract.js';

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

  it('internal errors are retried until a 30-minute validity period is over: the last back-off is shortened', async () => {
    const d = await drive(flowOf(ivr({ validityPeriod: { value: 30, unit: 'minutes' } })), { attempts: ['error'] });
    // Dials at 0, 1, 3, 7, 15 minutes; 15 + 16 would end past 30, so the back-off ends at 30 instead.
    expect(d.sleeps.map((s) => s.ms / 60_000)).toEqual([1, 2, 4, 8, 15]);
    expect(d.result.dials).toBe(6);
    expect(d.result.outcome).toBe('expired');
    expect(branches(d.result)).toEqual(['call:callEnded']);
    // The last dial is placed at the end of the period (not after it), and the call ends only then.
    expect(d.sleeps.reduce((sum, s) => sum + s.ms, 0)).toBe(30 * 60_000);
    expect(d.elapsedMs).toBe(30 * 60_000);
  });

  it('with the default validity period (48 h) internal errors are retried for the whole 48 hours', async () => {
    const d = await drive(flowOf(ivr()), { attempts: ['error'] });
    expect(d.result.outcome).toBe('expired');
    const minutes = d.sleeps.map((s) => s.ms / 60_000);
    expect(minutes.slice(0, 6)).toEqual([1, 2, 4, 8, 16, 30]);
    expect(Math.max(...minutes)).toBe(30);
    // 31 minutes of growing back-offs, 94 of 30 minutes, then 29 minutes to the end of the period.
    expect(minutes.at(-1)).toBe(29);
    expect(d.sleeps.reduce((sum, s) => sum + s.ms, 0)).toBe(DEFAULT_VALIDITY_MS);
    expect(d.result.dials).toBe(101);
    expect(d.elapsedMs).toBe(DEFAULT_VALIDITY_MS);
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
    // The collect's capture is the prompt's follow-up: the key that interrupted the prompt completes
    // it, and the call sends no capture of its own.
    expect(d.sent.filter((c) => c.action === 'captureDtmf')).toHaveLength(0);
    const menu = d.sent.find((c) => c.action === 'say');
    expect(menu?.action === 'say' && menu.then?.action).toBe('captureDtmf');
  });

  it('ignores digits pressed during a prompt that is not interruptible', async () => {
    const d = await drive(flowOf(ivr()), { attempts: ['answered'], keys: ['1'], pressDuringPrompt: true });
    expect(branches(d.result)).toEqual(['call:answered', 'menu:played', 'ask:1', 'one:played']);
  });
});

// Seed: audio interruption "is triggered only if you add a Collect element in the Audio is played
// branch of the Play element".
describe('play: audio interruption only with a collect on the played branch', () => {
  /** A provider that reports a key pressed during every prompt, interruptible or not (type-ahead). */
  const keyDuringPrompts = (key: string) => (events: TelephonyEvent[]) =>
    events.map((e) =>
      e.type === 'SAY_FINISHED' || e.type === 'PLAY_FINISHED'
        ? { ...e, properties: { ...e.properties, interrupted: true, dtmf: key } }
        : e,
    );
  /** Whether each `say` sent asked the provider for an interruptible prompt. */
  const says = (d: { commands: TelephonyCommand[] }) =>
    d.commands.flatMap((c) => (c.action === 'say' ? [c.interruptible] : []));

  /** call → menu (interruptible) → `between` → ask (collect). */
  const menuThen = (between: Record<string, unknown>, menu: Record<string, unknown> = {}) =>
    flowOf({
      id: 'barge',
      version: 1,
      start: 'call',
      variables: { choice: { type: 'string' }, seen: { type: 'boolean' } },
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'menu' } },
        {
          id: 'menu',
          type: 'play',
          tts: { text: 'Press 1 or 2.' },
          interruptible: true,
          next: { played: 'between', hungUp: 'end', callEnded: 'end' },
          ...menu,
        },
        { id: 'between', ...between } as FlowInput['elements'][number],
        {
          id: 'ask',
          type: 'collect',
          maxDigits: 1,
          saveTo: 'choice',
          responses: { '1': 'end', '2': 'end' },
          next: { noMatch: 'end', hungUp: 'end', callEnded: 'end' },
        },
        { id: 'end', type: 'hangUp' },
      ],
    });

  it('played → collect: the prompt is interruptible and the key goes to the collect', async () => {
    const d = await drive(reminder, { attempts: ['answered'], keys: ['2'], pressDuringPrompt: true });
    expect(says(d)[0]).toBe(true);
    expect(branches(d.result).slice(0, 3)).toEqual(['call:answered', 'menu:played', 'ask:2']);
    expect(d.sent.filter((c) => c.action === 'captureDtmf')).toHaveLength(0);
  });

  it.each([
    ['a setVariable', { type: 'setVariable', variable: 'seen', value: 'true', next: 'ask' }],
    [
      'another play',
      { type: 'play', tts: { text: 'Choose now.' }, next: { played: 'ask', hungUp: 'end', callEnded: 'end' } },
    ],
  ])(
    'played → %s → collect: the prompt is not interruptible, and a key pressed during it is not carried',
    async (_name, between) => {
      const f = menuThen(between);
      // A person who presses during the prompt: with the prompt not interruptible, the key waits for the collect.
      const person = await drive(f, { attempts: ['answered'], keys: ['1'], pressDuringPrompt: true });
      expect(says(person)[0]).toBe(false);
      expect(branches(person.result)).toEqual([
        'call:answered',
        'menu:played',
        'between:' + (between.type === 'play' ? 'played' : 'next'),
        'ask:1',
      ]);
      expect(person.commands.filter((c) => c.action === 'captureDtmf')).toHaveLength(1);

      // A provider that reports a key during the prompt anyway: the collect still asks for its own input.
      const typeAhead = await drive(f, { attempts: ['answered'], keys: ['1'] }, { tamper: keyDuringPrompts('2') });
      expect(branches(typeAhead.result).at(-1)).toBe('ask:1');
      expect(typeAhead.commands.filter((c) => c.action === 'captureDtmf')).toHaveLength(1);
      expect(typeAhead.result.variables.choice).toBe('1');
    },
  );

  it('played → not a collect: a key does not cut the loops short', async () => {
    const f = menuThen({ type: 'setVariable', variable: 'seen', value: 'true', next: 'ask' }, { loopCount: 3 });
    const d = await drive(f, { attempts: ['answered'], keys: ['1'] }, { tamper: keyDuringPrompts('2') });
    expect(says(d)).toEqual([false, false, false]);
    expect(branches(d.result)).toEqual(['call:answered', 'menu:played', 'between:next', 'ask:1']);
  });

  it('played branch open (automatic hang-up): the prompt is not interruptible', async () => {
    const f = flowOf({
      id: 'open',
      version: 1,
      start: 'call',
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'menu' } },
        { id: 'menu', type: 'play', tts: { text: 'Bye.' }, interruptible: true, loopCount: 2 },
      ],
    });
    const d = await drive(f, { attempts: ['answered'] }, { tamper: keyDuringPrompts('5') });
    expect(says(d)).toEqual([false, false]);
    expect(d.commands.map((c) => c.action)).toEqual(['dial', 'say', 'say', 'hangup']);
  });

  it('an audio file prompt follows the same rule', async () => {
    const f = menuThen(
      { type: 'setVariable', variable: 'seen', value: 'true', next: 'ask' },
      { tts: undefined, audio: { url: 'https://example.com/menu.mp3' } },
    );
    const d = await drive(f, { attempts: ['answered'], keys: ['1'] }, { tamper: keyDuringPrompts('2') });
    expect(d.commands.find((c) => c.action === 'play')).toMatchObject({ interruptible: false });
    expect(d.result.variables.choice).toBe('1');
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

describe('limits: the automatic hang-up never counts against them', () => {
  /** Answered → `inc` → `check` → `inc` … `rounds` times, then `check`'s else, open: closed by a hang-up. */
  const counter = (rounds: number) =>
    flowOf({
      id: 'loop',
      version: 1,
      start: 'call',
      variables: { n: { type: 'number', default: 0 } },
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'inc' } },
        { id: 'inc', type: 'setVariable', variable: 'n', value: 'vars.n + 1', next: 'check' },
        { id: 'check', type: 'condition', conditions: [{ if: `vars.n < ${rounds}`, next: 'inc' }] },
      ],
    });

  it('a loop that visits exactly the per-step limit of elements, then ends: hung up, not failed', async () => {
    // 2 elements a round: the loop alone takes the whole budget; the automatic hang-up comes on top.
    const rounds = MAX_TRANSITIONS_PER_STEP / 2;
    const d = await drive(counter(rounds), { attempts: ['answered'] });
    expect(d.result.outcome).toBe('answered');
    expect(d.result.error).toBeUndefined();
    expect(d.result.warnings).toEqual([]);
    expect(d.result.variables.n).toBe(rounds);
    expect(d.commands.map((c) => c.action)).toEqual(['dial', 'hangup']);
    expect(d.result.visited.at(-1)).toBe(AUTO_HANGUP_ID);
    expect(d.result.trail.at(-1)).toEqual({ element: 'check', branch: 'else' });
  });

  it('a loop one element past the limit ends cleanly: the live call is hung up, with a warning and a result', async () => {
    const rounds = MAX_TRANSITIONS_PER_STEP / 2 + 1;
    const d = await drive(counter(rounds), { attempts: ['answered'] });
    expect(d.result.outcome).toBe('failed');
    expect(d.result.error).toMatch(new RegExp(`more than ${MAX_TRANSITIONS_PER_STEP} elements`));
    expect(d.result.warnings).toEqual([{ element: 'check', message: d.result.error }]);
    expect(d.commands.map((c) => c.action)).toEqual(['dial', 'hangup']);
    expect(d.commands[1]).toMatchObject({ action: 'hangup', callId: d.commands[0]?.callId, elementId: 'check' });
    // The element that would have gone past the limit is not entered: `call` + exactly the limit.
    expect(d.result.visited).toHaveLength(1 + MAX_TRANSITIONS_PER_STEP);
    expect(d.state.session).toBe('ended');
  });

  it('a flow of 100 elements with an open branch stays at 100 elements and is still hung up there', async () => {
    const steps = Array.from({ length: MAX_ELEMENTS - 2 }, (_, i) => ({
      id: `s${i}`,
      type: 'setVariable' as const,
      variable: 'n',
      value: `${i}`,
      next: i < MAX_ELEMENTS - 3 ? `s${i + 1}` : 'bye',
    }));
    const doc: FlowInput = {
      id: 'full',
      version: 1,
      start: 'call',
      variables: { n: { type: 'number' } },
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 's0' } },
        ...steps,
        { id: 'bye', type: 'play', tts: { text: 'Bye.' } },
      ],
    };
    const f = flowOf(doc);
    expect(f.elements).toHaveLength(MAX_ELEMENTS);
    // What the flow store does with a published flow: read it back and parse it again.
    expect(flowOf(JSON.parse(JSON.stringify(f)) as FlowInput).elements).toHaveLength(MAX_ELEMENTS);
    const d = await drive(f, { attempts: ['answered'] });
    expect(d.commands.map((c) => c.action)).toEqual(['dial', 'say', 'hangup']);
    expect(d.commands.at(-1)).toMatchObject({ action: 'hangup', elementId: 'bye' });
    expect(d.result).toMatchObject({ outcome: 'answered', warnings: [] });
    expect(d.result.trail.at(-1)).toEqual({ element: 'bye', branch: 'played' });
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
    expect(out.commands).toEqual([{ kind: 'continueWaiting', token: 1 }]);
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

// A prompt's follow-up: the provider starts the collect (or hangs up) the moment the prompt ends, so
// the call spends no workflow task between the two.
describe('prompt follow-ups', () => {
  const sayOf = (d: { sent: TelephonyCommand[] }, elementId: string) =>
    d.sent.find(
      (c): c is Extract<TelephonyCommand, { action: 'say' }> => c.action === 'say' && c.elementId === elementId,
    );

  it('a menu carries its collect, the last prompt its hang-up, and a detected answer is held', async () => {
    const d = await drive(reminder, { attempts: ['answered'], keys: ['1'] });
    expect(branches(d.result)).toEqual(['call:answered', 'menu:played', 'ask:1', 'confirmed:played']);
    expect(d.sent.map((c) => c.action)).toEqual(['dial', 'say', 'say']);
    expect(d.commands.map((c) => c.action)).toEqual(['dial', 'say', 'captureDtmf', 'say', 'hangup']);
    const dial = d.sent[0];
    expect(dial?.action === 'dial' && dial.holdEvents).toEqual(['CALL_ESTABLISHED']);
    const menu = sayOf(d, 'menu');
    expect(menu?.holdEvents).toEqual(['SAY_FINISHED']);
    expect(menu?.then).toMatchObject({
      action: 'captureDtmf',
      elementId: 'ask',
      maxDigits: 1,
      firstDigitTimeoutMs: 5000,
      terminator: '#',
    });
    // `confirmed` → played → `end`, a hangUp that ends the path.
    expect(sayOf(d, 'confirmed')?.then).toMatchObject({ action: 'hangup', elementId: 'end' });
  });

  it("the follow-up's result before the prompt's end (held or late) decides the same branches", async () => {
    const promptEndLast = (events: TelephonyEvent[]) => [
      ...events.filter((e) => e.type !== 'SAY_FINISHED'),
      ...events.filter((e) => e.type === 'SAY_FINISHED'),
    ];
    // Every planned batch reaches the call with the prompt's end last, at the same moment.
    const d = await drive(
      reminder,
      { attempts: ['answered'], keys: ['2'] },
      {
        tamper: (events) =>
          promptEndLast(events).map((e) =>
            e.type === 'SAY_FINISHED' ? e : { ...e, timestamp: events[0]?.timestamp ?? e.timestamp },
          ),
      },
    );
    expect(branches(d.result)).toEqual(['call:answered', 'menu:played', 'ask:2', 'cancelled:played']);
    expect(d.result.outcome).toBe('answered');
    expect(d.sent.map((c) => c.action)).toEqual(['dial', 'say', 'say']);
  });

  it('hung up during a prompt with a follow-up: the follow-up never runs, the branch is the prompt’s', async () => {
    const d = await drive(reminder, { attempts: ['answered'], hangUpAt: 'menu' });
    expect(branches(d.result)).toEqual(['call:answered', 'menu:hungUp']);
    expect(d.commands.map((c) => c.action)).toEqual(['dial', 'say']);
  });

  it('a key typed during an interruptible menu and a # end the capture at once', async () => {
    const f = flowOf({
      ...ivr(),
      elements: ivr().elements.map((e) =>
        e.id === 'menu'
          ? { ...e, interruptible: true }
          : e.id === 'ask'
            ? { ...e, maxDigits: 4, responses: { '12': 'one' } }
            : e,
      ),
    } as FlowInput);
    const d = await drive(f, { attempts: ['answered'], keys: ['12#'], pressDuringPrompt: true });
    expect(branches(d.result)).toEqual(['call:answered', 'menu:played', 'ask:12', 'one:played']);
    expect(d.sent.filter((c) => c.action === 'captureDtmf')).toHaveLength(0);
  });

  it('only the last loop of a prompt carries the follow-up; a prompt that leads elsewhere carries none', async () => {
    const looped = flowOf({
      ...ivr(),
      elements: [
        ...ivr().elements.map((e) =>
          e.id === 'menu' ? { ...e, loopCount: 2 } : e.id === 'one' ? { ...e, next: { played: 'bye' } } : e,
        ),
        { id: 'bye', type: 'setVariable', variable: 'choice', value: 'done' },
      ],
    } as FlowInput);
    const d = await drive(looped, { attempts: ['answered'], keys: ['1'] });
    const menus = d.sent.filter((c) => c.action === 'say' && c.elementId === 'menu');
    expect(menus.map((c) => c.action === 'say' && c.then?.action)).toEqual([undefined, 'captureDtmf']);
    // `one` leads to a setVariable: the prompt ends the usual way, and the path's end hangs up.
    expect(sayOf(d, 'one')?.then).toBeUndefined();
    expect(d.commands.map((c) => c.action)).toEqual(['dial', 'say', 'say', 'captureDtmf', 'say', 'hangup']);
  });

  it('a prompt followed by a hangUp element that ends the path carries the hang-up', async () => {
    const d = await drive(flowOf(ivr()), { attempts: ['answered'], keys: ['1'] });
    // `one` → played → `end` (a hangUp without next).
    expect(sayOf(d, 'one')?.then).toMatchObject({ action: 'hangup', elementId: 'end' });
    expect(d.commands.filter((c) => c.action === 'hangup')).toHaveLength(1);
  });

  it('step: the finish awaits the end of a leg hung up by a follow-up, not of one that already ended', async () => {
    const base = initialState({
      workflowId: 'call:t:r1',
      recipient: { id: 'r1', phone: '+385915550001' },
      seed: 1,
      flow: reminder,
    });
    let state = base;
    let out = await step(reminder, state, { type: 'start', at: START });
    state = out.state;
    const dial = out.commands.find((c) => c.kind === 'telephony');
    const callId = dial?.kind === 'telephony' ? dial.command.callId : '';
    const ev = (type: TelephonyEvent['type'], properties: Record<string, unknown>): TelephonyEvent => ({
      id: `${type}:${Math.random()}`,
      type,
      callId,
      timestamp: new Date(START).toISOString(),
      properties,
    });
    const feed = async (e: TelephonyEvent) => {
      out = await step(reminder, state, { type: 'telephony', at: START, event: e });
      state = out.state;
      return out.commands;
    };
    const commandOf = (cmds: typeof out.commands, action: string) =>
      cmds.flatMap((c) => (c.kind === 'telephony' && c.command.action === action ? [c.command] : []));
    await feed(ev('MACHINE_DETECTION_FINISHED', { detectionResult: 'HUMAN' }));
    const menu = commandOf(out.commands, 'say')[0];
    const capture = menu?.action === 'say' ? menu.then : undefined;
    await feed(ev('DTMF_CAPTURED', { commandId: capture?.commandId, dtmf: '1' }));
    const confirmed = commandOf(out.commands, 'say')[0];
    const hangup = confirmed?.action === 'say' ? confirmed.then : undefined;
    // Prompt end first (normal order): the call waits for its leg's end.
    const normal = await step(reminder, state, {
      type: 'telephony',
      at: START,
      event: ev('SAY_FINISHED', { commandId: confirmed?.commandId }),
    });
    expect(normal.commands).toEqual([expect.objectContaining({ kind: 'finish', awaitLegEnd: callId })]);
    // The hang-up's CALL_FINISHED first: the prompt played, and there is no end left to await.
    const reordered = await feed(ev('CALL_FINISHED', { commandId: hangup?.commandId, hangupSource: 'API' }));
    expect(reordered).toHaveLength(1);
    expect(reordered[0]).toMatchObject({ kind: 'finish' });
    expect(reordered[0]).not.toHaveProperty('awaitLegEnd');
    expect(branches(state.result ?? { trail: [] })).toEqual([
      'call:answered',
      'menu:played',
      'ask:1',
      'confirmed:played',
    ]);
  });
});

describe('prompt follow-ups, in any order', () => {
  it('the person hangs up during the follow-up capture: the collect’s branch, whichever event comes first', async () => {
    const reorder = (events: TelephonyEvent[]) => [...events].reverse();
    for (const tamper of [undefined, reorder]) {
      const d = await drive(reminder, { attempts: ['answered'], hangUpAt: 'ask' }, tamper ? { tamper } : {});
      expect(branches(d.result)).toEqual(['call:answered', 'menu:played', 'ask:hungUp']);
    }
  });
});

describe('redials of a campaign call dial in slots the campaign grants', () => {
  const retrying = flowOf(ivr({ retry: { count: 2, minMinutes: 10, maxMinutes: 10 } }));
  const MIN = 60_000;

  it('a redial waits for its slot; a slot that passed unused is asked for again', async () => {
    const asked: Array<{ dial: number; request: number }> = [];
    const d = await drive(
      retrying,
      { attempts: ['busy', 'busy', 'answered'], keys: ['1'] },
      {
        dialSlots: true,
        action: (request) => {
          if (request.type !== 'dialSlot') return { ok: true };
          asked.push({ dial: request.dial, request: request.request });
          // Dial 2 (asked 10 minutes in): a slot 20 minutes from the start that closes as it opens,
          // so it is asked for again and then granted at once; dial 3 at once.
          if (request.dial === 2 && request.request === 1)
            return { ok: true, data: { granted: true, at: START + 20 * MIN, until: START + 20 * MIN } };
          return { ok: true, data: { granted: true, at: START, until: START + 10 * 60 * MIN } };
        },
      },
    );
    expect(branches(d.result)).toEqual(['call:answered', 'menu:played', 'ask:1', 'one:played']);
    expect(d.result.dials).toBe(3);
    expect(asked.map((a) => [a.dial, a.request])).toEqual([
      [2, 1],
      [2, 2],
      [3, 1],
    ]);
    // The retry back-off, then the slot's wait; the second dial's slot is used at once.
    expect(d.sleeps.map((s) => s.reason)).toEqual([
      'retry 1/2 after busy',
      expect.stringMatching(/^calling speed: dial 2 in the campaign's slot at /),
      'retry 2/2 after busy',
    ]);
    expect(d.actions.filter((a) => a.type === 'dialSlot')).toHaveLength(3);
  });

  it('a slot granted after the validity period of an internal-error redial is not used: the call expires', async () => {
    const d = await drive(
      flowOf(ivr({ validityPeriod: { value: 5, unit: 'minutes' } })),
      { attempts: ['error', 'answered'] },
      {
        dialSlots: true,
        action: () => ({ ok: true, data: { granted: true, at: START + 30 * MIN, until: START + 40 * MIN } }),
      },
    );
    expect(d.result).toMatchObject({ outcome: 'expired', dials: 1 });
    expect(d.commands.filter((c) => c.action === 'dial')).toHaveLength(1);
  });

  it('a refused slot ends the call with its last dial’s outcome; a call outside campaigns never asks', async () => {
    const refused = await drive(
      retrying,
      { attempts: ['busy', 'answered'] },
      {
        dialSlots: true,
        action: () => ({
          ok: true,
          data: { granted: false, reason: 'campaignStopped', message: 'campaign is cancelled: no more dials' },
        }),
      },
    );
    expect(refused.result).toMatchObject({
      outcome: 'busy',
      dials: 1,
      error: 'not dialled again: campaign is cancelled: no more dials',
    });
    const direct = await drive(retrying, { attempts: ['busy', 'answered'], keys: ['1'] });
    expect(direct.result.dials).toBe(2);
    expect(direct.actions).toEqual([]);
  });
});
