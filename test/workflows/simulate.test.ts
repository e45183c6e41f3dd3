// `dialflow simulate`: one call on the time-skipping test server, a transcript out.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { DateTime } from 'luxon';
import { CLI_BIN } from '../../src/dev/stack.js';

const run = (...args: string[]) =>
  spawnSync(process.execPath, [CLI_BIN, 'simulate', ...args], { encoding: 'utf8', timeout: 90_000 });
const example = (f: string) => new URL(`../../examples/${f}`, import.meta.url).pathname;

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
    const text = run(flow, '--persona', '{"keys":["4321"]}');
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toContain('DTMF_CAPTURED "xxxx"');
    expect(text.stdout).not.toContain('4321');
    const json = run(flow, '--persona', '{"keys":["4321"]}', '--json');
    expect(json.stdout).not.toContain('4321');
  }, 90_000);

  it('an invalid persona or flow exits 1 with the reasons', () => {
    const p = run(example('callback.yaml'), '--persona', '{"attempts":["maybe"]}');
    expect(p.status).toBe(1);
    expect(p.stderr).toMatch(/invalid persona: attempts\.0/);
    const f = run(example('../test/fixtures/invalid-flow.json'));
    expect(f.status).toBe(1);
    expect(f.stderr).toMatch(/session\.ivrOutsideSession/);
  }, 90_000);
});
