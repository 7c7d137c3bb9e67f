// Responses assembled from cached bytes (response.ts) against protobuf-es encoding the same message:
// multi-byte length prefixes, non-ASCII names, removed resources, empty responses.
import test from 'ava';
import { create, equals, fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  DeltaDiscoveryResponseSchema,
  DiscoveryResponseSchema,
} from '../../control-plane/envoy/gen/envoy/service/discovery/v3/discovery_pb.js';
import { AnySchema } from '@bufbuild/protobuf/wkt';
import { anyFromJson, TypeUrl, unpackAny } from '../../control-plane/envoy/protos.js';
import { ResourceCache, type EncodedResource } from '../../control-plane/xds/resource-cache.js';
import {
  encodeDeltaBody,
  encodeDeltaResponse,
  encodeSotwBody,
  joinPieces,
  Response,
  responseBytes,
  serializeResponse,
  setFullSetBodyBudget,
  fullSetBodyCacheBytes,
  sharedFullSetBody,
  withNonce,
} from '../../control-plane/xds/response.js';
import { loadAssignment } from '../helpers/control-plane.js';

/** Assignments whose encodings span one-, two- and three-byte length prefixes; one with a non-ASCII name. */
function resources(): EncodedResource[] {
  const cache = new ResourceCache();
  const sizes: [string, number][] = [
    ['tiny', 1],
    ['médium-ñ', 20],
    ['large', 2_000],
  ];
  return sizes.map(([name, endpoints]) => {
    const json = loadAssignment(
      name,
      Array.from({ length: endpoints }, (_, i) => 1000 + i),
    );
    return cache.encode(unpackAny(anyFromJson(json as Parameters<typeof anyFromJson>[0])));
  });
}

test('a SotW response decodes to the message protobuf-es would encode, byte count included', (t) => {
  const rs = resources();
  t.true(
    rs.some((r) => r.any.byteLength >= 16_384),
    'a resource needs a three-byte length',
  );
  for (const list of [rs, [], rs.slice(0, 1)]) {
    const bytes = withNonce(encodeSotwBody('v1', TypeUrl.ClusterLoadAssignment, list, 'trellis-ü'), 'nonce-1');
    const expected = create(DiscoveryResponseSchema, {
      versionInfo: 'v1',
      resources: list.map((r) => fromBinary(AnySchema, r.any)),
      typeUrl: TypeUrl.ClusterLoadAssignment,
      nonce: 'nonce-1',
      controlPlane: { identifier: 'trellis-ü' },
    });
    t.true(equals(DiscoveryResponseSchema, fromBinary(DiscoveryResponseSchema, bytes), expected));
    t.is(bytes.byteLength, toBinary(DiscoveryResponseSchema, expected).byteLength);
  }
});

test('a delta response decodes to the message protobuf-es would encode, byte count included', (t) => {
  const rs = resources();
  for (const [list, removed] of [
    [rs, ['gone', 'ausgeräumt']],
    [[], []],
    [rs.slice(1), []],
  ] as const) {
    const bytes = encodeDeltaResponse('sv', TypeUrl.ClusterLoadAssignment, list, removed, 'n-2', 'trellis');
    const expected = create(DeltaDiscoveryResponseSchema, {
      systemVersionInfo: 'sv',
      resources: list.map((r) => ({ name: r.name, version: r.version, resource: fromBinary(AnySchema, r.any) })),
      typeUrl: TypeUrl.ClusterLoadAssignment,
      nonce: 'n-2',
      removedResources: [...removed],
      controlPlane: { identifier: 'trellis' },
    });
    t.true(equals(DeltaDiscoveryResponseSchema, fromBinary(DeltaDiscoveryResponseSchema, bytes), expected));
    t.is(bytes.byteLength, toBinary(DeltaDiscoveryResponseSchema, expected).byteLength);
  }
});

test('a queued Response knows its wire size and holds the cached resource bytes, not copies', (t) => {
  const rs = resources();
  const body = encodeSotwBody('v1', TypeUrl.ClusterLoadAssignment, rs, 'trellis');
  for (const r of rs) t.true(body.includes(r.any), `${r.name}: its cached Any is a piece of the body`);
  const delta = encodeDeltaBody('v1', TypeUrl.ClusterLoadAssignment, rs, ['gone'], 'trellis');
  for (const r of rs) t.true(delta.includes(r.any), `${r.name}: its cached Any is a piece of the delta body`);
  const response = new Response(body, 'nonce-ü');
  const bytes = responseBytes(response);
  t.is(response.byteLength, bytes.byteLength);
  t.deepEqual(bytes, withNonce(joinPieces(body), 'nonce-ü'), 'pieces and a joined body give the same bytes');
  t.deepEqual(responseBytes(new Response(bytes, undefined)), bytes);
});

test('the serializer hands grpc-js what its framing reads (byteLength, copy into the frame at 5)', (t) => {
  for (const response of [
    new Response(encodeSotwBody('v1', TypeUrl.ClusterLoadAssignment, resources(), 'trellis'), 'n-1'),
    new Response(encodeDeltaBody('v1', TypeUrl.ClusterLoadAssignment, resources(), [], 'trellis'), 'n-2'),
    new Response(responseBytes(new Response([Buffer.from('whole')], 'n')), undefined),
  ]) {
    // What @grpc/grpc-js's server-interceptors.js serializeMessage does with the serializer's result.
    const message = serializeResponse(response);
    const frame = Buffer.allocUnsafe(message.byteLength + 5);
    frame.writeUInt8(0, 0);
    frame.writeUInt32BE(message.byteLength, 1);
    message.copy(frame, 5);
    t.deepEqual(frame.subarray(5), responseBytes(response));
  }
});

test('whole-set bodies are shared while cached, and the cache is bounded in bytes, least recently used out', (t) => {
  const previous = setFullSetBodyBudget(1_500);
  t.teardown(() => setFullSetBodyBudget(previous));
  const builds: string[] = [];
  const body = (set: object, name: string) =>
    sharedFullSetBody(set, 'delta|test', () => {
      builds.push(name);
      return [new Uint8Array(600).fill(name.charCodeAt(0))];
    });
  const [a, b, c] = [{}, {}, {}];
  const a1 = body(a, 'a');
  t.is(body(a, 'a'), a1, 'the same set gets the very same body');
  body(b, 'b');
  t.is(body(a, 'a'), a1); // a is now the most recently used
  body(c, 'c'); // 1,800 bytes: the least recently used (b) goes
  t.true(fullSetBodyCacheBytes() <= 1_500);
  t.is(body(a, 'a'), a1);
  const b2 = body(b, 'b'); // built again, with the same bytes
  t.deepEqual(builds, ['a', 'b', 'c', 'b']);
  t.deepEqual([...b2], new Array<number>(600).fill('b'.charCodeAt(0)));
});
