// The telephony simulator: plays end users from scripted personas.
// The engine only *plans* events (with delays) for each command; a transport decides how time
// passes: the simulator process schedules them on NATS with real timers, tests emit them inline.
import { z } from 'zod';
import {
  holdMark,
  type CaptureDtmfCommand,
  type PromptFollowUp,
  type TelephonyCommand,
  type TelephonyEvent,
  type TelephonyEventType,
} from './contract.js';
import type { RecordingMeta } from '../store/recordings.js';

export const ATTEMPT_OUTCOMES = [
  'answered',
  'busy',
  'noAnswer',
  'declined',
  'voicemail',
  'unreachable',
  'error',
] as const;

/** Persona contract: what the simulated person does on each dial and at each collect. */
export const personaSchema = z
  .object({
    /** One outcome per dial, in order; the last one repeats. */
    attempts: z.array(z.enum(ATTEMPT_OUTCOMES)).min(1).default(['answered']),
    /** DTMF pressed at each collect, in order (`#` ends input). Missing → the person stays silent. */
    keys: z.array(z.string().regex(/^[0-9*#]*$/)).default([]),
    /** Press the next key while an interruptible prompt is still playing. */
    pressDuringPrompt: z.boolean().default(false),
    /** Element id at which the person hangs up (mid-prompt or at a collect). */
    hangUpAt: z.string().optional(),
    /** Outcome of a forward attempt (used by forwardCall). */
    forward: z.enum(['answered', 'busy', 'noAnswer', 'declined', 'failed']).default('answered'),
    /** How long the person speaks when recorded. */
    speakSeconds: z.number().min(0).max(3600).default(10),
  })
  .strict();
export type Persona = z.infer<typeof personaSchema>;

export interface SimulatorLatency {
  /** Dial → CALL_RINGING. */
  ringMs: number;
  /** Ringing → answer / failure. */
  answerMs: number;
  /** Speech time per character of a prompt at speech rate 1. */
  msPerChar: number;
  /** Time per key press. */
  keyMs: number;
  /** Length of an audio file prompt. */
  audioMs: number;
}
export const INSTANT: SimulatorLatency = { ringMs: 0, answerMs: 0, msPerChar: 0, keyMs: 0, audioMs: 0 };
export const DEMO_LATENCY: SimulatorLatency = { ringMs: 200, answerMs: 400, msPerChar: 15, keyMs: 150, audioMs: 1500 };

export interface PlannedEvent {
  delayMs: number;
  event: TelephonyEvent;
  /** A recording the transport must store before it publishes the event (CALL_RECORDING_READY). */
  recording?: RecordingMeta;
}

/**
 * Chaos a real carrier's webhooks show: the same event twice, events of one moment out of order,
 * an event sent again later (a lost acknowledgement). Shares are probabilities per event.
 */
export const chaosSchema = z
  .object({
    /** Share of events published twice in a row. */
    duplicate: z.number().min(0).max(1).default(0),
    /** Share of adjacent pairs planned by one command (ringing/established, …) published swapped. */
    reorder: z.number().min(0).max(1).default(0),
    /** Share of events published again `redeliverAfterMs` later. */
    redeliver: z.number().min(0).max(1).default(0),
    redeliverAfterMs: z.number().int().min(0).max(60_000).default(500),
    seed: z.number().int().default(1),
  })
  .strict();
export type Chaos = z.infer<typeof chaosSchema>;
export const NO_CHAOS: Chaos = chaosSchema.parse({});

/** A planned event as it goes on the wire: a copy gets its own JetStream msg-id, so dedupe cannot hide it. */
export interface WireEvent extends PlannedEvent {
  msgId: string;
  chaos?: 'duplicate' | 'reorder' | 'redeliver';
}

/** Apply chaos to the events one command planned. Event ids never change: workflows dedupe on them. */
export function applyChaos(planned: PlannedEvent[], chaos: Chaos, random: () => number): WireEvent[] {
  const out: WireEvent[] = planned.map((p) => ({ ...p, msgId: p.event.id }));
  for (let i = 0; i + 1 < out.length; i++) {
    if (random() >= chaos.reorder) continue;
    const a = out[i] as WireEvent;
    const b = out[i + 1] as WireEvent;
    // Both go out at the later time, the later one first.
    const at = Math.max(a.delayMs, b.delayMs);
    out[i] = { ...b, delayMs: at, chaos: 'reorder' };
    out[i + 1] = { ...a, delayMs: at, chaos: 'reorder' };
    i += 1;
  }
  const extra: WireEvent[] = [];
  for (const w of out) {
    if (random() < chaos.duplicate) extra.push({ ...w, msgId: `${w.event.id}#dup`, chaos: 'duplicate' });
    if (random() < chaos.redeliver)
      extra.push({
        ...w,
        delayMs: w.delayMs + chaos.redeliverAfterMs,
        msgId: `${w.event.id}#again`,
        chaos: 'redeliver',
      });
  }
  // Stable sort by time: copies go out after the originals of the same moment.
  return [...out, ...extra]
    .map((w, i) => ({ w, i }))
    .sort((x, y) => x.w.delayMs - y.w.delayMs || x.i - y.i)
    .map(({ w }) => w);
}

interface SimCall {
  persona: Persona;
  /** Whole-call recording (startOutgoingCall.recordCall): from when the call was answered. */
  recordFrom?: number;
  collects: number;
  established: boolean;
  finished: boolean;
  finishedAt?: number;
  commands: Set<string>;
  /** Keys the person already pressed during a prompt and that the next collect must not reuse. */
  keyConsumed: boolean;
  /** Events planned so far: event ids are `{callId}:{seq}:{type}`, the same after a restart. */
  seq: number;
  /** Dials of this call id (a redelivered dial after the call was forgotten counts again). */
  dials: number;
}

/**
 * A call's state as a provider stores it (compact keys), so that a restarted simulator takes the
 * person up where they were: what they pressed, whether they answered or hung up, which commands
 * they already acted on.
 */
export const simCallStateSchema = z.object({
  persona: personaSchema,
  c: z.number().int().min(0),
  e: z.boolean(),
  f: z.boolean(),
  fa: z.number().optional(),
  r: z.number().optional(),
  k: z.boolean(),
  cmd: z.array(z.string()),
  q: z.number().int().min(0),
  d: z.number().int().min(0),
});
export type SimCallState = z.infer<typeof simCallStateSchema>;

export interface SimulatorStats {
  dials: number;
  /** Dials per callId: a call id dialled twice would show up here as 2. */
  dialsByCall: Map<string, number>;
  commands: number;
  events: number;
}

export class SimulatorEngine {
  private readonly calls = new Map<string, SimCall>();
  readonly stats: SimulatorStats = { dials: 0, dialsByCall: new Map(), commands: 0, events: 0 };

  constructor(
    private readonly latency: SimulatorLatency = INSTANT,
    private readonly defaultPersona: Persona = personaSchema.parse({}),
    private readonly now: () => Date = () => new Date(),
  ) {}

  // Event ids count per call (not per process), so that planning the same command again after a
  // restart or a refused store gives the same ids: JetStream and the workflows dedupe on them.
  private event(
    call: SimCall,
    callId: string,
    type: TelephonyEventType,
    properties: Record<string, unknown>,
    delayMs: number,
  ): PlannedEvent {
    this.stats.events += 1;
    return {
      delayMs,
      event: {
        id: `${callId}:${++call.seq}:${type}`,
        type,
        callId,
        timestamp: new Date(this.now().getTime() + delayMs).toISOString(),
        properties,
      },
    };
  }

  private newCall(persona: Persona, commands: string[]): SimCall {
    return {
      persona,
      collects: 0,
      established: false,
      finished: false,
      commands: new Set(commands),
      keyConsumed: false,
      seq: 0,
      dials: 0,
    };
  }

  /** The stored form of a call's state (undefined: the simulator does not know the call). */
  snapshot(callId: string): SimCallState | undefined {
    const c = this.calls.get(callId);
    if (!c) return undefined;
    return {
      persona: c.persona,
      c: c.collects,
      e: c.established,
      f: c.finished,
      ...(c.finishedAt !== undefined ? { fa: c.finishedAt } : {}),
      ...(c.recordFrom !== undefined ? { r: c.recordFrom } : {}),
      k: c.keyConsumed,
      cmd: [...c.commands],
      q: c.seq,
      d: c.dials,
    };
  }

  /**
   * Put a call back as a snapshot had it (after a restart, or to undo a command whose events could
   * not be stored); undefined forgets the call. The dial counters follow the restored state.
   */
  restore(callId: string, state: SimCallState | undefined): void {
    const before = this.calls.get(callId)?.dials ?? 0;
    if (!state) {
      this.calls.delete(callId);
    } else {
      this.calls.set(callId, {
        persona: state.persona,
        collects: state.c,
        established: state.e,
        finished: state.f,
        ...(state.fa !== undefined ? { finishedAt: state.fa } : {}),
        ...(state.r !== undefined ? { recordFrom: state.r } : {}),
        commands: new Set(state.cmd),
        keyConsumed: state.k,
        seq: state.q,
        dials: state.d,
      });
    }
    const after = state?.d ?? 0;
    if (after === before) return;
    this.stats.dials += after - before;
    const total = (this.stats.dialsByCall.get(callId) ?? 0) + after - before;
    if (total > 0) this.stats.dialsByCall.set(callId, total);
    else this.stats.dialsByCall.delete(callId);
  }

  /** Whether the simulator holds state for a call. */
  knows(callId: string): boolean {
    return this.calls.has(callId);
  }

  private personaFor(hints: Record<string, unknown> | undefined): Persona {
    const parsed = personaSchema.safeParse(hints?.persona ?? {});
    return parsed.success ? parsed.data : this.defaultPersona;
  }

  /**
   * A simulated person calls `to` from `from`: returns CALL_RECEIVED for the new call. The persona
   * then drives the call like an outbound one once it is answered.
   */
  incomingCall(callId: string, from: string, to: string, persona: unknown = {}): PlannedEvent {
    const parsed = personaSchema.safeParse(persona);
    const call = this.newCall(parsed.success ? parsed.data : this.defaultPersona, []);
    this.calls.set(callId, call);
    return this.event(call, callId, 'CALL_RECEIVED', { from, to }, 0);
  }

  /** Plan the events that follow a command. Repeated commands (same commandId) plan nothing. */
  plan(cmd: TelephonyCommand): PlannedEvent[] {
    this.stats.commands += 1;
    const L = this.latency;
    if (cmd.action === 'dial') {
      if (this.calls.has(cmd.callId)) return [];
      const persona = this.personaFor(cmd.hints);
      const call = this.newCall(persona, [cmd.commandId]);
      call.dials = 1;
      this.calls.set(cmd.callId, call);
      this.stats.dials += 1;
      this.stats.dialsByCall.set(cmd.callId, (this.stats.dialsByCall.get(cmd.callId) ?? 0) + 1);
      const outcome = persona.attempts[Math.min(cmd.dialIndex, persona.attempts.length) - 1] ?? 'answered';
      const t1 = L.ringMs;
      const t2 = L.ringMs + L.answerMs;
      const base = { commandId: cmd.commandId };
      switch (outcome) {
        case 'answered':
        case 'voicemail': {
          call.established = true;
          if (cmd.recordCall) call.recordFrom = this.now().getTime() + t2;
          const out = [
            this.event(call, cmd.callId, 'CALL_RINGING', base, t1),
            this.event(call, cmd.callId, 'CALL_ESTABLISHED', { ...base, ...holdMark(cmd, 'CALL_ESTABLISHED') }, t2),
          ];
          if (cmd.machineDetection)
            out.push(
              this.event(
                call,
                cmd.callId,
                'MACHINE_DETECTION_FINISHED',
                { ...base, detectionResult: outcome === 'voicemail' ? 'MACHINE' : 'HUMAN' },
                t2,
              ),
            );
          return out;
        }
        case 'unreachable':
        case 'error':
          call.finished = true;
          return [
            this.event(
              call,
              cmd.callId,
              'CALL_FAILED',
              { ...base, errorCode: outcome === 'error' ? 'INTERNAL_ERROR' : 'UNREACHABLE', hangupSource: 'PLATFORM' },
              t1,
            ),
          ];
        default: {
          call.finished = true;
          const errorCode = outcome === 'busy' ? 'BUSY' : outcome === 'declined' ? 'REJECTED' : 'NO_ANSWER';
          return [
            this.event(call, cmd.callId, 'CALL_RINGING', base, t1),
            this.event(call, cmd.callId, 'CALL_FAILED', { ...base, errorCode, hangupSource: 'ENDPOINT' }, t2),
          ];
        }
      }
    }

    const call = this.calls.get(cmd.callId);
    if (!call) {
      // A command for a call this simulator never placed (or forgot long ago): the call is lost.
      // The id comes from the command, so a retried command repeats the same event.
      this.stats.events += 1;
      return [
        {
          delayMs: 0,
          event: {
            id: `${cmd.commandId}:CALL_FINISHED`,
            type: 'CALL_FINISHED',
            callId: cmd.callId,
            timestamp: this.now().toISOString(),
            properties: { errorCode: 'INTERNAL_ERROR', hangupSource: 'PLATFORM' },
          },
        },
      ];
    }
    if (call.commands.has(cmd.commandId) || call.finished) return [];
    call.commands.add(cmd.commandId);
    const base = { commandId: cmd.commandId };
    const hangUp = (delayMs: number) => {
      call.finished = true;
      return [
        this.event(
          call,
          cmd.callId,
          'CALL_FINISHED',
          { errorCode: 'NORMAL_HANGUP', hangupSource: 'ENDPOINT' },
          delayMs,
        ),
        ...this.callRecording(cmd.callId, call, delayMs),
      ];
    };

    switch (cmd.action) {
      case 'say':
      case 'play': {
        const speech = cmd.action === 'say' ? Math.round((cmd.text.length * L.msPerChar) / cmd.speechRate) : L.audioMs;
        const duration = cmd.pauseMs * (L.msPerChar > 0 ? 1 : 0) + speech;
        if (call.persona.hangUpAt === cmd.elementId) return hangUp(Math.round(duration / 2));
        const type = cmd.action === 'say' ? 'SAY_FINISHED' : 'PLAY_FINISHED';
        const ended = { ...base, ...holdMark(cmd, type) };
        // The follow-up is planned now, so a later standalone copy of it is a repeat.
        if (cmd.then) call.commands.add(cmd.then.commandId);
        const key = call.persona.keys[call.collects];
        if (cmd.interruptible && call.persona.pressDuringPrompt && key) {
          call.collects += 1;
          const at = Math.round(duration / 2);
          return [
            this.event(call, cmd.callId, type, { ...ended, interrupted: true, dtmf: key.replace(/#.*$/, '') }, at),
            ...(cmd.then ? this.followUp(cmd.callId, call, cmd.then, at, key) : []),
          ];
        }
        return [
          this.event(call, cmd.callId, type, ended, duration),
          ...(cmd.then ? this.followUp(cmd.callId, call, cmd.then, duration, '') : []),
        ];
      }
      case 'captureDtmf':
        return this.capture(cmd.callId, call, cmd, 0, '');
      case 'hangup':
        call.finished = true;
        return [
          this.event(
            call,
            cmd.callId,
            'CALL_FINISHED',
            { ...base, errorCode: 'NORMAL_HANGUP', hangupSource: 'API' },
            0,
          ),
          ...this.callRecording(cmd.callId, call, 0),
        ];
      case 'answer':
        call.established = true;
        return [this.event(call, cmd.callId, 'CALL_ESTABLISHED', base, L.answerMs)];
      case 'forward': {
        if (call.persona.hangUpAt === cmd.elementId) return hangUp(L.ringMs);
        const t = L.ringMs + L.answerMs;
        const outcome = call.persona.forward;
        if (outcome === 'answered') {
          // The user now talks to the destination; the simulated conversation ends the call later.
          call.finished = true;
          return [
            this.event(call, cmd.legCallId, 'CALL_RINGING', base, L.ringMs),
            this.event(call, cmd.legCallId, 'CALL_ESTABLISHED', base, t),
          ];
        }
        const errorCode =
          outcome === 'busy'
            ? 'BUSY'
            : outcome === 'declined'
              ? 'REJECTED'
              : outcome === 'noAnswer'
                ? 'NO_ANSWER'
                : 'UNREACHABLE';
        return [this.event(call, cmd.legCallId, 'CALL_FAILED', { ...base, errorCode, hangupSource: 'ENDPOINT' }, t)];
      }
      case 'record': {
        const beepMs = cmd.beep ? 500 * (L.keyMs > 0 ? 1 : 0) : 0;
        const speakMs = Math.min(call.persona.speakSeconds * 1000, cmd.maxDurationMs);
        const recordedMs = speakMs + Math.min(cmd.maxSilenceMs, cmd.maxDurationMs - speakMs);
        if (call.persona.hangUpAt === cmd.elementId)
          return hangUp(beepMs + Math.round((speakMs * (L.msPerChar > 0 ? 1 : 0)) / 2));
        const recordingId = `${cmd.callId}:${cmd.commandId}`;
        const ready = this.event(
          call,
          cmd.callId,
          'CALL_RECORDING_READY',
          { ...base, recordingId, name: cmd.name, durationMs: recordedMs },
          beepMs + recordedMs * (L.msPerChar > 0 ? 1 : 0),
        );
        return [
          {
            ...ready,
            recording: {
              id: recordingId,
              callId: cmd.callId,
              name: cmd.name,
              durationMs: recordedMs,
              contentType: 'audio/wav',
            },
          },
        ];
      }
    }
  }

  /**
   * The follow-up of a prompt, run when the prompt ended `atMs` from now. `typed`: the keys that
   * interrupted it (with a `#` if one was pressed), the capture's first digits.
   */
  private followUp(callId: string, call: SimCall, then: PromptFollowUp, atMs: number, typed: string): PlannedEvent[] {
    if (then.action === 'hangup') {
      call.finished = true;
      return [
        this.event(
          call,
          callId,
          'CALL_FINISHED',
          { commandId: then.commandId, errorCode: 'NORMAL_HANGUP', hangupSource: 'API' },
          atMs,
        ),
        ...this.callRecording(callId, call, atMs),
      ];
    }
    return this.capture(callId, call, then, atMs, typed);
  }

  /**
   * A DTMF capture starting `atMs` from now. `typed` keys came first (they interrupted the prompt
   * before it): enough of them, or a `#`, end the capture at once; otherwise the person's next key
   * completes it, after an inter-digit wait rather than the first-digit wait.
   */
  private capture(callId: string, call: SimCall, cmd: CaptureDtmfCommand, atMs: number, typed: string): PlannedEvent[] {
    const L = this.latency;
    const base = { commandId: cmd.commandId, ...holdMark(cmd, 'DTMF_CAPTURED') };
    const typedHash = typed.indexOf('#');
    const prefix = (typedHash >= 0 ? typed.slice(0, typedHash) : typed).slice(0, cmd.maxDigits);
    if (prefix.length >= cmd.maxDigits || typedHash >= 0)
      return [
        this.event(
          call,
          callId,
          'DTMF_CAPTURED',
          {
            ...base,
            dtmf: prefix,
            reason: typedHash >= 0 && prefix.length < cmd.maxDigits ? 'terminator' : 'maxDigits',
          },
          atMs,
        ),
      ];
    if (call.persona.hangUpAt === cmd.elementId) {
      call.finished = true;
      // The capture that was running when the person hung up: the call knows which element it was,
      // whatever order the events reach it in.
      return [
        this.event(
          call,
          callId,
          'CALL_FINISHED',
          { commandId: cmd.commandId, errorCode: 'NORMAL_HANGUP', hangupSource: 'ENDPOINT' },
          atMs + L.keyMs,
        ),
        ...this.callRecording(callId, call, atMs + L.keyMs),
      ];
    }
    const waitMs = (prefix ? cmd.interDigitTimeoutMs : cmd.firstDigitTimeoutMs) * (L.keyMs > 0 ? 1 : 0);
    const key = call.persona.keys[call.collects];
    call.collects += 1;
    if (key === undefined || key === '') {
      return [this.event(call, callId, 'DTMF_CAPTURED', { ...base, dtmf: prefix, reason: 'timeout' }, atMs + waitMs)];
    }
    const hash = key.indexOf('#');
    const keyed = hash >= 0 ? key.slice(0, hash) : key;
    const dtmf = keyed.slice(0, cmd.maxDigits - prefix.length);
    const full = prefix.length + keyed.length >= cmd.maxDigits;
    const reason = full ? 'maxDigits' : hash >= 0 ? 'terminator' : 'timeout';
    const delay =
      L.keyMs * (dtmf.length + (reason === 'terminator' ? 1 : 0)) +
      (reason === 'timeout' ? cmd.interDigitTimeoutMs * (L.keyMs > 0 ? 1 : 0) : 0);
    return [this.event(call, callId, 'DTMF_CAPTURED', { ...base, dtmf: prefix + dtmf, reason }, atMs + delay)];
  }

  /** The whole-call recording, ready after the call ended (only if the dial asked for recordCall). */
  private callRecording(callId: string, call: SimCall, endDelayMs: number): PlannedEvent[] {
    if (call.recordFrom === undefined) return [];
    const durationMs = Math.max(0, this.now().getTime() + endDelayMs - call.recordFrom);
    const id = `${callId}:call`;
    const ready = this.event(
      call,
      callId,
      'CALL_RECORDING_READY',
      { recordingId: id, name: 'call', durationMs },
      endDelayMs,
    );
    return [{ ...ready, recording: { id, callId, name: 'call', durationMs, contentType: 'audio/wav' } }];
  }

  /**
   * Forget calls that finished more than `olderThanMs` ago, to bound memory. The grace period keeps
   * a redelivered dial (activity retry) from being counted and placed twice.
   */
  forgetFinished(olderThanMs: number, canForget: (callId: string) => boolean = () => true): string[] {
    const now = this.now().getTime();
    const forgotten: string[] = [];
    for (const [id, call] of this.calls) {
      if (!call.finished) continue;
      call.finishedAt ??= now;
      if (now - call.finishedAt >= olderThanMs && canForget(id)) {
        this.calls.delete(id);
        forgotten.push(id);
      }
    }
    return forgotten;
  }
}
