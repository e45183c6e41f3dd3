// The branches of every element, with what each does to the call session. One description shared
// by the validator (session rules, reachability, auto hang-ups), `dialflow graph` and the docs.
import type { FlowElement } from './schema.js';

/** start: the branch opens a call session; keep: the session state is unchanged; end: no session after it. */
export type SessionEffect = 'start' | 'keep' | 'end';

export interface Branch {
  /** Branch name as written in the document (`answered`, `1`, `next`, `else`, `conditions[0]` …). */
  name: string;
  /** Element id, null for "enabled but not connected", undefined when not configured. */
  target: string | null | undefined;
  effect: SessionEffect;
  /** Field path of the branch inside the element. */
  path: string;
  /** Configured or always present: an open branch here is reported (and closed with a hang-up in a session). */
  enabled: boolean;
}

function fromMap(
  map: Record<string, string | null | undefined>,
  spec: Record<string, { effect: SessionEffect; always: boolean }>,
): Branch[] {
  return Object.entries(spec).map(([name, s]) => ({
    name,
    target: map[name],
    effect: s.effect,
    path: `next.${name}`,
    enabled: s.always || Object.prototype.hasOwnProperty.call(map, name),
  }));
}

const single = (target: string | undefined, effect: SessionEffect, name = 'next', path = 'next'): Branch => ({
  name,
  target,
  effect,
  path,
  enabled: true,
});

export function branchesOf(el: FlowElement): Branch[] {
  switch (el.type) {
    case 'startIncomingCall':
      return [single(el.next, 'start')];
    case 'startOutgoingCall':
      return fromMap(el.next, {
        answered: { effect: 'start', always: true },
        voicemail: { effect: 'start', always: false },
        noAnswer: { effect: 'end', always: false },
        busy: { effect: 'end', always: false },
        declined: { effect: 'end', always: false },
        callEnded: { effect: 'end', always: true },
      });
    case 'play':
      return fromMap(el.next, {
        played: { effect: 'keep', always: true },
        hungUp: { effect: 'end', always: true },
        callEnded: { effect: 'end', always: true },
      });
    case 'collect':
      return [
        ...Object.entries(el.responses).map(([digits, t]) => ({
          name: digits,
          target: t,
          effect: 'keep' as const,
          path: `responses.${digits}`,
          enabled: true,
        })),
        ...fromMap(el.next, {
          noMatch: { effect: 'keep', always: true },
          hungUp: { effect: 'end', always: true },
          callEnded: { effect: 'end', always: true },
        }),
      ];
    case 'forwardCall':
      return fromMap(el.next, {
        forwarded: { effect: 'end', always: true },
        notForwarded: { effect: 'keep', always: true },
        noAnswer: { effect: 'keep', always: false },
        busy: { effect: 'keep', always: false },
        declined: { effect: 'keep', always: false },
        callEnded: { effect: 'end', always: true },
      });
    case 'recordVoicemail':
      return fromMap(el.next, {
        recorded: { effect: 'keep', always: true },
        hungUp: { effect: 'end', always: true },
        callEnded: { effect: 'end', always: true },
      });
    case 'hangUp':
      return [single(el.next, 'end')];
    case 'pause':
    case 'setVariable':
      return [single(el.next, 'keep')];
    case 'sendSms':
    case 'updateProfile':
    case 'httpRequest':
      return [
        single(el.next, 'keep'),
        ...(el.onError !== undefined ? [single(el.onError, 'keep', 'onError', 'onError')] : []),
      ];
    case 'condition':
      return [
        ...el.conditions.map((c, i) => single(c.next, 'keep', `conditions[${i}]`, `conditions[${i}].next`)),
        single(el.else, 'keep', 'else', 'else'),
      ];
  }
}
