// What every group of routes is given: the connections and the stores the server opened once.
import type { NatsConnection } from '@nats-io/transport-node';
import type { Client } from '@temporalio/client';
import type { Logger } from '../logging.js';
import type { EncryptionCodec } from '../codec/encryption.js';
import type { KvFlowStore } from '../store/flows.js';
import type { AudioAssetStore } from '../store/assets.js';
import type { AuditLog } from '../store/audit.js';
import type { ApiTokenStore } from '../store/tokens.js';

export interface ApiDeps {
  nc: NatsConnection;
  /** A Temporal client with dialflow's payload codec. */
  client: Client;
  /** The payload codec of that client: to decode histories read raw (transcripts). */
  codec: EncryptionCodec;
  /** The task queue of the call and campaign workers. */
  taskQueue: string;
  logger: Logger;
  tokens: ApiTokenStore;
  flows: KvFlowStore;
  assets: AudioAssetStore;
  audit: AuditLog;
  /** Simulations at once and waiting (each runs a test server process); the route's defaults when unset. */
  simulations?: { running: number; waiting: number };
}
