// Flow documents as text: JSON or YAML, with line and column on syntax errors. Pure (no I/O).
import { parseDocument } from 'yaml';

export type ParsedDocument = { ok: true; doc: unknown } | { ok: false; line: number; column: number; message: string };

function lineCol(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, offset));
  const lines = before.split('\n');
  return { line: lines.length, column: (lines.at(-1)?.length ?? 0) + 1 };
}

export function parseFlowText(text: string, fileName: string): ParsedDocument {
  if (/\.json$/i.test(fileName)) {
    try {
      return { ok: true, doc: JSON.parse(text) as unknown };
    } catch (err) {
      const msg = (err as Error).message;
      const pos = /position (\d+)/.exec(msg);
      const lc = /line (\d+) column (\d+)/.exec(msg);
      const at = lc ? { line: Number(lc[1]), column: Number(lc[2]) } : pos ? lineCol(text, Number(pos[1])) : lineCol(text, text.length);
      return { ok: false, ...at, message: msg.replace(/\s*\(line \d+ column \d+\)/, '').replace(/ in JSON at position \d+/, '') };
    }
  }
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) {
    const lp = first.linePos?.[0];
    const at = lp ? { line: lp.line, column: lp.col } : lineCol(text, first.pos[0]);
    return { ok: false, line: at.line, column: at.column, message: first.message.split('\n')[0] ?? first.message };
  }
  return { ok: true, doc: doc.toJS() as unknown };
}
