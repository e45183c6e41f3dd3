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
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { startKamailio } from '../../src/dev/kamailio.js';
import { concat, encodeWav, parseWav, silence, toMono } from '../../src/telephony/sip/wav.js';
import { Callee } from '../sip/callee.js';

/** An 8 kHz WAV of `text` spoken by espeak-ng, then `tailMs` of silence (a phone's audio source ends the call at EOF). */
function spokenWav(dir: string, name: string, text: string, tailMs: number): string {
  const raw = join(dir, `${name}.raw.wav`);
  const wav = join(dir, `${name}.8k.wav`);
  execFileSync('espeak-ng', ['-w', raw, text]);
  execFileSync('sox', [raw, '-r', '8000', '-c', '1', '-b', '16', wav]);
  const out = join(dir, `${name}.wav`);
  writeFileSync(out, encodeWav(concat(toMono(parseWav(readFileSync(wav))), silence(tailMs))));
  return out;
}

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
    const dev: DevProcess = await startDev(
      mkdtempSync(join(tmpdir(), 'dialflow-e2e-ib-')),
      ['--provider', 'infobip', '--webhook-port', String(webhookPort)],
      {
        DIALFLOW_INFOBIP_BASE_URL: fake.baseUrl,
        DIALFLOW_INFOBIP_API_KEY: 'e2e-key',
        DIALFLOW_INFOBIP_CALLS_CONFIGURATION_ID: 'e2e-configuration',
        DIALFLOW_WEBHOOK_PASSWORD: password,
      },
    );
    cleanups.push(() => dev.stop());
    expect(dev.output()).toContain(`Webhooks:     http://127.0.0.1:${webhookPort}/webhooks/infobip`);

    const confirmed = parseReport(
      await dev.cli([
        'call',
        reminder,
        '--to',
        '+14155550123',
        '--recipient',
        '{"firstName":"Ana","timeZone":"America/Los_Angeles"}',
        '--json',
      ]),
    );
    expect(confirmed.outcome).toBe('answered');
    expect(confirmed.trail.map((t) => `${t.element}:${t.branch}`)).toEqual([
      'call:answered',
      'menu:played',
      'ask:1',
      'confirmed:played',
    ]);
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

describe('dialflow dev --provider sip --sip-trunk + dialflow call', () => {
  it('reaches phones behind a SIP proxy someone else runs, and the branches follow the keys they press', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dialflow-e2e-sip-'));
    // "Someone else's" side: a SIP proxy/registrar and two phones registered at it as numbers.
    const proxy = await startKamailio({ dir: join(dir, 'proxy'), host: '127.0.0.1', port: await freePort() });
    cleanups.push(() => proxy.stop());
    const registrar = proxy.uri.replace(/^sip:/, '');
    const silenceWav = join(dir, 'silence.wav');
    writeFileSync(silenceWav, encodeWav(silence(60_000)));
    const hello = spokenWav(dir, 'hello', 'Hello?', 60_000);
    const phones: Record<string, Callee> = {};
    for (const [number, digit] of [
      ['+14155550131', '1'],
      ['+14155550132', '2'],
    ] as const) {
      const phone = await Callee.start({
        dir: join(dir, number),
        registrar,
        user: number,
        silenceWav,
        speechWav: hello,
        keys: [{ digit, afterMs: 4000 }],
      });
      cleanups.push(() => phone.stop());
      phones[number] = phone;
    }
    const dev = await startDev(join(dir, 'dev'), ['--provider', 'sip', '--sip-trunk', proxy.uri], {
      DIALFLOW_SIP_CHANNELS: '2',
    });
    cleanups.push(() => dev.stop());
    expect(dev.output()).toContain(`calls go out through the trunk ${proxy.uri}`);

    const [confirmed, cancelled] = await Promise.all([
      dev
        .cli([
          'call',
          reminder,
          '--to',
          '+14155550131',
          '--recipient',
          '{"firstName":"Ana","timeZone":"America/Los_Angeles"}',
          '--json',
        ])
        .then(parseReport),
      dev
        .cli([
          'call',
          reminder,
          '--to',
          '+14155550132',
          '--recipient',
          '{"firstName":"Ivo","timeZone":"America/Los_Angeles"}',
          '--json',
        ])
        .then(parseReport),
    ]);
    expect(confirmed.trail.map((t) => `${t.element}:${t.branch}`)).toEqual([
      'call:answered',
      'menu:played',
      'ask:1',
      'confirmed:played',
    ]);
    expect(cancelled.trail.map((t) => `${t.element}:${t.branch}`)).toEqual([
      'call:answered',
      'menu:played',
      'ask:2',
      'cancelled:played',
    ]);
    expect(confirmed.dials + cancelled.dials).toBe(2);
    // Each phone really had a call (its own baresip saw it established and closed).
    for (const phone of Object.values(phones)) {
      await phone.waitClosed();
      expect(phone.establishedAt).toBeDefined();
      expect(phone.closedAt).toBeDefined();
    }
  }, 240_000);
});
