// The example application of examples/kubernetes/ in local mode, every part a real process: `trellis
// control-plane` on a directory of YAML (with its CA), one `trellis agent --proxy-type grpc` per workload
// (certificates, bootstrap, local xDS proxy), and the apps (frontend, reviews v1/v2/v3, ratings) as the
// same code the cluster runs, on the agents' bootstraps, under a mesh-wide STRICT PeerAuthentication.
// The apps export traces to a real Jaeger (OTEL_EXPORTER_OTLP_ENDPOINT). The test drives the frontend's
// HTTP admin port. Shown: one call is one trace across frontend, reviews and ratings; every hop is mutual
// TLS with the right SPIFFE IDs; an 80/20 VirtualService gives 80/20 over 1,000 calls, and 50/50 moves it; ratings failing every
// second call: failures without a retry policy, none with one; a timeout on ratings fires.
import test from 'ava';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import type { LoadSummary } from '../../examples/kubernetes/apps/load.js';
import {
  backendManifests,
  destinationRuleManifest,
  freePorts,
  MeshDir,
  namespaceManifest,
  serviceManifest,
  virtualServiceManifest,
  type Manifest,
} from '../helpers/mesh-e2e.js';
import { startJaeger, type Jaeger } from '../helpers/cluster.js';
import { startLocalGrpcAgent, startTrellis, type TrellisProcess } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';
import { startApp, type AppProcess } from './app-process.js';

const NS = 'bookstore';
const PORT = 9080;
const id = (sa: string): string => `spiffe://cluster.local/ns/${NS}/sa/${sa}`;

interface Workload {
  readonly pod: string;
  readonly app: 'frontend' | 'reviews' | 'ratings';
  readonly version: string;
}

const WORKLOADS: readonly Workload[] = [
  { pod: 'frontend-0', app: 'frontend', version: 'v1' },
  { pod: 'reviews-v1', app: 'reviews', version: 'v1' },
  { pod: 'reviews-v2', app: 'reviews', version: 'v2' },
  { pod: 'reviews-v3', app: 'reviews', version: 'v3' },
  { pod: 'ratings-0', app: 'ratings', version: 'v1' },
];

let tmp: string;
let mesh: MeshDir;
let cp: TrellisProcess;
let securePort: number;
const agents = new Map<string, TrellisProcess>();
const bootstraps = new Map<string, string>();
const apps = new Map<string, AppProcess>();
const ports = new Map<string, number>();
let adminPort: number;
let jaeger: Jaeger;

function tokenOf(w: Workload): string {
  return `token-of-${w.pod}-0123456789abcdef`;
}

function reviewsRouting(v1: number, v2: number): Manifest[] {
  return [
    destinationRuleManifest('reviews', NS, {
      host: 'reviews',
      subsets: ['v1', 'v2', 'v3'].map((v) => ({ name: v, labels: { version: v } })),
    }),
    virtualServiceManifest('reviews', NS, {
      hosts: ['reviews'],
      http: [
        {
          route: [
            { destination: { host: 'reviews', subset: 'v1' }, weight: v1 },
            { destination: { host: 'reviews', subset: 'v2' }, weight: v2 },
          ],
        },
      ],
    }),
  ];
}

async function startAgent(w: Workload): Promise<void> {
  const { proc, bootstrapPath } = await startLocalGrpcAgent(
    {
      securePort,
      workDir: tmp,
      token: tokenOf(w),
      namespace: NS,
      serviceAccount: w.app,
      podName: w.pod,
      labels: `app=${w.app},version=${w.version}`,
    },
    60_000,
  );
  agents.set(w.pod, proc);
  bootstraps.set(w.pod, bootstrapPath);
}

async function startWorkloadApp(w: Workload, extra: readonly string[] = []): Promise<AppProcess> {
  const env = {
    GRPC_XDS_BOOTSTRAP: bootstraps.get(w.pod)!,
    POD_NAME: w.pod,
    VERSION: w.version,
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${jaeger.otlpGrpcPort}`,
    OTEL_BSP_SCHEDULE_DELAY: '200',
  };
  if (w.app === 'frontend') {
    const app = startApp(w.pod, ['frontend', '--admin-host', '127.0.0.1', '--admin-port', '0'], env);
    apps.set(w.pod, app);
    const line = await app.waitForLog((l) => l.msg === 'frontend admin listening');
    adminPort = Number(String(line.admin).split(':').pop());
    return app;
  }
  const app = startApp(w.pod, [w.app, '--host', '127.0.0.1', '--port', String(ports.get(w.pod)), ...extra], env);
  apps.set(w.pod, app);
  await app.waitForLog((l) => l.msg === 'serving', 90_000);
  return app;
}

async function call(query: string): Promise<LoadSummary> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/call?${query}`);
  if (res.status !== 200) throw new Error(`/call?${query}: ${res.status} ${await res.text()}`);
  return (await res.json()) as LoadSummary;
}

function share(s: LoadSummary, version: string): number {
  return (100 * (s.byVersion[version] ?? 0)) / s.calls;
}

test.before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-example-local-'));
  jaeger = await startJaeger({ dir: await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-example-jaeger-')) });
  mesh = await MeshDir.create();
  const free = await freePorts(WORKLOADS.length + 3);
  WORKLOADS.forEach((w, i) => ports.set(w.pod, free[i]!));
  securePort = free[WORKLOADS.length]!;
  await fs.writeFile(
    path.join(tmp, 'tokens.yaml'),
    YAML.stringify(WORKLOADS.map((w) => ({ token: tokenOf(w), namespace: NS, serviceAccount: w.app }))),
  );
  await mesh.write('namespaces', [namespaceManifest(NS), namespaceManifest('trellis-system')]);
  for (const service of ['reviews', 'ratings'] as const) {
    await mesh.write(service, [
      serviceManifest(service, NS, PORT),
      ...WORKLOADS.filter((w) => w.app === service).flatMap((w) =>
        backendManifests(service, NS, { pod: w.pod, port: ports.get(w.pod)!, labels: { version: w.version } }),
      ),
    ]);
  }
  await mesh.write('reviews-routing', reviewsRouting(80, 20));
  await mesh.write('mtls', [
    {
      apiVersion: 'security.trellis.dev/v1alpha1',
      kind: 'PeerAuthentication',
      metadata: { name: 'default', namespace: 'trellis-system' },
      spec: { mtls: { mode: 'STRICT' } },
    },
  ]);
  cp = startTrellis([
    'control-plane',
    '--config-dir',
    mesh.dir,
    '--state-dir',
    path.join(tmp, 'state'),
    '--tokens-file',
    path.join(tmp, 'tokens.yaml'),
    '--xds-port',
    String(free[WORKLOADS.length + 1]),
    '--secure-port',
    String(securePort),
    '--monitoring-port',
    String(free[WORKLOADS.length + 2]),
    '--debounce-after',
    '20ms',
  ]);
  await cp.waitForLog((l) => l.msg === 'control plane listening', 60_000);
  await Promise.all(WORKLOADS.map(startAgent));
  await Promise.all(WORKLOADS.map((w) => startWorkloadApp(w)));
  // The whole chain answers (every client has its config).
  await waitFor(
    'a first successful call through frontend → reviews → ratings',
    async () => (await call('n=1')).ok === 1,
    60_000,
  );
});

test.after.always(async () => {
  await Promise.all([...apps.values()].map((a) => a.stop()));
  await Promise.all([...agents.values()].map((a) => a.stop()));
  await cp?.stop();
  await jaeger?.stop();
  await mesh?.cleanup();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

interface JaegerTrace {
  readonly traceID: string;
  readonly spans: { readonly operationName: string; readonly processID: string }[];
  readonly processes: Record<string, { readonly serviceName: string }>;
}

test.serial('one call is one trace: frontend → reviews → ratings', async (t) => {
  await call('n=1&product=traced-book');
  const trace = await waitFor(
    'a trace with spans of frontend, reviews and ratings in Jaeger',
    async () => {
      const res = await fetch(`${jaeger.queryUrl}/api/traces?service=ratings&lookback=1h&limit=100`);
      if (!res.ok) return undefined;
      const data = ((await res.json()) as { data: JaegerTrace[] | null }).data ?? [];
      return data.find((tr) => {
        const services = new Set(tr.spans.map((s) => tr.processes[s.processID]?.serviceName));
        return services.has('frontend') && services.has('reviews') && services.has('ratings');
      });
    },
    60_000,
  );
  const ops = trace.spans.map((s) => `${trace.processes[s.processID]?.serviceName}:${s.operationName}`).sort();
  t.log(ops.join(', '));
  t.true(ops.includes('frontend:grpc.trellis.examples.Reviews/GetReviews'), ops.join(', '));
  t.true(ops.includes('ratings:grpc.trellis.examples.Ratings/GetRating'), ops.join(', '));
});

test.serial('every hop is mutual TLS: each server sees its caller SPIFFE ID, each client its server', async (t) => {
  const s = await call('n=100&concurrency=10');
  t.is(s.ok, 100, JSON.stringify(s.failures));
  t.deepEqual(s.callers.reviews, { [id('frontend')]: 100 });
  t.deepEqual(s.callers.ratings, { [id('reviews')]: 100 });
  t.deepEqual(s.servers.reviews, { [id('reviews')]: 100 });
  t.deepEqual(s.servers.ratings, { [id('ratings')]: 100 });
  t.deepEqual(s.ratingsFailures, {});
});

test.serial('an 80/20 VirtualService: 80/20 within ±5 points over 1,000 calls; 50/50 moves it', async (t) => {
  const s = await call('n=1000&concurrency=20');
  t.log(`80/20: ${JSON.stringify(s.byVersion)} in ${s.durationMs} ms, p50 ${s.latencyMs.p50} ms`);
  t.is(s.ok, 1000, JSON.stringify(s.failures));
  t.true(Math.abs(share(s, 'v1') - 80) <= 5, `v1 ${share(s, 'v1')}%`);
  t.true(Math.abs(share(s, 'v2') - 20) <= 5, `v2 ${share(s, 'v2')}%`);
  t.is(s.byVersion.v3, undefined);

  const edited = Date.now();
  await mesh.write('reviews-routing', reviewsRouting(50, 50));
  // Under 80/20, ≥ 40 of 100 calls on v2 has probability < 1e-6: this is the new split.
  const moved = await waitFor(
    'the split to move to 50/50',
    async () => {
      const w = await call('n=100&concurrency=10');
      return share(w, 'v2') >= 40 ? w : undefined;
    },
    30_000,
  );
  t.log(`moved ${Date.now() - edited} ms after the edit: ${JSON.stringify(moved.byVersion)}`);
  const after = await call('n=1000&concurrency=20');
  t.true(Math.abs(share(after, 'v1') - 50) <= 5, `v1 ${share(after, 'v1')}%`);
  t.true(Math.abs(share(after, 'v2') - 50) <= 5, `v2 ${share(after, 'v2')}%`);
});

function ratingsRouting(http: Record<string, unknown>): Manifest[] {
  return [
    virtualServiceManifest('ratings', NS, {
      hosts: ['ratings'],
      http: [{ route: [{ destination: { host: 'ratings' } }], ...http }],
    }),
  ];
}

test.serial('ratings failing every second call: failures with retries off, none with a retry policy', async (t) => {
  const ratings = WORKLOADS.find((w) => w.app === 'ratings')!;
  await mesh.write('ratings-routing', ratingsRouting({ retries: { attempts: 0 } }));
  await apps.get(ratings.pod)!.stop();
  await startWorkloadApp(ratings, ['--fail-every', '2']);
  // Calls one at a time: ratings fails its 1st, 3rd, 5th… call, so without retries exactly half fail.
  const without = await waitFor(
    'reviews to meet the failures',
    async () => {
      const s = await call('n=40&concurrency=1');
      return s.ratingsFailures.UNAVAILABLE === 20 ? s : undefined;
    },
    30_000,
  );
  t.log(`retries off: ${JSON.stringify(without.ratingsFailures)} ${JSON.stringify(without.ratingsFailureDetails)}`);
  t.is(without.ok, 40, 'reviews answers without stars when ratings fails');
  t.is(without.retries, 0);

  await mesh.write('ratings-routing', ratingsRouting({ retries: { attempts: 3, retryOn: 'unavailable' } }));
  const saved = await waitFor(
    'the retry policy to save every call',
    async () => {
      const s = await call('n=40&concurrency=1');
      return s.ok === 40 && Object.keys(s.ratingsFailures).length === 0 ? s : undefined;
    },
    30_000,
  );
  t.log(`retry policy: ${saved.ok} ok, ${saved.retries} retries in ${saved.retriedCalls} calls`);
  // Every call's first attempt meets a failure (the count alternates), but perhaps the very first one.
  t.true(saved.retriedCalls >= 39, `${saved.retriedCalls} calls retried`);
  t.is(saved.retries, saved.retriedCalls);
});

test.serial('a 300 ms timeout on ratings fires when ratings answers after 2 s', async (t) => {
  const ratings = WORKLOADS.find((w) => w.app === 'ratings')!;
  await mesh.write('ratings-routing', ratingsRouting({ timeout: '0.3s' }));
  await apps.get(ratings.pod)!.stop();
  await startWorkloadApp(ratings, ['--delay-ms', '2000']);
  const s = await waitFor(
    'ratings calls to end at the timeout',
    async () => {
      const r = await call('n=5&concurrency=5&deadlineMs=10000');
      return r.ratingsFailures.DEADLINE_EXCEEDED === 5 ? r : undefined;
    },
    30_000,
  );
  // The frontend's deadline is 10 s and reviews passes it on: DEADLINE_EXCEEDED here is the route's timeout.
  t.is(s.ok, 5);
  t.log(`timeout: ${JSON.stringify(s.ratingsFailureDetails)}, slowest call ${s.latencyMs.max} ms`);
});

test.serial(
  'PERMISSIVE and back to STRICT on live servers: plaintext, then mTLS again, and no process dies',
  async (t) => {
    const ratings = WORKLOADS.find((w) => w.app === 'ratings')!;
    await mesh.remove('ratings-routing');
    await apps.get(ratings.pod)!.stop();
    await startWorkloadApp(ratings);
    const strictWrite = (await fs.readFile(path.join(mesh.dir, 'mtls.yaml'), 'utf8')).toString();
    // No PeerAuthentication: PERMISSIVE, which a proxyless server serves as plaintext.
    await mesh.remove('mtls');
    const plain = await waitFor(
      'every hop in plaintext',
      async () => {
        const s = await call('n=20&concurrency=5');
        return s.ok === 20 && s.callers.reviews['(plaintext)'] === 20 && s.callers.ratings['(plaintext)'] === 20
          ? s
          : undefined;
      },
      60_000,
    );
    t.deepEqual(plain.servers.reviews, { '(plaintext)': 20 });
    // STRICT again: the live servers switch to mTLS (grpc-js-xds used to crash on this change).
    await fs.writeFile(path.join(mesh.dir, 'mtls.yaml'), strictWrite);
    await waitFor(
      'every hop on mTLS again',
      async () => {
        const s = await call('n=20&concurrency=5');
        return s.ok === 20 && s.callers.reviews[id('frontend')] === 20 && s.callers.ratings[id('reviews')] === 20;
      },
      60_000,
    );
    for (const [pod, app] of apps) t.is(app.child.exitCode, null, `${pod} is still running`);
  },
);
