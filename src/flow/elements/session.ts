// Which elements need a call session and which may run inside one: read by the validator (session
// rules) and the interpreter (an IVR element reached where the call has ended takes `callEnded`).
// Pure: the interpreter and the workflow bundle read it without the schema.
import type { ElementType } from '../schema.js';

/** Elements that talk to the caller: only inside a call session. */
export const IVR_TYPES: ReadonlySet<ElementType> = new Set<ElementType>([
  'play',
  'collect',
  'forwardCall',
  'recordVoicemail',
]);
/** Non-IVR actions that may run inside a call session (DESIGN.md). */
export const IN_SESSION_ACTIONS: ReadonlySet<ElementType> = new Set<ElementType>([
  'sendSms',
  'updateProfile',
  'httpRequest',
  'condition',
  'setVariable',
]);
