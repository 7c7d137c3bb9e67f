// What KubeSource hands the model of a Kubernetes object (sources/model-input.ts): a change the model
// does not read gives the same digest (no store event, no rebuild); one it reads gives another.
import test from 'ava';
import { modelDigest, modelInput } from '../../control-plane/sources/model-input.js';
import type { MeshKind } from '../../control-plane/model/objects.js';

const vs = {
  apiVersion: 'networking.trellis.dev/v1alpha1',
  kind: 'VirtualService',
  metadata: {
    name: 'reviews',
    namespace: 'shop',
    uid: 'u-1',
    generation: 1,
    resourceVersion: '100',
    creationTimestamp: '2026-01-01T00:00:00Z',
    labels: { team: 'a' },
    annotations: { note: 'x' },
    managedFields: [{ manager: 'kubectl' }],
  },
  spec: { hosts: ['reviews'], http: [{ timeout: '2s', route: [{ destination: { host: 'reviews' } }] }] },
};

const pod = {
  metadata: { name: 'reviews-1', namespace: 'shop', generation: 1, resourceVersion: '7', labels: { app: 'reviews' } },
  spec: { serviceAccountName: 'reviews', containers: [{ name: 'app', image: 'x' }] },
  status: { phase: 'Pending' },
};

function digest(kind: MeshKind, apiVersion: string, object: unknown): string {
  const input = modelInput(kind, apiVersion, object);
  if (!input) throw new Error('no model input');
  return modelDigest(input);
}

const vsDigest = (o: unknown): string => digest('VirtualService', 'networking.trellis.dev/v1alpha1', o);
const podDigest = (o: unknown): string => digest('Pod', 'v1', o);

test('a status write, its resourceVersion, managedFields, labels and annotations of a routing resource: the same input', (t) => {
  const base = vsDigest(vs);
  const echoed = {
    ...vs,
    metadata: { ...vs.metadata, resourceVersion: '101', managedFields: [{ manager: 'trellis' }] },
    status: { observedGeneration: 1, conditions: [{ type: 'Accepted', status: 'True' }] },
  };
  t.is(vsDigest(echoed), base, 'the echo of a status write');
  t.is(vsDigest({ ...vs, metadata: { ...vs.metadata, labels: { team: 'b' }, annotations: {} } }), base);
  const input = modelInput('VirtualService', 'networking.trellis.dev/v1alpha1', echoed);
  t.deepEqual(input?.origin, {});
  t.false('status' in (input?.object as object));
  t.false('resourceVersion' in ((input?.object as { metadata: object }).metadata ?? {}));
});

test('a spec edit or a new generation of a routing resource: another input', (t) => {
  const base = vsDigest(vs);
  t.not(vsDigest({ ...vs, metadata: { ...vs.metadata, generation: 2 } }), base);
  t.not(vsDigest({ ...vs, spec: { ...vs.spec, hosts: ['ratings'] } }), base);
});

test('core kinds: labels and spec count; status, generation and resourceVersion do not', (t) => {
  const base = podDigest(pod);
  t.is(podDigest({ ...pod, status: { phase: 'Running', podIP: '10.0.0.9' } }), base, 'a kubelet status update');
  t.is(podDigest({ ...pod, metadata: { ...pod.metadata, generation: 2, resourceVersion: '8' } }), base);
  t.not(podDigest({ ...pod, metadata: { ...pod.metadata, labels: { app: 'reviews', version: 'v2' } } }), base);
  t.not(podDigest({ ...pod, spec: { ...pod.spec, serviceAccountName: 'other' } }), base);
  const input = modelInput('Pod', 'v1', pod);
  t.like(input, { kind: 'Pod', namespace: 'shop', name: 'reviews-1' });
  t.like(input?.object as object, { apiVersion: 'v1', kind: 'Pod' }, 'list items lack kind and apiVersion: set');
});

test('a Namespace is cluster-scoped; an object without a name has no input', (t) => {
  t.like(modelInput('Namespace', 'v1', { metadata: { name: 'shop', namespace: 'ignored' } }), {
    namespace: '',
    name: 'shop',
  });
  t.is(modelInput('Service', 'v1', { metadata: {} }), undefined);
  t.is(modelInput('Service', 'v1', null), undefined);
});

test('a Node is cluster-scoped and only its topology labels count (heartbeats, annotations, other labels do not)', (t) => {
  const node = (labels: Record<string, string>, extra: Record<string, unknown> = {}) => ({
    metadata: { name: 'node-a', resourceVersion: '5', labels, annotations: { 'node.alpha.kubernetes.io/ttl': '0' } },
    spec: { podCIDR: '10.0.0.0/24' },
    status: { conditions: [{ type: 'Ready', status: 'True' }] },
    ...extra,
  });
  const zoneA = {
    'topology.kubernetes.io/region': 'r1',
    'topology.kubernetes.io/zone': 'a',
    'kubernetes.io/os': 'linux',
  };
  const input = modelInput('Node', 'v1', node(zoneA));
  t.is(input?.namespace, '');
  t.deepEqual((input?.object as { metadata: unknown }).metadata, {
    name: 'node-a',
    labels: { 'topology.kubernetes.io/region': 'r1', 'topology.kubernetes.io/zone': 'a' },
  });
  const base = digest('Node', 'v1', node(zoneA));
  t.is(digest('Node', 'v1', node({ ...zoneA, 'kubernetes.io/os': 'windows' }, { status: {} })), base);
  t.not(digest('Node', 'v1', node({ ...zoneA, 'topology.kubernetes.io/zone': 'b' })), base);
});
