// How many copies a NATS cluster keeps of dialflow's streams, KV buckets and object stores.
// Set once at process start from DIALFLOW_NATS_REPLICAS (1 for a single server, 3 for a cluster);
// a module setting, because every store creates its bucket on first open.
let replicas = 1;

export function setStorageReplicas(n: number): void {
  replicas = n;
}

export function storageReplicas(): number {
  return replicas;
}
