// Activities are built by a factory so tests can pass real or fake dependencies. They log through
// Temporal's activity logger (`log`): the worker routes it into the service's JSON log with the
// activity's workflow id, type and attempt attached. Never log a command's body or a request's URL
// path or body: they can carry masked input.
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import type { TelephonyCommand } from '../telephony/contract.js';
import { InvalidCommandError, type SmsMessage, type SmsSender, type TelephonyProvider } from '../telephony/provider.js';
import type { ProfileStore } from '../store/profiles.js';
import type { HttpResponseData } from '../flow/interpreter.js';
import { createCampaignActivities, type CampaignDeps } from './campaign.js';
import {
  guardedRequest,
  httpPolicyFromEnv,
  isPermanentHttpError,
  isTransientHttpError,
  type HttpPolicy,
} from './http.js';

export interface ActivityDeps {
  /** Campaign stores and the Temporal client that places calls. */
  campaigns: CampaignDeps;
  telephony: TelephonyProvider;
  sms: SmsSender;
  profiles: ProfileStore;
  /** What httpRequest may reach; from DIALFLOW_HTTP_ALLOW unless a test injects one. */
  http?: HttpPolicy;
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

function decodeBody(text: string, contentType: string | undefined): unknown {
  if ((contentType ?? '').includes('json')) {
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
      // A JSON content type with a body that is not JSON: the flow still sees the text.
      return text;
    }
  }
  return text;
}

/**
 * The request as failures name it: method and host. The URL is rendered from the flow, so its path
 * and query may carry what a caller typed (masked input too); failures end up in warnings, call
 * results, logs and the failure messages Temporal keeps in clear in history.
 */
function requestName(method: string, url: string): string {
  return `${method} ${URL.canParse(url) ? new URL(url).host : '(not a valid URL)'}`;
}

/** Network failures worth another attempt: a timeout, a reset, a refused connection, DNS. */
function transientMessage(err: Error, timeoutMs: number): string {
  if (
    err.name === 'TimeoutError' ||
    (err.name === 'AbortError' && err.cause instanceof Error && err.cause.name === 'TimeoutError')
  )
    return `timed out after ${timeoutMs} ms`;
  return err.message;
}

export function createActivities(deps: ActivityDeps) {
  return { ...createCallActivities(deps), ...createCampaignActivities(deps.campaigns) };
}

function createCallActivities(deps: ActivityDeps) {
  // Read once per worker: a bad allowlist stops the worker at start, not the first call.
  const policy = deps.http ?? httpPolicyFromEnv();
  return {
    /**
     * Returns the command it sent: a local activity's history marker keeps only its result, and
     * transcripts (`dialflow simulate`, `dialflow call`) read the commands of a call from there.
     */
    async sendTelephonyCommand(command: TelephonyCommand): Promise<TelephonyCommand> {
      try {
        await deps.telephony.send(command);
        return command;
      } catch (err) {
        if (err instanceof InvalidCommandError) {
          log.warn('the provider refused a command', {
            action: command.action,
            callId: command.callId,
            commandId: command.commandId,
            reason: err.message,
          });
          throw ApplicationFailure.nonRetryable(err.message, err.name);
        }
        throw err;
      }
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
     * One attempt of an HTTP request with the element's own timeout; Temporal's retry policy makes
     * the element's retries (the workflow allows up to six attempts, and this attempt's number says
     * whether another is wanted). A network error, a timeout or a 5xx fails the attempt as
     * retryable while the element has retries left; the last attempt returns it as the result (`ok`
     * false) for the flow's error branch. Any other response is returned as data (`ok`: status <
     * 400). A blocked address, a body over the limit, too many redirects or a bad URL fail at once
     * as non-retryable: no attempt could succeed.
     */
    async httpRequest(req: HttpRequestInput): Promise<ActionOutcome<HttpResponseData>> {
      const isJson = req.body !== undefined && typeof req.body !== 'string';
      const body =
        req.body !== undefined && req.method !== 'GET'
          ? isJson
            ? JSON.stringify(req.body)
            : String(req.body)
          : undefined;
      const headers = { ...(isJson ? { 'content-type': 'application/json' } : {}), ...req.headers };
      const { cancellationSignal: cancelled, info } = Context.current();
      const name = requestName(req.method, req.url);
      const retriesLeft = info.attempt <= req.retries;
      const failed = (reason: string, data?: HttpResponseData): ActionOutcome<HttpResponseData> => {
        if (retriesLeft) {
          log.info('HTTP request failed, trying again', { request: name, attempt: info.attempt, reason });
          throw ApplicationFailure.retryable(`${name}: ${reason}`, 'HttpRequestFailed');
        }
        return { ok: false, ...(data ? { data } : {}), error: `${name}: ${reason}` };
      };
      let res: Awaited<ReturnType<typeof guardedRequest>>;
      try {
        res = await guardedRequest(
          {
            method: req.method,
            url: req.url,
            headers,
            ...(body !== undefined ? { body } : {}),
            signal: AbortSignal.any([AbortSignal.timeout(req.timeoutMs), cancelled]),
          },
          policy,
        );
      } catch (err) {
        if (isPermanentHttpError(err)) throw ApplicationFailure.nonRetryable(`${name}: ${err.message}`, err.name);
        if (cancelled.aborted) throw err;
        // Anything else is retried only as the element allows (a POST may not be idempotent).
        if (!isTransientHttpError(err)) return failed(err instanceof Error ? err.message : String(err));
        return failed(transientMessage(err, req.timeoutMs));
      }
      const data: HttpResponseData = {
        status: res.status,
        body: decodeBody(res.text, res.headers['content-type']),
        headers: res.headers,
      };
      if (res.status >= 500) return failed(`HTTP ${res.status}`, data);
      return res.status < 400 ? { ok: true, data } : { ok: false, data, error: `HTTP ${res.status} from ${name}` };
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;

export type {
  ContactCap,
  CountCompletionsInput,
  DialSlotAnswer,
  DispatchInput,
  DispatchResult,
  PlaceCallsInput,
  PlaceCallsResult,
  RequestDialSlotInput,
} from './campaign.js';
