// `dialflow simulate FLOW --persona JSON [--recipient JSON] [--json]`: one call of the flow on
// Temporal's time-skipping test server with the in-process simulator (src/client/simulate.ts), so a
// week of retries and pauses takes seconds. The transcript is read back from the workflow history
// (src/client/call-report.ts): what the workflow really did, at its (simulated) times.
import { readFileSync } from 'node:fs';
import { DateTime } from 'luxon';
import { z } from 'zod';
import type { Recipient } from '../flow/interpreter.js';
import { personaSchema } from '../telephony/simulator.js';
import { CliError } from './errors.js';
import { isErrnoException } from '../config/errors.js';
import { requireValidFlow } from './validate.js';
import { installQuietSdkRuntime, simulateFlow } from '../client/simulate.js';
import type { CallReport, SimulationReport } from '../client/call-report.js';

export {
  callReport,
  transcriptFromHistory,
  type CallReport,
  type SimulationReport,
  type TranscriptEvent,
} from '../client/call-report.js';

/**
 * The SDK's runtime for a CLI command: its logs (and the bundler's) go to stderr at ERROR, so stdout
 * stays a clean transcript or JSON. Installed once per process, before any worker exists.
 */
export function installCliRuntime(): void {
  installQuietSdkRuntime((level, message) => process.stderr.write(`${level} ${message}\n`));
}

/** An option that takes JSON inline or from a file; JSON that cannot be read or parsed is a usage error (exit 2). */
export function parseJsonOption(name: string, text: string | undefined): unknown {
  if (text === undefined) return undefined;
  let source = text;
  if (!text.trim().startsWith('{') && !text.trim().startsWith('[')) {
    try {
      source = readFileSync(text, 'utf8');
    } catch (err) {
      if (!isErrnoException(err)) throw err;
      throw new CliError(`--${name} ${text}: neither JSON nor a readable file (${err.code ?? err.message})`, 2, {
        cause: err,
      });
    }
  }
  try {
    return JSON.parse(source) as unknown;
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    throw new CliError(`--${name} is not valid JSON (inline, or a file name): ${err.message}`, 2);
  }
}

export async function simulate(
  file: string,
  opts: { persona?: string; recipient?: string },
): Promise<SimulationReport> {
  const flow = requireValidFlow(file);
  const persona = personaSchema.safeParse(parseJsonOption('persona', opts.persona) ?? {});
  // Like a flow: a persona that parses but is invalid is exit 1, one that cannot be read or parsed exit 2.
  if (!persona.success) throw new CliError(`invalid persona:\n${z.prettifyError(persona.error)}`, 1);
  // The recipient is the caller of an inbound flow. Its zone comes from `timeZone` or its number.
  const recipient = (parseJsonOption('recipient', opts.recipient) ?? {}) as Partial<Recipient>;
  installCliRuntime();
  return simulateFlow(flow, { persona: persona.data, recipient });
}

export function formatTranscript(
  r: CallReport & { simulatedSeconds?: number; elapsedSeconds?: number },
  zone: string = r.timeZone,
): string {
  const lines = [`flow ${r.flow.id} v${r.flow.version}`];
  for (const e of r.events) {
    const fmt = (iso: string) => DateTime.fromISO(iso, { zone }).toFormat('ccc yyyy-LL-dd HH:mm:ss');
    const until = e.until ? ` (until ${fmt(e.until)})` : '';
    lines.push(
      `${fmt(e.at)}  ${(e.elementId ?? '').padEnd(14)} ${e.kind === 'event' ? '← ' : e.kind === 'wait' ? '⏳ ' : '→ '}${e.text}${until}`,
    );
  }
  lines.push(`visited:   ${r.visited.join(' → ')}`);
  lines.push(
    `branches:  ${r.trail.map((t) => `${t.element}:${t.branch}${t.input !== undefined ? `(${t.input})` : ''}`).join(', ')}`,
  );
  const took = r.simulatedSeconds !== undefined ? `${r.simulatedSeconds} s simulated` : `${r.elapsedSeconds ?? 0} s`;
  lines.push(`outcome:   ${r.outcome} after ${r.dials} dial(s), ${took}`);
  if (r.error) lines.push(`reason:    ${r.error}`);
  lines.push(`variables: ${JSON.stringify(r.variables)}`);
  for (const w of r.warnings) lines.push(`warning:   [${w.element}] ${w.message}`);
  return `${lines.join('\n')}\n`;
}
