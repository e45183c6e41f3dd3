// A thin typed client of the Infobip Calls API (no official SDK covers Calls). Field names follow
// the official models (infobip-api-java-client: CallRequest, CallsPublicSayRequest, CallsPlayRequest,
// CallsDtmfCaptureRequest, CallsRecordingStartRequest, CallsDialogRequest, …) exactly, because the
// API rejects unknown fields.
//
// Every request is paced by one token bucket (the account's rate limit is per account, not per
// endpoint), 429 and 5xx are retried with exponential back-off and full jitter honouring
// Retry-After, and any other 4xx is a named, non-retryable error.
import { Counter, type Registry } from 'prom-client';

export type PhoneOrSipEndpoint =
  | { type: 'PHONE'; phoneNumber: string }
  | { type: 'SIP'; username: string; sipTrunkId?: string }
  | { type: 'WEBRTC'; identity: string };

/** `POST /calls/1/calls` (model CallRequest). */
export interface CreateCallRequest {
  endpoint: PhoneOrSipEndpoint;
  from: string;
  connectTimeout?: number;
  recording?: { recordingType: 'AUDIO'; customData?: Record<string, string>; filePrefix?: string };
  machineDetection?: { enabled: boolean };
  maxDuration?: number;
  customData?: Record<string, string>;
  callsConfigurationId?: string;
  externalId?: string;
}

/** The parts of model Call this adapter reads. */
export interface InfobipCall {
  id: string;
  state?: string;
  externalId?: string;
  customData?: Record<string, string>;
  [k: string]: unknown;
}

export type StopOn = { type: 'DTMF'; terminator?: string };

/** `POST /calls/1/calls/{callId}/say` (model CallsPublicSayRequest). */
export interface SayRequest {
  text: string;
  language: string;
  speechRate?: number;
  loopCount?: number;
  preferences?: { voiceGender?: 'FEMALE' | 'MALE'; voiceName?: string };
  stopOn?: StopOn;
  customData?: Record<string, string>;
}

export type PlayContent =
  { type: 'URL'; fileUrl: string } | { type: 'FILE'; fileId: string } | { type: 'RECORDING'; fileId: string };

/** `POST /calls/1/calls/{callId}/play` (model CallsPlayRequest). */
export interface PlayRequest {
  content: PlayContent;
  loopCount?: number;
  stopOn?: StopOn;
  customData?: Record<string, string>;
}

/** `POST /calls/1/calls/{callId}/capture/dtmf` (model CallsDtmfCaptureRequest); times in ms. */
export interface CaptureDtmfRequest {
  maxLength: number;
  timeout: number;
  digitTimeout?: number;
  terminator?: string;
  playContent?: PlayContent;
  customData?: Record<string, string>;
}

/** `POST /calls/1/calls/{callId}/start-recording` (model CallsRecordingStartRequest); times in s. */
export interface StartRecordingRequest {
  recording: {
    recordingType: 'AUDIO';
    maxSilence?: number;
    beep?: boolean;
    maxDuration?: number;
    customData?: Record<string, string>;
    filePrefix?: string;
  };
}

/** `POST /calls/1/dialogs` (model CallsDialogRequest). */
export interface CreateDialogRequest {
  parentCallId: string;
  childCallRequest: {
    endpoint: PhoneOrSipEndpoint;
    from: string;
    connectTimeout?: number;
    machineDetection?: { enabled: boolean };
  };
  maxDuration?: number;
}

export interface DialogResponse {
  id: string;
  state?: string;
  childCall?: InfobipCall;
  parentCall?: InfobipCall;
  [k: string]: unknown;
}

export interface ActionResponse {
  status?: 'PENDING' | 'IN_PROGRESS' | 'COMPLETED' | 'FAILED';
}

/** The API refused the request (4xx other than 429): repeating it cannot help. */
export class InfobipRequestError extends Error {
  override readonly name = 'InfobipRequestError';
  constructor(
    message: string,
    readonly status: number,
    readonly endpoint: string,
    readonly body: unknown,
  ) {
    super(message);
  }
}

/** The API could not be reached or kept failing (429/5xx) after every retry. */
export class InfobipUnavailableError extends Error {
  override readonly name = 'InfobipUnavailableError';
  constructor(
    message: string,
    readonly endpoint: string,
    /** True when the request may have been processed (a call may exist). */
    readonly ambiguous: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * Paces requests to `ratePerSecond` (GCRA, the virtual-scheduling form of a token bucket): each
 * caller reserves the next free slot at once, so concurrent callers are served in order, and a 429
 * with Retry-After pushes every later slot back, because the limit is the account's, not the caller's.
 */
export class TokenBucket {
  private tat = 0;
  private readonly intervalMs: number;
  private readonly toleranceMs: number;
  constructor(
    ratePerSecond: number,
    burst = 1,
    private readonly now: () => number = () => Date.now(),
  ) {
    if (!(ratePerSecond > 0)) throw new RangeError('requests per second must be positive');
    this.intervalMs = 1000 / ratePerSecond;
    this.toleranceMs = Math.max(0, burst - 1) * this.intervalMs;
  }

  /** Milliseconds to wait before the reserved slot (0 when it is free now). */
  reserve(): number {
    const t = this.now();
    this.tat = Math.max(this.tat, t);
    const wait = Math.max(0, this.tat - t - this.toleranceMs);
    this.tat += this.intervalMs;
    return wait;
  }

  async take(): Promise<void> {
    const wait = this.reserve();
    if (wait > 0) await sleep(wait);
  }

  /** Nobody gets a slot before `untilMs` (a 429's Retry-After). */
  pauseUntil(untilMs: number): void {
    this.tat = Math.max(this.tat, untilMs);
  }
}

export interface RetryPolicy {
  attempts: number;
  baseMs: number;
  maxMs: number;
  /**
   * The longest Retry-After we wait for. A server asking for more (a quota reset in an hour) makes
   * the request fail now instead of stalling every request of the process behind the shared bucket.
   */
  maxRetryAfterMs: number;
}
export const DEFAULT_RETRY: RetryPolicy = { attempts: 6, baseMs: 250, maxMs: 15_000, maxRetryAfterMs: 30_000 };

export interface InfobipClientOptions {
  baseUrl: string;
  apiKey: string;
  requestsPerSecond: number;
  retry?: Partial<RetryPolicy>;
  registry?: Registry;
  random?: () => number;
  /** Per-attempt timeout. */
  timeoutMs?: number;
  log?: (m: string) => void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Retry-After is seconds or an HTTP date. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const s = Number(header);
  if (Number.isFinite(s) && s >= 0) return s * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Full jitter: uniform in [0, min(max, base·2^attempt)]. */
export function backoffMs(attempt: number, policy: RetryPolicy, random: () => number): number {
  return Math.round(random() * Math.min(policy.maxMs, policy.baseMs * 2 ** attempt));
}

/** Connection errors where the request provably never reached the server. */
function notSent(err: unknown): boolean {
  const code = (err as { cause?: { code?: unknown } }).cause?.code;
  return code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN';
}

interface RequestOptions {
  /** Repeating it cannot cause a second effect that matters (GET, actions keyed by customData). */
  idempotent: boolean;
  body?: unknown;
  binary?: boolean;
}

export class InfobipClient {
  readonly bucket: TokenBucket;
  private readonly retry: RetryPolicy;
  private readonly random: () => number;
  private readonly base: string;
  private readonly requests?: Counter<'endpoint' | 'status'>;
  private readonly retries?: Counter<'endpoint' | 'reason'>;

  constructor(private readonly opts: InfobipClientOptions) {
    this.bucket = new TokenBucket(opts.requestsPerSecond);
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.random = opts.random ?? Math.random;
    this.base = opts.baseUrl.replace(/\/+$/, '');
    if (opts.registry) {
      this.requests = getOrCreateCounter(
        opts.registry,
        'dialflow_infobip_requests_total',
        'Infobip API requests by endpoint and HTTP status (status "error" when no response)',
        ['endpoint', 'status'],
      );
      this.retries = getOrCreateCounter(
        opts.registry,
        'dialflow_infobip_retries_total',
        'Infobip API requests retried, by endpoint and reason',
        ['endpoint', 'reason'],
      );
    }
  }

  createCall(body: CreateCallRequest): Promise<InfobipCall> {
    // Not idempotent: a 5xx may have created the call, so only provably unprocessed attempts repeat.
    return this.request<InfobipCall>('POST', '/calls/1/calls', {}, { idempotent: false, body });
  }
  getCall(callId: string): Promise<InfobipCall> {
    return this.request<InfobipCall>('GET', '/calls/1/calls/{callId}', { callId }, { idempotent: true });
  }
  say(callId: string, body: SayRequest): Promise<ActionResponse> {
    return this.request('POST', '/calls/1/calls/{callId}/say', { callId }, { idempotent: true, body });
  }
  play(callId: string, body: PlayRequest): Promise<ActionResponse> {
    return this.request('POST', '/calls/1/calls/{callId}/play', { callId }, { idempotent: true, body });
  }
  captureDtmf(callId: string, body: CaptureDtmfRequest): Promise<ActionResponse> {
    return this.request('POST', '/calls/1/calls/{callId}/capture/dtmf', { callId }, { idempotent: true, body });
  }
  startRecording(callId: string, body: StartRecordingRequest): Promise<ActionResponse> {
    return this.request('POST', '/calls/1/calls/{callId}/start-recording', { callId }, { idempotent: true, body });
  }
  stopRecording(callId: string): Promise<ActionResponse> {
    return this.request('POST', '/calls/1/calls/{callId}/stop-recording', { callId }, { idempotent: true });
  }
  answer(callId: string, customData?: Record<string, string>): Promise<ActionResponse> {
    return this.request(
      'POST',
      '/calls/1/calls/{callId}/answer',
      { callId },
      { idempotent: true, body: customData ? { customData } : {} },
    );
  }
  hangup(callId: string): Promise<ActionResponse> {
    return this.request('POST', '/calls/1/calls/{callId}/hangup', { callId }, { idempotent: true, body: {} });
  }
  createDialog(body: CreateDialogRequest): Promise<DialogResponse> {
    return this.request<DialogResponse>('POST', '/calls/1/dialogs', {}, { idempotent: false, body });
  }
  /** A call's recordings with each file's customData (model CallsPublicRecording), which CALL_RECORDING_READY lacks. */
  getCallRecordings(callId: string): Promise<{
    callId?: string;
    files?: Array<{ id: string; customData?: Record<string, string> } & Record<string, unknown>>;
  }> {
    return this.request('GET', '/calls/1/recordings/calls/{callId}', { callId }, { idempotent: true });
  }
  /** The bytes of a recorded file and its content type. */
  async downloadRecordingFile(fileId: string): Promise<{ data: Uint8Array; contentType: string }> {
    return this.request('GET', '/calls/1/recordings/files/{fileId}', { fileId }, { idempotent: true, binary: true });
  }

  private async request<T>(
    method: 'GET' | 'POST',
    template: string,
    params: Record<string, string>,
    o: RequestOptions,
  ): Promise<T> {
    const path = template.replace(/\{(\w+)\}/g, (_, k: string) => encodeURIComponent(params[k] ?? ''));
    const endpoint = `${method} ${template}`;
    const headers: Record<string, string> = {
      Authorization: `App ${this.opts.apiKey}`,
      Accept: o.binary ? '*/*' : 'application/json',
    };
    if (o.body !== undefined) headers['Content-Type'] = 'application/json';
    let lastError: Error | undefined;
    for (let attempt = 0; attempt < this.retry.attempts; attempt++) {
      await this.bucket.take();
      let res: Response;
      try {
        res = await fetch(`${this.base}${path}`, {
          method,
          headers,
          ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
          signal: AbortSignal.timeout(this.opts.timeoutMs ?? 15_000),
        });
      } catch (err) {
        // fetch fails with a TypeError (network: refused, reset, DNS, TLS) or, at our timeout, a DOMException.
        if (!(err instanceof TypeError || err instanceof DOMException)) throw err;
        this.requests?.inc({ endpoint, status: 'error' });
        lastError = err;
        if (!o.idempotent && !notSent(err))
          throw new InfobipUnavailableError(
            `${endpoint}: ${err.message} (the request may have been processed)`,
            endpoint,
            true,
            { cause: err },
          );
        this.retries?.inc({ endpoint, reason: 'network' });
        await sleep(backoffMs(attempt, this.retry, this.random));
        continue;
      }
      this.requests?.inc({ endpoint, status: String(res.status) });
      if (res.ok) return this.success<T>(res, endpoint, o);
      const body = await readBody(res);
      if (res.status === 429 || res.status >= 500) {
        // A 429 was not processed; of the 5xx only 503 says so. Others may have created a call.
        if (!o.idempotent && res.status !== 429 && res.status !== 503)
          throw new InfobipUnavailableError(
            `${endpoint} answered ${res.status} (the request may have been processed)`,
            endpoint,
            true,
          );
        const after = retryAfterMs(res.headers.get('retry-after'));
        if (after !== undefined && after > this.retry.maxRetryAfterMs) {
          // Waiting that long would hold this command (and, through the bucket, every other one)
          // far past the requester's timeout; fail now: 429/503 say nothing was processed.
          throw new InfobipUnavailableError(
            `${endpoint} answered ${res.status} with Retry-After ${Math.round(after / 1000)} s (more than ${Math.round(this.retry.maxRetryAfterMs / 1000)} s)`,
            endpoint,
            false,
          );
        }
        if (res.status === 429 && after !== undefined) this.bucket.pauseUntil(Date.now() + after);
        this.retries?.inc({ endpoint, reason: String(res.status) });
        lastError = new Error(`${endpoint} answered ${res.status}`);
        await sleep(Math.max(after ?? 0, backoffMs(attempt, this.retry, this.random)));
        continue;
      }
      throw new InfobipRequestError(
        `${endpoint} refused with ${res.status}: ${describe(body)}`,
        res.status,
        endpoint,
        body,
      );
    }
    // Non-idempotent requests only get here through answers that say "not processed" (429, 503,
    // connection refused), so nothing was created.
    throw new InfobipUnavailableError(
      `${endpoint} failed after ${this.retry.attempts} attempts: ${lastError?.message ?? 'unknown error'}`,
      endpoint,
      false,
      lastError ? { cause: lastError } : undefined,
    );
  }

  /**
   * A 2xx answer's body. If it cannot be read (connection cut, not JSON) the request was processed
   * all the same: for a created call that is the ambiguous case, never a plain error that would
   * make the caller believe nothing happened.
   */
  private async success<T>(res: Response, endpoint: string, o: RequestOptions): Promise<T> {
    try {
      if (o.binary)
        return {
          data: new Uint8Array(await res.arrayBuffer()),
          contentType: res.headers.get('content-type') ?? 'application/octet-stream',
        } as T;
      const text = await res.text();
      return (text ? JSON.parse(text) : {}) as T;
    } catch (err) {
      if (!(err instanceof SyntaxError) && !(err instanceof TypeError) && !(err instanceof DOMException)) throw err;
      throw new InfobipUnavailableError(
        `${endpoint} answered ${res.status} with an unreadable body (${err.name})`,
        endpoint,
        true,
        { cause: err },
      );
    }
  }
}

/** An error answer's body: JSON if it is, else its text ('' if it cannot be read: the status says enough). */
async function readBody(res: Response): Promise<unknown> {
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    // The body broke off (TypeError) or our timeout fired while reading it (DOMException).
    if (!(err instanceof TypeError || err instanceof DOMException)) throw err;
    text = '';
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    return text;
  }
}

/** Infobip's error body: `{requestError:{serviceException:{messageId,text}}}` or `{errorCode, description}`. */
function describe(body: unknown): string {
  if (typeof body === 'string') return body.slice(0, 300) || '(empty body)';
  const b = body as {
    requestError?: { serviceException?: { messageId?: string; text?: string } };
    description?: string;
    errorCode?: string;
    message?: string;
  } | null;
  const se = b?.requestError?.serviceException;
  if (se) return `${se.messageId ?? ''} ${se.text ?? ''}`.trim();
  return [b?.errorCode, b?.description ?? b?.message].filter(Boolean).join(' ') || JSON.stringify(body).slice(0, 300);
}

/** One registry may be shared by the provider and the webhook server in one process. */
export function getOrCreateCounter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: L[],
): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<L>;
  return new Counter({ name, help, labelNames, registers: [registry] });
}

/**
 * Our destination → an Infobip endpoint: E.164 → PHONE (digits only, as the API's examples),
 * `sip:user@host` → SIP, `webrtc:identity` → WEBRTC.
 */
export function endpointFor(to: string, sipTrunkId?: string): PhoneOrSipEndpoint {
  if (/^sips?:/i.test(to)) {
    const user = to.replace(/^sips?:/i, '').split('@')[0] ?? '';
    return { type: 'SIP', username: user, ...(sipTrunkId ? { sipTrunkId } : {}) };
  }
  if (/^webrtc:/i.test(to)) return { type: 'WEBRTC', identity: to.slice('webrtc:'.length) };
  return { type: 'PHONE', phoneNumber: phoneDigits(to) };
}

export function phoneDigits(n: string): string {
  return n.replace(/[^0-9]/g, '');
}
