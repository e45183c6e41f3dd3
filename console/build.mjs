#!/usr/bin/env node
// Build the web console (Vite → console/dist) when it is missing or older than its sources: the
// console's files, docs/flow.schema.json (the property forms come from it) and the lockfile, hashed
// like the npm step of scripts/setup.mjs. Used by setup (`npm start`, `npm test` on a clean clone)
// and by the browser tests. Concurrent callers (two test files) wait for one build behind a lock
// directory instead of emptying dist under each other. Plain Node, no dependencies.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const CONSOLE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(CONSOLE, '..');
export const CONSOLE_DIST = join(CONSOLE, 'dist');
const STAMP = join(CONSOLE_DIST, '.build-hash');
const LOCK = join(CONSOLE, '.build-lock');
const SKIP = new Set(['dist', 'node_modules', '.build-lock']);
/** A lock older than this is a build that died: taken over. */
const STALE_LOCK_MS = 5 * 60_000;

function sourceFiles(dir) {
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => !SKIP.has(entry.name))
    .flatMap((entry) => (entry.isDirectory() ? sourceFiles(join(dir, entry.name)) : [join(dir, entry.name)]))
    .sort();
}

/** The fingerprint of everything the build reads. */
export function consoleSourceHash() {
  const hash = createHash('sha256');
  const inputs = [...sourceFiles(CONSOLE), join(ROOT, 'docs', 'flow.schema.json'), join(ROOT, 'package-lock.json')];
  for (const file of inputs) {
    hash.update(relative(ROOT, file));
    hash.update('\0');
    if (existsSync(file)) hash.update(readFileSync(file));
    hash.update('\0');
  }
  return hash.digest('hex');
}

export function consoleIsFresh(hash = consoleSourceHash()) {
  return existsSync(join(CONSOLE_DIST, 'index.html')) && existsSync(STAMP) && readFileSync(STAMP, 'utf8') === hash;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function withLock(fn) {
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch (err) {
      if (err?.code !== 'EEXIST') throw err;
      try {
        if (Date.now() - statSync(LOCK).mtimeMs > STALE_LOCK_MS) rmSync(LOCK, { recursive: true, force: true });
      } catch (statErr) {
        if (statErr?.code !== 'ENOENT') throw statErr;
      }
      await sleep(250);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

/**
 * Build unless console/dist is fresh. Returns true when it built. Throws with Vite's output when
 * the build fails.
 */
export async function ensureConsoleBuilt({ log = () => {} } = {}) {
  if (consoleIsFresh()) return false;
  return withLock(async () => {
    // Another process may have built it while we waited.
    const hash = consoleSourceHash();
    if (consoleIsFresh(hash)) return false;
    log('building the web console (vite) …');
    const vite = join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
    const res = spawnSync(process.execPath, [vite, 'build', '--config', join(CONSOLE, 'vite.config.ts')], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 5 * 60_000,
      // A production build even from a test runner (vitest sets NODE_ENV=test: React's development build).
      env: { ...process.env, NODE_ENV: 'production' },
    });
    if (res.status !== 0)
      throw new Error(
        `vite build failed (${res.error?.message ?? `exit ${res.status}`}):\n${`${res.stdout ?? ''}${res.stderr ?? ''}`.trim()}`,
      );
    writeFileSync(STAMP, hash);
    return true;
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  ensureConsoleBuilt({ log: (m) => process.stderr.write(`${m}\n`) }).catch((err) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  });
}
