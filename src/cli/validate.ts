// `dialflow validate FILE [--json]`: exit 0 valid, 1 invalid, 2 unreadable or unparsable.
// `dialflow graph FILE`: a Mermaid flowchart of a valid flow.
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseFlowText } from '../flow/document.js';
import { validateFlow, type ValidationIssue, type ValidationResult } from '../flow/validate.js';
import { AUDIO_MAX_BYTES, type Flow } from '../flow/schema.js';
import { CliError } from './errors.js';
import { isErrnoException } from '../config/errors.js';
import { toMermaid } from '../flow/mermaid.js';
import { PROVIDERS, providerIssues, type ProviderName } from '../telephony/capabilities.js';

/** The provider whose capabilities a flow is checked against: `--provider`, else DIALFLOW_PROVIDER, else the simulator. */
export function providerFor(
  option: string | undefined,
  env: Record<string, string | undefined> = process.env,
): ProviderName {
  const name = option ?? (env.DIALFLOW_PROVIDER === 'sim' ? 'simulator' : env.DIALFLOW_PROVIDER) ?? 'simulator';
  if (!(PROVIDERS as readonly string[]).includes(name))
    throw new CliError(`provider ${JSON.stringify(name)}: one of ${PROVIDERS.join(', ')}`, 2);
  return name as ProviderName;
}

function formatIssue(i: ValidationIssue): string {
  return `${i.severity.padEnd(7)} ${i.code.padEnd(28)} ${i.elementId ? `[${i.elementId}] ` : ''}${i.path}: ${i.message}`;
}

/** Checks that need the file system: uploaded audio files exist, are .mp3/.wav and at most 4 MB. */
function fileIssues(res: ValidationResult, file: string): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  res.flow?.elements.forEach((el, i) => {
    if (el.type !== 'play' || !el.audio || !('file' in el.audio)) return;
    const path = resolve(dirname(file), el.audio.file);
    try {
      const size = statSync(path).size;
      if (size > AUDIO_MAX_BYTES)
        out.push({
          severity: 'error',
          code: 'audio.tooLarge',
          elementId: el.id,
          path: `elements[${i}].audio.file`,
          message: `${el.audio.file} is ${(size / 2 ** 20).toFixed(1)} MB; audio files are at most 4 MB`,
        });
    } catch (err) {
      if (!isErrnoException(err, 'ENOENT', 'ENOTDIR')) throw err;
      out.push({
        severity: 'error',
        code: 'audio.fileMissing',
        elementId: el.id,
        path: `elements[${i}].audio.file`,
        message: `${el.audio.file} does not exist (relative to the flow document)`,
      });
    }
  });
  return out;
}

export type LoadedFlow = { code: 0 | 1; result: ValidationResult } | { code: 2; error: string };

export function loadAndValidate(file: string, provider: ProviderName = 'simulator'): LoadedFlow {
  let bytes: Buffer;
  try {
    // Bytes, not text: invalid UTF-8 is reported (document.encoding) instead of read as U+FFFD.
    bytes = readFileSync(file);
  } catch (err) {
    if (!isErrnoException(err)) throw err;
    return { code: 2, error: `cannot read ${file}: ${err.code}` };
  }
  const parsed = parseFlowText(bytes, file);
  // A document over a limit (size, nesting, encoding) is invalid with a validator code, not unparsable.
  if (!parsed.ok && parsed.issues) return { code: 1, result: { ok: false, issues: parsed.issues } };
  if (!parsed.ok) return { code: 2, error: `${file}:${parsed.line}:${parsed.column}: ${parsed.message}` };
  const result = validateFlow(parsed.doc);
  const extra = fileIssues(result, file);
  if (extra.length > 0) {
    result.issues.push(...extra);
    result.ok = false;
    delete result.flow;
  }
  // What the provider lacks is a warning: the flow is valid, but some branch or option will not happen.
  if (result.flow) result.issues.push(...providerIssues(result.flow, provider));
  return { code: result.ok ? 0 : 1, result };
}

export function validateCommand(file: string, opts: { json: boolean; provider?: ProviderName }): number {
  const loaded = loadAndValidate(file, opts.provider);
  if (loaded.code === 2) {
    if (opts.json) process.stdout.write(`${JSON.stringify({ ok: false, error: loaded.error })}\n`);
    process.stderr.write(`dialflow validate: ${loaded.error}\n`);
    return 2;
  }
  const res = loaded.result;
  const errors = res.issues.filter((i) => i.severity === 'error').length;
  const warnings = res.issues.length - errors;
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ ok: res.ok, errors, warnings, issues: res.issues }, null, 2)}\n`);
  } else {
    for (const i of res.issues) process.stdout.write(`${formatIssue(i)}\n`);
    process.stdout.write(
      res.ok
        ? `${file}: valid${warnings ? ` (${warnings} warning${warnings > 1 ? 's' : ''})` : ''}\n`
        : `${file}: invalid (${errors} error${errors > 1 ? 's' : ''}${warnings ? `, ${warnings} warning${warnings > 1 ? 's' : ''}` : ''})\n`,
    );
  }
  return loaded.code;
}

export function graphCommand(file: string): number {
  const loaded = loadAndValidate(file);
  if (loaded.code === 2) {
    process.stderr.write(`dialflow graph: ${loaded.error}\n`);
    return 2;
  }
  if (!loaded.result.flow) {
    for (const i of loaded.result.issues) process.stderr.write(`${formatIssue(i)}\n`);
    process.stderr.write(`dialflow graph: ${file} is invalid; fix the errors above first\n`);
    return 1;
  }
  process.stdout.write(toMermaid(loaded.result.flow));
  return 0;
}

/** The validated flow of a file, or a CliError carrying the validator's errors (exit 1; 2 if unreadable). */
export function requireValidFlow(file: string, provider?: ProviderName): Flow {
  const loaded = loadAndValidate(file, provider);
  if (loaded.code === 2) throw new CliError(loaded.error, 2);
  if (!loaded.result.flow) {
    const errors = loaded.result.issues
      .filter((i) => i.severity === 'error')
      .map((i) => `  ${i.code} ${i.elementId ? `[${i.elementId}] ` : ''}${i.path}: ${i.message}`);
    throw new CliError(`${file} is invalid:\n${errors.join('\n')}`, 1);
  }
  for (const w of loaded.result.issues.filter((i) => i.code.startsWith('provider.')))
    process.stderr.write(`warning: ${w.code} ${w.elementId ? `[${w.elementId}] ` : ''}${w.path}: ${w.message}\n`);
  return loaded.result.flow;
}
