// `dialflow dnc add|remove --file F`: numbers one per line or first in a CSV line; bad lines named.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readDoNotCallFile } from '../../src/cli/dnc-file.js';
import { CliError } from '../../src/cli/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'dialflow-dnc-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};

describe('readDoNotCallFile', () => {
  it('one number per line, or CSV with the number first, in E.164; a header and blank lines are skipped', async () => {
    const f = file(
      'list.csv',
      '\uFEFFphone,name\n+385 91 555 0001,Ana\r\n\n"+1 (415) 555-0100","Doe, John"\n+385915550002\n',
    );
    expect(await readDoNotCallFile(f)).toEqual({
      phones: ['+385915550001', '+14155550100', '+385915550002'],
      problems: [],
    });
  });

  it('reports each bad line with its number and keeps the good ones', async () => {
    const f = file('bad.csv', 'phone\nAna,+385915550001\n+385915550002\n"+38591555,x\n12\n+385915550003\n');
    const read = await readDoNotCallFile(f);
    expect(read.phones).toEqual(['+385915550002', '+385915550003']);
    expect(read.problems.map((p) => p.line)).toEqual([2, 4, 5]);
    expect(read.problems[0]?.message).toMatch(/"Ana" is not a valid international number/);
    expect(read.problems[1]?.message).toMatch(/not a CSV line/);
  });

  it('refuses national numbers and numbers no country has: the list is looked up by E.164 digits', async () => {
    const f = file('national.csv', '091 555 0000\n(415) 555-0100\n+999 123 4567\n+385 91 555 0004\n');
    const read = await readDoNotCallFile(f);
    expect(read.phones).toEqual(['+385915550004']);
    expect(read.problems.map((p) => p.line)).toEqual([1, 2, 3]);
    expect(read.problems[0]?.message).toMatch(/"091 555 0000" is not a valid international number/);
  });

  it('a file that cannot be read is a usage error (exit 2)', async () => {
    await expect(readDoNotCallFile(join(dir, 'missing.csv'))).rejects.toMatchObject({
      constructor: CliError,
      exitCode: 2,
      message: expect.stringMatching(/cannot read .*missing\.csv: ENOENT/),
    });
  });
});
