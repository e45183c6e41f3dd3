// Published flow versions. A version, once published, never changes: publishing different content
// under an existing version is refused. Calls embed the flow they start with, so publishing a new
// version never changes calls already running; each call reports the flow id and version it runs.
import { storageReplicas } from './replicas.js';
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { parseFlow } from '../flow/validate.js';
import { isWrongLastSequence } from './nats-errors.js';
import type { Flow } from '../flow/schema.js';

export class FlowVersionConflictError extends Error {
  override readonly name = 'FlowVersionConflictError';
}

export interface FlowStore {
  /** Publish a validated flow; `created` is false when the same content was already published. */
  publish(flow: Flow): Promise<{ id: string; version: number; created: boolean }>;
  /** A version, or the latest when `version` is omitted. */
  get(id: string, version?: number): Promise<Flow | undefined>;
  versions(id: string): Promise<number[]>;
  list(): Promise<Array<{ id: string; latest: number }>>;
  /** The flow whose startIncomingCall answers `number` (set when that flow is published). */
  route(number: string): Promise<string | undefined>;
}

export const FLOWS_BUCKET = 'dialflow_flows';
export const ROUTES_BUCKET = 'dialflow_routes';
const routeKey = (number: string) => number.replace(/^\+/, '');
const versionKey = (id: string, v: number) => `${id}.v${v}`;
const latestKey = (id: string) => `${id}.latest`;

export class KvFlowStore implements FlowStore {
  private constructor(
    private readonly kv: KV,
    private readonly routes: KV,
  ) {}
  static async open(nc: NatsConnection): Promise<KvFlowStore> {
    const kvm = new Kvm(nc);
    return new KvFlowStore(
      await kvm.create(FLOWS_BUCKET, { history: 1, replicas: storageReplicas() }),
      await kvm.create(ROUTES_BUCKET, { history: 1, replicas: storageReplicas() }),
    );
  }

  async route(number: string): Promise<string | undefined> {
    const e = await this.routes.get(routeKey(number));
    return e && e.operation === 'PUT' ? e.string() : undefined;
  }

  async publish(flow: Flow): Promise<{ id: string; version: number; created: boolean }> {
    const body = JSON.stringify(flow);
    const key = versionKey(flow.id, flow.version);
    try {
      await this.kv.create(key, body);
    } catch (err) {
      // The version exists: the same content is a repeated publish, other content a conflict.
      if (!isWrongLastSequence(err)) throw err;
      const existing = await this.kv.get(key);
      if (!existing || existing.operation !== 'PUT') throw err;
      if (existing.string() !== body)
        throw new FlowVersionConflictError(
          `version ${flow.version} of flow "${flow.id}" is already published with different content: publish the change as version ${(await this.latest(flow.id)) + 1}`,
        );
      return { id: flow.id, version: flow.version, created: false };
    }
    // Move `latest` forward only (compare-and-set, so concurrent publishers cannot move it back).
    for (let i = 0; i < 10; i++) {
      const cur = await this.kv.get(latestKey(flow.id));
      const latest = cur && cur.operation === 'PUT' ? Number(cur.string()) : 0;
      if (latest >= flow.version) break;
      try {
        if (cur) await this.kv.update(latestKey(flow.id), String(flow.version), cur.revision);
        else await this.kv.create(latestKey(flow.id), String(flow.version));
        break;
      } catch (err) {
        // Another publisher moved it in between: read it again.
        if (!isWrongLastSequence(err)) throw err;
      }
    }
    // Inbound numbers route to this flow (its latest version is taken when a call arrives).
    for (const el of flow.elements)
      if (el.type === 'startIncomingCall') await this.routes.put(routeKey(el.number), flow.id);
    return { id: flow.id, version: flow.version, created: true };
  }

  private async latest(id: string): Promise<number> {
    const e = await this.kv.get(latestKey(id));
    return e && e.operation === 'PUT' ? Number(e.string()) : 0;
  }

  async get(id: string, version?: number): Promise<Flow | undefined> {
    const v = version ?? (await this.latest(id));
    if (!v) return undefined;
    const e = await this.kv.get(versionKey(id, v));
    return e && e.operation === 'PUT' ? parseFlow(e.json()) : undefined;
  }

  async versions(id: string): Promise<number[]> {
    const out: number[] = [];
    // NATS wildcards match whole tokens: list `{id}.*` and keep the `v{n}` keys.
    for await (const k of await this.kv.keys(`${id}.*`)) {
      const m = /\.v(\d+)$/.exec(k);
      if (m) out.push(Number(m[1]));
    }
    return out.sort((a, b) => a - b);
  }

  async list(): Promise<Array<{ id: string; latest: number }>> {
    const out: Array<{ id: string; latest: number }> = [];
    for await (const k of await this.kv.keys('*.latest')) {
      const id = k.slice(0, -'.latest'.length);
      out.push({ id, latest: await this.latest(id) });
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }
}
