// A fake Infobip Calls API for tests: validates requests as strictly as the official models
// (./models.ts), plays scripted callees, and POSTs Infobip-shaped webhooks (Basic auth, retries,
// optional chaos). See ./README.md for the API; the summary of what is modelled on what is below.
//
// Behaviour notes (what the official models/docs say, and where we guessed — marked GUESS):
// - Create call answers 201 with a Call in state CALLING (CallsApiTest expects 201). Actions answer
//   200 {status: 'PENDING'} (CallsActionResponse); hangup answers 200 with the Call (CallsApi: hangup → Call).
// - Events carry no id (CallsEvent has none). conferenceId/dialogId are null when not applicable (GUESS:
//   Infobip serialises them as null rather than omitting them; receivers must accept both).
// - An action's customData "updates the call's custom data" (model description): we merge it into the
//   call's customData, and the *_FINISHED / DTMF_CAPTURED events carry the merged map (GUESS on merge vs replace).
// - CALL_RECORDING_READY properties are exactly CallRecordingReadyProperties {recording: CallRecording}:
//   the model has NO customData there. The recording's customData is returned per file by
//   GET /calls/1/recordings/calls/{callId} (CallsPublicRecordingFile.customData).
// - A capture's terminator is not included in `dtmf` (GUESS).
// - A finished call is no longer "active": GET /calls/1/calls/{id} and actions on it answer 404; its
//   CallLog stays at GET /calls/1/calls/{id}/history (GUESS, mirrors the API's split of active/history).
// - Error code ids: only NORMAL_HANGUP = 10000 is confirmed (Infobip's "Voice error codes update" page);
//   the other ids are placeholders in the same 10xxx range. Match on `name`.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import { freePort } from '../../src/tools/net.mjs';
import { makeWav } from './wav.js';
import {
  CallRequest,
  CallsPublicSayRequest,
  CallsPlayRequest,
  CallsStopPlayRequest,
  CallsDtmfCaptureRequest,
  CallsRecordingStartRequest,
  EmptyBody,
  CallsAnswerRequest,
  CallsHangupRequest,
  CallsConnectWithNewCallRequest,
  CallsDialogRequest,
  type Call,
  type CallLog,
  type CallEndpoint,
  type CallState,
  type CallDirection,
  type CallsErrorCode,
  type CallsErrorCodeInfo,
  type CallsHangupSource,
  type CallsPlayContent,
  type CallsRecordingRequest,
  type CallsEvent,
  type InfobipErrorBody,
} from './models.js';

export * as models from './models.js';
export type { CallsEvent, CallsEventType } from './models.js';

// ---- public types ----------------------------------------------------------------------------------

/** How a scripted destination (or an inbound caller) behaves. */
export interface CalleeScript {
  /** human/machine answer; busy/rejected/unreachable fail at once; noAnswer rings until connectTimeout. */
  answer: 'human' | 'machine' | 'busy' | 'noAnswer' | 'rejected' | 'unreachable';
  /** One entry per DTMF capture, in order, e.g. ['1', '1234#']. Missing/'' = silent (capture times out). */
  keys?: string[];
  /** Press the next key while an interruptible prompt (stopOn DTMF, or a capture's playContent) plays. */
  pressDuringPrompt?: boolean;
  /** Seconds the callee speaks into a recording before falling silent (default 0). */
  speakSeconds?: number;
  /** The callee hangs up this many ms after the call is established. */
  hangUpAfterMs?: number;
}

export interface FakeInfobipChaos {
  /** Probability (0..1) that a webhook is delivered twice (same body bytes). */
  duplicate?: number;
  /** Probability (0..1) that an event is swapped with the next event of the same call. */
  reorder?: number;
  /** Deliver CALL_RECORDING_READY this many ms after the call's CALL_FINISHED/CALL_FAILED. */
  lateRecordingMs?: number;
  /** Answer 429 (with Retry-After) to every Nth authenticated API request. */
  rateLimitEvery?: number;
  /** Seed of the chaos dice (default 1). */
  seed?: number;
}

export interface FakeInfobipLatency {
  /** Create → CALL_RINGING (also the delay of busy/unreachable failures). Default 20. */
  ring: number;
  /** CALL_RINGING → CALL_ESTABLISHED (and → CALL_FAILED for rejected). Default 40. */
  answer: number;
  /** Say duration per character of text (divided by speechRate). Default 1. */
  perChar: number;
  /** Time between DTMF key presses (and before the first one). Default 15. */
  key: number;
  /** Duration of a URL/FILE play without `timeout`. Default 50. */
  play: number;
  /** Establish → MACHINE_DETECTION_FINISHED when the request has no detectionTime. Default 30. */
  detect: number;
  /** Recording stop → CALL_RECORDING_READY. Default 20. */
  processing: number;
  /** Ringing time of a noAnswer callee; default connectTimeout (or 60 s) × timeScale. */
  noAnswer?: number;
}

export interface FakeInfobipOptions {
  apiKey: string;
  webhookUrl: string;
  webhookUser: string;
  webhookPassword: string;
  callees?: Record<string, CalleeScript>;
  chaos?: FakeInfobipChaos;
  latencyMs?: Partial<FakeInfobipLatency>;
  /**
   * Multiplies durations that requests give in real units (connectTimeout, maxDuration, maxSilence,
   * detectionTime in s; capture timeout/digitTimeout, play timeout in ms) to wall-clock time.
   * Default 1; 0.01 makes a 5 s capture timeout 50 ms. Recording files keep the unscaled length.
   */
  timeScale?: number;
  /** Webhook delivery retries after a non-2xx/network error. Default {attempts: 4, backoffMs: 50} (doubling). */
  webhookRetry?: { attempts?: number; backoffMs?: number };
  /**
   * Timestamps as `2022-05-01T14:25:45.125Z` ('Z', default) or `2022-05-01T14:25:45.125+0000` ('+0000'):
   * the official client's fixtures use both, so a receiver should parse both.
   */
  timestampStyle?: 'Z' | '+0000';
  /** Seconds in Retry-After of a chaos 429. Default 1. */
  retryAfterSeconds?: number;
  /** callsConfigurationId of simulated inbound calls. Default 'fake-calls-configuration'. */
  inboundCallsConfigurationId?: string;
}

export interface RecordedRequest {
  method: string;
  path: string;
  /** Parsed JSON body (or the raw text when it was not JSON; undefined when empty). */
  body: unknown;
  status: number;
}

export interface WebhookDelivery {
  /** Parsed event. */
  body: CallsEvent;
  /** The exact bytes sent (duplicates send the same bytes). */
  raw: string;
  /** HTTP status of this attempt; 0 = network error. */
  status: number;
  attempt: number;
  chaos?: 'duplicate' | 'reorder';
}

export interface FakeInfobip {
  /** e.g. http://127.0.0.1:PORT — the Infobip base URL for the client. */
  baseUrl: string;
  port: number;
  requests: RecordedRequest[];
  /** Calls created through POST /calls/1/calls (not dialog/connect legs). */
  callsCreated: { total: number; byDestination: Record<string, number>; byExternalId: Record<string, number> };
  /** Every delivery attempt, in the order they were sent. */
  webhookDeliveries: WebhookDelivery[];
  /** Events as the fake produced them, before chaos and delivery. */
  events: CallsEvent[];
  /** Sends CALL_RECEIVED for a new inbound call and returns its Infobip call id; POST …/answer establishes it. */
  simulateInbound(args: { from: string; to: string; script?: CalleeScript }): string;
  /** Replace or add a callee script at run time. */
  setCallee(destination: string, script: CalleeScript): void;
  /** The current Call object (also for finished calls), or undefined. */
  getCall(callId: string): Call | undefined;
  /** Resolves with the first produced event (already produced ones count) matching `pred`. */
  waitForEvent(pred: (e: CallsEvent) => boolean, timeoutMs?: number): Promise<CallsEvent>;
  /** Resolves when no webhook delivery is in flight, held back by chaos, or scheduled (recording ready, answer). */
  idle(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

// ---- error codes -------------------------------------------------------------------------------------

const ERROR_CODES: Record<CallsErrorCode, { id: number; description: string }> = {
  NORMAL_HANGUP: { id: 10000, description: 'The call has ended with hangup initiated by caller, callee or API' },
  MACHINE_DETECTED: { id: 10001, description: 'Machine detected.' },
  NO_ANSWER: { id: 10002, description: 'The destination did not answer before the connect timeout.' },
  BUSY: { id: 10003, description: 'The destination is busy.' },
  CANCELLED: { id: 10004, description: 'The call was cancelled before it was answered.' },
  REJECTED: { id: 10005, description: 'The destination rejected the call.' },
  FORBIDDEN: { id: 10006, description: 'The call is forbidden.' },
  DESTINATION_NOT_FOUND: { id: 10007, description: 'The destination could not be found.' },
  DESTINATION_UNAVAILABLE: { id: 10008, description: 'The destination is unavailable.' },
  INVALID_DESTINATION: { id: 10009, description: 'The destination is invalid.' },
  INVALID_REQUEST: { id: 10010, description: 'Invalid request.' },
  REQUEST_TIMEOUT: { id: 10011, description: 'Request timeout.' },
  SERVICE_UNAVAILABLE: { id: 10012, description: 'Service unavailable.' },
};
const errorCodeInfo = (name: CallsErrorCode): CallsErrorCodeInfo => ({
  id: ERROR_CODES[name].id,
  name,
  description: ERROR_CODES[name].description,
});
/** CallsErrorCode rules (model description): these need an established call, all others need one that is not. */
const NEEDS_ESTABLISHED: ReadonlySet<CallsErrorCode> = new Set(['NORMAL_HANGUP', 'MACHINE_DETECTED']);
const ANY_STATE: ReadonlySet<CallsErrorCode> = new Set(['INVALID_REQUEST', 'REQUEST_TIMEOUT']);

// ---- internals ---------------------------------------------------------------------------------------

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly messageId: string,
    text: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(text);
  }
}
const badRequest = (text: string) => new HttpError(400, 'BAD_REQUEST', text);
const notFound = (text: string) => new HttpError(404, 'NOT_FOUND', text);

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Aborted extends Error {}

interface ActiveMedia {
  kind: 'say' | 'play';
  interrupt: () => void;
}

interface ActiveRecording {
  fileId: string;
  startedAt: number;
  startIso: string;
  req: CallsRecordingRequest | undefined;
  /** Nominal end (s) from maxSilence/maxDuration; undefined = until stop-recording or call end. */
  nominalEnd: number | undefined;
  timer: NodeJS.Timeout | undefined;
}

interface StoredFile {
  id: string;
  callId: string;
  wav: Buffer;
  duration: number;
  startTime: string;
  endTime: string;
  creationTime: string;
  customData: Record<string, string> | undefined;
}

interface Leg {
  id: string;
  direction: CallDirection;
  endpoint: CallEndpoint;
  destination: string;
  from: string | undefined;
  to: string | undefined;
  script: CalleeScript;
  keys: string[];
  state: CallState;
  startTime: string;
  answerTime?: string;
  answeredAt?: number;
  ringingAt?: number;
  endTime?: string;
  callsConfigurationId: string;
  platform: z.infer<typeof CallRequest>['platform'];
  customData: Record<string, string> | undefined;
  externalId: string | undefined;
  parentCallId: string | undefined;
  dialogId: string | undefined;
  conferenceId: string | undefined;
  connectTimeout: number | undefined;
  maxDuration: number | undefined;
  machineDetection: { enabled: boolean; detectionTime?: number } | undefined;
  machineResult: Call['machineDetection'];
  wholeRecording: { req: z.infer<typeof CallRequest>['recording']; startedAt: number; startIso: string } | undefined;
  errorCode?: CallsErrorCode;
  hangupSource?: CallsHangupSource;
  abort: AbortController;
  mediaQueue: Promise<void>;
  media: ActiveMedia | undefined;
  capturing: boolean;
  recording: ActiveRecording | undefined;
  files: StoredFile[];
  dialog?: Dialog;
  ended: boolean;
  /** Callbacks run once when the call ends (dialog propagation). */
  onEnd: Array<(leg: Leg) => void>;
}

interface Dialog {
  id: string;
  parent: Leg;
  child: Leg;
  state: 'CREATED' | 'ESTABLISHED' | 'FINISHED' | 'FAILED';
  startTime: string;
  establishTime?: string;
  endTime?: string;
  childCallHangup: boolean;
}

/** Jackson (Infobip's deserialiser) treats an explicit null like an absent field: drop null members. */
function stripNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripNulls);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>)
        .filter(([, x]) => x !== null)
        .map(([k, x]) => [k, stripNulls(x)]),
    );
  }
  return v;
}

function endpointKey(e: CallEndpoint): string {
  switch (e.type) {
    case 'PHONE':
    case 'VIBER':
    case 'WHATSAPP':
      return e.phoneNumber;
    case 'SIP':
      return e.username;
    case 'WEBRTC':
      return e.identity;
    case 'WEBSOCKET':
      return e.identifier ?? e.websocketEndpointConfigId;
  }
}

/** "Only wav and mp3 files are supported" (CallsUrlPlayContent); a host under .invalid never answers. */
function unplayableUrl(fileUrl: string): boolean {
  const u = new URL(fileUrl);
  return u.hostname.endsWith('.invalid') || !/\.(wav|mp3)$/i.test(u.pathname);
}

function formatZodError(err: z.ZodError): string {
  return err.issues
    .map((i) => {
      const path = i.path.map(String).join('.');
      const unknown = i.code === 'unrecognized_keys' ? ` (${i.keys.join(', ')})` : '';
      return `${path || '(body)'}: ${i.message}${unknown}`;
    })
    .join('; ');
}

// ---- the server ----------------------------------------------------------------------------------------

export async function startFakeInfobip(opts: FakeInfobipOptions): Promise<FakeInfobip> {
  const nowIso = () => {
    const iso = new Date().toISOString();
    return opts.timestampStyle === '+0000' ? iso.replace(/Z$/, '+0000') : iso;
  };
  const lat: FakeInfobipLatency = {
    ring: 20,
    answer: 40,
    perChar: 1,
    key: 15,
    play: 50,
    detect: 30,
    processing: 20,
    ...opts.latencyMs,
  };
  const timeScale = opts.timeScale ?? 1;
  const chaos = opts.chaos ?? {};
  const rand = mulberry32(chaos.seed ?? 1);
  const retryAttempts = opts.webhookRetry?.attempts ?? 4;
  const retryBackoff = opts.webhookRetry?.backoffMs ?? 50;
  const callees = new Map<string, CalleeScript>(Object.entries(opts.callees ?? {}));
  const basicAuth = 'Basic ' + Buffer.from(`${opts.webhookUser}:${opts.webhookPassword}`).toString('base64');

  const calls = new Map<string, Leg>();
  const files = new Map<string, StoredFile>();
  const requests: RecordedRequest[] = [];
  const webhookDeliveries: WebhookDelivery[] = [];
  const events: CallsEvent[] = [];
  const callsCreated = {
    total: 0,
    byDestination: {} as Record<string, number>,
    byExternalId: {} as Record<string, number>,
  };
  const eventWaiters = new Set<{ pred: (e: CallsEvent) => boolean; resolve: (e: CallsEvent) => void }>();
  const serverTimers = new Set<NodeJS.Timeout>();
  let stopped = false;
  let apiRequestCount = 0;
  let inFlight = 0;
  let laterPending = 0;

  /** A server-level timer (survives the call's end; cleared by stop()). */
  const later = (ms: number, fn: () => void) => {
    laterPending++;
    const t = setTimeout(
      () => {
        serverTimers.delete(t);
        laterPending--;
        if (!stopped) fn();
      },
      Math.max(0, ms),
    );
    serverTimers.add(t);
  };

  /** Sleep tied to a call: rejects with Aborted when the call ends. */
  const sleep = (leg: Leg, ms: number, extra?: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      const signals = [leg.abort.signal, ...(extra ? [extra] : [])];
      if (signals.some((s) => s.aborted)) return reject(new Aborted());
      const onAbort = () => {
        clearTimeout(t);
        reject(new Aborted());
      };
      const t = setTimeout(
        () => {
          for (const s of signals) s.removeEventListener('abort', onAbort);
          resolve();
        },
        Math.max(0, ms),
      );
      for (const s of signals) s.addEventListener('abort', onAbort, { once: true });
    });

  // ---- webhooks ----

  async function deliver(raw: string, body: CallsEvent, tag?: 'duplicate' | 'reorder'): Promise<void> {
    for (let attempt = 1; attempt <= retryAttempts + 1 && !stopped; attempt++) {
      let status = 0;
      try {
        const res = await fetch(opts.webhookUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: basicAuth, 'user-agent': 'fake-infobip' },
          body: raw,
          signal: AbortSignal.timeout(10_000),
        });
        status = res.status;
        await res.arrayBuffer().catch(() => undefined);
      } catch {
        status = 0;
      }
      webhookDeliveries.push({ body, raw, status, attempt, ...(tag ? { chaos: tag } : {}) });
      if (status >= 200 && status < 300) return;
      if (attempt <= retryAttempts) await new Promise((r) => setTimeout(r, retryBackoff * 2 ** (attempt - 1)));
    }
  }

  /** Per-call ordered delivery chains. */
  const chains = new Map<string, Promise<void>>();
  const enqueue = (key: string, raw: string, body: CallsEvent, tag?: 'duplicate' | 'reorder') => {
    inFlight++;
    const prev = chains.get(key) ?? Promise.resolve();
    const next = prev
      .then(() => deliver(raw, body, tag))
      .catch(() => undefined)
      .finally(() => {
        inFlight--;
      });
    chains.set(key, next);
  };

  /** Reorder chaos: an event held back until the next event of the same call is sent. */
  const held = new Map<string, { raw: string; body: CallsEvent; dup: boolean; timer: NodeJS.Timeout }>();
  const send = (key: string, body: CallsEvent) => {
    const raw = JSON.stringify(body);
    const dup = chaos.duplicate !== undefined && rand() < chaos.duplicate;
    const pending = held.get(key);
    if (pending) {
      clearTimeout(pending.timer);
      serverTimers.delete(pending.timer);
      held.delete(key);
      enqueue(key, raw, body, 'reorder');
      if (dup) enqueue(key, raw, body, 'duplicate');
      enqueue(key, pending.raw, pending.body, 'reorder');
      if (pending.dup) enqueue(key, pending.raw, pending.body, 'duplicate');
      return;
    }
    if (chaos.reorder !== undefined && rand() < chaos.reorder) {
      // Held until the next event of this call; flushed alone if none comes soon.
      const timer = setTimeout(() => {
        serverTimers.delete(timer);
        held.delete(key);
        if (stopped) return;
        enqueue(key, raw, body);
        if (dup) enqueue(key, raw, body, 'duplicate');
      }, 200);
      serverTimers.add(timer);
      held.set(key, { raw, body, dup, timer });
      return;
    }
    enqueue(key, raw, body);
    if (dup) enqueue(key, raw, body, 'duplicate');
  };

  function emit(leg: Leg, type: CallsEvent['type'], properties: unknown): void {
    if (stopped) return;
    const body = {
      type,
      callId: leg.id,
      conferenceId: leg.conferenceId ?? null,
      dialogId: leg.dialogId ?? null,
      timestamp: nowIso(),
      callsConfigurationId: leg.callsConfigurationId,
      ...(leg.platform ? { platform: leg.platform } : {}),
      properties,
    } as CallsEvent;
    events.push(body);
    for (const w of [...eventWaiters]) {
      if (w.pred(body)) {
        eventWaiters.delete(w);
        w.resolve(body);
      }
    }
    send(leg.id, body);
  }

  // ---- call objects ----

  const callOf = (leg: Leg): Call => ({
    id: leg.id,
    endpoint: leg.endpoint,
    ...(leg.from !== undefined ? { from: leg.from } : {}),
    ...(leg.to !== undefined ? { to: leg.to } : {}),
    direction: leg.direction,
    state: leg.state,
    startTime: leg.startTime,
    ...(leg.answerTime ? { answerTime: leg.answerTime } : {}),
    ...(leg.endTime ? { endTime: leg.endTime } : {}),
    ...(leg.parentCallId ? { parentCallId: leg.parentCallId } : {}),
    ...(leg.machineResult ? { machineDetection: leg.machineResult } : {}),
    ...(leg.ringingAt !== undefined
      ? { ringDuration: Math.round(((leg.answeredAt ?? Date.now()) - leg.ringingAt) / 1000) }
      : {}),
    callsConfigurationId: leg.callsConfigurationId,
    ...(leg.platform ? { platform: leg.platform } : {}),
    ...(leg.conferenceId ? { conferenceId: leg.conferenceId } : {}),
    ...(leg.customData ? { customData: { ...leg.customData } } : {}),
    ...(leg.dialogId ? { dialogId: leg.dialogId } : {}),
    ...(leg.externalId !== undefined ? { externalId: leg.externalId } : {}),
  });

  const callLogOf = (leg: Leg): CallLog => ({
    callId: leg.id,
    endpoint: leg.endpoint,
    ...(leg.from !== undefined ? { from: leg.from } : {}),
    ...(leg.to !== undefined ? { to: leg.to } : {}),
    direction: leg.direction,
    state: leg.state,
    startTime: leg.startTime,
    ...(leg.answerTime ? { answerTime: leg.answerTime } : {}),
    ...(leg.endTime ? { endTime: leg.endTime } : {}),
    ...(leg.parentCallId ? { parentCallId: leg.parentCallId } : {}),
    ...(leg.machineResult ? { machineDetection: leg.machineResult } : {}),
    ...(leg.ringingAt !== undefined
      ? { ringDuration: Math.round(((leg.answeredAt ?? Date.now()) - leg.ringingAt) / 1000) }
      : {}),
    callsConfigurationIds: [leg.callsConfigurationId],
    ...(leg.platform ? { platform: leg.platform } : {}),
    conferenceIds: leg.conferenceId ? [leg.conferenceId] : [],
    duration: leg.answeredAt !== undefined ? Math.round((Date.now() - leg.answeredAt) / 1000 / timeScale) : 0,
    hasCameraVideo: false,
    hasScreenshareVideo: false,
    errorCode: errorCodeInfo(leg.errorCode ?? 'NORMAL_HANGUP'),
    ...(leg.customData ? { customData: { ...leg.customData } } : {}),
    ...(leg.dialogId ? { dialogId: leg.dialogId } : {}),
    ...(leg.hangupSource ? { hangupSource: leg.hangupSource } : {}),
    ...(leg.externalId !== undefined ? { externalId: leg.externalId } : {}),
  });

  const dialogOf = (d: Dialog) => ({
    id: d.id,
    callsConfigurationId: d.parent.callsConfigurationId,
    state: d.state,
    startTime: d.startTime,
    ...(d.establishTime ? { establishTime: d.establishTime } : {}),
    ...(d.endTime ? { endTime: d.endTime } : {}),
    parentCall: callOf(d.parent),
    childCall: callOf(d.child),
  });

  const mergeCustomData = (leg: Leg, cd: Record<string, string> | undefined) => {
    if (cd) leg.customData = { ...leg.customData, ...cd };
  };

  function newLeg(args: {
    direction: CallDirection;
    endpoint: CallEndpoint;
    from: string | undefined;
    to: string | undefined;
    script: CalleeScript;
    callsConfigurationId: string;
    platform?: Leg['platform'];
    customData?: Record<string, string> | undefined;
    externalId?: string | undefined;
    parentCallId?: string | undefined;
    dialogId?: string | undefined;
    conferenceId?: string | undefined;
    connectTimeout?: number | undefined;
    maxDuration?: number | undefined;
    machineDetection?: Leg['machineDetection'];
    recording?: z.infer<typeof CallRequest>['recording'];
    state: CallState;
  }): Leg {
    const leg: Leg = {
      id: randomUUID(),
      direction: args.direction,
      endpoint: args.endpoint,
      destination: endpointKey(args.endpoint),
      from: args.from,
      to: args.to,
      script: args.script,
      keys: [...(args.script.keys ?? [])],
      state: args.state,
      startTime: nowIso(),
      callsConfigurationId: args.callsConfigurationId,
      platform: args.platform,
      customData: args.customData ? { ...args.customData } : undefined,
      externalId: args.externalId,
      parentCallId: args.parentCallId,
      dialogId: args.dialogId,
      conferenceId: args.conferenceId,
      connectTimeout: args.connectTimeout,
      maxDuration: args.maxDuration,
      machineDetection: args.machineDetection,
      machineResult: undefined,
      wholeRecording: args.recording ? { req: args.recording, startedAt: 0, startIso: '' } : undefined,
      abort: new AbortController(),
      mediaQueue: Promise.resolve(),
      media: undefined,
      capturing: false,
      recording: undefined,
      files: [],
      ended: false,
      onEnd: [],
    };
    calls.set(leg.id, leg);
    return leg;
  }

  const scriptFor = (destination: string): CalleeScript =>
    callees.get(destination) ??
    callees.get(destination.replace(/^\+/, '')) ??
    callees.get(`+${destination}`) ??
    callees.get(`sip:${destination}`) ?? { answer: 'human' };

  // ---- call progress ----

  /** Runs an outbound leg through its script. */
  async function dial(leg: Leg): Promise<void> {
    try {
      const s = leg.script;
      if (s.answer === 'busy' || s.answer === 'unreachable') {
        await sleep(leg, lat.ring);
        return fail(
          leg,
          s.answer === 'busy' ? 'BUSY' : 'DESTINATION_NOT_FOUND',
          s.answer === 'busy' ? 'ENDPOINT' : 'PLATFORM',
        );
      }
      await sleep(leg, lat.ring);
      leg.state = 'RINGING';
      leg.ringingAt = Date.now();
      emit(leg, 'CALL_RINGING', { call: callOf(leg) });
      if (s.answer === 'noAnswer') {
        await sleep(leg, lat.noAnswer ?? (leg.connectTimeout ?? 60) * 1000 * timeScale);
        return fail(leg, 'NO_ANSWER', 'PLATFORM');
      }
      await sleep(leg, lat.answer);
      if (s.answer === 'rejected') return fail(leg, 'REJECTED', 'ENDPOINT');
      establish(leg);
    } catch (e) {
      if (!(e instanceof Aborted)) throw e;
    }
  }

  function establish(leg: Leg): void {
    leg.state = 'ESTABLISHED';
    leg.answeredAt = Date.now();
    leg.answerTime = nowIso();
    if (leg.wholeRecording) {
      leg.wholeRecording.startedAt = Date.now();
      leg.wholeRecording.startIso = nowIso();
    }
    emit(leg, 'CALL_ESTABLISHED', { call: callOf(leg) });
    if (leg.machineDetection?.enabled) {
      const machine = leg.script.answer === 'machine';
      const ms =
        leg.machineDetection.detectionTime !== undefined
          ? leg.machineDetection.detectionTime * 1000 * timeScale
          : lat.detect;
      sleep(leg, ms).then(
        () => {
          leg.machineResult = {
            detectionResult: machine ? 'MACHINE' : 'HUMAN',
            confidenceRating: machine
              ? { MACHINE: 0.93, HUMAN: 0.04, MUSIC: 0.02, RINGING: 0.01 }
              : { HUMAN: 0.95, MACHINE: 0.03, MUSIC: 0.01, RINGING: 0.01 },
          };
          emit(leg, 'MACHINE_DETECTION_FINISHED', {
            ...leg.machineResult,
            ...(leg.customData ? { customData: { ...leg.customData } } : {}),
          });
        },
        () => undefined,
      );
    }
    if (leg.script.hangUpAfterMs !== undefined) {
      sleep(leg, leg.script.hangUpAfterMs).then(
        () => finish(leg, 'NORMAL_HANGUP', 'ENDPOINT'),
        () => undefined,
      );
    }
    if (leg.maxDuration !== undefined && leg.maxDuration > 0) {
      sleep(leg, leg.maxDuration * 1000 * timeScale).then(
        () => finish(leg, 'NORMAL_HANGUP', 'PLATFORM'),
        () => undefined,
      );
    }
  }

  function closeLeg(leg: Leg, code: CallsErrorCode, source: CallsHangupSource): boolean {
    if (leg.ended) return false;
    leg.ended = true;
    leg.errorCode = code;
    leg.hangupSource = source;
    leg.endTime = nowIso();
    if (leg.recording) finishRecording(leg, leg.recording, 'call-ended');
    leg.abort.abort();
    return true;
  }

  /** Ends an established call: CALL_FINISHED. */
  function finish(leg: Leg, code: CallsErrorCode, source: CallsHangupSource): void {
    if (leg.ended) return;
    const durationLog = callLogOf(leg).duration;
    if (!closeLeg(leg, code, source)) return;
    leg.state = 'FINISHED';
    emit(leg, 'CALL_FINISHED', { callLog: { ...callLogOf(leg), duration: durationLog } });
    if (leg.wholeRecording) {
      const w = leg.wholeRecording;
      const seconds = (Date.now() - w.startedAt) / 1000 / timeScale;
      storeRecording(leg, seconds, w.startIso, w.req?.customData);
    }
    for (const f of leg.onEnd) f(leg);
  }

  /** Ends a call that was never established: CALL_FAILED. */
  function fail(leg: Leg, code: CallsErrorCode, source: CallsHangupSource): void {
    if (!closeLeg(leg, code, source)) return;
    leg.state =
      code === 'BUSY' ? 'BUSY' : code === 'NO_ANSWER' ? 'NO_ANSWER' : code === 'CANCELLED' ? 'CANCELLED' : 'FAILED';
    emit(leg, 'CALL_FAILED', { callLog: callLogOf(leg) });
    for (const f of leg.onEnd) f(leg);
  }

  // ---- media ----

  /** Next key the callee presses during an interruptible prompt, if the script says so and it stops it. */
  function takePromptKey(leg: Leg, terminator: string | undefined): string | undefined {
    if (!leg.script.pressDuringPrompt) return undefined;
    const next = leg.keys[0];
    const digit = next?.[0];
    if (next === undefined || digit === undefined) return undefined;
    if (terminator && !terminator.includes(digit)) return undefined;
    const rest = next.slice(1);
    if (rest) leg.keys[0] = rest;
    else leg.keys.shift();
    return digit;
  }

  function contentDurationMs(content: CallsPlayContent, timeoutMs?: number): number {
    if (timeoutMs !== undefined) return timeoutMs * timeScale;
    switch (content.type) {
      case 'TEXT':
        return (content.text.length * lat.perChar) / (content.speechRate ?? 1);
      case 'TTY':
        return content.text.length * lat.perChar;
      case 'RECORDING': {
        const f = files.get(content.fileId);
        return f ? f.duration * 1000 * timeScale : lat.play;
      }
      default:
        return lat.play;
    }
  }

  /** Plays on the call's single media track (queued behind earlier say/play). */
  function runPlayback(
    leg: Leg,
    kind: 'say' | 'play',
    durationMs: number,
    stopOn: { terminator?: string | undefined } | undefined,
  ): void {
    const type = kind === 'say' ? 'SAY_FINISHED' : 'PLAY_FINISHED';
    leg.mediaQueue = leg.mediaQueue.then(async () => {
      if (leg.ended) return;
      const started = Date.now();
      const stop = new AbortController();
      leg.media = { kind, interrupt: () => stop.abort() };
      let captured: string | undefined;
      let completed = true;
      try {
        const key = stopOn ? takePromptKey(leg, stopOn.terminator) : undefined;
        const pressAt = Math.min(lat.key, Math.max(0, durationMs - 1));
        if (key !== undefined && pressAt < durationMs) {
          await sleep(leg, pressAt, stop.signal);
          captured = key;
          completed = false;
        } else {
          await sleep(leg, durationMs, stop.signal);
        }
      } catch (e) {
        if (!(e instanceof Aborted)) throw e;
        if (leg.ended) return; // the call ended: no *_FINISHED
        completed = false; // stop-play
      } finally {
        leg.media = undefined;
      }
      emit(leg, type, {
        duration: Math.round(Date.now() - started),
        playedCompletely: completed,
        ...(captured !== undefined ? { capturedDtmf: captured } : {}),
        ...(leg.customData ? { customData: { ...leg.customData } } : {}),
      });
    });
  }

  async function runCapture(leg: Leg, req: z.infer<typeof CallsDtmfCaptureRequest>): Promise<void> {
    leg.capturing = true;
    try {
      let keys = leg.keys.shift() ?? '';
      let dtmf = '';
      let played: { duration: number; playedCompletely: boolean } | undefined;
      let terminatedInPrompt = false;
      if (req.playContent) {
        const content = req.playContent;
        // The prompt shares the media track.
        await new Promise<void>((resolve, reject) => {
          leg.mediaQueue = leg.mediaQueue.then(async () => {
            const started = Date.now();
            const durationMs = contentDurationMs(content);
            const stop = new AbortController();
            leg.media = { kind: 'play', interrupt: () => stop.abort() };
            try {
              const first = keys[0];
              if (leg.script.pressDuringPrompt && first !== undefined && lat.key < durationMs) {
                await sleep(leg, lat.key, stop.signal);
                keys = keys.slice(1);
                played = { duration: Date.now() - started, playedCompletely: false };
                if (first === req.terminator) terminatedInPrompt = true;
                else dtmf = first;
              } else {
                await sleep(leg, durationMs, stop.signal);
                played = { duration: Date.now() - started, playedCompletely: true };
              }
              resolve();
            } catch (e) {
              if (leg.ended) reject(e);
              else {
                played = { duration: Date.now() - started, playedCompletely: false };
                resolve();
              }
            } finally {
              leg.media = undefined;
            }
          });
        });
      }
      const timeoutMs = req.timeout * timeScale;
      const digitTimeoutMs = (req.digitTimeout ?? req.timeout) * timeScale;
      let timedOut = false;
      let done = terminatedInPrompt || dtmf.length >= req.maxLength;
      while (!done) {
        const wait = dtmf === '' ? timeoutMs : digitTimeoutMs;
        const digit = keys[0];
        if (digit === undefined || lat.key > wait) {
          await sleep(leg, wait);
          timedOut = true;
          break;
        }
        await sleep(leg, lat.key);
        keys = keys.slice(1);
        if (req.terminator !== undefined && digit === req.terminator) break;
        dtmf += digit;
        done = dtmf.length >= req.maxLength;
      }
      // Keys pressed past the end of this capture are lost (a real keypad's digits are not buffered).
      emit(leg, 'DTMF_CAPTURED', {
        dtmf,
        timeout: timedOut,
        ...(leg.customData ? { customData: { ...leg.customData } } : {}),
        ...(played
          ? {
              playedContentProperties: {
                duration: Math.round(played.duration),
                playedCompletely: played.playedCompletely,
              },
            }
          : {}),
      });
    } catch (e) {
      if (!(e instanceof Aborted)) throw e;
    } finally {
      leg.capturing = false;
    }
  }

  // ---- recordings ----

  function storeRecording(
    leg: Leg,
    seconds: number,
    startIso: string,
    customData: Record<string, string> | undefined,
  ): void {
    const speech = Math.min(leg.script.speakSeconds ?? 0, seconds);
    const wav = makeWav(seconds, speech);
    const id = randomUUID();
    const file: StoredFile = {
      id,
      callId: leg.id,
      wav,
      duration: Math.round(seconds),
      startTime: startIso,
      endTime: nowIso(),
      creationTime: nowIso(),
      customData: customData ? { ...customData } : undefined,
    };
    files.set(id, file);
    leg.files.push(file);
    const ready = () =>
      emit(leg, 'CALL_RECORDING_READY', {
        recording: {
          callId: leg.id,
          endpoint: leg.endpoint,
          direction: leg.direction,
          files: [fileMeta(file)],
          status: 'SUCCESSFUL',
          callsConfigurationId: leg.callsConfigurationId,
          startTime: file.startTime,
          endTime: file.endTime,
        },
      });
    if (chaos.lateRecordingMs !== undefined) {
      // Chaos: only after the call's CALL_FINISHED/CALL_FAILED (+ lateRecordingMs).
      const fire = () => later(chaos.lateRecordingMs ?? 0, ready);
      if (leg.ended) fire();
      else leg.onEnd.push(fire);
    } else {
      later(lat.processing, ready);
    }
  }

  const fileMeta = (f: StoredFile) => ({
    id: f.id,
    name: `${f.id}.wav`,
    fileFormat: 'WAV' as const,
    size: f.wav.length,
    creationTime: f.creationTime,
    duration: f.duration,
    startTime: f.startTime,
    endTime: f.endTime,
    location: 'HOSTED' as const,
  });

  function finishRecording(leg: Leg, rec: ActiveRecording, why: 'limit' | 'stopped' | 'call-ended'): void {
    if (leg.recording !== rec) return;
    leg.recording = undefined;
    if (rec.timer) {
      clearTimeout(rec.timer);
      serverTimers.delete(rec.timer);
    }
    const elapsed = (Date.now() - rec.startedAt) / 1000 / timeScale;
    const seconds =
      why === 'limit' && rec.nominalEnd !== undefined ? rec.nominalEnd : Math.min(elapsed, rec.nominalEnd ?? Infinity);
    storeRecording(leg, seconds, rec.startIso, rec.req?.customData);
  }

  // ---- inbound ----

  function simulateInbound(args: { from: string; to: string; script?: CalleeScript }): string {
    const leg = newLeg({
      direction: 'INBOUND',
      endpoint: { type: 'PHONE', phoneNumber: args.from },
      from: args.from,
      to: args.to,
      script: args.script ?? scriptFor(args.from),
      callsConfigurationId: opts.inboundCallsConfigurationId ?? 'fake-calls-configuration',
      // GUESS: an inbound call is reported RINGING in CALL_RECEIVED.
      state: 'RINGING',
    });
    leg.ringingAt = Date.now();
    emit(leg, 'CALL_RECEIVED', { call: callOf(leg) });
    return leg.id;
  }

  // ---- HTTP ----

  const activeLeg = (id: string): Leg => {
    const leg = calls.get(id);
    if (!leg || leg.ended) throw notFound(`Call with id ${id} not found.`);
    return leg;
  };
  const establishedLeg = (id: string): Leg => {
    const leg = activeLeg(id);
    if (leg.state !== 'ESTABLISHED') throw badRequest(`Call ${id} is not established (state ${leg.state}).`);
    return leg;
  };
  const parse = <S extends z.ZodType>(schema: S, body: unknown): z.infer<S> => {
    const r = schema.safeParse(stripNulls(body));
    if (!r.success) throw badRequest(`Invalid request: ${formatZodError(r.error)}`);
    return r.data;
  };
  const countCreated = (leg: Leg) => {
    callsCreated.total++;
    callsCreated.byDestination[leg.destination] = (callsCreated.byDestination[leg.destination] ?? 0) + 1;
    if (leg.externalId !== undefined)
      callsCreated.byExternalId[leg.externalId] = (callsCreated.byExternalId[leg.externalId] ?? 0) + 1;
  };

  type Reply = { status: number; json?: unknown; binary?: { data: Buffer; type: string } };

  function route(method: string, path: string, body: unknown, hasBody: boolean): Reply {
    const seg = path.split('/').filter(Boolean);
    const [a, b, c, id, ...rest] = seg;
    if (a !== 'calls' || b !== '1') throw notFound('Resource not found.');
    const action = rest.join('/');
    const bodyOrEmpty = hasBody ? body : {};
    const ok = { status: 200, json: { status: 'PENDING' } };

    if (c === 'calls' && id === undefined) {
      if (method !== 'POST') throw new HttpError(405, 'METHOD_NOT_ALLOWED', 'Method not allowed.');
      const req = parse(CallRequest, body);
      const leg = newLeg({
        direction: 'OUTBOUND',
        endpoint: req.endpoint,
        from: req.from,
        to: endpointKey(req.endpoint),
        script: scriptFor(endpointKey(req.endpoint)),
        callsConfigurationId: req.callsConfigurationId,
        platform: req.platform,
        customData: req.customData,
        externalId: req.externalId,
        parentCallId: req.parentCallId,
        connectTimeout: req.connectTimeout,
        maxDuration: req.maxDuration,
        machineDetection: req.machineDetection,
        recording: req.recording,
        state: 'CALLING',
      });
      countCreated(leg);
      void dial(leg);
      return { status: 201, json: callOf(leg) };
    }

    if (c === 'calls' && id !== undefined) {
      if (method === 'GET' && action === '') return { status: 200, json: callOf(activeLeg(id)) };
      if (method === 'GET' && action === 'history') {
        const leg = calls.get(id);
        if (!leg || !leg.ended) throw notFound(`Call log for ${id} not found.`);
        return { status: 200, json: callLogOf(leg) };
      }
      if (method !== 'POST') throw new HttpError(405, 'METHOD_NOT_ALLOWED', 'Method not allowed.');
      switch (action) {
        case 'say': {
          const req = parse(CallsPublicSayRequest, body);
          const leg = establishedLeg(id);
          mergeCustomData(leg, req.customData);
          const loops = Math.max(1, req.loopCount ?? 1);
          runPlayback(leg, 'say', (req.text.length * lat.perChar * loops) / (req.speechRate ?? 1), req.stopOn);
          return ok;
        }
        case 'play': {
          const req = parse(CallsPlayRequest, body);
          const leg = establishedLeg(id);
          if (req.content.type === 'RECORDING' && !files.has(req.content.fileId))
            throw badRequest(`Recording file ${req.content.fileId} not found.`);
          mergeCustomData(leg, req.customData);
          if (req.content.type === 'URL' && unplayableUrl(req.content.fileUrl)) {
            // Accepted, then an ERROR event (GUESS: errorCode name; Infobip documents only the shape).
            const fileUrl = req.content.fileUrl;
            later(lat.play, () => {
              if (!leg.ended)
                emit(leg, 'ERROR', {
                  actionType: 'PLAY',
                  errorCode: 'FILE_CAN_NOT_BE_PLAYED',
                  errorDetails: `Unable to play file from ${fileUrl}.`,
                });
            });
            return ok;
          }
          const loops = Math.max(1, req.loopCount ?? 1);
          runPlayback(leg, 'play', contentDurationMs(req.content, req.timeout) * loops, req.stopOn);
          return ok;
        }
        case 'stop-play': {
          const req = parse(CallsStopPlayRequest, bodyOrEmpty);
          const leg = establishedLeg(id);
          mergeCustomData(leg, req.customData);
          leg.media?.interrupt();
          return ok;
        }
        case 'capture/dtmf': {
          const req = parse(CallsDtmfCaptureRequest, body);
          const leg = establishedLeg(id);
          if (leg.capturing) throw badRequest(`DTMF capture already in progress on call ${id}.`);
          mergeCustomData(leg, req.customData);
          void runCapture(leg, req);
          return ok;
        }
        case 'start-recording': {
          const req = parse(CallsRecordingStartRequest, bodyOrEmpty);
          const leg = establishedLeg(id);
          if (leg.recording) throw badRequest(`Recording already in progress on call ${id}.`);
          const r = req.recording;
          const speak = leg.script.speakSeconds ?? 0;
          const ends = [
            r?.maxSilence !== undefined && r.maxSilence > 0 ? speak + r.maxSilence : undefined,
            r?.maxDuration !== undefined && r.maxDuration > 0 ? r.maxDuration : undefined,
          ].filter((x): x is number => x !== undefined);
          const nominalEnd = ends.length ? Math.min(...ends) : undefined;
          const rec: ActiveRecording = {
            fileId: randomUUID(),
            startedAt: Date.now(),
            startIso: nowIso(),
            req: r,
            nominalEnd,
            timer: undefined,
          };
          leg.recording = rec;
          if (nominalEnd !== undefined) {
            const t = setTimeout(
              () => {
                serverTimers.delete(t);
                finishRecording(leg, rec, 'limit');
              },
              nominalEnd * 1000 * timeScale,
            );
            serverTimers.add(t);
            rec.timer = t;
          }
          return ok;
        }
        case 'stop-recording': {
          parse(EmptyBody, bodyOrEmpty);
          const leg = establishedLeg(id);
          const rec = leg.recording;
          if (!rec) throw badRequest(`No recording in progress on call ${id}.`);
          // CallsRecordingRequest: with maxSilence or maxDuration set "the recording can't be stopped by the stop recording endpoint".
          if (rec.req?.maxSilence !== undefined || rec.req?.maxDuration !== undefined) {
            throw badRequest('Recording with maxSilence or maxDuration cannot be stopped with stop-recording.');
          }
          finishRecording(leg, rec, 'stopped');
          return ok;
        }
        case 'answer': {
          const req = parse(CallsAnswerRequest, bodyOrEmpty);
          const leg = activeLeg(id);
          if (leg.direction !== 'INBOUND') throw badRequest(`Call ${id} is not an inbound call.`);
          if (leg.state === 'ESTABLISHED') throw badRequest(`Call ${id} is already established.`);
          mergeCustomData(leg, req.customData);
          if (req.recording) leg.wholeRecording = { req: req.recording, startedAt: 0, startIso: '' };
          later(lat.answer, () => {
            if (!leg.ended) establish(leg);
          });
          return ok;
        }
        case 'hangup': {
          const req = parse(CallsHangupRequest, bodyOrEmpty);
          const leg = activeLeg(id);
          const established = leg.state === 'ESTABLISHED';
          const code =
            req.errorCode ?? (established ? 'NORMAL_HANGUP' : leg.direction === 'OUTBOUND' ? 'CANCELLED' : 'REJECTED');
          if (!ANY_STATE.has(code)) {
            if (NEEDS_ESTABLISHED.has(code) && !established)
              throw badRequest(`Error code ${code} requires an established call.`);
            if (!NEEDS_ESTABLISHED.has(code) && established)
              throw badRequest(`Error code ${code} requires a call that is not established.`);
            if (code === 'MACHINE_DETECTED' && leg.direction !== 'OUTBOUND')
              throw badRequest('Error code MACHINE_DETECTED requires an OUTBOUND call.');
          }
          if (established) finish(leg, code, 'API');
          else fail(leg, code, 'API');
          return { status: 200, json: callOf(leg) };
        }
        case 'connect': {
          const req = parse(CallsConnectWithNewCallRequest, body);
          const parent = establishedLeg(id);
          const conferenceId = parent.conferenceId ?? randomUUID();
          parent.conferenceId = conferenceId;
          const cr = req.callRequest;
          const child = newLeg({
            direction: 'OUTBOUND',
            endpoint: cr.endpoint,
            from: cr.from,
            to: endpointKey(cr.endpoint),
            script: scriptFor(endpointKey(cr.endpoint)),
            callsConfigurationId: parent.callsConfigurationId,
            platform: parent.platform,
            customData: cr.customData,
            connectTimeout: cr.connectTimeout,
            maxDuration: cr.maxDuration,
            machineDetection: cr.machineDetection,
            recording: cr.recording,
            conferenceId,
            state: 'CALLING',
          });
          void dial(child);
          return {
            status: 200,
            json: {
              conference: {
                id: conferenceId,
                name: req.conferenceRequest?.name ?? `conference-${conferenceId.slice(0, 8)}`,
                participants: [
                  { callId: parent.id, endpoint: parent.endpoint, state: 'JOINED', joinTime: nowIso() },
                  { callId: child.id, endpoint: child.endpoint, state: 'JOINING' },
                ],
                callsConfigurationId: parent.callsConfigurationId,
              },
              call: callOf(child),
            },
          };
        }
        default:
          throw notFound('Resource not found.');
      }
    }

    if (c === 'dialogs' && id === undefined) {
      if (method !== 'POST') throw new HttpError(405, 'METHOD_NOT_ALLOWED', 'Method not allowed.');
      const req = parse(CallsDialogRequest, body);
      const parent = activeLeg(req.parentCallId);
      const childReq = req.childCallRequest;
      if (!childReq?.endpoint)
        throw badRequest('Invalid request: childCallRequest.endpoint: the fake needs a child endpoint to dial.');
      if (parent.dialog && parent.dialog.state !== 'FINISHED' && parent.dialog.state !== 'FAILED')
        throw badRequest(`Call ${parent.id} is already in a dialog.`);
      const dialogId = randomUUID();
      parent.dialogId = dialogId;
      const child = newLeg({
        direction: 'OUTBOUND',
        endpoint: childReq.endpoint,
        from: childReq.from,
        to: endpointKey(childReq.endpoint),
        script: scriptFor(endpointKey(childReq.endpoint)),
        callsConfigurationId: parent.callsConfigurationId,
        platform: parent.platform,
        customData: childReq.customData,
        parentCallId: parent.id,
        dialogId,
        connectTimeout: childReq.connectTimeout,
        maxDuration: req.maxDuration,
        machineDetection: childReq.machineDetection,
        state: 'CALLING',
      });
      // GUESS: childCallHangup defaults to true (the parent ends when the child hangs up).
      const dialog: Dialog = {
        id: dialogId,
        parent,
        child,
        state: 'CREATED',
        startTime: nowIso(),
        childCallHangup: req.propagationOptions?.childCallHangup ?? true,
      };
      parent.dialog = dialog;
      child.dialog = dialog;
      emit(parent, 'DIALOG_CREATED', { dialog: dialogOf(dialog) });
      child.onEnd.push((leg) => {
        dialog.endTime = nowIso();
        if (dialog.state === 'CREATED') {
          dialog.state = 'FAILED';
          emit(parent, 'DIALOG_FAILED', {
            dialog: dialogOf(dialog),
            errorCode: errorCodeInfo(leg.errorCode ?? 'NORMAL_HANGUP'),
            hangupSource: leg.hangupSource === 'ENDPOINT' ? 'CHILD_ENDPOINT' : 'PLATFORM',
          });
          return;
        }
        if (dialog.state !== 'ESTABLISHED') return;
        dialog.state = 'FINISHED';
        emit(parent, 'DIALOG_FINISHED', {
          dialog: dialogOf(dialog),
          errorCode: errorCodeInfo(leg.errorCode ?? 'NORMAL_HANGUP'),
          hangupSource:
            leg.hangupSource === 'API' ? 'API' : leg.hangupSource === 'ENDPOINT' ? 'CHILD_ENDPOINT' : 'PLATFORM',
        });
        if (dialog.childCallHangup) finish(parent, 'NORMAL_HANGUP', 'PLATFORM');
      });
      parent.onEnd.push((leg) => {
        if (dialog.state === 'ESTABLISHED') {
          dialog.state = 'FINISHED';
          dialog.endTime = nowIso();
          emit(parent, 'DIALOG_FINISHED', {
            dialog: dialogOf(dialog),
            errorCode: errorCodeInfo(leg.errorCode ?? 'NORMAL_HANGUP'),
            hangupSource:
              leg.hangupSource === 'API' ? 'API' : leg.hangupSource === 'ENDPOINT' ? 'PARENT_ENDPOINT' : 'PLATFORM',
          });
          finish(child, 'NORMAL_HANGUP', 'PLATFORM');
        } else if (dialog.state === 'CREATED') {
          fail(child, 'CANCELLED', 'PLATFORM');
        }
      });
      void dial(child).then(() => {
        if (child.state === 'ESTABLISHED' && dialog.state === 'CREATED') {
          dialog.state = 'ESTABLISHED';
          dialog.establishTime = nowIso();
          emit(parent, 'DIALOG_ESTABLISHED', { dialog: dialogOf(dialog) });
        }
      });
      return { status: 200, json: dialogOf(dialog) };
    }

    if (c === 'recordings' && id === 'calls' && rest.length === 1 && method === 'GET') {
      const callId = rest[0] ?? '';
      const leg = calls.get(callId);
      if (!leg || leg.files.length === 0) throw notFound(`Recordings for call ${callId} not found.`);
      const first = leg.files[0];
      const last = leg.files[leg.files.length - 1];
      return {
        status: 200,
        json: {
          callId: leg.id,
          endpoint: leg.endpoint,
          direction: leg.direction,
          files: leg.files.map((f) => ({
            ...fileMeta(f),
            ...(f.customData ? { customData: { ...f.customData } } : {}),
          })),
          status: 'SUCCESSFUL',
          callsConfigurationId: leg.callsConfigurationId,
          ...(first ? { startTime: first.startTime } : {}),
          ...(last ? { endTime: last.endTime } : {}),
        },
      };
    }
    if (c === 'recordings' && id === 'files' && rest.length === 1 && method === 'GET') {
      const f = files.get(rest[0] ?? '');
      if (!f) throw notFound(`File ${rest[0] ?? ''} not found.`);
      return { status: 200, binary: { data: f.wav, type: 'audio/wav' } };
    }
    throw notFound('Resource not found.');
  }

  const errorBody = (messageId: string, text: string): InfobipErrorBody => ({
    requestError: { serviceException: { messageId, text } },
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > 1_000_000) break;
      chunks.push(chunk);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown = undefined;
    let jsonError: string | undefined;
    if (text.trim() !== '') {
      try {
        body = JSON.parse(text);
      } catch (e) {
        body = text;
        jsonError = (e as Error).message;
      }
    }
    const reply = (
      status: number,
      json?: unknown,
      headers: Record<string, string> = {},
      binary?: { data: Buffer; type: string },
    ) => {
      requests.push({ method, path, body, status });
      if (binary) {
        res.writeHead(status, {
          'content-type': binary.type,
          'content-length': String(binary.data.length),
          ...headers,
        });
        res.end(binary.data);
        return;
      }
      const payload = json === undefined ? '' : JSON.stringify(json);
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(payload);
    };
    try {
      if (size > 1_000_000) throw new HttpError(413, 'PAYLOAD_TOO_LARGE', 'Request body too large.');
      if (req.headers.authorization !== `App ${opts.apiKey}`)
        throw new HttpError(401, 'UNAUTHORIZED', 'Invalid login details');
      apiRequestCount++;
      if (chaos.rateLimitEvery && apiRequestCount % chaos.rateLimitEvery === 0) {
        throw new HttpError(429, 'TOO_MANY_REQUESTS', 'Too many requests', {
          'retry-after': String(opts.retryAfterSeconds ?? 1),
        });
      }
      const hasBody = text.trim() !== '';
      if (hasBody && !/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
        throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/json.');
      }
      if (jsonError) throw badRequest(`Invalid JSON: ${jsonError}`);
      const r = route(method, path, body, hasBody);
      reply(r.status, r.json, {}, r.binary);
    } catch (e) {
      if (e instanceof HttpError) reply(e.status, errorBody(e.messageId, e.message), e.headers);
      else reply(500, errorBody('GENERAL_ERROR', e instanceof Error ? e.message : String(e)));
    }
  }

  const port = await freePort('127.0.0.1');
  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });

  return {
    baseUrl: `http://127.0.0.1:${port}`,
    port,
    requests,
    callsCreated,
    webhookDeliveries,
    events,
    simulateInbound,
    setCallee: (destination, script) => void callees.set(destination, script),
    getCall: (callId) => {
      const leg = calls.get(callId);
      return leg ? callOf(leg) : undefined;
    },
    waitForEvent: (pred, timeoutMs = 5000) =>
      new Promise<CallsEvent>((resolve, reject) => {
        const found = events.find(pred);
        if (found) return resolve(found);
        const w = {
          pred,
          resolve: (e: CallsEvent) => {
            clearTimeout(t);
            resolve(e);
          },
        };
        const t = setTimeout(() => {
          eventWaiters.delete(w);
          reject(new Error(`fake-infobip: no matching event within ${timeoutMs} ms`));
        }, timeoutMs);
        eventWaiters.add(w);
      }),
    idle: (timeoutMs = 5000) =>
      new Promise<void>((resolve, reject) => {
        const check = () => inFlight === 0 && held.size === 0 && laterPending === 0;
        if (check()) return resolve();
        const timer = setTimeout(() => {
          clearInterval(poll);
          reject(new Error(`fake-infobip: not idle after ${timeoutMs} ms`));
        }, timeoutMs);
        const poll = setInterval(() => {
          if (check()) {
            clearInterval(poll);
            clearTimeout(timer);
            resolve();
          }
        }, 10);
      }),
    stop: async () => {
      stopped = true;
      for (const t of serverTimers) clearTimeout(t);
      serverTimers.clear();
      for (const leg of calls.values()) leg.abort.abort();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
