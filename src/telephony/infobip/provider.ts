// The command side of the Infobip provider: takes telephony commands from NATS (request/reply,
// queue group, like the simulator) and turns each into one Calls API request. Events come back
// through the webhook ingress (webhooks.ts).
//
// Exactly-once per command id: before any request, the command is claimed in the shared KV bucket
// with create-if-absent, so a redelivered command (an activity retry after a lost reply, or two
// provider instances) never sends a second request; for a dial the claim is on the call id, so a
// second call is never created while an earlier attempt may be live.
import type { NatsConnection, Msg, Subscription } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { z } from 'zod';
import type { Counter, Registry } from 'prom-client';
import type { CommandAck, TelephonyCommand, TelephonyEvent } from '../contract.js';
import { commandSubject, publishEvent } from '../nats.js';
import {
  endpointFor,
  getOrCreateCounter,
  InfobipClient,
  InfobipRequestError,
  InfobipUnavailableError,
  phoneDigits,
  type CreateCallRequest,
  type PlayContent,
  type RetryPolicy,
} from './client.js';
import { InfobipCallMap } from './calls.js';
import { isNatsFailure } from '../../store/nats-errors.js';
import { InfobipConfigError, INFOBIP_PROVIDER, requireApi, type InfobipOptions } from './options.js';

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

const base = { callId: z.string().min(1).max(300), commandId: z.string().min(1).max(300), elementId: z.string() };
/** Commands as the flow worker sends them (src/telephony/contract.ts); extra fields are tolerated. */
export const commandSchema = z.discriminatedUnion('action', [
  z.looseObject({
    ...base,
    action: z.literal('dial'),
    from: z.string(),
    to: z.string().min(1),
    recordCall: z.boolean(),
    machineDetection: z.boolean(),
  }),
  z.looseObject({ ...base, action: z.literal('answer') }),
  z.looseObject({
    ...base,
    action: z.literal('say'),
    text: z.string().min(1),
    language: z.string().min(1),
    voice: z.string(),
    speechRate: z.number(),
    pauseMs: z.number(),
    interruptible: z.boolean(),
  }),
  z.looseObject({
    ...base,
    action: z.literal('play'),
    url: z.string().min(1),
    pauseMs: z.number(),
    interruptible: z.boolean(),
  }),
  z.looseObject({
    ...base,
    action: z.literal('captureDtmf'),
    maxDigits: z.number().int().min(1),
    terminator: z.literal('#'),
    firstDigitTimeoutMs: z.number().min(0),
    interDigitTimeoutMs: z.number().min(0),
  }),
  z.looseObject({
    ...base,
    action: z.literal('forward'),
    legCallId: z.string().min(1),
    from: z.string(),
    to: z.string().min(1),
    ringSeconds: z.number().min(0),
  }),
  z.looseObject({
    ...base,
    action: z.literal('record'),
    name: z.string().min(1),
    maxDurationMs: z.number().min(0),
    maxSilenceMs: z.number().min(0),
    escapeDigits: z.string(),
    beep: z.boolean(),
  }),
  z.looseObject({ ...base, action: z.literal('hangup') }),
]);

/** The seed's longest pause before a prompt. */
const MAX_PAUSE_MS = 5_000;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A command we cannot carry out as asked (bad destination, missing setting): not retryable. */
export class UnsupportedCommandError extends Error {
  override readonly name = 'UnsupportedCommandError';
}

export interface InfobipProviderOptions extends InfobipOptions {
  /** SIP trunk for `sip:` destinations (CallsSipEndpoint requires one). */
  sipTrunkId?: string | undefined;
}

export interface RunningInfobipProvider {
  client: InfobipClient;
  calls: InfobipCallMap;
  stop(): Promise<void>;
}

/** Outcome of handling one command: a reply, or none so the requester retries after its timeout. */
type Outcome = CommandAck | 'retry';

export async function startInfobipProvider(opts: {
  nc: NatsConnection;
  options: InfobipProviderOptions;
  registry?: Registry;
  log?: (m: string) => void;
  retry?: Partial<RetryPolicy>;
  subject?: string;
}): Promise<RunningInfobipProvider> {
  const { nc, options } = opts;
  const log = opts.log ?? ((m: string) => console.error(`infobip: ${m}`));
  const api = requireApi(options);
  if (!options.callsConfigurationId)
    throw new InfobipConfigError(
      'the Infobip provider needs DIALFLOW_INFOBIP_CALLS_CONFIGURATION_ID (the API requires it on every created call, and its subscription delivers our webhooks)',
    );
  const callsConfigurationId = options.callsConfigurationId;
  const client = new InfobipClient({
    ...api,
    requestsPerSecond: options.requestsPerSecond,
    ...(opts.retry ? { retry: opts.retry } : {}),
    ...(opts.registry ? { registry: opts.registry } : {}),
    log,
  });
  const calls = await InfobipCallMap.open(nc);
  const js = jetstream(nc);
  const commands: Counter<'action' | 'result'> | undefined = opts.registry
    ? getOrCreateCounter(
        opts.registry,
        'dialflow_infobip_commands_total',
        'Telephony commands handled by the Infobip provider, by action and result',
        ['action', 'result'],
      )
    : undefined;
  const inflight = new Set<Promise<void>>();

  const sub: Subscription = nc.subscribe(opts.subject ?? commandSubject(INFOBIP_PROVIDER), {
    queue: `dialflow-${INFOBIP_PROVIDER}`,
    callback: (err, msg) => {
      if (err) return log(`subscription error: ${err.message}`);
      const p = handleMessage(msg)
        // Not a refusal and not NATS trouble: a bug. Unanswered, the command is retried (and logged again).
        .catch((err: unknown) =>
          log(`unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`),
        )
        .finally(() => inflight.delete(p));
      inflight.add(p);
    },
  });

  async function handleMessage(msg: Msg): Promise<void> {
    const refuse = (why: string): void => {
      msg.respond(JSON.stringify({ ok: false, error: `not a telephony command: ${why}` } satisfies CommandAck));
    };
    let json: unknown;
    try {
      json = msg.json();
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
      return refuse('not JSON');
    }
    const parsed = commandSchema.safeParse(json);
    if (!parsed.success) return refuse(z.prettifyError(parsed.error));
    const cmd = parsed.data as unknown as TelephonyCommand;
    let outcome: Outcome;
    try {
      outcome = await handle(cmd);
    } catch (err) {
      // KV or NATS trouble: no reply, so the activity retries the command.
      if (!isNatsFailure(err)) throw err;
      log(`${cmd.action} ${cmd.commandId} for ${cmd.callId}: ${err.message}`);
      outcome = 'retry';
    }
    commands?.inc({ action: cmd.action, result: outcome === 'retry' ? 'retry' : outcome.ok ? 'ok' : 'refused' });
    if (outcome !== 'retry') msg.respond(JSON.stringify(outcome));
  }

  const dataOf = (cmd: TelephonyCommand, extra: Record<string, string> = {}) => ({
    callId: cmd.callId,
    commandId: cmd.commandId,
    ...extra,
  });

  async function handle(cmd: TelephonyCommand): Promise<Outcome> {
    if (cmd.action === 'dial') return dial(cmd);
    const infobipId = (await calls.infobipIdOf(cmd.callId)) ?? (cmd.callId.includes('~') ? undefined : cmd.callId);
    if (!infobipId) {
      // A command for a call this adapter never placed (or whose record expired): the call is lost.
      await publish({
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
    const claim = await calls.claimCommand(cmd.commandId);
    if (!claim.claimed)
      return claim.existing.state === 'failed'
        ? { ok: false, error: claim.existing.error ?? 'refused earlier' }
        : { ok: true };
    try {
      await send(cmd, infobipId);
      await calls.setCommand(cmd.commandId, { state: 'sent' });
      return { ok: true };
    } catch (err) {
      if (err instanceof InfobipRequestError && err.status === 404 && cmd.action !== 'forward') {
        // The call is already gone (hung up meanwhile): its CALL_FINISHED webhook drives the flow.
        await calls.setCommand(cmd.commandId, { state: 'sent' });
        log(`${cmd.action} on ${cmd.callId}: the call no longer exists at Infobip`);
        return { ok: true };
      }
      if (err instanceof InfobipRequestError || err instanceof UnsupportedCommandError) {
        await calls.setCommand(cmd.commandId, { state: 'failed', error: err.message });
        return { ok: false, error: err.message };
      }
      if (err instanceof InfobipUnavailableError) {
        if (err.ambiguous) {
          // A forward may exist: keep the claim; the flow's forward timeout decides.
          await calls.setCommand(cmd.commandId, { state: 'sent' });
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

  async function send(cmd: Exclude<TelephonyCommand, { action: 'dial' }>, id: string): Promise<void> {
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
          customData: dataOf(cmd),
        });
        return;
      }
      case 'play':
        await client.play(id, {
          content: await playContent(cmd.url),
          ...(cmd.interruptible ? { stopOn: { type: 'DTMF' as const } } : {}),
          customData: dataOf(cmd),
        });
        return;
      case 'captureDtmf':
        await client.captureDtmf(id, {
          maxLength: cmd.maxDigits,
          timeout: Math.round(cmd.firstDigitTimeoutMs),
          digitTimeout: Math.round(cmd.interDigitTimeoutMs),
          terminator: '#',
          customData: dataOf(cmd, { maxDigits: String(cmd.maxDigits) }),
        });
        return;
      case 'record':
        // Remembered first, so the CALL_RECORDING_READY webhook finds the command even without customData.
        await calls.setPendingRecording(cmd.callId, { commandId: cmd.commandId, name: cmd.name });
        await client.startRecording(id, {
          recording: {
            recordingType: 'AUDIO',
            maxDuration: Math.max(1, Math.ceil(cmd.maxDurationMs / 1000)),
            maxSilence: Math.ceil(cmd.maxSilenceMs / 1000),
            beep: cmd.beep,
            customData: dataOf(cmd, { name: cmd.name, kind: 'voicemail' }),
          },
        });
        return;
      case 'forward': {
        const endpoint = destination(cmd.to);
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
        await client.answer(id, dataOf(cmd));
        return;
      case 'hangup':
        await client.hangup(id);
        return;
    }
  }

  function destination(to: string) {
    const endpoint = endpointFor(to, options.sipTrunkId);
    if (endpoint.type === 'SIP' && !endpoint.sipTrunkId)
      throw new UnsupportedCommandError(
        `cannot dial ${to}: SIP destinations need an Infobip SIP trunk id (DIALFLOW_INFOBIP_SIP_TRUNK_ID)`,
      );
    if (endpoint.type === 'PHONE' && !/^[1-9]\d{4,14}$/.test(endpoint.phoneNumber))
      throw new UnsupportedCommandError(`cannot dial "${to}": not a phone number in E.164 format`);
    return endpoint;
  }

  async function playContent(url: string): Promise<PlayContent> {
    if (url.startsWith('file:')) return { type: 'FILE', fileId: url.slice('file:'.length) };
    if (url.startsWith('recording:')) {
      const name = url.slice('recording:'.length);
      const fileId = await calls.recordingFile(name);
      if (!fileId) throw new UnsupportedCommandError(`no voicemail named "${name}" was recorded through Infobip`);
      return { type: 'RECORDING', fileId };
    }
    return { type: 'URL', fileUrl: url };
  }

  async function dial(cmd: Extract<TelephonyCommand, { action: 'dial' }>): Promise<Outcome> {
    const claim = await calls.claimDial(cmd.callId, cmd.commandId);
    if (!claim.claimed) {
      // Redelivered: the first delivery placed (or is placing) the call; never a second one.
      return claim.existing.state === 'failed'
        ? { ok: false, error: claim.existing.error ?? 'refused earlier' }
        : { ok: true };
    }
    const at = new Date().toISOString();
    let body: CreateCallRequest;
    try {
      const endpoint = destination(cmd.to);
      body = {
        endpoint,
        from: callerId(cmd.from, endpoint.type),
        callsConfigurationId,
        externalId: cmd.callId,
        customData: { callId: cmd.callId, dialCommandId: cmd.commandId },
        ...(cmd.machineDetection ? { machineDetection: { enabled: true } } : {}),
        ...(cmd.recordCall
          ? { recording: { recordingType: 'AUDIO' as const, customData: { callId: cmd.callId, kind: 'call' } } }
          : {}),
      };
    } catch (err) {
      if (!(err instanceof UnsupportedCommandError)) throw err;
      await calls.setDial(cmd.callId, { state: 'failed', commandId: cmd.commandId, error: err.message, at });
      return { ok: false, error: err.message };
    }
    try {
      const created = await client.createCall(body);
      await calls.link(cmd.callId, created.id, cmd.commandId);
      await calls.setDial(cmd.callId, { state: 'created', commandId: cmd.commandId, infobipId: created.id, at });
      return { ok: true };
    } catch (err) {
      if (err instanceof InfobipRequestError) {
        await calls.setDial(cmd.callId, { state: 'failed', commandId: cmd.commandId, error: err.message, at });
        return { ok: false, error: err.message };
      }
      if (err instanceof InfobipUnavailableError) {
        if (err.ambiguous) {
          // The call may exist: keep the claim (no second dial), let its events or the flow's dial
          // timeout decide.
          log(`dial ${cmd.callId}: ${err.message}`);
          return { ok: true };
        }
        // Provably not created (429/503 after every retry, connection refused): a network failure
        // the flow retries on its schedule, under a new call id.
        await calls.setDial(cmd.callId, { state: 'created', commandId: cmd.commandId, at });
        await publish({
          id: `${cmd.callId}:${cmd.commandId}:unavailable`,
          type: 'CALL_FAILED',
          callId: cmd.callId,
          timestamp: new Date().toISOString(),
          properties: {
            commandId: cmd.commandId,
            errorCode: 'NETWORK_ERROR',
            hangupSource: 'PLATFORM',
            reason: err.message,
          },
        });
        return { ok: true };
      }
      throw err;
    }
  }

  async function publish(ev: TelephonyEvent): Promise<void> {
    await publishEvent(js as JetStreamClient, INFOBIP_PROVIDER, ev);
  }

  return {
    client,
    calls,
    async stop() {
      await sub.drain();
      await Promise.allSettled([...inflight]);
    },
  };
}

/** Infobip's examples give caller ids as digits; SIP/WebRTC callers keep what the flow says. */
function callerId(from: string, type: string): string {
  return type === 'PHONE' && /^\+?[0-9][0-9 ()-]*$/.test(from) ? phoneDigits(from) : from;
}
