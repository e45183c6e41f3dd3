// The campaign report as CSV, for spreadsheets. Cells carry what recipients files and flows put
// there (ids, names rendered into the data payload), so every cell that a spreadsheet would read as
// a formula (=, +, -, @, tab, CR, and their full-width forms) is prefixed with a single quote —
// the OWASP advice against CSV injection.
import { stringify } from 'csv-stringify/sync';
import type { CallRecord } from '../store/campaigns.js';

export const REPORT_COLUMNS = ['row', 'recipientId', 'outcome', 'attempts', 'durationSeconds', 'responses'] as const;

/** The `dataPayload.<key>` columns of these records: every key any of them has, sorted. */
export function reportPayloadKeys(records: Iterable<CallRecord>, into = new Set<string>()): Set<string> {
  for (const r of records) for (const k of Object.keys(r.dataPayload ?? {})) into.add(k);
  return into;
}

/** The report's header for these payload keys (sorted). */
export function reportHeader(payloadKeys: readonly string[]): string[] {
  return [...REPORT_COLUMNS, ...payloadKeys.map((k) => `dataPayload.${k}`), 'recordings', 'error'];
}

/** One call's cells, in the order of `reportHeader(payloadKeys)`. */
export function reportRow(r: CallRecord, payloadKeys: readonly string[]): Array<string | number> {
  return [
    r.row,
    r.recipientId,
    r.outcome,
    r.dials,
    (r.durationMs / 1000).toFixed(1),
    r.responses.map((t) => `${t.element}:${t.branch}${t.input !== undefined ? `(${t.input})` : ''}`).join(' '),
    ...payloadKeys.map((k) => r.dataPayload?.[k] ?? ''),
    (r.recordings ?? []).map((x) => x.recordingId).join(' '),
    r.error ?? '',
  ];
}

/** csv-stringify options of the report (the API streams with the same ones). */
export const REPORT_CSV_OPTIONS = { escape_formulas: true, record_delimiter: 'unix' } as const;

/**
 * One line per call. Each key of the tracking data payload gets its own `dataPayload.<key>` column
 * (a JSON blob in one cell is of no use in a spreadsheet); then the call's recordings (ids, for
 * `dialflow recordings get`, a whole-call recording that came after the call closed included), and
 * `error` last.
 */
export function reportCsv(records: CallRecord[]): string {
  const payloadKeys = [...reportPayloadKeys(records)].sort();
  return stringify([reportHeader(payloadKeys), ...records.map((r) => reportRow(r, payloadKeys))], REPORT_CSV_OPTIONS);
}
