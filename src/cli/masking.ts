// Masked and hidden input in what the CLI prints. The interpreter masks the trail and the variables
// a collect saves, but the digits go on into whatever the flow does with them: a prompt that reads
// them back, an SMS, an HTTP request, a variable derived from them, an expression's error message.
// A transcript shows all of that, so it is redacted by value: every digit string entered at a
// masked or hidden collect is replaced wherever it appears in text the flow rendered.
import type { Flow, FlowElement } from '../flow/schema.js';
import type { Reporting } from '../flow/redact.js';

// The Redactor is shared with the interpreter, which redacts the call result the same way.
export { MASKS, Redactor, type Reporting, type Sensitive } from '../flow/redact.js';

const STRICTNESS: Record<Reporting, number> = { always: 0, masked: 1, hidden: 2 };
const stricter = (a: Reporting, b: Reporting): Reporting => (STRICTNESS[b] > STRICTNESS[a] ? b : a);

function targetsOf(el: FlowElement): string[] {
  const next: unknown = 'next' in el ? el.next : undefined;
  const out: string[] = [];
  if (typeof next === 'string') out.push(next);
  else if (next && typeof next === 'object')
    for (const t of Object.values(next)) if (typeof t === 'string') out.push(t);
  if ('onError' in el && typeof el.onError === 'string') out.push(el.onError);
  if (el.type === 'condition') {
    for (const c of el.conditions) out.push(c.next);
    if (el.else) out.push(el.else);
  }
  if (el.type === 'collect') out.push(...Object.values(el.responses));
  return out;
}

/** How digits entered at an element are shown, for each element that takes digits. */
export class FlowReporting {
  private readonly byId: Map<string, FlowElement>;
  /** The strictest reporting of the flow: for digits whose element is unknown. */
  readonly strictest: Reporting;

  constructor(private readonly flow: Flow) {
    this.byId = new Map(flow.elements.map((e) => [e.id, e]));
    this.strictest = flow.elements.reduce<Reporting>(
      (acc, e) => (e.type === 'collect' ? stricter(acc, e.reporting) : acc),
      'always',
    );
  }

  /**
   * Digits entered at `elementId`: a collect's own reporting. Keys pressed during a prompt are handed
   * to the next collect the call reaches, so they are shown as the strictest of the collects that can
   * come next (the first collect on each path from the prompt). An unknown element gets the
   * flow's strictest reporting.
   */
  of(elementId: string | undefined): Reporting {
    const el = elementId === undefined ? undefined : this.byId.get(elementId);
    if (!el) return this.strictest;
    if (el.type === 'collect') return el.reporting;
    let mode: Reporting = 'always';
    const seen = new Set<string>();
    const queue = targetsOf(el);
    while (queue.length > 0) {
      const id = queue.shift() as string;
      if (seen.has(id)) continue;
      seen.add(id);
      const next = this.byId.get(id);
      if (!next) continue;
      if (next.type === 'collect') mode = stricter(mode, next.reporting);
      else queue.push(...targetsOf(next));
    }
    return mode;
  }
}
