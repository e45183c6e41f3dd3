// `DIALFLOW_RECORD_HISTORIES=1 npx vitest run test/workflows` re-records test/histories/ for a
// release. Histories are stored decoded (test data, no secrets), so they replay without a key, with
// their workflow id (src/dev/histories.ts).
import type { PayloadCodec } from '@temporalio/common';
import { writeDecodedHistory, type HistorySource } from '../../src/dev/histories.js';

export const RECORD_HISTORIES = process.env.DIALFLOW_RECORD_HISTORIES === '1';

export async function recordHistory(name: string, handle: HistorySource, codec: PayloadCodec): Promise<void> {
  if (!RECORD_HISTORIES) return;
  await writeDecodedHistory(new URL(`../histories/${name}.json`, import.meta.url), handle, codec);
}
