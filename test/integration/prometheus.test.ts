// Monitoring: Debian's Prometheus scrapes a running worker, bridge and simulator; the deploy/
// config and alert rules pass promtool (syntax and rule unit tests).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../src/dev/stack.js';
import { startEphemeralStack, type EphemeralStack } from '../../src/dev/ephemeral.js';
import { toolPaths, PROJECT_ROOT } from '../../src/config/tools.js';
import { startCall } from '../../src/client/calls.js';
import { parseFlow } from '../../src/flow/validate.js';

const promtool = (...args: string[]) =>
  spawnSync(toolPaths().promtool ?? 'promtool', args, { encoding: 'utf8', cwd: PROJECT_ROOT });

describe('promtool', () => {
  it('deploy/prometheus.yml and the dev config are valid', () => {
    for (const f of ['deploy/prometheus.yml', 'deploy/prometheus-dev.yml']) {
      const r = promtool('check', 'config', f);
      expect(r.status, r.stdout + r.stderr).toBe(0);
    }
  });
  it('deploy/alerts.yml is valid and its unit tests pass', () => {
    const check = promtool('check', 'rules', 'deploy/alerts.yml');
    expect(check.status, check.stdout + check.stderr).toBe(0);
    const tests = promtool('test', 'rules', 'deploy/alerts.test.yml');
    expect(tests.status, tests.stdout + tests.stderr).toBe(0);
  });
});

let t: EphemeralStack;
let prometheus: string;
beforeAll(async () => {
  t = await startEphemeralStack({ metrics: true });
  const targets = Object.entries(t.services).map(([service, s]) => ({
    service,
    target: new URL(s.metricsUrl ?? '').host,
  }));
  const config = join(t.dataDir, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global: { scrape_interval: 1s }',
      'scrape_configs:',
      ...targets.flatMap(({ service, target }) => [
        `  - job_name: dialflow-${service}`,
        `    static_configs: [{ targets: ['${target}'] }]`,
      ]),
    ].join('\n'),
  );
  prometheus = (
    await t.stack.startPrometheus({
      port: await freePort(),
      configFile: config,
      dataDir: join(t.dataDir, 'prometheus'),
    })
  ).url;
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

async function query(q: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
  const res = await fetch(`${prometheus}/api/v1/query?query=${encodeURIComponent(q)}`);
  const body = (await res.json()) as {
    status: string;
    data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
  };
  expect(body.status).toBe('success');
  return body.data.result;
}

async function eventually<T>(f: () => Promise<T>, ok: (v: T) => boolean, ms = 30_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v) || Date.now() > until) return v;
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe('Prometheus scrapes dialflow', () => {
  it('call, dial, bridge and Temporal SDK metrics arrive through the query API, with bounded labels', async () => {
    const flow = parseFlow(
      JSON.parse(readFileSync(new URL('../../examples/appointment-reminder.json', import.meta.url), 'utf8')),
    );
    const campaignId = 'prom-test';
    const personas = [
      { attempts: ['answered'], keys: ['1'] },
      { attempts: ['busy'] },
      { attempts: ['answered'], keys: ['2'] },
    ];
    const handles = await Promise.all(
      personas.map((persona, i) =>
        startCall(t.client, {
          flow,
          campaignId,
          taskQueue: t.config.temporal.taskQueue,
          recipient: { id: `p${i}`, phone: `+38591557${String(1000 + i)}` },
          hints: { persona },
        }),
      ),
    );
    await Promise.all(handles.map((h) => h.result()));

    const up = await eventually(
      () => query('up{job=~"dialflow-.*"}'),
      (r) => r.length === 3 && r.every((x) => x.value[1] === '1'),
    );
    expect(up.map((x) => x.metric.job).sort()).toEqual(['dialflow-bridge', 'dialflow-simulator', 'dialflow-worker']);
    const completed = await eventually(
      () => query(`sum by (outcome) (dialflow_calls_completed_total{campaign="${campaignId}"})`),
      (r) => r.reduce((n, x) => n + Number(x.value[1]), 0) === 3,
    );
    expect(Object.fromEntries(completed.map((x) => [x.metric.outcome, Number(x.value[1])]))).toEqual({
      answered: 2,
      busy: 1,
    });
    expect(await query(`dialflow_dial_attempts_total{campaign="${campaignId}", reason="first"}`)).not.toHaveLength(0);
    const latency = await eventually(
      () => query('sum(dialflow_event_to_signal_seconds_count)'),
      (r) => Number(r[0]?.value[1] ?? 0) > 0,
    );
    // One observation per signal: every call had at least one; a signal carries one event or more
    // (events held for the call's next event travel with it).
    const signalled = await query('sum(dialflow_bridge_events_total{result="signalled"})');
    expect(Number(latency[0]?.value[1])).toBeGreaterThanOrEqual(3);
    expect(Number(latency[0]?.value[1])).toBeLessThan(Number(signalled[0]?.value[1]));
    // The Temporal SDK's own runtime metrics, served on the worker's /metrics.
    const sdk = await eventually(
      () => query('{__name__=~"temporal_.*", job="dialflow-worker"}'),
      (r) => r.length > 0,
    );
    expect(sdk.length).toBeGreaterThan(0);
    // No phone numbers, call ids or digits in any dialflow label.
    const series = await query('{__name__=~"dialflow_.*"}');
    for (const s of series)
      for (const [k, v] of Object.entries(s.metric)) expect(`${k}=${v}`).not.toMatch(/38591557|\+\d{6,}|~|call:/);
  }, 90_000);
});
