// The web console's first load stays small: the JavaScript a browser fetches to show the console
// after login (the entry chunk, its static imports, and the flow editor — the landing page — with
// its static imports) is at most 300 KB gzipped. Measured on the production build (console/dist,
// built when stale), walking Vite's manifest.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CONSOLE_DIST, ensureConsoleBuilt } from '../../console/build.mjs';

const BUDGET_BYTES = 300 * 1024;

interface ManifestChunk {
  file: string;
  isEntry?: boolean;
  imports?: string[];
  dynamicImports?: string[];
}

/** The chunks a page needs before it runs: itself and its static imports, transitively. */
function staticClosure(manifest: Record<string, ManifestChunk>, key: string, into = new Set<string>()): Set<string> {
  if (into.has(key)) return into;
  into.add(key);
  for (const dep of manifest[key]?.imports ?? []) staticClosure(manifest, dep, into);
  return into;
}

describe('console bundle size', () => {
  it('first-load JavaScript (entry + flow editor) is at most 300 KB gzipped', async () => {
    await ensureConsoleBuilt();
    const manifest = JSON.parse(readFileSync(join(CONSOLE_DIST, '.vite', 'manifest.json'), 'utf8')) as Record<
      string,
      ManifestChunk
    >;
    const entry = Object.keys(manifest).find((k) => manifest[k]?.isEntry);
    expect(entry).toBeDefined();
    const landing = 'src/pages/flows/index.tsx';
    expect(manifest[entry ?? '']?.dynamicImports).toContain(landing);
    const chunks = staticClosure(manifest, landing, staticClosure(manifest, entry ?? ''));
    const sizes = [...chunks].map((key) => {
      const file = manifest[key]?.file ?? '';
      return { file, gzip: gzipSync(readFileSync(join(CONSOLE_DIST, file))).length };
    });
    const total = sizes.reduce((sum, s) => sum + s.gzip, 0);
    console.log(
      `console first load: ${(total / 1024).toFixed(1)} KB gzipped (${sizes.map((s) => `${s.file} ${(s.gzip / 1024).toFixed(1)} KB`).join(', ')})`,
    );
    expect(total).toBeLessThanOrEqual(BUDGET_BYTES);
  }, 120_000);
});
