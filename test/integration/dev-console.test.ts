// `dialflow dev` runs the API and console: the banner names the console's URL and, at the first
// start, the first admin's password (kept in the data dir, 0600); logging in with it works through
// the API that dev started (on its own NATS identity); a later start does not show the password.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/dev/stack.js';
import { startDev, type DevProcess } from '../helpers/dev-process.js';

const dir = mkdtempSync(join(tmpdir(), 'dialflow-dev-console-'));
let dev: DevProcess | undefined;
afterAll(async () => {
  await dev?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('dialflow dev and the console', () => {
  it('prints the console URL and the first admin once; the password logs in; a later start does not print it', async () => {
    const dataDir = join(dir, 'data');
    const apiPort = await freePort();
    dev = await startDev(dataDir, ['--api-port', String(apiPort)]);
    const banner = dev.output();
    const url = `http://127.0.0.1:${apiPort}/`;
    expect(banner).toContain(`Console:      ${url}`);
    const password = /log in as admin \/ (\S+)/.exec(banner)?.[1];
    expect(password).toMatch(/^[A-Za-z0-9_-]{24}$/);
    const file = join(dataDir, 'console-admin.password');
    expect(readFileSync(file, 'utf8').trim()).toBe(password);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const res = await fetch(`${url}api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ user: { name: 'admin', role: 'admin' } });

    // Changed on the CLI, the kept password is stale: the next start says how to reset one.
    const passwd = await dev.cli(['users', 'passwd', 'admin']);
    expect(passwd.status, passwd.stderr).toBe(0);
    await dev.stop();
    dev = await startDev(dataDir, ['--api-port', String(apiPort)]);
    const later = dev.output();
    expect(later).toContain(`Console:      ${url}`);
    expect(later).not.toContain(password);
    expect(later).not.toMatch(/log in as admin \//);
    expect(later).toContain('dialflow users passwd');
    // The API's NATS identity did its work without a refusal. Expected and harmless: services other
    // than the worker may not update the telephony streams (see test/integration/nats-auth.test.ts).
    const natsLog = readFileSync(join(dataDir, 'logs', 'nats.log'), 'utf8');
    const refusedUpdate = /Publish Violation - .*"\$JS\.API\.STREAM\.UPDATE\.(DIALFLOW_EVENTS|DIALFLOW_DEADLETTER)"/;
    expect(natsLog.split('\n').filter((l) => /Violation/.test(l) && !refusedUpdate.test(l))).toEqual([]);
  }, 400_000);
});
