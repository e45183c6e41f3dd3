// The SIP provider: a pool of baresip user agents, one per channel, driven over ctrl_tcp. It takes
// telephony commands from NATS exactly like the simulator (request/reply ack, idempotent by
// commandId) and publishes events of the contract on JetStream.
//
// How the SIP provider works (copied into docs/providers.md):
// - Channels. `channels` baresip processes, each holding at most one call (`call_max_calls 1`),
//   because baresip's commands act on an agent's current call. The pool is the concurrency limit:
//   a dial while every channel is busy waits (FIFO) up to `dialWaitMs`, then fails with
//   CALL_FAILED INTERNAL_ERROR / PLATFORM (reason "all N SIP channels busy"), which the flow
//   treats as an unidentified error and retries within the validity period.
// - Outbound. `sip:{E.164}@{trunk host:port}` (a `sip:` destination is dialled as is). The caller
//   id is the From user: the agent gets one extra account per caller id (`uanew <sip:{from}@{trunk}>`,
//   not registering, with the trunk credentials for digest auth) and dials through it. A ring timeout
//   (`ringTimeoutSeconds`) cancels the call → NO_ANSWER. Final responses map through sip-codes.ts.
// - Prompts. One media cache (media.ts) for all channels, shared with other hosts through the
//   `dialflow_media` object store: say renders speech (espeak-ng → 8 kHz mono); play takes
//   `http(s)://` URLs (downloaded, ≤ 4 MB, wav/mp3 by content), `file:{name}` uploaded assets
//   (AudioAssetStore) and `recording:{name}` voicemails recorded earlier in the same call (found in
//   the recordings store by the call's workflow and the element's rendered name). The agent's audio
//   source is switched to the prompt file (`ausrc aufile,…`) and SAY_FINISHED / PLAY_FINISHED is
//   sent after the prompt's known length; then the source goes back to silence.
// - Keys. An interruptible prompt stops at the first RFC 2833 key, which is reported in `dtmf`
//   (the flow hands it to the collect). A key during a prompt that is not interruptible is
//   discarded: keys act on audio only where the flow allows it, so there is no type-ahead into
//   the next collect. A key between a prompt's end and the collect's start (the captureDtmf command
//   is still on its way through the workflow) counts for that collect if at most 3 s old.
// - Follow-ups. A say or play with `then` runs it the moment the prompt ends, right after the
//   prompt's SAY_FINISHED / PLAY_FINISHED: a captureDtmf opens then (its timeouts start then, and
//   the key that cut an interruptible prompt is its first digit, reported again in DTMF_CAPTURED),
//   a hangup hangs up (CALL_FINISHED API with the hangup's commandId). The follow-up counts as
//   received with its prompt, so the same command sent on its own later does nothing; a call that
//   ends during the prompt never runs it.
// - Held events. Every event a command causes carries `hold: true` when the command listed its
//   type in `holdEvents` (e.g. CALL_ESTABLISHED of a dial with machine detection).
// - Recordings. sndfile writes what each agent receives (`…-dec.wav`) and sends (`…-enc.wav`) per
//   call. A voicemail is the received audio from the record start (after the optional beep) until
//   max duration, max silence (trailing silence of the received audio, polled every 250 ms), an
//   escape digit, or hang-up (then it is still stored and reported before CALL_FINISHED). The whole
//   call (`recordCall`) is received + sent mixed, stored after the call ended.
// - forwardCall is a blind transfer: REFER to the destination (`transfer <uri>` in baresip). The
//   callee's phone places the second call; its NOTIFY (sipfrag) tells the outcome: success ends our
//   call (the NOTIFY 200 comes when the destination answered) and reports CALL_ESTABLISHED on the
//   leg (forwarded), a failure (`TRANSFER_FAILED 486 Busy Here` …) maps through sip-codes.ts onto
//   busy / declined / noAnswer / notForwarded, and no final outcome within ringSeconds + 5 s →
//   NO_ANSWER. Works where the remote end supports REFER
//   (desk phones, softphones, baresip, most PBXs); carrier trunks often refuse REFER → notForwarded.
// - Inbound. Each agent registers as `inboundUser` at the trunk/registrar, plus one account per
//   `inboundNumbers` entry. The registrar forks an INVITE to every registered agent; a busy agent
//   answers 486 by itself, the first free one to see it claims it (the others reject their fork)
//   and publishes CALL_RECEIVED {from, to} with a fresh callId `sip-in-…`; `to` is the user of the
//   account the INVITE reached (baresip 1.0 does not expose the To header).
// - Machine detection (when a dial asks for it, i.e. the flow has a voicemail branch): after the
//   answer the agent sends silence and amd.ts analyses the received audio (the sndfile dump, read
//   every 100 ms while it grows): a short greeting then silence → HUMAN, a long greeting or many
//   words → MACHINE, silence → MACHINE; NOTSURE is reported as HUMAN with its reason. Reported as
//   MACHINE_DETECTION_FINISHED {detectionResult, confidenceRating, reason}; typically 1.5–2.5 s.
// - Crashes. The agents run under a parent-death signal, so kill -9 of the service kills them; the
//   remote ends see the calls drop (no BYE can be sent: they notice the RTP stopping, as carriers
//   and PBXs do with an RTP timeout). Every call the service holds is noted in the KV bucket
//   `dialflow_sip_calls` (callId → {since, agent}) before its INVITE leaves (or before its
//   CALL_RECEIVED is published) and removed after its last event was published. A restarted
//   service first publishes CALL_FINISHED {NETWORK_ERROR, PLATFORM, "the SIP service restarted
//   during the call"} for every entry of the previous run, then deletes them, so no workflow waits
//   for a call that is gone. Entries are per service (inbound user @ trunk): one sip-agents process
//   per trunk user, calls live in the process that placed them. A command for a call the process
//   does not know gets CALL_FINISHED INTERNAL_ERROR / PLATFORM, like the simulator.
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { storageReplicas } from '../../store/replicas.js';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { z } from 'zod';
import { holdMark, TELEPHONY_EVENT_TYPES, type TelephonyEvent, type TelephonyEventType } from '../contract.js';
import type { ErrorCode } from '../ids.js';
import { commandSubject, publishEvent } from '../nats.js';
import { ObjectRecordingStore, type RecordingMeta, type RecordingStore } from '../../store/recordings.js';
import type { SipConfig } from '../../config/index.js';
import { BaresipAgent, BaresipCommandError, BaresipError, type BaresipEvent } from './baresip.js';
import { mapSipFailure, responseLabel } from './sip-codes.js';
import { DEFAULT_SILENCE_MS, MediaCache, openMediaStore, type FetchedAudio, type PromptFile } from './media.js';
import { analyseSpeech, encodeWav, parseWav, toMono, TELEPHONY_RATE, WavError } from './wav.js';
import { detectMachine } from '../amd.js';
import { AudioAssetStore } from '../../store/assets.js';
import { workflowIdOfCallId } from '../ids.js';
import { isNatsFailure } from '../../store/nats-errors.js';
import { isErrnoException } from '../../config/errors.js';

/** The SIP settings (DIALFLOW_SIP_*, see src/config), plus what tests and tools set in process. */
export interface SipAgentsOptions extends Omit<SipConfig, 'inboundNumbers'> {
  inboundNumbers?: string[];
  /** Log every command and event. */
  debug?: boolean;
  /** NATS subject segment (config.provider). */
  provider?: string;
}

export interface RunningSipAgents {
  /** pid and resident memory of each agent. */
  agents(): Array<{ name: string; pid: number; rssBytes: number; busy: boolean }>;
  stop(): Promise<void>;
}

/** Live calls of the SIP services (callId → {since, agent}), so that a restarted service can end them. */
export const SIP_CALLS_BUCKET = 'dialflow_sip_calls';
export const RESTART_REASON = 'the SIP service restarted during the call';

const liveCallSchema = z.object({ callId: z.string(), since: z.string(), agent: z.string(), service: z.string() });
type LiveCall = z.infer<typeof liveCallSchema>;

/** KV keys allow [-/_=.A-Za-z0-9]: call ids have `:` and `~`, so they go in as base64url. */
function liveKey(service: string, callId: string): string {
  return `${service}.${Buffer.from(callId).toString('base64url')}`;
}

export class SipProviderError extends Error {
  override readonly name = 'SipProviderError';
}

// --- commands at the edge --------------------------------------------------------------------
const base = {
  callId: z.string().min(1).max(300),
  commandId: z.string().min(1).max(300),
  elementId: z.string().default(''),
  holdEvents: z.array(z.enum(TELEPHONY_EVENT_TYPES)).optional(),
};
const captureDtmfSchema = z
  .object({
    ...base,
    action: z.literal('captureDtmf'),
    maxDigits: z.number().int().min(1),
    terminator: z.literal('#').default('#'),
    firstDigitTimeoutMs: z.number().min(0),
    interDigitTimeoutMs: z.number().min(0),
  })
  .passthrough();
const hangupSchema = z.object({ ...base, action: z.literal('hangup') }).passthrough();
/** What a prompt runs the moment it ends (contract's PromptFollowUp). */
const followUpSchema = z.discriminatedUnion('action', [captureDtmfSchema, hangupSchema]);
const commandSchema = z.discriminatedUnion('action', [
  z
    .object({
      ...base,
      action: z.literal('dial'),
      from: z.string().default(''),
      to: z.string().min(1),
      attempt: z.number().default(1),
      dialIndex: z.number().default(1),
      recordCall: z.boolean().default(false),
      machineDetection: z.boolean().default(false),
      hints: z.record(z.string(), z.unknown()).optional(),
    })
    .passthrough(),
  z.object({ ...base, action: z.literal('answer') }).passthrough(),
  z
    .object({
      ...base,
      action: z.literal('say'),
      text: z.string(),
      language: z.string().default('en'),
      voice: z.string().default('female'),
      speechRate: z.number().positive().default(1),
      pauseMs: z.number().min(0).default(0),
      interruptible: z.boolean().default(false),
      then: followUpSchema.optional(),
    })
    .passthrough(),
  z
    .object({
      ...base,
      action: z.literal('play'),
      url: z.string().min(1),
      pauseMs: z.number().min(0).default(0),
      interruptible: z.boolean().default(false),
      then: followUpSchema.optional(),
    })
    .passthrough(),
  captureDtmfSchema,
  z
    .object({
      ...base,
      action: z.literal('forward'),
      legCallId: z.string().min(1),
      from: z.string().default(''),
      to: z.string().min(1),
      ringSeconds: z.number().min(1).default(30),
    })
    .passthrough(),
  z
    .object({
      ...base,
      action: z.literal('record'),
      name: z.string(),
      maxDurationMs: z.number().min(0),
      maxSilenceMs: z.number().min(0),
      escapeDigits: z.string().default(''),
      beep: z.boolean().default(false),
    })
    .passthrough(),
  hangupSchema,
]);
type Cmd = z.infer<typeof commandSchema>;
type CmdOf<A extends Cmd['action']> = Extract<Cmd, { action: A }>;
type FollowUp = z.infer<typeof followUpSchema>;

/** Machine detection gives up (HUMAN, not sure) when the far end sends this long too little audio to decide. */
const AMD_WALL_LIMIT_MS = 8000;
/** A key pressed between a prompt's end and the collect's start counts for that collect if this recent. */
const PENDING_KEY_MS = 3000;

// --- state -----------------------------------------------------------------------------------
interface Prompt {
  commandId: string;
  type: 'SAY_FINISHED' | 'PLAY_FINISHED';
  interruptible: boolean;
  /** Run the moment the prompt ends, after its end event (absent when its command already came on its own). */
  then?: FollowUp;
  timer?: NodeJS.Timeout;
}
interface Capture {
  cmd: CmdOf<'captureDtmf'>;
  digits: string;
  timer?: NodeJS.Timeout;
}
interface Recording {
  cmd: CmdOf<'record'>;
  /** Received samples already in the dump when the recording started. */
  fromSample?: number;
  startedAt?: number;
  poll?: NodeJS.Timeout;
  done: boolean;
}
interface Forward {
  cmd: CmdOf<'forward'>;
  timer: NodeJS.Timeout;
}

interface Call {
  callId: string;
  direction: 'outbound' | 'inbound';
  channel?: Channel;
  sipId?: string;
  /** Commands of the call by commandId (redelivery dedupe), with the events each asked to hold. */
  commands: Map<string, { holdEvents?: readonly TelephonyEventType[] }>;
  dialCommandId?: string;
  recordCall: boolean;
  machineDetection?: boolean;
  dialAt: number;
  established: boolean;
  finished: boolean;
  finishedAt?: number;
  hangupBy?: 'API' | 'PLATFORM' | 'RING_TIMEOUT' | 'TRANSFER';
  hangupCommandId?: string;
  ringTimer?: NodeJS.Timeout;
  silenceTimer?: NodeJS.Timeout;
  prompt?: Prompt;
  capture?: Capture;
  recording?: Recording;
  forward?: Forward;
  /** Answering-machine detection in progress (polls the received audio). */
  detection?: NodeJS.Timeout;
  /** Keys pressed after a prompt ended while no collect was open yet (the collect command is on its way). */
  pendingKeys: Array<{ digit: string; at: number }>;
  /** A call waiting for a free channel. */
  waiter?: { resolve: (c: Channel) => void; timer: NodeJS.Timeout };
}

interface Channel {
  index: number;
  agent: BaresipAgent;
  call?: Call;
  /** Caller-id accounts this agent already has. */
  fromAors: Set<string>;
}

/** Host:port of a trunk URI such as `sip:127.0.0.1:5080` or `sip:proxy.example.com;transport=tcp`. */
function trunkHostPort(trunk: string): string {
  return trunk
    .replace(/^sips?:/i, '')
    .replace(/^[^@]*@/, '')
    .replace(/;.*$/, '');
}

/** The user part we put in a From or a request URI: `+4915…`, `alice`, … */
function sipUser(s: string): string {
  const m = /^sips?:([^@;]+)@/i.exec(s);
  const user = m?.[1] ?? s;
  return user.replace(/[^A-Za-z0-9+*#._!~-]/g, '');
}

/**
 * Event properties for a debug log line: what a caller typed is never logged (a provider cannot
 * know which input a flow masks), only how many keys it was.
 */
function withoutDigits(properties: Record<string, unknown>): Record<string, unknown> {
  const dtmf = properties.dtmf;
  return typeof dtmf === 'string' && dtmf !== '' ? { ...properties, dtmf: `<${dtmf.length} key(s)>` } : properties;
}

/** `{hold: true}` when the call's command `commandId` asked to hold its events of `type` (see contract). */
function held(call: Call, commandId: string | undefined, type: TelephonyEventType): { hold?: true } {
  return holdMark(commandId === undefined ? undefined : call.commands.get(commandId), type);
}

function describe(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

/**
 * For commands whose failure changes nothing (a hang-up or resume that baresip refuses, or does not
 * answer, on a call that is ending anyway): baresip's refusal is expected, anything else is not.
 */
function ignoreCommandFailure(err: unknown): void {
  if (!(err instanceof BaresipCommandError)) throw err;
}

export async function startSipAgents(opts: {
  nc: NatsConnection;
  options: SipAgentsOptions;
  registry?: Registry;
  log?: (m: string) => void;
  recordings?: RecordingStore;
  /** Keys the media cache's file names (see MediaCacheOptions.nameKey). */
  mediaNameKey?: Uint8Array;
}): Promise<RunningSipAgents> {
  const { nc, options } = opts;
  const provider = options.provider ?? 'sip';
  const log = opts.log ?? ((m: string) => console.error(`sip-agents: ${m}`));
  /** Logs baresip's refusal of a command worth knowing about; anything else is not expected. */
  const logCommandFailure =
    (what: string) =>
    (err: unknown): void => {
      if (!(err instanceof BaresipCommandError)) throw err;
      log(`${what}: ${err.message}`);
    };
  const js: JetStreamClient = jetstream(nc);
  const recordings: RecordingStore = opts.recordings ?? (await ObjectRecordingStore.open(nc));
  const workDir = options.workDir ?? mkdtempSync(join(tmpdir(), 'dialflow-sip-'));
  mkdirSync(workDir, { recursive: true });
  // One media cache for every channel, shared with other hosts through the object store, so a
  // prompt a campaign plays a million times is rendered once.
  const media = new MediaCache(join(workDir, 'media'), {
    store: await openMediaStore(nc),
    onWarning: (w) => log(`${w.code}: ${w.message}`),
    ...(opts.mediaNameKey ? { nameKey: opts.mediaNameKey } : {}),
  });
  const silenceWav = (await media.silenceFile()).path;
  let assets: AudioAssetStore | undefined;
  const bootId = randomBytes(4).toString('hex');
  const liveCalls: KV = await new Kvm(nc).create(SIP_CALLS_BUCKET, {
    history: 1,
    replicas: storageReplicas(),
    description: 'calls held by dialflow sip-agents services, for crash recovery',
  });
  const trunk = options.trunk ? trunkHostPort(options.trunk) : undefined;
  const registrar = trunk ?? options.host;
  // Which service owns a live-call entry: one sip-agents process per inbound user and trunk, so the
  // same pair after a restart is the same service (hex: KV key characters only).
  const service = Buffer.from(`${options.inboundUser}@${registrar}`).toString('hex').slice(0, 120);

  // --- metrics
  const reg = opts.registry ? [opts.registry] : [];
  const channelsGauge = new Gauge({
    name: 'dialflow_sip_channels',
    help: 'SIP channels (baresip agents) by state',
    labelNames: ['state'],
    registers: reg,
  });
  const waitingGauge = new Gauge({
    name: 'dialflow_sip_dials_waiting',
    help: 'Dials waiting for a free SIP channel',
    registers: reg,
  });
  const dialsCounter = new Counter({
    name: 'dialflow_sip_dials_total',
    help: 'Dials by SIP final response (200, 486, 603, timeout …)',
    labelNames: ['response'],
    registers: reg,
  });
  const setupHistogram = new Histogram({
    name: 'dialflow_sip_call_setup_seconds',
    help: 'Dial command to CALL_ESTABLISHED',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    registers: reg,
  });
  const amdHistogram = new Histogram({
    name: 'dialflow_sip_amd_decision_seconds',
    help: 'Answer to the answering-machine detection outcome',
    labelNames: ['result'],
    buckets: [0.5, 1, 1.5, 2, 3, 4, 5, 7],
    registers: reg,
  });
  const dtmfHistogram = new Histogram({
    name: 'dialflow_sip_dtmf_to_event_seconds',
    help: 'RFC 2833 key at the agent to the published DTMF event',
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1],
    registers: reg,
  });

  const calls = new Map<string, Call>();
  const inboundBySipId = new Map<string, string>();
  const channels: Channel[] = [];
  const waiting: Call[] = [];
  let stopping = false;
  let seq = 0;

  function updateGauges(): void {
    const busy = channels.filter((c) => c.call).length;
    channelsGauge.set({ state: 'busy' }, busy);
    channelsGauge.set({ state: 'free' }, channels.length - busy);
    waitingGauge.set(waiting.length);
  }

  // --- events out: per call in order, retried until JetStream accepted them
  const chains = new Map<string, Promise<void>>();
  function emit(
    callId: string,
    type: TelephonyEventType,
    properties: Record<string, unknown>,
    before?: () => Promise<void>,
  ): void {
    const ev: TelephonyEvent = {
      id: `${callId}:${bootId}-${++seq}:${type}`,
      type,
      callId,
      timestamp: new Date().toISOString(),
      properties,
    };
    if (options.debug)
      log(
        `${new Date().toISOString().slice(17, 23)} ${callId}: → ${type} ${JSON.stringify(withoutDigits(properties))}`,
      );
    const next = (chains.get(callId) ?? Promise.resolve()).then(async () => {
      if (before) {
        try {
          await before();
        } catch (err) {
          // The recording could not be read or stored: the event still goes out, the flow goes on.
          if (!isNatsFailure(err) && !isErrnoException(err)) throw err;
          log(`preparing ${type} for ${callId} failed: ${err.message}`);
        }
      }
      // Never dropped: the call's events wait (in order) until JetStream is back; a NATS outage of
      // any length only delays them, and the event id as msg-id dedupes a publish that did land.
      for (let attempt = 0; ; attempt++) {
        try {
          await publishEvent(js, provider, ev);
          return;
        } catch (err) {
          if (!isNatsFailure(err)) throw err;
          // Only a stopping service gives up (after a few tries): it cannot wait for NATS forever.
          if (stopping && attempt >= 5) return log(`stopping: ${type} for ${callId} not published: ${err.message}`);
          if (attempt === 10 || attempt % 100 === 99)
            log(`publishing ${type} for ${callId} still fails after ${attempt + 1} attempts: ${err.message}`);
          await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
        }
      }
    });
    // The chain goes on after anything else (a bug): logged, and the call's later events still go out.
    const chained = next.catch((err: unknown) => log(`${type} for ${callId} not published: ${describe(err)}`));
    chains.set(callId, chained);
    void chained.finally(() => {
      if (chains.get(callId) === chained) chains.delete(callId);
    });
  }

  // --- live calls (crash recovery)
  async function rememberLive(call: Call, ch: Channel): Promise<void> {
    const entry: LiveCall = { callId: call.callId, since: new Date().toISOString(), agent: ch.agent.name, service };
    try {
      await liveCalls.put(liveKey(service, call.callId), JSON.stringify(entry));
    } catch (err) {
      // The call goes on: losing the entry only loses the clean ending after a crash.
      if (!isNatsFailure(err)) throw err;
      log(`${call.callId}: cannot note the live call in ${SIP_CALLS_BUCKET}: ${err.message}`);
    }
  }

  /** After the call's last event was published, so a crash in between still ends it on restart. */
  function forgetLive(callId: string): void {
    void (chains.get(callId) ?? Promise.resolve())
      .then(() => liveCalls.delete(liveKey(service, callId)))
      .catch((err: Error) => log(`${callId}: cannot remove the live call from ${SIP_CALLS_BUCKET}: ${err.message}`));
  }

  /**
   * Calls a previous run of this service held when it died (kill -9, OOM, host crash): their agents
   * died with it (parent-death signal), so each call is over. Tell their workflows, then forget them.
   */
  async function endCallsOfPreviousRun(): Promise<number> {
    const keys: string[] = [];
    for await (const k of await liveCalls.keys(`${service}.>`)) keys.push(k);
    for (const key of keys) {
      const e = await liveCalls.get(key);
      if (!e || e.operation !== 'PUT') continue;
      const parsed = liveCallSchema.safeParse(e.json());
      if (!parsed.success || parsed.data.service !== service) {
        await liveCalls.delete(key);
        continue;
      }
      const { callId, since, agent } = parsed.data;
      log(`${callId}: held by ${agent} since ${since} when the service stopped; ending it`);
      emit(callId, 'CALL_FINISHED', {
        errorCode: 'NETWORK_ERROR',
        hangupSource: 'PLATFORM',
        reason: RESTART_REASON,
        since,
      });
      forgetLive(callId);
    }
    return keys.length;
  }

  // --- channels
  async function startChannel(index: number): Promise<Channel> {
    const auth = options.trunkUser
      ? `;auth_user=${options.trunkUser}${options.trunkPassword ? `;auth_pass=${options.trunkPassword}` : ''}`
      : '';
    const regint = trunk ? 'regint=60' : 'regint=0';
    const accounts = [options.inboundUser, ...(options.inboundNumbers ?? [])].map(
      (u) => `<sip:${sipUser(u)}@${registrar}>;${regint}${auth};answermode=manual`,
    );
    const agent = await BaresipAgent.start({
      name: `agent-${index}`,
      dir: join(workDir, `agent-${index}`),
      host: options.host,
      accounts,
      silenceWav,
      recordAudio: true,
      log,
    });
    const ch: Channel = { index, agent, fromAors: new Set() };
    agent.on('event', (ev: BaresipEvent) => onAgentEvent(ch, ev));
    agent.on('exit', (code: number | null) => void onAgentExit(ch, code));
    return ch;
  }

  async function onAgentExit(ch: Channel, code: number | null): Promise<void> {
    if (stopping) return;
    log(`agent-${ch.index} exited (${code}); restarting it`);
    const call = ch.call;
    if (call && !call.finished)
      finishCall(call, call.established ? 'CALL_FINISHED' : 'CALL_FAILED', 'INTERNAL_ERROR', 'PLATFORM', {
        reason: 'the SIP agent of this call died',
      });
    ch.call = undefined;
    for (let attempt = 0; !stopping; attempt++) {
      try {
        const fresh = await startChannel(ch.index);
        channels[ch.index] = fresh;
        updateGauges();
        releaseTo(fresh);
        return;
      } catch (err) {
        // baresip did not come up, or its directory could not be written: try again, slower.
        if (!(err instanceof BaresipError) && !isErrnoException(err)) throw err;
        log(`agent-${ch.index} restart failed: ${err.message}`);
        await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * 2 ** attempt)));
      }
    }
  }

  function freeChannel(): Channel | undefined {
    return channels.find((c) => !c.call && c.agent.alive);
  }

  /** Give a freed channel to the oldest waiting dial. */
  function releaseTo(ch: Channel): void {
    const next = waiting.shift();
    updateGauges();
    if (!next?.waiter) return;
    clearTimeout(next.waiter.timer);
    const w = next.waiter;
    delete next.waiter;
    ch.call = next;
    next.channel = ch;
    updateGauges();
    w.resolve(ch);
  }

  function acquire(call: Call): Promise<Channel | undefined> {
    const ch = freeChannel();
    if (ch) {
      ch.call = call;
      call.channel = ch;
      updateGauges();
      return Promise.resolve(ch);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const at = waiting.indexOf(call);
        if (at >= 0) waiting.splice(at, 1);
        delete call.waiter;
        updateGauges();
        resolve(undefined);
      }, options.dialWaitMs);
      call.waiter = { resolve, timer };
      waiting.push(call);
      updateGauges();
    });
  }

  // --- call lifecycle
  function clearTimers(call: Call): void {
    for (const t of [
      call.ringTimer,
      call.silenceTimer,
      call.prompt?.timer,
      call.capture?.timer,
      call.recording?.poll,
      call.forward?.timer,
      call.detection,
    ])
      if (t) clearTimeout(t);
  }

  function finishCall(
    call: Call,
    type: 'CALL_FINISHED' | 'CALL_FAILED',
    errorCode: ErrorCode,
    hangupSource: 'ENDPOINT' | 'API' | 'PLATFORM',
    extra: Record<string, unknown> = {},
  ): void {
    if (call.finished) return;
    call.finished = true;
    call.finishedAt = Date.now();
    clearTimers(call);
    const ch = call.channel;
    // A voicemail being recorded when the caller hangs up is still stored and reported first.
    if (call.recording && !call.recording.done && ch) finishRecording(call, ch, 'hangup');
    if (call.forward) {
      emit(call.forward.cmd.legCallId, 'CALL_FAILED', {
        commandId: call.forward.cmd.commandId,
        errorCode: 'NORMAL_HANGUP',
        hangupSource: 'ENDPOINT',
        reason: 'the call ended before the transfer completed',
        ...holdMark(call.forward.cmd, 'CALL_FAILED'),
      });
      delete call.forward;
    }
    // A call that ends during a key capture names the capture (see PromptFollowUp): the flow then
    // knows the prompt before it had played, whatever order the events reach it in.
    const commandId =
      type === 'CALL_FINISHED' && hangupSource === 'API'
        ? call.hangupCommandId
        : type === 'CALL_FAILED'
          ? call.dialCommandId
          : call.capture?.cmd.commandId;
    emit(call.callId, type, {
      ...(commandId ? { commandId } : {}),
      errorCode,
      hangupSource,
      ...extra,
      ...held(call, commandId, type),
    });
    if (ch && call.established && call.recordCall)
      emit(call.callId, 'CALL_RECORDING_READY', { recordingId: `${call.callId}:call`, name: 'call' }, () =>
        storeCallRecording(call, ch),
      );
    if (ch) forgetLive(call.callId);
    if (ch) {
      // sndfile closes its files when the call's audio stops; clean up after we read them.
      setTimeout(() => {
        if (ch.call === call) {
          ch.call = undefined;
          if (!call.recordCall) clearDumps(ch);
          releaseTo(ch);
        }
      }, 300);
    }
  }

  function onAgentEvent(ch: Channel, ev: BaresipEvent): void {
    if (ev.type === 'CALL_INCOMING') return onIncoming(ch, ev);
    const call = ch.call;
    if (!call || call.finished) return;
    if (ev.id && call.sipId && ev.id !== call.sipId) return; // a forked INVITE this agent refused
    if (ev.id && !call.sipId && ev.class === 'call') call.sipId = ev.id;
    const param = ev.param ?? '';
    switch (ev.type) {
      case 'CALL_RINGING':
      case 'CALL_PROGRESS':
        if (call.direction === 'outbound' && !call.established)
          emit(call.callId, 'CALL_RINGING', {
            commandId: call.dialCommandId,
            ...held(call, call.dialCommandId, 'CALL_RINGING'),
          });
        return;
      case 'CALL_ESTABLISHED':
        if (call.established) return;
        call.established = true;
        if (call.ringTimer) clearTimeout(call.ringTimer);
        if (call.direction === 'outbound') {
          dialsCounter.inc({ response: '200' });
          setupHistogram.observe((Date.now() - call.dialAt) / 1000);
        }
        armSilence(call, ch);
        {
          // An inbound call is established by its answer command, the last one it received.
          const by = call.direction === 'outbound' ? call.dialCommandId : [...call.commands.keys()].pop();
          emit(call.callId, 'CALL_ESTABLISHED', { commandId: by, ...held(call, by, 'CALL_ESTABLISHED') });
        }
        if (call.machineDetection && call.direction === 'outbound') startDetection(call, ch);
        return;
      case 'CALL_DTMF_START':
        onDigit(call, ch, param.trim().charAt(0));
        return;
      // baresip 1.0 names it TRANSFER_FAILED (the NOTIFY's sipfrag, e.g. "486 Busy Here").
      case 'TRANSFER_FAILED':
      case 'CALL_TRANSFER_FAILED':
        onTransferFailed(call, param);
        return;
      case 'CALL_CLOSED':
        onClosed(call, param);
        return;
      default:
        return;
    }
  }

  function onClosed(call: Call, reason: string): void {
    if (call.forward && /transfer/i.test(reason)) {
      const f = call.forward;
      clearTimeout(f.timer);
      delete call.forward;
      emit(f.cmd.legCallId, 'CALL_ESTABLISHED', { commandId: f.cmd.commandId, ...holdMark(f.cmd, 'CALL_ESTABLISHED') });
      call.hangupBy = 'TRANSFER';
    }
    if (!call.established) {
      if (call.direction === 'inbound')
        return finishCall(call, 'CALL_FINISHED', 'NORMAL_HANGUP', 'ENDPOINT', { reason });
      if (call.hangupBy === 'RING_TIMEOUT') {
        dialsCounter.inc({ response: 'ring-timeout' });
        return finishCall(call, 'CALL_FAILED', 'NO_ANSWER', 'PLATFORM', {
          reason: `no answer within ${options.ringTimeoutSeconds} s`,
        });
      }
      if (call.hangupBy === 'API') return finishCall(call, 'CALL_FINISHED', 'NORMAL_HANGUP', 'API', { reason });
      const mapped = mapSipFailure(reason);
      dialsCounter.inc({ response: responseLabel(reason) });
      return finishCall(call, 'CALL_FAILED', mapped.errorCode, mapped.status ? 'ENDPOINT' : 'PLATFORM', {
        reason,
        ...(mapped.status ? { sipStatus: mapped.status } : {}),
      });
    }
    if (call.hangupBy === 'API' || call.hangupBy === 'TRANSFER')
      return finishCall(call, 'CALL_FINISHED', 'NORMAL_HANGUP', 'API', { reason });
    if (call.hangupBy === 'PLATFORM')
      return finishCall(call, 'CALL_FINISHED', 'INTERNAL_ERROR', 'PLATFORM', { reason });
    // The far end hung up (BYE), or the media/session timed out.
    if (/timed out/i.test(reason)) return finishCall(call, 'CALL_FINISHED', 'NETWORK_ERROR', 'PLATFORM', { reason });
    finishCall(call, 'CALL_FINISHED', 'NORMAL_HANGUP', 'ENDPOINT', { reason });
  }

  function onIncoming(ch: Channel, ev: BaresipEvent): void {
    const sipId = ev.id ?? '';
    if (ch.call || stopping || inboundBySipId.has(sipId)) {
      // Another agent took this forked INVITE, or this one is reserved for a dial: refuse our fork.
      if (!ch.call?.sipId || ch.call.sipId === sipId || inboundBySipId.has(sipId))
        void ch.agent.command('hangup').catch(ignoreCommandFailure);
      return;
    }
    const callId = `sip-in-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
    inboundBySipId.set(sipId, callId);
    setTimeout(() => inboundBySipId.delete(sipId), 120_000).unref();
    const call: Call = {
      callId,
      direction: 'inbound',
      channel: ch,
      sipId,
      commands: new Map(),
      recordCall: false,
      dialAt: Date.now(),
      established: false,
      finished: false,
      pendingKeys: [],
    };
    ch.call = call;
    calls.set(callId, call);
    updateGauges();
    const from = sipUser(ev.peeruri ?? '');
    const to = sipUser(ev.accountaor ?? options.inboundUser);
    emit(
      callId,
      'CALL_RECEIVED',
      { from, to, ...(ev.peerdisplayname ? { displayName: ev.peerdisplayname } : {}) },
      () => rememberLive(call, ch),
    );
  }

  // --- audio source
  /** Send silence, re-armed before the silence file runs out (aufile ends the call at EOF). */
  function armSilence(call: Call, ch: Channel): void {
    if (call.silenceTimer) clearTimeout(call.silenceTimer);
    void ch.agent.command('ausrc', `aufile,${silenceWav}`).catch(logCommandFailure(`${call.callId}: silence`));
    call.silenceTimer = setTimeout(() => {
      if (!call.finished && !call.prompt) armSilence(call, ch);
    }, DEFAULT_SILENCE_MS - 10_000);
  }

  async function playFile(call: Call, ch: Channel, file: PromptFile, prompt: Prompt): Promise<void> {
    if (call.prompt?.timer) clearTimeout(call.prompt.timer);
    call.prompt = prompt;
    call.pendingKeys = [];
    if (call.silenceTimer) clearTimeout(call.silenceTimer);
    await ch.agent.command('ausrc', `aufile,${file.path}`);
    prompt.timer = setTimeout(() => {
      if (call.prompt !== prompt || call.finished) return;
      delete call.prompt;
      armSilence(call, ch);
      emit(call.callId, prompt.type, { commandId: prompt.commandId, ...held(call, prompt.commandId, prompt.type) });
      runFollowUp(call, ch, prompt.then, '');
    }, file.durationMs);
  }

  /**
   * A prompt's follow-up, run the moment the prompt ended (after its end event was emitted, so the
   * events stay in that order). `typed`: the key that interrupted the prompt, the capture's first digit.
   * A call that ended during the prompt never gets here (its prompt timer is cleared, keys are ignored).
   */
  function runFollowUp(call: Call, ch: Channel, then: FollowUp | undefined, typed: string): void {
    if (!then || call.finished) return;
    if (then.action === 'hangup')
      return void hangUp(call, ch, then.commandId).catch((err: Error) =>
        log(`${call.callId}: hangup after the prompt failed: ${err.message}`),
      );
    openCapture(call, then, typed ? [typed] : []);
  }

  /** Hang up as the API asked (a hangup command, or a prompt's follow-up): CALL_FINISHED API names `commandId`. */
  async function hangUp(call: Call, ch: Channel, commandId: string): Promise<void> {
    call.hangupBy = 'API';
    call.hangupCommandId = commandId;
    await ch.agent.command('hangup').catch(logCommandFailure(`${call.callId}: hangup`));
    setTimeout(() => finishCall(call, 'CALL_FINISHED', 'NORMAL_HANGUP', 'API'), 3000);
  }

  // --- answering-machine detection
  /**
   * Listen to what the far end says after answering (the agent's received-audio dump, growing
   * while the call runs) and let amd.ts decide; silence is sent meanwhile (the flow waits for the
   * outcome before it plays anything). NOTSURE is reported as HUMAN, with its reason: the flow then
   * takes `answered`, which is the safe side for a person.
   */
  function startDetection(call: Call, ch: Channel): void {
    const startedAt = Date.now();
    const report = (result: 'HUMAN' | 'MACHINE', confidence: number, reason: string, audioMs?: number) => {
      if (call.detection) clearTimeout(call.detection);
      delete call.detection;
      const decidedAfterMs = Date.now() - startedAt;
      amdHistogram.observe({ result }, decidedAfterMs / 1000);
      log(
        `${call.callId}: machine detection ${result} after ${decidedAfterMs} ms${audioMs !== undefined ? ` (${audioMs} ms of audio)` : ''}: ${reason}`,
      );
      emit(call.callId, 'MACHINE_DETECTION_FINISHED', {
        commandId: call.dialCommandId,
        ...held(call, call.dialCommandId, 'MACHINE_DETECTION_FINISHED'),
        detectionResult: result,
        confidenceRating: Math.round(confidence * 100) / 100,
        reason,
        ...(audioMs !== undefined ? { audioMs } : {}),
        decidedAfterMs,
      });
    };
    const tick = () => {
      if (call.finished) return;
      let heard: Int16Array;
      try {
        heard = readWav(dumpFile(ch, 'dec'), true);
      } catch (err) {
        // The dump cannot be read: decide instead of waiting on audio that does not come.
        if (!isErrnoException(err)) throw err;
        return report('HUMAN', 0, `not sure: cannot read the received audio: ${err.message}`);
      }
      const decision = detectMachine(heard);
      if (decision)
        return report(
          decision.result === 'MACHINE' ? 'MACHINE' : 'HUMAN',
          decision.confidence,
          decision.result === 'NOTSURE' ? `not sure: ${decision.reason}` : decision.reason,
          decision.atMs,
        );
      // No audio arrives at all (no RTP from the far end): do not keep the flow waiting.
      if (Date.now() - startedAt > AMD_WALL_LIMIT_MS)
        return report('HUMAN', 0, `not sure: too little audio received within ${AMD_WALL_LIMIT_MS} ms`);
      call.detection = setTimeout(tick, 100);
    };
    call.detection = setTimeout(tick, 100);
  }

  // --- DTMF
  function onDigit(call: Call, ch: Channel, digit: string): void {
    if (!/^[0-9*#A-D]$/.test(digit)) return;
    const at = Date.now();
    if (options.debug) log(`${call.callId}: a key at ${at}`);
    if (
      call.recording &&
      !call.recording.done &&
      call.recording.startedAt !== undefined &&
      call.recording.cmd.escapeDigits.includes(digit)
    ) {
      finishRecording(call, ch, 'escape');
      return;
    }
    if (call.prompt?.interruptible) {
      const p = call.prompt;
      if (p.timer) clearTimeout(p.timer);
      delete call.prompt;
      armSilence(call, ch);
      emit(call.callId, p.type, {
        commandId: p.commandId,
        interrupted: true,
        dtmf: digit === '#' ? '' : digit,
        ...held(call, p.commandId, p.type),
      });
      dtmfHistogram.observe((Date.now() - at) / 1000);
      // The key that stopped the prompt is the follow-up capture's first digit (a `#` ends it at once).
      runFollowUp(call, ch, p.then, digit);
      return;
    }
    if (call.capture) {
      captureDigit(call, digit);
      dtmfHistogram.observe((Date.now() - at) / 1000);
      return;
    }
    // A key during a prompt that is not interruptible is discarded: the product's rule is that keys
    // act on audio only when the prompt allows it, so it must not answer the next collect either.
    if (call.prompt) {
      if (options.debug) log(`${call.callId}: a key discarded (the prompt is not interruptible)`);
      return;
    }
    // No prompt and no collect: the prompt just ended and the collect command is still on its way
    // (a few hundred ms through the workflow). Keep the key for that collect only.
    if (!call.recording) call.pendingKeys = [...call.pendingKeys, { digit, at }].slice(-32);
  }

  /**
   * Start collecting keys for `cmd`; `first` are keys pressed before it (they count towards
   * maxDigits, a `#` among them ends input). Its first-digit timeout runs from now.
   */
  function openCapture(call: Call, cmd: CmdOf<'captureDtmf'>, first: readonly string[]): void {
    if (call.capture) endCapture(call, 'timeout');
    const cap: Capture = { cmd, digits: '' };
    call.capture = cap;
    for (const digit of first) if (call.capture === cap) captureDigit(call, digit);
    if (call.capture === cap && !cap.timer)
      cap.timer = setTimeout(() => endCapture(call, 'timeout'), cmd.firstDigitTimeoutMs);
  }

  function captureDigit(call: Call, digit: string): void {
    const cap = call.capture;
    if (!cap) return;
    if (cap.timer) clearTimeout(cap.timer);
    if (digit === '#') return endCapture(call, 'terminator');
    cap.digits += digit;
    if (cap.digits.length >= cap.cmd.maxDigits) return endCapture(call, 'maxDigits');
    cap.timer = setTimeout(() => endCapture(call, 'timeout'), cap.cmd.interDigitTimeoutMs);
  }

  function endCapture(call: Call, reason: 'maxDigits' | 'terminator' | 'timeout'): void {
    const cap = call.capture;
    if (!cap) return;
    if (cap.timer) clearTimeout(cap.timer);
    delete call.capture;
    emit(call.callId, 'DTMF_CAPTURED', {
      commandId: cap.cmd.commandId,
      dtmf: cap.digits,
      reason,
      ...holdMark(cap.cmd, 'DTMF_CAPTURED'),
    });
  }

  // --- recordings
  function dumpFile(ch: Channel, kind: 'dec' | 'enc'): string | undefined {
    const dir = ch.agent.sndPath;
    if (!dir || !existsSync(dir)) return undefined;
    const files = readdirSync(dir)
      .filter((f) => f.endsWith(`-${kind}.wav`))
      .map((f) => ({ f: join(dir, f), t: statSync(join(dir, f)).mtimeMs }))
      .sort((a, b) => b.t - a.t);
    return files[0]?.f;
  }

  function clearDumps(ch: Channel): void {
    const dir = ch.agent.sndPath;
    if (!dir || !existsSync(dir)) return;
    for (const f of readdirSync(dir)) rmSync(join(dir, f), { force: true });
  }

  /** Received samples from `fromSample` on (the dump may still be growing; its header sizes are not final). */
  function readDump(path: string | undefined, fromSample = 0): Int16Array {
    if (!path) return new Int16Array(0);
    let fd: number | undefined;
    try {
      fd = openSync(path, 'r');
      const size = statSync(path).size;
      const head = Buffer.alloc(Math.min(size, 4096));
      readSync(fd, head, 0, head.length, 0);
      const dataAt = head.indexOf('data');
      if (dataAt < 0) return new Int16Array(0);
      const start = dataAt + 8 + fromSample * 2;
      const len = Math.max(0, size - start) & ~1;
      const buf = Buffer.alloc(len);
      if (len > 0) readSync(fd, buf, 0, len, start);
      return new Int16Array(buf.buffer, buf.byteOffset, len / 2).slice();
    } catch (err) {
      if (!isErrnoException(err)) throw err;
      log(`reading ${path}: ${err.message}`);
      return new Int16Array(0);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  function startRecording(call: Call, ch: Channel): void {
    const rec = call.recording;
    if (!rec || rec.done || call.finished) return;
    const dec = dumpFile(ch, 'dec');
    rec.fromSample = readDump(dec).length;
    rec.startedAt = Date.now();
    const tick = () => {
      if (rec.done || call.finished) return;
      const elapsed = Date.now() - (rec.startedAt ?? Date.now());
      if (elapsed >= rec.cmd.maxDurationMs) return finishRecording(call, ch, 'maxDuration');
      if (rec.cmd.maxSilenceMs > 0) {
        const samples = readDump(dumpFile(ch, 'dec'), rec.fromSample);
        const a = analyseSpeech(samples, TELEPHONY_RATE);
        if (a.durationMs >= rec.cmd.maxSilenceMs && a.trailingSilenceMs >= rec.cmd.maxSilenceMs)
          return finishRecording(call, ch, 'silence');
      }
      rec.poll = setTimeout(tick, 250);
    };
    rec.poll = setTimeout(tick, 250);
  }

  function finishRecording(call: Call, ch: Channel, why: string): void {
    const rec = call.recording;
    if (!rec || rec.done) return;
    rec.done = true;
    if (rec.poll) clearTimeout(rec.poll);
    const samples = rec.startedAt === undefined ? new Int16Array(0) : readDump(dumpFile(ch, 'dec'), rec.fromSample);
    const durationMs = Math.round((samples.length / TELEPHONY_RATE) * 1000);
    const recordingId = `${call.callId}:${rec.cmd.commandId}`;
    const meta: RecordingMeta = {
      id: recordingId,
      callId: call.callId,
      name: rec.cmd.name,
      durationMs,
      contentType: 'audio/wav',
    };
    delete call.recording;
    emit(
      call.callId,
      'CALL_RECORDING_READY',
      {
        commandId: rec.cmd.commandId,
        recordingId,
        name: rec.cmd.name,
        durationMs,
        stoppedBy: why,
        ...holdMark(rec.cmd, 'CALL_RECORDING_READY'),
      },
      () => recordings.put(meta, encodeWav(samples, TELEPHONY_RATE)),
    );
  }

  /** The whole call: what the agent received and sent, mixed into one mono track. */
  async function storeCallRecording(call: Call, ch: Channel): Promise<void> {
    await new Promise((r) => setTimeout(r, 200));
    const rx = readWav(dumpFile(ch, 'dec'));
    const tx = readWav(dumpFile(ch, 'enc'));
    const n = Math.max(rx.length, tx.length);
    const mixed = new Int16Array(n);
    for (let i = 0; i < n; i++) mixed[i] = Math.max(-32768, Math.min(32767, (rx[i] ?? 0) + (tx[i] ?? 0)));
    const durationMs = Math.round((n / TELEPHONY_RATE) * 1000);
    await recordings.put(
      { id: `${call.callId}:call`, callId: call.callId, name: 'call', durationMs, contentType: 'audio/wav' },
      encodeWav(mixed, TELEPHONY_RATE),
    );
    if (ch.call !== call || call.finished) clearDumps(ch);
  }

  /** A dump as samples; `quiet` for a file that may not have its header yet (polled while growing). */
  function readWav(path: string | undefined, quiet = false): Int16Array {
    if (!path) return new Int16Array(0);
    try {
      return toMono(parseWav(new Uint8Array(readDumpBytes(path))));
    } catch (err) {
      if (!(err instanceof WavError) && !isErrnoException(err, 'ENOENT')) throw err;
      if (!quiet) log(`reading ${path}: ${err.message}`);
      return quiet ? new Int16Array(0) : readDump(path);
    }
  }
  function readDumpBytes(path: string): Buffer {
    const fd = openSync(path, 'r');
    try {
      const size = statSync(path).size;
      const buf = Buffer.alloc(size);
      readSync(fd, buf, 0, size, 0);
      return buf;
    } finally {
      closeSync(fd);
    }
  }

  // --- play URLs
  /**
   * The audio behind a play URL: `http(s)://…` downloaded, `file:{name}` an uploaded asset,
   * `recording:{name}` a voicemail recorded earlier in the same call (the recordVoicemail
   * element's rendered name). Each becomes an 8 kHz mono file of the media cache.
   */
  async function audioFor(call: Call, url: string): Promise<FetchedAudio> {
    if (/^https?:\/\//i.test(url)) return media.fetchAudio(url);
    const file = /^file:(.+)$/.exec(url)?.[1];
    if (file !== undefined) {
      assets ??= await AudioAssetStore.open(nc);
      const bytes = await assets.get(file);
      if (!bytes)
        throw new SipProviderError(`no uploaded audio file "${file}" (publish the flow with its audio files)`);
      return media.fromBytes(bytes, 'auto', `audio file ${file}`);
    }
    const name = /^recording:(.+)$/.exec(url)?.[1];
    if (name !== undefined) {
      // Recordings are keyed by the call id of the dial that made them: this call, or an earlier
      // dial of the same workflow (`{workflowId}~{n}`).
      const workflowId = workflowIdOfCallId(call.callId);
      const sameCall = (id: string) =>
        id === call.callId || (workflowId !== undefined && id.startsWith(`${workflowId}~`));
      const found = (await recordings.list()).filter((r) => r.name === name && sameCall(r.callId)).at(-1);
      const stored = found ? await recordings.get(found.id) : undefined;
      if (!stored) throw new SipProviderError(`no voicemail named "${name}" was recorded in this call`);
      return media.fromBytes(stored.data, 'auto', `voicemail ${name}`);
    }
    throw new SipProviderError(`cannot play "${url.slice(0, 100)}": not an http(s), file: or recording: URL`);
  }

  // --- forward (REFER)
  function onTransferFailed(call: Call, reason: string): void {
    const f = call.forward;
    if (!f) return;
    clearTimeout(f.timer);
    delete call.forward;
    const mapped = mapSipFailure(reason);
    emit(f.cmd.legCallId, 'CALL_FAILED', {
      commandId: f.cmd.commandId,
      errorCode: mapped.errorCode,
      hangupSource: 'ENDPOINT',
      reason,
      ...holdMark(f.cmd, 'CALL_FAILED'),
    });
    // baresip put our call on hold for the transfer: take it back.
    const ch = call.channel;
    if (ch) void ch.agent.command('resume').catch(ignoreCommandFailure);
  }

  function destinationUri(to: string): string | undefined {
    if (/^sips?:/i.test(to)) return to;
    if (!trunk) return undefined;
    return `sip:${sipUser(to)}@${trunk}`;
  }

  // --- commands
  async function onDial(cmd: CmdOf<'dial'>): Promise<void> {
    const uri = destinationUri(cmd.to);
    const call: Call = {
      callId: cmd.callId,
      direction: 'outbound',
      commands: new Map([[cmd.commandId, cmd]]),
      dialCommandId: cmd.commandId,
      recordCall: cmd.recordCall,
      machineDetection: cmd.machineDetection,
      dialAt: Date.now(),
      established: false,
      finished: false,
      pendingKeys: [],
    };
    calls.set(cmd.callId, call);
    if (!uri)
      return finishCall(call, 'CALL_FAILED', 'INTERNAL_ERROR', 'PLATFORM', {
        reason: `"${cmd.to}" is not a sip: URI and no SIP trunk is configured`,
      });
    const ch = await acquire(call);
    if (!ch)
      return finishCall(call, 'CALL_FAILED', 'INTERNAL_ERROR', 'PLATFORM', {
        reason: `all ${options.channels} SIP channels stayed busy for ${Math.round(options.dialWaitMs / 1000)} s`,
      });
    if (call.finished) return; // hung up while waiting
    call.dialAt = Date.now();
    clearDumps(ch);
    // Noted before the INVITE leaves: from here on a crash leaves a call someone must end.
    await rememberLive(call, ch);
    if (call.finished) return;
    try {
      const fromUser = sipUser(cmd.from) || options.inboundUser;
      const aor = `sip:${fromUser}@${registrar}`;
      if (!ch.fromAors.has(aor)) {
        const auth = options.trunkUser
          ? `;auth_user=${options.trunkUser}${options.trunkPassword ? `;auth_pass=${options.trunkPassword}` : ''}`
          : '';
        await ch.agent.command('uanew', `<${aor}>;regint=0${auth};answermode=manual`);
        ch.fromAors.add(aor);
      }
      await ch.agent.command('uafind', aor);
      call.ringTimer = setTimeout(() => {
        if (call.established || call.finished) return;
        call.hangupBy = 'RING_TIMEOUT';
        void ch.agent.command('hangup').catch(ignoreCommandFailure);
        // If baresip never reports the close, fail the dial anyway.
        setTimeout(() => {
          if (!call.finished) {
            dialsCounter.inc({ response: 'ring-timeout' });
            finishCall(call, 'CALL_FAILED', 'NO_ANSWER', 'PLATFORM', {
              reason: `no answer within ${options.ringTimeoutSeconds} s`,
            });
          }
        }, 3000);
      }, options.ringTimeoutSeconds * 1000);
      await ch.agent.command('dial', uri);
    } catch (err) {
      // baresip refused a step of the dial, or did not answer it.
      if (!(err instanceof BaresipCommandError)) throw err;
      log(`${cmd.callId}: dial ${uri} failed: ${err.message}`);
      dialsCounter.inc({ response: 'error' });
      finishCall(call, 'CALL_FAILED', 'INTERNAL_ERROR', 'PLATFORM', { reason: err.message });
    }
  }

  /** `followUp`: a say's or play's `then`, unless that command already came on its own. */
  async function onCallCommand(cmd: Exclude<Cmd, CmdOf<'dial'>>, call: Call, followUp?: FollowUp): Promise<void> {
    const ch = call.channel;
    if (!ch) {
      // Still waiting for a channel: only a hang-up makes sense.
      if (cmd.action === 'hangup') {
        if (call.waiter) {
          clearTimeout(call.waiter.timer);
          const at = waiting.indexOf(call);
          if (at >= 0) waiting.splice(at, 1);
          delete call.waiter;
          updateGauges();
        }
        call.hangupCommandId = cmd.commandId;
        finishCall(call, 'CALL_FINISHED', 'NORMAL_HANGUP', 'API');
      }
      return;
    }
    switch (cmd.action) {
      case 'hangup':
        await hangUp(call, ch, cmd.commandId);
        return;
      case 'answer':
        if (call.direction !== 'inbound' || call.established) return;
        await ch.agent.command('accept');
        return;
      case 'say':
      case 'play': {
        const body = cmd.action === 'say' ? await media.renderSpeech(cmd) : await audioFor(call, cmd.url);
        if (call.finished) return;
        const file = await media.prompt({ body, pauseMs: Math.round(cmd.pauseMs) });
        if (call.finished) return;
        await playFile(call, ch, file, {
          commandId: cmd.commandId,
          type: cmd.action === 'say' ? 'SAY_FINISHED' : 'PLAY_FINISHED',
          interruptible: cmd.interruptible,
          ...(followUp ? { then: followUp } : {}),
        });
        return;
      }
      case 'captureDtmf': {
        const recent = call.pendingKeys.filter((k) => Date.now() - k.at <= PENDING_KEY_MS).map((k) => k.digit);
        call.pendingKeys = [];
        openCapture(call, cmd, recent);
        return;
      }
      case 'record': {
        const rec: Recording = { cmd, done: false };
        call.recording = rec;
        if (cmd.beep) {
          const beep = await media.beepFile();
          await playFile(call, ch, beep, {
            commandId: `${cmd.commandId}:beep`,
            type: 'PLAY_FINISHED',
            interruptible: false,
          });
          // The beep's own PLAY_FINISHED is not a flow event: start recording when it ends instead.
          if (call.prompt?.timer) clearTimeout(call.prompt.timer);
          const p = call.prompt;
          setTimeout(() => {
            if (call.prompt === p) delete call.prompt;
            if (!call.finished) armSilence(call, ch);
            startRecording(call, ch);
          }, beep.durationMs);
        } else startRecording(call, ch);
        return;
      }
      case 'forward': {
        const uri = destinationUri(cmd.to);
        if (!uri) {
          emit(cmd.legCallId, 'CALL_FAILED', {
            commandId: cmd.commandId,
            errorCode: 'UNREACHABLE',
            hangupSource: 'PLATFORM',
            reason: `"${cmd.to}" is not a sip: URI and no SIP trunk is configured`,
            ...holdMark(cmd, 'CALL_FAILED'),
          });
          return;
        }
        const timer = setTimeout(
          () => {
            if (call.forward?.cmd !== cmd) return;
            delete call.forward;
            emit(cmd.legCallId, 'CALL_FAILED', {
              commandId: cmd.commandId,
              errorCode: 'NO_ANSWER',
              hangupSource: 'PLATFORM',
              reason: `no transfer outcome within ${cmd.ringSeconds + 5} s`,
              ...holdMark(cmd, 'CALL_FAILED'),
            });
            void ch.agent.command('resume').catch(ignoreCommandFailure);
          },
          (cmd.ringSeconds + 5) * 1000,
        );
        call.forward = { cmd, timer };
        try {
          await ch.agent.command('transfer', uri);
        } catch (err) {
          if (!(err instanceof BaresipCommandError)) throw err;
          clearTimeout(timer);
          delete call.forward;
          emit(cmd.legCallId, 'CALL_FAILED', {
            commandId: cmd.commandId,
            errorCode: 'INTERNAL_ERROR',
            hangupSource: 'PLATFORM',
            reason: err.message,
            ...holdMark(cmd, 'CALL_FAILED'),
          });
        }
        return;
      }
    }
  }

  function handle(cmd: Cmd): void {
    const call = calls.get(cmd.callId);
    if (options.debug) {
      const then =
        (cmd.action === 'say' || cmd.action === 'play') && cmd.then
          ? ` then ${cmd.then.action} ${cmd.then.commandId}`
          : '';
      log(`${new Date().toISOString().slice(17, 23)} ${cmd.callId}: ${cmd.action} ${cmd.commandId}${then}`);
    }
    if (cmd.action === 'dial') {
      // A redelivered dial, or a second dial for a call id already placed: nothing new.
      if (call) return;
      void onDial(cmd).catch((err: Error) => log(`${cmd.callId}: ${err.message}`));
      return;
    }
    if (!call) {
      // A call this process never placed (e.g. it restarted): the call is lost.
      emit(cmd.callId, 'CALL_FINISHED', {
        commandId: cmd.commandId,
        errorCode: 'INTERNAL_ERROR',
        hangupSource: 'PLATFORM',
        reason: 'the SIP provider holds no such call (restarted?)',
      });
      return;
    }
    if (call.commands.has(cmd.commandId) || call.finished) return;
    call.commands.set(cmd.commandId, cmd);
    // A prompt's follow-up counts as received with the prompt: the copy the workflow sends on its own
    // when it times out is then a repeat. One that already came on its own is not run again.
    let followUp: FollowUp | undefined;
    if ((cmd.action === 'say' || cmd.action === 'play') && cmd.then && !call.commands.has(cmd.then.commandId)) {
      followUp = cmd.then;
      call.commands.set(followUp.commandId, followUp);
    }
    void onCallCommand(cmd, call, followUp).catch((err: Error) => {
      log(`${cmd.callId}: ${cmd.action} failed: ${err.message}`);
      // A prompt we could not render or play: end the call rather than leave the flow waiting.
      if (!call.finished && call.channel) {
        call.hangupBy = 'PLATFORM';
        void call.channel.agent.command('hangup').catch(ignoreCommandFailure);
        setTimeout(
          () => finishCall(call, 'CALL_FINISHED', 'INTERNAL_ERROR', 'PLATFORM', { reason: err.message }),
          2000,
        );
      }
    });
  }

  // --- start
  const recovered = await endCallsOfPreviousRun();
  if (recovered > 0) log(`ended ${recovered} call(s) of the previous run`);
  const started = await Promise.allSettled(Array.from({ length: options.channels }, (_, i) => startChannel(i)));
  for (const s of started) if (s.status === 'fulfilled') channels.push(s.value);
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.allSettled(channels.map((c) => c.agent.stop()));
    throw new SipProviderError(`cannot start the SIP agents: ${(failed.reason as Error).message}`);
  }
  channels.sort((a, b) => a.index - b.index);
  updateGauges();

  const sub: Subscription = nc.subscribe(commandSubject(provider), {
    queue: `dialflow-sip-${provider}`,
    callback: (err, msg) => {
      if (err) return log(`subscription error: ${err.message}`);
      const refuse = (error: string): void => {
        msg.respond(JSON.stringify({ ok: false, error }));
      };
      let json: unknown;
      try {
        json = msg.json<unknown>();
      } catch (err) {
        if (!(err instanceof SyntaxError)) throw err;
        return refuse('not a telephony command: not JSON');
      }
      const parsed = commandSchema.safeParse(json);
      if (!parsed.success) return refuse(`not a telephony command:\n${z.prettifyError(parsed.error)}`);
      const cmd = parsed.data;
      if ((cmd.action === 'say' || cmd.action === 'play') && cmd.then) {
        if (cmd.then.callId !== cmd.callId)
          return refuse(`the follow-up (then) of ${cmd.action} is for call "${cmd.then.callId}", not "${cmd.callId}"`);
        if (cmd.then.commandId === cmd.commandId)
          return refuse(`the follow-up (then) of ${cmd.action} needs its own commandId`);
      }
      if (cmd.action === 'dial' && !destinationUri(cmd.to))
        return refuse(
          `cannot dial "${cmd.to}": no SIP trunk is configured (DIALFLOW_SIP_TRUNK), only sip: URIs can be dialled`,
        );
      msg.respond(JSON.stringify({ ok: true }));
      if (stopping) return;
      handle(cmd);
    },
  });

  // Forget finished calls after a grace period that covers redelivered commands.
  const sweeper = setInterval(() => {
    const now = Date.now();
    for (const [id, c] of calls) if (c.finished && now - (c.finishedAt ?? now) > 10 * 60_000) calls.delete(id);
  }, 60_000);
  sweeper.unref();

  return {
    agents: () =>
      channels.map((c) => ({
        name: c.agent.name,
        pid: c.agent.pid,
        rssBytes: c.agent.rssBytes(),
        busy: Boolean(c.call),
      })),
    async stop() {
      stopping = true;
      clearInterval(sweeper);
      sub.unsubscribe();
      for (const w of waiting.splice(0)) {
        if (w.waiter) clearTimeout(w.waiter.timer);
        finishCall(w, 'CALL_FAILED', 'INTERNAL_ERROR', 'PLATFORM', { reason: 'the SIP provider stopped' });
      }
      // Calls in progress end now: tell their workflows instead of leaving them waiting.
      for (const c of calls.values()) {
        if (c.finished) continue;
        c.hangupBy = 'PLATFORM';
        if (c.channel) await c.channel.agent.command('hangup', '', 1000).catch(ignoreCommandFailure);
        finishCall(c, c.established ? 'CALL_FINISHED' : 'CALL_FAILED', 'INTERNAL_ERROR', 'PLATFORM', {
          reason: 'the SIP provider stopped',
        });
      }
      await Promise.allSettled([...chains.values()]);
      await Promise.allSettled(channels.map((c) => c.agent.stop()));
      if (!options.workDir) rmSync(workDir, { recursive: true, force: true });
    },
  };
}
