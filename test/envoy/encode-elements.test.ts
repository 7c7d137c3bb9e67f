// encodeMessage keeps the bytes of a large repeated field's elements per element object (protos.ts
// encodeWithElements): its output must be exactly protobuf-es toBinary's, whatever fields sit around the
// list, and a changed element must show in the bytes; so must encodeMessageAny's, the Any the resource
// cache keeps, written into one buffer of the exact size.
import { create, toBinary } from '@bufbuild/protobuf';
import test from 'ava';
import { RouteConfigurationSchema } from '../../control-plane/envoy/gen/envoy/config/route/v3/route_pb.js';
import { VirtualHostSchema } from '../../control-plane/envoy/gen/envoy/config/route/v3/route_components_pb.js';
import { AnySchema } from '@bufbuild/protobuf/wkt';
import { RouterSchema } from '../../control-plane/envoy/gen/envoy/extensions/filters/http/router/v3/router_pb.js';
import {
  encodeAny,
  encodeMessage,
  encodeMessageAny,
  packAny,
  schemaOf,
  typeUrlOf,
  type Message,
} from '../../control-plane/envoy/protos.js';

function vhost(i: number, cluster = `outbound|8080||svc-${i}.ns.svc.cluster.local`) {
  return create(VirtualHostSchema, {
    name: `svc-${i}.ns.svc.cluster.local:8080`,
    domains: [`svc-${i}`, `svc-${i}.ns`, `10.96.0.${i % 250}`],
    includeRequestAttemptCount: true,
    routes: [
      {
        name: 'default',
        match: { pathSpecifier: { case: 'prefix', value: '/' } },
        action: { case: 'route', value: { clusterSpecifier: { case: 'cluster', value: cluster } } },
      },
    ],
  });
}

test('a route configuration with many virtual hosts encodes to the bytes toBinary gives', (t) => {
  const vhosts = Array.from({ length: 200 }, (_, i) => vhost(i));
  const route = create(RouteConfigurationSchema, {
    name: '8080',
    virtualHosts: vhosts,
    validateClusters: false,
    ignorePortInHostMatching: true,
    maxDirectResponseBodySizeBytes: 1_048_576,
    internalOnlyHeaders: ['x-internal'],
  });
  t.deepEqual(Buffer.from(encodeMessage(route)), Buffer.from(toBinary(RouteConfigurationSchema, route)));
  // Again (the elements' bytes now come from the memo), and with one element replaced.
  t.deepEqual(Buffer.from(encodeMessage(route)), Buffer.from(toBinary(RouteConfigurationSchema, route)));
  const patched = { ...route, virtualHosts: vhosts.map((v, i) => (i === 7 ? vhost(7, 'elsewhere') : v)) };
  const bytes = Buffer.from(encodeMessage(patched));
  t.deepEqual(bytes, Buffer.from(toBinary(RouteConfigurationSchema, patched)));
  t.notDeepEqual(bytes, Buffer.from(encodeMessage(route)));
  // Only a name, and no field after the list.
  const bare = create(RouteConfigurationSchema, { virtualHosts: vhosts });
  t.deepEqual(Buffer.from(encodeMessage(bare)), Buffer.from(toBinary(RouteConfigurationSchema, bare)));
});

test('encodeMessageAny gives the bytes of encodeAny(packAny(message)), large lists and empty messages included', (t) => {
  const anyBytes = (m: Message) =>
    Buffer.from(
      toBinary(
        AnySchema,
        create(AnySchema, { typeUrl: typeUrlOf(m.$typeName), value: toBinary(schemaOf(m.$typeName), m) }),
      ),
    );
  // Element lengths across the one- and two-byte varint boundary (127/128 bytes) and a list above 32 elements.
  const vhosts = Array.from({ length: 300 }, (_, i) => vhost(i, `c${'x'.repeat(i % 150)}`));
  const route = create(RouteConfigurationSchema, {
    name: '8080',
    virtualHosts: vhosts,
    ignorePortInHostMatching: true,
  });
  const messages: Message[] = [
    route,
    create(RouteConfigurationSchema, { virtualHosts: vhosts.slice(0, 40) }),
    create(RouteConfigurationSchema, { name: 'small', virtualHosts: vhosts.slice(0, 3) }),
    vhost(1),
    create(RouterSchema), // empty: the Any has no value field
  ];
  for (const m of messages) {
    const bytes = Buffer.from(encodeMessageAny(m));
    t.deepEqual(bytes, anyBytes(m), m.$typeName);
    t.deepEqual(bytes, Buffer.from(encodeAny(packAny(m))));
  }
  // A value above 16 KiB: its length takes a three-byte varint.
  t.true(encodeMessageAny(route).length > 16_384);
});
