// Responses assembled from cached bytes (response.ts) against protobuf-es encoding the same message:
// multi-byte length prefixes, non-ASCII names, removed resources, empty responses.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
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
  blocksJoined,
  encodeDeltaBody,
  encodeDeltaResponse,
  encodeSotwBody,
  joinPieces,
  Response,
  responseBytes,
  serializeResponse,
  sharedFullSetBody,
  sharedUpdateBody,
  SHARED_UPDATE_MAX_RESOURCES,
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

/** `count` small assignments named `<prefix>-<i>` (sorted by name as a set's resources are). */
function manyResources(cache: ResourceCache, prefix: string, count: number): EncodedResource[] {
  return Array.from({ length: count }, (_, i) =>
    cache.encode(
      unpackAny(
        anyFromJson(
          loadAssignment(`${prefix}-${String(i).padStart(4, '0')}`, [2000 + (i % 7)]) as Parameters<
            typeof anyFromJson
          >[0],
        ),
      ),
    ),
  );
}

test('whole-set bodies: the bytes of a full response, the same pieces per set, blocks shared between sets', (t) => {
  const cache = new ResourceCache();
  const shared = manyResources(cache, 'outbound', 1500); // every set's
  const large = resources().find((r) => r.any.byteLength >= 16_384)!;
  const setA = [...manyResources(cache, 'inbound-a', 3), large, ...shared];
  const setB = [...manyResources(cache, 'inbound-b', 40), ...shared];
  const [a, b] = [{}, {}];
  for (const kind of ['sotw', 'delta'] as const) {
    const bodyA = sharedFullSetBody(kind, a, 'v7', TypeUrl.ClusterLoadAssignment, setA, 'trellis-ü');
    const bodyB = sharedFullSetBody(kind, b, 'v8', TypeUrl.ClusterLoadAssignment, setB, 'trellis-ü');
    // Exactly the bytes of the whole-set response, for both protocols.
    const full = (v: string, list: EncodedResource[]) =>
      kind === 'sotw'
        ? encodeSotwBody(v, TypeUrl.ClusterLoadAssignment, list, 'trellis-ü')
        : encodeDeltaBody(v, TypeUrl.ClusterLoadAssignment, list, [], 'trellis-ü');
    t.deepEqual(Buffer.from(joinPieces(bodyA)), Buffer.from(joinPieces(full('v7', setA))), kind);
    t.deepEqual(Buffer.from(joinPieces(bodyB)), Buffer.from(joinPieces(full('v8', setB))), kind);
    // The same set gets the very same pieces.
    t.is(sharedFullSetBody(kind, a, 'v7', TypeUrl.ClusterLoadAssignment, setA, 'trellis-ü'), bodyA);
    // A few pieces, not one per resource; the large resource is its cached bytes, not a copy.
    t.true(bodyA.length < setA.length / 8, `${bodyA.length} pieces`);
    t.true(bodyA.includes(large.any));
    // The two sets share the blocks of their common run (all but the ones where their own resources sit).
    const inB = new Set(bodyB);
    const common = bodyA.filter((piece) => inB.has(piece));
    const sharedBytes = common.reduce((n, piece) => n + piece.byteLength, 0);
    const runBytes = joinPieces(full('v', shared)).byteLength;
    t.true(sharedBytes > runBytes * 0.8, `${sharedBytes} of ${runBytes} bytes shared`);
  }
});

test('update bodies: the bytes of the response, one body per set and resources, built per stream past the limit', (t) => {
  const cache = new ResourceCache();
  const list = [...resources(), ...manyResources(cache, 'more', SHARED_UPDATE_MAX_RESOURCES + 1)];
  const setA = { version: 'v7', typeUrl: TypeUrl.ClusterLoadAssignment };
  const setB = { version: 'v8', typeUrl: TypeUrl.ClusterLoadAssignment };
  for (const kind of ['sotw', 'delta'] as const) {
    const expected = (set: typeof setA, updates: EncodedResource[]) =>
      Buffer.from(
        joinPieces(
          kind === 'sotw'
            ? encodeSotwBody(set.version, set.typeUrl, updates, 'trellis-ü')
            : encodeDeltaBody(set.version, set.typeUrl, updates, [], 'trellis-ü'),
        ),
      );
    const one = list.slice(0, 1);
    const two = list.slice(1, 3);
    const body = sharedUpdateBody(kind, setA, one, 'trellis-ü');
    t.deepEqual(Buffer.from(joinPieces(body)), expected(setA, one), kind);
    t.deepEqual(Buffer.from(joinPieces(sharedUpdateBody(kind, setA, two, 'trellis-ü'))), expected(setA, two), kind);
    // The streams that get the same resources of the same set share the body; another set, other
    // resources, the other protocol or another control-plane id get their own.
    t.is(sharedUpdateBody(kind, setA, [...one], 'trellis-ü'), body);
    t.not(sharedUpdateBody(kind, setB, one, 'trellis-ü'), body);
    t.deepEqual(Buffer.from(joinPieces(sharedUpdateBody(kind, setB, one, 'trellis-ü'))), expected(setB, one), kind);
    t.not(sharedUpdateBody(kind, setA, two, 'trellis-ü'), body);
    t.not(sharedUpdateBody(kind === 'sotw' ? 'delta' : 'sotw', setA, one, 'trellis-ü'), body);
    t.not(sharedUpdateBody(kind, setA, one, 'other'), body);
    // Past the limit every call builds the body (the same bytes).
    const many = list.slice(0, SHARED_UPDATE_MAX_RESOURCES + 1);
    const first = sharedUpdateBody(kind, setA, many, 'trellis-ü');
    t.not(sharedUpdateBody(kind, setA, many, 'trellis-ü'), first);
    t.deepEqual(Buffer.from(joinPieces(first)), expected(setA, many), kind);
  }
});

test('whole-set bodies: a set that replaces another joins only the blocks where it differs, after a GC too', async (t) => {
  // A change makes new sets; the bodies of the sets it replaced die with them. The first proxy to connect
  // after it builds the new set's body: the runs the change left alone are the blocks of before.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const cache = new ResourceCache();
  const before = manyResources(cache, 'outbound', 1500);
  const changedAt = 700;
  const changed = cache.encode(
    unpackAny(anyFromJson(loadAssignment(before[changedAt]!.name, [9999]) as Parameters<typeof anyFromJson>[0])),
  );
  const after = before.map((r, i) => (i === changedAt ? changed : r));
  for (const kind of ['sotw', 'delta'] as const) {
    const blockCount = (() => {
      // The old set's body, built and dropped (nothing here keeps it).
      const body = sharedFullSetBody(kind, {}, 'v1', TypeUrl.ClusterLoadAssignment, before, 'trellis');
      return body.length - 2; // head and tail
    })();
    t.true(blockCount > 4, `${blockCount} blocks`);
    // WeakRefs held during a job stay alive until it ends: let it end, then collect everything unreferenced.
    await new Promise((resolve) => setImmediate(resolve));
    for (let i = 0; i < 3; i++) gc();
    const joined = blocksJoined();
    const body = sharedFullSetBody(kind, {}, 'v2', TypeUrl.ClusterLoadAssignment, after, 'trellis');
    t.is(blocksJoined() - joined, 1, `${kind}: one block joined of ${blockCount}`);
    const expected =
      kind === 'sotw'
        ? encodeSotwBody('v2', TypeUrl.ClusterLoadAssignment, after, 'trellis')
        : encodeDeltaBody('v2', TypeUrl.ClusterLoadAssignment, after, [], 'trellis');
    t.deepEqual(Buffer.from(joinPieces(body)), Buffer.from(joinPieces(expected)), kind);
  }
});
