// decodeSotwRequest (control-plane/xds/sotw-request.ts) against protobuf-es: the same message or the same
// error for every input, and resource_names kept on the wire exactly when their bytes say the names.
import test, { type ExecutionContext } from 'ava';
import { create, equals, fromBinary, toBinary, type JsonObject, type MessageInitShape } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { NodeSchema } from '../../control-plane/envoy/gen/envoy/config/core/v3/base_pb.js';
import {
  DiscoveryRequestSchema,
  type DiscoveryRequest,
} from '../../control-plane/envoy/gen/envoy/service/discovery/v3/discovery_pb.js';
import { StatusSchema } from '../../control-plane/envoy/gen/google/rpc/status_pb.js';
import { TypeUrl } from '../../control-plane/envoy/protos.js';
import { decodeSotwRequest, keepWire, resourceNamesWire } from '../../control-plane/xds/sotw-request.js';
import { namesOf, testNode } from '../helpers/ads-client.js';
import { adsEnv } from '../helpers/ads-env.js';

type Init = MessageInitShape<typeof DiscoveryRequestSchema>;
const LD = WireType.LengthDelimited;

function encode(init: Init): Uint8Array {
  return toBinary(DiscoveryRequestSchema, create(DiscoveryRequestSchema, init));
}

const edsNames = Array.from({ length: 200 }, (_, i) => `outbound|8080||svc-${i}.ns-${i % 10}.svc.cluster.local`);

const node = create(NodeSchema, {
  id: 'sidecar~10.0.0.1~p1.default~default.svc.cluster.local',
  cluster: 'p1.default',
  metadata: { NAMESPACE: 'default', LABELS: { app: 'p1', version: 'v1' }, INSTANCE_IPS: '10.0.0.1', n: 3, ok: true },
  locality: { region: 'r1', zone: 'z1' },
  userAgentName: 'envoy',
  userAgentVersionType: { case: 'userAgentVersion', value: '1.36.0' },
});

/** Requests as clients send them: the scan keeps their names on the wire. */
const scanned: Record<string, Init> = {
  'first request with a node': { node, typeUrl: TypeUrl.Cluster },
  'first EDS request with node and names': { node, typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: edsNames },
  'ACK with names': {
    typeUrl: TypeUrl.ClusterLoadAssignment,
    versionInfo: 'v-1a2b',
    responseNonce: 'abc-1',
    resourceNames: edsNames,
  },
  'NACK with error_detail and details': {
    typeUrl: TypeUrl.ClusterLoadAssignment,
    versionInfo: 'v-1a2b',
    responseNonce: 'abc-2',
    resourceNames: ['a', 'b'],
    errorDetail: {
      code: 3,
      message: 'cluster b: rejected — ünïcode in the message',
      details: [{ typeUrl: 'type.googleapis.com/x.Y', value: new Uint8Array([1, 2, 3, 200]) }],
    },
  },
  'wildcard ACK without names': { typeUrl: TypeUrl.Listener, versionInfo: 'v', responseNonce: 'n' },
  'explicit wildcard': { typeUrl: TypeUrl.Cluster, resourceNames: ['*'] },
  'an empty name': { typeUrl: TypeUrl.RouteConfiguration, resourceNames: ['', 'r1'] },
  'a 127-byte name': { typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ['x'.repeat(127)] },
  'non-ASCII version and nonce': { typeUrl: TypeUrl.Cluster, versionInfo: 'vé', responseNonce: 'ñ' },
  'empty message': {},
};

/** Requests the scan leaves to fromBinary. */
const decodedInFull: Record<string, Init> = {
  'a non-ASCII name': { typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ['a', 'café'] },
  'a 128-byte name (two-byte length)': { typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ['x'.repeat(128)] },
  resource_locators: {
    typeUrl: TypeUrl.ClusterLoadAssignment,
    resourceLocators: [{ name: 'a', dynamicParameters: { k: 'v' } }],
  },
};

type Outcome = { message: DiscoveryRequest; error?: undefined } | { message?: undefined; error: Error };

function outcome(decode: () => DiscoveryRequest): Outcome {
  try {
    return { message: decode() };
  } catch (err) {
    return { error: err as Error };
  }
}

/** Every field of a request as plain data (reads the lazy resource_names). */
function plain(r: DiscoveryRequest): unknown {
  return {
    typeName: r.$typeName,
    versionInfo: r.versionInfo,
    node: r.node,
    resourceNames: [...r.resourceNames],
    resourceLocators: r.resourceLocators,
    typeUrl: r.typeUrl,
    responseNonce: r.responseNonce,
    errorDetail: r.errorDetail,
    unknown: r.$unknown,
  };
}

/** decodeSotwRequest gives what fromBinary gives (the same message or an error with the same message). */
function agrees(t: ExecutionContext, bytes: Uint8Array, label: string): DiscoveryRequest | undefined {
  const full = outcome(() => fromBinary(DiscoveryRequestSchema, bytes));
  const ours = outcome(() => decodeSotwRequest(bytes));
  if (full.error) {
    t.is(ours.error?.message, full.error.message, `${label}: throws as fromBinary`);
    return undefined;
  }
  if (!ours.message) {
    t.fail(`${label}: threw ${ours.error.message}; fromBinary did not`);
    return undefined;
  }
  t.deepEqual(plain(ours.message), plain(full.message), label);
  t.true(equals(DiscoveryRequestSchema, ours.message, full.message), `${label}: equals()`);
  // And it serializes back to what fromBinary's message serializes to.
  t.deepEqual(toBinary(DiscoveryRequestSchema, ours.message), toBinary(DiscoveryRequestSchema, full.message), label);
  return ours.message;
}

test('client requests: the same message as fromBinary, names kept on the wire and decoded on first read', (t) => {
  for (const [label, init] of Object.entries(scanned)) {
    const bytes = encode(init);
    const request = decodeSotwRequest(bytes);
    const wire = resourceNamesWire(request);
    t.truthy(wire, `${label}: names kept on the wire`);
    t.is(wire!.byteLength, bytes.byteLength - encode({ ...init, resourceNames: [] }).byteLength, label);
    agrees(t, bytes, label);
  }
});

test('requests the scan does not read like fromBinary are decoded by fromBinary', (t) => {
  for (const [label, init] of Object.entries(decodedInFull)) {
    const bytes = encode(init);
    t.is(resourceNamesWire(decodeSotwRequest(bytes)), undefined, `${label}: decoded in full`);
    agrees(t, bytes, label);
  }
});

test('the names on the wire are equal bytes exactly when the names are equal, in the same order', (t) => {
  const base = edsNames.slice(0, 50);
  const variants: Record<string, string[]> = {
    same: [...base],
    'one name changed, same length': base.map((n, i) => (i === 17 ? n.replace('svc-17', 'svc-99') : n)),
    'two names swapped': base.map((n, i) => (i === 3 ? base[4]! : i === 4 ? base[3]! : n)),
    reversed: [...base].reverse(),
    'last removed': base.slice(0, -1),
    'one added': [...base, 'outbound|8080||new.ns-0.svc.cluster.local'],
    'one duplicated': [...base, base[0]!],
    'a name split in two': [...base.slice(0, -1), 'outbound|8080||', base.at(-1)!.slice('outbound|8080||'.length)],
    empty: [],
    'only the empty name': [''],
  };
  const wireOf = (names: string[], extra: Init): Uint8Array =>
    resourceNamesWire(
      decodeSotwRequest(encode({ typeUrl: TypeUrl.ClusterLoadAssignment, ...extra, resourceNames: names })),
    )!;
  for (const [a, namesA] of Object.entries(variants)) {
    for (const [b, namesB] of Object.entries(variants)) {
      // The other fields of the two requests differ: only the names matter.
      const wireA = wireOf(namesA, { versionInfo: 'v1', responseNonce: 'n1' });
      const wireB = wireOf(namesB, { versionInfo: 'v2', responseNonce: 'n2', node });
      t.is(Buffer.compare(wireA, wireB) === 0, a === b, `${a} vs ${b}`);
    }
    t.deepEqual(decodeSotwRequest(encode({ resourceNames: namesA })).resourceNames, namesA, a);
  }
});

test('the names on the wire do not depend on where the other fields are', (t) => {
  const names = new BinaryWriter();
  for (const n of ['a', 'b', 'c']) names.tag(3, LD).string(n);
  const run = names.finish();
  const first = new BinaryWriter().tag(4, LD).string(TypeUrl.Cluster).raw(run).tag(5, LD).string('n1').finish();
  const second = new BinaryWriter().tag(5, LD).string('n2').raw(run).tag(1, LD).string('v').finish();
  const a = agrees(t, first, 'names between type_url and nonce');
  const b = agrees(t, second, 'names between nonce and version');
  t.deepEqual(resourceNamesWire(a!), run);
  t.deepEqual(resourceNamesWire(b!), run);
});

test('wire forms protobuf allows but clients do not send: the same message or the same error', (t) => {
  const nodeBytes = toBinary(NodeSchema, node);
  const otherNode = toBinary(NodeSchema, create(NodeSchema, { id: 'other', metadata: { extra: 'x' } }));
  const w = (): BinaryWriter => new BinaryWriter();
  const cases: Record<string, Uint8Array> = {
    'names not contiguous': w().tag(3, LD).string('a').tag(4, LD).string('t').tag(3, LD).string('b').finish(),
    'node twice (merged)': w().tag(2, LD).bytes(nodeBytes).tag(2, LD).bytes(otherNode).finish(),
    'error_detail twice (merged)': w()
      .tag(6, LD)
      .bytes(toBinary(StatusSchema, create(StatusSchema, { code: 3, message: 'x' })))
      .tag(6, LD)
      .bytes(new Uint8Array([0x08, 0x05]))
      .finish(),
    'type_url twice (last wins)': w().tag(4, LD).string('first').tag(4, LD).string('second').finish(),
    'unknown field': w().tag(4, LD).string('t').tag(99, LD).string('x').tag(100, WireType.Varint).uint32(7).finish(),
    'version_info as a varint': w().tag(1, WireType.Varint).uint32(3).string('abc').finish(),
    'a name as a varint': w().tag(3, WireType.Varint).uint32(1).finish(),
    'node as fixed32': w().tag(2, WireType.Bit32).fixed32(0).finish(),
    'invalid UTF-8 in a name': w()
      .tag(3, LD)
      .string('a')
      .tag(3, LD)
      .bytes(new Uint8Array([0xc3, 0x28]))
      .finish(),
    'invalid UTF-8 in the nonce': w()
      .tag(5, LD)
      .bytes(new Uint8Array([0xff]))
      .finish(),
    'invalid UTF-8 in the node id': w()
      .tag(2, LD)
      .bytes(
        w()
          .tag(1, LD)
          .bytes(new Uint8Array([0xe2, 0x82]))
          .finish(),
      )
      .finish(),
    'a name longer than the message': new Uint8Array([0x1a, 0x05, 0x61]),
    'node longer than the message': new Uint8Array([0x12, 0x09, 0x0a, 0x01, 0x61]),
    'a truncated tag': new Uint8Array([0x9a]),
    'field number 0': new Uint8Array([0x02, 0x00]),
    'wire type 7': new Uint8Array([0x1f]),
    'a group in an unknown field': w().tag(20, WireType.StartGroup).tag(20, WireType.EndGroup).finish(),
  };
  for (const [label, bytes] of Object.entries(cases)) {
    const request = agrees(t, bytes, label);
    if (request && label !== 'type_url twice (last wins)') t.is(resourceNamesWire(request), undefined, label);
  }
});

test('node nesting at the recursion limit: fails where fromBinary fails', (t) => {
  // Each level is a Value and a Struct; the two leaves end on either, so the deepest message is at an odd
  // or an even depth.
  for (const leaf of [{ leaf: 1 }, {}] as JsonObject[]) {
    const nested = (depth: number): JsonObject => (depth === 0 ? leaf : { x: nested(depth - 1) });
    const outcomes = new Set<boolean>();
    for (let depth = 44; depth <= 52; depth++) {
      const bytes = encode({ node: { id: 'deep', metadata: nested(depth) }, typeUrl: TypeUrl.Cluster });
      outcomes.add(outcome(() => fromBinary(DiscoveryRequestSchema, bytes)).error === undefined);
      agrees(t, bytes, `depth ${depth}, leaf ${JSON.stringify(leaf)}`);
    }
    t.deepEqual([...outcomes].sort(), [false, true], 'the range crosses the limit');
  }
});

test('mutated requests: the same message or the same error as fromBinary', (t) => {
  let seed = 42;
  const random = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const seeds = [...Object.values(scanned), ...Object.values(decodedInFull)].map(encode).filter((b) => b.length > 0);
  let decoded = 0;
  for (let i = 0; i < 3_000; i++) {
    const bytes = Uint8Array.from(seeds[random(seeds.length)]!.slice(0, 2_000));
    const mutations = 1 + random(3);
    let mutated: Uint8Array = bytes;
    for (let m = 0; m < mutations; m++) {
      const at = random(mutated.length);
      switch (random(4)) {
        case 0:
          mutated[at] = random(256);
          break;
        case 1:
          mutated[at] = mutated[at]! ^ (1 << random(8));
          break;
        case 2:
          mutated = mutated.slice(0, at);
          break;
        default:
          mutated = Uint8Array.from([...mutated.slice(0, at), random(256), ...mutated.slice(at)]);
      }
      if (mutated.length === 0) break;
    }
    const request = agrees(t, mutated, `mutation ${i}`);
    if (request) decoded++;
  }
  t.log(`${decoded} of 3,000 mutated requests decoded, the rest threw in both`);
  t.true(decoded > 100);
});

test('resource_names can be replaced like a decoded message field', (t) => {
  const request = decodeSotwRequest(encode({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ['a', 'b'] }));
  t.deepEqual(request.resourceNames, ['a', 'b']);
  t.is(request.resourceNames, request.resourceNames, 'decoded once');
  request.resourceNames = ['c'];
  t.deepEqual(request.resourceNames, ['c']);
  const first = decodeSotwRequest(encode({ node: testNode('p1.default'), typeUrl: TypeUrl.Cluster }));
  t.is(first.node?.id, 'p1.default');
});

test('kept names: one copy per distinct byte string, never a view of the request', (t) => {
  const wireOf = (names: string[]): Uint8Array =>
    resourceNamesWire(decodeSotwRequest(encode({ resourceNames: names })))!;
  const request = encode({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: edsNames });
  const view = resourceNamesWire(decodeSotwRequest(request))!;
  const kept = keepWire(view);
  t.deepEqual(kept, new Uint8Array(view));
  request.fill(0);
  t.not(kept[0], 0, 'a copy');
  t.is(keepWire(wireOf(edsNames)), kept, 'the same bytes: the same copy');
  const other = keepWire(wireOf([...edsNames].reverse()));
  t.not(other, kept);
  t.is(keepWire(wireOf([...edsNames].reverse())), other);
  t.deepEqual(keepWire(wireOf([])), new Uint8Array(0));
});

test('a SotW stream: the same names again are no change; other names of the same size and count are', async (t) => {
  await using env = await adsEnv();
  const s = env.client.sotw();
  const subscription = async (): Promise<unknown> => {
    const proxies = (await (await env.cp.monitoring('/debug/proxies')).json()) as Array<{
      types: Array<{ type: string; subscription: unknown }>;
    }>;
    return proxies[0]!.types.find((type) => type.type === 'EDS')!.subscription;
  };
  s.send({ node: testNode('p1.default'), typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ['a'] });
  let last = await s.next();
  t.deepEqual(namesOf(last), ['a']);
  /** Answers the last response with `names`; resolves with the names of the response it caused, if any. */
  const ack = async (names: string[]): Promise<string[] | undefined> => {
    s.send({
      typeUrl: TypeUrl.ClusterLoadAssignment,
      resourceNames: names,
      responseNonce: last.nonce,
      versionInfo: last.versionInfo,
    });
    // A request for another type is answered after the ACK was handled: what comes first tells.
    s.send({ typeUrl: TypeUrl.Listener, resourceNames: ['echo:8080'] });
    const res = await s.next();
    if (res.typeUrl === TypeUrl.Listener) return undefined;
    last = res;
    t.is((await s.next()).typeUrl, TypeUrl.Listener);
    return namesOf(res);
  };
  t.is(await ack(['a']), undefined, 'the same names');
  t.deepEqual(await ack(['b']), ['b'], 'one other name of the same length');
  t.deepEqual(await subscription(), ['b']);
  t.is(await ack(['b']), undefined);
  t.deepEqual(await ack(['b', 'a']), ['a'], 'a resubscribed');
  t.is(await ack(['a', 'b']), undefined, 'the same names in another order');
  t.is(await ack(['a', 'b', 'ü']), undefined, 'a name that does not exist (decoded in full)');
  t.deepEqual(await subscription(), ['a', 'b', 'ü']);
  t.is(await ack(['a', 'b']), undefined);
  t.deepEqual(await subscription(), ['a', 'b']);
  t.is(await ack([]), undefined);
  t.deepEqual(await subscription(), []);
  t.deepEqual(await ack(['a', 'b']), ['a', 'b'], 'both resubscribed');
});
