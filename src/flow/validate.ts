// Flow validation: every problem at once, each with a stable code, the element id and a field path.
import type { z } from 'zod';
import { flowSchema, type Flow, type FlowElement } from './schema.js';

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
  flow?: Flow;
  issues: ValidationIssue[];
}

export class FlowValidationError extends Error {
  override readonly name = 'FlowValidationError';
  constructor(
    readonly issues: ValidationIssue[],
    options?: { cause?: unknown },
  ) {
    super(`invalid flow: ${issues.filter((i) => i.severity === 'error').map((i) => `${i.path}: ${i.message}`).join('; ')}`, options);
  }
}

function pathString(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)), '');
}

function schemaIssues(doc: unknown, error: z.ZodError): ValidationIssue[] {
  const elements = (doc as { elements?: unknown[] } | null)?.elements;
  return error.issues.map((iss) => {
    const idx = iss.path[0] === 'elements' && typeof iss.path[1] === 'number' ? iss.path[1] : undefined;
    const el = idx !== undefined && Array.isArray(elements) ? (elements[idx] as { id?: unknown } | undefined) : undefined;
    return {
      severity: 'error' as const,
      code: `schema.${iss.code}`,
      ...(typeof el?.id === 'string' ? { elementId: el.id } : {}),
      path: pathString(iss.path),
      message: iss.message,
    };
  });
}

/** Targets of every `next` of an element, with the path of the field that names them. */
export function nextTargets(el: FlowElement): Array<{ branch: string; target: string; path: string }> {
  const out: Array<{ branch: string; target: string; path: string }> = [];
  if (el.type === 'collect') {
    for (const [digits, t] of Object.entries(el.responses)) out.push({ branch: digits, target: t, path: `responses.${digits}` });
  }
  const next: unknown = el.next;
  if (typeof next === 'string') out.push({ branch: 'next', target: next, path: 'next' });
  else if (next && typeof next === 'object') {
    for (const [b, t] of Object.entries(next as Record<string, string | undefined>)) if (t) out.push({ branch: b, target: t, path: `next.${b}` });
  }
  return out;
}

export function validateFlow(doc: unknown): ValidationResult {
  const parsed = flowSchema.safeParse(doc);
  if (!parsed.success) return { ok: false, issues: schemaIssues(doc, parsed.error) };
  const flow = parsed.data;
  const issues: ValidationIssue[] = [];
  const ids = new Map<string, number>();
  flow.elements.forEach((el, i) => {
    if (ids.has(el.id)) issues.push({ severity: 'error', code: 'element.duplicateId', elementId: el.id, path: `elements[${i}].id`, message: `element id "${el.id}" is used more than once` });
    ids.set(el.id, i);
  });
  if (!ids.has(flow.start)) issues.push({ severity: 'error', code: 'flow.startMissing', path: 'start', message: `start element "${flow.start}" does not exist` });
  flow.elements.forEach((el, i) => {
    for (const t of nextTargets(el)) {
      if (!ids.has(t.target)) {
        issues.push({ severity: 'error', code: 'next.unknownTarget', elementId: el.id, path: `elements[${i}].${t.path}`, message: `"${t.target}" is not an element of this flow` });
      }
    }
  });
  return { ok: !issues.some((i) => i.severity === 'error'), flow, issues };
}

/** Parse and validate, or throw a FlowValidationError carrying every issue. */
export function parseFlow(doc: unknown): Flow {
  const res = validateFlow(doc);
  if (!res.ok || !res.flow) throw new FlowValidationError(res.issues);
  return res.flow;
}
