// Liveness and readiness of the services on a real stack: readiness follows NATS and Temporal
// outages and recoveries; liveness stays up (restarting a process would not fix an outage).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { startEphemeralStack, type EphemeralStack } from '../../src/dev/ephemeral.js';

let t: EphemeralStack;
const base = (role: string) => (t.services[role]?.metricsUrl ?? '').replace(/\/metrics$/, '');
const get = async (role: string, path: string) => {
  const res = await fetch(`${base(role)}${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text() };
};
async function until(what: string, ok: () => Promise<boolean>, ms = 30_000): Promise<number> {
  const start = Date.now();
  while (!(await ok().catch(() => false))) {
    if (Date.now() - start > ms) throw new Error(`${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return Date.now() - start;
}
const ROLES = ['worker', 'bridge', 'simulator'];

beforeAll(async () => {
  t = await startEphemeralStack({ metrics: true });
}, 180_000);
afterAll(async () => {
  await t?.stop();
});

describe('liveness and readiness', () => {
  it('every service is live and ready, and says what it checked', async () => {
    for (const role of ROLES) {
      expect((await get(role, '/livez')).status).toBe(200);
      expect((await get(role, '/healthz')).status).toBe(200);
      const ready = await get(role, '/readyz');
      expect(ready.status, role).toBe(200);
      const checks = (JSON.parse(ready.body) as { checks: Record<string, string> }).checks;
      expect(checks.nats).toBe('ok');
      if (role !== 'simulator') expect(checks.temporal).toBe('ok');
    }
  });

  it('NATS down: every service turns unready but stays live; NATS back: ready again', async () => {
    const port = Number(new URL(t.natsUrl).port);
    await t.stack.kill('nats');
    for (const role of ROLES) {
      await until(`${role} unready`, async () => (await get(role, '/readyz')).status === 503);
      expect((await get(role, '/livez')).status).toBe(200);
      expect(JSON.parse((await get(role, '/readyz')).body).checks.nats).not.toBe('ok');
    }
    await t.stack.startNats({ port, storeDir: join(t.dataDir, 'nats') });
    for (const role of ROLES)
      await until(`${role} ready again`, async () => (await get(role, '/readyz')).status === 200);
  }, 120_000);

  it('Temporal down: the worker and the bridge turn unready, the simulator (no Temporal) stays ready', async () => {
    const [host, port] = t.config.temporal.address.split(':');
    expect(host).toBe('127.0.0.1');
    await t.stack.kill('temporal');
    for (const role of ['worker', 'bridge'])
      await until(`${role} unready`, async () => (await get(role, '/readyz')).status === 503);
    expect(JSON.parse((await get('bridge', '/readyz')).body).checks.temporal).not.toBe('ok');
    expect((await get('simulator', '/readyz')).status).toBe(200);
    expect((await get('worker', '/livez')).status).toBe(200);
    await t.stack.startTemporal({ port: Number(port) });
    for (const role of ['worker', 'bridge'])
      await until(`${role} ready again`, async () => (await get(role, '/readyz')).status === 200, 60_000);
  }, 180_000);
});
