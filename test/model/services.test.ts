// Services, ports and endpoints: target port resolution, labels from Pods, readiness, locality, mesh
// membership, and what is reported when an object cannot be used.
import test from 'ava';
import { buildSnapshot } from '../../control-plane/model/build-snapshot.js';
import { findService, instancesAt, instancesOfPod, servicesVisibleFrom } from '../../control-plane/model/lookup.js';
import type { MeshObject } from '../../control-plane/model/objects.js';
import { namespace, pod, service, slice, workload } from './_objects.js';
import { formatIssue, validateRoutingResource } from '../../crds/validator.js';

const build = (objects: MeshObject[]) => buildSnapshot(objects, { validate: validateRoutingResource, formatIssue });

test('services are keyed by FQDN, with ports sorted and protocol chosen', (t) => {
  const s = build([
    service(
      'shop',
      'cart',
      [
        { name: 'tcp-admin', port: 9000 },
        { name: 'http-web', port: 80, targetPort: 8080 },
        { name: 'grpc', port: 9090, appProtocol: 'http2' },
      ],
      { clusterIP: '10.0.0.7' },
    ),
    service('default', 'api', [{ port: 443 }]),
  ]);
  t.deepEqual(
    s.services.map((x) => x.fqdn),
    ['api.default.svc.cluster.local', 'cart.shop.svc.cluster.local'],
  );
  const cart = s.index.servicesByFqdn.get('cart.shop.svc.cluster.local')!;
  t.deepEqual(cart.clusterIPs, ['10.0.0.7']);
  t.false(cart.headless);
  t.deepEqual(
    cart.ports.map((p) => [p.port, p.name, p.targetPort, p.protocol, p.protocolFrom]),
    [
      [80, 'http-web', 8080, 'HTTP', 'portName'],
      [9000, 'tcp-admin', 9000, 'TCP', 'portName'],
      [9090, 'grpc', 9090, 'HTTP2', 'appProtocol'],
    ],
  );
  const api = s.index.servicesByFqdn.get('api.default.svc.cluster.local')!;
  t.deepEqual(
    api.ports.map((p) => [p.name, p.protocol, p.protocolFrom]),
    [['', 'TCP', 'default']],
  );
  t.deepEqual(s.problems, []);
});

test('a named target port is resolved per endpoint from its EndpointSlice; a numbered one too', (t) => {
  const s = build([
    service('shop', 'cart', [
      { name: 'http', port: 80, targetPort: 'web' },
      { name: 'tcp-metrics', port: 9100, targetPort: 9100 },
    ]),
    pod('shop', 'cart-a', { app: 'cart' }),
    pod('shop', 'cart-b', { app: 'cart' }),
    // Two Pods declare `web` on different numbers, so the controller writes two slices.
    slice(
      'shop',
      'cart-1',
      'cart',
      [
        { name: 'http', port: 8080 },
        { name: 'tcp-metrics', port: 9100 },
      ],
      [{ address: '10.1.0.1', pod: 'cart-a' }],
    ),
    slice('shop', 'cart-2', 'cart', [{ name: 'http', port: 8081 }], [{ address: '10.1.0.2', pod: 'cart-b' }]),
  ]);
  const cart = s.services[0]!;
  t.is(cart.ports[0]!.targetPort, 'web');
  t.deepEqual(
    cart.ports[0]!.endpoints.map((e) => `${e.address}:${e.port}`),
    ['10.1.0.1:8080', '10.1.0.2:8081'],
  );
  // cart-b's slice has no tcp-metrics port: the Pod does not serve it.
  t.deepEqual(
    cart.ports[1]!.endpoints.map((e) => `${e.address}:${e.port}`),
    ['10.1.0.1:9100'],
  );
});

test('a slice port without a number takes the numeric target port; a slice without the port serves nothing', (t) => {
  const s = build([
    service('shop', 'cart', [{ name: 'http', port: 80, targetPort: 8080 }]),
    slice('shop', 'cart-1', 'cart', [{ name: 'http' }], [{ address: '10.1.0.1' }]),
    slice('shop', 'cart-2', 'cart', [{ name: 'grpc', port: 9000 }], [{ address: '10.1.0.2' }]),
  ]);
  t.deepEqual(
    s.services[0]!.ports[0]!.endpoints.map((e) => `${e.address}:${e.port}`),
    ['10.1.0.1:8080'],
  );
});

test('endpoints carry the labels, service account, locality and mesh membership of their Pod', (t) => {
  const s = build([
    service('shop', 'cart', [{ name: 'http', port: 80 }]),
    pod(
      'shop',
      'cart-v1',
      {
        app: 'cart',
        version: 'v1',
        'trellis.dev/tlsMode': 'mesh',
        'topology.kubernetes.io/region': 'eu-west',
        'topology.kubernetes.io/zone': 'eu-west-1b',
        'topology.trellis.dev/subzone': 'rack7',
      },
      'cart-sa',
    ),
    pod('shop', 'cart-v2', { app: 'cart', version: 'v2' }),
    slice(
      'shop',
      'cart-1',
      'cart',
      [{ name: 'http', port: 80 }],
      [
        { address: '10.1.0.1', pod: 'cart-v1', zone: 'eu-west-1a' },
        { address: '10.1.0.2', pod: 'cart-v2' },
        { address: '10.1.0.3', pod: 'gone' },
        { address: '10.1.0.4' },
      ],
    ),
  ]);
  const [a, b, c, d] = s.services[0]!.ports[0]!.endpoints;
  t.deepEqual(a, {
    address: '10.1.0.1',
    port: 80,
    ready: true,
    labels: {
      app: 'cart',
      'topology.kubernetes.io/region': 'eu-west',
      'topology.kubernetes.io/zone': 'eu-west-1b',
      'topology.trellis.dev/subzone': 'rack7',
      'trellis.dev/tlsMode': 'mesh',
      version: 'v1',
    },
    // The slice's zone wins over the Pod's label.
    locality: { region: 'eu-west', zone: 'eu-west-1a', subZone: 'rack7' },
    serviceAccount: 'cart-sa',
    inMesh: true,
    pod: { namespace: 'shop', name: 'cart-v1' },
  });
  t.deepEqual([b!.labels, b!.serviceAccount, b!.inMesh], [{ app: 'cart', version: 'v2' }, 'default', false]);
  // A Pod the model has not seen, or no targetRef: no labels, no service account.
  t.deepEqual([c!.labels, c!.serviceAccount, c!.pod], [{}, '', { namespace: 'shop', name: 'gone' }]);
  t.deepEqual([d!.labels, d!.serviceAccount, d!.pod], [{}, '', undefined]);
  t.deepEqual(s.services[0]!.serviceAccounts, ['cart-sa', 'default']);
});

test('readiness: conditions.ready false is not ready, a missing condition is ready', (t) => {
  const s = build([
    service('shop', 'cart', [{ name: 'http', port: 80 }]),
    slice(
      'shop',
      'cart-1',
      'cart',
      [{ name: 'http', port: 80 }],
      [{ address: '10.1.0.1', ready: true }, { address: '10.1.0.2', ready: false }, { address: '10.1.0.3' }],
    ),
  ]);
  t.deepEqual(
    s.services[0]!.ports[0]!.endpoints.map((e) => [e.address, e.ready]),
    [
      ['10.1.0.1', true],
      ['10.1.0.2', false],
      ['10.1.0.3', true],
    ],
  );
});

test('an address listed by two slices is one endpoint, the ready one', (t) => {
  const s = build([
    service('shop', 'cart', [{ name: 'http', port: 80 }]),
    slice('shop', 'cart-a', 'cart', [{ name: 'http', port: 80 }], [{ address: '10.1.0.1', ready: false }]),
    slice('shop', 'cart-b', 'cart', [{ name: 'http', port: 80 }], [{ address: '10.1.0.1', ready: true }]),
  ]);
  t.deepEqual(
    s.services[0]!.ports[0]!.endpoints.map((e) => [e.address, e.ready]),
    [['10.1.0.1', true]],
  );
});

test('headless and exportTo annotation', (t) => {
  const s = build([
    service('shop', 'db', [{ name: 'tcp', port: 5432 }], { clusterIP: 'None' }),
    service('shop', 'private', [{ name: 'http', port: 80 }], {
      annotations: { 'networking.trellis.dev/exportTo': '., ops' },
    }),
    service('other', 'public', [{ name: 'http', port: 80 }]),
  ]);
  const db = s.index.servicesByFqdn.get('db.shop.svc.cluster.local')!;
  t.true(db.headless);
  t.deepEqual(db.clusterIPs, []);
  t.deepEqual(s.index.servicesByFqdn.get('private.shop.svc.cluster.local')!.exportTo, ['ops', 'shop']);
  t.deepEqual(
    servicesVisibleFrom(s, 'shop').map((x) => x.name),
    ['db', 'private', 'public'],
  );
  t.deepEqual(
    servicesVisibleFrom(s, 'dev').map((x) => x.name),
    ['db', 'public'],
  );
});

test('a service is found by any host form, in the namespace of the one asking', (t) => {
  const s = build([service('shop', 'cart', [{ name: 'http', port: 80 }])]);
  for (const host of [
    'cart',
    'cart.shop',
    'cart.shop.svc',
    'cart.shop.svc.cluster.local',
    'Cart.Shop.svc.cluster.local.',
  ]) {
    t.is(findService(s, host, 'shop')?.fqdn, 'cart.shop.svc.cluster.local', host);
  }
  t.is(findService(s, 'cart', 'other'), undefined);
  t.is(findService(s, 'cart.shop', 'other')?.name, 'cart');
});

test('instances of a pod and at an address: what a proxy serves inbound', (t) => {
  const s = build([
    ...workload('shop', 'cart', { name: 'http', port: 80, targetPort: 8080 }, [
      { version: 'v1', address: '10.1.0.1', port: 8080 },
    ]),
    ...workload('shop', 'stock', { name: 'grpc', port: 9090 }, [{ version: 'v1', address: '10.1.0.2', port: 9090 }]),
  ]);
  t.deepEqual(
    instancesOfPod(s, 'shop', 'cart-v1').map((i) => [i.service.name, i.port.port, i.endpoint.port]),
    [['cart', 80, 8080]],
  );
  t.deepEqual(
    instancesAt(s, '10.1.0.2').map((i) => [i.service.name, i.port.port]),
    [['stock', 9090]],
  );
  t.deepEqual(instancesOfPod(s, 'shop', 'nope'), []);
});

test('namespaces: injection label', (t) => {
  const s = build([namespace('shop', { 'trellis.dev/inject': 'enabled' }), namespace('ops')]);
  t.deepEqual(
    s.namespaces.map((n) => [n.name, n.injection]),
    [
      ['ops', false],
      ['shop', true],
    ],
  );
});

test('what cannot be used is reported, naming object and field, and the rest is kept', (t) => {
  const bad = service('shop', 'cart', [
    { name: 'http', port: 80 },
    { name: 'bad', port: 70000 },
    { name: 'dup', port: 80 },
    { name: 'weird', port: 81, protocol: 'QUIC' },
  ]);
  const s = build([
    bad,
    slice('shop', 'orphan', undefined, [{ name: 'http', port: 80 }], [{ address: '10.0.0.1' }]),
    {
      kind: 'EndpointSlice',
      namespace: 'shop',
      name: 'cart-x',
      origin: { file: 'cart.yaml', document: 2 },
      object: {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        addressType: 'IPv4',
        metadata: { name: 'cart-x', labels: { 'kubernetes.io/service-name': 'cart' } },
        ports: [{ name: 'http', port: 80 }],
        endpoints: [{ addresses: [] }, { addresses: ['10.0.0.9'] }],
      },
    },
  ]);
  t.deepEqual(
    s.services[0]!.ports.map((p) => p.port),
    [80],
  );
  t.deepEqual(
    s.services[0]!.ports[0]!.endpoints.map((e) => e.address),
    ['10.0.0.9'],
  );
  t.deepEqual(
    s.problems.map((p) => p.message),
    [
      'Service shop/cart: spec.ports[1].port: must be an integer in 1..65535; the port is ignored',
      'Service shop/cart: spec.ports[2]: port 80/TCP is listed twice; the second is ignored',
      'Service shop/cart: spec.ports[3].protocol: must be TCP, UDP or SCTP; the port is ignored',
      // origin.document is 0-based; people read documents from 1.
      'cart.yaml#3: EndpointSlice shop/cart-x: endpoints[0].addresses: must hold at least one address; the endpoint is ignored',
      'warning: EndpointSlice shop/orphan: metadata.labels: has no kubernetes.io/service-name label, so it belongs to no Service; ignored',
    ],
  );
});
