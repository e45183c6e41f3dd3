// `dialflow dnc add|remove --file F`: one number per line, or CSV with the number in the first column.
// The line format is src/store/dnc.ts's, shared with the HTTP API's `POST /api/dnc/import`: each
// line is parsed on its own, so that one broken line is reported with its number and the others
// still count.
import { createReadStream } from 'node:fs';
import { isErrnoException } from '../config/errors.js';
import { readDoNotCallLines } from '../store/dnc.js';
import { CliError } from './errors.js';

export interface DoNotCallProblem {
  /** 1-based line number in the file. */
  line: number;
  message: string;
}

export interface DoNotCallFile {
  /** The numbers in E.164 (a line that is not a valid international number is a problem). */
  phones: string[];
  /** Lines that hold digits but no number in the first column, or are not CSV. */
  problems: DoNotCallProblem[];
}

export async function readDoNotCallFile(file: string): Promise<DoNotCallFile> {
  const phones: string[] = [];
  const problems: DoNotCallProblem[] = [];
  try {
    for await (const parsed of readDoNotCallLines(createReadStream(file))) {
      if ('phone' in parsed) phones.push(parsed.phone);
      else problems.push({ line: parsed.line, message: parsed.problem });
    }
  } catch (err) {
    if (!isErrnoException(err)) throw err;
    throw new CliError(`cannot read ${file}: ${err.code}`, 2, { cause: err });
  }
  return { phones, problems };
}
