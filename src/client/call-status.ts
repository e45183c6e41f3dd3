// Reading outbound calls back from Temporal: one call's status and result, its transcript, and a
// search by campaign and recipient through visibility. Results and transcripts are read from the
// call's history and redacted as `dialflow call` prints them: digits entered at masked and hidden
// collects appear nowhere.
import { WorkflowNotFoundError, type Client, type WorkflowExecutionStatusName } from '@temporalio/client';
import type { PayloadCodec } from '@temporalio/common';
import { optionalTsToDate, tsToDate } from '@temporalio/common/lib/time.js';
import protos, { type temporal } from '@temporalio/proto';
import { createHmac, timingSafeEqual } from 'node:crypto';
import pLimit from 'p-limit';
import { decodeHistory } from '../codec/encryption.js';
import type { CallResult } from '../flow/interpreter.js';
import {
  callReport,
  readCallHistory,
  transcriptFromHistory,
  type CallReport,
  type TranscriptEvent,
} from './call-report.js';
import { parseCallWorkflowId } from './calls.js';

/** Workflow types of outbound calls: core v2 and the legacy v1 workflow, whose calls may still run. */
export const OUTBOUND_CALL_TYPES: readonly string[] = ['outboundCall', 'callWorkflow'];

export const CALL_STATUSES = [
  'running',
  'completed',
  'failed',
  'canceled',
  'terminated',
  'timedOut',
  'continuedAsNew',
  'paused',
  'unknown',
] as const;
export type CallStatusName = (typeof CALL_STATUSES)[number];

const STATUS_NAMES: Record<WorkflowExecutionStatusName, CallStatusName> = {
  RUNNING: 'running',
  COMPLETED: 'completed',
  FAILED: 'failed',
  CANCELLED: 'canceled',
  TERMINATED: 'terminated',
  TIMED_OUT: 'timedOut',
  CONTINUED_AS_NEW: 'continuedAsNew',
  PAUSED: 'paused',
  UNSPECIFIED: 'unknown',
  UNKNOWN: 'unknown',
};

const { WorkflowExecutionStatus } = protos.temporal.api.enums.v1;
function statusOfCode(code: temporal.api.enums.v1.WorkflowExecutionStatus | null | undefined): CallStatusName {
  // The enum's names read WORKFLOW_EXECUTION_STATUS_RUNNING …; the SDK's WorkflowExecutionStatusName is the tail.
  const name = (WorkflowExecutionStatus[code ?? 0] ?? '').replace(/^WORKFLOW_EXECUTION_STATUS_/, '');
  return STATUS_NAMES[name as WorkflowExecutionStatusName] ?? 'unknown';
}

export interface CallSummary {
  callId: string;
  campaignId: string;
  recipientId: string;
  status: CallStatusName;
  startTime: string;
  closeTime?: string;
  /** For a completed call: what it ended in (answered, busy, notCalled …). */
  outcome?: string;
}

/** A call's report without its transcript (GET …/transcript has that). */
export type CallResultReport = Omit<CallReport, 'events'>;

export interface CallDetails extends Omit<CallSummary, 'outcome'> {
  /** Once the call completed: its report, redacted. */
  result?: CallResultReport;
}

const notFound = (err: unknown): boolean => err instanceof WorkflowNotFoundError;

/** The outbound call with this workflow id, described; undefined when there is none. */
async function describeCall(client: Client, callId: string) {
  const ids = parseCallWorkflowId(callId);
  if (!ids) return undefined;
  const handle = client.workflow.getHandle(callId);
  try {
    const d = await handle.describe();
    if (!OUTBOUND_CALL_TYPES.includes(d.type)) return undefined;
    return { handle, ids, description: d };
  } catch (err) {
    if (!notFound(err)) throw err;
    return undefined;
  }
}

async function decodedHistory(
  handle: ReturnType<Client['workflow']['getHandle']>,
  codec: PayloadCodec,
): Promise<temporal.api.history.v1.IHistory> {
  return decodeHistory(await handle.fetchHistory(), codec);
}

/** A call's status, and its (redacted) result once it completed. Undefined: no such call. */
export async function readCall(client: Client, codec: PayloadCodec, callId: string): Promise<CallDetails | undefined> {
  const found = await describeCall(client, callId);
  if (!found) return undefined;
  const { handle, ids, description: d } = found;
  const details: CallDetails = {
    callId,
    ...ids,
    status: STATUS_NAMES[d.status.name],
    startTime: d.startTime.toISOString(),
    ...(d.closeTime ? { closeTime: d.closeTime.toISOString() } : {}),
  };
  if (details.status !== 'completed') return details;
  const history = await decodedHistory(handle, codec);
  const call = readCallHistory(history);
  if (!call?.result) return details;
  const { events: _events, ...result } = await callReport(
    call.input.flow,
    call.result,
    history,
    call.input.recipient?.timeZone ?? 'UTC',
  );
  return { ...details, result };
}

/** A call's transcript so far (all of it once the call is over), redacted. Undefined: no such call. */
export async function readCallTranscript(
  client: Client,
  codec: PayloadCodec,
  callId: string,
): Promise<TranscriptEvent[] | undefined> {
  const found = await describeCall(client, callId);
  if (!found) return undefined;
  const history = await decodedHistory(found.handle, codec);
  const call = readCallHistory(history);
  return call ? transcriptFromHistory(call.input.flow, history) : undefined;
}

export interface CallSearch {
  campaignId?: string;
  recipientId?: string;
  limit: number;
  /** From a previous page's `nextPageToken`. */
  pageToken?: string;
}

/**
 * Page tokens are the server's, signed with a key of ours (HMAC-SHA256 over the search's query and
 * the server's token): a token that was altered, made up or taken from another search is refused
 * before the server sees it. The key is derived from the payload key, so every API process of an
 * installation accepts the tokens of the others, across restarts.
 */
export class PageTokens {
  constructor(private readonly key: Uint8Array) {}

  private mac(query: string, token: Uint8Array): Buffer {
    return createHmac('sha256', this.key).update(query).update('\0').update(token).digest();
  }

  sign(query: string, token: Uint8Array): string {
    return `${Buffer.from(token).toString('base64url')}.${this.mac(query, token).toString('base64url')}`;
  }

  /** The server's token, or BadPageTokenError. */
  open(query: string, signed: string): Uint8Array {
    const [token, mac, ...rest] = signed.split('.');
    if (token === undefined || mac === undefined || rest.length > 0) throw new BadPageTokenError();
    const bytes = Buffer.from(token, 'base64url');
    const expected = this.mac(query, bytes);
    const given = Buffer.from(mac, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new BadPageTokenError();
    return bytes;
  }
}

/** A value that cannot be put in a visibility query's string literal. */
export const UNQUOTABLE = /['"\\\p{Cc}]/u;

/** A page token that is not one this search gave (or was signed with another payload key). */
export class BadPageTokenError extends Error {
  constructor() {
    super('pageToken is not a nextPageToken of this search');
    this.name = 'BadPageTokenError';
  }
}

/** Pages scanned per request when only a recipient is given (its calls are spread over campaigns). */
const RECIPIENT_SCAN_PAGES = 20;
/** Outcomes of completed calls of one page are read with this many requests at once. */
const RESULT_READS = 8;

function visibilityQuery(s: CallSearch): string {
  for (const v of [s.campaignId, s.recipientId])
    if (v !== undefined && UNQUOTABLE.test(v)) throw new RangeError(`cannot search for ${JSON.stringify(v)}`);
  const types = `WorkflowType IN (${OUTBOUND_CALL_TYPES.map((t) => `'${t}'`).join(', ')})`;
  if (s.campaignId !== undefined && s.recipientId !== undefined)
    return `${types} AND WorkflowId = 'call:${s.campaignId}:${s.recipientId}'`;
  // Campaign ids hold no ":": the prefix names exactly one campaign's calls.
  if (s.campaignId !== undefined) return `${types} AND WorkflowId STARTS_WITH 'call:${s.campaignId}:'`;
  return `${types} AND WorkflowId STARTS_WITH 'call:'`;
}

/**
 * Outbound calls, newest first, by campaign, recipient or both. Visibility cannot match the end of
 * a workflow id, so a recipient alone is found by scanning all calls a page at a time (at most
 * RECIPIENT_SCAN_PAGES pages of `limit` per request): such a page may come back empty with a
 * `nextPageToken`, and the search goes on from there.
 */
export async function searchCalls(
  client: Client,
  pageTokens: PageTokens,
  s: CallSearch,
): Promise<{ calls: CallSummary[]; nextPageToken?: string }> {
  const query = visibilityQuery(s);
  const onlyRecipient = s.campaignId === undefined ? s.recipientId : undefined;
  let token: Uint8Array | undefined = s.pageToken ? pageTokens.open(query, s.pageToken) : undefined;
  for (let scanned = 1; ; scanned++) {
    const page = await client.workflowService.listWorkflowExecutions({
      namespace: client.options.namespace,
      query,
      pageSize: s.limit,
      ...(token ? { nextPageToken: token } : {}),
    });
    token = page.nextPageToken?.length ? page.nextPageToken : undefined;
    const calls = (page.executions ?? []).flatMap((e) => {
      const callId = e.execution?.workflowId ?? '';
      const ids = parseCallWorkflowId(callId);
      if (!ids || (onlyRecipient !== undefined && ids.recipientId !== onlyRecipient)) return [];
      const closeTime = optionalTsToDate(e.closeTime);
      return [
        {
          runId: e.execution?.runId ?? undefined,
          summary: {
            callId,
            ...ids,
            status: statusOfCode(e.status),
            startTime: tsToDate(e.startTime ?? {}).toISOString(),
            ...(closeTime ? { closeTime: closeTime.toISOString() } : {}),
          } satisfies CallSummary as CallSummary,
        },
      ];
    });
    if (calls.length > 0 || !token || onlyRecipient === undefined || scanned >= RECIPIENT_SCAN_PAGES) {
      const read = pLimit(RESULT_READS);
      const summaries = await Promise.all(
        calls.map(({ runId, summary }) =>
          summary.status !== 'completed'
            ? summary
            : read(async () => {
                const result = (await client.workflow.getHandle(summary.callId, runId).result()) as CallResult;
                return { ...summary, outcome: result.outcome };
              }),
        ),
      );
      return { calls: summaries, ...(token ? { nextPageToken: pageTokens.sign(query, token) } : {}) };
    }
  }
}
