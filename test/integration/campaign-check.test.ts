// Bad input through the CLI, against real Temporal and NATS: `campaign check` accounts for every row
// without touching NATS, a broken row costs only that row in `campaign start`, a flow over a limit is
// refused before a single recipient is staged, and report cells never run as spreadsheet formulas.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { CLI_BIN, freePort } from '../../src/dev/stack.js';
import { startEphemeralStack, type EphemeralStack } from '../../src/dev/ephemeral.js';
import { connectNats } from '../../src/telephony/nats.js';
import { NatsCampaignStore } from '../../src/store/campaigns.js';
import type { StagingSummary } from '../../src/campaign/recipients.js';
import type { CampaignStatus } from '../../src/workflows/messages.js';

const FLOW = new URL('../../examples/appointment-reminder.json', import.meta.url).pathname;

let t: EphemeralStack;
beforeAll(async () => {
  t = await startEphemeralStack();
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

const cli = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [CLI_BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...t.env, ...env },
    timeout: 300_000,
    maxBuffer: 64 * 1024 * 1024,
  });

const persona = (p: Record<string, unknown>) => `"${JSON.stringify(p).replace(/"/g, '""')}"`;
const answers = persona({ attempts: ['answered'], keys: ['1'] });
const phone = (i: number) => `+3859158${String(i).padStart(5, '0')}`;

function write(name: string, content: string | Buffer): string {
  const f = join(t.dataDir, name);
  writeFileSync(f, content);
  return f;
}

async function staged(campaignId: string): Promise<{ meta: unknown; firstPage: boolean }> {
  const nc = await connectNats(t.natsUrl, 'it-bad-input');
  try {
    const store = await NatsCampaignStore.open(nc);
    const firstPage = await store.getPage(campaignId, 0).then(
      () => true,
      () => false,
    );
    return { meta: await store.getMeta(campaignId), firstPage };
  } finally {
    await nc.close();
  }
}

/** Every problem kind: 14 data rows, 4 valid, 2 duplicates, 8 invalid (the blank line is no row). */
function everyProblem(): Buffer {
  const lines = [
    'id,phone,firstName,timeZone,persona',
    `a,${phone(1)},Ana,,`,
    `b,not-a-phone,Bo,,`,
    `,${phone(3)},Cy,,`,
    `d,${phone(4)},Di,Mars/Base,`,
    `e,${phone(5)},Ed,,{not json`,
    `a,${phone(6)},Al,,`,
    `f,${phone(1)},Fi,,`,
    `g,${phone(8)},G"u,,`,
    '',
    `h,${phone(10)},"Ha,,`,
    `i,${phone(11)},${'x'.repeat(70_000)},,`,
    `j,${phone(12)},Jo,Europe/Zagreb,`,
    `k,${phone(13)},Ko,,${persona({ attempts: ['busy'] })}`,
  ];
  return Buffer.concat([
    Buffer.from(`${lines.join('\n')}\n`),
    Buffer.from(`m,${phone(14)},`),
    Buffer.from([0xd6, 0x7a, 0x69, 0x6c]),
    Buffer.from(',,\n'),
    Buffer.from(`n,${phone(15)},Ni,,\n`),
  ]);
}

describe('dialflow campaign check', () => {
  it('every problem kind: rows = valid + duplicates + invalid, by code; exit 0; no NATS needed', async () => {
    const f = write('every-problem.csv', everyProblem());
    // A NATS address where nothing listens: a dry run never connects.
    const r = cli(['campaign', 'check', '--recipients', f, '--json'], {
      DIALFLOW_NATS_SERVERS: `nats://127.0.0.1:${await freePort()}`,
    });
    expect(r.status, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as StagingSummary & { problems: Array<{ row: number; code: string }> };
    expect({ rows: s.rows, valid: s.valid, duplicates: s.duplicates, invalid: s.invalid, byCode: s.byCode }).toEqual({
      rows: 14,
      valid: 4,
      duplicates: 2,
      invalid: 8,
      byCode: {
        'row.invalidPhone': 1,
        'row.missingColumn': 1,
        'row.invalidTimeZone': 1,
        'row.invalidPersona': 1,
        'row.duplicate': 2,
        'row.malformed': 3,
        'row.encoding': 1,
      },
    });
    expect(s.rows).toBe(s.valid + s.duplicates + s.invalid);
    expect(s.problems.map((p) => [p.row, p.code])).toEqual([
      [3, 'row.invalidPhone'],
      [4, 'row.missingColumn'],
      [5, 'row.invalidTimeZone'],
      [6, 'row.invalidPersona'],
      [7, 'row.duplicate'],
      [8, 'row.duplicate'],
      [9, 'row.malformed'],
      [11, 'row.malformed'],
      [12, 'row.malformed'],
      [15, 'row.encoding'],
    ]);

    const text = cli(['campaign', 'check', '--recipients', f]);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toContain('14 rows: 4 valid, 2 duplicates, 8 invalid (');
    expect(text.stderr).toMatch(/row 15: not UTF-8 .*\[row\.encoding\]/);
    expect(text.stderr).toMatch(/row 9: a stray quote.*\[row\.malformed\]/);
  });

  it('NDJSON is checked the same way', () => {
    const f = write(
      'check.ndjson',
      Buffer.concat([
        Buffer.from(
          `{"id":"a","phone":"${phone(1)}"}\nnot json\n{"id":"b","phone":"${phone(1)}"}\n{"id":"c","phone":"${phone(3)}","name":"`,
        ),
        Buffer.from([0xff]),
        Buffer.from('"}\n'),
      ]),
    );
    const r = cli(['campaign', 'check', '--recipients', f, '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      rows: 4,
      valid: 1,
      duplicates: 1,
      invalid: 2,
      byCode: { 'row.malformed': 1, 'row.duplicate': 1, 'row.encoding': 1 },
    });
  });

  it('an unreadable file is exit 2: missing, a directory, a header that is not UTF-8', () => {
    const d = join(t.dataDir, 'a-directory.csv');
    mkdirSync(d, { recursive: true });
    const header = write(
      'bad-header.csv',
      Buffer.concat([Buffer.from([0x69, 0x64, 0xff]), Buffer.from(`,phone\nr1,${phone(1)}\n`)]),
    );
    for (const f of [join(t.dataDir, 'missing.csv'), d, header]) {
      const r = cli(['campaign', 'check', '--recipients', f, '--json']);
      expect(r.status, `${f}: ${r.stderr}`).toBe(2);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});

describe('campaign start with bad input', () => {
  it('a stray quote on line 10,002 of 20,000 rows costs that row only (before: 7,646 staged, "1 rows skipped", exit 0)', async () => {
    const lines = ['id,phone,firstName,persona'];
    for (let i = 0; i < 20_000; i++)
      lines.push(
        lines.length + 1 === 10_002
          ? `s${i},${phone(20_000 + i)},"Ana,${answers}`
          : `s${i},${phone(20_000 + i)},Ana,${answers}`,
      );
    const f = write('stray-quote.csv', `${lines.join('\n')}\n`);
    const check = cli(['campaign', 'check', '--recipients', f, '--json']);
    expect(JSON.parse(check.stdout)).toMatchObject({
      rows: 20_000,
      valid: 19_999,
      duplicates: 0,
      invalid: 1,
      byCode: { 'row.malformed': 1 },
    });

    const r = cli([
      'campaign',
      'start',
      '--flow',
      FLOW,
      '--recipients',
      f,
      '--id',
      'stray-quote',
      '--speed',
      '1/day',
      '--json',
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ campaignId: 'stray-quote', recipients: 19_999, rejectedRows: 1 });
    expect(r.stderr).toMatch(/row 10002: .*\[row\.malformed\]/);
    expect(r.stderr).toContain('20000 rows: 19999 valid, 0 duplicates, 1 invalid (row.malformed 1)');
    const { meta } = await staged('stray-quote');
    expect(meta).toMatchObject({ staging: { rows: 20_000, accepted: 19_999, invalid: 1, pages: 40 } });
    expect(cli(['campaign', 'cancel', 'stray-quote']).status).toBe(0);
  }, 120_000);

  const recipients = () => write('few.csv', `id,phone,firstName,persona\nx1,${phone(50_001)},Ana,${answers}\n`);
  const example = readFileSync(FLOW);
  /** The example with one more variable: its default is free-form, so only the document limits bound it. */
  const withDefault = (value: unknown) => {
    const doc = JSON.parse(example.toString('utf8')) as { variables?: Record<string, unknown> };
    return {
      ...doc,
      variables: { ...doc.variables, notes: { type: typeof value === 'string' ? 'string' : 'object', default: value } },
    };
  };
  let nested: unknown = 'x';
  for (let i = 0; i < 2000; i++) nested = [nested];
  const at = example.indexOf('Press 1');
  const flows: Array<[string, string, () => Buffer]> = [
    // Before: validated, then `campaign start` failed 41 s in, after the recipients were staged.
    ['document.tooLarge', 'big.json', () => Buffer.from(JSON.stringify(withDefault('x'.repeat(50 * 2 ** 20))))],
    // Before: "Maximum call stack size exceeded".
    ['document.tooDeep', 'deep.json', () => Buffer.from(JSON.stringify(withDefault(nested)))],
    [
      'document.encoding',
      'latin1.json',
      () => Buffer.concat([example.subarray(0, at), Buffer.from([0xe9]), example.subarray(at)]),
    ],
  ];

  it.each(flows)(
    '%s: refused by validate (exit 1, the code in --json) and by campaign start before anything is staged',
    async (code, name, content) => {
      const flow = write(name, content());
      const v = cli(['validate', flow, '--json']);
      expect(v.status, v.stderr).toBe(1);
      const out = JSON.parse(v.stdout) as {
        ok: boolean;
        issues: Array<{ code: string; path: string; message: string }>;
      };
      expect(out.ok).toBe(false);
      expect(out.issues.map((i) => i.code)).toEqual([code]);
      expect(out.issues[0]).toMatchObject({ path: '', message: expect.any(String) as string });

      const id = `flow-${code.replace('.', '-')}`;
      const started = Date.now();
      const r = cli(['campaign', 'start', '--flow', flow, '--recipients', recipients(), '--id', id]);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(code);
      expect(r.stderr).not.toMatch(/Maximum call stack|\n\s+at /);
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(await staged(id)).toEqual({ meta: undefined, firstPage: false });
    },
    60_000,
  );
});

describe('campaign report', () => {
  it("a first name of =cmd|' /C calc'!A0 is neutralised in the CSV report", () => {
    const evil = "=cmd|' /C calc'!A0";
    const f = write(
      'formula.csv',
      [
        'id,phone,firstName,persona',
        `@r1,${phone(60_001)},${evil},${answers}`,
        `r2,${phone(60_002)},Ana,${answers}`,
      ].join('\n'),
    );
    const r = cli([
      'campaign',
      'start',
      '--flow',
      FLOW,
      '--recipients',
      f,
      '--id',
      'formula',
      '--speed',
      '6000/minute',
      '--follow',
      '--json',
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout) as CampaignStatus).toMatchObject({ state: 'completed', completed: 2 });
    const report = cli(['campaign', 'report', 'formula', '--csv']);
    expect(report.status, report.stderr).toBe(0);
    const rows = parseCsv(report.stdout, { columns: true }) as Array<Record<string, string>>;
    expect(rows.map((x) => [x.recipientId, x['dataPayload.firstName']])).toEqual([
      ["'@r1", `'${evil}`],
      ['r2', 'Ana'],
    ]);
    for (const x of rows) for (const cell of Object.values(x)) expect(cell).not.toMatch(/^[=+\-@\t\r]/);
  }, 120_000);
});
