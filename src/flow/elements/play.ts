// play at run time: says a text or plays audio, loop by loop. On the last loop the provider is handed
// what follows the prompt (the capture of the collect it leads to, or the hang-up where the path
// ends), saving the call a round trip; keys that interrupt the prompt go to that collect.
import type { PromptFollowUp, TelephonyEvent } from '../../telephony/contract.js';
import type { Play } from '../schema.js';
import { TIMEOUTS, type ElementRuntime, type StepContext } from './context.js';
import { captureCommand, collectWaitMs } from './collect.js';

/**
 * Audio interruption works only when the `played` branch leads straight to a collect (seed); on any
 * other play the flag has no effect: the provider is told the prompt is not interruptible, and a
 * key reported during it is not kept.
 */
function interrupts(ctx: StepContext, el: Play): boolean {
  const played = el.next.played;
  return el.interruptible && typeof played === 'string' && ctx.byId(played)?.type === 'collect';
}

function playLoop(ctx: StepContext, el: Play, loop: number): void {
  const d = ctx.state;
  const interruptible = interrupts(ctx, el);
  const token = ctx.token();
  const commandId = ctx.commandId();
  const callId = d.callId ?? '';
  // The pause applies only before the first play (seed).
  const pauseMs = loop === 1 ? Math.round(el.pauseSeconds * 1000) : 0;
  const followUp = loop === el.loopCount ? followUpOf(ctx, el, callId) : undefined;
  const ends = el.tts ? 'SAY_FINISHED' : 'PLAY_FINISHED';
  // With a follow-up the prompt's end changes nothing on its own: it comes with the follow-up's result.
  const chained = followUp ? { then: followUp.command, holdEvents: [ends] as Array<typeof ends> } : {};
  let lengthMs = 60_000;
  if (el.tts) {
    const text = ctx.t(el.tts.text);
    lengthMs = text.length * 200;
    ctx.send({
      action: 'say',
      callId,
      commandId,
      elementId: el.id,
      text,
      language: el.tts.language,
      voice: el.tts.neural ? `${el.tts.voice}-neural` : el.tts.voice,
      speechRate: el.tts.speechRate,
      pauseMs,
      interruptible,
      ...chained,
    });
  } else if (el.audio) {
    const url =
      'url' in el.audio
        ? ctx.t(el.audio.url)
        : 'file' in el.audio
          ? `file:${el.audio.file}`
          : `recording:${ctx.t(el.audio.voicemail)}`;
    ctx.send({ action: 'play', callId, commandId, elementId: el.id, url, pauseMs, interruptible, ...chained });
  }
  d.phase = { kind: 'playing', token, commandId, loop, ...(followUp ? { followUp: followUp.command } : {}) };
  ctx.await(token, pauseMs + lengthMs + TIMEOUTS.promptSlackMs + (followUp?.extraMs ?? 0));
}

/**
 * What the provider can do by itself when the last loop of `el` ends, saving the call a round trip:
 * start the capture of the collect `played` leads to, or hang up when the path ends there (left
 * open, or a final hangUp element). `extraMs`: how much longer the prompt's wait may then last.
 */
function followUpOf(
  ctx: StepContext,
  el: Play,
  callId: string,
): { command: PromptFollowUp; extraMs: number } | undefined {
  const played = el.next.played;
  const target = typeof played === 'string' ? ctx.byId(played) : undefined;
  if (target?.type === 'collect') {
    ctx.token();
    const command = captureCommand(ctx, target, ctx.commandId(), '');
    return { command, extraMs: collectWaitMs(target, target.maxDigits) };
  }
  if (!played || (target?.type === 'hangUp' && !target.next)) {
    ctx.token();
    return {
      command: { action: 'hangup', callId, commandId: ctx.commandId(), elementId: target?.id ?? el.id },
      extraMs: 0,
    };
  }
  return undefined;
}

/**
 * The prompt ended (or the follow-up's result came before word of it): the follow-up is running,
 * so the collect or the hang-up it stands for is not sent again. `captured`: its digits, if known.
 */
async function promptEnded(
  ctx: StepContext,
  el: Play,
  followUp: PromptFollowUp,
  captured?: string,
  ended?: TelephonyEvent,
): Promise<void> {
  const d = ctx.state;
  if (followUp.action === 'captureDtmf') {
    const queued = { elementId: el.next.played ?? '', command: followUp };
    d.queuedCapture = {
      ...queued,
      ...(captured !== undefined ? { digits: captured } : {}),
      ...(ended ? { ended } : {}),
    };
  } else {
    d.queuedHangup = true;
  }
  await ctx.take(el, 'played', el.next.played);
  delete d.queuedCapture;
  delete d.queuedHangup;
}

export const play: ElementRuntime<Play> = {
  enter: (ctx, el) => playLoop(ctx, el, 1),

  onEvent(ctx, el, ev) {
    const d = ctx.state;
    const phase = d.phase;
    const p = ev.properties;
    const commandId = typeof p.commandId === 'string' ? p.commandId : undefined;
    if (phase.kind !== 'playing') return ctx.otherEvent(el, ev);
    if (phase.followUp && commandId === phase.followUp.commandId) {
      // The follow-up's result came first (the prompt's end was held or is late): the prompt ended.
      if (ev.type === 'DTMF_CAPTURED')
        return promptEnded(ctx, el, phase.followUp, typeof p.dtmf === 'string' ? p.dtmf : '');
      // The call ended during the follow-up's capture (the provider names the capture that was
      // running): the prompt had played, and the collect sees the end.
      if (phase.followUp.action === 'captureDtmf' && (ev.type === 'CALL_FINISHED' || ev.type === 'CALL_FAILED'))
        return promptEnded(ctx, el, phase.followUp, undefined, ev);
      if (ev.type === 'CALL_FINISHED') {
        ctx.legEnded();
        return promptEnded(ctx, el, phase.followUp);
      }
    }
    if ((ev.type === 'SAY_FINISHED' || ev.type === 'PLAY_FINISHED') && commandId === phase.commandId) {
      // Keys that interrupted the prompt are the follow-up capture's first digits already.
      if (phase.followUp) return promptEnded(ctx, el, phase.followUp);
      const pressed = typeof p.dtmf === 'string' ? p.dtmf : '';
      if (pressed && interrupts(ctx, el)) {
        d.bargeIn = pressed;
        return ctx.take(el, 'played', el.next.played);
      }
      if (phase.loop < el.loopCount) return playLoop(ctx, el, phase.loop + 1);
      return ctx.take(el, 'played', el.next.played);
    }
    return ctx.otherEvent(el, ev);
  },

  onCallEnded: (ctx, el, branch) => ctx.take(el, branch, el.next[branch]),

  onTimeout(ctx, el, phase) {
    if (phase.kind !== 'playing') return ctx.stillWaiting();
    // The provider never confirmed the prompt: treat as a technical end of the call.
    ctx.hangUpIfActive(el.id);
    return ctx.take(el, 'callEnded', el.next.callEnded);
  },
};
