// A call's history as a file: decoded (readable without the key) and stored with its workflow id,
// because call ids embed the workflow id and a replay must run under the recorded one. The
// recorded histories in test/histories/ and the drills' `DRILL_HISTORIES` use this form.
import { writeFileSync } from 'node:fs';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import type { PayloadCodec } from '@temporalio/common';
import { decodeHistory } from '../codec/encryption.js';

export interface HistorySource {
  workflowId: string;
  fetchHistory: () => Promise<Parameters<typeof historyToJSON>[0]>;
}

export async function writeDecodedHistory(
  file: string | URL,
  handle: HistorySource,
  codec: PayloadCodec,
): Promise<void> {
  const history = await decodeHistory(await handle.fetchHistory(), codec);
  writeFileSync(file, `{"workflowId":${JSON.stringify(handle.workflowId)},"history":${historyToJSON(history)}}\n`);
}
