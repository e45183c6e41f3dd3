// docs/flow-format.md documents every element, branch and validation code the code knows.
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import {
  elementSchema,
  START_OUTGOING_BRANCHES,
  PLAY_BRANCHES,
  COLLECT_FIXED_BRANCHES,
  FORWARD_BRANCHES,
  RECORD_BRANCHES,
} from '../../src/flow/schema.js';

const doc = readFileSync(new URL('../../docs/flow-format.md', import.meta.url), 'utf8');
const src = readdirSync(new URL('../../src/flow/', import.meta.url))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => readFileSync(new URL(`../../src/flow/${f}`, import.meta.url), 'utf8'))
  .join('\n');

describe('docs/flow-format.md', () => {
  it('has a section for every element type', () => {
    for (const option of elementSchema.options) expect(doc).toContain(`### ${option.shape.type.value}`);
  });
  it('names every branch', () => {
    for (const b of [
      ...START_OUTGOING_BRANCHES,
      ...PLAY_BRANCHES,
      ...COLLECT_FIXED_BRANCHES,
      ...FORWARD_BRANCHES,
      ...RECORD_BRANCHES,
    ])
      expect(doc).toContain(`\`${b}\``);
  });
  it('lists every validation code', () => {
    const codes = new Set([...src.matchAll(/(?:coded|err|warn)\(\s*'([a-z]+\.[A-Za-z]+)'/g)].map((m) => m[1]));
    codes.add('flow.tooManyElements');
    expect(codes.size).toBeGreaterThan(25);
    const missing = [...codes].filter((c) => !doc.includes(`\`${c}\``));
    expect(missing).toEqual([]);
  });
});
