// What the demo prints: the live view (redrawn every second in a terminal) and the JSON summary of
// `--json`. Both read only the running demo's state (run.ts) and its stats (stats.ts).
import path from 'node:path';
import type { RunningDemo, WorkloadState } from './run.js';
import { summariseServices, type AggregateSummary, type ServiceSummary } from './stats.js';

/** Seconds of traffic the live view's table covers. */
export const VIEW_WINDOW_SECONDS = 5;

export interface DemoSummary {
  readonly durationSeconds: number;
  /** Calls the load loop made through the frontend (one per frontend → reviews call). */
  readonly calls: number;
  readonly services: Readonly<Record<string, ServiceSummary>>;
  /** Per server Pod: the caller identities its TLS handshakes proved ("" would be a plaintext caller). */
  readonly servers: Readonly<
    Record<string, { readonly app: string; readonly version: string; readonly peers: Record<string, number> }>
  >;
  readonly workloads: readonly {
    readonly pod: string;
    readonly app: string;
    readonly version: string;
    readonly spiffeId: string;
    readonly certificate: { readonly serial: string; readonly notAfter: string; readonly rotations: number } | null;
  }[];
  readonly controlPlane: { readonly xds: string; readonly secure: string; readonly debug: string };
  readonly tracing: string | null;
  /** `/call` requests the load loop could not make (the frontend did not answer). */
  readonly loadErrors: number;
}

export function summary(demo: RunningDemo, now = Date.now()): DemoSummary {
  const services = summariseServices(demo.stats.total);
  const byPod = new Map(demo.workloads.map((w) => [w.pod, w]));
  return {
    durationSeconds: Math.round((now - demo.startedAt) / 100) / 10,
    calls: services.reviews?.requests ?? 0,
    services,
    servers: Object.fromEntries(
      [...demo.stats.peers].sort().map(([pod, peers]) => [
        pod,
        {
          app: byPod.get(pod)?.app ?? '',
          version: byPod.get(pod)?.version ?? '',
          peers: Object.fromEntries([...peers].sort()),
        },
      ]),
    ),
    workloads: demo.workloads.map((w) => {
      const cert = w.certificate();
      return {
        pod: w.pod,
        app: w.app,
        version: w.version,
        spiffeId: w.spiffeId(),
        certificate: cert
          ? { serial: cert.serial, notAfter: cert.notAfter.toISOString(), rotations: cert.rotations }
          : null,
      };
    }),
    controlPlane: {
      xds: `127.0.0.1:${demo.controlPlane.xdsPort}`,
      secure: `127.0.0.1:${demo.controlPlane.securePort}`,
      debug: `http://127.0.0.1:${demo.controlPlane.monitoringPort}/debug/`,
    },
    tracing: demo.otlpEndpoint ?? null,
    loadErrors: demo.stats.loadErrors,
  };
}

const pad = (s: string, n: number): string => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number): string => (s.length >= n ? s : ' '.repeat(n - s.length) + s);
const ms = (v: number | null): string => (v === null ? '-' : v < 10 ? `${v.toFixed(1)} ms` : `${Math.round(v)} ms`);

function duration(msLeft: number): string {
  if (msLeft <= 0) return 'EXPIRED';
  const s = Math.floor(msLeft / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(s % 60).padStart(2, '0')}s`;
}

/** One table row: calls and retries per second, errors as a share of the calls (with their gRPC codes). */
function row(name: string, agg: AggregateSummary, seconds: number, share: string): string {
  const errors =
    agg.failures === 0
      ? '0'
      : `${((100 * agg.failures) / agg.requests).toFixed(1)}% ${Object.keys(agg.failureCodes).join(',')}`;
  return [
    pad(name, 14),
    lpad((agg.requests / seconds).toFixed(0), 8),
    lpad(share, 8),
    lpad(errors, 20),
    lpad((agg.retries / seconds).toFixed(1), 10),
    lpad(ms(agg.p50Ms), 10),
    lpad(ms(agg.p99Ms), 10),
  ].join(' ');
}

function peersOf(demo: RunningDemo, w: WorkloadState): string {
  const peers = demo.stats.peers.get(w.pod);
  if (!peers || peers.size === 0) return w.app === 'frontend' ? '(client only)' : '-';
  return [...peers]
    .sort()
    .map(([id, n]) => `${id === '' ? 'PLAINTEXT' : id.replace(/^spiffe:\/\/[^/]+\//, '')} ×${n}`)
    .join(', ');
}

/** Services in the order of the Pods that serve them (workloads.yaml: frontend, reviews, ratings). */
function inCallOrder(demo: RunningDemo, services: Record<string, ServiceSummary>): [string, ServiceSummary][] {
  const order = [...new Set(demo.workloads.map((w) => w.app))];
  const rank = (name: string): number => (order.includes(name) ? order.indexOf(name) : order.length);
  return Object.entries(services).sort((a, b) => rank(a[0]) - rank(b[0]) || a[0].localeCompare(b[0]));
}

/** The live view: a screenful of text. */
export function renderView(demo: RunningDemo, now = Date.now()): string {
  const lines: string[] = [];
  const cp = demo.controlPlane;
  const debug = `http://127.0.0.1:${cp.monitoringPort}`;
  const snap = cp.snapshot();
  const up = Math.round((now - demo.startedAt) / 1000);
  lines.push(`Trellis demo: a proxyless gRPC mesh with mutual TLS on this machine   up ${up} s   (Ctrl-C stops it)`);
  lines.push('');
  lines.push(
    `config      ${path.relative(process.cwd(), demo.configDir) || '.'}/*.yaml   (edit and save: the view follows)`,
  );
  const problems = cp.problems();
  lines.push(
    `            ${snap ? `mesh snapshot ${String(snap.version)} at ${new Date(snap.time).toLocaleTimeString()}` : 'no snapshot yet'}, ${problems.length === 0 ? 'no problems' : `${problems.length} problem(s), the object keeps its last good version:`}`,
  );
  for (const p of problems.slice(-3)) lines.push(`              ${p.replace(/^.*\/mesh\/config\//, '')}`);
  lines.push(
    `control     xDS + CA 127.0.0.1:${cp.xdsPort} (plaintext, local)   xDS + CA over mTLS 127.0.0.1:${cp.securePort}`,
  );
  lines.push(
    `plane       ${debug}/debug/proxies   ${debug}/debug/config_dump?proxy=frontend-0.demo   ${debug}/metrics`,
  );
  lines.push(`            npx trellis proxy-status --control-plane ${debug}`);
  lines.push(
    `traces      ${demo.otlpEndpoint ? `→ ${demo.otlpEndpoint} (OTLP: the apps’ gRPC spans, one trace per call)` : 'off   (npm start -- --jaeger <OTLP endpoint>, or set OTEL_EXPORTER_OTLP_ENDPOINT)'}`,
  );
  lines.push('');

  const recent = inCallOrder(demo, summariseServices(demo.stats.recent(VIEW_WINDOW_SECONDS)));
  const seconds = VIEW_WINDOW_SECONDS + 1;
  lines.push(
    [
      pad(`last ${VIEW_WINDOW_SECONDS} s`, 14),
      lpad('calls/s', 8),
      lpad('share', 8),
      lpad('errors', 20),
      lpad('retries/s', 10),
      lpad('p50', 10),
      lpad('p99', 10),
    ].join(' '),
  );
  if (recent.length === 0) lines.push('  (no calls in the last seconds)');
  for (const [service, s] of recent) {
    lines.push(row(service, s, seconds, ''));
    for (const [subset, agg] of Object.entries(s.subsets)) {
      lines.push(row(`  ${subset || '(failed)'}`, agg, seconds, subset ? `${(agg.share * 100).toFixed(1)}%` : ''));
    }
  }
  const totals = inCallOrder(demo, summariseServices(demo.stats.total))
    .map(([service, s]) => `${service} ${s.requests} calls, ${s.failures} failed, ${s.retries} retries`)
    .join('; ');
  lines.push(`since start: ${totals || 'no calls yet'}`);
  if (demo.stats.loadErrors > 0) {
    lines.push(
      `load loop: ${demo.stats.loadErrors} failed /call requests, last: ${demo.stats.lastLoadError.slice(0, 100)}`,
    );
  }
  lines.push('');

  lines.push(
    `${pad('pod', 14)} ${pad('SPIFFE ID (from its certificate)', 44)} ${pad('cert expires', 13)} agent /healthz/ready    callers seen by its server (mTLS)`,
  );
  for (const w of demo.workloads) {
    const cert = w.certificate();
    const expiry = cert
      ? `in ${duration(cert.notAfter.getTime() - now)}${cert.rotations ? ` (${cert.rotations} rot.)` : ''}`
      : 'none yet';
    lines.push(
      `${pad(w.pod, 14)} ${pad(w.spiffeId(), 44)} ${pad(expiry, 13)} ${pad(`127.0.0.1:${w.healthPort}`, 22)} ${peersOf(demo, w)}`,
    );
  }
  lines.push('');
  lines.push(`logs        ${demo.logDir}/   frontend admin ${demo.frontendAdmin}/call?n=10`);
  return lines.join('\n');
}
