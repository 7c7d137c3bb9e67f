// The control plane's own metrics and the object → proxies mapping, on real snapshots (the model built
// from objects) and the real validator and webhook handlers: `trellis_config_objects` by kind and state,
// `trellis_build_info`, the webhook reviews and latency (`timedHandlers` around `/validate`), and
// translate/sources.ts (which VirtualServices, DestinationRules and PeerAuthentications a proxy's config
// is translated from).
import test from 'ava';
import { Registry } from 'prom-client';
import { registerBuildInfo, registerConfigObjects } from '../../control-plane/config-metrics.js';
import { meshSources, proxySources } from '../../control-plane/translate/sources.js';
import { defaultMeshConfig } from '../../control-plane/translate/context.js';
import { timedHandlers } from '../../control-plane/webhook/metrics.js';
import { validateAdmission, type AdmissionRequest } from '../../control-plane/webhook/validate.js';
import {
  destinationRule,
  envoyProxy,
  grpcProxy,
  namespace,
  peerAuthentication,
  pod,
  service,
  slice,
  snapshotOf,
  virtualService,
} from '../translate/_snapshots.js';

const objects = [
  namespace('shop'),
  namespace('other'),
  service('shop', 'reviews', [{ name: 'http', port: 8080 }]),
  slice('shop', 'reviews-1', 'reviews', [{ name: 'http', port: 8080 }], [{ address: '10.1.0.1', pod: 'reviews-1' }]),
  pod('shop', 'reviews-1', { app: 'reviews' }),
  service('shop', 'ratings', [{ name: 'http', port: 8080 }]),
  virtualService(
    'shop',
    'reviews',
    { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }] }] },
    { creationTimestamp: '2026-01-01T00:00:00Z', generation: 1 },
  ),
  // Younger, same host: conflicted.
  virtualService(
    'shop',
    'reviews-again',
    { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }] }] },
    { creationTimestamp: '2026-01-02T00:00:00Z', generation: 1 },
  ),
  // Not RE2: invalid.
  virtualService('shop', 'broken', {
    hosts: ['ratings'],
    http: [{ match: [{ uri: { regex: '(?!x)' } }], route: [{ destination: { host: 'ratings' } }] }],
  }),
  // Visible in shop only.
  virtualService('shop', 'private-ratings', {
    hosts: ['ratings'],
    exportTo: ['.'],
    http: [{ timeout: '2s', route: [{ destination: { host: 'ratings' } }] }],
  }),
  destinationRule('shop', 'reviews', { host: 'reviews', trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } }),
  peerAuthentication('shop', 'strict-reviews', {
    selector: { matchLabels: { app: 'reviews' } },
    mtls: { mode: 'STRICT' },
  }),
  peerAuthentication('other', 'other-default', { mtls: { mode: 'PERMISSIVE' } }),
];

test('trellis_config_objects: every kind and state, from the current snapshot at scrape time', async (t) => {
  const snapshot = snapshotOf(objects);
  const registry = new Registry();
  let ready = false;
  registerConfigObjects(registry, { current: () => snapshot, ready: () => ready });
  const values = async (): Promise<Record<string, number>> =>
    Object.fromEntries(
      (await registry.getMetricsAsJSON())[0]!.values.map((v) => [`${v.labels.kind}/${v.labels.state}`, v.value]),
    );
  t.deepEqual(await values(), {}, 'nothing before the first snapshot');
  ready = true;
  t.deepEqual(await values(), {
    'VirtualService/accepted': 2,
    'VirtualService/invalid': 1,
    'VirtualService/conflicted': 1,
    'DestinationRule/accepted': 1,
    'DestinationRule/invalid': 0,
    'DestinationRule/conflicted': 0,
    'PeerAuthentication/accepted': 2,
    'PeerAuthentication/invalid': 0,
    'PeerAuthentication/conflicted': 0,
    'AuthorizationPolicy/accepted': 0,
    'AuthorizationPolicy/invalid': 0,
    'AuthorizationPolicy/conflicted': 0,
    'ServiceEntry/accepted': 0,
    'ServiceEntry/invalid': 0,
    'ServiceEntry/conflicted': 0,
    'Sidecar/accepted': 0,
    'Sidecar/invalid': 0,
    'Sidecar/conflicted': 0,
  });
});

test('trellis_build_info: 1, with the version, Node.js and the mode', async (t) => {
  const registry = new Registry();
  registerBuildInfo(registry, 'kubernetes');
  const [metric] = await registry.getMetricsAsJSON();
  t.is(metric!.values.length, 1);
  t.is(metric!.values[0]!.value, 1);
  t.like(metric!.values[0]!.labels, { node_version: process.version, mode: 'kubernetes' });
  t.regex(String(metric!.values[0]!.labels.version), /^\d+\.\d+\.\d+/);
});

test('trellis_webhook_*: each review counted by path and result, and timed', async (t) => {
  const registry = new Registry();
  const handlers = timedHandlers(registry, {
    '/validate': validateAdmission,
    '/fails': () => Promise.reject(new Error('boom')),
  });
  const review = (object: unknown): AdmissionRequest => ({
    uid: 'u',
    operation: 'CREATE',
    namespace: 'shop',
    kind: { kind: 'VirtualService' },
    object,
  });
  const vs = (regex: string) => ({
    apiVersion: 'networking.trellis.dev/v1alpha1',
    kind: 'VirtualService',
    metadata: { name: 'r', namespace: 'shop' },
    spec: { hosts: ['r'], http: [{ match: [{ uri: { regex } }], route: [{ destination: { host: 'r' } }] }] },
  });
  t.true((await handlers['/validate']!(review(vs('^/a'))))!.response!.allowed);
  t.false((await handlers['/validate']!(review(vs('(?!x)'))))!.response!.allowed);
  await t.throwsAsync(async () => handlers['/fails']!(review({})), { message: 'boom' });
  const json = await registry.getMetricsAsJSON();
  const reviews = json.find((m) => m.name === 'trellis_webhook_reviews_total')!.values;
  const count = (path: string, result: string): number =>
    reviews.find((v) => v.labels.path === path && v.labels.result === result)?.value ?? 0;
  t.is(count('/validate', 'allowed'), 1);
  t.is(count('/validate', 'denied'), 1);
  t.is(count('/fails', 'error'), 1);
  const durations = json.find((m) => m.name === 'trellis_webhook_duration_seconds')!.values as {
    metricName?: string;
    labels: Record<string, unknown>;
    value: number;
  }[];
  t.is(durations.find((v) => v.metricName?.endsWith('_count') && v.labels.path === '/validate')?.value, 2);
});

test('proxySources: what the translator looks up for a proxy, by its namespace and labels', (t) => {
  const snapshot = snapshotOf(objects);
  const mesh = defaultMeshConfig;
  // A sidecar of reviews in shop: the winning VirtualServices of the Services it sees, the DestinationRule,
  // and the PeerAuthentication that selects its own workload (and the destination's).
  t.deepEqual(proxySources(snapshot, envoyProxy('shop', { labels: { app: 'reviews' } }), mesh), [
    'DestinationRule/shop/reviews',
    'PeerAuthentication/shop/strict-reviews',
    'VirtualService/shop/private-ratings',
    'VirtualService/shop/reviews',
  ]);
  // A proxyless client in `other`: the exportTo ['.'] VirtualService is not visible there; its namespace
  // policy decides its inbound mode; reviews' endpoints are decided by strict-reviews.
  t.deepEqual(proxySources(snapshot, grpcProxy('other'), mesh), [
    'DestinationRule/shop/reviews',
    'PeerAuthentication/other/other-default',
    'PeerAuthentication/shop/strict-reviews',
    'VirtualService/shop/reviews',
  ]);
  // Memoized per snapshot and (namespace, selector labels): the same array for the Pods of a workload.
  const sources = meshSources(mesh);
  const a = sources(envoyProxy('shop', { id: 'reviews-1.shop', labels: { app: 'reviews', pod: '1' } }), snapshot);
  const b = sources(envoyProxy('shop', { id: 'reviews-2.shop', labels: { app: 'reviews', pod: '2' } }), snapshot);
  t.is(a, b);
  t.not(sources(envoyProxy('shop', { labels: { app: 'ratings' } }), snapshot), a);
});
