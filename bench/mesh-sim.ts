// Simulated proxies of a translated mesh for `xds-mesh`: delta ADS streams that subscribe as an Envoy
// sidecar does (CDS wildcard; EDS for the outbound clusters it got; LDS wildcard; RDS for the route names of
// its HTTP listeners) and ACK every response, each with its own node (id `<pod>.<namespace>`, LABELS,
// INSTANCE_IPS, SERVICE_ACCOUNT, PROXY_TYPE). Unlike ads-sim.ts the subscriptions follow what each proxy is
// sent, since every proxy of a translated mesh gets its own set. Only headers are decoded (names), plus the
// first endpoint address of the assignments a round watches.
import { create, toBinary } from '@bufbuild/protobuf';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import * as grpc from '@grpc/grpc-js';
import { NodeSchema } from '../control-plane/envoy/gen/envoy/config/core/v3/base_pb.js';
import { TypeUrl } from '../control-plane/envoy/protos.js';
import { decodeDeltaResponse, deltaRequest, encodeNames } from './ads-sim.js';
import { namespaceOf, podIp, podLabels, podName, serviceName } from './mesh-fixture.js';

const SERVICE = '/envoy.service.discovery.v3.AggregatedDiscoveryService';

export interface SimNode {
  readonly id: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly instanceIps: readonly string[];
  readonly proxyType: 'envoy' | 'grpc';
}

/** The sidecar of Pod `j` of workload (Service) `w`, revision 0, in a mesh of `endpoints` Pods per Service. */
export function sidecarNode(w: number, j: number, endpoints: number): SimNode {
  return {
    id: `${podName(w, 0, j)}.${namespaceOf(w)}`,
    namespace: namespaceOf(w),
    serviceAccount: serviceName(w),
    labels: podLabels(w, 0, j, endpoints),
    instanceIps: [podIp(w, 0, j)],
    proxyType: 'envoy',
  };
}

/** The first `count` sidecars: Pods 0, 1, … of workloads 0, 1, …, at most 10 Pods per workload. */
export function sidecarNodes(count: number, endpoints: number): SimNode[] {
  const perWorkload = Math.min(10, endpoints);
  return Array.from({ length: count }, (_, k) => sidecarNode(Math.floor(k / perWorkload), k % perWorkload, endpoints));
}

/** Proxyless client `k`, in namespace k mod 10, its `app` label `grpc-client-<app>`. */
export function proxylessNode(k: number, app = k): SimNode {
  return {
    id: `grpc-client-${k}.${namespaceOf(k)}`,
    namespace: namespaceOf(k),
    serviceAccount: 'grpc-client',
    labels: { app: `grpc-client-${app}` },
    instanceIps: [],
    proxyType: 'grpc',
  };
}

function encodeNode(n: SimNode): Uint8Array {
  return toBinary(
    NodeSchema,
    create(NodeSchema, {
      id: n.id,
      cluster: 'bench',
      metadata: {
        NAMESPACE: n.namespace,
        PROXY_TYPE: n.proxyType,
        SERVICE_ACCOUNT: n.serviceAccount,
        LABELS: { ...n.labels },
        INSTANCE_IPS: n.instanceIps.join(','),
      },
      userAgentName: n.proxyType === 'envoy' ? 'envoy' : 'grpc-node-js',
    }),
  );
}

function field(buf: Uint8Array, fieldNo: number): Uint8Array | undefined {
  const r = new BinaryReader(buf);
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (no === fieldNo && wt === WireType.LengthDelimited) return r.bytes();
    r.skip(wt, no);
  }
  return undefined;
}

/** Address of the first endpoint of a packed ClusterLoadAssignment, or undefined. */
export function firstEndpointAddress(any: Uint8Array): string | undefined {
  let m = field(any, 2); // Any.value
  for (const no of [2, 2, 1, 1, 1, 2]) m = m && field(m, no); // endpoints, lb_endpoints, endpoint, address, socket_address, address
  return m ? Buffer.from(m.buffer, m.byteOffset, m.byteLength).toString('utf8') : undefined;
}

/** What a round waits for on every stream: assignments with a new first address, or any response of a type. */
export type Expectation =
  | { readonly kind: 'eds'; readonly targets: ReadonlyMap<string, string> }
  | { readonly kind: 'type'; readonly typeUrl: string };

export interface Round {
  readonly expect: Expectation;
  readonly t0: number;
  /** Per stream: ms from t0 to the ACK of the last response it waited for (NaN until then). */
  readonly ackedMs: Float64Array;
  remaining: number;
  done: () => void;
}

const TYPES = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration];

class MeshStream {
  private readonly held = new Map<string, Set<string>>(TYPES.map((t) => [t, new Set<string>()]));
  private readonly acked = new Map<string, number>(TYPES.map((t) => [t, 0]));
  private readonly subscribed = new Map<string, Set<string>>();
  private readonly call: grpc.ClientDuplexStream<Buffer, Buffer>;
  private node: Uint8Array | undefined;
  private pending = new Set<string>();
  readonly openedAt = performance.now();
  convergedAt = NaN;
  bytes = 0;
  closing = false;

  constructor(
    readonly index: number,
    readonly info: SimNode,
    client: grpc.Client,
    private readonly fleet: MeshFleet,
  ) {
    this.node = encodeNode(info);
    this.call = client.makeBidiStreamRequest(
      `${SERVICE}/DeltaAggregatedResources`,
      (b: Buffer) => b,
      (b: Buffer) => b,
    );
    this.call.on('data', (buf: Buffer) => {
      try {
        this.onResponse(buf);
      } catch (err) {
        fleet.fail(`${info.id}: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
    this.call.on('status', (s: grpc.StatusObject) => {
      if (!this.closing) fleet.fail(`${info.id} ended: ${grpc.status[s.code]} ${s.details}`);
    });
    this.call.on('error', () => undefined);
    this.subscribe(TypeUrl.Cluster, undefined);
  }

  private subscribe(typeUrl: string, names: readonly string[] | undefined): void {
    let set = this.subscribed.get(typeUrl);
    const fresh = !set;
    if (!set) this.subscribed.set(typeUrl, (set = new Set()));
    const added = (names ?? []).filter((n) => !set.has(n));
    if (!fresh && added.length === 0) return;
    for (const n of added) set.add(n);
    const node = this.node;
    this.node = undefined;
    this.call.write(deltaRequest(typeUrl, { node, subscribe: added.length > 0 ? encodeNames(added) : undefined }));
  }

  private onResponse(buf: Buffer): void {
    this.bytes += buf.byteLength;
    const res = decodeDeltaResponse(buf);
    this.fleet.count(res.typeUrl);
    const held = this.held.get(res.typeUrl);
    if (!held) throw new Error(`response of unexpected type ${res.typeUrl}`);
    for (const name of res.names) held.add(name);
    for (const name of res.removed) held.delete(name);

    const round = this.fleet.round;
    let finishes = false;
    if (round && Number.isNaN(round.ackedMs[this.index]!)) {
      const e = round.expect;
      if (e.kind === 'type') finishes = res.typeUrl === e.typeUrl;
      else if (res.typeUrl === TypeUrl.ClusterLoadAssignment) {
        res.names.forEach((name, i) => {
          const want = e.targets.get(name);
          if (want !== undefined && firstEndpointAddress(res.anys[i]!) === want) this.pending.delete(name);
        });
        finishes = this.pending.size === 0;
      }
    }
    this.call.write(deltaRequest(res.typeUrl, { nonce: res.nonce }));
    this.acked.set(res.typeUrl, this.acked.get(res.typeUrl)! + 1);
    if (finishes && round) {
      round.ackedMs[this.index] = performance.now() - round.t0;
      if (--round.remaining === 0) round.done();
    }

    // Envoy's order: clusters, their endpoints, listeners, the routes they name.
    if (res.typeUrl === TypeUrl.Cluster) {
      this.subscribe(
        TypeUrl.ClusterLoadAssignment,
        [...held].filter((n) => n.startsWith('outbound|')),
      );
    } else if (res.typeUrl === TypeUrl.ClusterLoadAssignment && !this.subscribed.has(TypeUrl.Listener)) {
      this.subscribe(TypeUrl.Listener, undefined);
    } else if (res.typeUrl === TypeUrl.Listener) {
      this.subscribe(TypeUrl.RouteConfiguration, this.routeNames());
    }
    if (Number.isNaN(this.convergedAt) && this.complete()) {
      this.convergedAt = performance.now();
      this.fleet.onConverged(this);
    }
  }

  /** `0.0.0.0_<port>` (sidecar HTTP listeners) and `<host>:<port>` (proxyless API listeners) → `<port>`. */
  private routeNames(): string[] {
    const names = new Set<string>();
    for (const l of this.held.get(TypeUrl.Listener)!) {
      const m = /^0\.0\.0\.0_(\d+)$/.exec(l) ?? (this.info.proxyType === 'grpc' ? /:(\d+)$/.exec(l) : null);
      if (m) names.add(m[1]!);
    }
    return [...names];
  }

  private complete(): boolean {
    const eds = this.subscribed.get(TypeUrl.ClusterLoadAssignment);
    const rds = this.subscribed.get(TypeUrl.RouteConfiguration);
    return (
      this.acked.get(TypeUrl.Cluster)! > 0 &&
      eds !== undefined &&
      [...eds].every((n) => this.held.get(TypeUrl.ClusterLoadAssignment)!.has(n)) &&
      this.acked.get(TypeUrl.Listener)! > 0 &&
      rds !== undefined &&
      [...rds].every((n) => this.held.get(TypeUrl.RouteConfiguration)!.has(n))
    );
  }

  watch(expect: Expectation): void {
    this.pending = expect.kind === 'eds' ? new Set(expect.targets.keys()) : new Set();
  }

  close(): void {
    this.closing = true;
    this.call.cancel();
  }
}

/** A round under way: when it started (performance.now()) and what it ends with. */
export interface StartedRound {
  readonly t0: number;
  /** Per stream open at t0: ms from t0 to the ACK it waited for (NaN: missed); complete: none missed. */
  readonly done: Promise<{ readonly complete: boolean; readonly ackedMs: readonly number[] }>;
}

/** The simulated proxies of xds-mesh: in this process (MeshFleet) or in the Go load generator (mesh-load.ts). */
export interface Fleet {
  /** Opens a stream per node; resolves with each one's ms to its whole initial config ACKed. */
  connect(nodes: readonly SimNode[], timeoutMs: number): Promise<number[]>;
  /** Starts a round: resolves once every open stream waits for `expect` (t0 is then; the change comes after). */
  startRound(expect: Expectation, timeoutMs: number): Promise<StartedRound>;
  /** Responses received so far, by type URL. */
  typeCounts(): Promise<ReadonlyMap<string, number>>;
  /** Bytes received so far by all streams. */
  totalBytes(): Promise<number>;
  readonly errors: readonly string[];
  close(): Promise<void>;
}

export class MeshFleet implements Fleet {
  readonly clients: grpc.Client[] = [];
  readonly streams: MeshStream[] = [];
  readonly errors: string[] = [];
  readonly responses = new Map<string, number>();
  round: Round | undefined;
  private waiting = new Map<MeshStream, () => void>();

  constructor(
    readonly target: string,
    connections: number,
  ) {
    for (let c = 0; c < connections; c++) {
      this.clients.push(
        new grpc.Client(target, grpc.credentials.createInsecure(), {
          'grpc.use_local_subchannel_pool': 1,
          'grpc.max_receive_message_length': 64 * 1024 * 1024,
        }),
      );
    }
  }

  /** Opens a stream per node; resolves with each one's ms to its whole initial config ACKed. */
  connect(nodes: readonly SimNode[], timeoutMs: number): Promise<number[]> {
    const started = performance.now();
    const all = nodes.map(
      (node) =>
        new Promise<number>((resolve, reject) => {
          const stream = new MeshStream(
            this.streams.length,
            node,
            this.clients[this.streams.length % this.clients.length]!,
            this,
          );
          this.streams.push(stream);
          const timer = setTimeout(
            () => reject(new Error(`${node.id} did not converge within ${timeoutMs} ms`)),
            timeoutMs,
          );
          this.waiting.set(stream, () => {
            clearTimeout(timer);
            resolve(stream.convergedAt - started);
          });
        }),
    );
    return Promise.all(all);
  }

  onConverged(stream: MeshStream): void {
    this.waiting.get(stream)?.();
    this.waiting.delete(stream);
  }

  count(typeUrl: string): void {
    this.responses.set(typeUrl, (this.responses.get(typeUrl) ?? 0) + 1);
  }

  fail(message: string): void {
    if (this.errors.length < 20) this.errors.push(message);
  }

  get bytes(): number {
    return this.streams.reduce((sum, s) => sum + s.bytes, 0);
  }

  /** Starts a round now (every open stream watches at once); see Fleet.startRound. */
  startRound(expect: Expectation, timeoutMs: number): Promise<StartedRound> {
    let finish: (complete: boolean) => void = () => undefined;
    const t0 = performance.now();
    const ended = new Promise<boolean>((resolve) => (finish = resolve));
    const timer = setTimeout(() => finish(false), timeoutMs);
    const round: Round = {
      expect,
      t0,
      ackedMs: new Float64Array(this.streams.length).fill(NaN),
      remaining: this.streams.length,
      done: () => {
        clearTimeout(timer);
        finish(true);
      },
    };
    for (const s of this.streams) s.watch(expect);
    this.round = round;
    const done = ended.then((complete) => {
      this.round = undefined;
      return { complete, ackedMs: [...round.ackedMs] };
    });
    return Promise.resolve({ t0, done });
  }

  typeCounts(): Promise<ReadonlyMap<string, number>> {
    return Promise.resolve(new Map(this.responses));
  }

  totalBytes(): Promise<number> {
    return Promise.resolve(this.bytes);
  }

  close(): Promise<void> {
    for (const s of this.streams) s.close();
    for (const c of this.clients) c.close();
    return Promise.resolve();
  }
}
