// The sandbox rule: workflow code may not import Node built-ins, NATS or prom-client.
import { describe, expect, it } from 'vitest';
import { ESLint } from 'eslint';

const eslint = new ESLint();
async function errorsFor(code: string, filePath: string): Promise<string[]> {
  const [res] = await eslint.lintText(code, { filePath });
  return (res?.messages ?? []).filter((m) => m.severity === 2).map((m) => m.ruleId ?? m.message);
}

describe('workflow import rules', () => {
  it.each([
    "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;",
    "import { readFileSync } from 'fs';\nexport const x = readFileSync;",
    "import { connect } from '@nats-io/transport-node';\nexport const x = connect;",
    "import { Counter } from 'prom-client';\nexport const x = Counter;",
    "import { Client } from '@temporalio/client';\nexport const x = Client;",
  ])('rejects %s under src/workflows', async (code) => {
    expect(await errorsFor(code, 'src/workflows/example.ts')).toContain('@typescript-eslint/no-restricted-imports');
  });

  it('allows type-only imports of activities and the same imports outside src/workflows', async () => {
    expect(
      await errorsFor(
        "import type { Activities } from '../activities/index.js';\nexport type A = Activities;",
        'src/workflows/example.ts',
      ),
    ).toEqual([]);
    expect(
      await errorsFor(
        "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;",
        'src/activities/example.ts',
      ),
    ).toEqual([]);
  });

  it('keeps src/flow pure', async () => {
    expect(
      await errorsFor(
        "import { proxyActivities } from '@temporalio/workflow';\nexport const x = proxyActivities;",
        'src/flow/example.ts',
      ),
    ).toContain('no-restricted-imports');
  });
});
