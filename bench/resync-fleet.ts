// Simulated proxies that outlive their control plane: N ADS streams (bench/ads-sim.ts's wire helpers and
// Envoy's subscription order: CDS wildcard, EDS for the fixture's clusters, LDS wildcard, RDS by name), each
// holding the config it was sent, as a proxy does, and ACKing every response.
//
// When a stream ends (the control plane was killed) the stream keeps its config and records the status it
// ended with; then it opens a new stream at once with `waitForReady`, so grpc-js holds it until the channel
// reconnects, with its own reconnect backoff, as a grpc-js-xds client does. A stream has *resynced* when,
// on its new stream, it has received and ACKed every type again and holds the same config as before.
//
// The config hash of a stream is a SHA-256 over every resource it holds (type, name, version and the Any
// bytes the server sent) and, in SotW, each type's version_info: "the same hash" means byte-identical
// resources under the same versions (README: versions are content hashes, the same after a restart).
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { TypeUrl } from '../control-plane/envoy/protos.js';
import {
  decodeDeltaResponse,
  decodeSotwResponse,
  deltaRequest,
  encodeNames,
  encodeNode,
  sotwRequest,
  type Protocol,
} from './ads-sim.js';

const SERVICE = '/envoy.service.discovery.v3.AggregatedDiscoveryService';
const TYPES = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration] as const;

/** name → version of each Resource of a DeltaDiscoveryResponse (resources 2: version 1, name 3). */
function deltaVersions(buf: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  const r = new BinaryReader(buf);
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (no !== 2 || wt !== WireType.LengthDelimited) {
      r.skip(wt, no);
      continue;
    }
    const rr = new BinaryReader(r.bytes());
    let name = '';
    let version = '';
    while (rr.pos < rr.len) {
      const [n, w] = rr.tag();
      if (n === 1) version = rr.string();
      else if (n === 3) name = rr.string();
      else rr.skip(w, n);
    }
    out.set(name, version);
  }
  return out;
}

export interface ResyncFleetOptions {
  readonly target: string;
  readonly protocol: Protocol;
  readonly streams: number;
  readonly connections: number;
  readonly clusterNames: readonly string[];
  readonly routeNames: readonly string[];
  /** grpc-js reconnect backoff of each connection: initial and maximum, ms. */
  readonly reconnectBackoffMs?: { readonly initial: number; readonly max: number };
}

/** How a stream ended: the gRPC status code name and details. */
export interface StreamEnd {
  readonly code: string;
  readonly details: string;
  /** The stream's config hash right after it ended (the proxy still holds it). */
  readonly hashAfter: string;
}

class ResyncStream {
  /** What the proxy holds: type → name → Any bytes. Replaced per resource as responses arrive, never cleared on a stream end. */
  readonly config = new Map<string, Map<string, Uint8Array>>(TYPES.map((t) => [t, new Map()]));
  /** Delta: the version of each resource held (type → name → version); SotW: the version_info of each type. */
  private readonly resourceVersions = new Map<string, Map<string, string>>(TYPES.map((t) => [t, new Map()]));
  private readonly typeVersions = new Map<string, string>();
  /** Types received and ACKed on the current stream. */
  private current = new Set<string>();
  private requested = new Set<string>();
  private call: grpc.ClientDuplexStream<Buffer, Buffer> | undefined;
  private closing = false;
  /** Streams opened so far (1 after the first connect). */
  epoch = 0;
  readonly ends: StreamEnd[] = [];
  /** performance.now() when the current stream had every type ACKed; NaN until then. */
  completeAt = NaN;

  constructor(
    readonly index: number,
    private readonly client: grpc.Client,
    private readonly fleet: ResyncFleet,
  ) {
    this.open();
  }

  private open(): void {
    this.epoch++;
    this.current = new Set();
    this.requested = new Set();
    this.completeAt = NaN;
    const delta = this.fleet.options.protocol === 'delta';
    const metadata = new grpc.Metadata({ waitForReady: true });
    const call = this.client.makeBidiStreamRequest(
      `${SERVICE}/${delta ? 'DeltaAggregatedResources' : 'StreamAggregatedResources'}`,
      (b: Buffer) => b,
      (b: Buffer) => b,
      metadata,
    );
    this.call = call;
    call.on('data', (buf: Buffer) => {
      try {
        this.onResponse(buf);
      } catch (err) {
        this.fleet.fail(`stream ${this.index}: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
    call.on('status', (s: grpc.StatusObject) => {
      if (this.closing || call !== this.call) return;
      this.ends.push({ code: grpc.status[s.code] ?? String(s.code), details: s.details, hashAfter: this.hash() });
      this.fleet.onStreamEnded();
      this.open();
    });
    call.on('error', () => undefined); // the status event carries it
    this.request(TypeUrl.Cluster, true);
  }

  private names(typeUrl: string): Uint8Array | undefined {
    return typeUrl === TypeUrl.ClusterLoadAssignment
      ? this.fleet.edsNames
      : typeUrl === TypeUrl.RouteConfiguration
        ? this.fleet.rdsNames
        : undefined;
  }

  private request(typeUrl: string, first = false): void {
    this.requested.add(typeUrl);
    const node = first ? this.fleet.nodeOf(this.index) : undefined;
    const names = this.names(typeUrl);
    this.call!.write(
      this.fleet.options.protocol === 'delta'
        ? deltaRequest(typeUrl, { node, subscribe: names })
        : sotwRequest(typeUrl, { node, names }),
    );
  }

  private onResponse(buf: Buffer): void {
    const delta = this.fleet.options.protocol === 'delta';
    const res = delta ? decodeDeltaResponse(buf) : decodeSotwResponse(buf);
    const held = this.config.get(res.typeUrl);
    if (!held) throw new Error(`response of unexpected type ${res.typeUrl}`);
    // SotW CDS and LDS carry the whole set: what is not listed is gone.
    if (!delta && (res.typeUrl === TypeUrl.Cluster || res.typeUrl === TypeUrl.Listener)) held.clear();
    const versions = this.resourceVersions.get(res.typeUrl)!;
    const fromDelta = delta ? deltaVersions(buf) : undefined;
    if (!delta && (res.typeUrl === TypeUrl.Cluster || res.typeUrl === TypeUrl.Listener)) versions.clear();
    res.names.forEach((name, i) => {
      held.set(name, res.anys[i]!);
      versions.set(name, fromDelta?.get(name) ?? '');
    });
    for (const name of res.removed) {
      held.delete(name);
      versions.delete(name);
    }
    if (!delta) this.typeVersions.set(res.typeUrl, res.version);
    this.call!.write(
      delta
        ? deltaRequest(res.typeUrl, { nonce: res.nonce })
        : sotwRequest(res.typeUrl, { version: res.version, nonce: res.nonce, names: this.names(res.typeUrl) }),
    );
    this.current.add(res.typeUrl);
    if (res.typeUrl === TypeUrl.Cluster && !this.requested.has(TypeUrl.ClusterLoadAssignment))
      this.request(TypeUrl.ClusterLoadAssignment);
    else if (res.typeUrl === TypeUrl.ClusterLoadAssignment && !this.requested.has(TypeUrl.Listener))
      this.request(TypeUrl.Listener);
    else if (res.typeUrl === TypeUrl.Listener && !this.requested.has(TypeUrl.RouteConfiguration))
      this.request(TypeUrl.RouteConfiguration);
    if (Number.isNaN(this.completeAt) && this.complete()) {
      this.completeAt = performance.now();
      this.fleet.onComplete();
    }
  }

  /** Every type received and ACKed on the current stream, and the whole subscription held. */
  private complete(): boolean {
    const o = this.fleet.options;
    return (
      TYPES.every((t) => this.current.has(t)) &&
      this.config.get(TypeUrl.ClusterLoadAssignment)!.size === o.clusterNames.length &&
      o.routeNames.every((n) => this.config.get(TypeUrl.RouteConfiguration)!.has(n))
    );
  }

  hash(): string {
    const h = createHash('sha256');
    for (const t of TYPES) {
      const held = this.config.get(t)!;
      const versions = this.resourceVersions.get(t)!;
      h.update(`${t}\0${this.typeVersions.get(t) ?? ''}\0`);
      for (const name of [...held.keys()].sort()) {
        h.update(`${name}\0${versions.get(name) ?? ''}\0`).update(held.get(name)!);
      }
    }
    return h.digest('hex');
  }

  close(): void {
    this.closing = true;
    this.call?.cancel();
  }
}

export class ResyncFleet {
  readonly edsNames: Uint8Array;
  readonly rdsNames: Uint8Array;
  private readonly clients: grpc.Client[] = [];
  readonly streams: ResyncStream[] = [];
  readonly errors: string[] = [];
  private readonly nodes = new Map<number, Uint8Array>();
  private listeners = new Set<() => void>();

  constructor(readonly options: ResyncFleetOptions) {
    this.edsNames = encodeNames([...options.clusterNames].sort());
    this.rdsNames = encodeNames(options.routeNames);
    const backoff = options.reconnectBackoffMs;
    for (let c = 0; c < options.connections; c++) {
      this.clients.push(
        new grpc.Client(options.target, grpc.credentials.createInsecure(), {
          'grpc.use_local_subchannel_pool': 1,
          'grpc.max_receive_message_length': 64 * 1024 * 1024,
          ...(backoff
            ? { 'grpc.initial_reconnect_backoff_ms': backoff.initial, 'grpc.max_reconnect_backoff_ms': backoff.max }
            : {}),
        }),
      );
    }
    for (let i = 0; i < options.streams; i++)
      this.streams.push(new ResyncStream(i, this.clients[i % this.clients.length]!, this));
  }

  nodeOf(index: number): Uint8Array {
    let node = this.nodes.get(index);
    if (!node) this.nodes.set(index, (node = encodeNode(`bench-${String(index).padStart(5, '0')}.ns-${index % 10}`)));
    return node;
  }

  /** Resolves when `check` holds, re-evaluated on every stream event; rejects at the deadline with `what`. */
  until(check: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const listener = (): void => {
        if (!check()) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve();
      };
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(what()));
      }, timeoutMs);
      this.listeners.add(listener);
    });
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  onComplete(): void {
    this.notify();
  }

  onStreamEnded(): void {
    this.notify();
  }

  fail(message: string): void {
    if (this.errors.length < 20) this.errors.push(message);
    this.notify();
  }

  /** Every stream complete on its stream number `epoch` (1: the first connect, 2: after one restart). */
  completeOn(epoch: number): number {
    let n = 0;
    for (const s of this.streams) if (s.epoch === epoch && !Number.isNaN(s.completeAt)) n++;
    return n;
  }

  /** Every stream ended `ends` times. */
  endedTimes(ends: number): number {
    let n = 0;
    for (const s of this.streams) if (s.ends.length >= ends) n++;
    return n;
  }

  /** Distinct config hashes over all streams, with how many streams hold each. */
  hashes(): Map<string, number> {
    const out = new Map<string, number>();
    for (const s of this.streams) {
      const h = s.hash();
      out.set(h, (out.get(h) ?? 0) + 1);
    }
    return out;
  }

  close(): void {
    for (const s of this.streams) s.close();
    for (const c of this.clients) c.close();
  }
}
