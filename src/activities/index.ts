// Activities are built by a factory so tests can pass real or fake dependencies.
import { ApplicationFailure, heartbeat, Context } from '@temporalio/activity';
import type { TelephonyCommand } from '../telephony/contract.js';
import { InvalidCommandError, type SmsMessage, type SmsSender, type TelephonyProvider } from '../telephony/provider.js';
import type { ProfileStore } from '../store/profiles.js';
import type { HttpResponseData } from '../flow/interpreter.js';
import { createCampaignActivities, type CampaignDeps } from './campaign.js';

export interface ActivityDeps {
  /** Campaign stores and the Temporal client that places calls (and signals the benchmark baseline). */
  campaigns: CampaignDeps;
  telephony: TelephonyProvider;
  sms: SmsSender;
  profiles: ProfileStore;
  /** Injected for tests; the global fetch otherwise. */
  fetch?: typeof fetch;
}

/** What a non-IVR action reports back to the flow. */
export interface ActionOutcome<T = unknown> {
  ok: boolean;
  data?: T;
  error?: string;
}

export interface HttpRequestInput {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: unknown;
  timeoutMs: number;
  retries: number;
}

const RESPONSE_BODY_LIMIT = 256 * 1024;

async function readBody(res: Response): Promise<unknown> {
  const text = (await res.text()).slice(0, RESPONSE_BODY_LIMIT);
  if ((res.headers.get('content-type') ?? '').includes('json')) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  return text;
}

export function createActivities(deps: ActivityDeps) {
  return { ...createCallActivities(deps), ...createCampaignActivities(deps.campaigns) };
}

function createCallActivities(deps: ActivityDeps) {
  const doFetch = deps.fetch ?? fetch;
  return {
    async sendTelephonyCommand(command: TelephonyCommand): Promise<void> {
      try {
        await deps.telephony.send(command);
      } catch (err) {
        if (err instanceof InvalidCommandError) throw ApplicationFailure.nonRetryable(err.message, err.name);
        throw err;
      }
    },

    /** Benchmark baseline: signal the calling workflow `signals` times, as events of a call would. */
    async baselineStep(signals: number): Promise<void> {
      const handle = deps.campaigns.client.workflow.getHandle(Context.current().info.workflowExecution?.workflowId ?? '');
      for (let i = 0; i < signals; i++) await handle.signal('baselineEvent', i);
    },

    async loadProfile(recipientId: string): Promise<Record<string, unknown>> {
      return deps.profiles.get(recipientId);
    },

    async sendSms(message: SmsMessage): Promise<ActionOutcome<{ messageId: string }>> {
      try {
        return { ok: true, data: await deps.sms.sendSms(message) };
      } catch (err) {
        if (err instanceof InvalidCommandError) return { ok: false, error: err.message };
        throw err;
      }
    },

    async updateProfile(recipientId: string, attributes: Record<string, unknown>): Promise<ActionOutcome> {
      await deps.profiles.update(recipientId, attributes);
      return { ok: true };
    },

    /**
     * One HTTP request with the element's own timeout and retries (on network errors and 5xx),
     * heartbeating between attempts. Any HTTP response is returned as data; `ok` is status < 400.
     */
    async httpRequest(req: HttpRequestInput): Promise<ActionOutcome<HttpResponseData>> {
      const isJson = req.body !== undefined && typeof req.body !== 'string';
      let lastError = 'no attempt';
      for (let attempt = 0; attempt <= req.retries; attempt++) {
        if (attempt > 0) {
          heartbeat({ attempt });
          await Context.current().sleep(Math.min(5_000, 250 * 2 ** attempt));
        }
        try {
          const res = await doFetch(req.url, {
            method: req.method,
            headers: { ...(isJson ? { 'content-type': 'application/json' } : {}), ...req.headers },
            ...(req.body !== undefined && req.method !== 'GET' ? { body: isJson ? JSON.stringify(req.body) : String(req.body) } : {}),
            signal: AbortSignal.timeout(req.timeoutMs),
          });
          const data: HttpResponseData = { status: res.status, body: await readBody(res), headers: Object.fromEntries(res.headers.entries()) };
          if (res.status >= 500 && attempt < req.retries) {
            lastError = `HTTP ${res.status}`;
            continue;
          }
          return res.status < 400 ? { ok: true, data } : { ok: false, data, error: `HTTP ${res.status} from ${req.method} ${new URL(req.url).host}` };
        } catch (err) {
          lastError = (err as Error).name === 'TimeoutError' ? `timed out after ${req.timeoutMs} ms` : (err as Error).message;
        }
      }
      return { ok: false, error: `${req.method} ${req.url}: ${lastError}` };
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;

export type { ContactCap, DispatchInput, DispatchResult } from './campaign.js';
