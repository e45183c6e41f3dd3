// The branches of every element, with what each does to the call session, read from the element's
// branch table (src/flow/elements/<type>.schema.ts): shared by the validator (session rules,
// reachability, auto hang-ups), `dialflow graph` and the docs.
import { BRANCH_TABLES, type FlowElement } from './schema.js';
import type { BranchRule, SessionEffect } from './elements/branch-table.js';

export type { SessionEffect } from './elements/branch-table.js';

export interface Branch {
  /** Branch name as written in the document (`answered`, `1`, `next`, `else`, `conditions[0]` …). */
  name: string;
  /** Element id, null for "enabled but not connected", undefined when not configured. */
  target: string | null | undefined;
  effect: SessionEffect;
  /** Field path of the branch inside the element. */
  path: string;
  /** Where the target is written: a key of `next`, a field of its own, or an entry of a list or map. */
  written: 'next' | 'field' | 'each';
  /** Configured or always present: an open branch here is reported (and closed with a hang-up in a session). */
  enabled: boolean;
}

const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

/** The branches an `each` rule stands for: one per response of a collect, one per condition. */
function eachBranches(el: FlowElement, effect: SessionEffect): Branch[] {
  const branch = (name: string, target: string, path: string): Branch => ({
    name,
    target,
    effect,
    path,
    written: 'each',
    enabled: true,
  });
  switch (el.type) {
    case 'collect':
      return Object.entries(el.responses).map(([digits, t]) => branch(digits, t, `responses.${digits}`));
    case 'condition':
      return el.conditions.map((c, i) => branch(`conditions[${i}]`, c.next, `conditions[${i}].next`));
    default:
      return [];
  }
}

export function branchesOf(el: FlowElement): Branch[] {
  const table: Record<string, BranchRule> = BRANCH_TABLES[el.type];
  const fields = el as unknown as Record<string, string | undefined>;
  const next: Record<string, string | null | undefined> =
    'next' in el && el.next !== null && typeof el.next === 'object' ? el.next : {};
  return Object.entries(table).flatMap(([name, rule]): Branch[] => {
    switch (rule.written) {
      case 'each':
        return eachBranches(el, rule.session);
      case 'field': {
        const target = fields[name];
        const enabled = !rule.optional || target !== undefined;
        return [{ name, target, effect: rule.session, path: name, written: 'field', enabled }];
      }
      default: {
        const enabled = !rule.optional || hasOwn(next, name);
        return [{ name, target: next[name], effect: rule.session, path: `next.${name}`, written: 'next', enabled }];
      }
    }
  });
}
