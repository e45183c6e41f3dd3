// Recipients files (CSV or NDJSON), streamed row by row: validated, normalised, de-duplicated and
// cut into pages that the campaign workflow's activity loads one at a time. A million-row file
// never sits in memory; only a fixed-size hash per id and per phone does, for de-duplication.
// The source is a file (the CLI) or any byte stream (an HTTP upload): the same reader and checks.
import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { CsvError } from 'csv-parse';
import { parse as parseCsv } from 'csv-parse/sync';
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

export const ROW_CODES = [
  'row.missingColumn',
  'row.invalidPhone',
  'row.invalidTimeZone',
  'row.invalidPersona',
  'row.malformed',
  'row.encoding',
  'row.duplicate',
] as const;
export type RowCode = (typeof ROW_CODES)[number];

export interface RowProblem {
  row: number;
  code: RowCode;
  message: string;
}

export interface StagingResult {
  /** Data rows read (non-blank lines after the header): always accepted + duplicates + invalid. */
  rows: number;
  accepted: number;
  /** Rows rejected for their content (not duplicates). */
  invalid: number;
  /** Rejected rows by code, duplicates included. */
  byCode: Partial<Record<RowCode, number>>;
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
  if (fields.phone === undefined || fields.phone === '')
    return { row, code: 'row.missingColumn', message: `row ${row}: missing "phone"` };
  const phone = parsePhoneNumberFromString(String(fields.phone));
  if (!phone?.isValid())
    return {
      row,
      code: 'row.invalidPhone',
      message: `row ${row}: "phone" is not a valid international number (E.164, e.g. +385915550000)`,
    };
  const { persona, timeZone, id: _id, phone: _phone, ...attributes } = fields;
  if (timeZone !== undefined && timeZone !== '' && (typeof timeZone !== 'string' || !IANAZone.isValidZone(timeZone))) {
    return {
      row,
      code: 'row.invalidTimeZone',
      message: `row ${row}: "timeZone" ${JSON.stringify(timeZone)} is not an IANA time zone`,
    };
  }
  let hints: Record<string, unknown> | undefined;
  if (persona !== undefined && persona !== '') {
    try {
      hints = { persona: typeof persona === 'string' ? (JSON.parse(persona) as unknown) : persona };
    } catch {
      return { row, code: 'row.invalidPersona', message: `row ${row}: "persona" is not JSON` };
    }
  }
  const recipient = withTimeZone({
    ...attributes,
    id: id.data,
    phone: phone.number,
    ...(typeof timeZone === 'string' && timeZone !== '' ? { timeZone } : {}),
  });
  return { row, recipient, ...(hints ? { hints } : {}) };
}

/**
 * A file that cannot be staged at all: unreadable, or no readable header (then nothing was staged;
 * a read error part-way leaves pages behind but no campaign, whose metadata is written last).
 */
export class RecipientsFileError extends Error {
  override readonly name = 'RecipientsFileError';
}

/** Bytes in one row, beyond which the row is reported instead of buffered. */
export const MAX_ROW_BYTES = 64 * 1024;

interface RawLine {
  line: number;
  bytes: Buffer;
  /** Longer than MAX_ROW_BYTES: only the start is kept. */
  tooLong: boolean;
}

/** Recipients from a byte stream rather than a file; `name` stands for the file in messages. */
export interface RecipientsStream {
  name: string;
  stream: AsyncIterable<Buffer | Uint8Array>;
}
export type RecipientsSource = string | RecipientsStream;

const sourceName = (source: RecipientsSource): string => (typeof source === 'string' ? source : source.name);

/**
 * Physical lines of a file as bytes with 1-based line numbers, split on LF (a CR before it is
 * dropped). Bytes, not text: a row that is not UTF-8 is reported on its own, instead of being
 * mangled into U+FFFD by a decoding stream.
 */
async function* linesOf(source: RecipientsSource): AsyncGenerator<RawLine> {
  let parts: Buffer[] = [];
  let size = 0;
  let line = 1;
  const take = (): RawLine => {
    let bytes = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    if (bytes.at(-1) === 0x0d) bytes = bytes.subarray(0, -1);
    const raw = { line, bytes, tooLong: size > MAX_ROW_BYTES };
    parts = [];
    size = 0;
    line += 1;
    return raw;
  };
  const keep = (chunk: Buffer) => {
    if (size < MAX_ROW_BYTES) parts.push(chunk.subarray(0, MAX_ROW_BYTES - size));
    size += chunk.length;
  };
  try {
    const chunks = typeof source === 'string' ? (createReadStream(source) as AsyncIterable<Buffer>) : source.stream;
    for await (const bytes of chunks) {
      const chunk = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      let from = 0;
      for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, from)) {
        keep(chunk.subarray(from, nl));
        yield take();
        from = nl + 1;
      }
      if (from < chunk.length) keep(chunk.subarray(from));
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && code.startsWith('E'))
      throw new RecipientsFileError(`cannot read ${sourceName(source)}: ${code}`, { cause: err });
    throw err;
  }
  if (size > 0) yield take();
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** The line as text, or undefined when it is not UTF-8. */
function decodeLine(bytes: Buffer): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch (err) {
    if (err instanceof TypeError) return undefined;
    throw err;
  }
}

type RawRow = { row: number; fields: Record<string, unknown> } | { row: number; problem: RowProblem };

/** Fields of one CSV line, or why the line is not one CSV record. */
function csvFields(text: string): string[] | string {
  // Without a quote a line is plain comma-separated fields; only quoted lines need the CSV parser.
  if (!text.includes('"'))
    return text.includes('\r') ? 'a carriage return inside the row' : text.split(',').map((f) => f.trim());
  try {
    const records = parseCsv(text, { relax_column_count: true, trim: true }) as string[][];
    return records.length === 1 && records[0] ? records[0] : 'a carriage return inside the row';
  } catch (err) {
    if (!(err instanceof CsvError)) throw err;
    if (err.code === 'CSV_QUOTE_NOT_CLOSED')
      return 'a quoted field is not closed on this line (a row is one line; a field cannot span lines)';
    if (err.code === 'INVALID_OPENING_QUOTE' || err.code === 'CSV_INVALID_CLOSING_QUOTE')
      return 'a stray quote: a field containing " is quoted, with the quote doubled, e.g. "An""a"';
    return err.message.replace(/ at line \d+/, '');
  }
}

/**
 * Rows of a file, each a field map or a problem, with its 1-based line number (the header is line 1
 * in CSV). One row per line, parsed on its own: a broken row is reported and the next line starts
 * afresh, so a stray or unclosed quote can never swallow the rows after it. Blank lines are no rows.
 */
async function* rowsOf(source: RecipientsSource, format: 'csv' | 'ndjson'): AsyncGenerator<RawRow> {
  const file = sourceName(source);
  let header: string[] | undefined = format === 'ndjson' ? [] : undefined;
  for await (const raw of linesOf(source)) {
    const bytes =
      raw.line === 1 && raw.bytes[0] === 0xef && raw.bytes[1] === 0xbb && raw.bytes[2] === 0xbf
        ? raw.bytes.subarray(3)
        : raw.bytes;
    const row = raw.line;
    const malformed = (why: string): RawRow => ({
      row,
      problem: { row, code: 'row.malformed', message: `row ${row}: ${why}` },
    });
    const text = decodeLine(bytes);
    if (!header) {
      if (text === undefined)
        throw new RecipientsFileError(`${file}: line ${row}, the header, is not UTF-8: save the file as UTF-8`);
      if (text.trim() === '') continue;
      const columns = csvFields(text);
      if (typeof columns === 'string') throw new RecipientsFileError(`${file}: line ${row}, the header: ${columns}`);
      header = columns;
      continue;
    }
    if (raw.tooLong) {
      yield malformed(`longer than ${MAX_ROW_BYTES / 1024} KB`);
      continue;
    }
    if (text === undefined) {
      yield { row, problem: { row, code: 'row.encoding', message: `row ${row}: not UTF-8 (save the file as UTF-8)` } };
      continue;
    }
    if (text.trim() === '') continue;
    if (format === 'ndjson') {
      try {
        const v = JSON.parse(text) as unknown;
        if (!v || typeof v !== 'object' || Array.isArray(v)) yield malformed('not a JSON object');
        else yield { row, fields: v as Record<string, unknown> };
      } catch (err) {
        if (!(err instanceof SyntaxError)) throw err;
        yield malformed('not valid JSON');
      }
      continue;
    }
    const values = csvFields(text);
    if (typeof values === 'string') {
      yield malformed(values);
      continue;
    }
    // Lenient on column counts: a short or long row is judged by its content.
    const fields: Record<string, unknown> = {};
    header.forEach((name, i) => {
      if (i < values.length) fields[name] = values[i];
    });
    yield { row, fields };
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
export async function stageRecipients(
  source: RecipientsSource,
  writePage: (n: number, rows: PageRow[]) => Promise<void>,
  opts: { pageSize?: number; format?: 'csv' | 'ndjson' } = {},
): Promise<StagingResult> {
  const format = opts.format ?? formatOf(sourceName(source));
  const pageSize = opts.pageSize ?? PAGE_SIZE;
  const seen = new Set<number>();
  const result: StagingResult = {
    rows: 0,
    accepted: 0,
    invalid: 0,
    byCode: {},
    pages: 0,
    rejected: [],
    rejectedTotal: 0,
    duplicates: 0,
    format,
  };
  const reject = (p: RowProblem) => {
    result.rejectedTotal += 1;
    if (p.code === 'row.duplicate') result.duplicates += 1;
    else result.invalid += 1;
    result.byCode[p.code] = (result.byCode[p.code] ?? 0) + 1;
    if (result.rejected.length < MAX_LISTED_PROBLEMS) result.rejected.push(p);
  };
  let page: PageRow[] = [];
  const flush = async () => {
    if (page.length === 0) return;
    await writePage(result.pages, page);
    result.pages += 1;
    page = [];
  };
  for await (const r of rowsOf(source, format)) {
    result.rows += 1;
    if ('problem' in r) {
      reject(r.problem);
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
      reject({
        row: n.row,
        code: 'row.duplicate',
        message: `row ${n.row}: ${seen.has(idKey) ? `id "${n.recipient.id}"` : 'phone number'} already listed earlier: called once`,
      });
      continue;
    }
    seen.add(idKey);
    seen.add(phoneKey);
    page.push(n);
    result.accepted += 1;
    if (page.length >= pageSize) await flush();
  }
  await flush();
  // Every row ends in exactly one count; anything else is a bug that would lose rows silently.
  if (result.rows !== result.accepted + result.duplicates + result.invalid)
    throw new Error(
      `staging miscounted: ${result.rows} rows, ${result.accepted} valid, ${result.duplicates} duplicates, ${result.invalid} invalid`,
    );
  return result;
}

/** What `campaign check` prints: rows = valid + duplicates + invalid. */
export interface StagingSummary {
  rows: number;
  valid: number;
  duplicates: number;
  invalid: number;
  byCode: Partial<Record<RowCode, number>>;
}

export function stagingSummary(s: StagingResult): StagingSummary {
  return { rows: s.rows, valid: s.accepted, duplicates: s.duplicates, invalid: s.invalid, byCode: s.byCode };
}
