// `DIALFLOW_RECORD_HISTORIES=1 npx vitest run test/workflows` re-records test/histories/ for a
// release. Histories are stored decoded (test data, no secrets), so they replay without a key. Call
// ids embed the workflow id, so a replay must run under the recorded id: it is stored with the history.
import { writeFileSync } from 'node:fs';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import type { PayloadCodec } from '@temporalio/common';
import { decodeHistory } from '../../src/codec/encryption.js';

export const RECORD_HISTORIES = process.env.DIALFLOW_RECORD_HISTORIES === '1';

export async function recordHistory(
  name: string,
  handle: { workflowId: string; fetchHistory: () => Promise<Parameters<typeof historyToJSON>[0]> },
  codec: PayloadCodec,
): Promise<void> {
  if (!RECORD_HISTORIES) return;
  const history = await decodeHistory(await handle.fetchHistory(), codec);
  writeFileSync(
    new URL(`../histories/${name}.json`, import.meta.url),
    `{"workflowId":${JSON.stringify(handle.workflowId)},"history":${historyToJSON(history)}}\n`,
  );
}
