// A new user builds the appointment reminder in the web console's flow editor, as a browser sees
// it: Debian's chromium (headless, playwright-core) against the real API (in-process, free
// loopback port) on a real stack (Temporal dev server, nats-server; simulations on the API's
// time-skipping test server).
// Log in through the form, start from an empty canvas, add and fill every element by clicking and
// typing, see a validation problem on the element and its field and fix it, publish, simulate (the
// path taken highlighted on the canvas), publish a second version and read the diff. Every page is
// screenshotted (test-output/screenshots/editor-*.png) and checked with axe-core, with the
// console's CSP on (no violation may be reported).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startEphemeralStack, type EphemeralStack } from '../../src/dev/ephemeral.js';
import { freePort } from '../../src/dev/stack.js';
import { startApiServer, type StartedApiServer } from '../../src/api/server.js';
import { payloadCodec } from '../../src/config/index.js';
import { PROJECT_ROOT } from '../../src/config/tools.js';
import { createLogger } from '../../src/logging.js';
import { UserStore } from '../../src/store/users.js';
import {
  ensureConsoleBuilt,
  launchBrowser,
  recordCspViolations,
  screenshot,
  seriousA11yViolations,
} from '../helpers/browser.js';

const USER = 'flow-author';
const PASSWORD = 'a long enough passphrase';
const FLOW_ID = 'appointment-reminder';
const MENU_TEXT =
  'Hi {{recipient.firstName}}, this is a reminder of your appointment tomorrow. Press 1 to confirm, 2 to cancel.';

let t: EphemeralStack;
let nc: NatsConnection;
let api: StartedApiServer;
let browser: Browser;
let context: BrowserContext;
let page: Page;

async function checkPage(name: string): Promise<void> {
  await screenshot(page, `editor-${name}`);
  expect(await seriousA11yViolations(page), `axe on ${name}`).toEqual([]);
}

beforeAll(async () => {
  await ensureConsoleBuilt();
  // Temporal dev server and nats-server; no call services: /api/simulate runs its own time-skipping
  // test server and worker, and the editor starts no real calls.
  t = await startEphemeralStack({ services: [] });
  nc = await t.natsConnect('browser-editor');
  await (await UserStore.open(nc)).add(USER, 'operator', PASSWORD);
  api = await startApiServer({
    nc,
    temporal: { client: t.client, codec: payloadCodec(t.config), taskQueue: t.config.temporal.taskQueue },
    logger: createLogger('api', 'silent'),
    host: '127.0.0.1',
    port: await freePort(),
  });
  browser = await launchBrowser();
  context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1440, height: 1000 } });
  page = await context.newPage();
}, 240_000);

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await api?.close();
  await nc?.close();
  await t?.stop();
});

const field = (label: string) => page.locator('.properties').getByLabel(label, { exact: true });

/** Add an element of a type from the toolbar and give it its id. */
async function addElement(type: string, id: string): Promise<void> {
  await page.getByLabel('Element type').selectOption(type);
  await page.getByRole('button', { name: 'Add element' }).click();
  await field('id').fill(id);
  await field('id').press('Enter');
  await page.getByRole('heading', { level: 2, name: `${type} “${id}”` }).waitFor();
}

async function selectElement(id: string): Promise<void> {
  await page
    .getByRole('navigation', { name: 'Elements' })
    .getByRole('button', { name: new RegExp(`^${id} `) })
    .click();
  await page.getByRole('heading', { level: 2, name: new RegExp(`“${id}”`) }).waitFor();
}

async function openGroup(name: string): Promise<void> {
  // The group's own summary (a group's text also contains its nested groups' summaries).
  const own = new RegExp(`^${name.replace(/[.]/g, '[.]')}(\\s|$)`);
  const summary = page.locator('.properties details > summary', { hasText: own }).first();
  const details = summary.locator('..');
  if (!(await details.evaluate((el) => (el as { open?: boolean }).open === true))) await summary.click();
}

const validationStatus = () => page.getByTestId('validation-status');

describe('the console as the API serves it', () => {
  it('every non-/api path is the app (no-cache, strict CSP, nosniff); assets cached for a year; /api stays JSON', async () => {
    for (const path of ['/', '/flows', '/campaigns/new', '/calls/call%3Aapi%3Ar1']) {
      const page = await fetch(`${api.url}${path}`);
      expect(page.status, path).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      expect(page.headers.get('cache-control')).toBe('no-cache');
      const csp = page.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      expect(page.headers.get('x-content-type-options')).toBe('nosniff');
      const html = await page.text();
      // No inline script: the one script is a hashed file of this origin.
      expect(html).toMatch(/<script type="module" crossorigin src="\/assets\/index-[\w-]+\.js"><\/script>/);
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    }
    const html = await (await fetch(`${api.url}/`)).text();
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1] ?? '';
    const asset = await fetch(`${api.url}${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toMatch(/javascript/);
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(asset.headers.get('x-content-type-options')).toBe('nosniff');
    expect((await fetch(`${api.url}${script}`, { method: 'HEAD' })).status).toBe(200);

    const missingAsset = await fetch(`${api.url}/assets/nothing-here.js`);
    expect(missingAsset.status).toBe(404);
    expect(((await missingAsset.json()) as { error: { code: string } }).error.code).toBe('not_found');
    const traversal = await fetch(`${api.url}/assets/..%2f..%2fpackage.json`);
    expect(traversal.status).toBe(404);

    // Unknown /api paths are not the app: 401 without credentials, JSON 404 with them.
    const anonymous = await fetch(`${api.url}/api/no-such-route`);
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    const login = await fetch(`${api.url}/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: USER, password: PASSWORD }),
    });
    expect(login.status).toBe(200);
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    for (const path of ['/api/no-such-route', '/api', '/api/flows/x/nothing']) {
      const unknown = await fetch(`${api.url}${path}`, { headers: { cookie } });
      expect(unknown.status, path).toBe(404);
      expect(unknown.headers.get('content-type')).toMatch(/^application\/json/);
      expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('not_found');
    }
    // Only GET serves the app: any other method is no route (after auth, like every unknown route).
    const post = await fetch(`${api.url}/flows`, { method: 'POST', headers: { cookie } });
    expect(post.status).toBe(403); // the session cookie without its CSRF token
    const postWithToken = await fetch(`${api.url}/flows`, {
      method: 'POST',
      headers: { cookie, 'x-csrf-token': ((await login.json()) as { csrfToken: string }).csrfToken },
    });
    expect(postWithToken.status).toBe(404);
  });
});

describe('the flow editor', () => {
  it('log in, build the appointment reminder from an empty canvas, fix a problem, publish, simulate, diff versions', async () => {
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    const csp = recordCspViolations(page);

    // Log in.
    await page.goto(`${api.url}/`);
    await page.getByRole('form', { name: 'Log in' }).waitFor();
    await checkPage('01-login');
    await page.getByLabel('Username').fill(USER);
    await page.getByLabel('Password').fill('wrong password!!');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Wrong username or password.' }).waitFor();
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();

    // An empty canvas: the validator says a flow needs elements.
    await page.getByRole('heading', { level: 1, name: /Flow editor/ }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/flows');
    await expect.poll(() => validationStatus().textContent()).toMatch(/problem/);
    await page.getByText('The canvas is empty').waitFor();
    await checkPage('02-empty');

    // Flow settings.
    await field('id').fill(FLOW_ID);
    await field('name').fill('Appointment reminder: confirm or cancel');
    await openGroup('variables');
    await page.getByLabel('New key of variables').fill('choice');
    await page.getByRole('button', { name: 'Add to variables' }).click();
    await openGroup('variables.choice');
    await field('variables.choice.type').selectOption('string');

    // The elements, by clicking and typing.
    await addElement('startOutgoingCall', 'call');
    await field('from').fill('+14155550100');
    await addElement('play', 'menu');
    // A prompt longer than a TTS prompt may be: the validator flags it on the node and the field.
    await openGroup('tts');
    await field('tts.text').fill(`${MENU_TEXT} Thank you for choosing our clinic, we look forward to seeing you.`);
    await page.getByTestId('problems-menu').waitFor();
    await page.locator('.properties .field.has-error').filter({ hasText: 'field.tooBig' }).waitFor();
    await checkPage('03-validation-problem');
    // Fixed: the problem leaves the field and the node.
    await field('tts.text').fill(MENU_TEXT);
    await expect
      .poll(() => page.locator('.properties .field-problems').filter({ hasText: 'field.tooBig' }).count())
      .toBe(0);
    await expect.poll(() => page.locator('.problems').getByText('field.tooBig').count()).toBe(0);
    await field('pauseSeconds').fill('1');
    await field('interruptible').check();

    await openGroup('tts');
    await field('tts.language').fill('en');
    await field('tts.voice').selectOption('female');

    const collect = async (id: string) => {
      await addElement('collect', id);
      await field('maxDigits').fill('1');
      await field('waitSeconds').fill('5');
      await field('saveTo').fill('choice');
    };
    const say = async (id: string, text: string, opts: { pauseSeconds?: string; interruptible?: boolean } = {}) => {
      await addElement('play', id);
      await openGroup('tts');
      await field('tts.text').fill(text);
      if (opts.pauseSeconds) await field('pauseSeconds').fill(opts.pauseSeconds);
      if (opts.interruptible) await field('interruptible').check();
    };
    await collect('ask');
    await say('menu-again', 'Sorry, I did not get that. Press 1 to confirm, 2 to cancel.', { interruptible: true });
    await collect('ask-again');
    await say('confirmed', 'Thank you, your appointment is confirmed.');
    await say('cancelled', 'Your appointment is cancelled. We will call you to find a new time.');
    await say('goodbye', 'We will call you again later. Goodbye.');
    await say(
      'leave-message',
      'Hi {{recipient.firstName}}, this is a reminder of your appointment tomorrow. Please call us to confirm.',
      { pauseSeconds: '2' },
    );
    await addElement('hangUp', 'end');

    // Branches: each a choice of the element it leads to.
    const endsOnHangUp = async () => {
      await field('next.hungUp').selectOption('end');
      await field('next.callEnded').selectOption('end');
    };
    await selectElement('call');
    await field('next.answered').selectOption('menu');
    for (const branch of ['noAnswer', 'busy', 'declined', 'callEnded'])
      await field(`next.${branch}`).selectOption('end');
    await field('next.voicemail').selectOption('leave-message');
    await openGroup('tracking');
    await field('tracking.deliveryReports').check();
    await openGroup('tracking.dataPayload');
    await page.getByLabel('New key of tracking.dataPayload').fill('firstName');
    await page.getByRole('button', { name: 'Add to tracking.dataPayload' }).click();
    await field('tracking.dataPayload.firstName').fill('{{recipient.firstName}}');
    for (const [prompt, ask] of [
      ['menu', 'ask'],
      ['menu-again', 'ask-again'],
    ] as const) {
      await selectElement(prompt);
      await field('next.played').selectOption(ask);
      await endsOnHangUp();
    }
    for (const [ask, noMatch] of [
      ['ask', 'menu-again'],
      ['ask-again', 'goodbye'],
    ] as const) {
      await selectElement(ask);
      for (const [digits, target] of [
        ['1', 'confirmed'],
        ['2', 'cancelled'],
      ] as const) {
        await page.getByLabel('New key of responses').fill(digits);
        await page.getByRole('button', { name: 'Add to responses' }).click();
        await field(`responses.${digits}`).selectOption(target);
      }
      await field('next.noMatch').selectOption(noMatch);
      await endsOnHangUp();
    }
    for (const id of ['confirmed', 'cancelled', 'goodbye', 'leave-message']) {
      await selectElement(id);
      await field('next.played').selectOption('end');
      await endsOnHangUp();
    }

    // Duplicate, then delete by keyboard: on the canvas (focus the node, Enter selects, Delete
    // removes) and in the element list (Delete on the selected element).
    await selectElement('confirmed');
    await page.getByRole('button', { name: 'Duplicate' }).click();
    await page.getByRole('heading', { level: 2, name: 'play “confirmed-2”' }).waitFor();
    await page.getByRole('button', { name: 'Flow settings' }).click();
    await page.locator('.react-flow__node[data-id="confirmed-2"]').focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 2, name: 'play “confirmed-2”' }).waitFor();
    await page.locator('.react-flow__node[data-id="confirmed-2"]').focus();
    await page.keyboard.press('Delete');
    await expect.poll(() => page.locator('.react-flow__node').count()).toBe(10);
    await selectElement('cancelled');
    await page.getByRole('button', { name: 'Duplicate' }).click();
    await page.getByRole('heading', { level: 2, name: 'play “cancelled-2”' }).waitFor();
    await page
      .getByRole('navigation', { name: 'Elements' })
      .getByRole('button', { name: /^cancelled-2 / })
      .press('Delete');
    await expect.poll(() => page.locator('.react-flow__node').count()).toBe(10);
    // Undo and redo an edit (Ctrl+Z, Ctrl+Shift+Z).
    await selectElement('end');
    await field('label').fill('Goodbye');
    await page.keyboard.press('Control+z');
    await expect.poll(() => field('label').inputValue()).toBe('');
    await page.keyboard.press('Control+Shift+z');
    await expect.poll(() => field('label').inputValue()).toBe('Goodbye');

    await expect.poll(() => validationStatus().textContent(), { timeout: 10_000 }).toMatch(/^Valid/);
    expect(await page.locator('.react-flow__node').count()).toBe(10);
    expect(await page.locator('.react-flow__edge').count()).toBeGreaterThanOrEqual(11);
    await page.getByRole('button', { name: 'Arrange' }).click();
    await checkPage('04-built');

    // Export JSON: the document as built.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Export JSON' }).click(),
    ]);
    const exported = JSON.parse(readFileSync((await download.path()) ?? '', 'utf8')) as {
      id: string;
      start: string;
      variables: unknown;
      elements: Array<Record<string, unknown>>;
    };
    expect(exported.id).toBe(FLOW_ID);
    expect(exported.start).toBe('call');
    // The example, element by element: what was clicked and typed is the appointment reminder.
    const example = JSON.parse(readFileSync(join(PROJECT_ROOT, 'examples', 'appointment-reminder.json'), 'utf8')) as {
      variables: unknown;
      elements: Array<Record<string, unknown>>;
    };
    expect(exported.variables).toEqual(example.variables);
    expect(exported.elements).toEqual(example.elements.map((e) => (e.id === 'end' ? { ...e, label: 'Goodbye' } : e)));

    // Publish version 1.
    await page.getByRole('button', { name: 'Publish' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: `Published ${FLOW_ID} version 1.` })
      .waitFor();

    // Simulate: the person presses 1; the path taken lights up on the canvas.
    await page.getByRole('button', { name: 'Simulate', exact: true }).click();
    await page.getByLabel('Keys pressed at each prompt').fill('1');
    await page.getByRole('button', { name: 'Run simulation' }).click();
    await page.getByTestId('sim-outcome').filter({ hasText: 'answered' }).waitFor({ timeout: 60_000 });
    await page.getByRole('list', { name: 'Transcript' }).getByText('your appointment is confirmed').first().waitFor();
    const onTrail = await page
      .locator('.react-flow__node.on-trail')
      .evaluateAll((nodes) => nodes.map((n) => n.getAttribute('data-id')));
    expect(onTrail.sort()).toEqual(['ask', 'call', 'confirmed', 'end', 'menu']);
    expect(await page.locator('.react-flow__edge.on-trail').count()).toBeGreaterThanOrEqual(3);
    await checkPage('05-simulate');

    // Version 2 with a new prompt; the diff shows the change.
    await page.getByRole('button', { name: 'Flow settings' }).click();
    await field('version').fill('2');
    await selectElement('confirmed');
    await field('tts.text').fill('Thank you, your appointment is confirmed. See you tomorrow.');
    await page.getByRole('button', { name: 'Publish' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: `Published ${FLOW_ID} version 2.` })
      .waitFor();
    await page.getByLabel('Compare version').selectOption('1');
    await page.getByLabel('with version').selectOption('2');
    await page.getByRole('button', { name: 'Show diff' }).click();
    await page.locator('.diff-added').filter({ hasText: 'See you tomorrow.' }).waitFor();
    await page.locator('.diff-removed').filter({ hasText: 'your appointment is confirmed."' }).waitFor();
    await checkPage('06-versions-diff');

    // Import (YAML): a flow past the 100-element limit, as the validator reports it.
    const big = {
      id: 'too-big',
      version: 1,
      start: 'e0',
      elements: Array.from({ length: 101 }, (_, i) =>
        i === 100
          ? { id: `e${i}`, type: 'hangUp' }
          : { id: `e${i}`, type: 'setVariable', variable: 'x', value: '1', next: `e${i + 1}` },
      ),
    };
    await page.getByLabel('Import JSON or YAML').setInputFiles({
      name: 'too-big.yaml',
      mimeType: 'application/yaml',
      buffer: Buffer.from(stringify(big)),
    });
    await page.getByText('Imported too-big.yaml.').waitFor();
    await page.locator('.problems').getByText('flow.tooManyElements').waitFor();
    await page.getByText('101 / 100 elements').waitFor();
    expect(await page.getByRole('button', { name: 'Add element' }).isDisabled()).toBe(true);
    await checkPage('07-element-limit');

    expect(pageErrors).toEqual([]);
    expect(csp).toEqual([]);
  }, 240_000);
});
