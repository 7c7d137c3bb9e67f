// The Sidecar rules of crds/validator.ts (schema, CEL, beyond), named for Istio's rules (istio/istio
// pkg/config/validation ValidateSidecar, validateNamespaceSlashWildcardHostname) and for the Istio fields
// Trellis does not implement.
import test from 'ava';
import { API_VERSION } from '../../crds/types.js';
import { formatIssue, isMeshResource, validateByLayer, validateRoutingResource } from '../../crds/validator.js';

type Json = Record<string, unknown>;

const sidecar = (spec: Json, metadata: Json = { name: 'scope', namespace: 'shop' }): Json => ({
  apiVersion: API_VERSION,
  kind: 'Sidecar',
  metadata,
  spec,
});

const lines = (obj: unknown, severity: 'error' | 'warning'): string[] =>
  validateRoutingResource(obj)
    .issues.filter((i) => i.severity === severity)
    .map((i) => `${i.path}: ${i.message}`);
const errors = (obj: unknown) => lines(obj, 'error');
const warnings = (obj: unknown) => lines(obj, 'warning');
const hosts = (...h: string[]) => sidecar({ egress: [{ hosts: h }] });

test('valid Sidecars: every host form Istio allows, a workload selector, the outbound traffic policy', (t) => {
  for (const spec of [
    { egress: [{ hosts: ['./*', 'istio-system/*'] }] },
    { egress: [{ hosts: ['*/*'] }], outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } },
    { egress: [{ hosts: ['~/*'] }] },
    { egress: [{ hosts: ['*/reviews.shop.svc.cluster.local', 'shop/*.shop.svc.cluster.local'] }] },
    { outboundTrafficPolicy: { mode: 'ALLOW_ANY' } },
    {
      workloadSelector: { labels: { app: 'reviews' } },
      egress: [{ port: { number: 9080, protocol: 'HTTP', name: 'http' }, hosts: ['./*'] }, { hosts: ['*/*'] }],
    },
  ]) {
    const result = validateRoutingResource(sidecar(spec));
    t.deepEqual(errors(sidecar(spec)), [], JSON.stringify(spec));
    t.is(result.kind, 'Sidecar');
    t.truthy(result.resource);
  }
  t.true(isMeshResource(sidecar({ egress: [{ hosts: ['./*'] }] })));
  t.false(isMeshResource({ ...sidecar({}), apiVersion: 'security.trellis.dev/v1alpha1' }));
});

test('Istio validateNamespaceSlashWildcardHostname: namespace/dnsName, a valid namespace, a valid name', (t) => {
  t.deepEqual(errors(hosts('reviews.shop.svc.cluster.local')), [
    'spec.egress[0].hosts[0]: host must be of form namespace/dnsName',
  ]);
  t.deepEqual(errors(hosts('/reviews')), [
    'spec.egress[0].hosts[0]: config namespace and dnsName in host entry cannot be empty',
  ]);
  t.deepEqual(errors(hosts('shop/')), [
    'spec.egress[0].hosts[0]: config namespace and dnsName in host entry cannot be empty',
  ]);
  t.deepEqual(errors(hosts('Shop_1/*')), ['spec.egress[0].hosts[0]: invalid namespace value "Shop_1" in sidecar']);
  t.deepEqual(errors(hosts('shop/foo.*.com')), [
    'spec.egress[0].hosts[0]: invalid dnsName "foo.*.com": must be *, *.suffix or a host name (lower case DNS labels)',
  ]);
});

test('Istio ValidateSidecar: an empty configuration, egress listeners without port, unique ports, hosts required', (t) => {
  t.deepEqual(errors(sidecar({})), [': sidecar: empty configuration provided']);
  t.deepEqual(errors(sidecar({ egress: [{ hosts: ['./*'] }, { port: { number: 80 }, hosts: ['./*'] }] })), [
    'spec.egress[0]: sidecar: the egress listener with empty port should be the last listener in the list',
  ]);
  t.deepEqual(errors(sidecar({ egress: [{ hosts: ['./*'] }, { hosts: ['*/*'] }] })), [
    'spec.egress[0]: sidecar: the egress listener with empty port should be the last listener in the list',
  ]);
  t.deepEqual(
    errors(
      sidecar({
        egress: [
          { port: { number: 80 }, hosts: ['./*'] },
          { port: { number: 80 }, hosts: ['*/*'] },
        ],
      }),
    ),
    ['spec.egress[1].port.number: sidecar: ports on IP bound listeners must be unique'],
  );
  t.deepEqual(errors(sidecar({ egress: [{ hosts: [] }] })), ['spec.egress[0].hosts: must not be empty']);
  t.deepEqual(errors(sidecar({ egress: [{}] })), ['spec.egress[0].hosts: is required']);
  t.deepEqual(errors(sidecar({ egress: [{ bind: 'unix:///var/run/x.sock', port: { number: 80 }, hosts: ['./*'] }] })), [
    'spec.egress[0].bind: sidecar: bind must be an IP address (Trellis serves no Unix domain sockets)',
  ]);
});

test('Istio: a workloadSelector has at least one label (a CEL rule the API server runs too)', (t) => {
  const empty = sidecar({ workloadSelector: { labels: {} }, egress: [{ hosts: ['./*'] }] });
  t.deepEqual(errors(empty), ['spec.workloadSelector.labels: must have at least one label']);
  t.deepEqual(
    validateByLayer(empty).cel.map((i) => i.path),
    ['spec.workloadSelector.labels'],
  );
  t.deepEqual(errors(sidecar({ workloadSelector: {}, egress: [{ hosts: ['./*'] }] })), [
    'spec.workloadSelector.labels: is required',
  ]);
  t.deepEqual(errors(sidecar({ workloadSelector: { labels: { 'a/b/c': 'x' } }, egress: [{ hosts: ['./*'] }] })), [
    'spec.workloadSelector.labels: keys must be Kubernetes label names',
  ]);
});

test('warnings: duplicated egress hosts (Istio), a short dnsName, a port-specific listener (the scope is per Service)', (t) => {
  t.deepEqual(warnings(hosts('shop/*', 'shop/reviews.shop.svc.cluster.local')), [
    'spec.egress[0].hosts[1]: duplicated egress host: shop/reviews.shop.svc.cluster.local',
  ]);
  t.deepEqual(
    warnings(sidecar({ egress: [{ hosts: ['./a.shop.svc.cluster.local', 'shop/a.shop.svc.cluster.local'] }] })),
    ['spec.egress[0].hosts[1]: duplicated egress host: shop/a.shop.svc.cluster.local'],
  );
  t.deepEqual(warnings(hosts('shop/reviews')), [
    'spec.egress[0].hosts[0]: dnsName "reviews" is matched as a full name: write the FQDN (reviews.<namespace>.svc.cluster.local)',
  ]);
  t.deepEqual(warnings(sidecar({ egress: [{ port: { number: 9080 }, hosts: ['./*'] }] })), [
    'spec.egress[0].port: the scope is per Service: every port of a Service these hosts match is in it',
  ]);
});

test('Istio fields Trellis does not implement are named, not "unknown field"', (t) => {
  t.deepEqual(errors(sidecar({ egress: [{ hosts: ['./*'] }], ingress: [{ port: { number: 80 } }] })), [
    'spec.ingress: is not implemented by Trellis: inbound listeners come from the Service ports a Pod serves; leave it out',
  ]);
  t.deepEqual(errors(sidecar({ egress: [{ hosts: ['./*'], captureMode: 'NONE' }] })), [
    'spec.egress[0].captureMode: is not implemented by Trellis (traffic capture is set by the injector); leave it out',
  ]);
  t.deepEqual(
    errors(sidecar({ outboundTrafficPolicy: { mode: 'ALLOW_ANY', egressProxy: { host: 'egress.example.com' } } })),
    ['spec.outboundTrafficPolicy.egressProxy: is not implemented by Trellis; leave it out'],
  );
  t.deepEqual(errors(sidecar({ egress: [{ hosts: ['./*'] }], outboundTrafficPolicy: { mode: 'BLOCK' } })), [
    'spec.outboundTrafficPolicy.mode: must be one of: ALLOW_ANY, REGISTRY_ONLY',
  ]);
});

test('formatIssue names the Sidecar', (t) => {
  const result = validateRoutingResource(hosts('nope'));
  t.is(
    formatIssue(result, result.issues[0]!, { file: 'scope.yaml', document: 0 }),
    'scope.yaml#1: Sidecar shop/scope: spec.egress[0].hosts[0]: host must be of form namespace/dnsName',
  );
});
