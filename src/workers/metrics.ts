// A /metrics endpoint per worker process (prom-client).
import { createServer, type Server } from 'node:http';
import { LRUCache } from 'lru-cache';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { InjectedSinks } from '@temporalio/worker';
import type { DialflowSinks } from '../workflows/sinks.js';
import type { Readiness } from './health.js';
import type { Logger } from '../logging.js';

export function createRegistry(process: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ process });
  collectDefaultMetrics({ register: registry, prefix: 'dialflow_' });
  return registry;
}

/**
 * `/metrics`, `/livez` (also `/healthz`) and `/readyz` of one process. `extra`: another exposition
 * appended to ours (the Temporal SDK's own Prometheus exporter).
 */
export async function startMetricsServer(
  registry: Registry,
  host: string,
  port: number,
  extra?: () => string | undefined,
  readiness?: Readiness,
  log?: Logger,
): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.url === '/metrics' || req.url?.startsWith('/metrics?')) {
      Promise.all([registry.metrics(), fetchExtra(extra?.())])
        .then(([ours, theirs]) => {
          const body = theirs ? `${ours}\n${theirs}` : ours;
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(body);
        })
        .catch((err: unknown) => {
          log?.warn({ err }, 'cannot serve /metrics');
          res.writeHead(500);
          res.end(String(err));
        });
      return;
    }
    if (req.url === '/readyz') {
      void (readiness?.report() ?? Promise.resolve({ ready: true, checks: {} })).then((r) => {
        res.writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json' });
        res.end(JSON.stringify(r));
      });
      return;
    }
    const live = req.url === '/livez' || req.url === '/healthz';
    res.writeHead(live ? 200 : 404);
    res.end(live ? 'ok' : 'not found');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  const bound = typeof addr === 'object' && addr ? addr.port : port;
  return { url: `http://${host}:${bound}/metrics`, close: () => new Promise((r) => server.close(() => r())) };
}

/**
 * The workflow metrics sinks, backed by prom-client. Labels are bounded: flow id, campaign id,
 * outcome and error code, never phone numbers, call ids or digits. Not called on replay.
 */
export function workflowMetricSinks(registry: Registry): InjectedSinks<DialflowSinks> {
  const started = new Counter({
    name: 'dialflow_calls_started_total',
    help: 'Calls started',
    labelNames: ['flow', 'campaign', 'direction'],
    registers: [registry],
  });
  const completed = new Counter({
    name: 'dialflow_calls_completed_total',
    help: 'Calls completed, by outcome',
    labelNames: ['flow', 'campaign', 'direction', 'outcome'],
    registers: [registry],
  });
  const dials = new Counter({
    name: 'dialflow_dial_attempts_total',
    help: 'Dial attempts; reason is `first` or the error code that caused the retry',
    labelNames: ['flow', 'campaign', 'reason'],
    registers: [registry],
  });
  const progress = new Gauge({
    name: 'dialflow_campaign_recipients',
    help: 'Campaign progress by state of its recipients',
    labelNames: ['campaign', 'state'],
    registers: [registry],
  });
  const running = new Gauge({
    name: 'dialflow_campaign_running',
    help: '1 while a campaign is running (0 paused, cancelled or completed)',
    labelNames: ['campaign'],
    registers: [registry],
  });
  const budget = new Gauge({
    name: 'dialflow_campaign_calling_speed_per_minute',
    help: 'Calling speed budget of a campaign',
    labelNames: ['campaign'],
    registers: [registry],
  });
  const waits = new Counter({
    name: 'dialflow_campaign_wait_seconds_total',
    help: 'Time the dispatcher waited, by reason (speed, concurrency, window)',
    labelNames: ['campaign', 'kind'],
    registers: [registry],
  });
  const opts = { callDuringReplay: false } as const;
  const seen = new OnceSet(200_000);
  return {
    metrics: {
      callStarted: {
        ...opts,
        fn: (info, flow, campaign, direction) => {
          if (seen.first(`s:${info.runId}`)) started.inc({ flow, campaign, direction });
        },
      },
      callCompleted: {
        ...opts,
        fn: (info, flow, campaign, direction, outcome) => {
          if (seen.first(`c:${info.runId}`)) completed.inc({ flow, campaign, direction, outcome });
        },
      },
      dialAttempt: {
        ...opts,
        fn: (info, flow, campaign, reason, commandId) => {
          if (seen.first(`d:${info.runId}:${commandId}`)) dials.inc({ flow, campaign, reason });
        },
      },
      campaignProgress: {
        ...opts,
        fn: (_info, campaign, s) => {
          for (const state of ['placed', 'completed', 'inFlight', 'remaining', 'waitingForWindow'] as const)
            progress.set({ campaign, state }, s[state]);
          running.set({ campaign }, s.state === 'running' ? 1 : 0);
          budget.set({ campaign }, s.callsPerMinute);
        },
      },
      campaignWait: { ...opts, fn: (_info, campaign, kind, seconds) => waits.inc({ campaign, kind }, seconds) },
    },
  };
}

/** The SDK's exposition; without it (not up yet, slow, gone) /metrics still serves ours. */
async function fetchExtra(url: string | undefined): Promise<string | undefined> {
  if (!url) return undefined;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return res.ok ? await res.text() : undefined;
  } catch (err) {
    // fetch reports network failures as TypeError, the timeout as a DOMException.
    if (!(err instanceof TypeError) && !(err instanceof DOMException && err.name === 'TimeoutError')) throw err;
    return undefined;
  }
}

/** Remembers the last `capacity` keys: `first(key)` is true the first time a key is seen. */
class OnceSet {
  private readonly keys: LRUCache<string, true>;
  constructor(capacity: number) {
    this.keys = new LRUCache({ max: capacity });
  }
  first(key: string): boolean {
    if (this.keys.has(key)) return false;
    this.keys.set(key, true);
    return true;
  }
}
