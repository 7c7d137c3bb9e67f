// Simulated Envoys: N ADS streams over M gRPC connections, each with its own node id, subscribing as Envoy
// does (CDS wildcard; then EDS for every cluster it got; then LDS wildcard; then RDS by name) and ACKing
// every response. State of the world or delta.
//
// The clients read every response, but only its header: type_url, version, nonce, and each resource's
// name (in SotW from inside the Any). The one resource a round changes is decoded down to the port of its
// first endpoint, so a stream counts as converged only when it holds the new endpoint. Requests are written
// with the wire writer; the long EDS name list is encoded once and shared by all streams.
import { create, toBinary } from '@bufbuild/protobuf';
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import * as grpc from '@grpc/grpc-js';
import { NodeSchema } from '../control-plane/envoy/gen/envoy/config/core/v3/base_pb.js';
import { TypeUrl } from '../control-plane/envoy/protos.js';

export type Protocol = 'sotw' | 'delta';

const SERVICE = '/envoy.service.discovery.v3.AggregatedDiscoveryService';
const LD = WireType.LengthDelimited;
const TYPES = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration] as const;

// ---------------------------------------------------------------------------------------------------
// Wire helpers (field numbers: envoy/service/discovery/v3/discovery.proto)

export interface DecodedResponse {
  typeUrl: string;
  version: string;
  nonce: string;
  names: string[];
  /** The serialized Any of each resource, in the order of `names`. */
  anys: Uint8Array[];
  removed: string[];
}

/** The first length-delimited field `fieldNo` of a message, or undefined. */
function field(buf: Uint8Array, fieldNo: number): Uint8Array | undefined {
  const r = new BinaryReader(buf);
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (no === fieldNo && wt === LD) return r.bytes();
    r.skip(wt, no);
  }
  return undefined;
}

/** Name (field 1 of Cluster, ClusterLoadAssignment, Listener, RouteConfiguration) and type of a packed Any. */
function anyHeader(any: Uint8Array): { typeUrl: string; name: string } {
  const r = new BinaryReader(any);
  let typeUrl = '';
  let value: Uint8Array | undefined;
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (no === 1) typeUrl = r.string();
    else if (no === 2) value = r.bytes();
    else r.skip(wt, no);
  }
  const name = value ? field(value, 1) : undefined;
  return { typeUrl, name: name ? Buffer.from(name.buffer, name.byteOffset, name.byteLength).toString('utf8') : '' };
}

export function decodeSotwResponse(buf: Uint8Array): DecodedResponse {
  const r = new BinaryReader(buf);
  const out: DecodedResponse = { typeUrl: '', version: '', nonce: '', names: [], anys: [], removed: [] };
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (no === 1) out.version = r.string();
    else if (no === 2) out.anys.push(r.bytes());
    else if (no === 4) out.typeUrl = r.string();
    else if (no === 5) out.nonce = r.string();
    else r.skip(wt, no);
  }
  for (const any of out.anys) {
    const h = anyHeader(any);
    if (h.typeUrl !== out.typeUrl) throw new Error(`resource of type ${h.typeUrl} in a ${out.typeUrl} response`);
    out.names.push(h.name);
  }
  return out;
}

export function decodeDeltaResponse(buf: Uint8Array): DecodedResponse {
  const r = new BinaryReader(buf);
  const out: DecodedResponse = { typeUrl: '', version: '', nonce: '', names: [], anys: [], removed: [] };
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (no === 1) out.version = r.string();
    else if (no === 2) {
      // envoy.service.discovery.v3.Resource: version 1, resource 2, name 3
      const rr = new BinaryReader(r.bytes());
      let name = '';
      let any: Uint8Array = new Uint8Array();
      while (rr.pos < rr.len) {
        const [n, w] = rr.tag();
        if (n === 3) name = rr.string();
        else if (n === 2) any = rr.bytes();
        else rr.skip(w, n);
      }
      out.names.push(name);
      out.anys.push(any);
    } else if (no === 4) out.typeUrl = r.string();
    else if (no === 5) out.nonce = r.string();
    else if (no === 6) out.removed.push(r.string());
    else r.skip(wt, no);
  }
  return out;
}

/** Port of the first endpoint of a packed ClusterLoadAssignment (endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value). */
export function firstEndpointPort(any: Uint8Array): number | undefined {
  let m = field(any, 2); // Any.value
  for (const no of [2, 2, 1, 1, 1]) m = m && field(m, no); // endpoints, lb_endpoints, endpoint, address, socket_address
  if (!m) return undefined;
  const r = new BinaryReader(m);
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (no === 3 && wt === WireType.Varint) return r.uint32();
    r.skip(wt, no);
  }
  return undefined;
}

/** `repeated string` field 3 (SotW resource_names and delta resource_names_subscribe), encoded once. */
export function encodeNames(names: readonly string[]): Uint8Array {
  const w = new BinaryWriter();
  for (const name of names) w.tag(3, LD).string(name);
  return w.finish();
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A DiscoveryRequest: version_info 1, node 2, resource_names 3, type_url 4, response_nonce 5. */
export function sotwRequest(
  typeUrl: string,
  o: { node?: Uint8Array; version?: string; nonce?: string; names?: Uint8Array },
): Buffer {
  const w = new BinaryWriter();
  if (o.version) w.tag(1, LD).string(o.version);
  if (o.node) w.tag(2, LD).bytes(o.node);
  if (o.names) w.raw(o.names);
  w.tag(4, LD).string(typeUrl);
  if (o.nonce) w.tag(5, LD).string(o.nonce);
  return toBuffer(w.finish());
}

/** A DeltaDiscoveryRequest: node 1, type_url 2, resource_names_subscribe 3, response_nonce 6. */
export function deltaRequest(
  typeUrl: string,
  o: { node?: Uint8Array; nonce?: string; subscribe?: Uint8Array },
): Buffer {
  const w = new BinaryWriter();
  if (o.node) w.tag(1, LD).bytes(o.node);
  w.tag(2, LD).string(typeUrl);
  if (o.subscribe) w.raw(o.subscribe);
  if (o.nonce) w.tag(6, LD).string(o.nonce);
  return toBuffer(w.finish());
}

export function encodeNode(id: string): Uint8Array {
  return toBinary(
    NodeSchema,
    create(NodeSchema, {
      id,
      cluster: 'bench',
      metadata: {
        NAMESPACE: id.split('.')[1] ?? 'default',
        PROXY_TYPE: 'envoy',
        SERVICE_ACCOUNT: 'default',
        INSTANCE_IPS: '10.255.0.1',
      },
      locality: { region: 'r1', zone: 'z1' },
      userAgentName: 'envoy',
      userAgentVersionType: { case: 'userAgentVersion', value: '1.36.0-bench' },
    }),
  );
}

// ---------------------------------------------------------------------------------------------------
// The fleet

/** What a round waits for: every stream holding `target` with its first endpoint on `port`. */
export interface RoundWatch {
  readonly target: string;
  readonly port: number;
  /** performance.now() at the change. */
  readonly t0: number;
  /** Per stream: ms from t0 to the ACK of the response carrying the change (NaN until then). */
  readonly ackedMs: Float64Array;
  remaining: number;
  /** ms from t0 to the first stream's receipt. */
  firstReceiptMs: number;
  done: () => void;
}

interface TypeState {
  requested: boolean;
  acks: number;
  held: Set<string>;
}

export interface FleetOptions {
  readonly target: string;
  readonly protocol: Protocol;
  readonly streams: number;
  readonly connections: number;
  /** EDS names to subscribe to (the CDS response must name the same clusters). */
  readonly clusterNames: readonly string[];
  readonly routeNames: readonly string[];
}

class SimStream {
  readonly types = new Map<string, TypeState>(
    TYPES.map((t) => [t, { requested: false, acks: 0, held: new Set<string>() }]),
  );
  readonly openedAt = performance.now();
  convergedAt = NaN;
  bytes = 0;
  responses = 0;
  readonly responsesByType = new Map<string, number>();
  private readonly call: grpc.ClientDuplexStream<Buffer, Buffer>;
  private nodeBytes: Uint8Array | undefined;
  closing = false;

  constructor(
    readonly index: number,
    client: grpc.Client,
    private readonly fleet: Fleet,
  ) {
    const delta = fleet.options.protocol === 'delta';
    const id = `bench-${String(index).padStart(5, '0')}.ns-${index % 10}`;
    this.nodeBytes = encodeNode(id);
    this.call = client.makeBidiStreamRequest(
      `${SERVICE}/${delta ? 'DeltaAggregatedResources' : 'StreamAggregatedResources'}`,
      (b: Buffer) => b,
      (b: Buffer) => b,
    );
    this.call.on('data', (buf: Buffer) => {
      try {
        this.onResponse(buf);
      } catch (err) {
        fleet.fail(`stream ${index}: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
    this.call.on('status', (s: grpc.StatusObject) => {
      if (!this.closing) fleet.fail(`stream ${index} ended: ${grpc.status[s.code]} ${s.details}`);
    });
    this.call.on('error', () => undefined); // the status event carries it
    this.request(TypeUrl.Cluster); // CDS wildcard first, as Envoy
  }

  /** A first request for a type (carries the node on the stream's very first request). */
  private request(typeUrl: string): void {
    this.types.get(typeUrl)!.requested = true;
    const node = this.nodeBytes;
    this.nodeBytes = undefined;
    const names =
      typeUrl === TypeUrl.ClusterLoadAssignment
        ? this.fleet.edsNames
        : typeUrl === TypeUrl.RouteConfiguration
          ? this.fleet.rdsNames
          : undefined;
    this.call.write(
      this.fleet.options.protocol === 'delta'
        ? deltaRequest(typeUrl, { node, subscribe: names })
        : sotwRequest(typeUrl, { node, names }),
    );
  }

  private ack(typeUrl: string, version: string, nonce: string): void {
    if (this.fleet.options.protocol === 'delta') {
      this.call.write(deltaRequest(typeUrl, { nonce }));
    } else {
      // A SotW request repeats the whole subscription: the EDS and RDS names, none for the wildcards.
      const names =
        typeUrl === TypeUrl.ClusterLoadAssignment
          ? this.fleet.edsNames
          : typeUrl === TypeUrl.RouteConfiguration
            ? this.fleet.rdsNames
            : undefined;
      this.call.write(sotwRequest(typeUrl, { version, nonce, names }));
    }
  }

  private onResponse(buf: Buffer): void {
    const received = performance.now();
    this.bytes += buf.byteLength;
    this.responses++;
    const delta = this.fleet.options.protocol === 'delta';
    const res = delta ? decodeDeltaResponse(buf) : decodeSotwResponse(buf);
    this.responsesByType.set(res.typeUrl, (this.responsesByType.get(res.typeUrl) ?? 0) + 1);
    const state = this.types.get(res.typeUrl);
    if (!state) throw new Error(`response of unexpected type ${res.typeUrl}`);
    if (res.typeUrl === TypeUrl.Cluster || res.typeUrl === TypeUrl.Listener) {
      if (!delta) state.held.clear(); // full state: what is not listed is gone
    }
    for (const name of res.names) state.held.add(name);
    for (const name of res.removed) state.held.delete(name);

    // Did this response carry the change the current round waits for?
    const watch = this.fleet.watch;
    let carriesChange = false;
    if (watch && res.typeUrl === TypeUrl.ClusterLoadAssignment && Number.isNaN(watch.ackedMs[this.index]!)) {
      const i = res.names.indexOf(watch.target);
      if (i !== -1 && firstEndpointPort(res.anys[i]!) === watch.port) {
        carriesChange = true;
        if (Number.isNaN(watch.firstReceiptMs)) watch.firstReceiptMs = received - watch.t0;
      }
    }

    this.ack(res.typeUrl, res.version, res.nonce);
    state.acks++;

    if (carriesChange && watch) {
      watch.ackedMs[this.index] = performance.now() - watch.t0;
      if (--watch.remaining === 0) watch.done();
    }

    // Envoy's order: clusters, then their endpoints, then listeners, then the routes they name.
    if (res.typeUrl === TypeUrl.Cluster && !this.types.get(TypeUrl.ClusterLoadAssignment)!.requested)
      this.request(TypeUrl.ClusterLoadAssignment);
    else if (res.typeUrl === TypeUrl.ClusterLoadAssignment && !this.types.get(TypeUrl.Listener)!.requested)
      this.request(TypeUrl.Listener);
    else if (res.typeUrl === TypeUrl.Listener && !this.types.get(TypeUrl.RouteConfiguration)!.requested)
      this.request(TypeUrl.RouteConfiguration);

    if (Number.isNaN(this.convergedAt) && this.initialConfigComplete()) {
      this.convergedAt = performance.now();
      this.fleet.onConverged();
    }
  }

  private initialConfigComplete(): boolean {
    const o = this.fleet.options;
    const t = (u: string): TypeState => this.types.get(u)!;
    return (
      t(TypeUrl.Cluster).acks > 0 &&
      t(TypeUrl.Cluster).held.size === o.clusterNames.length &&
      t(TypeUrl.ClusterLoadAssignment).held.size === o.clusterNames.length &&
      t(TypeUrl.Listener).acks > 0 &&
      o.routeNames.every((n) => t(TypeUrl.RouteConfiguration).held.has(n))
    );
  }

  close(): void {
    this.closing = true;
    this.call.cancel();
  }
}

export class Fleet {
  readonly edsNames: Uint8Array;
  readonly rdsNames: Uint8Array;
  readonly clients: grpc.Client[] = [];
  readonly streams: SimStream[] = [];
  watch: RoundWatch | undefined;
  converged = 0;
  readonly errors: string[] = [];
  private onAllConverged: (() => void) | undefined;

  constructor(readonly options: FleetOptions) {
    this.edsNames = encodeNames([...options.clusterNames].sort());
    this.rdsNames = encodeNames(options.routeNames);
  }

  /** Opens the connections and all streams; resolves when every stream has its whole initial config ACKed. */
  start(timeoutMs: number): Promise<void> {
    for (let c = 0; c < this.options.connections; c++) {
      // One HTTP/2 connection per client: a local subchannel pool keeps grpc-js from sharing them.
      this.clients.push(
        new grpc.Client(this.options.target, grpc.credentials.createInsecure(), {
          'grpc.use_local_subchannel_pool': 1,
          'grpc.max_receive_message_length': 64 * 1024 * 1024,
        }),
      );
    }
    const all = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new Error(`${this.options.streams - this.converged} streams did not converge within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.onAllConverged = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    for (let i = 0; i < this.options.streams; i++)
      this.streams.push(new SimStream(i, this.clients[i % this.clients.length]!, this));
    return all;
  }

  onConverged(): void {
    if (++this.converged === this.options.streams) this.onAllConverged?.();
  }

  fail(message: string): void {
    if (this.errors.length < 20) this.errors.push(message);
  }

  get bytes(): number {
    let sum = 0;
    for (const s of this.streams) sum += s.bytes;
    return sum;
  }

  get responses(): number {
    let sum = 0;
    for (const s of this.streams) sum += s.responses;
    return sum;
  }

  responsesByType(): Map<string, number> {
    const out = new Map<string, number>();
    for (const s of this.streams) for (const [t, n] of s.responsesByType) out.set(t, (out.get(t) ?? 0) + n);
    return out;
  }

  /** Starts watching for `target` at `port`; the promise resolves when all streams ACKed it, or at the timeout. */
  watchChange(
    target: string,
    port: number,
    t0: number,
    timeoutMs: number,
  ): { watch: RoundWatch; done: Promise<boolean> } {
    let finish: (ok: boolean) => void = () => undefined;
    const done = new Promise<boolean>((resolve) => (finish = resolve));
    const timer = setTimeout(() => finish(false), timeoutMs);
    const watch: RoundWatch = {
      target,
      port,
      t0,
      ackedMs: new Float64Array(this.options.streams).fill(NaN),
      remaining: this.options.streams,
      firstReceiptMs: NaN,
      done: () => {
        clearTimeout(timer);
        finish(true);
      },
    };
    this.watch = watch;
    return { watch, done };
  }

  close(): void {
    for (const s of this.streams) s.close();
    for (const c of this.clients) c.close();
  }
}
