// The do-not-call list as the CLI (`dialflow dnc`) and the HTTP API manage it: the NATS KV bucket
// the compliance gate reads (NatsCampaignStore.isDoNotCall, src/store/campaigns.ts), with what was
// added when, by whom and why; and the line format of do-not-call files (one number per line, or
// CSV with the number first), read line by line so that one broken line is reported with its
// number, the others still count, and a file of a million numbers never sits whole in memory.
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { CsvError } from 'csv-parse';
import { parse as parseCsv } from 'csv-parse/sync';
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { storageReplicas } from './replicas.js';
import { normaliseInternationalNumber, phoneKey } from './phones.js';

/** The KV bucket of the list, keyed by a number's digits (phoneKey). */
export const DNC_BUCKET = 'dialflow_dnc';

/** One line of a do-not-call file: a number to act on (in E.164), or why the line holds none. */
export type DoNotCallLine = { line: number; phone: string } | { line: number; problem: string };

/** One line's number, or its problem; undefined for a line without a digit (blank, header, comment). */
export function parseDoNotCallLine(text: string, line: number): DoNotCallLine | undefined {
  if (!/\d/.test(text)) return undefined;
  let first: string;
  try {
    const records = parseCsv(text, { bom: line === 1, relax_column_count: true, trim: true }) as string[][];
    first = records[0]?.[0] ?? '';
  } catch (err) {
    if (!(err instanceof CsvError)) throw err;
    return { line, problem: `not a CSV line: ${err.message}` };
  }
  // As the routes and one-off calls take a number: international and valid, else the gate's lookup
  // (by the E.164 digits of the number dialled) would never find it.
  const phone = normaliseInternationalNumber(first);
  if (phone) return { line, phone };
  return {
    line,
    problem: `${JSON.stringify(first.slice(0, 40))} is not a valid international number (E.164, e.g. +14155550100; one number per line, or CSV with the number first)`,
  };
}

/** The numbers and problems of a do-not-call file, line by line, as the input arrives. */
export async function* readDoNotCallLines(input: Readable): AsyncGenerator<DoNotCallLine> {
  let line = 0;
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    line += 1;
    const parsed = parseDoNotCallLine(text, line);
    if (parsed) yield parsed;
  }
}

/** A listed number: when it was added, and by whom and why when that was said. */
export interface DoNotCallEntry {
  addedAt: string;
  by?: string;
  reason?: string;
}

/**
 * The list's one writer (the API, the CLI, and NatsCampaignStore, whose gate reads it), keyed by
 * phoneKey: `+1 (415) 555-0100` and `+14155550100` are one number.
 */
export class DoNotCallList {
  private constructor(private readonly kv: KV) {}

  /** The list, its bucket created with its settings when it does not exist yet. */
  static async open(nc: NatsConnection): Promise<DoNotCallList> {
    return new DoNotCallList(await new Kvm(nc).create(DNC_BUCKET, { history: 1, replicas: storageReplicas() }));
  }

  /** Whether a number is listed, without reading its entry (the gate asks this before every dial). */
  async has(phone: string): Promise<boolean> {
    const e = await this.kv.get(phoneKey(phone));
    return Boolean(e && e.operation === 'PUT');
  }

  /** The entry of a listed number, or undefined when it is not listed. */
  async get(phone: string): Promise<DoNotCallEntry | undefined> {
    const e = await this.kv.get(phoneKey(phone));
    if (!e || e.operation !== 'PUT') return undefined;
    const text = e.string();
    // Entries written before reasons were kept hold just the time they were added.
    if (!text.startsWith('{')) return { addedAt: text };
    return JSON.parse(text) as DoNotCallEntry;
  }

  async add(phone: string, details: { by?: string; reason?: string } = {}): Promise<DoNotCallEntry> {
    const entry: DoNotCallEntry = { addedAt: new Date().toISOString(), ...details };
    await this.kv.put(phoneKey(phone), JSON.stringify(entry));
    return entry;
  }

  /** Unlists a number; false when it was not listed. */
  async remove(phone: string): Promise<boolean> {
    if (!(await this.get(phone))) return false;
    await this.kv.delete(phoneKey(phone));
    return true;
  }
}
