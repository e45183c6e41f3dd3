// Masked and hidden input in transcripts: which reporting applies where, and redaction by value.
import { describe, expect, it } from 'vitest';
import { FlowReporting, Redactor } from '../../src/cli/masking.js';
import { parseFlow } from '../../src/flow/validate.js';
import { initialState, step, type CallResult, type FlowCommand, type FlowEvent } from '../../src/flow/interpreter.js';
import type { TelephonyEventType } from '../../src/telephony/contract.js';

const flow = parseFlow({
  id: 'masking',
  version: 1,
  start: 'call',
  elements: [
    { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'menu' } },
    { id: 'menu', type: 'play', tts: { text: 'Press 1 to go on.' }, interruptible: true, next: { played: 'choose' } },
    { id: 'choose', type: 'collect', maxDigits: 1, responses: { '1': 'intro' }, next: { noMatch: 'end' } },
    { id: 'intro', type: 'play', tts: { text: 'Your PIN.' }, interruptible: true, next: { played: 'count' } },
    { id: 'count', type: 'setVariable', variable: 'n', value: '1', next: 'pin' },
    { id: 'pin', type: 'collect', maxDigits: 4, reporting: 'masked', saveTo: 'pin', next: { noMatch: 'secret' } },
    { id: 'secret', type: 'collect', maxDigits: 6, reporting: 'hidden', next: { noMatch: 'end' } },
    { id: 'end', type: 'hangUp' },
  ],
});

describe('FlowReporting', () => {
  const reporting = new FlowReporting(flow);

  it('a collect shows digits as its reporting says', () => {
    expect(reporting.of('choose')).toBe('always');
    expect(reporting.of('pin')).toBe('masked');
    expect(reporting.of('secret')).toBe('hidden');
  });

  it('keys pressed during a prompt count for the first collect on each path from it, through actions', () => {
    expect(reporting.of('menu')).toBe('always');
    expect(reporting.of('intro')).toBe('masked');
  });

  it('digits whose element is unknown are shown as the strictest collect of the flow allows', () => {
    expect(reporting.of(undefined)).toBe('hidden');
    expect(reporting.of('no-such-element')).toBe('hidden');
  });
});

describe('Redactor', () => {
  it('replaces a masked value wherever it occurs, and a hidden one as hidden', () => {
    const r = new Redactor();
    r.add('8417', 'masked');
    r.add('552190', 'hidden');
    expect(r.text('say "You entered 8417."')).toBe('say "You entered xxxx."');
    expect(r.text('https://x.example/v?pin=8417&code=552190')).toBe('https://x.example/v?pin=xxxx&code=(hidden)');
    expect(r.text('x84170')).toBe('xxxxx0');
  });

  it('digits entered where they are shown are not redacted, and # ends the value', () => {
    const r = new Redactor();
    r.add('1', 'always');
    r.add('4321#99', 'masked');
    expect(r.size).toBe(1);
    expect(r.text('press 1, PIN 4321, then 99')).toBe('press 1, PIN xxxx, then 99');
  });

  it('a short value is replaced only where it stands alone, not inside other numbers', () => {
    const r = new Redactor();
    r.add('7', 'masked');
    expect(r.text('dial +385915557777 (attempt 1): you chose 7')).toBe(
      'dial +385915557777 (attempt 1): you chose xxxx',
    );
  });

  it('a value and a part of it: the longest goes first', () => {
    const r = new Redactor();
    r.add('84', 'masked');
    r.add('8417', 'masked');
    expect(r.text('8417 and 84')).toBe('xxxx and xxxx');
  });

  it('redacts strings and numbers inside JSON values, keys stay', () => {
    const r = new Redactor();
    r.add('8417', 'masked');
    expect(
      r.value({ pin: 'xxxx', copy: '8417', n: 8417, nested: [{ url: '/a?p=8417' }], ok: true, none: null }),
    ).toEqual({ pin: 'xxxx', copy: 'xxxx', n: 'xxxx', nested: [{ url: '/a?p=xxxx' }], ok: true, none: null });
    expect(new Redactor().value({ n: 8417 })).toEqual({ n: 8417 });
  });

  it('* is a key like the digits', () => {
    const r = new Redactor();
    r.add('12*4', 'masked');
    expect(r.text('code 12*4')).toBe('code xxxx');
  });
});

// The call result (src/flow/interpreter.ts) keeps masked and hidden input out wherever it would show
// it: the tracking data payload goes into call records and `dialflow campaign report`, variables and
// warnings into the result the Web UI shows through the codec server. They are redacted as
// `dialflow simulate` shows them: masked digits as `xxxx`, hidden ones as `(hidden)`; the collect's own
// variable and the trail's input are masked whole or left out.
describe('masked and hidden input in the call result', () => {
  const pinFlow = (reporting: 'masked' | 'hidden') =>
    parseFlow({
      id: 'result-leaks',
      version: 1,
      start: 'call',
      variables: { pin: { type: 'string' } },
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'ask' } },
        { id: 'ask', type: 'collect', maxDigits: 4, reporting, saveTo: 'pin', next: { noMatch: 'copy' } },
        { id: 'copy', type: 'setVariable', variable: 'copy', value: 'vars.pin', next: 'broken' },
        { id: 'broken', type: 'setVariable', variable: 'n', value: "$number('x' & vars.pin)", next: 'bye' },
        { id: 'bye', type: 'hangUp', next: 'again' },
        {
          id: 'again',
          type: 'startOutgoingCall',
          from: '+14155550100',
          tracking: { dataPayload: { pin: '{{vars.pin}}', who: '{{recipient.id}}' } },
          next: {},
        },
      ],
    });

  /** The call: answered, 8417 typed at the collect, then the second call's dial busy. */
  async function result(reporting: 'masked' | 'hidden' = 'masked'): Promise<CallResult> {
    const flow = pinFlow(reporting);
    let state = initialState({
      workflowId: 'call:c:r',
      recipient: { id: 'r', phone: '+385915550000' },
      seed: 1,
      flow,
    });
    let at = 1;
    let commands: FlowCommand[] = [];
    const apply = async (event: FlowEvent) => {
      ({ state, commands } = await step(flow, state, event));
    };
    const sent = (action: string) =>
      commands.flatMap((c) => (c.kind === 'telephony' && c.command.action === action ? [c.command.commandId] : []))[0];
    const telephony = (type: TelephonyEventType, properties: Record<string, unknown>) =>
      apply({
        type: 'telephony',
        at: at++,
        event: { id: `${type}-${at}`, type, callId: state.callId ?? '', timestamp: '', properties },
      });
    await apply({ type: 'start', at: at++ });
    await telephony('CALL_ESTABLISHED', { commandId: sent('dial') });
    await telephony('DTMF_CAPTURED', { commandId: sent('captureDtmf'), dtmf: '8417' });
    await telephony('CALL_FAILED', { commandId: sent('dial'), errorCode: 'BUSY' });
    if (!state.result) throw new Error('the call did not finish');
    // What the workflow records is the result the finish command carries.
    const finish = commands.find((c) => c.kind === 'finish');
    expect(finish?.kind === 'finish' ? finish.result : undefined).toEqual(state.result);
    return state.result;
  }

  it('(the call runs as described)', async () => {
    expect(await result()).toMatchObject({
      outcome: 'busy',
      dials: 2,
      trail: [
        { element: 'call', branch: 'answered' },
        { element: 'ask', branch: 'noMatch', input: 'xxxx' },
        { element: 'copy', branch: 'next' },
        { element: 'broken', branch: 'next' },
        { element: 'again', branch: 'busy' },
      ],
    });
  });
  it('the tracking data payload (call records, campaign report)', async () => {
    expect(JSON.stringify((await result()).dataPayload)).not.toContain('8417');
    expect((await result()).dataPayload).toEqual({ pin: 'xxxx', who: 'r' });
  });
  it('a variable copied from the masked one', async () => {
    expect(JSON.stringify((await result()).variables)).not.toContain('8417');
    expect((await result()).variables).toEqual({ pin: 'xxxx', copy: 'xxxx' });
  });
  it("an expression's error message in the warnings", async () => {
    const { warnings } = await result();
    expect(JSON.stringify(warnings)).not.toContain('8417');
    expect(warnings).toEqual([{ element: 'broken', message: expect.stringContaining('xxxxx') as string }]);
  });
  it('hidden input: left out where the result shows the input itself, a note in its place elsewhere', async () => {
    const hidden = await result('hidden');
    expect(JSON.stringify(hidden)).not.toContain('8417');
    expect(hidden.trail[1]).toEqual({ element: 'ask', branch: 'noMatch' });
    expect(hidden.variables).toEqual({ copy: '(hidden)' });
    expect(hidden.dataPayload).toEqual({ pin: '(hidden)', who: 'r' });
    expect(hidden.warnings).toEqual([{ element: 'broken', message: expect.stringContaining('"x(hidden)"') as string }]);
  });
});
