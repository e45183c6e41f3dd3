// docs/flow-format.md documents every element, branch and validation code the code knows.
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { BRANCH_TABLES, elementSchema } from '../../src/flow/schema.js';
import { branchBlocks, branchTableMarkdown, withBranchTables } from '../../src/flow/branch-docs.js';

const doc = readFileSync(new URL('../../docs/flow-format.md', import.meta.url), 'utf8');
const flowDir = new URL('../../src/flow/', import.meta.url);
const src = readdirSync(flowDir, { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.ts'))
  .map((f) => readFileSync(new URL(f, flowDir), 'utf8'))
  .join('\n');

/** The text of an element's `### type` section, up to the next heading. */
function section(type: string): string {
  const start = doc.indexOf(`### ${type}\n`);
  if (start < 0) return '';
  const end = doc.slice(start + 4).search(/\n##/);
  return end < 0 ? doc.slice(start) : doc.slice(start, start + 4 + end);
}

describe('docs/flow-format.md', () => {
  it('has a section for every element type', () => {
    for (const option of elementSchema.options) expect(doc).toContain(`### ${option.shape.type.value}`);
  });
  it("lists each element's branches in its section, as the element's branch table has them", () => {
    expect(Object.keys(BRANCH_TABLES).sort()).toEqual(elementSchema.options.map((o) => o.shape.type.value).sort());
    // One block per element, each in its element's section (`npm run schema` rewrites them).
    expect(branchBlocks(doc).sort()).toEqual(Object.keys(BRANCH_TABLES).sort());
    for (const type of Object.keys(BRANCH_TABLES) as Array<keyof typeof BRANCH_TABLES>) {
      const table = branchTableMarkdown(type);
      expect(section(type), type).toContain(`<!-- branches: ${type} -->\n\n${table}\n\n<!-- /branches -->`);
      for (const name of Object.keys(BRANCH_TABLES[type])) expect(table).toContain(`| \`${name}\` |`);
    }
    expect(withBranchTables(doc) === doc, 'docs/flow-format.md is behind the branch tables: npm run schema').toBe(true);
  });
  it('lists every validation code', () => {
    const codes = new Set([...src.matchAll(/(?:coded|err|warn)\(\s*'([a-z]+\.[A-Za-z]+)'/g)].map((m) => m[1]));
    codes.add('flow.tooManyElements');
    expect(codes.size).toBeGreaterThan(25);
    const missing = [...codes].filter((c) => !doc.includes(`\`${c}\``));
    expect(missing).toEqual([]);
  });
});
