// `dialflow simulate`: one call on the time-skipping test server, a transcript out.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DateTime } from 'luxon';
import { CLI_BIN } from '../../src/dev/stack.js';

const run = (...args: string[]) =>
  spawnSync(process.execPath, [CLI_BIN, 'simulate', ...args], { encoding: 'utf8', timeout: 90_000 });
const example = (f: string) => new URL(`../../examples/${f}`, import.meta.url).pathname;

/**
 * A PIN collected with `reporting` and then carried everywhere a flow can carry it: read back in a
 * prompt, sent by SMS, saved to the profile, copied to another variable, turned into a number, put
 * in an HTTP request's URL (to a loopback address the policy refuses, so the failure names the
 * request) and into an expression that fails with the value in its message.
 */
function pinFlowFile(reporting: 'masked' | 'hidden'): string {
  const flow = {
    id: `pin-${reporting}`,
    version: 1,
    start: 'call',
    variables: { pin: { type: 'string' }, copy: { type: 'string' } },
    elements: [
      { id: 'call', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'intro' } },
      {
        id: 'intro',
        type: 'play',
        tts: { text: 'Please enter your PIN.' },
        interruptible: true,
        next: { played: 'ask' },
      },
      { id: 'ask', type: 'collect', maxDigits: 4, reporting, saveTo: 'pin', next: { noMatch: 'echo' } },
      { id: 'echo', type: 'play', tts: { text: 'You entered {{vars.pin}}.' }, next: { played: 'copy' } },
      { id: 'copy', type: 'setVariable', variable: 'copy', value: 'vars.pin', next: 'number' },
      { id: 'number', type: 'setVariable', variable: 'asNumber', value: '$number(vars.pin)', next: 'sms' },
      { id: 'sms', type: 'sendSms', text: 'Your PIN is {{vars.pin}}', next: 'save' },
      { id: 'save', type: 'updateProfile', attributes: { lastPin: 'vars.pin' }, next: 'verify' },
      {
        id: 'verify',
        type: 'httpRequest',
        url: 'http://127.0.0.1:9/verify/{{vars.pin}}?pin={{vars.pin}}',
        retries: 0,
        next: 'broken',
        onError: 'broken',
      },
      { id: 'broken', type: 'setVariable', variable: 'n', value: "$number('x' & vars.pin)", next: 'end' },
      { id: 'end', type: 'hangUp' },
    ],
  };
  const file = join(mkdtempSync(join(tmpdir(), 'dialflow-pin-')), `pin-${reporting}.json`);
  writeFileSync(file, JSON.stringify(flow));
  return file;
}
const PIN = '8417';

describe('dialflow simulate', () => {
  it('a week-long callback runs in seconds and reports JSON', () => {
    const t0 = Date.now();
    const r = run(example('callback.yaml'), '--persona', '{"attempts":["busy","noAnswer","answered"]}', '--json');
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      visited: string[];
      dials: number;
      outcome: string;
      variables: object;
      events: Array<{ kind: string; text: string; at: string }>;
      simulatedSeconds: number;
    };
    expect(out).toMatchObject({
      visited: ['first-call', 'wait', 'second-call', 'message', 'end'],
      dials: 3,
      outcome: 'answered',
      variables: {},
    });
    expect(out.simulatedSeconds).toBeGreaterThan(24 * 3600);
    expect(out.events.filter((e) => e.kind === 'command' && e.text.startsWith('dial'))).toHaveLength(3);
    expect(out.events.filter((e) => e.text.startsWith('say "Hello Ana'))).toHaveLength(2);
    expect(Date.now() - t0).toBeLessThan(60_000);
  }, 90_000);

  it('simulates an inbound flow: the persona calls the number and chooses', () => {
    const r = run(example('inbound-language-menu.yaml'), '--persona', '{"keys":["2"]}', '--json');
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      visited: string[];
      dials: number;
      variables: Record<string, unknown>;
      events: Array<{ text: string }>;
    };
    expect(out).toMatchObject({
      visited: ['incoming', 'menu', 'choose', 'spanish', 'end'],
      dials: 0,
      variables: { language: '2' },
    });
    expect(out.events[0]?.text).toBe('CALL_RECEIVED');
    // A choice that is not masked is shown as it was typed.
    expect(out.events.map((e) => e.text)).toContain('DTMF_CAPTURED "2"');
  }, 90_000);

  it('derives the zone from the number: a French number is called inside the window in Paris time, a US one is refused with the reason', () => {
    const fr = run(example('nps-survey.yaml'), '--recipient', '{"phone":"+33612345678"}', '--json');
    expect(fr.status, fr.stderr).toBe(0);
    const frOut = JSON.parse(fr.stdout) as {
      timeZone: string;
      events: Array<{ kind: string; text: string; at: string }>;
    };
    expect(frOut.timeZone).toBe('Europe/Paris');
    const dial = frOut.events.find((e) => e.kind === 'command' && e.text.startsWith('dial'));
    // The survey's window: Mon–Fri 10:00–19:00 in the recipient's zone.
    const local = DateTime.fromISO(dial?.at ?? '', { zone: 'Europe/Paris' });
    expect(local.weekday).toBeLessThanOrEqual(5);
    expect(local.hour).toBeGreaterThanOrEqual(10);
    expect(local.hour).toBeLessThan(19);
    const us = run(example('nps-survey.yaml'), '--recipient', '{"phone":"+14155550100"}', '--json');
    expect(us.status, us.stderr).toBe(0);
    expect(JSON.parse(us.stdout)).toMatchObject({
      outcome: 'notCalled',
      dials: 0,
      error: expect.stringMatching(/US spans several time zones/),
    });
  }, 90_000);

  it('masked digits never appear, in text or JSON', () => {
    const flow = example('../test/fixtures/masked-pin.json');
    const text = run(flow, '--persona', '{"keys":["80417352"]}');
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toContain('DTMF_CAPTURED "xxxx"');
    expect(text.stdout).not.toContain('80417352');
    const json = run(flow, '--persona', '{"keys":["80417352"]}', '--json');
    expect(json.stdout).not.toContain('80417352');
  }, 90_000);

  it('a masked PIN appears in no output: typed during the prompt or at the collect, in text and JSON', () => {
    const flow = pinFlowFile('masked');
    const bargeIn = JSON.stringify({ keys: [PIN], pressDuringPrompt: true });
    const text = run(flow, '--persona', bargeIn);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout + text.stderr).not.toContain(PIN);
    // The transcript is complete, with the digits masked wherever they went.
    expect(text.stdout).toMatch(/→ dial \+385915550000 from \+14155550100/);
    expect(text.stdout).toContain('← SAY_FINISHED "xxxx"');
    expect(text.stdout).toContain('→ say "You entered xxxx."');
    expect(text.stdout).toContain('"text":"Your PIN is xxxx"');
    expect(text.stdout).toContain('"lastPin":"xxxx"');
    expect(text.stdout).toContain('warning:   [verify] GET 127.0.0.1:9: 127.0.0.1 is a loopback address');
    expect(text.stdout).toContain('variables: {"pin":"xxxx","copy":"xxxx","asNumber":"xxxx"}');

    const json = run(flow, '--persona', bargeIn, '--json');
    expect(json.status, json.stderr).toBe(0);
    expect(json.stdout + json.stderr).not.toContain(PIN);
    const report = JSON.parse(json.stdout) as { trail: Array<{ element: string; input?: string }> };
    expect(report.trail.find((t) => t.element === 'ask')?.input).toBe('xxxx');

    const typed = run(flow, '--persona', JSON.stringify({ keys: [PIN] }));
    expect(typed.status, typed.stderr).toBe(0);
    expect(typed.stdout + typed.stderr).not.toContain(PIN);
    expect(typed.stdout).toContain('ask            ← DTMF_CAPTURED "xxxx"');
  }, 90_000);

  it('a hidden PIN is shown as hidden and left out of the variables', () => {
    const json = run(pinFlowFile('hidden'), '--persona', JSON.stringify({ keys: [PIN] }), '--json');
    expect(json.status, json.stderr).toBe(0);
    expect(json.stdout + json.stderr).not.toContain(PIN);
    const report = JSON.parse(json.stdout) as { variables: Record<string, unknown>; events: Array<{ text: string }> };
    expect(report.variables).not.toHaveProperty('pin');
    expect(report.variables.copy).toBe('(hidden)');
    expect(report.events.map((e) => e.text)).toContain('DTMF_CAPTURED (hidden)');
    expect(report.events.map((e) => e.text)).toContain('say "You entered (hidden)."');
  }, 90_000);

  it('an invalid persona or flow exits 1 with the reasons', () => {
    const p = run(example('callback.yaml'), '--persona', '{"attempts":["maybe"]}');
    expect(p.status).toBe(1);
    expect(p.stderr).toMatch(/invalid persona:\n.*\n\s+→ at attempts\[0\]/);
    const f = run(example('../test/fixtures/invalid-flow.json'));
    expect(f.status).toBe(1);
    expect(f.stderr).toMatch(/session\.ivrOutsideSession/);
  }, 90_000);
});
