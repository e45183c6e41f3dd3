// Does this process hold the key the workers decrypt with? A client with another key (or none)
// would start workflows whose first task every worker refuses, and the call would never run. There
// is no way to ask a worker directly, but Temporal shows who polls a task queue: each worker puts
// the ids of its keys into its poller identity (`… dialflow keys=sha256:…,sha256:…`), and a client
// reads them with DescribeTaskQueue before it starts anything. Key ids are hashes of the keys (see
// encryption.ts) and already sit in every payload's metadata: naming them reveals nothing.
import { hostname } from 'node:os';
import type { Connection } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time.js';
// CommonJS package: its named exports are not visible to Node's ESM loader.
import protos from '@temporalio/proto';
import type { EncryptionCodec } from './encryption.js';

const { temporal } = protos;

const KEYS_MARK = ' dialflow keys=';
/**
 * Pollers seen within this window count. A polling worker renews its entry at least every long
 * poll (about a minute); the server remembers stopped pollers for minutes, and those must not
 * speak for a key that was rotated away.
 */
export const POLLER_WINDOW_MS = 2 * 60_000;

export class PayloadKeyMismatchError extends Error {
  override readonly name = 'PayloadKeyMismatchError';
  constructor(
    readonly clientKeyId: string,
    readonly workerKeyIds: string[],
    readonly taskQueue: string,
  ) {
    super(
      `this process encrypts with payload key ${clientKeyId}, which the workers on task queue ${taskQueue} do not have (they use ${workerKeyIds.join(', ')}): they would refuse everything it starts. ` +
        "Use the workers' key (DIALFLOW_PAYLOAD_KEY or DIALFLOW_PAYLOAD_KEY_FILE); nothing was started",
    );
  }
}

/** A worker's identity: the SDK's default (pid@host) plus the ids of every key it decrypts. */
export function workerIdentity(codec: Pick<EncryptionCodec, 'keyIds'>, base = `${process.pid}@${hostname()}`): string {
  return `${base}${KEYS_MARK}${codec.keyIds.join(',')}`;
}

/** The key ids a poller identity advertises, or undefined for a worker that does not say. */
export function identityKeyIds(identity: string): string[] | undefined {
  const at = identity.lastIndexOf(KEYS_MARK);
  if (at < 0) return undefined;
  const ids = identity
    .slice(at + KEYS_MARK.length)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => /^sha256:[0-9a-f]{16}$/.test(s));
  return ids.length > 0 ? ids : undefined;
}

export interface WorkerKeys {
  identity: string;
  keyIds: string[];
}

/** The workers polling a task queue for workflow tasks lately, with the keys they advertise. */
export async function workerKeys(
  connection: Connection,
  namespace: string,
  taskQueue: string,
  now = Date.now(),
): Promise<WorkerKeys[]> {
  const r = await connection.workflowService.describeTaskQueue({
    namespace,
    taskQueue: { name: taskQueue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  const out: WorkerKeys[] = [];
  for (const p of r.pollers ?? []) {
    const identity = p.identity ?? '';
    const keyIds = identityKeyIds(identity);
    const seen = p.lastAccessTime ? tsToMs(p.lastAccessTime) : 0;
    if (keyIds && now - seen <= POLLER_WINDOW_MS) out.push({ identity, keyIds });
  }
  return out;
}

/**
 * Throw unless every worker that advertises keys can decrypt what `clientKeyId` encrypts. A task
 * may go to any of them, so one worker without the key is enough to stall a workflow. No
 * advertising worker (none running, or an older version): nothing to compare, nothing thrown.
 */
export function checkWorkerKeys(clientKeyId: string, workers: WorkerKeys[], taskQueue: string): void {
  const lacking = workers.filter((w) => !w.keyIds.includes(clientKeyId));
  if (lacking.length === 0) return;
  const theirs = [...new Set(lacking.map((w) => w.keyIds[0] ?? '').filter(Boolean))];
  throw new PayloadKeyMismatchError(clientKeyId, theirs, taskQueue);
}

/** The key ids the workers of a task queue use (current key first), for naming in an error. */
export function currentWorkerKeyIds(workers: WorkerKeys[]): string[] {
  return [...new Set(workers.map((w) => w.keyIds[0] ?? '').filter(Boolean))];
}
