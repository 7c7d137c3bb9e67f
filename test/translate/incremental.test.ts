// The cached, shared path of meshGenerator is exact: for random sequences of object changes, what one
// long-lived generator hands out for every proxy equals, byte for byte, a fresh `generateResources` on the
// same snapshot; and the incrementally built snapshot equals one built from scratch. Also the contracts the
// push path relies on: Pods of one workload get the very same arrays (encoded once), and an endpoint change
// gives new ClusterLoadAssignments only.
import test from 'ava';
import fc from 'fast-check';
import { buildSnapshot } from '../../control-plane/model/build-snapshot.js';
import { canonicalJson } from '../../control-plane/model/canonical.js';
import type { MeshObject } from '../../control-plane/model/objects.js';
import { diffSnapshots, snapshotKeys } from '../../control-plane/model/parts.js';
import type { MeshSnapshot } from '../../control-plane/model/snapshot.js';
import { TypeUrl, encodeAny, packAny, resourceName, type Message } from '../../control-plane/envoy/protos.js';
import { defaultMeshConfig, type MeshConfig } from '../../control-plane/translate/context.js';
import { generateResources, meshGenerator } from '../../control-plane/translate/generator.js';
import type { ResourcesByType } from '../../control-plane/xds/generator.js';
import { ResourceCache } from '../../control-plane/xds/resource-cache.js';
import type { ProxyInfo } from '../../control-plane/xds/node.js';
import type { RouteConfiguration } from '../../control-plane/envoy/gen/envoy/config/route/v3/route_pb.js';
import { formatIssue, validateRoutingResource } from '../../crds/validator.js';
import {
  destinationRule,
  namespace,
  peerAuthentication,
  pod,
  service,
  slice,
  stableByContent,
  stableObjects,
  virtualService,
} from '../model/_objects.js';

const NAMESPACES = ['a', 'b'] as const;
const SERVICES = ['web', 'api', 'db'] as const;
const PODS = 3;

type Svc = (typeof SERVICES)[number];

/** Every message's name and encoded bytes, in order. */
function encodeAll(messages: readonly Message[]): string[] {
  return messages.map((m) => `${resourceName(m)} ${Buffer.from(encodeAny(packAny(m))).toString('hex')}`);
}

function portOf(svc: Svc, variant: number) {
  if (svc === 'db') return { name: 'tcp', port: 5432, targetPort: 5432 };
  return variant === 0
    ? { name: svc === 'web' ? 'http' : 'grpc', port: 8080, targetPort: 9000 }
    : { name: 'http-alt', port: 8081, targetPort: 9001 };
}

/** The state the random operations change; `objects()` renders it. */
interface State {
  serviceVariant: Record<string, number>;
  exportTo: Record<string, string | undefined>;
  /** Per pod: address suffix, ready, version label; undefined = no such pod. */
  pods: Record<string, { ip: number; ready: boolean; version: string } | undefined>;
  vs: Record<string, number | undefined>;
  dr: Record<string, number | undefined>;
  pa: Record<string, number | undefined>;
  /** Sidecars by `namespace/name` (sidecarSpec variants). */
  sc: Record<string, number | undefined>;
  /** An ALLOW AuthorizationPolicy per namespace (apSpec variants), for automatic scoping. */
  ap: Record<string, number | undefined>;
}

function initialState(): State {
  const s: State = { serviceVariant: {}, exportTo: {}, pods: {}, vs: {}, dr: {}, pa: {}, sc: {}, ap: {} };
  let ip = 1;
  for (const ns of NAMESPACES) {
    for (const svc of SERVICES) {
      s.serviceVariant[`${ns}/${svc}`] = 0;
      for (let i = 0; i < PODS; i++)
        s.pods[`${ns}/${svc}-${i}`] = { ip: ip++, ready: true, version: i < 2 ? 'v1' : 'v2' };
    }
  }
  return s;
}

function vsSpec(svc: Svc, variant: number): Record<string, unknown> {
  if (svc === 'db') {
    return { hosts: [svc], tcp: [{ route: [{ destination: { host: svc, subset: variant === 1 ? 'v2' : 'v1' } }] }] };
  }
  const variants: Record<string, unknown>[] = [
    {
      hosts: [svc],
      http: [
        {
          route: [
            { destination: { host: svc, subset: 'v1' }, weight: 90 },
            { destination: { host: svc, subset: 'v2' }, weight: 10 },
          ],
          retries: { attempts: 3 },
        },
      ],
    },
    {
      hosts: [svc],
      http: [
        { match: [{ sourceLabels: { role: 'canary' } }], route: [{ destination: { host: svc, subset: 'v2' } }] },
        { route: [{ destination: { host: svc, subset: 'v1' } }], timeout: '2s' },
      ],
    },
    { hosts: [svc], http: [{ route: [{ destination: { host: svc } }], weight: -1 }] }, // invalid: kept stale or left out
    { hosts: [svc], exportTo: ['.'], http: [{ route: [{ destination: { host: svc } }], timeout: '5s' }] },
  ];
  return variants[variant % variants.length]!;
}

function drSpec(svc: Svc, variant: number): Record<string, unknown> {
  const subsets = [
    { name: 'v1', labels: { version: 'v1' } },
    { name: 'v2', labels: { version: 'v2' } },
  ];
  const variants: Record<string, unknown>[] = [
    { host: svc, subsets },
    {
      host: svc,
      subsets,
      trafficPolicy: { connectionPool: { tcp: { maxConnections: 10 } }, outlierDetection: { consecutive5xxErrors: 3 } },
    },
    { host: svc, subsets: [subsets[0]], trafficPolicy: { tls: { mode: 'DISABLE' } } },
    // Locality load balancing (EDS by the proxy's locality and labels) and a workload selector.
    {
      host: svc,
      subsets,
      workloadSelector: { matchLabels: { version: 'v2' } },
      trafficPolicy: {
        outlierDetection: { consecutive5xxErrors: 1 },
        loadBalancer: { localityLbSetting: { failoverPriority: ['version', 'topology.kubernetes.io/zone'] } },
      },
    },
    {
      host: svc,
      subsets,
      trafficPolicy: { loadBalancer: { localityLbSetting: { distribute: [{ from: '*', to: { '*': 100 } }] } } },
    },
  ];
  return variants[variant % variants.length]!;
}

function paSpec(variant: number): Record<string, unknown> {
  const variants: Record<string, unknown>[] = [
    { mtls: { mode: 'STRICT' } },
    { mtls: { mode: 'PERMISSIVE' } },
    { selector: { matchLabels: { version: 'v2' } }, mtls: { mode: 'DISABLE' } },
    { selector: { matchLabels: { app: 'api' } }, portLevelMtls: { 9000: { mode: 'STRICT' } } },
  ];
  return variants[variant % variants.length]!;
}

/** The Sidecars the random operations set: a namespace default, a workload one, the mesh default. */
const SIDECARS = ['a/default', 'b/web-only', 'trellis-system/mesh'] as const;

function sidecarSpec(key: string, variant: number): Record<string, unknown> {
  const selector = key === 'b/web-only' ? { workloadSelector: { labels: { app: 'web' } } } : {};
  const variants: Record<string, unknown>[] = [
    { egress: [{ hosts: ['./*'] }] },
    { egress: [{ hosts: ['b/*', './web.a.svc.cluster.local'] }] },
    { egress: [{ hosts: ['*/api.b.svc.cluster.local'] }], outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } },
    { outboundTrafficPolicy: { mode: 'ALLOW_ANY' } },
    { egress: [{ hosts: ['~/*'] }] },
    { egress: [{ hosts: ['no-slash'] }] }, // invalid: kept stale or left out
  ];
  return { ...selector, ...variants[variant % variants.length]! };
}

function apSpec(variant: number): Record<string, unknown> {
  const variants: Record<string, unknown>[] = [
    {
      selector: { matchLabels: { app: 'api' } },
      rules: [{ from: [{ source: { principals: ['cluster.local/ns/a/sa/web-sa'] } }] }],
    },
    { rules: [{ from: [{ source: { namespaces: ['b'] } }] }] },
    { selector: { matchLabels: { app: 'db' } }, rules: [{ from: [{ source: { principals: ['*/sa/api-sa'] } }] }] },
  ];
  return variants[variant % variants.length]!;
}

function policyObject(
  kind: 'Sidecar' | 'AuthorizationPolicy',
  key: string,
  spec: Record<string, unknown>,
  generation: number,
): MeshObject {
  const [ns, name] = key.split('/') as [string, string];
  const apiVersion = kind === 'Sidecar' ? 'networking.trellis.dev/v1alpha1' : 'security.trellis.dev/v1alpha1';
  return {
    kind,
    namespace: ns,
    name,
    object: { apiVersion, kind, metadata: { name, namespace: ns, generation }, spec },
    origin: {},
  };
}

function objects(s: State): MeshObject[] {
  const out: MeshObject[] = NAMESPACES.map((ns) => namespace(ns));
  for (const ns of NAMESPACES) {
    for (const svc of SERVICES) {
      const key = `${ns}/${svc}`;
      const port = portOf(svc, s.serviceVariant[key]!);
      const exportTo = s.exportTo[key];
      out.push(
        service(ns, svc, [port], {
          clusterIP: `10.96.${NAMESPACES.indexOf(ns)}.${SERVICES.indexOf(svc) + 1}`,
          ...(exportTo ? { annotations: { 'networking.trellis.dev/exportTo': exportTo } } : {}),
        }),
      );
      const endpoints = [];
      for (let i = 0; i < PODS; i++) {
        const p = s.pods[`${ns}/${svc}-${i}`];
        if (!p) continue;
        out.push(pod(ns, `${svc}-${i}`, { app: svc, version: p.version, 'trellis.dev/tlsMode': 'mesh' }, `${svc}-sa`));
        endpoints.push({
          address: `10.0.0.${p.ip}`,
          pod: `${svc}-${i}`,
          ready: p.ready,
          // Namespace b spreads its Pods over two zones (locality load balancing); a keeps one locality.
          ...(ns === 'b' ? { zone: p.ip % 2 === 0 ? 'zone-a' : 'zone-b' } : {}),
        });
      }
      out.push(slice(ns, `${svc}-1`, svc, [{ name: port.name, port: port.targetPort }], endpoints));
      const vs = s.vs[key];
      if (vs !== undefined) out.push(virtualService(ns, `${svc}-vs`, vsSpec(svc, vs) as never, { generation: vs + 1 }));
      const dr = s.dr[key];
      if (dr !== undefined)
        out.push(destinationRule(ns, `${svc}-dr`, drSpec(svc, dr) as never, { generation: dr + 1 }));
    }
    const pa = s.pa[ns];
    if (pa !== undefined) out.push(peerAuthentication(ns, 'policy', paSpec(pa) as never, { generation: pa + 1 }));
    const ap = s.ap[ns];
    if (ap !== undefined) out.push(policyObject('AuthorizationPolicy', `${ns}/allow`, apSpec(ap), ap + 1));
  }
  for (const key of SIDECARS) {
    const sc = s.sc[key];
    if (sc !== undefined) out.push(policyObject('Sidecar', key, sidecarSpec(key, sc), sc + 1));
  }
  return out;
}

const nsArb = fc.constantFrom(...NAMESPACES);
const svcArb = fc.constantFrom(...SERVICES);
const podArb = fc
  .tuple(nsArb, svcArb, fc.integer({ min: 0, max: PODS - 1 }))
  .map(([ns, svc, i]) => `${ns}/${svc}-${i}`);

type Op = (s: State) => void;
const opArb: fc.Arbitrary<Op> = fc.oneof(
  // An endpoint moves (a new Pod IP), turns unready or ready, goes away or comes back.
  fc.tuple(podArb, fc.integer({ min: 20, max: 60 })).map(([p, ip]) => (s: State) => {
    const cur = s.pods[p];
    s.pods[p] = cur ? { ...cur, ip } : { ip, ready: true, version: 'v1' };
  }),
  podArb.map((p) => (s: State) => {
    const cur = s.pods[p];
    if (cur) s.pods[p] = { ...cur, ready: !cur.ready };
  }),
  podArb.map((p) => (s: State) => {
    s.pods[p] = undefined;
  }),
  // A rollout step: the Pod's version label changes.
  fc.tuple(podArb, fc.constantFrom('v1', 'v2', 'v3')).map(([p, version]) => (s: State) => {
    const cur = s.pods[p];
    if (cur) s.pods[p] = { ...cur, version };
  }),
  fc.tuple(nsArb, svcArb, fc.option(fc.integer({ min: 0, max: 3 }))).map(([ns, svc, v]) => (s: State) => {
    s.vs[`${ns}/${svc}`] = v ?? undefined;
  }),
  fc.tuple(nsArb, svcArb, fc.option(fc.integer({ min: 0, max: 2 }))).map(([ns, svc, v]) => (s: State) => {
    s.dr[`${ns}/${svc}`] = v ?? undefined;
  }),
  fc.tuple(nsArb, fc.option(fc.integer({ min: 0, max: 3 }))).map(([ns, v]) => (s: State) => {
    s.pa[ns] = v ?? undefined;
  }),
  fc.tuple(nsArb, fc.constantFrom('web', 'api') as fc.Arbitrary<Svc>).map(([ns, svc]) => (s: State) => {
    s.serviceVariant[`${ns}/${svc}`] = 1 - s.serviceVariant[`${ns}/${svc}`]!;
  }),
  fc.tuple(nsArb, svcArb, fc.constantFrom(undefined, '.', 'a', '*')).map(([ns, svc, e]) => (s: State) => {
    s.exportTo[`${ns}/${svc}`] = e;
  }),
  // A Sidecar is added, changed (scope, outbound policy), made invalid or deleted.
  // (weighted 3: a Sidecar moves proxies between shapes, the part of the cache most worth shaking)
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.constantFrom(...SIDECARS), fc.option(fc.integer({ min: 0, max: 5 })))
      .map(([key, v]) => (s: State) => {
        s.sc[key] = v ?? undefined;
      }),
  },
  fc.tuple(nsArb, fc.option(fc.integer({ min: 0, max: 2 }))).map(([ns, v]) => (s: State) => {
    s.ap[ns] = v ?? undefined;
  }),
);

/** Sidecars for every Pod (node id `<pod>.<ns>`, its labels and IP), two plain clients, proxyless clients and servers. */
function proxies(s: State): ProxyInfo[] {
  const base = {
    cluster: '',
    serviceAccount: 'sa',
    trustDomain: 'cluster.local',
    locality: { region: '', zone: '', subZone: '' },
    userAgent: '',
  };
  const out: ProxyInfo[] = [];
  for (const ns of NAMESPACES) {
    for (const svc of SERVICES) {
      for (let i = 0; i < PODS; i++) {
        const p = s.pods[`${ns}/${svc}-${i}`];
        const labels = { app: svc, version: p?.version ?? 'v1', 'trellis.dev/tlsMode': 'mesh' };
        const ips = p ? [`10.0.0.${p.ip}`] : [];
        const serviceAccount = `${svc}-sa`;
        out.push({
          ...base,
          serviceAccount,
          id: `${svc}-${i}.${ns}`,
          namespace: ns,
          labels,
          instanceIps: ips,
          proxyType: 'envoy',
        });
        if (i === 0) {
          out.push({
            ...base,
            serviceAccount,
            id: `${svc}-grpc-${i}.${ns}`,
            namespace: ns,
            labels,
            instanceIps: ips,
            proxyType: 'grpc',
          });
        }
      }
    }
    out.push({
      ...base,
      id: `client.${ns}`,
      namespace: ns,
      labels: { role: 'canary' },
      instanceIps: [],
      proxyType: 'envoy',
    });
    out.push({ ...base, id: `grpc-client.${ns}`, namespace: ns, labels: {}, instanceIps: [], proxyType: 'grpc' });
  }
  return out;
}

function build(objs: readonly MeshObject[], previous?: MeshSnapshot): MeshSnapshot {
  return buildSnapshot(objs, { validate: validateRoutingResource, formatIssue, ...(previous ? { previous } : {}) });
}

/** Every resource, per type, as name → encoded Any bytes (hex). */
function encoded(resources: ResourcesByType): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [typeUrl, messages] of [...resources.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    out[typeUrl] = messages.map(
      (m: Message) => `${resourceName(m)} ${Buffer.from(encodeAny(packAny(m))).toString('hex')}`,
    );
  }
  return out;
}

/** What the snapshot holds, except version and index (the incremental and the scratch build must agree). */
function content(s: MeshSnapshot): string {
  const { version: _v, index: _i, ...rest } = s;
  return canonicalJson(rest);
}

const meshConfigs: MeshConfig[] = [
  defaultMeshConfig,
  { ...defaultMeshConfig, mtlsMode: 'STRICT', tracing: { samplingPercent: 5, collector: 'jaeger.obs:4317' } },
  { ...defaultMeshConfig, scoping: 'automatic' },
];

for (const [m, mesh] of meshConfigs.entries()) {
  test(`random changes: the cached generator equals a fresh translation, byte for byte (mesh config ${m})`, (t) => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 10 }), (ops) => {
        const generator = meshGenerator(mesh);
        const state = initialState();
        const stable = stableObjects();
        // The same proxy (by content) is the same object from one snapshot to the next, as a stream's is:
        // the generator keeps its shape across snapshots while what the shape reads is unchanged.
        const stableProxies = stableByContent<ProxyInfo>();
        let incremental = build(stable(objects(state)));
        let scratchPrevious = incremental;
        const check = () => {
          for (const proxy of stableProxies(proxies(state))) {
            const cached = generator.generate(proxy, incremental);
            const fresh = generateResources({ snapshot: incremental, proxy, mesh });
            const a = encoded(cached);
            const b = encoded(fresh);
            if (canonicalJson(a) !== canonicalJson(b)) {
              // Name the resources that differ (the bytes are long).
              const differing = Object.keys(b).flatMap((typeUrl) =>
                [...new Set([...(a[typeUrl] ?? []), ...b[typeUrl]!])]
                  .filter((r) => !(a[typeUrl] ?? []).includes(r) || !b[typeUrl]!.includes(r))
                  .map((r) => `${(a[typeUrl] ?? []).includes(r) ? 'cached' : 'fresh'}: ${r.split(' ')[0]!}`),
              );
              const order = Object.keys(b).map((typeUrl) => (a[typeUrl] ?? []).map((r) => r.split(' ')[0]).join(','));
              t.fail(
                `proxy ${proxy.id} (${proxy.proxyType}): ${differing.join('; ') || `order: ${order.join(' / ')}`}`,
              );
              return false;
            }
          }
          return true;
        };
        if (!check()) return false;
        for (const op of ops) {
          op(state);
          const objs = stable(objects(state));
          const next = build(objs, incremental);
          // Copies of the objects (nothing of the incremental path can be reused: no Service, no validation,
          // no accepted resource is cached for them), with the same previous accepted versions, give the same content.
          const scratch = build(
            objs.map((o) => ({ ...o, object: structuredClone(o.object) }) as MeshObject),
            scratchPrevious,
          );
          if (content(next) !== content(scratch) || next.hash !== scratch.hash) {
            t.is(content(next), content(scratch), 'incremental snapshot differs from a scratch build');
            return false;
          }
          incremental = next;
          scratchPrevious = scratch;
          if (!check()) return false;
        }
        return true;
      }),
      { numRuns: 10, seed: 1400 + m },
    );
    t.pass();
  });
}

function endpointMesh(ip: number, ready = true): MeshObject[] {
  const s = initialState();
  s.pods['a/web-0'] = { ip, ready, version: 'v1' };
  for (const ns of NAMESPACES)
    for (const svc of SERVICES) {
      s.vs[`${ns}/${svc}`] = 0;
      s.dr[`${ns}/${svc}`] = 1;
    }
  return objects(s);
}

test('Pods of one workload get the very same arrays and messages; encoding does not grow with Pods', (t) => {
  const generator = meshGenerator(defaultMeshConfig);
  const snap = build(endpointMesh(1));
  const cache = new ResourceCache();
  const sidecar = (i: number): ProxyInfo => ({
    id: `web-${i}.a`,
    cluster: '',
    namespace: 'a',
    serviceAccount: 'web-sa',
    labels: { app: 'web', version: 'v1', 'trellis.dev/tlsMode': 'mesh', 'pod-template-hash': `h${i}` },
    instanceIps: [`10.0.0.${i + 1}`],
    proxyType: 'envoy',
    trustDomain: 'cluster.local',
    locality: { region: '', zone: '', subZone: '' },
    userAgent: '',
  });
  const first = generator.generate(sidecar(0), snap);
  for (const [typeUrl, messages] of first) cache.encodeSet(typeUrl, messages);
  const encodings = cache.encodeCount;
  t.true(encodings > 0);
  for (const i of [1, 2]) {
    const other = generator.generate(sidecar(i), snap);
    for (const [typeUrl, messages] of other) {
      t.true(messages === first.get(typeUrl), `${typeUrl}: pod ${i} got another array`);
      cache.encodeSet(typeUrl, messages);
    }
  }
  t.is(cache.encodeCount, encodings, 'a further Pod of the workload encoded something');
  // The inbound side is really there: the Pod's target port has its cluster and chain.
  t.true(first.get(TypeUrl.Cluster)!.some((c) => resourceName(c) === 'inbound|9000||'));
});

test('a snapshot that changes nothing a proxy is sent of a type keeps its encoded set, the same object', (t) => {
  const generator = meshGenerator(defaultMeshConfig);
  const state = initialState();
  const web0: ProxyInfo = {
    id: 'web-0.a',
    cluster: '',
    namespace: 'a',
    serviceAccount: 'web-sa',
    labels: { app: 'web', version: 'v1', 'trellis.dev/tlsMode': 'mesh' },
    instanceIps: ['10.0.0.1'],
    proxyType: 'envoy',
    trustDomain: 'cluster.local',
    locality: { region: '', zone: '', subZone: '' },
    userAgent: '',
  };
  const cache = new ResourceCache();
  const sets = (snap: MeshSnapshot) =>
    new Map(
      [...generator.generate(web0, snap)].map(([typeUrl, messages]) => [
        typeUrl,
        { messages, set: cache.encodeSet(typeUrl, messages) },
      ]),
    );
  state.pods['a/web-2'] = undefined;
  const before = sets(build(objects(state)));
  // A Pod of web that is not ready yet: its Service's slice lists it, no assignment does.
  state.pods['a/web-2'] = { ip: 200, ready: false, version: 'v2' };
  const notReady = sets(build(objects(state)));
  const eds = TypeUrl.ClusterLoadAssignment;
  t.not(
    notReady.get(eds)!.messages,
    before.get(eds)!.messages,
    'the assignments were made again (else this shows nothing)',
  );
  t.is(notReady.get(eds)!.set, before.get(eds)!.set, 'the same names and versions: the same set');
  for (const [typeUrl, { set }] of notReady) t.is(set, before.get(typeUrl)!.set, `${typeUrl}: a new set`);
  // Ready now: the assignments of web change, so does the set; the other types keep theirs.
  state.pods['a/web-2'] = { ip: 200, ready: true, version: 'v2' };
  const ready = sets(build(objects(state)));
  t.not(ready.get(eds)!.set, before.get(eds)!.set);
  t.not(ready.get(eds)!.set.version, before.get(eds)!.set.version);
  t.is(ready.get(TypeUrl.RouteConfiguration)!.set, before.get(TypeUrl.RouteConfiguration)!.set);
  // Back to not ready: the set of before, as long as it is held.
  state.pods['a/web-2'] = { ip: 200, ready: false, version: 'v2' };
  t.is(sets(build(objects(state))).get(eds)!.set, before.get(eds)!.set);
});

/** An Envoy sidecar in namespace b that serves nothing (no instances, no labels). */
function plainClient(): ProxyInfo {
  return {
    id: 'client.b',
    cluster: '',
    namespace: 'b',
    serviceAccount: 'client',
    labels: {},
    instanceIps: [],
    proxyType: 'envoy',
    trustDomain: 'cluster.local',
    locality: { region: '', zone: '', subZone: '' },
    userAgent: '',
  };
}

test('an endpoint change gives new ClusterLoadAssignments of that Service only; every other array is the same', (t) => {
  const generator = meshGenerator(defaultMeshConfig);
  const client = plainClient();
  const before = build(endpointMesh(1));
  const after = build(endpointMesh(42), before);
  t.deepEqual(diffSnapshots(before, after), {
    from: before.version,
    endpoints: ['web.a.svc.cluster.local'],
    services: [],
    namespaces: false,
    virtualServices: false,
    virtualServiceHosts: [],
    destinationRules: false,
    peerAuthentications: false,
    statuses: false,
  });
  const a = generator.generate(client, before);
  const neighbour: ProxyInfo = { ...client, id: 'client.a', namespace: 'a' };
  const neighbourBefore = generator.generate(neighbour, before).get(TypeUrl.ClusterLoadAssignment);
  const b = generator.generate(client, after);
  for (const typeUrl of [TypeUrl.Cluster, TypeUrl.Listener, TypeUrl.RouteConfiguration]) {
    t.is(b.get(typeUrl), a.get(typeUrl), `${typeUrl} changed`);
  }
  const claA = a.get(TypeUrl.ClusterLoadAssignment)!;
  const claB = b.get(TypeUrl.ClusterLoadAssignment)!;
  t.not(claB, claA);
  const changed = claB
    .filter((m, i) => m !== claA[i])
    .map((m) => resourceName(m))
    .sort();
  t.deepEqual(changed, [
    'outbound|8080|v1|web.a.svc.cluster.local',
    'outbound|8080|v2|web.a.svc.cluster.local',
    'outbound|8080||web.a.svc.cluster.local',
  ]);

  // A client in another namespace that sees the same Services gets the very same assignments array, before
  // and after the change (equal arrays are one, so the resource cache encodes and versions one set).
  t.is(neighbourBefore, claA);
  t.is(generator.generate(neighbour, after).get(TypeUrl.ClusterLoadAssignment), claB);

  // Turning an endpoint unready is an EDS change too.
  const unready = build(endpointMesh(42, false), after);
  const c = generator.generate(client, unready);
  for (const typeUrl of [TypeUrl.Cluster, TypeUrl.Listener, TypeUrl.RouteConfiguration]) {
    t.is(c.get(typeUrl), a.get(typeUrl), `${typeUrl} changed`);
  }
  t.not(c.get(TypeUrl.ClusterLoadAssignment), claB);
});

test('a proxy keeps its shape across an endpoint change of another Service, and works it out again when its own changes', (t) => {
  const generator = meshGenerator(defaultMeshConfig);
  const sidecar = (pod: string, ip: number): ProxyInfo => ({
    id: `${pod}.a`,
    cluster: '',
    namespace: 'a',
    serviceAccount: `${pod.split('-')[0]}-sa`,
    labels: { app: pod.split('-')[0]!, version: 'v1', 'trellis.dev/tlsMode': 'mesh' },
    instanceIps: [`10.0.0.${ip}`],
    proxyType: 'envoy',
    trustDomain: 'cluster.local',
    locality: { region: '', zone: '', subZone: '' },
    userAgent: '',
  });
  const state = initialState();
  const api = sidecar('api-0', state.pods['a/api-0']!.ip);
  const web = sidecar('web-1', state.pods['a/web-1']!.ip);
  const stable = stableObjects();
  const before = build(stable(objects(state)));
  generator.generate(api, before);
  generator.generate(web, before);
  const shapes = generator.stats().shapes;
  t.is(shapes, 2);
  // web-0 moves: api-0 keeps its shape (its instances are the same list); web-1's Service is a new object,
  // and so are its instances: its shape is worked out again.
  state.pods['a/web-0'] = { ...state.pods['a/web-0']!, ip: 99 };
  const moved = build(stable(objects(state)), before);
  generator.generate(api, moved);
  generator.generate(web, moved);
  t.is(generator.stats().shapes, shapes + 1);
  // The same snapshot again: nothing to work out.
  generator.generate(api, moved);
  generator.generate(web, moved);
  t.is(generator.stats().shapes, shapes + 1);
  // web-1 itself turns unready: its shape again, not api-0's.
  state.pods['a/web-1'] = { ...state.pods['a/web-1']!, ready: false };
  const unready = build(stable(objects(state)), moved);
  const out = generator.generate(web, unready);
  generator.generate(api, unready);
  t.is(generator.stats().shapes, shapes + 2);
  const fresh = generateResources({ snapshot: unready, proxy: web, mesh: defaultMeshConfig });
  for (const typeUrl of [TypeUrl.Cluster, TypeUrl.Listener]) {
    t.deepEqual(encodeAll(out.get(typeUrl)!), encodeAll(fresh.get(typeUrl)!), typeUrl);
  }
});

/** A VirtualService (variant 0) for every Service, and plainClient's config from it. */
function withVirtualServices() {
  const generator = meshGenerator(defaultMeshConfig);
  const client = plainClient();
  const state = initialState();
  for (const ns of NAMESPACES) for (const svc of SERVICES) state.vs[`${ns}/${svc}`] = 0;
  const before = build(objects(state));
  return { generator, client, state, before, a: generator.generate(client, before) };
}

test('a VirtualService change rebuilds the virtual hosts it routes, not the route configuration around them', (t) => {
  const { generator, client, state, before, a } = withVirtualServices();
  const built = generator.stats();
  state.vs['a/web'] = 3;
  const after = build(objects(state), before);
  const b = generator.generate(client, after);
  t.not(b.get(TypeUrl.RouteConfiguration), a.get(TypeUrl.RouteConfiguration));
  t.is(b.get(TypeUrl.Cluster), a.get(TypeUrl.Cluster));
  t.is(b.get(TypeUrl.ClusterLoadAssignment), a.get(TypeUrl.ClusterLoadAssignment));
  // web.a's VirtualService now exports to its own namespace only: b's web.a vhost falls back to the default route.
  t.is(generator.stats().virtualHosts - built.virtualHosts, 1);
  t.is(generator.stats().serviceClusters, built.serviceClusters);
  t.deepEqual(diffSnapshots(before, after).virtualServiceHosts, ['web.a.svc.cluster.local']);
  // Patched in place: only the route configurations holding web.a's vhost are new objects, every other
  // vhost is the same object, and the bytes equal a fresh translation.
  const routesA = a.get(TypeUrl.RouteConfiguration)!;
  const routesB = b.get(TypeUrl.RouteConfiguration)!;
  const moved = routesB.filter((m, i) => m !== routesA[i]).map((m) => resourceName(m));
  t.true(moved.length >= 1);
  for (const [i, route] of (routesB as RouteConfiguration[]).entries()) {
    const old = routesA[i] as RouteConfiguration;
    const changedVhosts = route.virtualHosts.filter((v, j) => v !== old.virtualHosts[j]).map((v) => v.name);
    t.true(
      changedVhosts.every((name) => name.startsWith('web.a.svc.cluster.local:')),
      changedVhosts.join(','),
    );
  }
  const fresh = generateResources({ snapshot: after, proxy: client, mesh: defaultMeshConfig });
  t.deepEqual(encodeAll(routesB), encodeAll(fresh.get(TypeUrl.RouteConfiguration)!));
});

test('a rebuild of the clusters after changes that left them alone translates nothing that did not change', (t) => {
  // Endpoint-only snapshots carry every outbound part over without asking the shared per-Service caches for
  // anything, so those caches drop their entries; a later change of the Pods' labels (the snapshot's endpoint
  // traits) rebuilds the outbound parts, which take the Services' clusters and assignments from their own
  // previous build instead of translating all of them again.
  const generator = meshGenerator(defaultMeshConfig);
  const client = plainClient();
  const state = initialState();
  for (const ns of NAMESPACES) for (const svc of SERVICES) state.dr[`${ns}/${svc}`] = 1;
  let snapshot = build(objects(state));
  generator.generate(client, snapshot);
  for (const ip of [101, 102, 103]) {
    state.pods['a/web-0'] = { ...state.pods['a/web-0']!, ip };
    snapshot = build(objects(state), snapshot);
    generator.generate(client, snapshot);
  }
  const before = generator.stats();
  state.pods['a/db-2'] = { ...state.pods['a/db-2']!, version: 'v1' }; // its subsets' endpoints and the traits move
  const next = build(objects(state), snapshot);
  t.not(snapshotKeys(next).endpointTraits, snapshotKeys(snapshot).endpointTraits);
  const got = generator.generate(client, next);
  const after = generator.stats();
  t.is(after.serviceClusters - before.serviceClusters, 0, 'no Service clusters translated again');
  t.true(
    after.loadAssignments - before.loadAssignments <= 3,
    `${after.loadAssignments - before.loadAssignments} assignments built: only db.a's subsets may change`,
  );
  const fresh = generateResources({ snapshot: next, proxy: client, mesh: defaultMeshConfig });
  t.deepEqual(encoded(got), encoded(fresh));
});

test('VirtualServices and DestinationRules that only moved in their file rebuild nothing', (t) => {
  // A document written before them in the same file moves their document numbers: statuses name the new
  // place, the translation is the same.
  const { generator, client, state, before, a } = withVirtualServices();
  for (const ns of NAMESPACES) for (const svc of SERVICES) state.dr[`${ns}/${svc}`] = 1;
  const withRules = build(objects(state), before);
  const b = generator.generate(client, withRules);
  const built = generator.stats();
  const moved = objects(state).map((o) =>
    o.kind === 'VirtualService' || o.kind === 'DestinationRule'
      ? ({ ...o, origin: { file: 'mesh.yaml', document: 40 + o.name.length } } as MeshObject)
      : o,
  );
  const after = build(moved, withRules);
  t.not(after.hash, withRules.hash, 'the statuses name the new place');
  const c = generator.generate(client, after);
  for (const typeUrl of [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration])
    t.is(c.get(typeUrl), b.get(typeUrl), `${typeUrl}: the very same array`);
  const stats = generator.stats();
  t.is(stats.parts, built.parts, 'no part translated again');
  t.is(stats.virtualHosts, built.virtualHosts);
  t.not(b, a);
});

test('listeners are kept through an http-only VirtualService change and rebuilt on a tcp one', (t) => {
  const { generator, client, state, before, a } = withVirtualServices();
  // http routes only (same hosts, exportTo and precedence): the routes change, the listeners stay the same array.
  state.vs['a/web'] = 1;
  const httpOnly = build(objects(state), before);
  const b = generator.generate(client, httpOnly);
  t.not(b.get(TypeUrl.RouteConfiguration), a.get(TypeUrl.RouteConfiguration));
  t.is(b.get(TypeUrl.Listener), a.get(TypeUrl.Listener));
  // A tcp route moves to the other subset: the db listener's tcp_proxy names the new cluster.
  state.vs['a/db'] = 1;
  const tcp = build(objects(state), httpOnly);
  const c = generator.generate(client, tcp);
  t.not(c.get(TypeUrl.Listener), b.get(TypeUrl.Listener));
  const fresh = generateResources({ snapshot: tcp, proxy: client, mesh: defaultMeshConfig });
  t.deepEqual(encodeAll(c.get(TypeUrl.Listener)!), encodeAll(fresh.get(TypeUrl.Listener)!));
  t.notDeepEqual(encodeAll(c.get(TypeUrl.Listener)!), encodeAll(b.get(TypeUrl.Listener)!));
});

test('a Sidecar scope is shared: proxies with one scope get the same arrays; a change outside it moves nothing, inside it patches', (t) => {
  const generator = meshGenerator(defaultMeshConfig);
  const proxy = (id: string, labels: Record<string, string>, serviceAccount: string): ProxyInfo => ({
    id: `${id}.a`,
    cluster: '',
    namespace: 'a',
    serviceAccount,
    labels,
    instanceIps: [],
    proxyType: 'envoy',
    trustDomain: 'cluster.local',
    locality: { region: '', zone: '', subZone: '' },
    userAgent: '',
  });
  const state = initialState();
  for (const ns of NAMESPACES) for (const svc of SERVICES) state.vs[`${ns}/${svc}`] = 0;
  state.sc['a/default'] = 1; // egress b/* and ./web.a
  const before = build(objects(state));
  const one = generator.generate(proxy('one', { role: 'x' }, 'one-sa'), before);
  const cache = new ResourceCache();
  for (const [typeUrl, messages] of one) cache.encodeSet(typeUrl, messages);
  const encodings = cache.encodeCount;
  // Another workload of the namespace, other labels and service account, the same Sidecar: the same arrays.
  const two = generator.generate(proxy('two', { role: 'y' }, 'two-sa'), before);
  for (const [typeUrl, messages] of two) {
    t.true(messages === one.get(typeUrl), `${typeUrl}: another array for the same scope`);
    cache.encodeSet(typeUrl, messages);
  }
  t.is(cache.encodeCount, encodings, 'the same scope encoded something again');
  const clusters = one.get(TypeUrl.Cluster)!.map((m) => resourceName(m) ?? '');
  t.false(clusters.some((n) => n.endsWith('api.a.svc.cluster.local') || n.endsWith('db.a.svc.cluster.local')));
  t.true(clusters.includes('outbound|8080||web.a.svc.cluster.local'));
  t.true(clusters.includes('outbound|5432||db.b.svc.cluster.local'));

  // A VirtualService change on api.a (outside the scope): every array of the scoped proxy stays.
  state.vs['a/api'] = 3;
  const outside = build(objects(state), before);
  const afterOutside = generator.generate(proxy('one', { role: 'x' }, 'one-sa'), outside);
  // (Outbound listeners are rebuilt on every VirtualService change, scoped or not: equal bytes, not pushed.)
  for (const typeUrl of [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.RouteConfiguration])
    t.is(afterOutside.get(typeUrl), one.get(typeUrl), `${typeUrl} moved`);
  t.deepEqual(encodeAll(afterOutside.get(TypeUrl.Listener)!), encodeAll(one.get(TypeUrl.Listener)!));

  // One on web.a (inside): RDS is patched, CDS and EDS stay, and the bytes equal a fresh translation.
  state.vs['a/web'] = 3;
  const inside = build(objects(state), outside);
  const afterInside = generator.generate(proxy('one', { role: 'x' }, 'one-sa'), inside);
  t.not(afterInside.get(TypeUrl.RouteConfiguration), one.get(TypeUrl.RouteConfiguration));
  t.is(afterInside.get(TypeUrl.Cluster), one.get(TypeUrl.Cluster));
  t.is(afterInside.get(TypeUrl.ClusterLoadAssignment), one.get(TypeUrl.ClusterLoadAssignment));
  const fresh = generateResources({
    snapshot: inside,
    proxy: proxy('one', { role: 'x' }, 'one-sa'),
    mesh: defaultMeshConfig,
  });
  for (const [typeUrl, messages] of afterInside) t.deepEqual(encodeAll(messages), encodeAll(fresh.get(typeUrl)!));
});
