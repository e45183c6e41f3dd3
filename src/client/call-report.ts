// The report of one call read back from its workflow history: what `dialflow simulate --json`,
// `dialflow call --json` and the HTTP API show. Telephony commands come from their local
// activities' markers, events from the bridge's signals, waits from long timers; digits entered at
// masked and hidden collects are redacted wherever the call carried them.
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { tsToMs } from '@temporalio/common/lib/time.js';
import type { temporal } from '@temporalio/proto';
import type { CallResult } from '../flow/interpreter.js';
import type { Flow } from '../flow/schema.js';
import type { TelephonyCommand, TelephonyEvent } from '../telephony/contract.js';
import { FlowReporting, MASKS, Redactor } from '../cli/masking.js';

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

/**
 * The report of a finished call, from its result and its decoded history. Digits entered at masked
 * and hidden collects are replaced wherever the call carried them on (see masking.ts); the
 * interpreter has already masked the trail and the variables the collects saved.
 */
export async function callReport(
  flow: Flow,
  result: CallResult,
  history: temporal.api.history.v1.IHistory,
  timeZone: string,
): Promise<CallReport> {
  const { events, redactor } = readTranscript(flow, history);
  return {
    flow: { id: flow.id, version: flow.version },
    visited: result.visited,
    dials: result.dials,
    outcome: result.outcome,
    ...(result.error ? { error: redactor.text(result.error) } : {}),
    variables: redactor.value(result.variables),
    trail: redactor.value(result.trail),
    recordings: redactor.value(result.recordings),
    warnings: result.warnings.map((w) => ({ ...w, message: redactor.text(w.message) })),
    timeZone,
    events: events.map((e) => ({ ...e, text: redactor.text(e.text) })),
  };
}

const decode = (p: Payload | null | undefined): unknown => (p ? defaultPayloadConverter.fromPayload(p) : undefined);
/** The marker the SDK records for a local activity: `data` says which, `result` holds its result. */
const LOCAL_ACTIVITY_MARKER = 'core_local_activity';

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

/**
 * The transcript of a call from its decoded history. Events are redacted: digits of masked and
 * hidden input appear nowhere, also not where the flow rendered them.
 */
export function transcriptFromHistory(flow: Flow, history: temporal.api.history.v1.IHistory): TranscriptEvent[] {
  const { events, redactor } = readTranscript(flow, history);
  return events.map((e) => ({ ...e, text: redactor.text(e.text) }));
}

/** The transcript's events as the history has them, and the digits that must not be shown. */
function readTranscript(
  flow: Flow,
  history: temporal.api.history.v1.IHistory,
): { events: TranscriptEvent[]; redactor: Redactor } {
  const reporting = new FlowReporting(flow);
  const redactor = new Redactor();
  const commandElement = new Map<string, string>();
  const out: TranscriptEvent[] = [];
  // Follow-ups of prompts (say/play `then`), by the prompt's command id and their own: shown when
  // the provider ran them, at the prompt's end (or before their own result, if that came first).
  const followUps = new Map<string, TelephonyCommand>();
  const command = (at: number, c: TelephonyCommand) => {
    commandElement.set(c.commandId, c.elementId);
    out.push({ at: new Date(at).toISOString(), kind: 'command', elementId: c.elementId, text: describeCommand(c) });
    if ((c.action === 'say' || c.action === 'play') && c.then) {
      commandElement.set(c.then.commandId, c.then.elementId);
      followUps.set(c.commandId, c.then);
      followUps.set(c.then.commandId, c.then);
    }
  };
  const ranFollowUp = (at: string, c: TelephonyCommand) => {
    for (const [key, f] of followUps) if (f.commandId === c.commandId) followUps.delete(key);
    out.push({
      at,
      kind: 'command',
      elementId: c.elementId,
      text: `${describeCommand(c)} (the provider, as the prompt ended)`,
    });
  };
  // Keys pressed during a prompt, not yet taken by a collect: the start of what it collects.
  let bargeIn = '';
  for (const e of history.events ?? []) {
    const at = new Date(tsToMs(e.eventTime)).toISOString();
    const scheduled = e.activityTaskScheduledEventAttributes;
    const signal = e.workflowExecutionSignaledEventAttributes;
    const timer = e.timerStartedEventAttributes;
    const marker = e.markerRecordedEventAttributes;
    if (marker?.markerName === LOCAL_ACTIVITY_MARKER) {
      // Core v2 sends its commands as local activities; sendTelephonyCommand returns the command.
      const activity = decode(marker.details?.data?.payloads?.[0]) as { activity_type?: string } | undefined;
      const sent = decode(marker.details?.result?.payloads?.[0]) as TelephonyCommand | undefined;
      if (activity?.activity_type === 'sendTelephonyCommand' && sent) command(tsToMs(e.eventTime), sent);
    } else if (scheduled) {
      const name = scheduled.activityType?.name ?? '';
      const args = (scheduled.input?.payloads ?? []).map(decode);
      // Calls of core v1 sent their commands as (non-local) activities.
      if (name === 'sendTelephonyCommand') command(tsToMs(e.eventTime), args[0] as TelephonyCommand);
      else if (name !== 'loadProfile')
        out.push({ at, kind: 'action', text: `${name} ${JSON.stringify(args.length === 1 ? args[0] : args)}` });
    } else if (signal?.signalName === 'telephonyEvent' || signal?.signalName === 'telephonyEvents') {
      // One event, or several the bridge held for the call's next event (telephonyEvents).
      const payload = decode(signal.input?.payloads?.[0]) as TelephonyEvent | TelephonyEvent[];
      for (const ev of Array.isArray(payload) ? payload : [payload]) {
        const p = ev.properties;
        const commandId = typeof p.commandId === 'string' ? p.commandId : undefined;
        const followUp = commandId ? followUps.get(commandId) : undefined;
        // The follow-up's own result came before the prompt's end: it ran all the same.
        if (followUp && followUp.commandId === commandId) ranFollowUp(at, followUp);
        const elementId = commandId ? commandElement.get(commandId) : undefined;
        let detail = '';
        if (ev.type === 'DTMF_CAPTURED' || (typeof p.dtmf === 'string' && p.dtmf)) {
          const mode = reporting.of(elementId);
          const digits = typeof p.dtmf === 'string' ? p.dtmf : '';
          redactor.add(digits, mode);
          if (ev.type === 'DTMF_CAPTURED') {
            redactor.add(bargeIn + digits, mode);
            bargeIn = '';
          } else bargeIn += digits;
          detail = mode === 'always' ? ` "${digits}"` : mode === 'masked' ? ` "${MASKS.masked}"` : ` ${MASKS.hidden}`;
        }
        if (typeof p.errorCode === 'string')
          detail += ` ${p.errorCode}${typeof p.hangupSource === 'string' ? ` by ${p.hangupSource}` : ''}`;
        if (typeof p.detectionResult === 'string') detail += ` ${p.detectionResult}`;
        out.push({ at, kind: 'event', ...(elementId ? { elementId } : {}), text: `${ev.type}${detail}` });
        // The prompt ended: its follow-up runs now (unless the call ended during the prompt).
        if (followUp && followUp.commandId !== commandId && (ev.type === 'SAY_FINISHED' || ev.type === 'PLAY_FINISHED'))
          ranFollowUp(at, followUp);
      }
    } else if (timer) {
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
  return { events: out, redactor };
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

/** A call workflow's input (outbound or inbound) as its history's first event holds it. */
export interface RecordedCallInput {
  flow: Flow;
  recipient?: { id: string; phone: string; timeZone?: string };
  campaignId?: string;
}

/**
 * The input and, once the call is over, the result of a call workflow, from its decoded history.
 * Undefined when the history is not a call's (no flow in its input).
 */
export function readCallHistory(
  history: temporal.api.history.v1.IHistory,
): { input: RecordedCallInput; result?: CallResult } | undefined {
  const events = history.events ?? [];
  const started = events[0]?.workflowExecutionStartedEventAttributes;
  const input = decode(started?.input?.payloads?.[0]) as Partial<RecordedCallInput> | undefined;
  if (!input || typeof input !== 'object' || !input.flow || !Array.isArray(input.flow.elements)) return undefined;
  const completed = events.at(-1)?.workflowExecutionCompletedEventAttributes;
  const result = completed ? (decode(completed.result?.payloads?.[0]) as CallResult | undefined) : undefined;
  return { input: input as RecordedCallInput, ...(result ? { result } : {}) };
}
