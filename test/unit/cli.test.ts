// The dialflow command as a user runs it: exit codes, output, no stack traces.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_BIN } from '../../src/dev/stack.js';
import { flowJsonSchema } from '../../src/flow/schema.js';

const run = (...args: string[]) =>
  spawnSync(process.execPath, [CLI_BIN, ...args], { encoding: 'utf8', timeout: 30_000 });
const dir = mkdtempSync(join(tmpdir(), 'dialflow-cli-'));
const write = (name: string, body: string) => {
  const f = join(dir, name);
  writeFileSync(f, body);
  return f;
};

describe('dialflow validate', () => {
  it('exit 0 for a valid flow, warnings listed', () => {
    const f = write(
      'ok.yaml',
      'id: ok\nversion: 1\nstart: call\nelements:\n  - id: call\n    type: startOutgoingCall\n    from: "+14155550100"\n    retry: { minMinutes: 1, maxMinutes: 2, count: 4 }\n    next: { answered: bye }\n  - id: bye\n    type: play\n    tts: { text: Bye }\n',
    );
    const r = run('validate', f);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/warning +retry\.tooMany/);
    expect(r.stdout).toMatch(/warning +session\.autoHangUp .*\[bye\] elements\[1\]\.next\.played/);
    expect(r.stdout).toMatch(/valid \(2 warnings\)/);
  });
  it('exit 1 with every error, and --json gives them structured', () => {
    const f = write(
      'bad.json',
      JSON.stringify({
        id: 'bad',
        version: 1,
        start: 'p',
        elements: [
          { id: 'p', type: 'play', tts: { text: 'x'.repeat(200) } },
          { id: 'q', type: 'hangUp' },
        ],
      }),
    );
    const r = run('validate', f);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/error +field\.tooBig +\[p\] elements\[0\]\.tts\.text/);
    const j = run('validate', f, '--json');
    expect(j.status).toBe(1);
    const out = JSON.parse(j.stdout) as { ok: boolean; issues: Array<{ code: string }> };
    expect(out.ok).toBe(false);
    expect(out.issues.map((i) => i.code)).toContain('field.tooBig');
  });
  it('exit 2 with line and column when the file cannot be parsed, and no stack trace', () => {
    const r = run('validate', write('broken.json', '{\n  "id": "x",\n  "version": 1,,\n}'));
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/broken\.json:3:16: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const y = run('validate', write('broken.yaml', 'id: x\nelements:\n  - id: a\n   type: hangUp\n'));
    expect(y.status).toBe(2);
    expect(y.stderr).toMatch(/broken\.yaml:\d+:\d+: /);
    expect(run('validate', join(dir, 'missing.json')).status).toBe(2);
  });
  it('checks uploaded audio files exist', () => {
    const f = write(
      'audio.json',
      JSON.stringify({
        id: 'a',
        version: 1,
        start: 'c',
        elements: [
          { id: 'c', type: 'startOutgoingCall', from: '+14155550100', next: { answered: 'p' } },
          { id: 'p', type: 'play', audio: { file: 'nope.mp3' } },
        ],
      }),
    );
    const r = run('validate', f, '--json');
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('audio.fileMissing');
  });
});

describe('dialflow graph', () => {
  it('prints a Mermaid flowchart with labelled branches', () => {
    const r = run('graph', new URL('../../examples/appointment-reminder.json', import.meta.url).pathname);
    expect(r.status).toBe(0);
    expect(r.stdout.startsWith('flowchart TD\n')).toBe(true);
    expect(r.stdout).toContain('n_call -- "answered" --> n_menu');
    expect(r.stdout).toContain('n_ask -- "1" --> n_confirmed');
    expect(r.stdout).toContain('n_ask -- "noMatch" --> n_menu_again');
    expect(r.stdout).not.toMatch(/^\s+end\b/m);
  });
  it('refuses an invalid flow with exit 1', () => {
    const r = run(
      'graph',
      write(
        'g.json',
        JSON.stringify({ id: 'g', version: 1, start: 'x', elements: [{ id: 'x', type: 'play', tts: { text: 'a' } }] }),
      ),
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/session\.ivrOutsideSession/);
  });
});

describe('published JSON Schema', () => {
  it('docs/flow.schema.json is current (regenerate with npm run schema)', () => {
    const published = JSON.parse(
      readFileSync(new URL('../../docs/flow.schema.json', import.meta.url), 'utf8'),
    ) as Record<string, unknown>;
    const { $id: _id, title: _title, ...rest } = published;
    expect(rest).toEqual(JSON.parse(JSON.stringify(flowJsonSchema())));
  });
});
