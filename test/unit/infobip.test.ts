// The Infobip adapter without NATS: the error-code table, the event mapping, the API client's
// pacing, retries and errors against a local HTTP server.
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { ERROR_CODES } from '../../src/telephony/contract.js';
import {
  INFOBIP_ERROR_CODE_MAP,
  mapErrorCode,
  mapInfobipEvent,
  webhookEventId,
  InvalidWebhookError,
  infobipEnvelopeSchema,
  type CallResolver,
} from '../../src/telephony/infobip/events.js';
import {
  backoffMs,
  endpointFor,
  InfobipClient,
  InfobipRequestError,
  InfobipUnavailableError,
  retryAfterMs,
  TokenBucket,
} from '../../src/telephony/infobip/client.js';
import { commandSchema, infobipLanguage } from '../../src/telephony/infobip/provider.js';
import { memoOf, typedDigits } from '../../src/telephony/infobip/actions.js';
import {
  InfobipCallMap,
  type CommandRecord,
  type DialRecord,
  type InfobipIdRecord,
  type MediaAction,
  type PendingRecording,
} from '../../src/telephony/infobip/calls.js';
import type { KV, KvEntry } from '@nats-io/kv';
import { JetStreamApiError } from '@nats-io/jetstream';
import { errors } from '@nats-io/transport-node';

// Infobip's CallsErrorCode values (infobip-api-java-client) and the code each must become.
const EXPECTED: Array<[string, string]> = [
  ['NORMAL_HANGUP', 'NORMAL_HANGUP'],
  ['MACHINE_DETECTED', 'MACHINE_DETECTED'],
  ['NO_ANSWER', 'NO_ANSWER'],
  ['BUSY', 'BUSY'],
  ['CANCELLED', 'NORMAL_HANGUP'],
  ['REJECTED', 'REJECTED'],
  ['FORBIDDEN', 'REJECTED'],
  ['DESTINATION_NOT_FOUND', 'UNREACHABLE'],
  ['DESTINATION_UNAVAILABLE', 'UNREACHABLE'],
  ['INVALID_DESTINATION', 'UNREACHABLE'],
  ['INVALID_REQUEST', 'INTERNAL_ERROR'],
  ['REQUEST_TIMEOUT', 'NO_ANSWER'],
  ['SERVICE_UNAVAILABLE', 'NETWORK_ERROR'],
];

class MemResolver implements CallResolver {
  ids = new Map<string, InfobipIdRecord>();
  dialogs = new Map<string, InfobipIdRecord>();
  pending = new Map<string, PendingRecording>();
  media = new Map<string, MediaAction>();
  commands = new Map<string, CommandRecord>();
  dials = new Map<string, DialRecord>();
  async byInfobipId(id: string) {
    return this.ids.get(id);
  }
  async byDialogId(id: string) {
    return this.dialogs.get(id);
  }
  async pendingRecording(callId: string) {
    return this.pending.get(callId);
  }
  async lastMediaAction(callId: string) {
    return this.media.get(callId);
  }
  async command(commandId: string) {
    return this.commands.get(commandId);
  }
  async dial(callId: string) {
    return this.dials.get(callId);
  }
}

const OUR = 'call:camp:r1~1';
const call = (extra: Record<string, unknown> = {}) => ({
  id: 'ib-1',
  endpoint: { type: 'PHONE', phoneNumber: '385911234567' },
  from: '14155550100',
  to: '385911234567',
  direction: 'OUTBOUND',
  state: 'RINGING',
  customData: { callId: OUR, dialCommandId: 'c-dial', commandId: 'c-some-action' },
  externalId: OUR,
  ...extra,
});
const env = (type: string, properties: Record<string, unknown>, callId = 'ib-1') =>
  infobipEnvelopeSchema.parse({ type, callId, timestamp: '2025-01-01T10:00:00.000Z', properties });
const map = (type: string, properties: Record<string, unknown>, r: CallResolver = new MemResolver(), callId?: string) =>
  mapInfobipEvent(env(type, properties, callId), 'h1', r);
const only = async (p: ReturnType<typeof map>) => {
  const m = await p;
  if (m.kind !== 'events') throw new Error(`expected events, got ${m.kind}`);
  expect(m.events).toHaveLength(1);
  return m.events[0]!;
};

describe('Infobip error codes → ours', () => {
  it.each(EXPECTED)('%s → %s', (infobip, ours) => {
    expect((INFOBIP_ERROR_CODE_MAP as Record<string, string>)[infobip]).toBe(ours);
    expect(mapErrorCode(infobip, 'INTERNAL_ERROR')).toBe(ours);
  });
  it('the table covers exactly the API codes, and maps only to codes of our contract', () => {
    expect(Object.keys(INFOBIP_ERROR_CODE_MAP).sort()).toEqual(EXPECTED.map(([k]) => k).sort());
    for (const v of Object.values(INFOBIP_ERROR_CODE_MAP)) expect(ERROR_CODES).toContain(v);
  });
  it('an unknown name is an internal error; no code at all takes the fallback', () => {
    expect(mapErrorCode('SOMETHING_NEW', 'NORMAL_HANGUP')).toBe('INTERNAL_ERROR');
    expect(mapErrorCode(undefined, 'NORMAL_HANGUP')).toBe('NORMAL_HANGUP');
  });
});

describe('Infobip events → our envelope', () => {
  it('CALL_RINGING / CALL_ESTABLISHED find our call id in customData and keep the dial command id', async () => {
    const ev = await only(map('CALL_ESTABLISHED', { call: call({ state: 'ESTABLISHED' }) }));
    expect(ev).toEqual({
      id: 'h1',
      type: 'CALL_ESTABLISHED',
      callId: OUR,
      timestamp: '2025-01-01T10:00:00.000Z',
      properties: { commandId: 'c-dial', infobipCallId: 'ib-1' },
    });
  });

  it('falls back to externalId, then the KV map, and is unresolved otherwise', async () => {
    expect((await only(map('CALL_RINGING', { call: call({ customData: undefined }) }))).callId).toBe(OUR);
    const r = new MemResolver();
    r.ids.set('ib-1', { callId: OUR, commandId: 'c-dial' });
    expect(
      (await only(map('CALL_RINGING', { call: call({ customData: undefined, externalId: undefined }) }, r))).callId,
    ).toBe(OUR);
    expect(await map('CALL_RINGING', { call: call({ customData: undefined, externalId: undefined }) })).toEqual({
      kind: 'unresolved',
      infobipId: 'ib-1',
    });
  });

  it('CALL_RECEIVED: Infobip id becomes our call id (inbound routing), with from/to', async () => {
    const m = await map(
      'CALL_RECEIVED',
      {
        call: call({
          id: 'in-7',
          direction: 'INBOUND',
          customData: undefined,
          externalId: undefined,
          from: '385915550777',
          to: '14155550111',
        }),
      },
      new MemResolver(),
      'in-7',
    );
    expect(m).toMatchObject({
      kind: 'events',
      identity: 'in-7',
      events: [{ type: 'CALL_RECEIVED', callId: 'in-7', properties: { from: '385915550777', to: '14155550111' } }],
    });
  });

  it('CALL_FAILED / CALL_FINISHED: errorCode object name and hangupSource', async () => {
    const failed = await only(
      map('CALL_FAILED', {
        callLog: {
          callId: 'ib-1',
          direction: 'OUTBOUND',
          customData: { callId: OUR, dialCommandId: 'c-dial', commandId: 'c-some-action' },
          errorCode: { id: 17, name: 'BUSY', description: 'busy' },
          hangupSource: 'ENDPOINT',
        },
      }),
    );
    expect(failed.properties).toEqual({
      commandId: 'c-dial',
      errorCode: 'BUSY',
      hangupSource: 'ENDPOINT',
      infobipErrorCode: 'BUSY',
      infobipCallId: 'ib-1',
    });
    const finished = await only(map('CALL_FINISHED', { callLog: { callId: 'ib-1', externalId: OUR } }));
    expect(finished.properties).toMatchObject({ errorCode: 'NORMAL_HANGUP', hangupSource: 'PLATFORM' });
  });

  it('an interrupted prompt reports the key; a complete one none', async () => {
    const cut = await only(
      map('SAY_FINISHED', {
        duration: 1200,
        playedCompletely: false,
        capturedDtmf: '2',
        customData: { callId: OUR, commandId: 'c-say' },
      }),
    );
    expect(cut.properties).toMatchObject({ commandId: 'c-say', dtmf: '2', interrupted: true });
    const whole = await only(
      map('PLAY_FINISHED', {
        duration: 3000,
        playedCompletely: true,
        customData: { callId: OUR, commandId: 'c-play' },
      }),
    );
    expect(whole.properties).not.toHaveProperty('dtmf');
    expect(whole.type).toBe('PLAY_FINISHED');
  });

  it('DTMF_CAPTURED: timeout, terminator and maxDigits reasons; "#" is never collected', async () => {
    const cd = { callId: OUR, commandId: 'c-dtmf', maxDigits: '4' };
    expect((await only(map('DTMF_CAPTURED', { dtmf: '', timeout: true, customData: cd }))).properties).toMatchObject({
      dtmf: '',
      reason: 'timeout',
      commandId: 'c-dtmf',
    });
    expect(
      (await only(map('DTMF_CAPTURED', { dtmf: '12#', timeout: false, customData: cd }))).properties,
    ).toMatchObject({ dtmf: '12', reason: 'terminator' });
    expect((await only(map('DTMF_CAPTURED', { dtmf: '12', timeout: false, customData: cd }))).properties).toMatchObject(
      { dtmf: '12', reason: 'terminator' },
    );
    expect(
      (await only(map('DTMF_CAPTURED', { dtmf: '1234', timeout: false, customData: cd }))).properties,
    ).toMatchObject({ dtmf: '1234', reason: 'maxDigits' });
  });

  it('MACHINE_DETECTION_FINISHED maps; a failed detection counts as a person', async () => {
    const r = new MemResolver();
    r.ids.set('ib-1', { callId: OUR, commandId: 'c-dial' });
    expect(
      (
        await only(
          map('MACHINE_DETECTION_FINISHED', { detectionResult: 'MACHINE', confidenceRating: { MACHINE: 0.9 } }, r),
        )
      ).properties,
    ).toMatchObject({ detectionResult: 'MACHINE', commandId: 'c-dial' });
    expect((await only(map('MACHINE_DETECTION_FAILED', { reason: 'no audio' }, r))).properties).toMatchObject({
      detectionResult: 'HUMAN',
      failed: true,
    });
  });

  it('CALL_RECORDING_READY: a voicemail (its command) and the whole call get distinct ids', async () => {
    const r = new MemResolver();
    r.ids.set('ib-1', { callId: OUR });
    r.pending.set(OUR, { commandId: 'c-rec', name: 'reminder-r1' });
    const m = await map(
      'CALL_RECORDING_READY',
      { recording: { callId: 'ib-1', files: [{ id: 'f1', fileFormat: 'WAV', duration: 7 }] } },
      r,
    );
    expect(m).toMatchObject({
      kind: 'events',
      recordings: [{ fileId: 'f1', id: `${OUR}:c-rec`, name: 'reminder-r1', durationMs: 7000, voicemail: true }],
      events: [
        {
          type: 'CALL_RECORDING_READY',
          callId: OUR,
          properties: { commandId: 'c-rec', recordingId: `${OUR}:c-rec`, name: 'reminder-r1', durationMs: 7000 },
        },
      ],
    });
    const whole = await map(
      'CALL_RECORDING_READY',
      { recording: { callId: 'ib-1', files: [{ id: 'f2', duration: 30, customData: { callId: OUR, kind: 'call' } }] } },
      r,
    );
    expect(whole).toMatchObject({
      kind: 'events',
      recordings: [{ id: `${OUR}:call`, name: 'call', voicemail: false }],
      events: [{ properties: { recordingId: `${OUR}:call`, name: 'call' } }],
    });
    if (whole.kind === 'events') expect(whole.events[0]!.properties).not.toHaveProperty('commandId');
  });

  it('a forward leg: DIALOG_FAILED and the child call map to the leg id', async () => {
    const r = new MemResolver();
    r.dialogs.set('dlg-1', { callId: `${OUR}.f1`, commandId: 'c-fwd' });
    const failed = await only(
      map(
        'DIALOG_FAILED',
        {
          dialog: { id: 'dlg-1', state: 'FAILED' },
          errorCode: { id: 1, name: 'NO_ANSWER', description: '' },
          hangupSource: 'CHILD_ENDPOINT',
        },
        r,
        '',
      ),
    );
    expect(failed).toMatchObject({
      type: 'CALL_FAILED',
      callId: `${OUR}.f1`,
      properties: { errorCode: 'NO_ANSWER', hangupSource: 'ENDPOINT', commandId: 'c-fwd' },
    });
    const child = await only(
      map(
        'CALL_ESTABLISHED',
        { call: call({ id: 'ib-child', customData: undefined, externalId: undefined, dialogId: 'dlg-1' }) },
        r,
        'ib-child',
      ),
    );
    expect(child.callId).toBe(`${OUR}.f1`);
  });

  it('unknown types, ignored types, ERROR and malformed properties', async () => {
    expect(await map('SOMETHING_NEW', {})).toEqual({ kind: 'unknownType' });
    expect((await map('CALL_PRE_ESTABLISHED', { call: call() })).kind).toBe('ignored');
    // An ERROR nobody can tie to a command (unknown call, no prompt recorded) is only logged.
    expect(
      (await map('ERROR', { actionType: 'PLAY', errorCode: 'FILE_CAN_NOT_BE_PLAYED', errorDetails: 'bad file' })).kind,
    ).toBe('error');
    await expect(map('DTMF_CAPTURED', { dtmf: 5 })).rejects.toBeInstanceOf(InvalidWebhookError);
    await expect(map('CALL_FAILED', { callLog: { errorCode: 'BUSY' } })).rejects.toBeInstanceOf(InvalidWebhookError);
  });

  it('ERROR of a prompt or capture becomes the outcome the flow waits for, on the last command of that kind', async () => {
    const r = new MemResolver();
    r.ids.set('ib-1', { callId: OUR, commandId: 'c-dial' });
    r.media.set(OUR, { action: 'play', commandId: 'c-play' });
    const play = await map(
      'ERROR',
      { actionType: 'PLAY', errorCode: 'FILE_CAN_NOT_BE_PLAYED', errorDetails: 'Unable to play file' },
      r,
    );
    expect(play).toMatchObject({ kind: 'events', warning: expect.stringContaining('FILE_CAN_NOT_BE_PLAYED') });
    if (play.kind !== 'events') throw new Error('expected events');
    expect(play.events).toEqual([
      {
        id: 'h1',
        type: 'PLAY_FINISHED',
        callId: OUR,
        timestamp: '2025-01-01T10:00:00.000Z',
        properties: {
          commandId: 'c-play',
          failed: true,
          infobipErrorCode: 'FILE_CAN_NOT_BE_PLAYED',
          infobipCallId: 'ib-1',
        },
      },
    ]);
    r.media.set(OUR, { action: 'say', commandId: 'c-say' });
    expect((await only(map('ERROR', { actionType: 'SAY', errorCode: 'TTS_FAILED' }, r))).properties).toMatchObject({
      commandId: 'c-say',
      failed: true,
    });
    expect((await only(map('ERROR', { actionType: 'SAY' }, r))).type).toBe('SAY_FINISHED');
    r.media.set(OUR, { action: 'captureDtmf', commandId: 'c-dtmf' });
    expect(await only(map('ERROR', { actionType: 'CAPTURE_DTMF', errorCode: 'X' }, r))).toMatchObject({
      type: 'DTMF_CAPTURED',
      properties: { commandId: 'c-dtmf', dtmf: '', reason: 'error', failed: true },
    });
    // The last command is of another kind (the failing one is long done): nothing is invented.
    expect((await map('ERROR', { actionType: 'PLAY', errorCode: 'X' }, r)).kind).toBe('error');
    // Actions a flow never waits on are only logged.
    expect((await map('ERROR', { actionType: 'SEND_DTMF', errorCode: 'X' }, r)).kind).toBe('error');
  });

  it('a prompt with a follow-up: its end is held and names the follow-up, with the keys that stopped it', async () => {
    const r = new MemResolver();
    const capture = {
      action: 'captureDtmf' as const,
      callId: OUR,
      commandId: 'c-ask',
      elementId: 'ask',
      maxDigits: 3,
      terminator: '#' as const,
      firstDigitTimeoutMs: 5000,
      interDigitTimeoutMs: 3000,
    };
    r.commands.set('c-say', { state: 'sent', holdEvents: ['SAY_FINISHED'], interruptible: true, then: capture });
    const m = await map('SAY_FINISHED', {
      duration: 800,
      playedCompletely: false,
      capturedDtmf: '4',
      customData: { callId: OUR, commandId: 'c-say' },
    });
    expect(m.kind).toBe('events');
    const held = await map(
      'SAY_FINISHED',
      { duration: 800, playedCompletely: false, capturedDtmf: '4', customData: { callId: OUR, commandId: 'c-say' } },
      r,
    );
    if (held.kind !== 'events') throw new Error('expected events');
    expect(held.events[0]!.properties).toMatchObject({ commandId: 'c-say', dtmf: '4', interrupted: true, hold: true });
    expect(held.followUp).toEqual({
      callId: OUR,
      promptCommandId: 'c-say',
      command: capture,
      typed: '4',
      at: '2025-01-01T10:00:00.000Z',
    });
    // Without a record (an older adapter's prompt) nothing is held and nothing follows.
    if (m.kind === 'events') {
      expect(m.events[0]!.properties).not.toHaveProperty('hold');
      expect(m.followUp).toBeUndefined();
    }
    // Keys reported for a prompt that was not interruptible are dropped, not typed ahead.
    r.commands.set('c-play', { state: 'sent', interruptible: false, then: { ...capture, commandId: 'c-ask2' } });
    const quiet = await map(
      'PLAY_FINISHED',
      { duration: 800, playedCompletely: true, capturedDtmf: '9', customData: { callId: OUR, commandId: 'c-play' } },
      r,
    );
    if (quiet.kind !== 'events') throw new Error('expected events');
    expect(quiet.events[0]!.properties).not.toHaveProperty('dtmf');
    expect(quiet.events[0]!.properties).not.toHaveProperty('hold');
    expect(quiet.followUp).toMatchObject({ typed: '', command: { commandId: 'c-ask2' } });
  });

  it('a prompt that failed (ERROR) still runs its follow-up', async () => {
    const r = new MemResolver();
    r.ids.set('ib-1', { callId: OUR, commandId: 'c-dial' });
    r.media.set(OUR, { action: 'play', commandId: 'c-play' });
    const hangup = { action: 'hangup' as const, callId: OUR, commandId: 'c-end', elementId: 'end' };
    r.commands.set('c-play', { state: 'sent', holdEvents: ['PLAY_FINISHED'], interruptible: false, then: hangup });
    const m = await map('ERROR', { actionType: 'PLAY', errorCode: 'FILE_CAN_NOT_BE_PLAYED' }, r);
    if (m.kind !== 'events') throw new Error('expected events');
    expect(m.events[0]!.properties).toMatchObject({ commandId: 'c-play', failed: true, hold: true });
    expect(m.followUp).toMatchObject({ command: hangup, typed: '', promptCommandId: 'c-play' });
  });

  it("a follow-up capture's DTMF_CAPTURED puts the keys typed into the prompt in front", async () => {
    const cd = { callId: OUR, commandId: 'c-ask', maxDigits: '3', typed: '4' };
    expect((await only(map('DTMF_CAPTURED', { dtmf: '56', timeout: false, customData: cd }))).properties).toMatchObject(
      { commandId: 'c-ask', dtmf: '456', reason: 'maxDigits' },
    );
    expect((await only(map('DTMF_CAPTURED', { dtmf: '5#', timeout: false, customData: cd }))).properties).toMatchObject(
      { dtmf: '45', reason: 'terminator' },
    );
    expect((await only(map('DTMF_CAPTURED', { dtmf: '', timeout: true, customData: cd }))).properties).toMatchObject({
      dtmf: '4',
      reason: 'timeout',
    });
    // A capture of its own sends `typed: ''`, which replaces an earlier capture's in the merged customData.
    expect(
      (await only(map('DTMF_CAPTURED', { dtmf: '7', timeout: false, customData: { ...cd, typed: '' } }))).properties,
    ).toMatchObject({ dtmf: '7' });
  });

  it("held events: the dial's CALL_ESTABLISHED and a command's events of the listed types only", async () => {
    const r = new MemResolver();
    r.dials.set(OUR, { state: 'created', commandId: 'c-dial', holdEvents: ['CALL_ESTABLISHED'], at: 'x' });
    expect((await only(map('CALL_ESTABLISHED', { call: call({ state: 'ESTABLISHED' }) }, r))).properties).toEqual({
      commandId: 'c-dial',
      hold: true,
      infobipCallId: 'ib-1',
    });
    expect((await only(map('CALL_RINGING', { call: call() }, r))).properties).not.toHaveProperty('hold');
    // Another dial of the same call id (a record that is not this event's command) marks nothing.
    r.dials.set(OUR, { state: 'created', commandId: 'c-other', holdEvents: ['CALL_ESTABLISHED'], at: 'x' });
    expect(
      (await only(map('CALL_ESTABLISHED', { call: call({ state: 'ESTABLISHED' }) }, r))).properties,
    ).not.toHaveProperty('hold');
    r.commands.set('c-dtmf', { state: 'sent', holdEvents: ['DTMF_CAPTURED'] });
    expect(
      (
        await only(
          map(
            'DTMF_CAPTURED',
            {
              dtmf: '1',
              timeout: false,
              customData: { callId: OUR, commandId: 'c-dtmf', maxDigits: '1' },
            },
            r,
          ),
        )
      ).properties,
    ).toMatchObject({ dtmf: '1', hold: true });
  });

  it('the event id is a hash of the raw body', () => {
    expect(webhookEventId('{"a":1}')).toBe(webhookEventId(Buffer.from('{"a":1}')));
    expect(webhookEventId('{"a":1}')).not.toBe(webhookEventId('{"a": 1}'));
    expect(webhookEventId('x')).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('commands → request parts', () => {
  it('destinations: E.164 → PHONE digits, sip: → SIP with the trunk, webrtc: → WEBRTC', () => {
    expect(endpointFor('+385 91 123 4567')).toEqual({ type: 'PHONE', phoneNumber: '385911234567' });
    expect(endpointFor('sip:1001@pbx.example.com', 'trunk-1')).toEqual({
      type: 'SIP',
      username: '1001',
      sipTrunkId: 'trunk-1',
    });
    expect(endpointFor('webrtc:agent-7')).toEqual({ type: 'WEBRTC', identity: 'agent-7' });
  });
  it('languages fall back to the base language Infobip knows', () => {
    expect(infobipLanguage('en')).toBe('en');
    expect(infobipLanguage('en-GB')).toBe('en-gb');
    expect(infobipLanguage('en-US')).toBe('en');
    expect(infobipLanguage('hr_HR')).toBe('hr');
  });
  it('the command schema refuses what is not a command', () => {
    expect(
      commandSchema.safeParse({
        action: 'dial',
        callId: 'a~1',
        commandId: 'c',
        elementId: 'e',
        from: '1',
        to: '2',
        recordCall: false,
        machineDetection: false,
        attempt: 1,
      }).success,
    ).toBe(true);
    expect(commandSchema.safeParse({ action: 'dance', callId: 'a~1', commandId: 'c', elementId: 'e' }).success).toBe(
      false,
    );
    expect(
      commandSchema.safeParse({
        action: 'captureDtmf',
        callId: 'a~1',
        commandId: 'c',
        elementId: 'e',
        maxDigits: 0,
        terminator: '#',
        firstDigitTimeoutMs: 1,
        interDigitTimeoutMs: 1,
      }).success,
    ).toBe(false);
  });
});

describe('prompt follow-ups and held events at the edge', () => {
  const say = {
    action: 'say',
    callId: 'a~1',
    commandId: 'c1',
    elementId: 'menu',
    text: 'Press 1',
    language: 'en',
    voice: 'female',
    speechRate: 1,
    pauseMs: 0,
    interruptible: true,
    holdEvents: ['SAY_FINISHED'],
  };
  const capture = {
    action: 'captureDtmf',
    callId: 'a~1',
    commandId: 'c2',
    elementId: 'ask',
    maxDigits: 2,
    terminator: '#',
    firstDigitTimeoutMs: 5000,
    interDigitTimeoutMs: 3000,
  };
  it('the command schema takes holdEvents and a follow-up, and checks both', () => {
    expect(commandSchema.safeParse({ ...say, then: capture }).success).toBe(true);
    expect(
      commandSchema.safeParse({ ...say, then: { action: 'hangup', callId: 'a~1', commandId: 'c2', elementId: 'e' } })
        .success,
    ).toBe(true);
    expect(commandSchema.safeParse({ ...say, holdEvents: ['SOMETHING'] }).success).toBe(false);
    // Only a capture or a hang-up can follow a prompt, on the same call, under its own command id.
    expect(commandSchema.safeParse({ ...say, then: { ...say, commandId: 'c2' } }).success).toBe(false);
    expect(commandSchema.safeParse({ ...say, then: { ...capture, maxDigits: 0 } }).success).toBe(false);
    expect(commandSchema.safeParse({ ...say, then: { ...capture, callId: 'b~1' } }).success).toBe(false);
    expect(commandSchema.safeParse({ ...say, then: { ...capture, commandId: 'c1' } }).success).toBe(false);
  });
  it("keys typed into a prompt as a capture's first digits", () => {
    expect(typedDigits('', 3)).toEqual({ prefix: '', complete: false, reason: 'terminator' });
    expect(typedDigits('4', 3)).toEqual({ prefix: '4', complete: false, reason: 'terminator' });
    expect(typedDigits('4', 1)).toEqual({ prefix: '4', complete: true, reason: 'maxDigits' });
    expect(typedDigits('#', 3)).toEqual({ prefix: '', complete: true, reason: 'terminator' });
    expect(typedDigits('12#', 2)).toEqual({ prefix: '12', complete: true, reason: 'maxDigits' });
    expect(typedDigits('123', 2)).toEqual({ prefix: '12', complete: true, reason: 'maxDigits' });
  });
  it("a command's record keeps what its webhooks need", () => {
    expect(memoOf({ ...say, then: capture } as never)).toEqual({
      holdEvents: ['SAY_FINISHED'],
      interruptible: true,
      then: capture,
    });
    expect(memoOf(capture as never)).toEqual({});
  });
});

describe('claims in the shared KV', () => {
  /** A bucket whose `create` stores the value and then loses the answer (a timeout) once. */
  function lossyKv(): KV {
    const store = new Map<string, { value: string; revision: number }>();
    let rev = 0;
    let lose = true;
    const entry = (key: string, v: { value: string; revision: number }) =>
      ({
        key,
        revision: v.revision,
        operation: 'PUT',
        string: () => v.value,
        json: () => JSON.parse(v.value) as unknown,
      }) as unknown as KvEntry;
    return {
      async create(key: string, value: string) {
        if (store.has(key))
          throw new JetStreamApiError({ code: 400, err_code: 10071, description: 'wrong last sequence: 1' });
        store.set(key, { value, revision: ++rev });
        if (lose) {
          lose = false;
          throw new errors.TimeoutError();
        }
        return rev;
      },
      async get(key: string) {
        const v = store.get(key);
        return v ? entry(key, v) : null;
      },
    } as unknown as KV;
  }

  it('a claim whose create answer was lost is still ours; a second claimant is refused', async () => {
    const calls = InfobipCallMap.fromKv(lossyKv());
    expect(await calls.claimDial(OUR, 'c-dial')).toMatchObject({ claimed: true });
    expect(await calls.claimDial(OUR, 'c-dial')).toMatchObject({
      claimed: false,
      existing: { state: 'creating', commandId: 'c-dial' },
    });
    expect(await calls.claimCommand('c-say')).toMatchObject({ claimed: true });
  });
});

describe('pacing and back-off', () => {
  it('the token bucket spaces reservations by 1/rate, and a Retry-After pushes them back', () => {
    let now = 1000;
    const b = new TokenBucket(5, 1, () => now);
    expect([b.reserve(), b.reserve(), b.reserve()]).toEqual([0, 200, 400]);
    now += 1000;
    expect(b.reserve()).toBe(0);
    b.pauseUntil(now + 3000);
    expect(b.reserve()).toBe(3000);
  });
  it('Retry-After in seconds or as a date; full-jitter back-off is bounded', () => {
    expect(retryAfterMs('2')).toBe(2000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4000)).toBe(6000);
    expect(retryAfterMs(null)).toBeUndefined();
    const policy = { attempts: 5, baseMs: 100, maxMs: 1000, maxRetryAfterMs: 1000 };
    expect(backoffMs(3, policy, () => 1)).toBe(800);
    expect(backoffMs(10, policy, () => 1)).toBe(1000);
    expect(backoffMs(10, policy, () => 0)).toBe(0);
  });
});

describe('the API client against a local server', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });
  async function serve(handler: (req: IncomingMessage, body: string, res: ServerResponse) => void): Promise<string> {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => handler(req, body, res));
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    return `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
  }
  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };

  it('sends App authorization and JSON, and paces to the configured rate', async () => {
    const seen: Array<{ at: number; auth: string | undefined; type: string | undefined; body: string }> = [];
    const url = await serve((req, body, res) => {
      seen.push({ at: Date.now(), auth: req.headers.authorization, type: req.headers['content-type'], body });
      json(res, 200, { status: 'PENDING' });
    });
    const client = new InfobipClient({ baseUrl: url, apiKey: 'k-123', requestsPerSecond: 20 });
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: 11 }, (_, i) =>
        client.say(`c${i}`, { text: 'hi', language: 'en', customData: { commandId: String(i) } }),
      ),
    );
    const elapsed = Date.now() - t0;
    // 11 requests at 20/s: the last one leaves 10 × 50 ms after the first.
    expect(elapsed).toBeGreaterThanOrEqual(480);
    expect(seen).toHaveLength(11);
    expect(seen[0]).toMatchObject({ auth: 'App k-123', type: 'application/json' });
    expect(JSON.parse(seen[0]!.body)).toMatchObject({ text: 'hi', language: 'en' });
    // Request i may not leave before its slot (i × 50 ms); a few ms of timer slack allowed.
    for (const [i, s] of seen.entries()) expect(s.at - t0).toBeGreaterThanOrEqual(i * 50 - 5);
  });

  it('retries 429 honouring Retry-After, and 5xx of idempotent requests, counting retries', async () => {
    let n = 0;
    const url = await serve((_req, _body, res) => {
      n += 1;
      if (n === 1)
        return json(
          res,
          429,
          { requestError: { serviceException: { messageId: 'TOO_MANY_REQUESTS', text: 'slow down' } } },
          { 'Retry-After': '0.3' },
        );
      if (n === 2) return json(res, 502, {});
      json(res, 200, { status: 'PENDING' });
    });
    const registry = new Registry();
    const client = new InfobipClient({
      baseUrl: url,
      apiKey: 'k',
      requestsPerSecond: 100,
      registry,
      retry: { baseMs: 10, maxMs: 50 },
    });
    const t0 = Date.now();
    await expect(
      client.play('c1', { content: { type: 'URL', fileUrl: 'https://example.com/a.wav' } }),
    ).resolves.toEqual({ status: 'PENDING' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(n).toBe(3);
    const text = await registry.metrics();
    expect(text).toMatch(
      /dialflow_infobip_retries_total\{endpoint="POST \/calls\/1\/calls\/\{callId\}\/play",reason="429"\} 1/,
    );
    expect(text).toMatch(
      /dialflow_infobip_requests_total\{endpoint="POST \/calls\/1\/calls\/\{callId\}\/play",status="200"\} 1/,
    );
  });

  it('a 4xx is a named error without retry; a 500 on create call is ambiguous and not repeated', async () => {
    let n = 0;
    const url = await serve((req, _body, res) => {
      n += 1;
      if (req.url === '/calls/1/calls') return json(res, 500, {});
      json(res, 400, { requestError: { serviceException: { messageId: 'BAD_REQUEST', text: 'language: invalid' } } });
    });
    const client = new InfobipClient({
      baseUrl: url,
      apiKey: 'k',
      requestsPerSecond: 100,
      retry: { baseMs: 1, maxMs: 5 },
    });
    const err = await client.say('c1', { text: 'x', language: 'xx' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfobipRequestError);
    expect((err as InfobipRequestError).status).toBe(400);
    expect((err as Error).message).toContain('language: invalid');
    expect(n).toBe(1);
    const amb = await client
      .createCall({ endpoint: { type: 'PHONE', phoneNumber: '385911234567' }, from: '1', callsConfigurationId: 'cfg' })
      .catch((e: unknown) => e);
    expect(amb).toBeInstanceOf(InfobipUnavailableError);
    expect((amb as InfobipUnavailableError).ambiguous).toBe(true);
    expect(n).toBe(2);
  });

  it('a Retry-After beyond the bound fails at once instead of stalling every request', async () => {
    let n = 0;
    const url = await serve((_req, _body, res) => {
      n += 1;
      json(
        res,
        429,
        { requestError: { serviceException: { messageId: 'TOO_MANY_REQUESTS', text: 'quota' } } },
        { 'Retry-After': '3600' },
      );
    });
    const client = new InfobipClient({
      baseUrl: url,
      apiKey: 'k',
      requestsPerSecond: 100,
      retry: { baseMs: 1, maxMs: 5, maxRetryAfterMs: 2000 },
    });
    const t0 = Date.now();
    const err = await client
      .createCall({ endpoint: { type: 'PHONE', phoneNumber: '385911234567' }, from: '1', callsConfigurationId: 'cfg' })
      .catch((e: unknown) => e);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(err).toBeInstanceOf(InfobipUnavailableError);
    // A 429 was not processed: no call exists, the dial may be retried.
    expect((err as InfobipUnavailableError).ambiguous).toBe(false);
    expect(n).toBe(1);
    // The bucket was not pushed an hour back either.
    expect(client.bucket.reserve()).toBeLessThan(100);
  });

  it('a 2xx to create call whose body cannot be read is ambiguous (the call may exist), not a plain error', async () => {
    const url = await serve((_req, _body, res) => {
      res.writeHead(201, { 'Content-Type': 'application/json' });
      res.end('{"id": "ib-1", "sta');
    });
    const client = new InfobipClient({ baseUrl: url, apiKey: 'k', requestsPerSecond: 100 });
    const err = await client
      .createCall({ endpoint: { type: 'PHONE', phoneNumber: '385911234567' }, from: '1', callsConfigurationId: 'cfg' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfobipUnavailableError);
    expect((err as InfobipUnavailableError).ambiguous).toBe(true);
  });

  it('never puts the API key in an error message', async () => {
    const url = await serve((req, _body, res) =>
      json(res, 400, {
        requestError: {
          serviceException: {
            messageId: 'BAD_REQUEST',
            text: `bad request from ${req.headers.authorization ?? ''}`.slice(0, 12),
          },
        },
      }),
    );
    const client = new InfobipClient({ baseUrl: url, apiKey: 'super-secret-key', requestsPerSecond: 100 });
    const err = (await client.say('c1', { text: 'x', language: 'en' }).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(InfobipRequestError);
    expect(`${err.message} ${JSON.stringify(err)}`).not.toContain('super-secret-key');
    const refused = (await new InfobipClient({
      baseUrl: 'http://127.0.0.1:1',
      apiKey: 'super-secret-key',
      requestsPerSecond: 100,
      retry: { attempts: 1 },
    })
      .getCall('x')
      .catch((e: unknown) => e)) as Error;
    expect(refused).toBeInstanceOf(InfobipUnavailableError);
    expect(refused.message).not.toContain('super-secret-key');
  });

  it('gives up after the configured attempts with a named error', async () => {
    const url = await serve((_req, _body, res) => json(res, 503, {}));
    const client = new InfobipClient({
      baseUrl: url,
      apiKey: 'k',
      requestsPerSecond: 1000,
      retry: { attempts: 3, baseMs: 1, maxMs: 5 },
    });
    const err = await client
      .createCall({ endpoint: { type: 'PHONE', phoneNumber: '385911234567' }, from: '1', callsConfigurationId: 'cfg' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InfobipUnavailableError);
    expect((err as InfobipUnavailableError).ambiguous).toBe(false);
  });

  it('downloads a recording as bytes', async () => {
    const url = await serve((_req, _body, res) => {
      res.writeHead(200, { 'Content-Type': 'audio/wav' });
      res.end(Buffer.from('RIFF....WAVE'));
    });
    const client = new InfobipClient({ baseUrl: url, apiKey: 'k', requestsPerSecond: 100 });
    const file = await client.downloadRecordingFile('f1');
    expect(file.contentType).toBe('audio/wav');
    expect(Buffer.from(file.data).toString()).toBe('RIFF....WAVE');
  });
});
