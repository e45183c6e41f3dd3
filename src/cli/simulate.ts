// `dialflow simulate FLOW --persona JSON [--recipient JSON] [--json]`: one call of the flow on
// Temporal's time-skipping test server with the in-process simulator, so a week of retries and
// pauses takes seconds. The transcript is read back from the workflow history: what the workflow
// really did, at its (simulated) times.
import { readFileSync } from 'node:fs';
import { DateTime } from 'luxon';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { tsToMs } from '@temporalio/common/lib/time.js';
import type { temporal } from '@temporalio/proto';
import { startCall, startInboundCall } from '../client/calls.js';
import { withTimeZone } from '../flow/zone.js';
import { inboundWorkflowId } from '../telephony/contract.js';
import type { CallResult, Recipient } from '../flow/interpreter.js';
import type { Flow } from '../flow/schema.js';
import type { TelephonyCommand, TelephonyEvent } from '../telephony/contract.js';
import { personaSchema } from '../telephony/simulator.js';
import { CliError } from './errors.js';
import { startTimeSkipping } from '../dev/time-skipping.js';
import { decodeHistory } from '../codec/encryption.js';
import { requireValidFlow } from './validate.js';

export interface TranscriptEvent {
  /** Simulated time, ISO-8601. */
  at: string;
  kind: 'command' | 'event' | 'wait' | 'action';
  elementId?: string;
  text: string;
  /** For waits: when the wait ends (simulated time, ISO-8601). */
  until?: string;
}

/** What `dialflow simulate --json` and `dialflow call --json` print about one call. */
export interface CallReport {
  flow: { id: string; version: number };
  visited: string[];
  dials: number;
  outcome: string;
  /** Why the call ended in failed or notCalled. */
  error?: string;
  variables: Record<string, unknown>;
  trail: CallResult['trail'];
  recordings: CallResult['recordings'];
  warnings: CallResult['warnings'];
  /** The recipient's zone (given or derived from the number): the transcript's clock. */
  timeZone: string;
  events: TranscriptEvent[];
}

export interface SimulationReport extends CallReport {
  simulatedSeconds: number;
}

/** The report of a finished call, from its result and its decoded history. */
export function callReport(
  flow: Flow,
  result: CallResult,
  history: temporal.api.history.v1.IHistory,
  timeZone: string,
): CallReport {
  return {
    flow: { id: flow.id, version: flow.version },
    visited: result.visited,
    dials: result.dials,
    outcome: result.outcome,
    ...(result.error ? { error: result.error } : {}),
    variables: result.variables,
    trail: result.trail,
    recordings: result.recordings,
    warnings: result.warnings,
    timeZone,
    events: transcriptFromHistory(flow, history),
  };
}

const decode = (p: Payload | null | undefined): unknown => (p ? defaultPayloadConverter.fromPayload(p) : undefined);

function describeCommand(c: TelephonyCommand): string {
  switch (c.action) {
    case 'dial':
      return `dial ${c.to} from ${c.from} (attempt ${c.attempt}${c.machineDetection ? ', machine detection' : ''})`;
    case 'say':
      return `say "${c.text}"${c.pauseMs ? ` after ${c.pauseMs / 1000} s silence` : ''}${c.interruptible ? ' (interruptible)' : ''}`;
    case 'play':
      return `play ${c.url}`;
    case 'captureDtmf':
      return `collect up to ${c.maxDigits} digit(s), # ends`;
    case 'forward':
      return `forward to ${c.to}`;
    case 'record':
      return `record "${c.name}" (max ${c.maxDurationMs / 1000} s)`;
    case 'answer':
      return 'answer';
    case 'hangup':
      return 'hang up';
  }
}

/** Builds the transcript from history; digits are shown as each collect's reporting allows. */
export function transcriptFromHistory(flow: Flow, history: temporal.api.history.v1.IHistory): TranscriptEvent[] {
  const reporting = new Map(flow.elements.flatMap((e) => (e.type === 'collect' ? [[e.id, e.reporting] as const] : [])));
  const commandElement = new Map<string, string>();
  const out: TranscriptEvent[] = [];
  for (const e of history.events ?? []) {
    const at = new Date(tsToMs(e.eventTime)).toISOString();
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled) {
      const name = scheduled.activityType?.name ?? '';
      const args = (scheduled.input?.payloads ?? []).map(decode);
      if (name === 'sendTelephonyCommand') {
        const c = args[0] as TelephonyCommand;
        commandElement.set(c.commandId, c.elementId);
        out.push({ at, kind: 'command', elementId: c.elementId, text: describeCommand(c) });
      } else if (name !== 'loadProfile') {
        out.push({ at, kind: 'action', text: `${name} ${JSON.stringify(args.length === 1 ? args[0] : args)}` });
      }
      continue;
    }
    const signal = e.workflowExecutionSignaledEventAttributes;
    if (signal?.signalName === 'telephonyEvent') {
      const ev = decode(signal.input?.payloads?.[0]) as TelephonyEvent;
      const p = ev.properties;
      const elementId = typeof p.commandId === 'string' ? commandElement.get(p.commandId) : undefined;
      let detail = '';
      if (ev.type === 'DTMF_CAPTURED' || (typeof p.dtmf === 'string' && p.dtmf)) {
        const mode = (elementId && reporting.get(elementId)) ?? 'always';
        const digits = typeof p.dtmf === 'string' ? p.dtmf : '';
        detail = mode === 'always' ? ` "${digits}"` : mode === 'masked' ? ' "xxxx"' : ' (hidden)';
      }
      if (typeof p.errorCode === 'string')
        detail += ` ${p.errorCode}${typeof p.hangupSource === 'string' ? ` by ${p.hangupSource}` : ''}`;
      if (typeof p.detectionResult === 'string') detail += ` ${p.detectionResult}`;
      out.push({ at, kind: 'event', ...(elementId ? { elementId } : {}), text: `${ev.type}${detail}` });
      continue;
    }
    const timer = e.timerStartedEventAttributes;
    if (timer) {
      const ms = tsToMs(timer.startToFireTimeout);
      // Short timers are the workflow's own safety timeouts around waits, not flow behaviour.
      if (ms >= 60_000)
        out.push({
          at,
          kind: 'wait',
          text: `wait ${humanDuration(ms)}`,
          until: new Date(tsToMs(e.eventTime) + ms).toISOString(),
        });
    }
  }
  return out;
}

function humanDuration(ms: number): string {
  const parts: string[] = [];
  let s = Math.round(ms / 1000);
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  return parts.join(' ') || '0s';
}

export function parseJsonOption(name: string, text: string | undefined): unknown {
  if (text === undefined) return undefined;
  const source = text.trim().startsWith('{') || text.trim().startsWith('[') ? text : readFileSync(text, 'utf8');
  try {
    return JSON.parse(source) as unknown;
  } catch (err) {
    throw new CliError(`--${name} is not valid JSON (inline, or a file name): ${(err as Error).message}`, 1);
  }
}

export async function simulate(
  file: string,
  opts: { persona?: string; recipient?: string },
): Promise<SimulationReport> {
  const flow = requireValidFlow(file);
  const persona = personaSchema.safeParse(parseJsonOption('persona', opts.persona) ?? {});
  if (!persona.success)
    throw new CliError(
      `invalid persona: ${persona.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
      1,
    );
  const recipientInput = (parseJsonOption('recipient', opts.recipient) ?? {}) as Partial<Recipient>;
  // The recipient is the caller of an inbound flow. Its zone comes from `timeZone` or its number.
  const recipient: Recipient = withTimeZone({
    id: 'sim-1',
    phone: '+385915550000',
    firstName: 'Ana',
    ...recipientInput,
  });
  const inboundNumber = flow.start ? undefined : flow.elements.find((e) => e.type === 'startIncomingCall');

  // Native (core) logs go through the same logger, to stderr, so stdout stays a clean transcript/JSON.
  Runtime.install({
    logger: new DefaultLogger('ERROR', (entry) => process.stderr.write(`${entry.level} ${entry.message}\n`)),
    telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' }, forward: {} } },
  });
  const { env, worker, provider, codec } = await startTimeSkipping('dialflow-simulate');
  // A simulated person calls the flow's number; the CALL_RECEIVED reaches the workflow as the bridge would send it.
  const callIn = (number: string) => {
    const received = provider.engine.incomingCall('sim-in-1', recipient.phone, number, persona.data).event;
    return startInboundCall(env.client, {
      flow,
      received,
      workflowId: inboundWorkflowId(received.callId),
      taskQueue: 'dialflow-simulate',
    });
  };
  try {
    const started = await env.currentTimeMs();
    const { result, history } = await worker.runUntil(async () => {
      const handle =
        inboundNumber?.type === 'startIncomingCall'
          ? await callIn(inboundNumber.number)
          : await startCall(env.client, {
              flow,
              recipient,
              campaignId: 'simulate',
              taskQueue: 'dialflow-simulate',
              hints: { persona: persona.data },
            });
      const result = await handle.result();
      return { result, history: await decodeHistory(await handle.fetchHistory(), codec) };
    });
    const simulatedSeconds = Math.round(((await env.currentTimeMs()) - started) / 1000);
    return { ...callReport(flow, result, history, recipient.timeZone ?? 'UTC'), simulatedSeconds };
  } finally {
    await env.teardown();
  }
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
