// The editor's model of a flow document: the JSON Schema of each element type (generated from the
// zod schema, docs/flow.schema.json), the branches each element has (edges on the canvas), new
// elements, renames that follow references, and a layered layout for documents without positions.
import flowSchemaJson from '../../../../docs/flow.schema.json';

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  enum?: Array<string | number | boolean>;
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  default?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  format?: string;
}

export interface FlowElement {
  id: string;
  type: string;
  [field: string]: unknown;
}

export interface FlowDoc {
  id: string;
  version: number;
  name?: string;
  description?: string;
  variables?: Record<string, { type?: string; default?: unknown }>;
  start: string;
  elements: FlowElement[];
  [field: string]: unknown;
}

export interface Problem {
  severity?: 'error' | 'warning';
  code: string;
  elementId?: string;
  path?: string;
  message: string;
}

export const FLOW_SCHEMA = flowSchemaJson as unknown as JsonSchema;
export const MAX_ELEMENTS = FLOW_SCHEMA.properties?.elements?.maxItems ?? 100;

const elementVariants: JsonSchema[] = FLOW_SCHEMA.properties?.elements?.items?.oneOf ?? [];
export const ELEMENT_SCHEMAS: ReadonlyMap<string, JsonSchema> = new Map(
  elementVariants.map((variant) => [String(variant.properties?.type?.const), variant]),
);
export const ELEMENT_TYPES: readonly string[] = [...ELEMENT_SCHEMAS.keys()];

/** Fields every element has; the form shows them first. */
export const COMMON_FIELDS = ['id', 'label', 'description', 'type'] as const;
/** Fields whose value is the id of the element a branch leads to (besides `next`). */
const TARGET_FIELDS = ['else', 'onError'];

export type PathKey = string | number;

export function pathString(path: readonly PathKey[]): string {
  return path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '');
}

/** Whether a field of an element (by its path) names the element a branch leads to. */
export function isTargetPath(type: string, path: readonly PathKey[]): boolean {
  const [head, second, third] = path;
  if (head === 'next') return true;
  if (path.length === 1 && typeof head === 'string' && TARGET_FIELDS.includes(head)) return true;
  if (type === 'collect' && head === 'responses' && path.length === 2) return true;
  return type === 'condition' && head === 'conditions' && typeof second === 'number' && third === 'next';
}

export interface BranchSlot {
  /** As written in the document: `played`, `1`, `next`, `else`, `conditions[0]` … */
  name: string;
  path: PathKey[];
  /** Element id, null for "enabled but open", undefined when not written. */
  target: string | null | undefined;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export function branchesOf(el: FlowElement): BranchSlot[] {
  const schema = ELEMENT_SCHEMAS.get(el.type);
  const props = schema?.properties ?? {};
  const slots: BranchSlot[] = [];
  const nextSchema = props.next;
  if (nextSchema?.type === 'string') {
    slots.push({ name: 'next', path: ['next'], target: typeof el.next === 'string' ? el.next : undefined });
  } else if (nextSchema?.properties) {
    const next = isRecord(el.next) ? el.next : {};
    for (const name of Object.keys(nextSchema.properties)) {
      const value = next[name];
      slots.push({
        name,
        path: ['next', name],
        target: typeof value === 'string' ? value : value === null ? null : undefined,
      });
    }
  }
  if (el.type === 'collect' && isRecord(el.responses))
    for (const [digits, target] of Object.entries(el.responses))
      slots.push({
        name: digits,
        path: ['responses', digits],
        target: typeof target === 'string' ? target : undefined,
      });
  if (el.type === 'condition' && Array.isArray(el.conditions))
    el.conditions.forEach((condition: unknown, i) =>
      slots.push({
        name: `conditions[${i}]`,
        path: ['conditions', i, 'next'],
        target: isRecord(condition) && typeof condition.next === 'string' ? condition.next : undefined,
      }),
    );
  for (const field of TARGET_FIELDS)
    if (props[field])
      slots.push({ name: field, path: [field], target: typeof el[field] === 'string' ? el[field] : undefined });
  return slots;
}

/** Read a value at a path. */
export function getIn(value: unknown, path: readonly PathKey[]): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PathKey, unknown>)[key];
  }
  return current;
}

/**
 * A copy with the value at path replaced; undefined removes the key, and objects left empty by a
 * removal are removed too (an optional group with no field set is simply absent).
 */
export function setIn<T>(value: T, path: readonly PathKey[], next: unknown): T {
  const [key, ...rest] = path;
  if (key === undefined) return next as T;
  if (Array.isArray(value) && typeof key === 'number') {
    const copy = [...value];
    copy[key] = setIn(copy[key], rest, next);
    return copy as T;
  }
  const base: Record<string, unknown> = isRecord(value) ? { ...value } : {};
  const child = rest.length === 0 ? next : setIn(base[key], rest, next);
  const emptied = isRecord(child) && Object.keys(child).length === 0 && rest.length > 0;
  if (child === undefined || emptied) delete base[String(key)];
  else base[String(key)] = child;
  return base as T;
}

export function emptyFlow(): FlowDoc {
  return { id: 'new-flow', version: 1, name: '', start: '', elements: [] };
}

/** A fresh id for a new element of this type: `play`, `play-2`, … */
export function freshId(doc: FlowDoc, base: string): string {
  const taken = new Set(doc.elements.map((el) => el.id));
  const stem = base.replace(/[^A-Za-z0-9_-]/g, '').replace(/^[^A-Za-z]+/, '') || 'element';
  if (!taken.has(stem)) return stem;
  for (let n = 2; ; n++) if (!taken.has(`${stem}-${n}`)) return `${stem}-${n}`;
}

/** A new element: its type and id; required fields stay empty for the user (and the validator) to see. */
export function newElement(doc: FlowDoc, type: string): FlowElement {
  const element: FlowElement = { id: freshId(doc, type), type };
  const schema = ELEMENT_SCHEMAS.get(type);
  if (schema?.properties?.next?.type === 'object') element.next = {};
  return element;
}

export function addElement(doc: FlowDoc, element: FlowElement): FlowDoc {
  return { ...doc, start: doc.start || element.id, elements: [...doc.elements, element] };
}

/** Remove an element and every branch that led to it (they become unset). */
export function deleteElements(doc: FlowDoc, ids: ReadonlySet<string>): FlowDoc {
  const elements = doc.elements
    .filter((el) => !ids.has(el.id))
    .map((el) =>
      branchesOf(el).reduce<FlowElement>(
        (acc, slot) =>
          typeof slot.target === 'string' && ids.has(slot.target)
            ? slot.path[0] === 'responses' || slot.path[0] === 'conditions'
              ? acc
              : setIn(acc, slot.path, undefined)
            : acc,
        el,
      ),
    );
  return { ...doc, start: ids.has(doc.start) ? (elements[0]?.id ?? '') : doc.start, elements };
}

/** A copy of an element with a new id, its branches kept. */
export function duplicateElement(doc: FlowDoc, id: string): FlowElement | undefined {
  const source = doc.elements.find((el) => el.id === id);
  if (!source) return undefined;
  return { ...(structuredClone(source) as FlowElement), id: freshId(doc, source.id) };
}

/** Rename an element and every reference to it (branches, start). */
export function renameElement(doc: FlowDoc, from: string, to: string): FlowDoc {
  const elements = doc.elements.map((el) => {
    let renamed: FlowElement = el.id === from ? { ...el, id: to } : el;
    for (const slot of branchesOf(renamed)) if (slot.target === from) renamed = setIn(renamed, slot.path, to);
    return renamed;
  });
  return { ...doc, start: doc.start === from ? to : doc.start, elements };
}

/** Connect a branch to a target: the first branch of the element not yet written, else the first open one. */
export function connect(doc: FlowDoc, sourceId: string, targetId: string): FlowDoc {
  const source = doc.elements.find((el) => el.id === sourceId);
  if (!source) return doc;
  const slots = branchesOf(source).filter((s) => s.path[0] !== 'responses' && s.path[0] !== 'conditions');
  const slot = slots.find((s) => s.target === undefined) ?? slots.find((s) => s.target === null);
  if (!slot) return doc;
  return {
    ...doc,
    elements: doc.elements.map((el) => (el.id === sourceId ? setIn(el, slot.path, targetId) : el)),
  };
}

export interface Position {
  x: number;
  y: number;
}

export const NODE_GAP_X = 240;
export const NODE_GAP_Y = 150;

/**
 * Layers by the longest path from the start element (loops ignored), so that every branch points
 * down and a shared terminal element (the hang-up) sits at the bottom; unreachable elements in a
 * last layer.
 */
export function layout(doc: FlowDoc): Record<string, Position> {
  const byId = new Map(doc.elements.map((el) => [el.id, el]));
  const targetsOf = (id: string): string[] =>
    branchesOf(byId.get(id) as FlowElement)
      .map((slot) => slot.target)
      .filter((t): t is string => typeof t === 'string' && byId.has(t));
  // Depth-first from the start: the finishing order reversed is a topological order of the graph
  // without its back edges (the loops).
  const state = new Map<string, 'open' | 'done'>();
  const forward = new Map<string, string[]>();
  const finished: string[] = [];
  const visit = (id: string): void => {
    state.set(id, 'open');
    const next: string[] = [];
    for (const target of targetsOf(id)) {
      if (state.get(target) === 'open') continue; // a loop back
      next.push(target);
      if (!state.has(target)) visit(target);
    }
    forward.set(id, next);
    state.set(id, 'done');
    finished.push(id);
  };
  if (byId.has(doc.start)) visit(doc.start);
  const depth = new Map<string, number>();
  for (const id of finished.reverse()) {
    const own = depth.get(id) ?? 0;
    depth.set(id, own);
    for (const target of forward.get(id) ?? []) depth.set(target, Math.max(depth.get(target) ?? 0, own + 1));
  }
  const deepest = Math.max(-1, ...depth.values());
  const columns = new Map<number, number>();
  const positions: Record<string, Position> = {};
  for (const el of doc.elements) {
    const layer = depth.get(el.id) ?? deepest + 1;
    const column = columns.get(layer) ?? 0;
    columns.set(layer, column + 1);
    positions[el.id] = { x: column * NODE_GAP_X, y: layer * NODE_GAP_Y };
  }
  // Centre each layer on the widest one.
  const widest = Math.max(1, ...columns.values());
  for (const el of doc.elements) {
    const layer = depth.get(el.id) ?? deepest + 1;
    const position = positions[el.id];
    if (position) position.x += ((widest - (columns.get(layer) ?? 1)) * NODE_GAP_X) / 2;
  }
  return positions;
}

/** Where a new element goes: below the lowest one. */
export function nextPosition(positions: Record<string, Position>): Position {
  const ys = Object.values(positions).map((p) => p.y);
  return { x: 0, y: ys.length === 0 ? 0 : Math.max(...ys) + NODE_GAP_Y };
}

/** The problems of one element, with the path made relative to it (`tts.text`). */
export function problemsByElement(doc: FlowDoc, problems: readonly Problem[]): Map<string, Problem[]> {
  const result = new Map<string, Problem[]>();
  for (const problem of problems) {
    let elementId = problem.elementId;
    let path = problem.path ?? '';
    const match = /^elements\[(\d+)\]\.?(.*)$/.exec(path);
    if (match) {
      elementId ??= doc.elements[Number(match[1])]?.id;
      path = match[2] ?? '';
    }
    if (!elementId) continue;
    const list = result.get(elementId) ?? [];
    list.push({ ...problem, path });
    result.set(elementId, list);
  }
  return result;
}

export function isFlowDoc(value: unknown): value is FlowDoc {
  return isRecord(value) && Array.isArray(value.elements) && value.elements.every((el) => isRecord(el));
}
