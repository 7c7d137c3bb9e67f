// The incremental model build is exact: for random sequences of object changes, a snapshot built with the
// previous one (which reuses what did not change, and takes the in-place path when only EndpointSlices and
// policy objects changed where they stand) equals a build from scratch (no previous snapshot) of copies of the objects, content, index and
// hash alike. The scratch build has no memo of its own, so state wrongly carried from one build to the next
// cannot hide on both sides.
import test from 'ava';
import fc from 'fast-check';
import { buildSnapshot } from '../../control-plane/model/build-snapshot.js';
import { canonicalJson } from '../../control-plane/model/canonical.js';
import { keyOf, type MeshObject } from '../../control-plane/model/objects.js';
import type { MeshSnapshot } from '../../control-plane/model/snapshot.js';
import { formatIssue, validateRoutingResource } from '../../crds/validator.js';
import type { DestinationRuleSpec, ServiceEntrySpec, VirtualServiceSpec } from '../../crds/types.js';
import {
  destinationRule,
  namespace,
  peerAuthentication,
  pod,
  service,
  slice,
  stableObjects,
  virtualService,
} from './_objects.js';

const NAMESPACES = ['a', 'b'] as const;
const SERVICES = ['web', 'api', 'db'] as const;
const PODS = 3;

interface SliceState {
  /** The Service its label names; undefined: no label. */
  owner: string | undefined;
  /** Per Pod index: the last octet of its address, and whether it is ready; undefined: not listed. */
  endpoints: ({ ip: number; ready: boolean } | undefined)[];
}

interface State {
  services: Record<string, boolean>;
  slices: Record<string, SliceState>;
  podVersion: Record<string, string>;
  /** Per Service: the variant of its VirtualService and of its DestinationRule (undefined: none). */
  vs: Record<string, number | undefined>;
  dr: Record<string, number | undefined>;
  /** The variant of a ServiceEntry in namespace a (undefined: none). */
  se: number | undefined;
  /** Per Node: its zone label ('' : no topology label), undefined: no Node object. */
  nodes: Record<string, string | undefined>;
  /** Pods (`ns/svc-p`) that are gone (the slices may still name them). */
  podsGone: Record<string, boolean>;
  /** Per namespace: a Pod `extra` (app web, version v2) that no slice lists, present or not. */
  extraPod: Record<string, boolean>;
}

const NODES = ['node-1', 'node-2'] as const;

function vsSpec(svc: string, variant: number): VirtualServiceSpec {
  const variants: VirtualServiceSpec[] = [
    { hosts: [svc], http: [{ route: [{ destination: { host: svc, subset: 'v1' } }] }] },
    {
      hosts: [svc],
      http: [
        {
          route: [
            { destination: { host: svc, subset: 'v1' }, weight: 90 },
            { destination: { host: svc, subset: 'v2' }, weight: 10 },
          ],
          timeout: '2s',
        },
      ],
    },
    { hosts: [svc], exportTo: ['.'], http: [{ route: [{ destination: { host: svc } }], timeout: '5s' }] },
  ];
  return variants[variant % variants.length]!;
}

function drSpec(svc: string, variant: number): DestinationRuleSpec {
  const subsets = [
    { name: 'v1', labels: { version: 'v1' } },
    { name: 'v2', labels: { version: 'v2' } },
  ];
  const variants: DestinationRuleSpec[] = [
    { host: svc, subsets },
    { host: svc, subsets: [subsets[0]!], trafficPolicy: { connectionPool: { tcp: { maxConnections: 10 } } } },
    { host: svc, trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } },
  ];
  return variants[variant % variants.length]!;
}

function seSpec(variant: number): ServiceEntrySpec {
  return {
    hosts: ['payments.example.com'],
    location: 'MESH_INTERNAL',
    resolution: 'STATIC',
    addresses: [`240.0.0.${variant + 1}`],
    ports: [{ number: 443 + variant, name: 'tls', protocol: 'TLS' }],
    endpoints: [{ address: `10.9.0.${variant + 1}` }],
  };
}

function initialState(): State {
  const s: State = {
    services: {},
    slices: {},
    podVersion: {},
    vs: {},
    dr: {},
    se: undefined,
    nodes: {},
    podsGone: {},
    extraPod: {},
  };
  for (const n of NODES) s.nodes[n] = 'z1';
  for (const ns of NAMESPACES) {
    for (const [i, svc] of SERVICES.entries()) {
      s.services[`${ns}/${svc}`] = true;
      for (const n of [1, 2]) {
        s.slices[`${ns}/${svc}-${n}`] = {
          owner: svc,
          endpoints: Array.from({ length: PODS }, (_, p) => ({ ip: 10 * i + p + n * 100, ready: true })),
        };
      }
      for (let p = 0; p < PODS; p++) s.podVersion[`${ns}/${svc}-${p}`] = 'v1';
      s.vs[`${ns}/${svc}`] = 0;
      s.dr[`${ns}/${svc}`] = 0;
    }
  }
  return s;
}

/** The objects of a state, in key order as a store lists them; `kube`: origins carry a resourceVersion. */
function objects(s: State, kube: boolean): MeshObject[] {
  const out: MeshObject[] = NAMESPACES.map((ns) => namespace(ns));
  for (const ns of NAMESPACES) {
    for (const svc of SERVICES) {
      if (s.services[`${ns}/${svc}`]) out.push(service(ns, svc, [{ name: 'http', port: 80, targetPort: 8080 }]));
      for (let p = 0; p < PODS; p++)
        if (!s.podsGone[`${ns}/${svc}-${p}`])
          out.push(pod(ns, `${svc}-${p}`, { app: svc, version: s.podVersion[`${ns}/${svc}-${p}`]! }));
      for (const n of [1, 2]) {
        const st = s.slices[`${ns}/${svc}-${n}`]!;
        const endpoints = st.endpoints.flatMap((e, p) =>
          e ? [{ address: `10.0.${n}.${e.ip}`, ready: e.ready, pod: `${svc}-${p}` }] : [],
        );
        out.push(slice(ns, `${svc}-${n}`, st.owner, [{ name: 'http', port: 8080 }], endpoints));
      }
      const vs = s.vs[`${ns}/${svc}`];
      if (vs !== undefined)
        out.push(virtualService(ns, svc, vsSpec(svc, vs), { creationTimestamp: '2026-01-01T00:00:00Z' }));
      const dr = s.dr[`${ns}/${svc}`];
      if (dr !== undefined) out.push(destinationRule(ns, svc, drSpec(svc, dr)));
    }
  }
  if (s.se !== undefined) out.push(serviceEntry('a', 'payments', seSpec(s.se)));
  for (const ns of NAMESPACES) {
    if (s.extraPod[ns]) out.push(pod(ns, 'extra', { app: 'web', version: 'v2' }));
    // Policies whose conflicts depend on the Pods (the routing judgement reads Pods for nothing else): an
    // older PeerAuthentication and Sidecar for app web, younger ones for version v2, warned while some Pod
    // has both labels.
    const older = { creationTimestamp: '2026-01-01T00:00:00Z' };
    const younger = { creationTimestamp: '2026-02-01T00:00:00Z' };
    out.push(
      peerAuthentication(ns, 'web', { selector: { matchLabels: { app: 'web' } }, mtls: { mode: 'STRICT' } }, older),
    );
    out.push(
      peerAuthentication(
        ns,
        'v2',
        { selector: { matchLabels: { version: 'v2' } }, mtls: { mode: 'PERMISSIVE' } },
        younger,
      ),
    );
    out.push(sidecar(ns, 'web', { workloadSelector: { labels: { app: 'web' } }, egress: [{ hosts: ['./*'] }] }, older));
    out.push(
      sidecar(ns, 'v2', { workloadSelector: { labels: { version: 'v2' } }, egress: [{ hosts: ['*/*'] }] }, younger),
    );
  }
  for (const n of NODES) {
    const zone = s.nodes[n];
    if (zone === undefined) continue;
    const labels: Record<string, string> = zone ? { 'topology.kubernetes.io/zone': zone } : {};
    out.push({
      kind: 'Node',
      namespace: '',
      name: n,
      object: { apiVersion: 'v1', kind: 'Node', metadata: { name: n, labels } },
      origin: {},
    } as MeshObject);
  }
  const origin = (o: MeshObject) =>
    kube ? { resourceVersion: String(canonicalJson(o.object).length) } : { file: `${o.namespace}.yaml`, document: 1 };
  return out.map((o) => ({ ...o, origin: origin(o) }) as MeshObject).sort((x, y) => (keyOf(x) < keyOf(y) ? -1 : 1));
}

function sidecar(ns: string, name: string, spec: Record<string, unknown>, meta: Record<string, unknown>): MeshObject {
  const object = {
    apiVersion: 'networking.trellis.dev/v1alpha1',
    kind: 'Sidecar',
    metadata: { name, namespace: ns, ...meta },
    spec,
  };
  return { kind: 'Sidecar', namespace: ns, name, object, origin: {} } as MeshObject;
}

function serviceEntry(ns: string, name: string, spec: ServiceEntrySpec): MeshObject {
  const object = {
    apiVersion: 'networking.trellis.dev/v1alpha1',
    kind: 'ServiceEntry',
    metadata: { name, namespace: ns },
    spec,
  };
  return { kind: 'ServiceEntry', namespace: ns, name, object, origin: {} } as MeshObject;
}

const serviceKey = fc
  .tuple(fc.constantFrom(...NAMESPACES), fc.constantFrom(...SERVICES))
  .map(([ns, svc]) => `${ns}/${svc}`);

const sliceKey = fc
  .tuple(fc.constantFrom(...NAMESPACES), fc.constantFrom(...SERVICES), fc.constantFrom(1, 2))
  .map(([ns, svc, n]) => `${ns}/${svc}-${n}`);

type Op = (s: State) => void;
const opArb: fc.Arbitrary<Op> = fc.oneof(
  // Endpoint changes (the slices-only path): an address moves, readiness flips, an endpoint goes or comes.
  {
    weight: 6,
    arbitrary: fc
      .tuple(sliceKey, fc.integer({ min: 0, max: PODS - 1 }), fc.integer({ min: 1, max: 250 }))
      .map(([k, p, ip]) => (s: State) => {
        s.slices[k]!.endpoints[p] = { ip, ready: s.slices[k]!.endpoints[p]?.ready ?? true };
      }),
  },
  fc.tuple(sliceKey, fc.integer({ min: 0, max: PODS - 1 })).map(([k, p]) => (s: State) => {
    const e = s.slices[k]!.endpoints[p];
    s.slices[k]!.endpoints[p] = e ? { ...e, ready: !e.ready } : undefined;
  }),
  fc.tuple(sliceKey, fc.integer({ min: 0, max: PODS - 1 })).map(([k, p]) => (s: State) => {
    s.slices[k]!.endpoints[p] = s.slices[k]!.endpoints[p] ? undefined : { ip: 200 + p, ready: true };
  }),
  // A slice changes owner, loses its label (the full path reports it), or names a Service that does not exist.
  fc
    .tuple(sliceKey, fc.constantFrom<string | undefined>(...SERVICES, undefined, 'ghost'))
    .map(([k, owner]) => (s: State) => {
      s.slices[k]!.owner = owner;
    }),
  // Not only slices: a Pod's label, a Service that goes or comes.
  fc
    .tuple(fc.constantFrom(...NAMESPACES), fc.constantFrom(...SERVICES), fc.integer({ min: 0, max: PODS - 1 }))
    .map(([ns, svc, p]) => (s: State) => {
      const key = `${ns}/${svc}-${p}`;
      s.podVersion[key] = s.podVersion[key] === 'v1' ? 'v2' : 'v1';
    }),
  fc.tuple(fc.constantFrom(...NAMESPACES), fc.constantFrom(...SERVICES)).map(([ns, svc]) => (s: State) => {
    s.services[`${ns}/${svc}`] = !s.services[`${ns}/${svc}`];
  }),
  // Pods that go or come: one the slices list (they may still name it when it is gone), one they do not.
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.constantFrom(...NAMESPACES), fc.constantFrom(...SERVICES), fc.integer({ min: 0, max: PODS - 1 }))
      .map(([ns, svc, p]) => (s: State) => {
        s.podsGone[`${ns}/${svc}-${p}`] = !s.podsGone[`${ns}/${svc}-${p}`];
      }),
  },
  {
    weight: 3,
    arbitrary: fc.constantFrom(...NAMESPACES).map((ns) => (s: State) => {
      s.extraPod[ns] = !s.extraPod[ns];
    }),
  },
  // Policy objects edited in place (the in-place path): another VirtualService or DestinationRule variant, a
  // ServiceEntry's address and port; and ones that go or come (the full path). Only valid ones: an invalid
  // edit keeps the last accepted version (stale), which a build without a previous snapshot cannot know.
  {
    weight: 4,
    arbitrary: fc.tuple(serviceKey, fc.integer({ min: 0, max: 2 })).map(([k, v]) => (s: State) => {
      if (s.vs[k] !== undefined) s.vs[k] = v;
    }),
  },
  {
    weight: 2,
    arbitrary: fc.tuple(serviceKey, fc.integer({ min: 0, max: 2 })).map(([k, v]) => (s: State) => {
      if (s.dr[k] !== undefined) s.dr[k] = v;
    }),
  },
  fc.integer({ min: 0, max: 2 }).map((v) => (s: State) => {
    if (s.se !== undefined) s.se = v;
  }),
  // A Node's zone label changes or goes, a Node goes or comes (proxies' localities: snapshot.nodes).
  fc
    .tuple(fc.constantFrom(...NODES), fc.constantFrom<string | undefined>('z1', 'z2', '', undefined))
    .map(([n, zone]) => (s: State) => {
      s.nodes[n] = zone;
    }),
  fc.tuple(serviceKey, fc.constantFrom('vs', 'dr', 'se')).map(([k, kind]) => (s: State) => {
    if (kind === 'se') s.se = s.se === undefined ? 0 : undefined;
    else if (kind === 'vs') s.vs[k] = s.vs[k] === undefined ? 0 : undefined;
    else s.dr[k] = s.dr[k] === undefined ? 0 : undefined;
  }),
);

function build(objs: readonly MeshObject[], previous?: MeshSnapshot): MeshSnapshot {
  return buildSnapshot(objs, { validate: validateRoutingResource, formatIssue, ...(previous ? { previous } : {}) });
}

/** Everything but the version, the index's maps as sorted entries. */
function view(s: MeshSnapshot): string {
  const { version: _v, index, ...rest } = s;
  const entries = (m: ReadonlyMap<string, unknown>) => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return canonicalJson({
    rest,
    index: {
      namespaces: entries(index.namespaces),
      servicesByFqdn: entries(index.servicesByFqdn),
      hosts: entries(index.hosts),
      wildcardHosts: index.wildcardHosts,
      instancesByPod: entries(index.instancesByPod),
      instancesByAddress: entries(index.instancesByAddress),
      nodes: entries(index.nodes),
    },
  });
}

for (const kube of [false, true]) {
  test(`random object changes: the incremental build equals a build from copies (${kube ? 'Kubernetes' : 'file'} origins)`, (t) => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 12 }), (ops) => {
        const state = initialState();
        const stable = stableObjects();
        let incremental = build(stable(objects(state, kube)));
        for (const op of ops) {
          const before = incremental;
          op(state);
          const objs = stable(objects(state, kube));
          incremental = build(objs, before);
          const scratch = build(objs.map((o) => ({ ...o, object: structuredClone(o.object) }) as MeshObject));
          if (view(incremental) !== view(scratch) || incremental.hash !== scratch.hash) {
            t.is(view(incremental), view(scratch), 'incremental snapshot differs from a scratch build');
            return false;
          }
        }
        return true;
      }),
      { numRuns: 60, seed: kube ? 2402 : 2401 },
    );
    t.pass();
  });
}

test('an endpoint change keeps every other Service the very same object, and builds one anew', (t) => {
  const state = initialState();
  const stable = stableObjects();
  const first = build(stable(objects(state, false)));
  state.slices['a/api-2']!.endpoints[1] = { ip: 77, ready: true };
  const next = build(stable(objects(state, false)), first);
  const moved = next.services.filter((s, i) => s !== first.services[i]).map((s) => s.fqdn);
  t.deepEqual(moved, ['api.a.svc.cluster.local']);
  t.true(next.index.instancesByAddress.has('10.0.2.77'));
  t.false(next.index.instancesByAddress.has('10.0.2.101'));
  t.is(next.virtualServices, first.virtualServices);
});

test('with a ServiceEntry, a VirtualService edit keeps its Services and the instance indexes as the same objects', (t) => {
  const state = initialState();
  state.se = 0;
  const stable = stableObjects();
  const first = build(stable(objects(state, false)));
  const entryServices = first.services.filter((s) => s.serviceEntry);
  t.true(entryServices.length > 0);
  state.vs['b/web'] = 1;
  const next = build(stable(objects(state, false)), first);
  t.true(next.services.every((s, i) => s === first.services[i]));
  t.is(next.index.instancesByPod, first.index.instancesByPod);
  t.is(next.index.instancesByAddress, first.index.instancesByAddress);
  // The entry itself edited: its Services are new, with the new spec.
  state.se = 1;
  const third = build(stable(objects(state, false)), next);
  const renewed = third.services.filter((s) => s.serviceEntry);
  t.true(renewed.every((s) => !entryServices.includes(s)));
  t.notDeepEqual(
    renewed.map((s) => s.ports),
    entryServices.map((s) => s.ports),
  );
});

test('a VirtualService edit keeps the Services, the instance indexes and every other status as the same objects', (t) => {
  const state = initialState();
  const stable = stableObjects();
  const first = build(stable(objects(state, false)));
  state.vs['b/web'] = 1;
  const next = build(stable(objects(state, false)), first);
  t.true(next.services.every((s, i) => s === first.services[i]));
  t.is(next.index.instancesByPod, first.index.instancesByPod);
  t.is(next.index.instancesByAddress, first.index.instancesByAddress);
  const edited = next.virtualServices.find((vs) => vs.namespace === 'b' && vs.name === 'web')!;
  t.is(edited.spec.http?.[0]?.timeout, '2s');
  const renewed = next.statuses
    .filter((s) => !first.statuses.includes(s))
    .map((s) => `${s.kind}/${s.namespace}/${s.name}`);
  t.deepEqual(renewed, []); // its status reads the same (accepted): the very object, too
  // A status that changes is a new object: b/web's VirtualService turns invalid.
  const invalid = stable(objects(state, false)).map((o) =>
    o.kind === 'VirtualService' && o.namespace === 'b' && o.name === 'web'
      ? virtualService(
          'b',
          'web',
          { hosts: ['web'], http: [{ route: [] }] },
          { creationTimestamp: '2026-01-01T00:00:00Z' },
        )
      : o,
  );
  const third = build(invalid, next);
  const changed = third.statuses
    .filter((s) => !next.statuses.includes(s))
    .map((s) => `${s.kind}/${s.namespace}/${s.name}`);
  t.deepEqual(changed, ['VirtualService/b/web']);
  t.false(third.statuses.find((s) => s.name === 'web' && s.namespace === 'b' && s.kind === 'VirtualService')!.accepted);
});

test('a Pod that comes or goes keeps the routing judgement, unless it changes which policies overlap', (t) => {
  const state = initialState();
  const stable = stableObjects();
  const first = build(stable(objects(state, false)));
  // A Pod of db goes and one with db's labels but version v2 comes: no Pod has both app web and version v2.
  state.podsGone['a/db-0'] = true;
  state.podVersion['b/db-1'] = 'v2';
  const next = build(stable(objects(state, false)), first);
  t.is(next.statuses, first.statuses);
  t.is(next.virtualServices, first.virtualServices);
  t.is(next.destinationRules, first.destinationRules);
  // A Pod with app web and version v2 makes both younger policies of namespace a select a Pod the older ones
  // select: they are warned (and only they get new statuses).
  state.extraPod['a'] = true;
  const third = build(stable(objects(state, false)), next);
  const changed = third.statuses
    .filter((s) => !next.statuses.includes(s))
    .map((s) => `${s.kind}/${s.namespace}/${s.name}`)
    .sort();
  t.deepEqual(changed, ['PeerAuthentication/a/v2', 'Sidecar/a/v2']);
  const warned = third.statuses.find((s) => s.kind === 'PeerAuthentication' && s.namespace === 'a' && s.name === 'v2')!;
  t.true(
    warned.issues.some((i) => i.severity === 'warning'),
    JSON.stringify(warned),
  );
  // It goes again: the warnings go with it.
  state.extraPod['a'] = false;
  const fourth = build(stable(objects(state, false)), third);
  t.deepEqual(
    fourth.statuses.find((s) => s.kind === 'PeerAuthentication' && s.namespace === 'a' && s.name === 'v2')!.issues,
    [],
  );
});

test('a status follows its object to another file or document, its content unchanged', (t) => {
  const state = initialState();
  const at = (file: string, document: number) => (o: MeshObject) =>
    o.kind === 'VirtualService' && o.namespace === 'a' && o.name === 'web'
      ? ({ ...o, object: structuredClone(o.object), origin: { file, document } } as MeshObject)
      : ({ ...o, origin: { file: `${o.namespace}.yaml`, document: 1 } } as MeshObject);
  let previous = build(objects(state, false).map(at('a.yaml', 1)));
  const first = previous;
  const statusOfWeb = (s: MeshSnapshot) =>
    s.statuses.find((x) => x.kind === 'VirtualService' && x.namespace === 'a' && x.name === 'web')!;
  t.deepEqual(statusOfWeb(first).origin, { file: 'a.yaml', document: 1 });
  for (const [file, document] of [
    ['a.yaml', 2],
    ['b.yaml', 2],
  ] as const) {
    // Each built on the one before: the document changes, then only the file.
    const next = build(objects(state, false).map(at(file, document)), previous);
    t.deepEqual(statusOfWeb(next).origin, { file, document });
    t.true(statusOfWeb(next).accepted);
    previous = next;
  }
});

test('given a previous snapshot, objects out of key order or defined twice build as from scratch', (t) => {
  const state = initialState();
  const stable = stableObjects();
  const sorted = stable(objects(state, false));
  const first = build(sorted);
  const scratch = (objs: readonly MeshObject[]) =>
    build(objs.map((o) => ({ ...o, object: structuredClone(o.object) }) as MeshObject));
  // A new Pod, and the list reversed: the walk beside the previous input meets an object out of order.
  state.extraPod['b'] = true;
  const withPod = stable(objects(state, false));
  const reversed = [...withPod].reverse();
  const fromReversed = build(reversed, first);
  t.is(view(fromReversed), view(scratch(withPod)));
  // Again out of order, one object changed, given the snapshot of the reversed list: the previous input
  // was not in key order either, so its position in it says nothing of its place in the model's list.
  state.podVersion['a/api-1'] = 'v2';
  const changed = stable(objects(state, false));
  t.is(view(build([...changed].reverse(), fromReversed)), view(scratch(changed)));
  state.podVersion['a/api-1'] = 'v1';
  // The previous input out of order in a way the walk would not notice where the lists differ: its last
  // object first. Then a Pod's labels change (not an in-place change: the walk runs).
  const rotated = [withPod[withPod.length - 1]!, ...withPod.slice(0, -1)];
  const fromRotated = build(rotated, first);
  t.is(view(fromRotated), view(scratch(withPod)));
  const podAt = withPod.findIndex((o) => o.kind === 'Pod' && o.namespace === 'b' && o.name === 'db-2');
  const relabelled = pod('b', 'db-2', { app: 'db', version: 'v3' });
  const rotatedEdited = rotated.map((o) => (o === withPod[podAt] ? relabelled : o));
  t.is(view(build(rotatedEdited, fromRotated)), view(scratch(rotatedEdited)));
  // The new Pod given twice: another copy, labelled version v1, from a file that sorts first, so it wins;
  // the other is reported, as without a previous snapshot.
  const extra = withPod.find((o) => o.kind === 'Pod' && o.name === 'extra')!;
  const copy = pod('b', 'extra', { app: 'web', version: 'v1' });
  const twice = [...withPod, { ...copy, origin: { file: 'a.yaml', document: 1 } } as MeshObject];
  t.not(extra.origin.file, 'a.yaml');
  const incremental = build(twice, first);
  t.is(view(incremental), view(scratch(twice)));
  t.true(incremental.problems.some((p) => p.message.includes('defined twice')));
  // Back to the sorted list (the v2 copy alone) given the snapshot made of the list with the duplicate: as
  // from scratch too.
  t.is(view(build(withPod, incremental)), view(scratch(withPod)));
});
