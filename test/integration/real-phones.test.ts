// The "connecting real phones" path as a user takes it: `dialflow dev --provider …` as a process,
// then `dialflow call FLOW --to … --json`, against a telephony endpoint somebody else runs.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/dev/stack.js';
import { PROJECT_ROOT } from '../../src/config/tools.js';
import { startFakeInfobip, type FakeInfobip } from '../fake-infobip/server.js';
import { startDev, type CliRun, type DevProcess } from '../helpers/dev-process.js';
import type { CallCommandReport } from '../../src/cli/call.js';

const reminder = join(PROJECT_ROOT, 'examples', 'appointment-reminder.json');
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

function parseReport(r: CliRun): CallCommandReport {
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as CallCommandReport;
}

describe('dialflow dev --provider infobip + dialflow call', () => {
  it('places the reminder through an Infobip-compatible API; events arrive at POST /webhooks/infobip with Basic auth', async () => {
    const webhookPort = await freePort();
    const password = 'webhook-secret-for-test';
    const fake: FakeInfobip = await startFakeInfobip({
      apiKey: 'e2e-key',
      webhookUrl: `http://127.0.0.1:${webhookPort}/webhooks/infobip`,
      webhookUser: 'infobip',
      webhookPassword: password,
      callees: { '+14155550123': { answer: 'human', keys: ['1'] }, '+14155550124': { answer: 'busy' } },
      timeScale: 0.05,
    });
    cleanups.push(() => fake.stop());
    const dev: DevProcess = await startDev(mkdtempSync(join(tmpdir(), 'dialflow-e2e-ib-')), ['--provider', 'infobip', '--webhook-port', String(webhookPort)], {
      DIALFLOW_INFOBIP_BASE_URL: fake.baseUrl,
      DIALFLOW_INFOBIP_API_KEY: 'e2e-key',
      DIALFLOW_INFOBIP_CALLS_CONFIGURATION_ID: 'e2e-configuration',
      DIALFLOW_WEBHOOK_PASSWORD: password,
    });
    cleanups.push(() => dev.stop());
    expect(dev.output()).toContain(`Webhooks:     http://127.0.0.1:${webhookPort}/webhooks/infobip`);

    const confirmed = parseReport(await dev.cli(['call', reminder, '--to', '+14155550123', '--recipient', '{"firstName":"Ana","timeZone":"America/Los_Angeles"}', '--json']));
    expect(confirmed.outcome).toBe('answered');
    expect(confirmed.trail.map((t) => `${t.element}:${t.branch}`)).toEqual(['call:answered', 'menu:played', 'ask:1', 'confirmed:played']);
    expect(confirmed.variables).toMatchObject({ choice: '1' });
    expect(confirmed.events.some((e) => e.text.startsWith('DTMF_CAPTURED'))).toBe(true);

    const busy = parseReport(await dev.cli(['call', reminder, '--to', '+14155550124', '--json']));
    expect(busy.trail.map((t) => `${t.element}:${t.branch}`)).toEqual(['call:busy']);
    // One call created per dial; every webhook the fake sent was accepted with its credentials.
    expect(fake.callsCreated.total).toBe(2);
    expect(fake.webhookDeliveries.length).toBeGreaterThan(5);
    expect(fake.webhookDeliveries.every((d) => d.status === 204 || d.status === 200)).toBe(true);
  }, 240_000);
});
