// A new user runs a campaign in the web console, as a browser sees it: Debian's chromium (headless,
// playwright-core) against the real API (in-process, free loopback port) on a real stack (Temporal
// dev server, nats-server, worker, bridge, simulator). Log in, open Campaigns, go through the
// wizard uploading a 50-row CSV with two bad rows, start, watch the dashboard reach "completed",
// download the report, open a call and its transcript. Every page is screenshotted
// (test-output/screenshots/campaign-*.png) and checked with axe-core.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startEphemeralStack, type EphemeralStack } from '../../src/dev/ephemeral.js';
import { freePort } from '../../src/dev/stack.js';
import { startApiServer, type StartedApiServer } from '../../src/api/server.js';
import { payloadCodec } from '../../src/config/index.js';
import { PROJECT_ROOT } from '../../src/config/tools.js';
import { createLogger } from '../../src/logging.js';
import { ApiTokenStore } from '../../src/store/tokens.js';
import { UserStore } from '../../src/store/users.js';
import { ensureConsoleBuilt } from '../../console/build.mjs';
import { launchBrowser, recordCspViolations, screenshot, seriousA11yViolations } from '../helpers/browser.js';

const USER = 'ana';
const PASSWORD = 'correct horse battery';
const CAMPAIGN = 'browser-reminder';

let token: string;
let t: EphemeralStack;
let nc: NatsConnection;
let api: StartedApiServer;
let browser: Browser;
let context: BrowserContext;
let page: Page;

/** persona → the appointment reminder's outcome for it. */
const PERSONAS = [
  { attempts: ['answered'], keys: ['1'] },
  { attempts: ['answered'], keys: ['2'] },
  { attempts: ['busy'] },
  { attempts: ['noAnswer'] },
  { attempts: ['declined'] },
];
/** Rows (0-based) that the API must reject, and why. */
const BAD_ROWS: Record<number, { phone: string; code: string }> = {
  17: { phone: 'not-a-number', code: 'row.invalidPhone' },
  33: { phone: '', code: 'row.missingColumn' },
};
const ROWS = 50;
/** How long a page may take to show what the stack did (the machine may be busy). */
const POLL = { timeout: 20_000 };
const VALID = ROWS - Object.keys(BAD_ROWS).length;

function recipientsCsv(): string {
  const lines = ['id,phone,firstName,persona'];
  for (let i = 0; i < ROWS; i++) {
    const phone = BAD_ROWS[i]?.phone ?? `+3859157${String(i).padStart(5, '0')}`;
    const persona = JSON.stringify(PERSONAS[i % PERSONAS.length]).replace(/"/g, '""');
    lines.push(`r${i},${phone},Ana,"${persona}"`);
  }
  return `${lines.join('\n')}\n`;
}

/** Open a console page; log in first if the session is gone (each test can run on its own). */
async function open(path: string): Promise<void> {
  await page.goto(`${api.url}${path}`);
  const login = page.getByRole('button', { name: 'Log in' });
  // The login form, or a page of the console (its heading).
  await login.or(page.locator('main#main section h1')).first().waitFor();
  if (await login.isVisible()) {
    await page.getByLabel('Username').fill(USER);
    await page.getByLabel('Password').fill(PASSWORD);
    await login.click();
  }
}

/** Screenshot and accessibility check of the page as it is now. */
async function checkPage(name: string): Promise<void> {
  await screenshot(page, `campaign-${name}`);
  expect(await seriousA11yViolations(page), `axe on ${name}`).toEqual([]);
}

beforeAll(async () => {
  // The API serves the built console (console/dist): built here unless it is fresh.
  await ensureConsoleBuilt();

  t = await startEphemeralStack();
  nc = await t.natsConnect('browser-campaign');
  token = (await (await ApiTokenStore.open(nc)).create('operator', 'browser-test')).token;
  await (await UserStore.open(nc)).add(USER, 'operator', PASSWORD);
  api = await startApiServer({
    nc,
    temporal: { client: t.client, codec: payloadCodec(t.config), taskQueue: t.config.temporal.taskQueue },
    logger: createLogger('api', 'silent'),
    host: '127.0.0.1',
    port: await freePort(),
  });
  const published = await fetch(`${api.url}/api/flows`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: readFileSync(join(PROJECT_ROOT, 'examples', 'appointment-reminder.json'), 'utf8'),
  });
  expect(published.status, await published.text()).toBe(201);

  browser = await launchBrowser();
  // The console's CSP stays on: axe is evaluated by the driver, not injected as a script tag.
  context = await browser.newContext({
    acceptDownloads: true,
    viewport: { width: 1280, height: 900 },
  });
  page = await context.newPage();
}, 240_000);

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await api?.close();
  await nc?.close();
  await t?.stop();
});

describe('a campaign in the web console', () => {
  it('log in, wizard with a 50-row CSV (two bad rows shown), start, dashboard to completed, report, a call’s transcript', async () => {
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    const csp = recordCspViolations(page);

    await page.goto(`${api.url}/`);
    await page.getByLabel('Username').fill(USER);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();

    // The list.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Campaigns' }).click();
    await page.getByRole('heading', { level: 1, name: 'Campaigns' }).waitFor();
    await page.getByText('No campaigns yet').waitFor();
    await checkPage('01-list-empty');

    // Step 1: flow and version (the only flow is preselected), campaign id.
    await page.getByRole('link', { name: 'New campaign' }).click();
    await page.getByRole('heading', { name: 'Step 1 of 4: Flow' }).waitFor();
    await expect.poll(() => page.getByLabel('Flow', { exact: true }).inputValue(), POLL).toBe('appointment-reminder');
    expect(await page.getByLabel('Version').inputValue()).toBe('1');
    await page.getByLabel('Campaign id').fill(CAMPAIGN);
    await checkPage('02-wizard-flow');
    await page.getByRole('button', { name: 'Next: settings' }).click();

    // Step 2: settings, by keyboard: the step's heading has focus, Enter in a field goes on.
    await page.getByRole('heading', { name: 'Step 2 of 4: Settings' }).waitFor();
    expect(await page.locator('h2:focus').innerText()).toBe('Step 2 of 4: Settings');
    await page.getByLabel('Calls', { exact: true }).fill('300');
    await page.getByLabel('per', { exact: true }).selectOption('minute');
    await page.getByLabel('Spread the calls evenly over each period').check();
    await page.getByLabel('Max concurrent calls').fill('50');
    await page.getByText('The flow has no delivery window').waitFor();
    await checkPage('03-wizard-settings');
    await page.getByLabel('Max concurrent calls').press('Enter');

    // Step 3: the recipients; the two bad rows are listed.
    await page.getByRole('heading', { name: 'Step 3 of 4: Recipients' }).waitFor();
    await page.getByLabel('Recipients file (CSV or NDJSON)').setInputFiles({
      name: 'recipients.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from(recipientsCsv()),
    });
    await page.getByRole('button', { name: 'Upload and check' }).click();
    await page.getByRole('heading', { name: `Checked ${ROWS} rows` }).waitFor();
    const problems = page.locator('table.row-problems tbody tr');
    await expect.poll(() => problems.count(), POLL).toBe(2);
    const problemRows = await problems.allInnerTexts();
    expect(problemRows.some((r) => r.includes('row.invalidPhone'))).toBe(true);
    expect(problemRows.some((r) => r.includes('row.missingColumn'))).toBe(true);
    await checkPage('04-wizard-recipients');
    await page.getByRole('button', { name: 'Next: forecast' }).click();

    // Step 4: the forecast, as a chart.
    await page.getByRole('heading', { name: 'Step 4 of 4: Forecast' }).waitFor();
    const chart = page.getByRole('img', { name: 'First dials placed over time' });
    await chart.waitFor();
    expect(await chart.locator('path.chart-line').count()).toBe(1);
    expect(await page.locator('.stats div', { hasText: 'Recipients' }).locator('dd').innerText()).toBe(String(VALID));
    await checkPage('05-wizard-forecast');
    await page.getByRole('button', { name: 'Start campaign' }).click();

    // The dashboard, live.
    await page.waitForURL(`**/campaigns/${CAMPAIGN}`);
    const state = page.locator('.page-header .state');
    await expect.poll(() => state.innerText(), { timeout: 30_000 }).toMatch(/running|completed/);
    // Running, some calls done: the numbers and the sparkline have something to show.
    await expect
      .poll(() => page.locator('.progress-text').first().innerText(), { timeout: 60_000 })
      .not.toMatch(/^0 of/);
    await checkPage('06-dashboard-running');
    await expect.poll(() => state.innerText(), { timeout: 120_000, interval: 500 }).toBe('completed');
    await expect
      .poll(() => page.locator('.progress-text').first().innerText(), POLL)
      .toBe(`${VALID} of ${VALID} done (100%)`);
    await checkPage('07-dashboard-completed');
    const outcomes = await page.locator('table.counts').first().innerText();
    expect(outcomes).toMatch(/answered/);

    // The report: one line per call.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download the report (CSV)' }).click(),
    ]);
    const report = readFileSync((await download.path())!, 'utf8')
      .trim()
      .split('\n');
    expect(report[0]).toMatch(/^row,recipientId,outcome/);
    expect(report.length - 1).toBeGreaterThanOrEqual(VALID);
    expect(report.length - 1).toBeLessThanOrEqual(ROWS);

    // The campaign's calls, and one call's transcript.
    await page.getByRole('link', { name: 'The campaign’s calls' }).click();
    await page.getByRole('heading', { name: `Calls of ${CAMPAIGN}` }).waitFor();
    await expect.poll(() => page.locator('table.data-table tbody tr').count(), POLL).toBeGreaterThan(0);
    await checkPage('08-calls');
    await page.getByRole('link', { name: `call:${CAMPAIGN}:r0`, exact: true }).click();
    await page.getByRole('heading', { name: `Call call:${CAMPAIGN}:r0` }).waitFor();
    const transcript = page.locator('table.call-transcript');
    await transcript.waitFor();
    expect(await transcript.innerText()).toMatch(/Hi Ana, this is a reminder/);
    expect(await page.locator('.stats div', { hasText: 'Outcome' }).locator('dd').innerText()).toBe('answered');
    await checkPage('09-call');

    // Back to the list: the campaign is there, completed.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Campaigns' }).click();
    await page.getByRole('link', { name: CAMPAIGN }).waitFor();
    expect(await page.locator('tbody tr', { hasText: CAMPAIGN }).innerText()).toMatch(/completed/);
    await checkPage('10-list');

    expect(pageErrors).toEqual([]);
    expect(csp).toEqual([]);
  }, 300_000);

  it('pause, resume and cancel from the dashboard; cancelling asks first and the keyboard can do it', async () => {
    const id = 'browser-controls';
    const auth = { authorization: `Bearer ${token}` };
    const created = await fetch(`${api.url}/api/campaigns`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ id, flow: { id: 'appointment-reminder', version: 1 }, callingSpeed: '6/minute spread' }),
    });
    expect(created.status, await created.text()).toBe(201);
    const rows = Array.from({ length: 20 }, (_, i) => `c${i},+3859158${String(i).padStart(5, '0')}`);
    const uploaded = await fetch(`${api.url}/api/campaigns/${id}/recipients`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'text/csv' },
      body: `id,phone\n${rows.join('\n')}\n`,
    });
    expect(uploaded.status, await uploaded.text()).toBe(200);
    const started = await fetch(`${api.url}/api/campaigns/${id}/start`, { method: 'POST', headers: auth });
    expect(started.status, await started.text()).toBe(200);

    await open(`/campaigns/${id}`);
    const state = page.locator('.page-header .state');
    await expect.poll(() => state.innerText(), POLL).toBe('running');
    await page.getByRole('button', { name: 'Pause' }).click();
    await expect.poll(() => state.innerText(), POLL).toBe('paused');
    await page.getByRole('button', { name: 'Resume' }).click();
    await expect.poll(() => state.innerText(), POLL).toBe('running');

    // Cancel asks first; focus goes to the confirmation, and Enter confirms.
    await page.getByRole('button', { name: 'Cancel campaign…' }).click();
    const confirm = page.getByRole('alertdialog', { name: `Cancel campaign ${id}?` });
    await confirm.waitFor();
    expect(await page.locator('button:focus').innerText()).toBe('Yes, cancel it');
    await checkPage('12-dashboard-cancel-confirm');
    await page.keyboard.press('Enter');
    await expect.poll(() => state.innerText(), { timeout: 60_000 }).toBe('cancelled');
    await checkPage('13-dashboard-cancelled');
    await expect.poll(() => page.getByRole('button', { name: /Pause|Resume|Cancel campaign/ }).count(), POLL).toBe(0);
  }, 120_000);

  it('a recorded call: its page plays the recording in an audio player', async () => {
    const postJson = (path: string, body: unknown) =>
      fetch(`${api.url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const flow = {
      id: 'recorded-hello',
      version: 1,
      start: 'call',
      elements: [
        { id: 'call', type: 'startOutgoingCall', from: '+14155550100', recordCall: true, next: { answered: 'hello' } },
        {
          id: 'hello',
          type: 'play',
          tts: { text: 'Hello, this call is recorded.', language: 'en' },
          next: { played: 'end' },
        },
        { id: 'end', type: 'hangUp' },
      ],
    };
    const published = await postJson('/api/flows', flow);
    expect(published.status, await published.text()).toBe(201);
    const placed = await postJson('/api/calls', {
      flow: { id: flow.id },
      recipient: { id: 'rec1', phone: '+385915800001' },
      persona: { attempts: ['answered'] },
    });
    expect(placed.status).toBe(201);
    const { callId } = (await placed.json()) as { callId: string };
    // The whole-call recording is ready after the call ends.
    await expect
      .poll(
        async () => {
          const res = await fetch(`${api.url}/api/recordings?callId=${encodeURIComponent(callId)}`, {
            headers: { authorization: `Bearer ${token}` },
          });
          return ((await res.json()) as { recordings?: unknown[] }).recordings?.length ?? 0;
        },
        { timeout: 60_000, interval: 500 },
      )
      .toBeGreaterThan(0);

    await open(`/calls/${encodeURIComponent(callId)}`);
    await page.getByRole('heading', { name: `Call ${callId}` }).waitFor();
    const audio = page.locator('ul.recordings audio');
    await audio.waitFor();
    // The player reads the file's header (a Range request) and knows its length.
    const duration = await audio.evaluate(
      (el: {
        readyState: number;
        duration: number;
        error: { code: number } | null;
        addEventListener: (e: string, f: () => void) => void;
      }) =>
        new Promise<number>((resolve, reject) => {
          if (el.readyState >= 1) resolve(el.duration);
          el.addEventListener('loadedmetadata', () => resolve(el.duration));
          el.addEventListener('error', () => reject(new Error(`media error ${el.error?.code}`)));
        }),
    );
    expect(duration).toBeGreaterThan(0);
    await page.locator('table.call-transcript').waitFor();
    await checkPage('11-call-recording');
  }, 120_000);
});
