// The import rules of eslint.config.js: the workflow sandbox (no Node built-ins, NATS or
// prom-client) and the layers (contract → flow → workflows; adapters stay outside; src never
// imports scripts/ or bench/). Each rule is fed a snippet that breaks it, and one that keeps it.
import { describe, expect, it } from 'vitest';
import { ESLint } from 'eslint';

const eslint = new ESLint();
async function errorsFor(code: string, filePath: string): Promise<string[]> {
  const [res] = await eslint.lintText(code, { filePath });
  return (res?.messages ?? []).filter((m) => m.severity === 2).map((m) => m.ruleId ?? m.message);
}
/** A value import of `source`, used so that no other rule (unused variables) speaks up. */
const valueImport = (source: string) => `import { x } from '${source}';\nexport const y = x;`;
const typeImport = (source: string) => `import type { X } from '${source}';\nexport type Y = X;`;

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

  it("applies the sandbox to the benchmark's workflow code", async () => {
    expect(await errorsFor(valueImport('node:fs'), 'bench/baseline-workflow.ts')).toContain(
      '@typescript-eslint/no-restricted-imports',
    );
    expect(await errorsFor(valueImport('node:fs'), 'bench/run.ts')).toEqual([]);
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

describe('layer rules', () => {
  describe('contract: src/telephony/contract.ts and ids.ts import zod (and ids.js) only', () => {
    it.each([
      ['src/telephony/contract.ts', 'luxon'],
      ['src/telephony/contract.ts', '../flow/schema.js'],
      ['src/telephony/contract.ts', './nats.js'],
      ['src/telephony/ids.ts', 'node:crypto'],
      ['src/telephony/ids.ts', './contract.js'],
    ])('rejects %s importing %s', async (file, source) => {
      expect(await errorsFor(valueImport(source), file)).toContain('no-restricted-imports');
    });
    it('allows zod and ids.js', async () => {
      expect(await errorsFor(valueImport('zod'), 'src/telephony/contract.ts')).toEqual([]);
      expect(await errorsFor(valueImport('./ids.js'), 'src/telephony/contract.ts')).toEqual([]);
      expect(await errorsFor(valueImport('zod'), 'src/telephony/ids.ts')).toEqual([]);
    });
  });

  describe('flow: src/flow imports the contract, not outer layers or adapters', () => {
    it.each([
      '../workflows/call.js',
      '../activities/index.js',
      '../workers/bridge.js',
      '../store/flows.js',
      '../cli/main.js',
      '../dev/stack.js',
      '../client/calls.js',
      '../config/index.js',
      '../codec/encryption.js',
      '../logging.js',
      '../campaign/pacing.js',
      '../telephony/sip/agents.js',
      '../telephony/infobip/provider.js',
      '../telephony/simulator.js',
      '../telephony/nats.js',
    ])('rejects %s', async (source) => {
      expect(await errorsFor(valueImport(source), 'src/flow/example.ts')).toContain('no-restricted-imports');
    });
    it('allows the contract, its ids and the rest of src/flow', async () => {
      for (const source of ['../telephony/contract.js', '../telephony/ids.js', './schema.js', 'luxon'])
        expect(await errorsFor(valueImport(source), 'src/flow/example.ts')).toEqual([]);
    });
  });

  describe('workflows: src/workflows imports flow, contract and campaign maths; activities as types', () => {
    it.each([
      ['src/workflows/example.ts', '../store/campaigns.js'],
      ['src/workflows/example.ts', '../dev/ephemeral.js'],
      ['src/workflows/example.ts', '../telephony/sip/agents.js'],
      ['src/workflows/example.ts', '../telephony/infobip/calls.js'],
      ['src/workflows/example.ts', '../telephony/simulator.js'],
      ['src/workflows/example.ts', '../telephony/nats.js'],
      ['src/workflows/example.ts', '../workers/metrics.js'],
      ['src/workflows/example.ts', '../cli/masking.js'],
      ['src/workflows/example.ts', '../config/index.js'],
      ['src/workflows/example.ts', '../logging.js'],
      ['src/workflows/example.ts', '../campaign/recipients.js'],
      ['src/workflows/example.ts', '../activities/index.js'],
      ['src/workflows/legacy/example.ts', '../../store/flows.js'],
      ['src/workflows/legacy/example.ts', '../../activities/campaign.js'],
    ])('rejects %s importing %s', async (file, source) => {
      expect(await errorsFor(valueImport(source), file)).toContain('@typescript-eslint/no-restricted-imports');
    });
    it('rejects adapters as types too', async () => {
      expect(await errorsFor(typeImport('../store/flows.js'), 'src/workflows/example.ts')).toContain(
        '@typescript-eslint/no-restricted-imports',
      );
    });
    it('allows flow, the contract, campaign maths, sibling modules and activity types', async () => {
      for (const source of [
        '../flow/interpreter.js',
        '../telephony/contract.js',
        '../telephony/ids.js',
        '../campaign/pacing.js',
        './messages.js',
      ])
        expect(await errorsFor(valueImport(source), 'src/workflows/example.ts')).toEqual([]);
      expect(await errorsFor(typeImport('../../activities/index.js'), 'src/workflows/legacy/example.ts')).toEqual([]);
    });
  });

  describe('nothing in src imports scripts/ or bench/', () => {
    it.each([
      ['src/workers/service.ts', '../../scripts/setup.mjs'],
      ['src/cli/main.ts', '../../bench/run.js'],
      ['src/workflows/index.ts', '../../bench/baseline-workflow.js'],
      ['src/flow/schema.ts', '../../scripts/write-schema.js'],
      ['src/telephony/contract.ts', '../../bench/workflows.js'],
      ['src/dev/stack.ts', '../../scripts/drill.js'],
    ])('rejects %s importing %s', async (file, source) => {
      expect(await errorsFor(valueImport(source), file)).toContain('no-restricted-imports');
    });
    it('leaves bench/ and scripts/ free to import src', async () => {
      expect(await errorsFor(valueImport('../src/workers/service.js'), 'bench/worker.ts')).toEqual([]);
    });
  });
});
