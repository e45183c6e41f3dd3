// `dialflow simulate`: one call on the time-skipping test server, a transcript out.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { CLI_BIN } from '../../src/dev/stack.js';

const run = (...args: string[]) => spawnSync(process.execPath, [CLI_BIN, 'simulate', ...args], { encoding: 'utf8', timeout: 90_000 });
const example = (f: string) => new URL(`../../examples/${f}`, import.meta.url).pathname;

describe('dialflow simulate', () => {
  it('a week-long callback runs in seconds and reports JSON', () => {
    const t0 = Date.now();
    const r = run(example('callback.yaml'), '--persona', '{"attempts":["busy","noAnswer","answered"]}', '--json');
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { visited: string[]; dials: number; outcome: string; variables: object; events: Array<{ kind: string; text: string; at: string }>; simulatedSeconds: number };
    expect(out).toMatchObject({ visited: ['first-call', 'wait', 'second-call', 'message', 'end'], dials: 3, outcome: 'answered', variables: {} });
    expect(out.simulatedSeconds).toBeGreaterThan(24 * 3600);
    expect(out.events.filter((e) => e.kind === 'command' && e.text.startsWith('dial'))).toHaveLength(3);
    expect(out.events.filter((e) => e.text.startsWith('say "Hello Ana'))).toHaveLength(2);
    expect(Date.now() - t0).toBeLessThan(60_000);
  }, 90_000);

  it('refuses an inbound flow with a clear message', () => {
    const r = run(example('inbound-order-status.yaml'));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/is an inbound flow/);
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
