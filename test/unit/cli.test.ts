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
/** With a payload key and nothing else from this machine's Temporal or NATS settings. */
const runWith = (env: Record<string, string>, ...args: string[]) =>
  spawnSync(process.execPath, [CLI_BIN, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: dir,
      DIALFLOW_PAYLOAD_KEY: Buffer.alloc(32, 7).toString('base64'),
      ...env,
    },
  });
const oneLine = (stderr: string) => expect(stderr.trim().split('\n')).toHaveLength(1);
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

describe('usage errors: exit 2, one line naming the command and its help', () => {
  it.each([
    ['an unknown option', ['validate', 'x.json', '--bogus'], /^dialflow validate: unknown option '--bogus'/],
    ['a missing argument', ['graph'], /^dialflow graph: missing required argument 'file'/],
    ['a missing required option', ['call', 'f.json'], /^dialflow call: required option '--to <destination>'/],
    [
      'a bad choice',
      ['validate', 'x.json', '--provider', 'twilio'],
      /^dialflow validate: option '--provider <name>' argument 'twilio' is invalid\. Allowed choices are/,
    ],
    [
      'an unknown command',
      ['campaign', 'strat'],
      /^dialflow campaign: unknown command 'strat' \(Did you mean start\?\)/,
    ],
    ['a group without its command', ['dnc'], /^dialflow dnc: missing command: one of add, remove, check/],
    ['no command at all', [], /^dialflow: missing command: one of dev, worker/],
    [
      'a bad option value',
      ['campaign', 'forecast', '--flow', 'f', '--recipients', 'r', '--speed', '5/fortnight'],
      /^dialflow campaign forecast: option '--speed <n\/period>' argument '5\/fortnight' is invalid\. calling speed/,
    ],
    ['a bad port', ['dev', '--nats-port', '99999'], /a port is a whole number from 1 to 65535/],
    [
      'a bad connection flag, after the subcommand',
      ['campaign', 'status', 'c1', '--temporal', 'not an address'],
      /^dialflow: option '--temporal <address>' argument 'not an address' is invalid\. host:port/,
    ],
    [
      'two NATS identities',
      ['dnc', 'check', '+14155550100', '--nats-creds', 'a.creds', '--nats-user', 'ops'],
      /cannot be used with option '--nats-user <name>'/,
    ],
    ['an invalid ISO date', ['campaign', 'forecast', '--flow', 'f', '--recipients', 'r', '--start', 'soon'], /ISO/],
  ])('%s', (_what, args, message) => {
    const r = run(...args);
    expect(r.status, r.stderr).toBe(2);
    oneLine(r.stderr);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/— see `dialflow[\w -]*--help`\n$/);
  });

  it('--help is not an error', () => {
    const r = run('campaign', 'start', '--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Global Options:[\s\S]*--temporal-tls-cert <file>[\s\S]*--nats-creds <file>/);
  });

  it('our own argument checks are usage errors too', () => {
    const dev = runWith({}, 'dev', '--temporal', '10.0.0.1:7233', '--nats-creds', 'x.creds');
    expect(dev.status).toBe(2);
    expect(dev.stderr).toMatch(/^dialflow dev: --temporal, --nats-creds: dev runs its own Temporal and NATS servers/);
    const demo = runWith({}, 'dev', '--demo', '--provider', 'sip');
    expect(demo.status).toBe(2);
    expect(demo.stderr).toMatch(/the demo calls simulated personas/);
    const noNumbers = runWith({}, 'dnc', 'add');
    expect(noNumbers.status).toBe(2);
    expect(noNumbers.stderr).toMatch(/^dialflow dnc add: no numbers given/);
    const badId = runWith({}, 'campaign', 'start', '--flow', 'f.json', '--recipients', 'r.csv', '--id', 'no spaces');
    expect(badId.status).toBe(2);
    expect(badId.stderr).toMatch(/--id: campaign id "no spaces": letters, digits/);
    const reservedId = runWith({}, 'campaign', 'start', '--flow', 'f.json', '--recipients', 'r.csv', '--id', 'API');
    expect(reservedId.status).toBe(2);
    expect(reservedId.stderr).toMatch(/campaign id "API" is reserved/);
    // The list is checked by E.164 numbers: a national number would never block a call.
    const national = runWith({}, 'dnc', 'add', '091 555 0000');
    expect(national.status).toBe(2);
    expect(national.stderr).toMatch(/"091 555 0000" is not a valid international number/);
    const destination = runWith(
      {},
      'call',
      new URL('../../examples/appointment-reminder.json', import.meta.url).pathname,
      '--to',
      '12345',
    );
    expect(destination.status).toBe(2);
    expect(destination.stderr).toMatch(/--to "12345": give an international number/);
  });
});

describe('connection settings that cannot work: one line naming the setting or file, no stack trace', () => {
  const noTrace = (stderr: string) => expect(stderr).not.toMatch(/\n\s+at /);

  it('a Temporal TLS file that cannot be read: exit 1, naming the file (flag or TEMPORAL_TLS_*)', () => {
    const missing = join(dir, 'missing-client.pem');
    const key = write('client.key', 'not read: the certificate fails first');
    const r = runWith({}, 'campaign', 'status', 'c1', '--temporal-tls-cert', missing, '--temporal-tls-key', key);
    expect(r.status, r.stderr).toBe(1);
    oneLine(r.stderr);
    expect(r.stderr).toContain(`dialflow campaign status: cannot read the Temporal TLS client certificate ${missing}`);
    noTrace(r.stderr);
    const ca = runWith({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: join(dir, 'missing-ca.pem') }, 'campaign', 'pause', 'c1');
    expect(ca.status).toBe(1);
    expect(ca.stderr).toMatch(/cannot read the Temporal TLS server CA certificate .*missing-ca\.pem/);
    noTrace(ca.stderr);
  });

  it('a Temporal profile that is not there or does not parse: exit 2; a profile file that is missing: exit 1', () => {
    const profile = runWith({}, 'campaign', 'status', 'c1', '--temporal-profile', 'cloud');
    expect(profile.status).toBe(2);
    expect(profile.stderr).toMatch(/Profile 'cloud' not found/);
    const broken = runWith(
      { TEMPORAL_CONFIG_FILE: write('broken.toml', '[profile.default\n') },
      'campaign',
      'status',
      'c1',
    );
    expect(broken.status).toBe(2);
    oneLine(broken.stderr);
    expect(broken.stderr).toMatch(/invalid Temporal client configuration \(.*broken\.toml\): .* at line 1/);
    const missing = runWith({}, 'campaign', 'status', 'c1', '--temporal-config-file', join(dir, 'nope.toml'));
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/cannot read the Temporal profile file .*nope\.toml/);
  });

  it('a NATS creds or TLS file that cannot be read: exit 1, naming the file', () => {
    const missing = join(dir, 'missing.creds');
    const r = runWith({}, 'dnc', 'check', '+14155550100', '--nats-creds', missing);
    expect(r.status, r.stderr).toBe(1);
    oneLine(r.stderr);
    expect(r.stderr).toContain(
      `dialflow dnc check: cannot read the NATS creds file ${missing} (DIALFLOW_NATS_CREDS or --nats-creds): ENOENT`,
    );
    noTrace(r.stderr);
    const tls = runWith({ DIALFLOW_NATS_TLS_CA: join(dir, 'missing-ca.pem') }, 'flows', 'list');
    expect(tls.status).toBe(1);
    expect(tls.stderr).toMatch(/cannot read the NATS TLS CA certificate .*missing-ca\.pem/);
  });

  it('invalid settings in the environment: exit 2 naming the variable', () => {
    const r = runWith(
      { DIALFLOW_NATS_TOKEN: 't', DIALFLOW_NATS_USER: 'u', DIALFLOW_NATS_PASSWORD: 'p' },
      'flows',
      'list',
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/DIALFLOW_NATS_TOKEN, .* not several/);
  });
});
