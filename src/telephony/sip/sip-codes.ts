// SIP final responses (and baresip's close reasons) → the contract's error codes. The table is
// exported so docs/providers.md can be generated from it and every row is tested.
import type { ErrorCode } from '../ids.js';

export interface SipCodeRow {
  /** A status code, a range `5xx`, or a reason baresip reports without a code. */
  match: number | `${number}xx` | string;
  errorCode: ErrorCode;
  /** Why, for the docs. */
  note: string;
}

/** Rows are tried in order: exact codes first, then classes, then reason texts. */
export const SIP_CODE_TABLE: readonly SipCodeRow[] = [
  { match: 486, errorCode: 'BUSY', note: 'Busy Here' },
  { match: 600, errorCode: 'BUSY', note: 'Busy Everywhere' },
  { match: 603, errorCode: 'REJECTED', note: 'Decline' },
  { match: 403, errorCode: 'REJECTED', note: 'Forbidden (the callee or its carrier refused)' },
  { match: 607, errorCode: 'REJECTED', note: 'Unwanted' },
  { match: 480, errorCode: 'NO_ANSWER', note: 'Temporarily Unavailable (not answering, not registered)' },
  { match: 408, errorCode: 'NO_ANSWER', note: 'Request Timeout' },
  { match: 487, errorCode: 'NO_ANSWER', note: 'Request Terminated: our ring timeout cancelled the call' },
  { match: 404, errorCode: 'UNREACHABLE', note: 'Not Found' },
  { match: 410, errorCode: 'UNREACHABLE', note: 'Gone' },
  { match: 484, errorCode: 'UNREACHABLE', note: 'Address Incomplete' },
  { match: 604, errorCode: 'UNREACHABLE', note: 'Does Not Exist Anywhere' },
  { match: 485, errorCode: 'UNREACHABLE', note: 'Ambiguous' },
  { match: 503, errorCode: 'NETWORK_ERROR', note: 'Service Unavailable' },
  { match: '5xx', errorCode: 'NETWORK_ERROR', note: 'any other server failure' },
  {
    match: '4xx',
    errorCode: 'INTERNAL_ERROR',
    note: 'any other request failure (401/407 auth, 488 codecs …): a configuration problem',
  },
  { match: '6xx', errorCode: 'REJECTED', note: 'any other global failure' },
  {
    match: 'Connection timed out',
    errorCode: 'NETWORK_ERROR',
    note: 'no SIP answer at all (32 s transaction timeout)',
  },
  {
    match: 'Connection refused',
    errorCode: 'NETWORK_ERROR',
    note: 'nothing listens at the trunk address (ICMP / TCP refused)',
  },
  { match: 'ring timeout', errorCode: 'NO_ANSWER', note: 'our own ring timeout expired and the call was cancelled' },
];

export interface SipOutcome {
  errorCode: ErrorCode;
  /** The SIP status code, when the reason carried one. */
  status?: number;
  reason: string;
}

/**
 * Map a SIP status (number) or a baresip close reason such as `486 Busy Here`,
 * `Connection timed out` to an error code. Unknown reasons are INTERNAL_ERROR.
 */
export function mapSipFailure(reason: string | number): SipOutcome {
  const text = String(reason).trim();
  const m = /^([1-6]\d\d)\b/.exec(text);
  const status = m?.[1] ? Number(m[1]) : undefined;
  if (status !== undefined) {
    const exact = SIP_CODE_TABLE.find((r) => r.match === status);
    if (exact) return { errorCode: exact.errorCode, status, reason: text };
    const cls = SIP_CODE_TABLE.find((r) => r.match === `${Math.floor(status / 100)}xx`);
    if (cls) return { errorCode: cls.errorCode, status, reason: text };
    return { errorCode: 'INTERNAL_ERROR', status, reason: text };
  }
  const lower = text.toLowerCase();
  const byText = SIP_CODE_TABLE.find(
    (r) => typeof r.match === 'string' && !/^\dxx$/.test(r.match) && lower.includes(r.match.toLowerCase()),
  );
  return { errorCode: byText?.errorCode ?? 'INTERNAL_ERROR', reason: text };
}

/** Label for the dials-by-response metric: the status code, or a short reason class. */
export function responseLabel(reason: string | number): string {
  const text = String(reason).trim();
  const m = /^([1-6]\d\d)\b/.exec(text);
  if (m?.[1]) return m[1];
  if (/timed out/i.test(text)) return 'timeout';
  if (/refused/i.test(text)) return 'refused';
  if (/ring timeout/i.test(text)) return 'ring-timeout';
  return 'other';
}
