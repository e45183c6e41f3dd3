// `dialflow validate FILE [--json]`: exit 0 valid, 1 invalid, 2 unreadable or unparsable.
import { readFileSync } from 'node:fs';
import { validateFlow, type ValidationIssue } from '../flow/validate.js';

function formatIssue(i: ValidationIssue): string {
  return `${i.severity.padEnd(7)} ${i.code.padEnd(24)} ${i.elementId ? `[${i.elementId}] ` : ''}${i.path}: ${i.message}`;
}

export function validateCommand(file: string, opts: { json: boolean }): number {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    process.stderr.write(`dialflow validate: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
    return 2;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    process.stderr.write(`dialflow validate: ${file} is not valid JSON: ${(err as Error).message}\n`);
    return 2;
  }
  const res = validateFlow(doc);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ ok: res.ok, issues: res.issues }, null, 2)}\n`);
  } else {
    for (const i of res.issues) process.stdout.write(`${formatIssue(i)}\n`);
    const errors = res.issues.filter((i) => i.severity === 'error').length;
    process.stdout.write(res.ok ? `${file}: valid${res.issues.length ? ` (${res.issues.length} warnings)` : ''}\n` : `${file}: invalid (${errors} errors)\n`);
  }
  return res.ok ? 0 : 1;
}
