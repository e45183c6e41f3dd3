// Flow documents as text: JSON or YAML, with line and column on syntax errors. Pure (no I/O).
// Before anything parses or walks a document, its size, encoding and nesting are bounded: an
// oversized flow would otherwise validate and then fail in the middle of `campaign start` (the flow
// travels in every workflow's input), and deep nesting overflows the stack of every recursive
// walker after the parser (YAML composition, schema checks, payload serialisation).
import { parseDocument } from 'yaml';
import type { ValidationIssue } from './validate.js';

/** Largest flow document, in bytes. Temporal refuses payloads over 2 MB and a flow rides in workflow inputs. */
export const MAX_DOCUMENT_BYTES = 1024 * 1024;
/** Deepest nesting of objects and arrays; a real flow needs about six levels, bodies and defaults a few more. */
export const MAX_DOCUMENT_DEPTH = 64;

export type DocumentCode = 'document.tooLarge' | 'document.tooDeep' | 'document.encoding';

/**
 * A syntax error carries its line and column; a document that breaks a limit carries the same
 * position plus the validator issue (`document.*`) that names the limit.
 */
export type ParsedDocument =
  { ok: true; doc: unknown } | { ok: false; line: number; column: number; message: string; issues?: ValidationIssue[] };

function lineCol(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, offset));
  const lines = before.split('\n');
  return { line: lines.length, column: (lines.at(-1)?.length ?? 0) + 1 };
}

function documentProblem(
  code: DocumentCode,
  path: string,
  message: string,
  at: { line: number; column: number } = { line: 1, column: 1 },
): ParsedDocument {
  return { ok: false, ...at, message: `${code}: ${message}`, issues: [{ severity: 'error', code, path, message }] };
}

const tooDeepMessage = `nested more than ${MAX_DOCUMENT_DEPTH} levels deep; flow documents nest at most ${MAX_DOCUMENT_DEPTH} objects or arrays`;
const megabytes = (n: number) => `${(n / 2 ** 20).toFixed(1)} MB`;

/** Line and column of the first byte that is not UTF-8, or undefined when all of it is. */
function firstInvalidUtf8(bytes: Uint8Array): { line: number; column: number; offset: number } | undefined {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i] ?? 0;
    if (b === 0x0a) {
      line += 1;
      lineStart = i + 1;
    }
    const len = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    let ok = len > 0 && i + len <= bytes.length;
    for (let k = 1; ok && k < len; k++) ok = ((bytes[i + k] ?? 0) & 0xc0) === 0x80;
    // Overlong 3/4-byte forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8 either.
    const b1 = bytes[i + 1] ?? 0;
    if (
      ok &&
      ((b === 0xe0 && b1 < 0xa0) || (b === 0xed && b1 > 0x9f) || (b === 0xf0 && b1 < 0x90) || (b === 0xf4 && b1 > 0x8f))
    )
      ok = false;
    if (!ok) return { line, column: i - lineStart + 1, offset: i };
    i += len;
  }
  return undefined;
}

/** Decode strictly: invalid UTF-8 is reported with its position instead of becoming U+FFFD. */
function decode(bytes: Uint8Array): { text: string } | { problem: ParsedDocument } {
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(bytes) };
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    const bad = firstInvalidUtf8(bytes) ?? { line: 1, column: 1, offset: 0 };
    return {
      problem: documentProblem(
        'document.encoding',
        '',
        `byte ${bad.offset} (line ${bad.line}, column ${bad.column}) is not UTF-8: save the flow as UTF-8`,
        { line: bad.line, column: bad.column },
      ),
    };
  }
}

/**
 * Deepest nesting of a parsed value, walked with an explicit stack (never recursion), stopping at
 * the first point past `limit`; returns that point's path, or undefined when within the limit.
 */
export function tooDeepAt(doc: unknown, limit = MAX_DOCUMENT_DEPTH): string | undefined {
  const stack: Array<{ v: unknown; depth: number; path: string }> = [{ v: doc, depth: 0, path: '' }];
  while (stack.length > 0) {
    const { v, depth, path } = stack.pop() as { v: unknown; depth: number; path: string };
    if (v === null || typeof v !== 'object') continue;
    if (depth + 1 > limit) return path;
    if (Array.isArray(v)) v.forEach((x, i) => stack.push({ v: x, depth: depth + 1, path: `${path}[${i}]` }));
    else
      for (const [k, x] of Object.entries(v)) stack.push({ v: x, depth: depth + 1, path: path ? `${path}.${k}` : k });
  }
  return undefined;
}

/**
 * Nesting of JSON text, scanned without parsing: position of the first bracket past `limit`.
 * Strings are skipped (brackets inside them do not nest).
 */
function jsonTooDeepAt(text: string, limit: number): number | undefined {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i += 1; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth += 1;
      if (depth > limit) return i;
    } else if (c === 0x5d || c === 0x7d) depth -= 1;
  }
  return undefined;
}

/** Size and depth problems of a document already parsed (from text or from any other source). */
export function documentLimitIssues(doc: unknown): ValidationIssue[] {
  const deep = tooDeepAt(doc);
  if (deep !== undefined) return [{ severity: 'error', code: 'document.tooDeep', path: deep, message: tooDeepMessage }];
  // Safe to serialise now that depth is bounded; counts what a workflow input would carry.
  const bytes = Buffer.byteLength(JSON.stringify(doc) ?? '');
  if (bytes > MAX_DOCUMENT_BYTES)
    return [
      {
        severity: 'error',
        code: 'document.tooLarge',
        path: '',
        message: `the flow is ${megabytes(bytes)} as JSON; flow documents are at most ${megabytes(MAX_DOCUMENT_BYTES)}`,
      },
    ];
  return [];
}

/**
 * Parse a flow document. Pass the file's bytes (a Buffer or Uint8Array) so that invalid UTF-8 is
 * reported (`document.encoding`); a string was already decoded by the caller.
 */
export function parseFlowText(input: string | Uint8Array, fileName: string): ParsedDocument {
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.byteLength;
  if (size > MAX_DOCUMENT_BYTES)
    return documentProblem(
      'document.tooLarge',
      '',
      `the document is ${megabytes(size)}; flow documents are at most ${megabytes(MAX_DOCUMENT_BYTES)}`,
    );
  let text: string;
  if (typeof input === 'string') text = input;
  else {
    const d = decode(input);
    if ('problem' in d) return d.problem;
    text = d.text;
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const parsed = /\.json$/i.test(fileName) ? parseJson(text) : parseYaml(text);
  if (!parsed.ok) return parsed;
  const limits = documentLimitIssues(parsed.doc);
  const first = limits[0];
  return first ? documentProblem(first.code as DocumentCode, first.path, first.message) : parsed;
}

function parseJson(text: string): ParsedDocument {
  const deepAt = jsonTooDeepAt(text, MAX_DOCUMENT_DEPTH);
  if (deepAt !== undefined) return documentProblem('document.tooDeep', '', tooDeepMessage, lineCol(text, deepAt));
  try {
    return { ok: true, doc: JSON.parse(text) as unknown };
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    const msg = err.message;
    const pos = /position (\d+)/.exec(msg);
    const lc = /line (\d+) column (\d+)/.exec(msg);
    const at = lc
      ? { line: Number(lc[1]), column: Number(lc[2]) }
      : pos
        ? lineCol(text, Number(pos[1]))
        : lineCol(text, text.length);
    return {
      ok: false,
      ...at,
      message: msg.replace(/\s*\(line \d+ column \d+\)/, '').replace(/ in JSON at position \d+/, ''),
    };
  }
}

function parseYaml(text: string): ParsedDocument {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) {
    const lp = first.linePos?.[0];
    const at = lp ? { line: lp.line, column: lp.col } : lineCol(text, first.pos[0]);
    // The YAML composer recurses per level and reports its own stack overflow as resource exhaustion.
    if (first.code === 'RESOURCE_EXHAUSTION') {
      const deep = /call stack/i.test(first.message);
      return documentProblem(
        deep ? 'document.tooDeep' : 'document.tooLarge',
        '',
        deep
          ? tooDeepMessage
          : `${first.message.split('\n')[0] ?? first.message}; flow documents are at most ${megabytes(MAX_DOCUMENT_BYTES)}`,
        at,
      );
    }
    return { ok: false, line: at.line, column: at.column, message: first.message.split('\n')[0] ?? first.message };
  }
  try {
    return { ok: true, doc: doc.toJS() as unknown };
  } catch (err) {
    // Aliases expand while converting: too many of them, or too deep, is a limit, not a crash.
    if (err instanceof RangeError) return documentProblem('document.tooDeep', '', tooDeepMessage);
    if (err instanceof ReferenceError && /alias/i.test(err.message))
      return documentProblem(
        'document.tooLarge',
        '',
        `${err.message}; flow documents are at most ${megabytes(MAX_DOCUMENT_BYTES)}`,
      );
    throw err;
  }
}
