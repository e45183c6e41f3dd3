// The element modules by element type: the interpreter dispatches to them.
import type { ElementOf, ElementType, FlowElement } from '../schema.js';
import type { ElementRuntime } from './context.js';
import { startIncomingCall } from './startIncomingCall.js';
import { startOutgoingCall } from './startOutgoingCall.js';
import { play } from './play.js';
import { collect } from './collect.js';
import { forwardCall } from './forwardCall.js';
import { recordVoicemail } from './recordVoicemail.js';
import { hangUp } from './hangUp.js';
import { pause } from './pause.js';
import { sendSms } from './sendSms.js';
import { updateProfile } from './updateProfile.js';
import { httpRequest } from './httpRequest.js';
import { condition } from './condition.js';
import { setVariable } from './setVariable.js';

const ELEMENTS: { [T in ElementType]: ElementRuntime<ElementOf<T>> } = {
  startIncomingCall,
  startOutgoingCall,
  play,
  collect,
  forwardCall,
  recordVoicemail,
  hangUp,
  pause,
  sendSms,
  updateProfile,
  httpRequest,
  condition,
  setVariable,
};

/** The module of `el`'s element type. */
export function runtimeOf<E extends FlowElement>(el: E): ElementRuntime<E> {
  return ELEMENTS[el.type] as unknown as ElementRuntime<E>;
}

export { answer } from './startIncomingCall.js';
export { DEFAULT_VALIDITY_MS } from './startOutgoingCall.js';
export { TIMEOUTS, type ElementRuntime, type StepContext } from './context.js';
