// recordVoicemail at run time: records the caller; the recording is listed in the call result and
// its name can be saved to a variable (for a later play of it).
import type { RecordVoicemail } from '../schema.js';
import type { Recording } from '../state.js';
import { TIMEOUTS, type ElementRuntime } from './context.js';

export const recordVoicemail: ElementRuntime<RecordVoicemail> = {
  enter(ctx, el) {
    const token = ctx.token();
    const commandId = ctx.commandId();
    const name = ctx.t(el.name);
    ctx.send({
      action: 'record',
      callId: ctx.state.callId ?? '',
      commandId,
      elementId: el.id,
      name,
      maxDurationMs: el.maxDurationSeconds * 1000,
      maxSilenceMs: el.maxSilenceSeconds * 1000,
      escapeDigits: el.escapeDigits,
      beep: el.beep,
    });
    ctx.state.phase = { kind: 'recording', token, commandId, name };
    ctx.await(token, el.maxDurationSeconds * 1000 + TIMEOUTS.recordSlackMs);
  },

  onEvent(ctx, el, ev) {
    const d = ctx.state;
    const phase = d.phase;
    const p = ev.properties;
    if (phase.kind !== 'recording' || ev.type !== 'CALL_RECORDING_READY' || p.commandId !== phase.commandId)
      return ctx.otherEvent(el, ev);
    const rec: Recording = {
      element: el.id,
      name: phase.name,
      recordingId: typeof p.recordingId === 'string' ? p.recordingId : `${d.callId ?? ''}:${phase.name}`,
      ...(typeof p.url === 'string' ? { url: p.url } : {}),
      ...(typeof p.durationMs === 'number' ? { durationMs: p.durationMs } : {}),
    };
    d.recordings.push(rec);
    if (el.saveTo) d.vars[el.saveTo] = rec.name;
    return ctx.take(el, 'recorded', el.next.recorded);
  },

  onCallEnded: (ctx, el, branch) => ctx.take(el, branch, el.next[branch]),

  onTimeout(ctx, el, phase) {
    if (phase.kind !== 'recording') return ctx.stillWaiting();
    // The provider never confirmed the recording: treat as a technical end of the call.
    ctx.hangUpIfActive(el.id);
    return ctx.take(el, 'callEnded', el.next.callEnded);
  },
};
