// `dialflow dnc add|remove --file F`: one number per line, or CSV with the number in the first column.
// Each line is parsed on its own (csv-parse), so that one broken line is reported with its number
// and the others still count.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { CsvError } from 'csv-parse';
import { parse as parseCsv } from 'csv-parse/sync';
import { isErrnoException } from '../config/errors.js';
import { CliError } from './errors.js';

/** A phone number once spaces, dashes, dots and parentheses are gone (E.164 length, `+` optional). */
const PHONE = /^\+?[0-9]{3,15}$/;

export interface DoNotCallLine {
  /** 1-based line number in the file. */
  line: number;
  message: string;
}

export interface DoNotCallFile {
  /** The numbers as written (the list compares digits only). */
  phones: string[];
  /** Lines that hold digits but no number in the first column, or are not CSV. */
  problems: DoNotCallLine[];
}

export async function readDoNotCallFile(file: string): Promise<DoNotCallFile> {
  const phones: string[] = [];
  const problems: DoNotCallLine[] = [];
  let line = 0;
  try {
    for await (const text of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
      line += 1;
      // Blank lines, a header, comments: a line without a digit holds no number to act on.
      if (!/\d/.test(text)) continue;
      let first: string;
      try {
        const records = parseCsv(text, { bom: line === 1, relax_column_count: true, trim: true }) as string[][];
        first = records[0]?.[0] ?? '';
      } catch (err) {
        if (!(err instanceof CsvError)) throw err;
        problems.push({ line, message: `not a CSV line: ${err.message}` });
        continue;
      }
      if (PHONE.test(first.replace(/[\s().-]/g, ''))) phones.push(first);
      else
        problems.push({
          line,
          message: `${JSON.stringify(first.slice(0, 40))} is not a phone number (one number per line, or CSV with the number first)`,
        });
    }
  } catch (err) {
    if (!isErrnoException(err)) throw err;
    throw new CliError(`cannot read ${file}: ${err.code}`, 2, { cause: err });
  }
  return { phones, problems };
}
