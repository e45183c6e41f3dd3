// Aggregates call results into counts by outcome and by branch taken (element → branch).
import type { CallResult } from './interpreter.js';

export interface CallSummary {
  calls: number;
  byOutcome: Record<string, number>;
  /** Keyed `element → branch`. */
  byBranch: Record<string, number>;
  dials: number;
}

export function summarize(results: Iterable<CallResult>): CallSummary {
  const s: CallSummary = { calls: 0, byOutcome: {}, byBranch: {}, dials: 0 };
  for (const r of results) {
    s.calls += 1;
    s.dials += r.dials;
    s.byOutcome[r.outcome] = (s.byOutcome[r.outcome] ?? 0) + 1;
    for (const t of r.trail) {
      const key = `${t.element} → ${t.branch}`;
      s.byBranch[key] = (s.byBranch[key] ?? 0) + 1;
    }
  }
  return s;
}

export function formatSummary(s: CallSummary): string {
  const pad = (rows: Array<[string, number]>) => {
    const w = Math.max(...rows.map(([k]) => k.length), 8);
    return rows.map(([k, v]) => `  ${k.padEnd(w)}  ${String(v).padStart(5)}`).join('\n');
  };
  const outcomes = Object.entries(s.byOutcome).sort((a, b) => b[1] - a[1]);
  const branches = Object.entries(s.byBranch).sort((a, b) => a[0].localeCompare(b[0]));
  return [`Outcomes (${s.calls} calls, ${s.dials} dials):`, pad(outcomes), 'Branches taken:', pad(branches)].join('\n');
}
