// The one module that owns the Envoy protos: exact type URLs, Any packing, canonical proto3 JSON both ways,
// deterministic bytes, and errors that name what is wrong.
import test from 'ava';
import { create } from '@bufbuild/protobuf';
import {
  ClusterSchema,
  Cluster_DiscoveryType,
} from '../../control-plane/envoy/gen/envoy/config/cluster/v3/cluster_pb.js';
import {
  anyFromJson,
  anyToJson,
  decodeAny,
  encodeAny,
  messageFromJson,
  messageToJson,
  packAny,
  resourceName,
  shortTypeName,
  TypeUrl,
  unpackAny,
} from '../../control-plane/envoy/protos.js';

const listenerJson = {
  '@type': 'type.googleapis.com/envoy.config.listener.v3.Listener',
  name: 'echo:8080',
  apiListener: {
    apiListener: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
      statPrefix: 'echo',
      rds: { configSource: { ads: {}, resourceApiVersion: 'V3' }, routeConfigName: 'r' },
      httpFilters: [
        {
          name: 'envoy.filters.http.router',
          typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
        },
      ],
    },
  },
};

test('Any packing uses the exact type URL Envoy expects', (t) => {
  const cluster = create(ClusterSchema, {
    name: 'c',
    clusterDiscoveryType: { case: 'type', value: Cluster_DiscoveryType.EDS },
  });
  const any = packAny(cluster);
  t.is(any.typeUrl, 'type.googleapis.com/envoy.config.cluster.v3.Cluster');
  t.is(any.typeUrl, TypeUrl.Cluster);
  t.is(shortTypeName(any.typeUrl), 'CDS');
  const back = unpackAny(decodeAny(encodeAny(any)));
  t.is(back.$typeName, 'envoy.config.cluster.v3.Cluster');
  t.is(resourceName(back), 'c');
});

test('proto3 JSON round-trips through binary, nested Any included, in canonical form', (t) => {
  const any = anyFromJson(listenerJson);
  const json = anyToJson(decodeAny(encodeAny(any)));
  t.deepEqual(json, listenerJson);
  // Canonical durations and enum names on the way out.
  const cluster = messageFromJson(ClusterSchema, {
    name: 'c',
    connectTimeout: '1.5s',
    type: 'EDS',
    lbPolicy: 'RING_HASH',
  });
  t.deepEqual(messageToJson(cluster), { name: 'c', type: 'EDS', connectTimeout: '1.500s', lbPolicy: 'RING_HASH' });
});

test('the same input gives the same bytes', (t) => {
  const a = encodeAny(anyFromJson(listenerJson));
  const b = encodeAny(anyFromJson(JSON.parse(JSON.stringify(listenerJson)) as typeof listenerJson));
  t.deepEqual(Buffer.from(a), Buffer.from(b));
});

test('JSON errors name the field that is wrong, with its path', (t) => {
  t.throws(() => messageFromJson(ClusterSchema, { name: 'c', connectTimeout: 'soon' }), {
    message: /^connectTimeout: .*Duration.*"soon"/,
  });
  t.throws(() => messageFromJson(ClusterSchema, { name: 'c', nope: 1 }), { message: /^nope: / });
  const badPort = { ...listenerJson, address: { socketAddress: { address: '127.0.0.1', portValue: 'x' } } };
  t.throws(() => anyFromJson(badPort), { message: /^address\.socketAddress\.portValue: / });
  const badFilter = JSON.parse(JSON.stringify(listenerJson)) as typeof listenerJson;
  (badFilter.apiListener.apiListener.httpFilters[0] as Record<string, unknown>).typedConfig = {
    '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
    suppressEnvoyHeaders: 'maybe',
  };
  t.throws(() => anyFromJson(badFilter), {
    message: /^apiListener\.apiListener\.httpFilters\[0\]\.typedConfig\.suppressEnvoyHeaders: /,
  });
  t.throws(() => anyFromJson({ '@type': 'type.googleapis.com/envoy.config.cluster.v3.Nope', name: 'x' }), {
    message: /envoy\.config\.cluster\.v3\.Nope/,
  });
});
