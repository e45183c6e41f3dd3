// deploy/: the files parse, name the services and kinds the README promises, and every dialflow
// metric the dashboard and the alerts use is one the code defines (a rename breaks this test).
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { PROJECT_ROOT } from '../../src/config/tools.js';

const read = (f: string) => readFileSync(join(PROJECT_ROOT, f), 'utf8');

/** Metric names defined in src/ (prom-client `name: 'dialflow_…'`), plus prom-client's process metrics. */
function definedMetrics(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string) => {
    for (const e of readdirSync(join(PROJECT_ROOT, dir), { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.name.endsWith('.ts'))
        for (const m of read(join(dir, e.name)).matchAll(/name: '(dialflow_[a-z_]+)'/g)) names.add(m[1] ?? '');
    }
  };
  walk('src');
  return names;
}

function usedMetrics(text: string): string[] {
  return [
    ...new Set([...text.matchAll(/\b(dialflow_[a-z_]+?)(?:_bucket|_count|_sum)?\b/g)].map((m) => m[1] ?? '')),
  ].filter((n) => !n.startsWith('dialflow_process_') && !n.startsWith('dialflow_nodejs_'));
}

describe('deploy/', () => {
  it('docker-compose has Temporal on PostgreSQL, the UI, three NATS nodes, the workers, the API, Prometheus and Grafana', () => {
    const compose = parse(read('deploy/docker-compose.yml')) as {
      services: Record<string, { image?: string; command?: string[] }>;
    };
    expect(Object.keys(compose.services).sort()).toEqual([
      'api',
      'bridge',
      'grafana',
      'nats-1',
      'nats-2',
      'nats-3',
      'postgresql',
      'prometheus',
      'simulator',
      'temporal',
      'temporal-ui',
      'worker',
    ]);
    expect(compose.services.temporal?.image).toMatch(/temporalio\/auto-setup/);
    for (const n of [1, 2, 3])
      expect(read(`deploy/nats/nats-${n}.conf`)).toMatch(/jetstream[\s\S]*cluster[\s\S]*nats-route:\/\/nats-3:6222/);
  });

  it('Kubernetes: worker and bridge Deployments with HPAs, the API behind a Service; Helm values parse', () => {
    const docs = parseAllDocuments(read('deploy/k8s/dialflow.yaml')).map(
      (d) => d.toJS() as { kind: string; metadata: { name: string } },
    );
    expect(
      docs
        .filter((d) => d.kind === 'Deployment')
        .map((d) => d.metadata.name)
        .sort(),
    ).toEqual(['dialflow-api', 'dialflow-bridge', 'dialflow-worker']);
    expect(docs.filter((d) => d.kind === 'Service').map((d) => d.metadata.name)).toEqual(['dialflow-api']);
    expect(
      docs
        .filter((d) => d.kind === 'HorizontalPodAutoscaler')
        .map((d) => d.metadata.name)
        .sort(),
    ).toEqual(['dialflow-bridge', 'dialflow-worker']);
    expect(
      (parse(read('deploy/helm/temporal-values.yaml')) as { server: { config: { numHistoryShards: number } } }).server
        .config.numHistoryShards,
    ).toBeGreaterThan(0);
    expect(
      (parse(read('deploy/helm/nats-values.yaml')) as { config: { jetstream: { enabled: boolean } } }).config.jetstream
        .enabled,
    ).toBe(true);
  });

  it('Kubernetes: the payload key is an existing Secret the manifests reference but never ship (a re-apply cannot overwrite a real key)', () => {
    const files = readdirSync(join(PROJECT_ROOT, 'deploy/k8s')).filter((f) => /\.ya?ml$/.test(f));
    const docs = files.flatMap((f) =>
      parseAllDocuments(read(`deploy/k8s/${f}`)).map(
        (d) => d.toJS() as { kind?: string; metadata?: { name?: string } } | null,
      ),
    );
    expect(docs.filter((d) => d?.kind === 'Secret').map((d) => d?.metadata?.name)).toEqual([]);
    const manifest = read('deploy/k8s/dialflow.yaml');
    expect(manifest).not.toMatch(/REPLACE_WITH|CHANGEME/);
    // Every pod takes the key from that Secret, and does not start without it.
    const refs = [...manifest.matchAll(/secretKeyRef: \{([^}]*)\}/g)].map((m) => m[1] ?? '');
    expect(refs.length).toBeGreaterThanOrEqual(2);
    for (const r of refs.filter((x) => x.includes('dialflow-payload-key'))) expect(r).toMatch(/optional: false/);
    const deployments = docs.filter((d) => d?.kind === 'Deployment').length;
    expect(refs.filter((x) => x.includes('dialflow-payload-key')).length).toBe(deployments);
    // The comment tells the operator how to create it.
    expect(manifest).toMatch(/kubectl -n dialflow create secret generic dialflow-payload-key --from-literal=key=/);
  });

  it('the dashboard and the alert rules only use metrics the code defines', () => {
    const defined = definedMetrics();
    expect(defined.size).toBeGreaterThan(10);
    const dashboard = JSON.parse(read('deploy/grafana/dialflow-dashboard.json')) as {
      panels: Array<{ targets: Array<{ expr: string }> }>;
    };
    expect(dashboard.panels.length).toBeGreaterThanOrEqual(8);
    const used = usedMetrics(
      [read('deploy/alerts.yml'), ...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr))].join('\n'),
    );
    expect(used.length).toBeGreaterThan(8);
    expect(used.filter((n) => !defined.has(n))).toEqual([]);
  });
});
