// Actions on a live call (everything but the dial): one Calls API request per command id. Shared
// by the command side (provider.ts, commands from NATS) and the webhook ingress (webhooks.ts),
// which runs a prompt's follow-up when the prompt's *_FINISHED webhook arrives: Infobip has no
// "then", and both paths must be the same exactly-once path so that a follow-up the workflow later
// re-sends on its own is recognised as done.
import type { CaptureDtmfCommand, CommandAck, PromptFollowUp, TelephonyCommand, TelephonyEvent } from '../contract.js';
import { holdMark } from '../contract.js';
import {
  endpointFor,
  InfobipRequestError,
  InfobipUnavailableError,
  phoneDigits,
  type InfobipClient,
  type PlayContent,
} from './client.js';
import type { CommandMemo, InfobipCallMap } from './calls.js';

/** CallsLanguage values of the official model: a language outside it is refused by the API. */
export const INFOBIP_LANGUAGES = new Set([
  'ar',
  'ar-ma',
  'bg',
  'bn',
  'ca',
  'cs',
  'da',
  'de',
  'de-at',
  'de-ch',
  'el',
  'en',
  'en-au',
  'en-ca',
  'en-gb',
  'en-gb-wls',
  'en-ie',
  'en-in',
  'es',
  'es-ar',
  'es-mx',
  'fi',
  'fil-ph',
  'fr',
  'fr-ca',
  'fr-ch',
  'gu',
  'he',
  'hi',
  'hr',
  'hu',
  'id',
  'is',
  'it',
  'ja',
  'kk-kz',
  'kn',
  'ko',
  'ml',
  'mr-in',
  'ms',
  'nl',
  'no',
  'pl',
  'pt-br',
  'pt-pt',
  'ro',
  'ru',
  'sk',
  'sl',
  'sv',
  'sw-ke',
  'sw-tz',
  'ta',
  'te',
  'th',
  'tr',
  'uk',
  'ur-pk',
  'uz-uz',
  'vi',
  'wls',
  'zh-cn',
  'zh-tw',
]);

/** `en-US` → `en` when Infobip has no such regional voice; unknown languages pass (and are refused). */
export function infobipLanguage(lang: string): string {
  const l = lang.toLowerCase().replace(/_/g, '-');
  if (INFOBIP_LANGUAGES.has(l)) return l;
  const base = l.split('-')[0] ?? l;
  return INFOBIP_LANGUAGES.has(base) ? base : l;
}

/** A command we cannot carry out as asked (bad destination, missing setting): not retryable. */
export class UnsupportedCommandError extends Error {
  override readonly name = 'UnsupportedCommandError';
}

/** Outcome of handling one command: a reply, or none so the requester retries after its timeout. */
export type Outcome = CommandAck | 'retry';

export type ActionCommand = Exclude<TelephonyCommand, { action: 'dial' }>;

/** A prompt's follow-up to run now: the prompt `promptCommandId` ended at `at`, stopped by `typed` keys (if any). */
export interface FollowUpToRun {
  callId: string;
  promptCommandId: string;
  command: PromptFollowUp;
  /** Keys that interrupted the prompt, as Infobip reported them (a `#` included); '' if none. */
  typed: string;
  /** The prompt's end (its event's timestamp). */
  at: string;
}

/** The seed's longest pause before a prompt. */
const MAX_PAUSE_MS = 5_000;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** What a command's record keeps for its webhooks (see CommandMemo). */
export function memoOf(cmd: TelephonyCommand): CommandMemo {
  return {
    ...(cmd.holdEvents?.length ? { holdEvents: cmd.holdEvents } : {}),
    ...(cmd.action === 'say' || cmd.action === 'play'
      ? { interruptible: cmd.interruptible, ...(cmd.then ? { then: cmd.then } : {}) }
      : {}),
  };
}

/**
 * Keys typed into a prompt, as a capture's first digits: those before a `#` (which ends input and is
 * never collected), at most `maxDigits` of them; `complete` when they already end the capture.
 */
export function typedDigits(
  typed: string,
  maxDigits: number,
): { prefix: string; complete: boolean; reason: 'maxDigits' | 'terminator' } {
  const hash = typed.indexOf('#');
  const prefix = (hash >= 0 ? typed.slice(0, hash) : typed).slice(0, maxDigits);
  const full = prefix.length >= maxDigits;
  return { prefix, complete: full || hash >= 0, reason: full ? 'maxDigits' : 'terminator' };
}

/** Infobip's examples give caller ids as digits; SIP/WebRTC callers keep what the flow says. */
export function callerId(from: string, type: string): string {
  return type === 'PHONE' && /^\+?[0-9][0-9 ()-]*$/.test(from) ? phoneDigits(from) : from;
}

/** The endpoint of a destination, or UnsupportedCommandError when Infobip cannot be asked to call it. */
export function destinationFor(to: string, sipTrunkId: string | undefined) {
  const endpoint = endpointFor(to, sipTrunkId);
  if (endpoint.type === 'SIP' && !endpoint.sipTrunkId)
    throw new UnsupportedCommandError(
      `cannot dial ${to}: SIP destinations need an Infobip SIP trunk id (DIALFLOW_INFOBIP_SIP_TRUNK_ID)`,
    );
  if (endpoint.type === 'PHONE' && !/^[1-9]\d{4,14}$/.test(endpoint.phoneNumber))
    throw new UnsupportedCommandError(`cannot dial "${to}": not a phone number in E.164 format`);
  return endpoint;
}

export interface InfobipActionsOptions {
  client: InfobipClient;
  calls: InfobipCallMap;
  /** Publishes one of our events on JetStream (resolves once it is stored). */
  publish: (ev: TelephonyEvent) => Promise<void>;
  log: (m: string) => void;
  /** SIP trunk for `sip:` forward destinations. */
  sipTrunkId?: string | undefined;
}

export class InfobipActions {
  constructor(private readonly o: InfobipActionsOptions) {}

  /**
   * Carry out `cmd` once per command id: claimed in the shared KV (create-if-absent) before its
   * request, so a redelivery, a second instance or a follow-up already run by the webhook ingress
   * sends nothing twice. `typed`: for a capture that follows a prompt, the keys that stopped it.
   * NATS trouble is thrown (the caller does not answer, so the command comes again).
   */
  async run(cmd: ActionCommand, typed = ''): Promise<Outcome> {
    const { calls, log } = this.o;
    const infobipId = (await calls.infobipIdOf(cmd.callId)) ?? (cmd.callId.includes('~') ? undefined : cmd.callId);
    if (!infobipId) {
      // A command for a call this adapter never placed (or whose record expired): the call is lost.
      await this.o.publish({
        id: `${cmd.callId}:${cmd.commandId}:lost`,
        type: 'CALL_FINISHED',
        callId: cmd.callId,
        timestamp: new Date().toISOString(),
        properties: {
          commandId: cmd.commandId,
          errorCode: 'INTERNAL_ERROR',
          hangupSource: 'PLATFORM',
          reason: 'unknown call',
        },
      });
      return { ok: true };
    }
    const memo = memoOf(cmd);
    const claim = await calls.claimCommand(cmd.commandId, memo);
    if (!claim.claimed)
      return claim.existing.state === 'failed'
        ? { ok: false, error: claim.existing.error ?? 'refused earlier' }
        : { ok: true };
    try {
      await this.send(cmd, infobipId, typed);
      await calls.setCommand(cmd.commandId, { ...memo, state: 'sent' });
      return { ok: true };
    } catch (err) {
      if (err instanceof InfobipRequestError && err.status === 404 && cmd.action !== 'forward') {
        // The call is already gone (hung up meanwhile): its CALL_FINISHED webhook drives the flow.
        await calls.setCommand(cmd.commandId, { ...memo, state: 'sent' });
        log(`${cmd.action} on ${cmd.callId}: the call no longer exists at Infobip`);
        return { ok: true };
      }
      if (err instanceof InfobipRequestError || err instanceof UnsupportedCommandError) {
        await calls.setCommand(cmd.commandId, { ...memo, state: 'failed', error: err.message });
        return { ok: false, error: err.message };
      }
      if (err instanceof InfobipUnavailableError) {
        if (err.ambiguous) {
          // A forward may exist: keep the claim; the flow's forward timeout decides.
          await calls.setCommand(cmd.commandId, { ...memo, state: 'sent' });
          log(`${cmd.action} on ${cmd.callId}: ${err.message}`);
          return { ok: true };
        }
        await calls.releaseCommand(cmd.commandId);
        log(`${cmd.action} on ${cmd.callId}: ${err.message}; the command will be retried`);
        return 'retry';
      }
      throw err;
    }
  }

  /**
   * A prompt ended: run its follow-up as if it had been sent now, through `run` (so its claim makes
   * a redelivered prompt webhook, or the workflow re-sending the follow-up alone, a no-op). Keys that
   * stopped the prompt are the capture's first digits: when they already end it (enough digits, or
   * `#`) its DTMF_CAPTURED is published here and Infobip is not asked at all.
   */
  async runFollowUp(f: FollowUpToRun): Promise<Outcome> {
    const cmd = f.command;
    if (cmd.action === 'captureDtmf') {
      const typed = typedDigits(f.typed, cmd.maxDigits);
      if (typed.complete) return this.captureTyped(f, cmd, typed.prefix, typed.reason);
      const outcome = await this.run(cmd, typed.prefix);
      // A refused capture would leave the flow waiting out its timeout: it ends now, as an ERROR
      // event of a capture does (nothing more pressed).
      if (outcome !== 'retry' && !outcome.ok)
        await this.o.publish({
          id: `${f.callId}:${cmd.commandId}:refused`,
          type: 'DTMF_CAPTURED',
          callId: f.callId,
          timestamp: f.at,
          properties: {
            commandId: cmd.commandId,
            dtmf: typed.prefix,
            reason: 'error',
            failed: true,
            ...holdMark(cmd, 'DTMF_CAPTURED'),
          },
        });
      return outcome;
    }
    return this.run(cmd);
  }

  private async captureTyped(
    f: FollowUpToRun,
    cmd: CaptureDtmfCommand,
    dtmf: string,
    reason: 'maxDigits' | 'terminator',
  ): Promise<Outcome> {
    const { calls } = this.o;
    const memo = memoOf(cmd);
    const claim = await calls.claimCommand(cmd.commandId, memo);
    // 'sent' or 'failed': done before (by an earlier delivery of the prompt's webhook, or by the
    // capture itself sent alone). 'sending' may be an earlier delivery that died before publishing:
    // publishing again is harmless, JetStream drops the repeat by its id.
    if (!claim.claimed && claim.existing.state !== 'sending') return { ok: true };
    await this.o.publish({
      id: `${f.callId}:${cmd.commandId}:typed`,
      type: 'DTMF_CAPTURED',
      callId: f.callId,
      timestamp: f.at,
      properties: { commandId: cmd.commandId, dtmf, reason, ...holdMark(cmd, 'DTMF_CAPTURED') },
    });
    await calls.setCommand(cmd.commandId, { ...memo, state: 'sent' });
    return { ok: true };
  }

  private async send(cmd: ActionCommand, id: string, typed: string): Promise<void> {
    const { client, calls } = this.o;
    const dataOf = (extra: Record<string, string> = {}) => ({
      callId: cmd.callId,
      commandId: cmd.commandId,
      ...extra,
    });
    // Remembered before the request: an ERROR webhook names only the call and the action type.
    if (cmd.action === 'say' || cmd.action === 'play' || cmd.action === 'captureDtmf')
      await calls.setLastMediaAction(cmd.callId, { action: cmd.action, commandId: cmd.commandId });
    // The Play element's pause before the first play (0–5 s in the seed): Infobip's say/play have no
    // such field, so the request itself waits. The reply waits too, so a pause near the requester's
    // timeout may make it redeliver; the claim answers that redelivery without a second prompt.
    if ((cmd.action === 'say' || cmd.action === 'play') && cmd.pauseMs > 0)
      await sleep(Math.min(cmd.pauseMs, MAX_PAUSE_MS));
    switch (cmd.action) {
      case 'say': {
        const gender = /^male/i.test(cmd.voice) ? 'MALE' : /^female/i.test(cmd.voice) ? 'FEMALE' : undefined;
        await client.say(id, {
          text: cmd.text,
          language: infobipLanguage(cmd.language),
          speechRate: Math.min(2, Math.max(0.5, cmd.speechRate)),
          ...(gender ? { preferences: { voiceGender: gender } } : {}),
          // No terminator: any key stops the prompt and comes back as capturedDtmf.
          ...(cmd.interruptible ? { stopOn: { type: 'DTMF' as const } } : {}),
          customData: dataOf(),
        });
        return;
      }
      case 'play':
        await client.play(id, {
          content: await this.playContent(cmd.url),
          ...(cmd.interruptible ? { stopOn: { type: 'DTMF' as const } } : {}),
          customData: dataOf(),
        });
        return;
      case 'captureDtmf': {
        // Keys typed into the prompt before it count: Infobip collects the rest, and the DTMF_CAPTURED
        // mapping puts `typed` in front. Always sent (even empty): the call's customData is the merge
        // of every action's, so a key left out would be an earlier capture's.
        const { prefix } = typedDigits(typed, cmd.maxDigits);
        await client.captureDtmf(id, {
          maxLength: cmd.maxDigits - prefix.length,
          // Mid-entry, the next key is an inter-digit wait, not a first one.
          timeout: Math.round(prefix ? cmd.interDigitTimeoutMs : cmd.firstDigitTimeoutMs),
          digitTimeout: Math.round(cmd.interDigitTimeoutMs),
          terminator: '#',
          customData: dataOf({ maxDigits: String(cmd.maxDigits), typed: prefix }),
        });
        return;
      }
      case 'record':
        // Remembered first, so the CALL_RECORDING_READY webhook finds the command even without customData.
        await calls.setPendingRecording(cmd.callId, { commandId: cmd.commandId, name: cmd.name });
        await client.startRecording(id, {
          recording: {
            recordingType: 'AUDIO',
            maxDuration: Math.max(1, Math.ceil(cmd.maxDurationMs / 1000)),
            maxSilence: Math.ceil(cmd.maxSilenceMs / 1000),
            beep: cmd.beep,
            customData: dataOf({ name: cmd.name, kind: 'voicemail' }),
          },
        });
        return;
      case 'forward': {
        const endpoint = destinationFor(cmd.to, this.o.sipTrunkId);
        const dialog = await client.createDialog({
          parentCallId: id,
          childCallRequest: {
            endpoint,
            from: callerId(cmd.from, endpoint.type),
            connectTimeout: Math.round(cmd.ringSeconds),
          },
        });
        await calls.linkDialog(dialog.id, cmd.legCallId, cmd.commandId);
        if (dialog.childCall?.id) await calls.link(cmd.legCallId, dialog.childCall.id, cmd.commandId);
        return;
      }
      case 'answer':
        await client.answer(id, dataOf());
        return;
      case 'hangup':
        await client.hangup(id);
        return;
    }
  }

  private async playContent(url: string): Promise<PlayContent> {
    if (url.startsWith('file:')) return { type: 'FILE', fileId: url.slice('file:'.length) };
    if (url.startsWith('recording:')) {
      const name = url.slice('recording:'.length);
      const fileId = await this.o.calls.recordingFile(name);
      if (!fileId) throw new UnsupportedCommandError(`no voicemail named "${name}" was recorded through Infobip`);
      return { type: 'RECORDING', fileId };
    }
    return { type: 'URL', fileUrl: url };
  }
}
