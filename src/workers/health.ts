// Liveness and readiness of a service process. Liveness (`/livez`, and `/healthz` for existing
// probes) says only that the process answers: restarting it would not help with an outage of NATS
// or Temporal. Readiness (`/readyz`) says whether it can do its work now: its NATS connection is up
// and answers a round trip, and Temporal answers, for the services that use it. A load balancer or
// Kubernetes takes an unready instance out of rotation instead of killing it.
import type { NatsConnection } from '@nats-io/transport-node';
import type { Connection } from '@temporalio/client';
import type { Logger } from '../logging.js';

export interface ReadinessCheck {
  name: string;
  /** Resolves when ready; rejects (or times out) with the reason otherwise. */
  check(): Promise<void>;
}

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, 'ok' | string>;
}

const CHECK_TIMEOUT_MS = 2_000;

class NotReadyError extends Error {
  override readonly name = 'NotReadyError';
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new NotReadyError(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export class Readiness {
  private readonly checks: ReadinessCheck[] = [];

  add(check: ReadinessCheck): void {
    this.checks.push(check);
  }

  async report(): Promise<ReadinessReport> {
    if (this.checks.length === 0) return { ready: false, checks: { service: 'starting' } };
    const results = await Promise.all(
      this.checks.map(async (c) => {
        try {
          await withTimeout(c.check(), CHECK_TIMEOUT_MS, c.name);
          return [c.name, 'ok'] as const;
        } catch (err) {
          return [c.name, err instanceof Error ? err.message : String(err)] as const;
        }
      }),
    );
    return { ready: results.every(([, r]) => r === 'ok'), checks: Object.fromEntries(results) };
  }
}

/**
 * NATS is ready when the connection is open, not between a disconnect and a reconnect, and a round
 * trip succeeds. `log` gets the disconnects and reconnects: the moments the service turned unready.
 */
export function natsReadiness(nc: NatsConnection, log?: Logger): ReadinessCheck {
  let disconnected = false;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        disconnected = true;
        log?.warn({ server: s.server }, 'disconnected from NATS');
      } else if (s.type === 'reconnect') {
        disconnected = false;
        log?.info({ server: s.server }, 'reconnected to NATS');
      }
    }
  })();
  return {
    name: 'nats',
    async check() {
      if (nc.isClosed()) throw new NotReadyError('the NATS connection is closed');
      if (disconnected) throw new NotReadyError('disconnected from NATS, reconnecting');
      await nc.flush();
    },
  };
}

/** Temporal is ready when its frontend answers. */
export function temporalReadiness(connection: Connection): ReadinessCheck {
  return {
    name: 'temporal',
    async check() {
      await connection.withDeadline(Date.now() + CHECK_TIMEOUT_MS, () => connection.workflowService.getSystemInfo({}));
    },
  };
}
