// The command side of the Infobip provider: takes telephony commands from NATS (request/reply,
// queue group, like the simulator) and turns each into one Calls API request. Events come back
// through the webhook ingress (webhooks.ts).
//
// Exactly-once per command id: before any request, the command is claimed in the shared KV bucket
// with create-if-absent, so a redelivered command (an activity retry after a lost reply, or two
// provider instances) never sends a second request; for a dial the claim is on the call id, so a
// second call is never created while an earlier attempt may be live. Actions on a live call are
// carried out by InfobipActions (actions.ts), which the webhook ingress shares for prompt follow-ups.
import type { NatsConnection, Msg, Subscription } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { z } from 'zod';
import type { Counter, Registry } from 'prom-client';
import { TELEPHONY_EVENT_TYPES, type CommandAck, type TelephonyCommand, type TelephonyEvent } from '../contract.js';
import { commandSubject, publishEvent } from '../nats.js';
import {
  getOrCreateCounter,
  InfobipClient,
  InfobipRequestError,
  InfobipUnavailableError,
  type CreateCallRequest,
  type RetryPolicy,
} from './client.js';
import { InfobipCallMap } from './calls.js';
import { callerId, destinationFor, InfobipActions, memoOf, UnsupportedCommandError, type Outcome } from './actions.js';
import { isNatsFailure } from '../../store/nats-errors.js';
import { InfobipConfigError, INFOBIP_PROVIDER, requireApi, type InfobipOptions } from './options.js';

export { infobipLanguage, INFOBIP_LANGUAGES, UnsupportedCommandError } from './actions.js';

const base = {
  callId: z.string().min(1).max(300),
  commandId: z.string().min(1).max(300),
  elementId: z.string(),
  holdEvents: z.array(z.enum(TELEPHONY_EVENT_TYPES)).optional(),
};
const captureDtmfSchema = z.looseObject({
  ...base,
  action: z.literal('captureDtmf'),
  maxDigits: z.number().int().min(1),
  terminator: z.literal('#'),
  firstDigitTimeoutMs: z.number().min(0),
  interDigitTimeoutMs: z.number().min(0),
});
const hangupSchema = z.looseObject({ ...base, action: z.literal('hangup') });
/** A prompt's follow-up (contract's PromptFollowUp): run by the webhook ingress when the prompt ends. */
const followUpSchema = z.discriminatedUnion('action', [captureDtmfSchema, hangupSchema]);
/** Commands as the flow worker sends them (src/telephony/contract.ts); extra fields are tolerated. */
export const commandSchema = z
  .discriminatedUnion('action', [
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
      then: followUpSchema.optional(),
    }),
    z.looseObject({
      ...base,
      action: z.literal('play'),
      url: z.string().min(1),
      pauseMs: z.number(),
      interruptible: z.boolean(),
      then: followUpSchema.optional(),
    }),
    captureDtmfSchema,
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
    hangupSchema,
  ])
  .superRefine((cmd, ctx) => {
    // The follow-up acts on the prompt's call, and is claimed under its own id.
    if ((cmd.action !== 'say' && cmd.action !== 'play') || !cmd.then) return;
    if (cmd.then.callId !== cmd.callId)
      ctx.addIssue({ code: 'custom', path: ['then', 'callId'], message: "must be the prompt's callId" });
    if (cmd.then.commandId === cmd.commandId)
      ctx.addIssue({ code: 'custom', path: ['then', 'commandId'], message: "must differ from the prompt's commandId" });
  });

export interface InfobipProviderOptions extends InfobipOptions {
  /** SIP trunk for `sip:` destinations (CallsSipEndpoint requires one). */
  sipTrunkId?: string | undefined;
}

export interface RunningInfobipProvider {
  client: InfobipClient;
  calls: InfobipCallMap;
  stop(): Promise<void>;
}

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
  const actions = new InfobipActions({ client, calls, publish, log, sipTrunkId: options.sipTrunkId });
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

  async function handle(cmd: TelephonyCommand): Promise<Outcome> {
    return cmd.action === 'dial' ? dial(cmd) : actions.run(cmd);
  }

  async function dial(cmd: Extract<TelephonyCommand, { action: 'dial' }>): Promise<Outcome> {
    // holdEvents kept with the claim: the CALL_ESTABLISHED webhook may come before the create's answer.
    const memo = memoOf(cmd);
    const claim = await calls.claimDial(cmd.callId, cmd.commandId, memo);
    if (!claim.claimed) {
      // Redelivered: the first delivery placed (or is placing) the call; never a second one.
      return claim.existing.state === 'failed'
        ? { ok: false, error: claim.existing.error ?? 'refused earlier' }
        : { ok: true };
    }
    const at = new Date().toISOString();
    let body: CreateCallRequest;
    try {
      const endpoint = destinationFor(cmd.to, options.sipTrunkId);
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
      await calls.setDial(cmd.callId, { ...memo, state: 'failed', commandId: cmd.commandId, error: err.message, at });
      return { ok: false, error: err.message };
    }
    try {
      const created = await client.createCall(body);
      await calls.link(cmd.callId, created.id, cmd.commandId);
      await calls.setDial(cmd.callId, {
        ...memo,
        state: 'created',
        commandId: cmd.commandId,
        infobipId: created.id,
        at,
      });
      return { ok: true };
    } catch (err) {
      if (err instanceof InfobipRequestError) {
        await calls.setDial(cmd.callId, { ...memo, state: 'failed', commandId: cmd.commandId, error: err.message, at });
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
        await calls.setDial(cmd.callId, { ...memo, state: 'created', commandId: cmd.commandId, at });
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
