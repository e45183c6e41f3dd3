// Flow validation: every problem at once, each `{ severity, code, elementId, path, message }` with a
// stable code. The schema checks fields and limits; the graph checks below check what a schema
// cannot: references, reachability, call-session rules. Open branches inside a call session get a
// hangUp added to the returned (normalised) flow, and each is reported as a warning.
import type { z } from 'zod';
import {
  flowSchema,
  IN_SESSION_ACTIONS,
  IVR_TYPES,
  MAX_ELEMENTS,
  RECOMMENDED_MAX_RETRIES,
  type Flow,
  type FlowElement,
} from './schema.js';
import { branchesOf } from './graph.js';
import { expressionProblem } from './expressions.js';
import { placeholders } from './template.js';
import { documentLimitIssues } from './document.js';

export type Severity = 'error' | 'warning';
export interface ValidationIssue {
  severity: Severity;
  code: string;
  elementId?: string;
  path: string;
  message: string;
}
export interface ValidationResult {
  ok: boolean;
  /** The normalised flow (defaults applied, automatic hang-ups added), when there are no errors. */
  flow?: Flow;
  issues: ValidationIssue[];
}

export class FlowValidationError extends Error {
  override readonly name = 'FlowValidationError';
  constructor(
    readonly issues: ValidationIssue[],
    options?: { cause?: unknown },
  ) {
    super(
      `invalid flow: ${issues
        .filter((i) => i.severity === 'error')
        .map((i) => `${i.path}: ${i.message}`)
        .join('; ')}`,
      options,
    );
  }
}

export const AUTO_HANGUP_ID = 'autoHangUp';

function pathString(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>(
    (acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)),
    '',
  );
}

type ZIssue = z.core.$ZodIssue;
/** zod sets `note` on a failed discriminator, without declaring it on the issue type. */
const noteOf = (iss: ZIssue): string => ((iss as { note?: unknown }).note as string | undefined) ?? '';

/** For a union, report the member that came closest (fewest issues) instead of "invalid input". */
function flatten(iss: ZIssue): ZIssue[] {
  if (iss.code === 'invalid_union' && iss.errors.length > 0 && !noteOf(iss).includes('discriminator')) {
    const best = [...iss.errors].sort((a, b) => a.length - b.length)[0] ?? [];
    return best.flatMap((inner) => flatten({ ...inner, path: [...iss.path, ...inner.path] } as ZIssue));
  }
  return [iss];
}

function codeOf(iss: ZIssue): string {
  const custom = iss.code === 'custom' ? (iss.params as { code?: string } | undefined)?.code : undefined;
  if (custom) return custom;
  const last = iss.path.at(-1);
  switch (iss.code) {
    case 'too_big':
      return last === 'elements' && iss.path.length === 1 ? 'flow.tooManyElements' : 'field.tooBig';
    case 'too_small':
      return 'field.tooSmall';
    case 'invalid_type':
      return iss.message.includes('received undefined') ? 'field.required' : 'field.type';
    case 'unrecognized_keys':
      return 'field.unknown';
    case 'invalid_union':
      return last === 'type' || noteOf(iss).includes('discriminator') ? 'element.unknownType' : 'field.invalid';
    case 'invalid_value':
      return 'field.value';
    case 'invalid_format':
      return 'field.format';
    default:
      return `field.${iss.code}`;
  }
}

function schemaIssues(doc: unknown, error: z.ZodError): ValidationIssue[] {
  const elements = (doc as { elements?: unknown[] } | null)?.elements;
  return error.issues.flatMap(flatten).map((iss) => {
    const idx = iss.path[0] === 'elements' && typeof iss.path[1] === 'number' ? iss.path[1] : undefined;
    const el =
      idx !== undefined && Array.isArray(elements) ? (elements[idx] as { id?: unknown } | undefined) : undefined;
    const code = codeOf(iss);
    let message = iss.message;
    if (code === 'element.unknownType')
      message =
        'unknown element type; one of startIncomingCall, startOutgoingCall, play, collect, forwardCall, recordVoicemail, hangUp, pause, sendSms, updateProfile, httpRequest, condition, setVariable';
    if (code === 'field.unknown' && iss.code === 'unrecognized_keys')
      message = `unknown field${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => `"${k}"`).join(', ')}`;
    return {
      severity: 'error' as const,
      code,
      ...(typeof el?.id === 'string' ? { elementId: el.id } : {}),
      path: pathString(
        code === 'field.unknown' && iss.code === 'unrecognized_keys' && iss.keys[0]
          ? [...iss.path, iss.keys[0]]
          : iss.path,
      ),
      message,
    };
  });
}

/** Targets of every branch of an element, with the path of the field that names them. */
export function nextTargets(el: FlowElement): Array<{ branch: string; target: string; path: string }> {
  return branchesOf(el).flatMap((b) =>
    typeof b.target === 'string' ? [{ branch: b.name, target: b.target, path: b.path }] : [],
  );
}

type SessionState = 'none' | 'inbound' | 'outbound';

function expressionsOf(el: FlowElement): Array<{ path: string; source: string }> {
  switch (el.type) {
    case 'condition':
      return el.conditions.map((c, i) => ({ path: `conditions[${i}].if`, source: c.if }));
    case 'setVariable':
      return [{ path: 'value', source: el.value }];
    case 'updateProfile':
      return Object.entries(el.attributes).map(([k, v]) => ({ path: `attributes.${k}`, source: v }));
    case 'httpRequest':
      return Object.entries(el.saveTo).map(([k, v]) => ({ path: `saveTo.${k}`, source: v }));
    default:
      return [];
  }
}

function templatesOf(el: FlowElement): Array<{ path: string; text: string }> {
  const out: Array<{ path: string; text: string }> = [];
  const walk = (v: unknown, path: string) => {
    if (typeof v === 'string') out.push({ path, text: v });
    else if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${path}[${i}]`));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${k}` : k);
  };
  const { id: _id, type: _type, next: _next, ...rest } = el as Record<string, unknown>;
  walk(rest, '');
  return out;
}

export function validateFlow(doc: unknown): ValidationResult {
  // Bounded first: the schema and every later walk recurse, and an oversized flow fails only when
  // it is sent to Temporal, after recipients were staged.
  const limits = documentLimitIssues(doc);
  if (limits.length > 0) return { ok: false, issues: limits };
  const parsed = flowSchema.safeParse(doc);
  if (!parsed.success) return { ok: false, issues: schemaIssues(doc, parsed.error) };
  const flow = parsed.data;
  const issues: ValidationIssue[] = [];
  const err = (code: string, path: string, message: string, elementId?: string) =>
    issues.push({ severity: 'error', code, path, message, ...(elementId ? { elementId } : {}) });
  const warn = (code: string, path: string, message: string, elementId?: string) =>
    issues.push({ severity: 'warning', code, path, message, ...(elementId ? { elementId } : {}) });

  // Ids and references.
  const index = new Map<string, number>();
  flow.elements.forEach((el, i) => {
    if (index.has(el.id))
      err('element.duplicateId', `elements[${i}].id`, `element id "${el.id}" is used more than once`, el.id);
    else index.set(el.id, i);
  });
  const byId = new Map(flow.elements.map((e) => [e.id, e]));
  const at = (id: string) => `elements[${index.get(id) ?? -1}]`;
  flow.elements.forEach((el, i) => {
    for (const t of nextTargets(el)) {
      if (!index.has(t.target))
        err('next.unknownTarget', `elements[${i}].${t.path}`, `"${t.target}" is not an element of this flow`, el.id);
      else if (t.target === el.id)
        err('next.self', `elements[${i}].${t.path}`, 'an element cannot lead to itself', el.id);
    }
  });

  // Entries.
  const incoming = flow.elements.filter((e) => e.type === 'startIncomingCall');
  const numbers = new Map<string, string>();
  for (const e of incoming) {
    const n = e.number.replace(/^\+/, '');
    const other = numbers.get(n);
    if (other)
      err(
        'incoming.duplicateNumber',
        `${at(e.id)}.number`,
        `number ${e.number} already starts "${other}": use one startIncomingCall per number`,
        e.id,
      );
    else numbers.set(n, e.id);
  }
  if (flow.start !== undefined && !index.has(flow.start))
    err('flow.startMissing', 'start', `start element "${flow.start}" does not exist`);
  if (flow.start === undefined && incoming.length === 0)
    err('flow.noEntry', 'start', 'an outbound flow names its `start` element; an inbound flow has a startIncomingCall');

  // Walk every (element, session state) pair reachable from an entry.
  const seen = new Set<string>();
  const reached = new Set<string>();
  const reported = new Set<string>();
  const openInSession: Array<{ el: FlowElement; path: string; name: string; field: boolean }> = [];
  const once = (key: string, f: () => void) => {
    if (!reported.has(key)) {
      reported.add(key);
      f();
    }
  };
  const queue: Array<{ id: string; state: SessionState; viaNext: boolean }> = [];
  if (flow.start && index.has(flow.start)) queue.push({ id: flow.start, state: 'none', viaNext: false });
  for (const e of incoming) queue.push({ id: e.id, state: 'none', viaNext: false });
  while (queue.length > 0) {
    const { id, state, viaNext } = queue.shift() as { id: string; state: SessionState; viaNext: boolean };
    const key = `${id}|${state}|${viaNext}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const el = byId.get(id);
    if (!el) continue;
    reached.add(id);
    const p = at(id);
    if (el.type === 'startIncomingCall' && viaNext)
      once(`${id}:entry`, () =>
        err('session.incomingNotEntry', p, 'startIncomingCall is an entry point: no branch can lead to it', id),
      );
    if (IVR_TYPES.has(el.type) && state === 'none')
      once(`${id}:ivr`, () =>
        err(
          'session.ivrOutsideSession',
          p,
          `${el.type} is an IVR element and can only be used inside a call session (after a start-call element, before hangUp or a branch that ends the call)`,
          id,
        ),
      );
    if (el.type === 'startOutgoingCall' && state === 'inbound')
      once(`${id}:outInIn`, () =>
        err('session.outgoingInInbound', p, 'startOutgoingCall is not available within an inbound call session', id),
      );
    if (el.type === 'startOutgoingCall' && state === 'outbound')
      once(`${id}:nested`, () =>
        err(
          'session.nestedCall',
          p,
          'a call is already in progress here: end it with hangUp before starting another call',
          id,
        ),
      );
    if (el.type === 'pause' && state !== 'none')
      once(`${id}:pause`, () =>
        err(
          'session.notAllowedInSession',
          p,
          `pause cannot be used inside a call session; allowed there: ${[...IN_SESSION_ACTIONS].join(', ')}`,
          id,
        ),
      );

    for (const b of branchesOf(el)) {
      const nextState: SessionState =
        b.effect === 'start'
          ? el.type === 'startIncomingCall'
            ? 'inbound'
            : 'outbound'
          : b.effect === 'end'
            ? 'none'
            : state;
      if (typeof b.target === 'string') queue.push({ id: b.target, state: nextState, viaNext: true });
      else if (b.enabled && nextState !== 'none') {
        once(`${id}:open:${b.name}`, () =>
          openInSession.push({ el, path: `${p}.${b.path}`, name: b.name, field: b.written === 'field' }),
        );
      }
    }
  }
  flow.elements.forEach((el, i) => {
    if (!reached.has(el.id))
      err(
        'element.unreachable',
        `elements[${i}]`,
        `"${el.id}" cannot be reached from ${flow.start ? `start "${flow.start}"` : 'any startIncomingCall'}`,
        el.id,
      );
  });

  // Field-level advice and expression syntax.
  const declared = new Set(Object.keys(flow.variables));
  const assigned = new Set<string>();
  flow.elements.forEach((el, i) => {
    if (el.type === 'startOutgoingCall' && el.retry && el.retry.count > RECOMMENDED_MAX_RETRIES)
      warn(
        'retry.tooMany',
        `elements[${i}].retry.count`,
        `${el.retry.count} retries: to avoid spamming the end user, do not retry a call more than ${RECOMMENDED_MAX_RETRIES} times`,
        el.id,
      );
    if (el.type === 'play' && el.interruptible) {
      const played = el.next.played;
      const target = typeof played === 'string' ? byId.get(played) : undefined;
      if (target?.type !== 'collect')
        warn(
          'play.interruptibleWithoutCollect',
          `elements[${i}].interruptible`,
          `audio interruption works only when the "played" branch leads to a collect element, and ${
            typeof played === 'string' ? `it leads to ${target?.type ?? 'element'} "${played}"` : 'it is open'
          }: the prompt is played to the end and keys pressed during it are ignored`,
          el.id,
        );
    }
    for (const x of expressionsOf(el)) {
      const problem = expressionProblem(x.source);
      if (problem) err('expression.syntax', `elements[${i}].${x.path}`, problem, el.id);
    }
    const saves =
      el.type === 'setVariable'
        ? [el.variable]
        : el.type === 'collect' || el.type === 'recordVoicemail'
          ? el.saveTo
            ? [el.saveTo]
            : []
          : el.type === 'httpRequest'
            ? Object.keys(el.saveTo)
            : [];
    for (const v of saves) {
      assigned.add(v);
      if (!declared.has(v))
        warn(
          'variable.undeclared',
          `elements[${i}]`,
          `variable "${v}" is not declared in \`variables\`: it is created as a string`,
          el.id,
        );
    }
  });
  flow.elements.forEach((el, i) => {
    for (const t of templatesOf(el)) {
      for (const ph of placeholders(t.text)) {
        const [root, name] = ph.split('.');
        if (root === 'vars' && name && !declared.has(name) && !assigned.has(name))
          warn(
            'template.unknownVariable',
            `elements[${i}].${t.path}`,
            `{{${ph}}} names a variable that is never declared or set: it renders empty`,
            el.id,
          );
        else if (root !== 'vars' && root !== 'recipient' && root !== 'profile' && root !== 'call')
          err(
            'template.unknownRoot',
            `elements[${i}].${t.path}`,
            `{{${ph}}}: placeholders start with recipient., vars., profile. or call.`,
            el.id,
          );
      }
    }
  });
  const voicemailNames = new Set(flow.elements.flatMap((e) => (e.type === 'recordVoicemail' ? [e.name] : [])));
  flow.elements.forEach((el, i) => {
    if (el.type === 'play' && el.audio && 'voicemail' in el.audio && !voicemailNames.has(el.audio.voicemail))
      warn(
        'audio.unknownVoicemail',
        `elements[${i}].audio.voicemail`,
        `no recordVoicemail element in this flow records "${el.audio.voicemail}"`,
        el.id,
      );
  });

  const ok = !issues.some((i) => i.severity === 'error');
  if (!ok) return { ok, issues };

  // Close open branches of call sessions with a hangUp (one shared element), and report each. A flow
  // has at most 100 elements, and the added one may not be the 101st (the flow would fail its own
  // schema when read back): at the limit the branches stay open, and the call is hung up where its
  // path ends, exactly as the hangUp element would do it.
  if (openInSession.length > 0 && flow.elements.length >= MAX_ELEMENTS) {
    for (const o of openInSession)
      warn(
        'session.autoHangUp',
        o.path,
        `branch "${o.name}" is open inside the call session: the call is hung up automatically there (no hangUp element is added: the flow already has ${MAX_ELEMENTS} elements, the most allowed)`,
        o.el.id,
      );
    return { ok, flow, issues };
  }
  if (openInSession.length > 0) {
    let hangUpId = AUTO_HANGUP_ID;
    for (let n = 2; byId.has(hangUpId); n++) hangUpId = `${AUTO_HANGUP_ID}${n}`;
    const normalised = JSON.parse(JSON.stringify(flow)) as Flow;
    for (const o of openInSession) {
      warn(
        'session.autoHangUp',
        o.path,
        `branch "${o.name}" is open inside the call session: a hangUp ("${hangUpId}") is added`,
        o.el.id,
      );
      const el = normalised.elements[index.get(o.el.id) ?? -1];
      if (!el) continue;
      if (o.field) (el as Record<string, unknown>)[o.name] = hangUpId;
      else (el as { next: Record<string, unknown> }).next[o.name] = hangUpId;
    }
    normalised.elements.push({ id: hangUpId, type: 'hangUp', label: 'added automatically' });
    return { ok, flow: normalised, issues };
  }
  return { ok, flow, issues };
}

/** Parse and validate, or throw a FlowValidationError carrying every issue. */
export function parseFlow(doc: unknown): Flow {
  const res = validateFlow(doc);
  if (!res.ok || !res.flow) throw new FlowValidationError(res.issues);
  return res.flow;
}
