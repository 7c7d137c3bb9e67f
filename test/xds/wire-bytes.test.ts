// The bytes a client receives, through real gRPC (grpc-js on both sides), compared byte for byte with the
// layout responses always had: the body fields in field-number order (each resource's Any exactly as
// cached), then the nonce. Responses are written as pieces of cached bytes copied once into grpc-js's frame
// (response.ts, FramedResponse), so this is what shows that grpc-js framed them whole, with the right
// lengths, for every path that builds a body: a shared full set, a per-stream subset, an incremental update
// and removals, in state of the world and delta, with a resource larger than an HTTP/2 frame and window.
import test, { type ExecutionContext } from 'ava';
import * as grpc from '@grpc/grpc-js';
import { create, equals, fromBinary, toBinary } from '@bufbuild/protobuf';
import { AnySchema } from '@bufbuild/protobuf/wkt';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { ControlPlaneSchema } from '../../control-plane/envoy/gen/envoy/config/core/v3/base_pb.js';
import {
  DeltaDiscoveryRequestSchema,
  DeltaDiscoveryResponseSchema,
  DiscoveryRequestSchema,
  DiscoveryResponseSchema,
  type DeltaDiscoveryResponse,
  type DiscoveryResponse,
} from '../../control-plane/envoy/gen/envoy/service/discovery/v3/discovery_pb.js';
import {
  anyFromJson,
  resourceName,
  schemaOf,
  TypeUrl,
  unpackAny,
  type Message,
} from '../../control-plane/envoy/protos.js';
import { testNode, type DeltaRequestInit, type SotwRequestInit } from '../helpers/ads-client.js';
import { typeStatus } from '../helpers/debug.js';
import { adsEnv } from '../helpers/ads-env.js';
import { edsCluster, loadAssignment, routeConfig, type JsonResource } from '../helpers/control-plane.js';

const LD = WireType.LengthDelimited;
const SERVICE = '/envoy.service.discovery.v3.AggregatedDiscoveryService';

/** A RouteConfiguration of `hosts` virtual hosts: with 2,000, about 150 KB (several HTTP/2 frames and windows). */
function bigRoute(name: string, hosts: number, cluster = 'a'): JsonResource {
  return {
    '@type': TypeUrl.RouteConfiguration,
    name,
    virtualHosts: Array.from({ length: hosts }, (_, i) => ({
      name: `vh-${i}`,
      domains: [`svc-${i}.ns-${i % 7}.svc.cluster.local`, `svc-${i}`],
      routes: [{ match: { prefix: '/' }, route: { cluster } }],
    })),
  };
}

const config = (cluster: string): JsonResource[] => [
  edsCluster('a'),
  edsCluster('b'),
  loadAssignment('a', [9001]),
  loadAssignment('b', [9002]),
  bigRoute('big', 2_000, cluster),
  routeConfig('small', ['echo'], { a: 1 }),
];

/** A bidirectional ADS stream whose responses arrive as the raw bytes grpc-js delivered. */
class RawBytesStream<Req> {
  private readonly call: grpc.ClientDuplexStream<Req, Buffer>;
  private readonly queue: Buffer[] = [];
  private readonly waiting: ((b: Buffer) => void)[] = [];

  constructor(client: grpc.Client, method: string, serialize: (r: Req) => Buffer) {
    this.call = client.makeBidiStreamRequest(`${SERVICE}/${method}`, serialize, (b: Buffer) => Buffer.from(b));
    this.call.on('data', (b: Buffer) => {
      const waiter = this.waiting.shift();
      if (waiter) waiter(b);
      else this.queue.push(b);
    });
    this.call.on('error', () => undefined);
  }

  send(request: Req): void {
    this.call.write(request);
  }

  next(): Promise<Buffer> {
    const b = this.queue.shift();
    return b ? Promise.resolve(b) : new Promise((resolve) => this.waiting.push(resolve));
  }

  close(): void {
    this.call.cancel();
  }
}

const cpBytes = toBinary(ControlPlaneSchema, create(ControlPlaneSchema, { identifier: 'trellis' }));
const anyBytes = (any: Parameters<typeof toBinary<typeof AnySchema>>[1]): Uint8Array => toBinary(AnySchema, any);

/** The bytes of a DiscoveryResponse as Trellis lays it out, by protobuf-es's own writer. */
function sotwLayout(r: DiscoveryResponse): Uint8Array {
  const w = new BinaryWriter();
  w.tag(1, LD).string(r.versionInfo);
  for (const any of r.resources) w.tag(2, LD).bytes(anyBytes(any));
  w.tag(4, LD).string(r.typeUrl);
  w.tag(6, LD).bytes(cpBytes);
  w.tag(5, LD).string(r.nonce);
  return w.finish();
}

/** The bytes of a DeltaDiscoveryResponse as Trellis lays it out (Resource: version, resource, name). */
function deltaLayout(r: DeltaDiscoveryResponse): Uint8Array {
  const w = new BinaryWriter();
  w.tag(1, LD).string(r.systemVersionInfo);
  for (const res of r.resources) {
    const inner = new BinaryWriter();
    inner.tag(1, LD).string(res.version);
    inner.tag(2, LD).bytes(anyBytes(res.resource!));
    inner.tag(3, LD).string(res.name);
    w.tag(2, LD).bytes(inner.finish());
  }
  w.tag(4, LD).string(r.typeUrl);
  for (const name of r.removedResources) w.tag(6, LD).string(name);
  w.tag(7, LD).bytes(cpBytes);
  w.tag(5, LD).string(r.nonce);
  return w.finish();
}

/** The served resource named `name` of `resources`, as the message a client unpacks. */
function expected(resources: readonly JsonResource[], type: string, name: string): Message {
  const json = resources.find((r) => r['@type'] === type && (r.name ?? r.clusterName) === name);
  if (!json) throw new Error(`no ${type} ${name}`);
  return unpackAny(anyFromJson(json as Parameters<typeof anyFromJson>[0]));
}

const nonces = new Set<string>();

type Assertions = Pick<ExecutionContext, 'true' | 'deepEqual' | 'is' | 'not'>;

/** The nonce and version received are those the server recorded as sent (its /debug view of the stream). */
async function checkSent(t: Assertions, port: number, type: string, nonce: string, version: string): Promise<void> {
  const sent = await typeStatus(port, 'p1.default', type);
  t.is(sent?.sentNonce, nonce);
  t.is(sent?.sentVersion, version);
}

/** Whether a received resource is the one served. */
function sameMessage(a: Message, b: Message): boolean {
  return a.$typeName === b.$typeName && equals(schemaOf(a.$typeName), a, b);
}

function checkSotw(
  t: Assertions,
  bytes: Buffer,
  resources: readonly JsonResource[],
  type: string,
  names: readonly string[],
): DiscoveryResponse {
  const r = fromBinary(DiscoveryResponseSchema, bytes);
  t.deepEqual(Buffer.from(sotwLayout(r)), bytes, 'the same bytes as the layout written by protobuf-es');
  t.is(r.typeUrl, type);
  t.true(r.versionInfo !== '' && r.nonce !== '' && !nonces.has(r.nonce), 'a version and a fresh nonce');
  nonces.add(r.nonce);
  t.is(r.controlPlane?.identifier, 'trellis');
  const got = r.resources.map((any) => unpackAny(any));
  t.deepEqual(
    got.map((m) => resourceName(m)),
    [...names],
  );
  got.forEach((m, i) => t.true(sameMessage(m, expected(resources, type, names[i]!)), `${names[i]} as served`));
  return r;
}

test('SotW: the bytes received are the response fields then the nonce, for shared, per-stream and changed bodies', async (t) => {
  const first = config('a');
  await using env = await adsEnv(first, { envoyValidation: false });
  const port = env.cp.monitoringPort;
  const serialize = (r: SotwRequestInit): Buffer =>
    Buffer.from(toBinary(DiscoveryRequestSchema, create(DiscoveryRequestSchema, r)));
  const s = new RawBytesStream(env.client.client, 'StreamAggregatedResources', serialize);
  t.teardown(() => s.close());

  s.send({ node: testNode('p1.default'), typeUrl: TypeUrl.Cluster });
  const cds = checkSotw(t, await s.next(), first, TypeUrl.Cluster, ['a', 'b']); // a shared full-set body
  await checkSent(t, port, 'CDS', cds.nonce, cds.versionInfo);
  s.send({ typeUrl: TypeUrl.Cluster, versionInfo: cds.versionInfo, responseNonce: cds.nonce });
  s.send({ typeUrl: TypeUrl.RouteConfiguration, resourceNames: ['big'] });
  const big1 = await s.next();
  t.true(big1.byteLength > 100_000, `a response of ${big1.byteLength} bytes`);
  const rds = checkSotw(t, big1, first, TypeUrl.RouteConfiguration, ['big']); // a per-stream subset
  await checkSent(t, port, 'RDS', rds.nonce, rds.versionInfo);
  s.send({
    typeUrl: TypeUrl.RouteConfiguration,
    resourceNames: ['big'],
    versionInfo: rds.versionInfo,
    responseNonce: rds.nonce,
  });

  const next = config('b');
  await env.cp.write(next);
  const changed = checkSotw(t, await s.next(), next, TypeUrl.RouteConfiguration, ['big']); // the changed resource
  t.not(changed.versionInfo, rds.versionInfo);
  await checkSent(t, port, 'RDS', changed.nonce, changed.versionInfo);
});

test('delta: the bytes received are the response fields then the nonce, with versions, names and removals', async (t) => {
  const first = config('a');
  await using env = await adsEnv(first, { envoyValidation: false });
  const port = env.cp.monitoringPort;
  const serialize = (r: DeltaRequestInit): Buffer =>
    Buffer.from(toBinary(DeltaDiscoveryRequestSchema, create(DeltaDiscoveryRequestSchema, r)));
  const s = new RawBytesStream(env.client.client, 'DeltaAggregatedResources', serialize);
  t.teardown(() => s.close());

  const check = (
    bytes: Buffer,
    resources: readonly JsonResource[],
    type: string,
    names: string[],
    removed: string[],
  ) => {
    const r = fromBinary(DeltaDiscoveryResponseSchema, bytes);
    t.deepEqual(Buffer.from(deltaLayout(r)), bytes, 'the same bytes as the layout written by protobuf-es');
    t.is(r.typeUrl, type);
    t.true(r.nonce !== '' && !nonces.has(r.nonce), 'a fresh nonce');
    nonces.add(r.nonce);
    t.is(r.controlPlane?.identifier, 'trellis');
    t.deepEqual(
      r.resources.map((x) => x.name),
      names,
    );
    for (const x of r.resources) {
      t.not(x.version, '');
      t.true(sameMessage(unpackAny(x.resource!), expected(resources, type, x.name)), `${x.name} as served`);
    }
    t.deepEqual(r.removedResources, removed);
    return r;
  };

  s.send({ node: testNode('p1.default'), typeUrl: TypeUrl.Cluster });
  const cds = check(await s.next(), first, TypeUrl.Cluster, ['a', 'b'], []); // a shared full-set body
  await checkSent(t, port, 'CDS', cds.nonce, cds.systemVersionInfo);
  s.send({ typeUrl: TypeUrl.Cluster, responseNonce: cds.nonce });
  s.send({ typeUrl: TypeUrl.RouteConfiguration, resourceNamesSubscribe: ['big', 'small', 'gone'] });
  const rds = check(await s.next(), first, TypeUrl.RouteConfiguration, ['big', 'small'], ['gone']); // per stream
  await checkSent(t, port, 'RDS', rds.nonce, rds.systemVersionInfo);
  s.send({ typeUrl: TypeUrl.RouteConfiguration, responseNonce: rds.nonce });

  const next = config('b').filter((r) => r.name !== 'small');
  await env.cp.write(next);
  const changed = check(await s.next(), next, TypeUrl.RouteConfiguration, ['big'], ['small']); // change, removal
  await checkSent(t, port, 'RDS', changed.nonce, changed.systemVersionInfo);
  t.not(changed.resources[0]!.version, rds.resources.find((x) => x.name === 'big')!.version);
});
