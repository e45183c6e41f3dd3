// Benchmark code stays out of production: the production workflows bundle has no baseline, the
// production activities and /metrics server have no benchmark hooks, and no file in src imports
// bench/ or scripts/ (statically or dynamically, which the lint rule does not see).
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { WORKFLOWS_PATH } from '../../src/workers/flow-worker.js';
import { createActivities, type ActivityDeps } from '../../src/activities/index.js';
import { startMetricsServer } from '../../src/workers/metrics.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Module specifiers of a source file: static imports and re-exports, side-effect and dynamic imports. */
function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [
    ...text.matchAll(/\bfrom\s+'([^']+)'/g),
    ...text.matchAll(/\bimport\s+'([^']+)'/g),
    ...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g),
  ].map((m) => m[1]!);
}

/** A relative specifier as a path from the repository root (`.js` written for a `.ts` source). */
function resolveRelative(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  return relative(ROOT, resolve(dirname(from), spec));
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(ts|mts|mjs|js)$/.test(e.name))
    .map((e) => join(e.parentPath, e.name));
}

describe('the production workflows bundle', () => {
  it('reaches no baseline and no benchmark or script code', () => {
    const seen = new Set<string>();
    const queue = [WORKFLOWS_PATH];
    for (let file = queue.pop(); file; file = queue.pop()) {
      if (seen.has(file)) continue;
      seen.add(file);
      for (const spec of specifiers(file)) {
        const target = resolveRelative(file, spec);
        if (target) queue.push(join(ROOT, target.replace(/\.js$/, '.ts')));
      }
    }
    const files = [...seen].map((f) => relative(ROOT, f));
    expect(files).toContain('src/workflows/call.ts');
    expect(files.filter((f) => /baseline/i.test(f) || /^(bench|scripts)\//.test(f))).toEqual([]);
  });

  it('exports no baseline workflow', async () => {
    const workflows = await import('../../src/workflows/index.js');
    expect(Object.keys(workflows).filter((name) => /baseline/i.test(name))).toEqual([]);
  });
});

describe('production activities and /metrics', () => {
  it('register no baseline activity', () => {
    const deps = { campaigns: {}, http: { allowHosts: [] } } as unknown as ActivityDeps;
    expect(Object.keys(createActivities(deps)).filter((name) => /baseline/i.test(name))).toEqual([]);
  });

  it('serve no /debug/gc', async () => {
    const server = await startMetricsServer(new Registry(), '127.0.0.1', 0);
    try {
      const res = await fetch(server.url.replace('/metrics', '/debug/gc'), { method: 'POST' });
      expect(res.status).toBe(404);
    } finally {
      await server.close();
    }
  });
});

describe('src never imports bench/ or scripts/', () => {
  it('in any file, static or dynamic', () => {
    const offending: string[] = [];
    for (const file of sourceFiles(join(ROOT, 'src'))) {
      const rel = relative(ROOT, file);
      for (const spec of specifiers(file)) {
        const target = resolveRelative(file, spec);
        if (target && /^(bench|scripts)\//.test(target)) offending.push(`${rel} → ${spec}`);
      }
    }
    expect(offending).toEqual([]);
  });
});
