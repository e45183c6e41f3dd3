// Interpreter: the elements beyond the outbound basics, one test per branch.
import { describe, expect, it } from 'vitest';
import { DateTime } from 'luxon';
import { drive, flowOf } from '../helpers/drive.js';
import type { FlowInput } from '../../src/flow/schema.js';

const trail = (r: { trail: Array<{ element: string; branch: string }> }) =>
  r.trail.map((t) => `${t.element}:${t.branch}`);
const answered = (el: Record<string, unknown>, extra: FlowInput['elements'] = []): FlowInput => ({
  id: 'f',
  version: 1,
  start: 'call',
  elements: [
    { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'x' } },
    { id: 'x', ...el } as FlowInput['elements'][number],
    ...extra,
    { id: 'end', type: 'hangUp' },
  ],
});

describe('startIncomingCall', () => {
  const inbound = flowOf({
    id: 'in',
    version: 1,
    elements: [
      { id: 'en', type: 'startIncomingCall', number: '+14155550111', next: 'hello' },
      { id: 'es', type: 'startIncomingCall', number: '+14155550222', next: 'hola' },
      { id: 'hello', type: 'play', tts: { text: 'Hello' }, next: { played: 'end' } },
      { id: 'hola', type: 'play', tts: { text: 'Hola', language: 'es' }, next: { played: 'end' } },
      { id: 'end', type: 'hangUp' },
    ],
  });
  it('answers and starts at the element of the dialled number', async () => {
    const d = await drive(inbound, {}, { incoming: { to: '+14155550222' } });
    expect(trail(d.result)).toEqual(['es:next', 'hola:played']);
    expect(d.commands.map((c) => c.action)).toEqual(['answer', 'say', 'hangup']);
    expect(d.result.outcome).toBe('inbound');
    expect(d.result.dials).toBe(0);
  });
  it('a number with no startIncomingCall fails clearly', async () => {
    const d = await drive(inbound, {}, { incoming: { to: '+19999999999' } });
    expect(d.result).toMatchObject({
      outcome: 'failed',
      error: expect.stringMatching(/no startIncomingCall element for number \+19999999999/),
    });
  });
  it('caller hangs up during the prompt → hungUp', async () => {
    const f = flowOf({
      id: 'in2',
      version: 1,
      elements: [
        { id: 'en', type: 'startIncomingCall', number: '+14155550111', next: 'hello' },
        { id: 'hello', type: 'play', tts: { text: 'Hello' }, next: { played: 'end', hungUp: 'sms' } },
        { id: 'sms', type: 'sendSms', text: 'Sorry we missed you' },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const d = await drive(f, { hangUpAt: 'hello' }, { incoming: { to: '+14155550111' } });
    expect(trail(d.result)).toEqual(['en:next', 'hello:hungUp', 'sms:next']);
    expect(d.actions).toEqual([
      { type: 'sendSms', elementId: 'sms', to: '+385915550001', text: 'Sorry we missed you' },
    ]);
  });
});

describe('forwardCall', () => {
  const fwd = (next: Record<string, string>) =>
    flowOf(
      answered(
        { type: 'forwardCall', from: '+14155550100', to: '{{recipient.agent}}', next: { callEnded: 'log', ...next } },
        [
          { id: 'sorry', type: 'play', tts: { text: 'All agents are busy.' }, next: { played: 'end' } },
          { id: 'log', type: 'setVariable', variable: 'forwarded', value: 'true' },
        ],
      ),
    );
  it('forwarded: the flow leaves the call session and continues with non-IVR actions', async () => {
    const d = await drive(
      fwd({ forwarded: 'log', notForwarded: 'sorry' }),
      { forward: 'answered' },
      { recipient: { agent: 'sip:agent@pbx.example.com' } },
    );
    expect(trail(d.result)).toEqual(['call:answered', 'x:forwarded', 'log:next']);
    expect(d.commands.find((c) => c.action === 'forward')).toMatchObject({
      to: 'sip:agent@pbx.example.com',
      legCallId: 'call:test:r1~1.f1',
    });
    // No hang-up: the end user is talking to the agent.
    expect(d.commands.map((c) => c.action)).not.toContain('hangup');
    expect(d.result.variables.forwarded).toBe(true);
  });
  it.each(['busy', 'noAnswer', 'declined'] as const)(
    '%s goes to its branch when configured, else to notForwarded',
    async (outcome) => {
      const withBranch = await drive(
        fwd({ notForwarded: 'sorry', [outcome]: 'end' }),
        { forward: outcome },
        { recipient: { agent: '+14155550199' } },
      );
      expect(trail(withBranch.result)).toEqual(['call:answered', `x:${outcome}`]);
      const without = await drive(
        fwd({ notForwarded: 'sorry' }),
        { forward: outcome },
        { recipient: { agent: '+14155550199' } },
      );
      expect(trail(without.result)).toEqual(['call:answered', 'x:notForwarded', 'sorry:played']);
    },
  );
  it('a failed forward keeps the session: the flow can still talk to the caller', async () => {
    const d = await drive(
      fwd({ notForwarded: 'sorry' }),
      { forward: 'failed' },
      { recipient: { agent: 'webrtc:agent-7' } },
    );
    expect(trail(d.result)).toEqual(['call:answered', 'x:notForwarded', 'sorry:played']);
    expect(d.commands.map((c) => c.action)).toEqual(['dial', 'forward', 'say', 'hangup']);
  });
  it('the caller hangs up before the forward completes → callEnded', async () => {
    const d = await drive(
      fwd({ notForwarded: 'sorry', callEnded: 'log' }),
      { hangUpAt: 'x' },
      { recipient: { agent: '+14155550199' } },
    );
    expect(trail(d.result)).toEqual(['call:answered', 'x:callEnded', 'log:next']);
  });
});

describe('recordVoicemail', () => {
  const rec = flowOf({
    id: 'vm',
    version: 1,
    start: 'call',
    variables: { message: { type: 'string' } },
    elements: [
      { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'rec', voicemail: 'rec' } },
      {
        id: 'rec',
        type: 'recordVoicemail',
        name: 'msg-{{recipient.id}}',
        maxDurationSeconds: 30,
        maxSilenceSeconds: 3,
        escapeDigits: '0',
        beep: true,
        saveTo: 'message',
        next: { recorded: 'thanks', hungUp: 'end', callEnded: 'end' },
      },
      { id: 'thanks', type: 'play', tts: { text: 'Thanks' }, next: { played: 'end' } },
      { id: 'end', type: 'hangUp' },
    ],
  });
  it('recorded: the recording is reported and saved to the variable', async () => {
    const d = await drive(rec, { attempts: ['voicemail'], speakSeconds: 12 });
    expect(trail(d.result)).toEqual(['call:voicemail', 'rec:recorded', 'thanks:played']);
    expect(d.commands.find((c) => c.action === 'record')).toMatchObject({
      name: 'msg-r1',
      maxDurationMs: 30_000,
      maxSilenceMs: 3000,
      escapeDigits: '0',
      beep: true,
    });
    expect(d.result.recordings).toEqual([
      expect.objectContaining({ element: 'rec', name: 'msg-r1', durationMs: 15_000 }),
    ]);
    expect(d.result.variables.message).toBe('msg-r1');
  });
  it('hangs up while recording → hungUp', async () => {
    const d = await drive(rec, { hangUpAt: 'rec' });
    expect(trail(d.result)).toEqual(['call:answered', 'rec:hungUp']);
    expect(d.result.recordings).toEqual([]);
  });
  it('the provider never delivers the recording → callEnded', async () => {
    const d = await drive(rec, {}, { tamper: (evs) => evs.filter((e) => e.type !== 'CALL_RECORDING_READY') });
    expect(trail(d.result)).toEqual(['call:answered', 'rec:callEnded']);
  });
  it('play can use a recorded voicemail as audio', async () => {
    const f = flowOf(
      answered({ type: 'recordVoicemail', name: 'greeting', next: { recorded: 'back' } }, [
        { id: 'back', type: 'play', audio: { voicemail: 'greeting' }, next: { played: 'end' } },
      ]),
    );
    const d = await drive(f, {});
    expect(d.commands.find((c) => c.action === 'play')).toMatchObject({ url: 'recording:greeting' });
  });
});

describe('play audio', () => {
  it('plays an audio file by URL, and a file by path', async () => {
    const d = await drive(
      flowOf(
        answered({ type: 'play', audio: { url: 'https://cdn.example.com/promo.mp3' }, next: { played: 'y' } }, [
          { id: 'y', type: 'play', audio: { file: 'media/jingle.wav' }, next: { played: 'end' } },
        ]),
      ),
      {},
    );
    expect(d.commands.filter((c) => c.action === 'play').map((c) => (c.action === 'play' ? c.url : ''))).toEqual([
      'https://cdn.example.com/promo.mp3',
      'file:media/jingle.wav',
    ]);
  });
});

describe('delivery window', () => {
  const windowed = (tz = 'recipient') =>
    flowOf({
      id: 'w',
      version: 1,
      start: 'call',
      elements: [
        {
          id: 'call',
          type: 'startOutgoingCall',
          from: '+14155550100',
          deliveryWindow: { days: ['MON', 'TUE', 'WED', 'THU', 'FRI'], from: '09:00', to: '17:00', timeZone: tz },
          retry: { minMinutes: 5, maxMinutes: 5, count: 3 },
          next: { answered: 'end', busy: 'end' },
        },
        { id: 'end', type: 'hangUp' },
      ],
    });
  const zagreb = (iso: string) => DateTime.fromISO(iso, { zone: 'Europe/Zagreb' }).toMillis();

  it('inside the window dials at once', async () => {
    const d = await drive(
      windowed(),
      { attempts: ['answered'] },
      { at: zagreb('2026-11-23T10:00'), recipient: { timeZone: 'Europe/Zagreb' } },
    );
    expect(d.sleeps).toEqual([]);
  });
  it('Saturday: sleeps until Monday 09:00 in the recipient’s zone', async () => {
    const d = await drive(
      windowed(),
      { attempts: ['answered'] },
      { at: zagreb('2026-11-28T11:00'), recipient: { timeZone: 'Europe/Zagreb' } },
    );
    expect(d.sleeps).toHaveLength(1);
    expect(zagreb('2026-11-28T11:00') + (d.sleeps[0]?.ms ?? 0)).toBe(zagreb('2026-11-30T09:00'));
  });
  it('Friday 16:55 busy: retries stay inside the window and continue on Monday', async () => {
    const d = await drive(
      windowed(),
      { attempts: ['busy', 'busy', 'answered'] },
      { at: zagreb('2026-11-27T16:55'), recipient: { timeZone: 'Europe/Zagreb' } },
    );
    // retry after 5 min → 17:00 is outside → wait until Monday 09:00, dial (busy), retry after 5 min → answered.
    expect(d.result.outcome).toBe('answered');
    expect(d.sleeps.map((s) => s.reason.split(' ')[0])).toEqual(['retry', 'outside', 'retry']);
    expect(zagreb('2026-11-27T16:55') + d.elapsedMs).toBe(zagreb('2026-11-30T09:05'));
  });
  it('internal errors: a redial the window would push past the validity period is not made', async () => {
    const f = flowOf({
      id: 'wv',
      version: 1,
      start: 'call',
      elements: [
        {
          id: 'call',
          type: 'startOutgoingCall',
          from: '+14155550100',
          deliveryWindow: { days: ['MON', 'TUE', 'WED', 'THU', 'FRI'], from: '09:00', to: '17:00' },
          validityPeriod: { value: 2, unit: 'hours' },
          next: { answered: 'end' },
        },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const start = zagreb('2026-11-27T16:00');
    const d = await drive(f, { attempts: ['error'] }, { at: start, recipient: { timeZone: 'Europe/Zagreb' } });
    // Dials at 16:00, 16:01, 16:03, 16:07, 16:15, 16:31; the next back-off ends at 17:01, outside the
    // window, whose next opening (Monday 09:00) is after the period (until 18:00): the call waits for
    // the end of the period and ends there, never dialling on Monday.
    expect(d.result.dials).toBe(6);
    expect(d.result.outcome).toBe('expired');
    expect(trail(d.result)).toEqual(['call:callEnded']);
    expect(start + d.elapsedMs).toBe(zagreb('2026-11-27T18:00'));
  });
  it('a fixed zone overrides the recipient’s', async () => {
    const d = await drive(
      windowed('America/New_York'),
      { attempts: ['answered'] },
      { at: zagreb('2026-11-23T10:00'), recipient: { timeZone: 'Europe/Zagreb' } },
    );
    // 10:00 in Zagreb is 04:00 in New York: wait five hours.
    expect(d.sleeps[0]?.ms).toBe(5 * 3600_000);
  });
  it('window "recipient" with no zone known refuses to dial and says why', async () => {
    const d = await drive(windowed(), { attempts: ['answered'] }, { at: zagreb('2026-11-23T10:00') });
    expect(d.result).toMatchObject({
      outcome: 'notCalled',
      dials: 0,
      error: expect.stringMatching(/recipient's time zone/),
    });
  });
});

describe('pause', () => {
  it('until next Monday 10:00 in a zone, DST-correct', async () => {
    const f = flowOf({
      id: 'p',
      version: 1,
      start: 'wait',
      elements: [
        { id: 'wait', type: 'pause', until: { weekday: 'MON', time: '10:00', timeZone: 'Europe/Zagreb' }, next: 'end' },
        { id: 'end', type: 'hangUp' },
      ],
    });
    // Thursday before the autumn DST change (25 Oct 2026): Monday 26 Oct 10:00 is CET (UTC+1).
    const start = DateTime.fromISO('2026-10-22T12:00', { zone: 'Europe/Zagreb' }).toMillis();
    const d = await drive(f, {}, { at: start });
    expect(new Date(start + d.elapsedMs).toISOString()).toBe('2026-10-26T09:00:00.000Z');
  });
});

describe('non-IVR actions', () => {
  it('setVariable and condition with JSONata, deterministic $now', async () => {
    const f = flowOf({
      id: 'c',
      version: 1,
      start: 'a',
      variables: { score: { type: 'number' } },
      elements: [
        { id: 'a', type: 'setVariable', variable: 'score', value: '$number(recipient.lastScore) + 1', next: 'b' },
        {
          id: 'b',
          type: 'condition',
          conditions: [
            { if: 'vars.score >= 9', next: 'promoter' },
            { if: 'vars.score <= 6', next: 'detractor' },
          ],
          else: 'passive',
        },
        { id: 'promoter', type: 'setVariable', variable: 'when', value: '$now()', next: 'end' },
        { id: 'detractor', type: 'hangUp' },
        { id: 'passive', type: 'hangUp' },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const d = await drive(f, {}, { recipient: { lastScore: '8' } });
    expect(trail(d.result)).toEqual(['a:next', 'b:conditions[0]', 'promoter:next']);
    expect(d.result.variables).toEqual({ score: 9, when: '2026-11-23T09:00:00.000Z' });
    const low = await drive(f, {}, { recipient: { lastScore: '3' } });
    expect(trail(low.result)[1]).toBe('b:conditions[1]');
    const mid = await drive(f, {}, { recipient: { lastScore: '7' } });
    expect(trail(mid.result)[1]).toBe('b:else');
  });

  it('a condition on a missing value is false; a failing expression is a warning, not a crash', async () => {
    const f = flowOf({
      id: 'm',
      version: 1,
      start: 'b',
      elements: [
        {
          id: 'b',
          type: 'condition',
          conditions: [
            { if: 'vars.nothing = "x"', next: 'yes' },
            { if: '$number("abc") > 1', next: 'yes' },
          ],
          else: 'no',
        },
        { id: 'yes', type: 'hangUp' },
        { id: 'no', type: 'hangUp' },
      ],
    });
    const d = await drive(f);
    expect(trail(d.result)).toEqual(['b:else']);
    expect(d.result.warnings).toHaveLength(1);
    expect(d.result.warnings[0]?.element).toBe('b');
  });

  it('httpRequest renders the request, saves response fields, and takes onError on failure', async () => {
    const f = flowOf(
      answered(
        {
          type: 'httpRequest',
          method: 'POST',
          url: 'https://api.example.com/orders/{{vars.account}}',
          headers: { authorization: 'Bearer {{profile.token}}' },
          body: { account: '{{vars.account}}', n: 1 },
          saveTo: { status: 'body.status', eta: 'body.eta' },
          next: 'say',
          onError: 'sorry',
        },
        [
          {
            id: 'say',
            type: 'play',
            tts: { text: 'Your order is {{vars.status}}, arriving {{vars.eta}}.' },
            next: { played: 'end' },
          },
          { id: 'sorry', type: 'play', tts: { text: 'We cannot look that up now.' }, next: { played: 'end' } },
        ],
      ),
    );
    const flow = { ...f, variables: { account: { type: 'string' as const, default: 'A-17' } } };
    const ok = await drive(
      flow,
      {},
      {
        profile: { token: 't0k' },
        action: () => ({ ok: true, data: { status: 200, headers: {}, body: { status: 'shipped', eta: 'Tuesday' } } }),
      },
    );
    expect(ok.actions[0]).toEqual({
      type: 'httpRequest',
      elementId: 'x',
      method: 'POST',
      url: 'https://api.example.com/orders/A-17',
      headers: { authorization: 'Bearer t0k' },
      body: { account: 'A-17', n: 1 },
      timeoutMs: 10_000,
      retries: 2,
    });
    expect(ok.commands.find((c) => c.action === 'say' && c.elementId === 'say')).toMatchObject({
      text: 'Your order is shipped, arriving Tuesday.',
    });
    const failed = await drive(flow, {}, { action: () => ({ ok: false, error: 'HTTP 503' }) });
    expect(trail(failed.result)).toEqual(['call:answered', 'x:onError', 'sorry:played']);
    expect(failed.result.warnings).toEqual([{ element: 'x', message: 'HTTP 503' }]);
  });

  it('updateProfile evaluates attributes and later placeholders see the new profile', async () => {
    const f = flowOf({
      id: 'u',
      version: 1,
      start: 'call',
      variables: { choice: { type: 'string' } },
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'ask' } },
        {
          id: 'ask',
          type: 'collect',
          maxDigits: 1,
          saveTo: 'choice',
          responses: { '1': 'save' },
          next: { noMatch: 'end' },
        },
        {
          id: 'save',
          type: 'updateProfile',
          attributes: { optIn: 'vars.choice = "1"', lastCall: '$now()' },
          next: 'bye',
        },
        { id: 'bye', type: 'play', tts: { text: 'Opt-in: {{profile.optIn}}' }, next: { played: 'end' } },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const d = await drive(f, { keys: ['1'] });
    expect(d.actions).toEqual([
      {
        type: 'updateProfile',
        elementId: 'save',
        recipientId: 'r1',
        attributes: { optIn: true, lastCall: '2026-11-23T09:00:00.000Z' },
      },
    ]);
    expect(d.commands.find((c) => c.action === 'say' && c.elementId === 'bye')).toMatchObject({ text: 'Opt-in: true' });
  });

  it('sendSms failure without onError continues at next and records a warning', async () => {
    const f = flowOf({
      id: 's',
      version: 1,
      start: 'sms',
      elements: [
        { id: 'sms', type: 'sendSms', text: 'Hi {{recipient.firstName}}', next: 'end' },
        { id: 'end', type: 'hangUp' },
      ],
    });
    const d = await drive(f, {}, { action: () => ({ ok: false, error: 'provider refused' }) });
    expect(trail(d.result)).toEqual(['sms:next']);
    expect(d.actions[0]).toMatchObject({ to: '+385915550001', text: 'Hi Ana' });
    expect(d.result.warnings).toEqual([{ element: 'sms', message: 'provider refused' }]);
  });

  it('$random in expressions is deterministic per seed', async () => {
    const f = flowOf({
      id: 'r',
      version: 1,
      start: 'a',
      elements: [{ id: 'a', type: 'setVariable', variable: 'r', value: '$random()' }],
    });
    const a = await drive(f, {}, { seed: 1 });
    const b = await drive(f, {}, { seed: 1 });
    const c = await drive(f, {}, { seed: 2 });
    expect(a.result.variables.r).toBe(b.result.variables.r);
    expect(a.result.variables.r).not.toBe(c.result.variables.r);
  });
});

describe('tracking', () => {
  it('renders the data payload per recipient into the call result', async () => {
    const f = flowOf({
      id: 't',
      version: 1,
      start: 'call',
      elements: [
        {
          id: 'call',
          type: 'startOutgoingCall',
          from: '+14155550100',
          tracking: {
            deliveryReports: true,
            dataPayload: { country: '{{recipient.country}}', name: '{{recipient.firstName}}' },
          },
        },
      ],
    });
    const d = await drive(f, { attempts: ['busy'] }, { recipient: { country: 'HR' } });
    expect(d.result.dataPayload).toEqual({ country: 'HR', name: 'Ana' });
  });
});
