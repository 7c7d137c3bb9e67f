// ServiceEntry translation beyond the goldens: the egress listener's conflicts (two entries taking one TCP
// port, an SNI two entries name, a port an HTTP listener holds) are left out and noted, never NACKed; two
// entries on one virtual IP keep one listener; proxyless gRPC gets only the hosts grpc-js can resolve.
import test from 'ava';
import type { Listener } from '../../control-plane/envoy/gen/envoy/config/listener/v3/listener_pb.js';
import type { MeshObject } from '../../control-plane/model/objects.js';
import { buildClusters } from '../../control-plane/translate/clusters.js';
import { sidecarListeners } from '../../control-plane/translate/listeners-sidecar.js';
import { apiListeners } from '../../control-plane/translate/listeners-grpc.js';
import type { ServiceEntrySpec } from '../../crds/types.js';
import {
  assertEnvoyResourcesValid,
  contextFor,
  envoyProxy,
  grpcProxy,
  service,
  snapshotOf,
  toJson,
} from './_snapshots.js';

function serviceEntry(name: string, spec: ServiceEntrySpec): MeshObject {
  return {
    kind: 'ServiceEntry',
    namespace: 'shop',
    name,
    object: {
      apiVersion: 'networking.trellis.dev/v1alpha1',
      kind: 'ServiceEntry',
      metadata: { name, namespace: 'shop' },
      spec,
    },
    origin: {},
  };
}

const listenerNamed = (listeners: Listener[], name: string) => listeners.find((l) => l.name === name);

test('conflicts on the egress listener are left out and noted, and what is sent passes Envoy validation', async (t) => {
  const snapshot = snapshotOf([
    // Two TCP entries without addresses on 5432: the first by host takes the port.
    serviceEntry('pg-a', { hosts: ['a.pg.example.com'], ports: [{ number: 5432, name: 'tcp-pg', protocol: 'TCP' }] }),
    serviceEntry('pg-b', { hosts: ['b.pg.example.com'], ports: [{ number: 5432, name: 'tcp-pg', protocol: 'TCP' }] }),
    // One SNI host named by two entries (different hosts, same wildcard-free name via the VirtualService).
    serviceEntry('api', {
      hosts: ['api.example.com'],
      resolution: 'DNS',
      ports: [{ number: 443, name: 'tls', protocol: 'TLS' }],
    }),
    {
      kind: 'VirtualService',
      namespace: 'shop',
      name: 'wild',
      object: {
        apiVersion: 'networking.trellis.dev/v1alpha1',
        kind: 'VirtualService',
        metadata: { name: 'wild', namespace: 'shop' },
        spec: {
          hosts: ['*.example.com'],
          tls: [{ match: [{ sniHosts: ['api.example.com'] }], route: [{ destination: { host: 'api.example.com' } }] }],
        },
      },
      origin: {},
    },
    serviceEntry('wild', { hosts: ['*.example.com'], ports: [{ number: 443, name: 'tls', protocol: 'TLS' }] }),
    // A TCP entry on a port that is an HTTP port of a Service.
    service('shop', 'web', [{ name: 'http', port: 8080 }], { clusterIP: '10.96.0.9' }),
    serviceEntry('raw', { hosts: ['raw.example.com'], ports: [{ number: 8080, name: 'tcp', protocol: 'TCP' }] }),
    // Two entries on one virtual IP and port.
    serviceEntry('vip-a', {
      hosts: ['a.vip.example.com'],
      addresses: ['240.0.0.1'],
      resolution: 'DNS',
      ports: [{ number: 6379, name: 'tcp', protocol: 'TCP' }],
    }),
    serviceEntry('vip-b', {
      hosts: ['b.vip.example.com'],
      addresses: ['240.0.0.1'],
      resolution: 'DNS',
      ports: [{ number: 6379, name: 'tcp', protocol: 'TCP' }],
    }),
  ]);
  const notes: string[] = [];
  const listeners = sidecarListeners(contextFor(snapshot, envoyProxy('shop')), notes);
  t.deepEqual(notes.sort(), [
    '0.0.0.0_443: SNI api.example.com is already routed by an earlier chain',
    'b.pg.example.com:5432: another ServiceEntry already takes every connection to the port',
    'b.vip.example.com:6379: 240.0.0.1_6379 is already the listener of another service; left out',
    'raw.example.com:8080: the port is an HTTP port of another service; no TCP listener',
  ]);
  const pg = toJson(listenerNamed(listeners, '0.0.0.0_5432')!);
  t.like(pg, { defaultFilterChain: { filters: [{ typedConfig: { cluster: 'outbound|5432||a.pg.example.com' } }] } });
  const tls = toJson(listenerNamed(listeners, '0.0.0.0_443')!) as { filterChains: { filterChainMatch: unknown }[] };
  t.deepEqual(
    tls.filterChains.map((c) => c.filterChainMatch),
    [{ serverNames: ['api.example.com'] }],
  );
  t.is(listeners.filter((l) => l.name === '240.0.0.1_6379').length, 1);
  t.is(listeners.filter((l) => l.name === '0.0.0.0_8080').length, 1);
  await assertEnvoyResourcesValid(t, [...listeners, ...buildClusters(contextFor(snapshot, envoyProxy('shop')))]);
});

test('proxyless gRPC: STATIC and one-name DNS hosts; NONE and several-name DNS hosts are left out', (t) => {
  const grpcPort = [{ number: 7070, name: 'grpc', protocol: 'GRPC' as const }];
  const snapshot = snapshotOf([
    serviceEntry('static', {
      hosts: ['static.example.com'],
      resolution: 'STATIC',
      ports: grpcPort,
      endpoints: [{ address: '192.0.2.1' }],
    }),
    serviceEntry('dns-one', { hosts: ['one.example.com'], resolution: 'DNS', ports: grpcPort }),
    serviceEntry('dns-two', {
      hosts: ['two.example.com'],
      resolution: 'DNS',
      ports: grpcPort,
      endpoints: [{ address: 'a.example.com' }, { address: 'b.example.com' }],
    }),
    serviceEntry('rr', {
      hosts: ['rr.example.com'],
      resolution: 'DNS_ROUND_ROBIN',
      ports: grpcPort,
      endpoints: [{ address: 'c.example.com' }],
    }),
    serviceEntry('none', { hosts: ['none.example.com'], resolution: 'NONE', ports: grpcPort }),
  ]);
  const ctx = contextFor(snapshot, grpcProxy('shop'));
  t.deepEqual(
    buildClusters(ctx).map((c) => [c.name, c.clusterDiscoveryType.case === 'type' ? c.clusterDiscoveryType.value : '']),
    [
      ['outbound|7070||one.example.com', 2],
      ['outbound|7070||rr.example.com', 2],
      ['outbound|7070||static.example.com', 3],
    ],
    'LOGICAL_DNS (2) and EDS (3)',
  );
  t.deepEqual(
    apiListeners(ctx).map((l) => l.name),
    ['one.example.com:7070', 'rr.example.com:7070', 'static.example.com:7070'],
  );
  // An Envoy sidecar gets all five.
  t.is(
    buildClusters(contextFor(snapshot, envoyProxy('shop'))).filter((c) => c.name.startsWith('outbound|7070')).length,
    5,
  );
});
