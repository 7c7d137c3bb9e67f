// `npm run bench -- translate`: the cost of translating a mesh into the full config of one proxy
// (control-plane/translate/generator.ts generateResources: CDS + EDS + LDS + RDS), for an Envoy sidecar
// and for a proxyless gRPC application, on synthetic meshes built in code (no files): `--services` Services
// (default 100 and 1,000) spread over 10 namespaces, each with one gRPC port, `--endpoints` endpoints
// (Pods with version labels v1/v2), one VirtualService (90/10 split, retries, timeout) and one
// DestinationRule (subsets v1/v2, connection pool, outlier detection). Reported per mesh and proxy type:
// generation time (fresh, no memo), encoding time and bytes (every resource serialized once, as the
// resource cache does for the first proxy), resources per type; plus building the snapshot itself and a
// memo hit of meshGenerator (what each further proxy of the same shape costs).
// Anchor (performance-anchors.md): a full CDS+LDS+RDS for a 100-service mesh ≤ 10 ms.
import { parseArgs } from 'node:util';
import { formatIssue, validateRoutingResource } from '../crds/validator.js';
import { encodeAny, packAny, shortTypeName, TypeUrl, type Message } from '../control-plane/envoy/protos.js';
import { buildSnapshot } from '../control-plane/model/build-snapshot.js';
import type { MeshObject } from '../control-plane/model/objects.js';
import type { MeshSnapshot } from '../control-plane/model/snapshot.js';
import { defaultMeshConfig } from '../control-plane/translate/context.js';
import { buildClusters } from '../control-plane/translate/clusters.js';
import { buildLoadAssignments } from '../control-plane/translate/endpoints.js';
import { edsClusterNames, generateResources, meshGenerator } from '../control-plane/translate/generator.js';
import { buildListeners } from '../control-plane/translate/listeners.js';
import { buildRouteConfigurations } from '../control-plane/translate/routes.js';
import type { ProxyInfo, ProxyType } from '../control-plane/xds/node.js';
import {
  fmt,
  fmtBytes,
  fmtInt,
  summarize,
  type Benchmark,
  type BenchResult,
  type Progress,
  type Table,
} from './report.js';

const USAGE = `npm run bench -- translate [--services 100,1000] [--endpoints 10] [--iterations 20]`;
const NAMESPACES = 10;
const TYPES = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration];

function object(kind: MeshObject['kind'], namespace: string, name: string, body: Record<string, unknown>): MeshObject {
  return { kind, namespace, name, object: body, origin: {} } as MeshObject;
}

/** The synthetic mesh: services × endpoints, one VS and DR per service. */
export function syntheticMesh(services: number, endpoints: number): MeshObject[] {
  const objects: MeshObject[] = [];
  for (let n = 0; n < NAMESPACES; n++) {
    objects.push(
      object('Namespace', '', `ns-${n}`, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: `ns-${n}` } }),
    );
  }
  for (let i = 0; i < services; i++) {
    const ns = `ns-${i % NAMESPACES}`;
    const name = `svc-${String(i).padStart(4, '0')}`;
    const meta = (n: string, extra: Record<string, unknown> = {}) => ({ name: n, namespace: ns, ...extra });
    objects.push(
      object('Service', ns, name, {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: meta(name, { labels: { app: name } }),
        spec: {
          selector: { app: name },
          clusterIP: `10.96.${Math.floor(i / 250)}.${i % 250}`,
          ports: [{ name: 'grpc', port: 8080, targetPort: 8080 }],
        },
      }),
    );
    const sliceEndpoints: unknown[] = [];
    for (let e = 0; e < endpoints; e++) {
      const pod = `${name}-${e}`;
      const version = e === endpoints - 1 ? 'v2' : 'v1';
      objects.push(
        object('Pod', ns, pod, {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: meta(pod, { labels: { app: name, version, 'trellis.dev/tlsMode': 'mesh' } }),
          spec: { serviceAccountName: name, containers: [{ name: 'app', image: 'app' }] },
        }),
      );
      sliceEndpoints.push({
        addresses: [`10.${1 + Math.floor(i / 250)}.${i % 250}.${e + 1}`],
        conditions: { ready: true },
        zone: `zone-${e % 3}`,
        targetRef: { kind: 'Pod', namespace: ns, name: pod },
      });
    }
    objects.push(
      object('EndpointSlice', ns, `${name}-slice`, {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: meta(`${name}-slice`, { labels: { 'kubernetes.io/service-name': name } }),
        addressType: 'IPv4',
        ports: [{ name: 'grpc', port: 8080, protocol: 'TCP' }],
        endpoints: sliceEndpoints,
      }),
    );
    objects.push(
      object('VirtualService', ns, name, {
        apiVersion: 'networking.trellis.dev/v1alpha1',
        kind: 'VirtualService',
        metadata: meta(name),
        spec: {
          hosts: [name],
          http: [
            {
              route: [
                { destination: { host: name, subset: 'v1' }, weight: 90 },
                { destination: { host: name, subset: 'v2' }, weight: 10 },
              ],
              timeout: '5s',
              retries: { attempts: 3, perTryTimeout: '2s' },
            },
          ],
        },
      }),
    );
    objects.push(
      object('DestinationRule', ns, name, {
        apiVersion: 'networking.trellis.dev/v1alpha1',
        kind: 'DestinationRule',
        metadata: meta(name),
        spec: {
          host: name,
          trafficPolicy: {
            connectionPool: { tcp: { maxConnections: 100 }, http: { http2MaxRequests: 1000 } },
            outlierDetection: { consecutive5xxErrors: 5, interval: '10s', baseEjectionTime: '30s' },
          },
          subsets: [
            { name: 'v1', labels: { version: 'v1' } },
            { name: 'v2', labels: { version: 'v2' } },
          ],
        },
      }),
    );
  }
  return objects;
}

/** The proxy of the first endpoint of svc-0000 (so it has an inbound side too). */
function proxy(proxyType: ProxyType): ProxyInfo {
  return {
    id: 'svc-0000-0.ns-0',
    cluster: 'svc-0000.ns-0',
    namespace: 'ns-0',
    serviceAccount: 'svc-0000',
    labels: { app: 'svc-0000', version: 'v1', 'trellis.dev/tlsMode': 'mesh' },
    instanceIps: ['10.1.0.1'],
    proxyType,
    trustDomain: 'cluster.local',
    locality: { region: '', zone: 'zone-0', subZone: '' },
    userAgent: 'bench',
  };
}

/** The changes `incrementalBuilds` times, each built on the snapshot before it. */
const CHANGES = [
  'an endpoint moves',
  'a Pod comes',
  'a Pod is relabelled',
  'a Pod goes',
  'a VirtualService edit',
] as const;
type Change = (typeof CHANGES)[number];

function keyOrder(a: MeshObject, b: MeshObject): number {
  const ka = `${a.kind}/${a.namespace}/${a.name}`;
  const kb = `${b.kind}/${b.namespace}/${b.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/**
 * One object changed at a time, as a store lists them (key order), each build given the previous snapshot
 * (what the control plane does): ms per change kind over `rounds` rounds (after two warm-up rounds).
 */
function incrementalBuilds(objects: readonly MeshObject[], rounds: number): Record<Change, number[]> {
  const options = { validate: validateRoutingResource, formatIssue };
  let current = [...objects].sort(keyOrder);
  let snapshot = buildSnapshot(current, options);
  const out = Object.fromEntries(CHANGES.map((c) => [c, [] as number[]])) as Record<Change, number[]>;
  const apply = (change: Change, next: MeshObject[], record: boolean): void => {
    const t = performance.now();
    snapshot = buildSnapshot(next, { ...options, previous: snapshot });
    if (record) out[change].push(performance.now() - t);
    current = next;
  };
  const replace = (match: (o: MeshObject) => boolean, edit: (o: MeshObject) => MeshObject): MeshObject[] =>
    current.map((o) => (match(o) ? edit(o) : o));
  type Json = Record<string, unknown>;
  for (let r = 0; r < rounds + 2; r++) {
    const record = r >= 2;
    apply(
      'an endpoint moves',
      replace(
        (o) => o.kind === 'EndpointSlice' && o.name === 'svc-0001-slice',
        (o) => {
          const body = o.object as Json & { endpoints: Json[] };
          const endpoints = body.endpoints.map((e, i) => (i === 0 ? { ...e, addresses: [`10.254.${r & 255}.1`] } : e));
          return { ...o, object: { ...body, endpoints } } as MeshObject;
        },
      ),
      record,
    );
    const template = current.find((o) => o.kind === 'Pod' && o.name === 'svc-0000-0')!;
    const name = `svc-0000-extra-${r}`;
    const body = template.object as Json & { metadata: Json };
    const added = { ...template, name, object: { ...body, metadata: { ...body.metadata, name } } } as MeshObject;
    apply('a Pod comes', [...current, added].sort(keyOrder), record);
    apply(
      'a Pod is relabelled',
      replace(
        (o) => o.kind === 'Pod' && o.name === 'svc-0002-0',
        (o) => {
          const b = o.object as Json & { metadata: Json & { labels: Json } };
          const labels = { ...b.metadata.labels, revision: String(r) };
          return { ...o, object: { ...b, metadata: { ...b.metadata, labels } } } as MeshObject;
        },
      ),
      record,
    );
    apply(
      'a Pod goes',
      current.filter((o) => o !== added),
      record,
    );
    apply(
      'a VirtualService edit',
      replace(
        (o) => o.kind === 'VirtualService' && o.name === 'svc-0003',
        (o) => {
          const b = structuredClone(o.object) as Json & { spec: { http: { route: { weight: number }[] }[] } };
          b.spec.http[0]!.route[0]!.weight = 80 - (r % 10);
          b.spec.http[0]!.route[1]!.weight = 20 + (r % 10);
          return { ...o, object: b } as MeshObject;
        },
      ),
      record,
    );
  }
  return out;
}

function timeEach(n: number, fn: () => void): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    fn();
    out.push(performance.now() - t);
  }
  return out;
}

interface Measured {
  readonly services: number;
  readonly proxyType: ProxyType;
  readonly generateMs: number[];
  /** p50 ms of each builder on its own. */
  readonly perTypeMs: Record<string, number>;
  readonly encodeMs: number[];
  readonly counts: Record<string, number>;
  readonly bytes: Record<string, number>;
  readonly memoHitUs: number;
}

function measure(snapshot: MeshSnapshot, services: number, proxyType: ProxyType, iterations: number): Measured {
  const ctx = { snapshot, proxy: proxy(proxyType), mesh: defaultMeshConfig };
  for (let i = 0; i < 5; i++) generateResources(ctx); // warm-up (JIT)
  const generateMs = timeEach(iterations, () => generateResources(ctx));
  const resources = generateResources(ctx);
  const clusters = buildClusters(ctx);
  const names = edsClusterNames(clusters);
  const perTypeMs: Record<string, number> = {
    CDS: summarize(timeEach(iterations, () => buildClusters(ctx))).p50,
    EDS: summarize(timeEach(iterations, () => buildLoadAssignments(ctx, names))).p50,
    LDS: summarize(timeEach(iterations, () => buildListeners(ctx))).p50,
    RDS: summarize(timeEach(iterations, () => buildRouteConfigurations(ctx))).p50,
  };
  const encodeMs = timeEach(iterations, () => {
    for (const list of resources.values()) for (const m of list) encodeAny(packAny(m));
  });
  const counts: Record<string, number> = {};
  const bytes: Record<string, number> = {};
  for (const typeUrl of TYPES) {
    const list: readonly Message[] = resources.get(typeUrl) ?? [];
    counts[shortTypeName(typeUrl)] = list.length;
    bytes[shortTypeName(typeUrl)] = list.reduce((a, m) => a + encodeAny(packAny(m)).byteLength, 0);
  }
  const generator = meshGenerator(defaultMeshConfig);
  generator.generate(ctx.proxy, snapshot);
  const hits = 1_000;
  const t = performance.now();
  for (let i = 0; i < hits; i++)
    generator.generate(proxyType === 'grpc' ? { ...ctx.proxy, id: `other-${i}.ns-0` } : ctx.proxy, snapshot);
  const memoHitUs = ((performance.now() - t) / hits) * 1000;
  return { services, proxyType, generateMs, perTypeMs, encodeMs, counts, bytes, memoHitUs };
}

export const translate: Benchmark = {
  name: 'translate',
  description: 'translate a synthetic mesh into one proxy’s full config (CDS+EDS+LDS+RDS), Envoy and gRPC',
  usage: USAGE,
  async run(argv, progress: Progress): Promise<BenchResult> {
    const { values } = parseArgs({
      args: [...argv],
      options: {
        services: { type: 'string', default: '100,1000' },
        endpoints: { type: 'string', default: '10' },
        iterations: { type: 'string', default: '20' },
      },
      strict: true,
    });
    const sizes = values.services.split(',').map(Number);
    const endpoints = Number(values.endpoints);
    const iterations = Number(values.iterations);
    for (const [k, v] of Object.entries({
      endpoints,
      iterations,
      ...Object.fromEntries(sizes.map((s, i) => [`services[${i}]`, s])),
    })) {
      if (!Number.isInteger(v) || v <= 0) throw new Error(`--${k} must be a positive integer`);
    }

    const measured: Measured[] = [];
    const snapshots: { services: number; objects: number; buildMs: number[]; changes: Record<Change, number[]> }[] = [];
    for (const services of sizes) {
      progress.phase(`translate: building a ${services}-service mesh (${endpoints} endpoints each)`);
      const objects = syntheticMesh(services, endpoints);
      let snapshot: MeshSnapshot | undefined;
      const buildMs = timeEach(3, () => {
        snapshot = buildSnapshot(objects, { validate: validateRoutingResource, formatIssue });
      });
      const problems = snapshot!.problems.filter((p) => p.severity !== 'info');
      if (problems.length > 0) throw new Error(`synthetic mesh has problems: ${problems[0]!.message}`);
      progress.update(`translate: ${services} services, one object changed at a time`);
      snapshots.push({ services, objects: objects.length, buildMs, changes: incrementalBuilds(objects, iterations) });
      for (const proxyType of ['envoy', 'grpc'] as const) {
        progress.update(`translate: ${services} services, ${proxyType} proxy, ${iterations} iterations`);
        measured.push(measure(snapshot!, services, proxyType, iterations));
      }
    }

    const ms = (v: number): string => fmt(v, 2);
    const totalBytes = (m: Measured): number => Object.values(m.bytes).reduce((a, b) => a + b, 0);
    const tables: Table[] = [
      {
        title: `Full config for one proxy (${endpoints} endpoints, 1 VirtualService and 1 DestinationRule per service)`,
        columns: [
          'services',
          'proxy',
          'generate p50 ms',
          'generate max ms',
          'CDS+LDS+RDS p50 ms',
          'encode p50 ms',
          'resources',
          'bytes',
          'memo hit µs',
        ],
        rows: measured.map((m) => {
          const g = summarize(m.generateMs);
          const e = summarize(m.encodeMs);
          return [
            fmtInt(m.services),
            m.proxyType,
            ms(g.p50),
            ms(g.max),
            ms(m.perTypeMs.CDS! + m.perTypeMs.LDS! + m.perTypeMs.RDS!),
            ms(e.p50),
            fmtInt(Object.values(m.counts).reduce((a, b) => a + b, 0)),
            fmtBytes(totalBytes(m)),
            fmt(m.memoHitUs, 1),
          ];
        }),
        notes: [
          '"CDS+LDS+RDS": the sum of those builders\' p50 times, each timed alone (the anchor\'s scope: EDS excluded).',
          '"generate": generateResources (buildClusters, buildLoadAssignments, buildListeners, buildRouteConfigurations), no memo, after five warm-up runs.',
          '"encode": every resource packed into an Any and serialized once (the resource cache does this for the first proxy of a config; later proxies share the bytes).',
          '"memo hit": meshGenerator.generate for a further proxy of the same shape on the same snapshot (gRPC: another node id; Envoy: the same Pod again, since a sidecar\'s node id is part of its shape).',
          'Goal (issue 5, performance-anchors.md): ≤ 10 ms for 100 services.',
        ],
      },
      {
        title: 'Per type: generation p50 ms (each builder alone), resources, encoded bytes',
        columns: [
          'services',
          'proxy',
          ...TYPES.map((t) => `${shortTypeName(t)} ms`),
          ...TYPES.map((t) => `${shortTypeName(t)} n`),
          ...TYPES.map((t) => shortTypeName(t)),
        ],
        rows: measured.map((m) => [
          fmtInt(m.services),
          m.proxyType,
          ...TYPES.map((t) => ms(m.perTypeMs[shortTypeName(t)]!)),
          ...TYPES.map((t) => fmtInt(m.counts[shortTypeName(t)]!)),
          ...TYPES.map((t) => fmtBytes(m.bytes[shortTypeName(t)]!)),
        ]),
      },
      {
        title: 'Building the snapshot (buildSnapshot, validation included)',
        columns: ['services', 'objects', 'p50 ms', 'max ms'],
        rows: snapshots.map((s) => [
          fmtInt(s.services),
          fmtInt(s.objects),
          ms(summarize(s.buildMs).p50),
          ms(summarize(s.buildMs).max),
        ]),
        notes: [
          'Three builds from the same objects; the validator caches results per object, so builds after the first validate nothing.',
        ],
      },
      {
        title: 'One object changed: buildSnapshot given the previous snapshot (p50 / max ms)',
        columns: ['services', ...CHANGES],
        rows: snapshots.map((s) => [
          fmtInt(s.services),
          ...CHANGES.map((c) => `${ms(summarize(s.changes[c]).p50)} / ${ms(summarize(s.changes[c]).max)}`),
        ]),
        notes: [
          `${iterations} rounds of the five changes after two warm-up rounds, in that order, each built on the snapshot before it, as the control plane does: an EndpointSlice address; a Pod no slice lists yet (a new Pod of svc-0000); another Pod's labels; that new Pod deleted; one VirtualService's weights.`,
        ],
      },
    ];
    return {
      name: 'translate',
      title: `translate: ${sizes.join(' and ')} services × ${endpoints} endpoints, one proxy`,
      params: { services: sizes, endpoints, iterations },
      tables,
      notes: [
        'Anchors (performance-anchors.md): istiod per-proxy CDS ("empty" fixture) 1.7–4.3 ms; EDS 100 services × 1 endpoint 451 µs; goal here a full CDS+LDS+RDS for 100 services ≤ 10 ms.',
      ],
      data: {
        measured: measured.map((m) => ({
          ...m,
          generate: summarize(m.generateMs),
          encode: summarize(m.encodeMs),
          totalBytes: totalBytes(m),
        })),
        snapshots: snapshots.map((s) => ({ ...s, build: summarize(s.buildMs) })),
      },
    };
  },
};
