// deploy/grafana/trellis-dashboard.json is built on the metrics the product exports (Grafana itself is no
// dependency): every PromQL expression of every panel and variable names only metrics that the product's
// own constructors register — the control plane's (xDS, convergence, Kubernetes mode, CA, webhooks,
// injection, build info, config objects) and the agent's certificate metrics — with `_bucket`, `_sum` and
// `_count` only on histograms, label matchers and `by (…)` only on labels those metrics have (or the
// target labels Prometheus adds), and every legend's `{{label}}` among them.
import test from 'ava';
import fs from 'node:fs';
import { Registry, type Metric } from 'prom-client';
import { CaMetrics } from '../../control-plane/ca/metrics.js';
import { registerBuildInfo, registerConfigObjects } from '../../control-plane/config-metrics.js';
import { XdsMetrics } from '../../control-plane/metrics.js';
import type { MeshSnapshot } from '../../control-plane/model/snapshot.js';
import { KubeModeMetrics } from '../../control-plane/sources/metrics.js';
import { webhookMetrics } from '../../control-plane/webhook/metrics.js';
import { convergenceMetrics } from '../../control-plane/xds/convergence.js';
import { injectorMetrics } from '../../injector/metrics.js';
import { CertificateManager } from '../../sidecar/certificate-manager.js';

const DASHBOARD = new URL('../../deploy/grafana/trellis-dashboard.json', import.meta.url);

/** Labels Prometheus adds to every scraped series, and the bucket label of histograms. */
const TARGET_LABELS = new Set(['instance', 'job']);

interface Exported {
  readonly type: string;
  readonly labels: ReadonlySet<string>;
}

/** Every metric the product registers, by the names a query can use (histogram series included). */
function exportedMetrics(): Map<string, Exported> {
  const controlPlane = new Registry();
  new XdsMetrics({ registry: controlPlane });
  new KubeModeMetrics(controlPlane);
  new CaMetrics(controlPlane);
  injectorMetrics(controlPlane);
  webhookMetrics(controlPlane);
  convergenceMetrics(controlPlane);
  registerBuildInfo(controlPlane, 'local');
  registerConfigObjects(controlPlane, { current: () => ({}) as MeshSnapshot, ready: () => false });
  const agent = new Registry();
  // Only constructed, for its metrics: never started, so its issuer is never called.
  new CertificateManager({
    issuer: { createCertificate: () => Promise.reject(new Error('not called')) },
    identity: { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'default' },
    registry: agent,
  });
  const out = new Map<string, Exported>();
  for (const registry of [controlPlane, agent]) {
    for (const metric of registry.getMetricsAsArray() as unknown as (Metric & {
      name: string;
      type: string;
      labelNames?: string[];
    })[]) {
      const labels = new Set([...(metric.labelNames ?? []), ...TARGET_LABELS]);
      const type = String(metric.type);
      out.set(metric.name, { type, labels });
      if (type === 'histogram') {
        out.set(`${metric.name}_bucket`, { type: 'histogram-series', labels: new Set([...labels, 'le']) });
        out.set(`${metric.name}_sum`, { type: 'histogram-series', labels });
        out.set(`${metric.name}_count`, { type: 'histogram-series', labels });
      }
    }
  }
  return out;
}

interface Query {
  readonly where: string;
  readonly expr: string;
  readonly legend?: string;
}

interface PanelJson {
  title?: string;
  panels?: PanelJson[];
  targets?: { expr?: string; legendFormat?: string; refId?: string }[];
}

function queriesOf(dashboard: {
  panels: PanelJson[];
  templating: { list: { name: string; query?: unknown; definition?: string }[] };
}): Query[] {
  const out: Query[] = [];
  const walk = (panels: readonly PanelJson[]): void => {
    for (const p of panels) {
      for (const target of p.targets ?? []) {
        out.push({ where: `panel "${p.title}" ${target.refId}`, expr: target.expr ?? '', legend: target.legendFormat });
      }
      walk(p.panels ?? []);
    }
  };
  walk(dashboard.panels);
  for (const v of dashboard.templating.list) {
    const q = v.query as { query?: string } | string | undefined;
    const expr = typeof q === 'string' ? q : q?.query;
    if (expr && expr !== 'prometheus') out.push({ where: `variable $${v.name}`, expr });
  }
  return out;
}

/** `label_values(metric, label)`, Grafana's variable query, as the PromQL it stands for. */
function promql(expr: string): string {
  return expr.replace(/label_values\(\s*([a-z_:][a-z0-9_:]*)\s*,\s*([a-z_][a-z0-9_]*)\s*\)/gi, 'count by ($2) ($1)');
}

/** Every problem with one query: unknown metrics, histogram series of non-histograms, unknown labels. */
function problems(query: Query, exported: ReadonlyMap<string, Exported>): string[] {
  const expr = promql(query.expr);
  const out: string[] = [];
  const metrics = [...expr.matchAll(/\b(trellis_[a-z0-9_]+)\b/g)].map((m) => m[1]!);
  if (metrics.length === 0) out.push('names no trellis_ metric');
  const known = metrics.flatMap((m) => {
    const e = exported.get(m);
    if (!e) out.push(`${m} is not a metric the product exports`);
    return e ? [e] : [];
  });
  const labels = new Set(known.flatMap((e) => [...e.labels]));
  // Matchers: metric{label op "value", …}.
  for (const [, metric, body] of expr.matchAll(/\b(trellis_[a-z0-9_]+)\{([^}]*)\}/g)) {
    for (const [, label] of body!.matchAll(/([a-z_][a-z0-9_]*)\s*(?:=~|!~|!=|=)/g)) {
      if (!exported.get(metric!)?.labels.has(label!)) out.push(`${metric} has no label ${label}`);
    }
  }
  // Aggregations: by (a, b) / without (…).
  for (const [, list] of expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) {
    for (const label of list!
      .split(',')
      .map((l) => l.trim())
      .filter(Boolean)) {
      if (!labels.has(label)) out.push(`by (${label}): no metric of the query has that label`);
    }
  }
  for (const [, label] of (query.legend ?? '').matchAll(/\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}/g)) {
    if (!labels.has(label!)) out.push(`legend {{${label}}}: no metric of the query has that label`);
  }
  return out.map((p) => `${query.where}: ${p} (${query.expr})`);
}

test('every expression of the Grafana dashboard names only exported metrics and their labels', (t) => {
  const dashboard = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')) as Parameters<typeof queriesOf>[0];
  const exported = exportedMetrics();
  const queries = queriesOf(dashboard);
  t.true(queries.length >= 20, `only ${queries.length} queries`);
  t.deepEqual(
    queries.flatMap((q) => problems(q, exported)),
    [],
  );
  // The dashboard covers what issue 12 names: convergence, config objects by state, injections, webhook
  // latency, build info, and the push/ACK/NACK counters.
  const all = queries.map((q) => q.expr).join('\n');
  for (const name of [
    'trellis_xds_convergence_seconds_bucket',
    'trellis_config_objects',
    'trellis_injections_total',
    'trellis_webhook_duration_seconds_bucket',
    'trellis_build_info',
    'trellis_xds_pushes_total',
    'trellis_xds_acks_total',
    'trellis_xds_nacks_total',
  ]) {
    t.true(all.includes(name), `${name} is on no panel`);
  }
});

test('the checker catches an unknown metric, a histogram series of a counter and an unknown label', (t) => {
  const exported = exportedMetrics();
  const check = (expr: string, legend?: string): string[] => problems({ where: 'q', expr, legend }, exported);
  t.deepEqual(check('sum by (type) (rate(trellis_xds_pushes_total[5m]))', '{{type}}'), []);
  t.is(check('rate(trellis_xds_pushs_total[5m])').length, 1);
  t.is(check('rate(trellis_xds_pushes_total_bucket[5m])').length, 1);
  t.is(check('trellis_xds_pushes_total{typ="CDS"}').length, 1);
  t.is(check('sum by (path) (trellis_xds_pushes_total)').length, 1);
  t.is(check('sum(trellis_xds_pushes_total)', '{{kind}}').length, 1);
  t.is(check('up').length, 1);
  t.deepEqual(check('label_values(trellis_build_info, instance)'), []);
});
