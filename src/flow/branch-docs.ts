// The branch tables of docs/flow-format.md, written from the elements' branch tables: each element's
// section has its table between `<!-- branches: TYPE -->` and `<!-- /branches -->`. `npm run schema`
// rewrites them; test/unit/docs.test.ts fails when the docs and the tables differ.
import { BRANCH_TABLES, type ElementType } from './schema.js';
import type { BranchRule, SessionEffect } from './elements/branch-table.js';

/** How the docs name a session effect. */
const SESSION_WORDS: Record<SessionEffect, string> = {
  start: 'starts the call session',
  keep: 'continues',
  end: 'ends',
};

/** Where the document writes the branches an `each` rule stands for (as graph.ts reads them). */
const EACH_WRITTEN: Partial<Record<ElementType, string>> = {
  collect: '`responses.<digits>`',
  condition: '`conditions[i].next`',
};

/** An element's branch table as the docs show it. */
export function branchTableMarkdown(type: ElementType): string {
  const table: Record<string, BranchRule> = BRANCH_TABLES[type];
  const rows = Object.entries(table).map(([name, rule]) => {
    const written =
      rule.written === 'each'
        ? (EACH_WRITTEN[type] ?? '')
        : rule.written === 'field'
          ? `\`${name}\``
          : `\`next.${name}\``;
    const optional = rule.optional ? ', optional' : '';
    return `| \`${name}\` | ${written}${optional} | ${rule.when} | ${SESSION_WORDS[rule.session]} |`;
  });
  return ['| branch | written as | when | session |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

const BLOCK = /<!-- branches: ([A-Za-z]+) -->\n[\s\S]*?<!-- \/branches -->/g;

/** `markdown` with every branch block rewritten from the tables (an unknown type is an error). */
export function withBranchTables(markdown: string): string {
  return markdown.replace(BLOCK, (_block, type: string) => {
    if (!Object.prototype.hasOwnProperty.call(BRANCH_TABLES, type))
      throw new Error(`docs: a branch block names "${type}", which is no element type`);
    return `<!-- branches: ${type} -->\n\n${branchTableMarkdown(type as ElementType)}\n\n<!-- /branches -->`;
  });
}

/** The element types whose branch block `markdown` has, in order. */
export function branchBlocks(markdown: string): string[] {
  return [...markdown.matchAll(BLOCK)].map((m) => m[1] ?? '');
}
