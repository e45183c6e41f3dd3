// Recipients files (CSV or NDJSON), streamed row by row: validated, normalised, de-duplicated and
// cut into pages that the campaign workflow's activity loads one at a time. A million-row file
// never sits in memory; only a fixed-size hash per id and per phone does, for de-duplication.
import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { parse } from 'csv-parse';
import { parsePhoneNumberFromString } from 'libphonenumber-js/min';
import { z } from 'zod';
import type { Recipient } from '../flow/interpreter.js';
import { withTimeZone } from '../flow/zone.js';
import { IANAZone } from 'luxon';

/** One staged recipient: its file row, the recipient and provider hints (the simulator's persona). */
export interface PageRow {
  row: number;
  recipient: Recipient;
  hints?: Record<string, unknown>;
}

export interface RowProblem {
  row: number;
  code: 'row.missingColumn' | 'row.invalidPhone' | 'row.invalidTimeZone' | 'row.invalidPersona' | 'row.malformed' | 'row.duplicate';
  message: string;
}

export interface StagingResult {
  accepted: number;
  pages: number;
  rejected: RowProblem[];
  /** Rejected rows beyond this many are counted, not listed. */
  rejectedTotal: number;
  duplicates: number;
  format: 'csv' | 'ndjson';
}

export const PAGE_SIZE = 500;
const MAX_LISTED_PROBLEMS = 10_000;

const idSchema = z.union([z.string(), z.number()]).transform(String).pipe(z.string().trim().min(1).max(200));

/** Validate and normalise one row (already split into fields). */
export function normaliseRow(row: number, fields: Record<string, unknown>): PageRow | RowProblem {
  const id = idSchema.safeParse(fields.id);
  if (!id.success) return { row, code: 'row.missingColumn', message: `row ${row}: missing "id"` };
  if (fields.phone === undefined || fields.phone === '') return { row, code: 'row.missingColumn', message: `row ${row}: missing "phone"` };
  const phone = parsePhoneNumberFromString(String(fields.phone));
  if (!phone?.isValid()) return { row, code: 'row.invalidPhone', message: `row ${row}: "phone" is not a valid international number (E.164, e.g. +385915550000)` };
  const { persona, timeZone, id: _id, phone: _phone, ...attributes } = fields;
  if (timeZone !== undefined && timeZone !== '' && (typeof timeZone !== 'string' || !IANAZone.isValidZone(timeZone))) {
    return { row, code: 'row.invalidTimeZone', message: `row ${row}: "timeZone" ${JSON.stringify(timeZone)} is not an IANA time zone` };
  }
  let hints: Record<string, unknown> | undefined;
  if (persona !== undefined && persona !== '') {
    try {
      hints = { persona: typeof persona === 'string' ? (JSON.parse(persona) as unknown) : persona };
    } catch {
      return { row, code: 'row.invalidPersona', message: `row ${row}: "persona" is not JSON` };
    }
  }
  const recipient = withTimeZone({ ...attributes, id: id.data, phone: phone.number, ...(typeof timeZone === 'string' && timeZone !== '' ? { timeZone } : {}) });
  return { row, recipient, ...(hints ? { hints } : {}) };
}

/** Rows of a file as field maps with their 1-based line numbers (the header is line 1 in CSV). */
async function* rowsOf(file: string, format: 'csv' | 'ndjson'): AsyncGenerator<{ row: number; fields?: Record<string, unknown>; error?: string }> {
  if (format === 'ndjson') {
    const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
    let n = 0;
    for await (const line of lines) {
      n += 1;
      if (line.trim() === '') continue;
      try {
        const v = JSON.parse(line) as unknown;
        if (!v || typeof v !== 'object' || Array.isArray(v)) yield { row: n, error: `row ${n}: not a JSON object` };
        else yield { row: n, fields: v as Record<string, unknown> };
      } catch {
        yield { row: n, error: `row ${n}: not valid JSON` };
      }
    }
    return;
  }
  // Lenient on column counts: a short or long row is reported by its content, never a crash.
  const parser = createReadStream(file).pipe(parse({ columns: (header: string[]) => header.map((h) => h.trim()), bom: true, skip_empty_lines: true, relax_column_count: true, trim: true, info: true }));
  try {
    for await (const rec of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) yield { row: rec.info.lines, fields: rec.record };
  } catch (err) {
    yield { row: -1, error: `unreadable CSV: ${(err as Error).message}` };
  }
}

/** A 48-bit hash: a million keys in a Set stay a few dozen MB, collisions are negligible. */
function key(kind: string, value: string): number {
  return createHash('sha1').update(`${kind}:${value}`).digest().readUIntBE(0, 6);
}

export function formatOf(file: string): 'csv' | 'ndjson' {
  return /\.(nd)?jsonl?$/i.test(file) || /\.ndjson$/i.test(file) ? 'ndjson' : 'csv';
}

/**
 * Stream a recipients file into pages: `writePage(n, rows)` is called for each full page (and the
 * last one). Problems are returned with row numbers; duplicates (same id or same phone) are
 * reported and called once.
 */
export async function stageRecipients(file: string, writePage: (n: number, rows: PageRow[]) => Promise<void>, opts: { pageSize?: number; format?: 'csv' | 'ndjson' } = {}): Promise<StagingResult> {
  const format = opts.format ?? formatOf(file);
  const pageSize = opts.pageSize ?? PAGE_SIZE;
  const seen = new Set<number>();
  const result: StagingResult = { accepted: 0, pages: 0, rejected: [], rejectedTotal: 0, duplicates: 0, format };
  const reject = (p: RowProblem) => {
    result.rejectedTotal += 1;
    if (result.rejected.length < MAX_LISTED_PROBLEMS) result.rejected.push(p);
  };
  let page: PageRow[] = [];
  const flush = async () => {
    if (page.length === 0) return;
    await writePage(result.pages, page);
    result.pages += 1;
    page = [];
  };
  for await (const r of rowsOf(file, format)) {
    if (r.error || !r.fields) {
      reject({ row: r.row, code: 'row.malformed', message: r.error ?? `row ${r.row}: malformed` });
      continue;
    }
    const n = normaliseRow(r.row, r.fields);
    if ('code' in n) {
      reject(n);
      continue;
    }
    const idKey = key('id', n.recipient.id);
    const phoneKey = key('phone', n.recipient.phone);
    if (seen.has(idKey) || seen.has(phoneKey)) {
      result.duplicates += 1;
      reject({ row: n.row, code: 'row.duplicate', message: `row ${n.row}: ${seen.has(idKey) ? `id "${n.recipient.id}"` : 'phone number'} already listed earlier: called once` });
      continue;
    }
    seen.add(idKey);
    seen.add(phoneKey);
    page.push(n);
    result.accepted += 1;
    if (page.length >= pageSize) await flush();
  }
  await flush();
  return result;
}
