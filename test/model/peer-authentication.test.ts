// PeerAuthentication in the model: precedence (workload > namespace > mesh > mesh config), UNSET
// inheritance, port-level modes, several policies at one level (oldest wins, the others get a status),
// the last accepted version of an object that turns invalid, and the destination mode a client relies on.
import test from 'ava';
import { buildSnapshot, type BuildOptions } from '../../control-plane/model/build-snapshot.js';
import type { MeshObject } from '../../control-plane/model/objects.js';
import { destinationMtls, portMtls, workloadMtls } from '../../control-plane/model/peer-authentication.js';
import type { MeshSnapshot } from '../../control-plane/model/snapshot.js';
import type { PeerAuthenticationSpec } from '../../crds/types.js';
import { formatIssue, validateRoutingResource } from '../../crds/validator.js';
import { namespace, peerAuthentication, pod, workload } from './_objects.js';

const build = (objects: MeshObject[], options: Partial<BuildOptions> = {}) =>
  buildSnapshot(objects, { validate: validateRoutingResource, formatIssue, ...options });

const statusOf = (s: MeshSnapshot, ns: string, name: string) =>
  s.statuses.find((x) => x.kind === 'PeerAuthentication' && x.namespace === ns && x.name === name)!;

const REVIEWS = { app: 'reviews', version: 'v1' };
const mode = (
  s: MeshSnapshot,
  labels: Record<string, string> = REVIEWS,
  fallback: 'PERMISSIVE' | 'STRICT' = 'PERMISSIVE',
) => workloadMtls(s, 'shop', labels, fallback).mode;

const mesh = (m: PeerAuthenticationSpec['mtls']) => peerAuthentication('trellis-system', 'default', { mtls: m! });
const ns = (m: PeerAuthenticationSpec['mtls'], name = 'default', meta = {}) =>
  peerAuthentication('shop', name, { mtls: m! }, meta);
const wl = (
  labels: Record<string, string>,
  spec: Omit<PeerAuthenticationSpec, 'selector'>,
  name = 'reviews',
  meta = {},
) => peerAuthentication('shop', name, { selector: { matchLabels: labels }, ...spec }, meta);

test('no policy: the mesh config decides', (t) => {
  const s = build([namespace('shop')]);
  t.is(mode(s, REVIEWS, 'PERMISSIVE'), 'PERMISSIVE');
  t.is(mode(s, REVIEWS, 'STRICT'), 'STRICT');
  t.deepEqual(workloadMtls(s, 'shop', REVIEWS, 'STRICT').from, []);
});

test('precedence: workload > namespace > mesh > mesh config', (t) => {
  const meshStrict = mesh({ mode: 'STRICT' });
  const nsPermissive = ns({ mode: 'PERMISSIVE' });
  const wlDisable = wl({ app: 'reviews' }, { mtls: { mode: 'DISABLE' } });
  t.is(mode(build([meshStrict])), 'STRICT', 'mesh over mesh config');
  t.is(mode(build([meshStrict, nsPermissive])), 'PERMISSIVE', 'namespace over mesh');
  t.is(mode(build([meshStrict, nsPermissive, wlDisable])), 'DISABLE', 'workload over namespace');
  const s = build([meshStrict, nsPermissive, wlDisable]);
  t.deepEqual(workloadMtls(s, 'shop', REVIEWS, 'PERMISSIVE').from, [
    { namespace: 'shop', name: 'reviews' },
    { namespace: 'shop', name: 'default' },
    { namespace: 'trellis-system', name: 'default' },
  ]);
  // The workload policy selects by labels, in its own namespace only.
  t.is(mode(s, { app: 'ratings' }), 'PERMISSIVE');
  t.is(workloadMtls(s, 'other', REVIEWS, 'PERMISSIVE').mode, 'STRICT');
  // A root-namespace policy with a selector is a workload policy of the root namespace, not the mesh's.
  const rootWorkload = peerAuthentication('trellis-system', 'sel', {
    selector: { matchLabels: { app: 'reviews' } },
    mtls: { mode: 'DISABLE' },
  });
  t.is(mode(build([meshStrict, rootWorkload])), 'STRICT');
  t.is(workloadMtls(build([meshStrict, rootWorkload]), 'trellis-system', REVIEWS, 'PERMISSIVE').mode, 'DISABLE');
});

test('UNSET (written or left out) inherits from the level above', (t) => {
  t.is(mode(build([mesh({ mode: 'STRICT' }), ns({ mode: 'UNSET' })])), 'STRICT');
  t.is(mode(build([mesh({ mode: 'STRICT' }), ns({})])), 'STRICT');
  t.is(mode(build([mesh({ mode: 'STRICT' }), ns({ mode: 'DISABLE' }), wl({ app: 'reviews' }, {})])), 'DISABLE');
  t.is(mode(build([mesh({ mode: 'UNSET' })]), REVIEWS, 'STRICT'), 'STRICT');
  t.is(mode(build([mesh({ mode: 'UNSET' }), ns({ mode: 'UNSET' })]), REVIEWS, 'PERMISSIVE'), 'PERMISSIVE');
});

test('port level: overrides the workload mode on that container port; UNSET takes the workload mode', (t) => {
  const s = build([
    ns({ mode: 'STRICT' }),
    wl(
      { app: 'reviews' },
      { mtls: { mode: 'PERMISSIVE' }, portLevelMtls: { '8080': { mode: 'DISABLE' }, '9090': { mode: 'UNSET' } } },
    ),
  ]);
  const w = workloadMtls(s, 'shop', REVIEWS, 'PERMISSIVE');
  t.is(portMtls(w, 8080), 'DISABLE');
  t.is(portMtls(w, 9090), 'PERMISSIVE');
  t.is(portMtls(w, 7000), 'PERMISSIVE');
  t.deepEqual(s.peerAuthentications.find((p) => p.name === 'reviews')!.portLevel, [
    { port: 8080, mode: 'DISABLE' },
    { port: 9090, mode: 'UNSET' },
  ]);
});

test('several namespace policies: the oldest wins, the others are Conflicted', (t) => {
  const s = build([
    ns({ mode: 'DISABLE' }, 'young', { creationTimestamp: '2026-02-01T00:00:00Z' }),
    ns({ mode: 'STRICT' }, 'old', { creationTimestamp: '2026-01-01T00:00:00Z' }),
  ]);
  t.is(mode(s), 'STRICT');
  t.like(statusOf(s, 'shop', 'old'), { accepted: true, reason: 'Accepted' });
  t.deepEqual(statusOf(s, 'shop', 'young'), {
    kind: 'PeerAuthentication',
    namespace: 'shop',
    name: 'young',
    origin: {},
    accepted: false,
    reason: 'Conflicted',
    message:
      'conflicts with the older PeerAuthentication shop/old, which is the policy of namespace shop (only the oldest without a selector applies); it has no effect until the older PeerAuthentication is removed',
    issues: [
      {
        severity: 'warning',
        path: '',
        message:
          'conflicts with the older PeerAuthentication shop/old, which is the policy of namespace shop (only the oldest without a selector applies)',
      },
    ],
  });
  // The same timestamp (or none, as in files): by name.
  const files = build([ns({ mode: 'DISABLE' }, 'b'), ns({ mode: 'STRICT' }, 'a')]);
  t.is(mode(files), 'STRICT');
  t.is(statusOf(files, 'shop', 'b').reason, 'Conflicted');
  // In the root namespace the message names the mesh.
  const root = build([
    peerAuthentication('trellis-system', 'a', { mtls: { mode: 'STRICT' } }),
    peerAuthentication('trellis-system', 'b', { mtls: { mode: 'DISABLE' } }),
  ]);
  t.is(mode(root), 'STRICT');
  t.regex(statusOf(root, 'trellis-system', 'b').message, /which is the policy of the mesh/);
});

test('several workload policies: the oldest matching wins; same selector is Conflicted, overlap a warning', (t) => {
  const pods = [
    pod('shop', 'reviews-v1-0', REVIEWS),
    pod('shop', 'reviews-v1-1', REVIEWS),
    pod('shop', 'reviews-v2-0', { app: 'reviews', version: 'v2' }),
  ];
  const s = build([
    ...pods,
    wl({ app: 'reviews' }, { mtls: { mode: 'STRICT' } }, 'all', { creationTimestamp: '2026-01-01T00:00:00Z' }),
    wl({ version: 'v1', app: 'reviews' }, { mtls: { mode: 'DISABLE' } }, 'v1', {
      creationTimestamp: '2026-02-01T00:00:00Z',
    }),
    wl({ app: 'reviews' }, { mtls: { mode: 'PERMISSIVE' } }, 'twin', { creationTimestamp: '2026-03-01T00:00:00Z' }),
    wl({ version: 'v3' }, { mtls: { mode: 'DISABLE' } }, 'v3', { creationTimestamp: '2026-03-01T00:00:00Z' }),
  ]);
  t.is(mode(s, REVIEWS), 'STRICT', 'the older policy wins for the Pods both select');
  t.is(mode(s, { version: 'v3' }), 'DISABLE');
  t.like(statusOf(s, 'shop', 'all'), { accepted: true, reason: 'Accepted' });
  t.like(statusOf(s, 'shop', 'v1'), {
    accepted: true,
    reason: 'AcceptedWithWarnings',
    message:
      'accepted with warnings: spec.selector: Pod shop/reviews-v1-0 (and 1 more) is also selected by the older PeerAuthentication shop/all, which wins there',
  });
  t.like(statusOf(s, 'shop', 'twin'), {
    accepted: false,
    reason: 'Conflicted',
    message:
      'spec.selector: selects the same workloads as the older PeerAuthentication shop/all, which wins; it has no effect until the older PeerAuthentication is removed',
  });
  t.like(statusOf(s, 'shop', 'v3'), { accepted: true, reason: 'Accepted' });
  t.true(
    s.problems.some(
      (p) =>
        p.message ===
        'warning: PeerAuthentication shop/twin: spec.selector: selects the same workloads as the older PeerAuthentication shop/all, which wins',
    ),
  );
});

test('an invalid policy is kept out; one that turns invalid keeps its last accepted version', (t) => {
  const good = peerAuthentication('shop', 'default', { mtls: { mode: 'STRICT' } }, { generation: 1 });
  const first = build([good]);
  t.is(mode(first), 'STRICT');
  const broken = peerAuthentication(
    'shop',
    'default',
    { portLevelMtls: { '8080': { mode: 'DISABLE' } } },
    {
      generation: 2,
    },
  );
  const second = build([broken], { previous: first });
  t.is(mode(second), 'STRICT', 'the last accepted version stays in effect');
  t.true(second.peerAuthentications[0]!.stale);
  t.like(statusOf(second, 'shop', 'default'), {
    accepted: false,
    reason: 'Invalid',
    message:
      'spec.portLevelMtls: requires a selector with matchLabels; the last accepted version (generation 1) stays in effect',
  });
  t.true(
    second.problems.some(
      (p) => p.message === 'PeerAuthentication shop/default: spec.portLevelMtls: requires a selector with matchLabels',
    ),
  );
  // Deleted: gone. Invalid from the start: never in effect, and it hides nothing valid.
  const third = build([], { previous: second });
  t.is(mode(third), 'PERMISSIVE');
  const fourth = build([broken, mesh({ mode: 'STRICT' })], { previous: third });
  t.is(mode(fourth), 'STRICT');
  t.like(statusOf(fourth, 'shop', 'default'), { reason: 'Invalid' });
  t.like(statusOf(fourth, 'trellis-system', 'default'), { reason: 'Accepted' });
});

test('the snapshot is deterministic with policies in any order', (t) => {
  const objects = [
    mesh({ mode: 'STRICT' }),
    ns({ mode: 'PERMISSIVE' }),
    wl({ app: 'reviews' }, { mtls: { mode: 'DISABLE' }, portLevelMtls: { '9080': { mode: 'STRICT' }, '80': {} } }),
    pod('shop', 'reviews-v1-0', REVIEWS),
  ];
  const a = build(objects);
  const b = build([...objects].reverse());
  t.is(a.hash, b.hash);
  t.deepEqual(a.peerAuthentications, b.peerAuthentications);
  t.deepEqual(
    a.peerAuthentications.map((p) => `${p.namespace}/${p.name}`),
    ['shop/default', 'shop/reviews', 'trellis-system/default'],
  );
  t.not(a.hash, build(objects.slice(1)).hash, 'a policy is part of the hash');
});

test('destination mode: all workloads behind the port agree, else MIXED; no endpoint: the namespace mode', (t) => {
  const reviews = workload('shop', 'reviews', { name: 'http', port: 9080 }, [
    { version: 'v1', address: '10.0.0.1', port: 9080 },
    { version: 'v2', address: '10.0.0.2', port: 9080 },
  ]);
  const service = (s: MeshSnapshot) => s.index.servicesByFqdn.get('reviews.shop.svc.cluster.local')!;
  const dest = (s: MeshSnapshot, fallback: 'PERMISSIVE' | 'STRICT' = 'PERMISSIVE') =>
    destinationMtls(s, service(s), service(s).ports[0]!, fallback);
  t.is(dest(build(reviews)), 'PERMISSIVE');
  t.is(dest(build(reviews), 'STRICT'), 'STRICT');
  t.is(dest(build([...reviews, ns({ mode: 'STRICT' })])), 'STRICT');
  t.is(
    dest(build([...reviews, ns({ mode: 'STRICT' }), wl({ version: 'v2' }, { mtls: { mode: 'PERMISSIVE' } })])),
    'MIXED',
  );
  t.is(
    dest(build([...reviews, ns({ mode: 'STRICT' }), wl({ app: 'reviews' }, { mtls: { mode: 'DISABLE' } })])),
    'DISABLE',
  );
  // Port level by the endpoint's target port.
  t.is(
    dest(
      build([
        ...reviews,
        ns({ mode: 'STRICT' }),
        wl({ app: 'reviews' }, { portLevelMtls: { '9080': { mode: 'DISABLE' } } }),
      ]),
    ),
    'DISABLE',
  );
  const empty = build([...reviews.filter((o) => o.kind === 'Service'), ns({ mode: 'STRICT' })]);
  t.is(dest(empty), 'STRICT');
});
