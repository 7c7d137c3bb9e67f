// Discovery responses written straight from cached bytes. A response is a few header fields around
// resources that are already serialized (resource-cache.ts). An embedded message field is a tag, a varint
// length and the bytes, so a response need not be assembled into one buffer at all: it is kept as pieces in
// wire order, the cached resource bytes themselves (shared by every stream that sends them) between small
// buffers holding the header fields, and the nonce. The bytes are copied once, by grpc-js, straight from
// the pieces into the gRPC frame it writes (serializeResponse): no writer that grows (and copies what it
// holds) as it goes, no per-stream copy of a shared body to add a nonce.
// The field numbers are those of envoy/service/discovery/v3/discovery.proto.
import { varintSize } from '../envoy/protos.js';
import { keepShapes } from '../../lib/shape-keeper.js';
import type { EncodedResource } from './resource-cache.js';

/** Wire type 2 (length-delimited); every field written here is one, with a field number below 16. */
const tag = (field: number): number => (field << 3) | 2;

/** A length-delimited field's tag and length on the wire, given its payload size. */
const headerSize = (payload: number): number => 1 + varintSize(payload);

/** One length-delimited field's size on the wire, given its payload size. */
const fieldSize = (payload: number): number => headerSize(payload) + payload;

/** Writes fields into a buffer of known size. */
class FieldWriter {
  constructor(
    private readonly buf: Buffer,
    private at = 0,
  ) {}

  static sized(size: number): FieldWriter {
    return new FieldWriter(Buffer.allocUnsafe(size));
  }

  get pos(): number {
    return this.at;
  }

  /** A field's tag and length; its payload follows (written here, or a piece of its own). */
  header(field: number, length: number): this {
    this.buf[this.at++] = tag(field);
    while (length >= 0x80) {
      this.buf[this.at++] = (length & 0x7f) | 0x80;
      length = Math.floor(length / 128);
    }
    this.buf[this.at++] = length;
    return this;
  }

  bytes(field: number, bytes: Uint8Array): this {
    this.header(field, bytes.byteLength);
    this.buf.set(bytes, this.at);
    this.at += bytes.byteLength;
    return this;
  }

  string(field: number, text: string, length: number): this {
    this.header(field, length);
    this.at += this.buf.write(text, this.at, length, 'utf8');
    return this;
  }

  /** The bytes from `start` to the current position (a view, not a copy). */
  slice(start: number): Buffer {
    return this.buf.subarray(start, this.at);
  }

  /** The buffer, checked to be exactly full (a measuring mistake would otherwise send garbage). */
  finish(): Buffer {
    if (this.at !== this.buf.byteLength)
      throw new Error(`response assembled ${this.at} of ${this.buf.byteLength} bytes`);
    return this.buf;
  }
}

/** A message as pieces in wire order: cached resource bytes (never copied here) and small header buffers. */
export type Pieces = readonly Uint8Array[];

/**
 * Pieces from small header bytes interleaved with large cached payloads: `write` fills one small buffer
 * and marks, with `payload`, where a cached byte array goes between two of its stretches.
 */
class PieceWriter {
  private readonly w: FieldWriter;
  private readonly pieces: Uint8Array[] = [];
  private start = 0;

  constructor(smallBytes: number) {
    this.w = FieldWriter.sized(smallBytes);
  }

  get fields(): FieldWriter {
    return this.w;
  }

  /** A field whose payload is `bytes`, referred to rather than copied. */
  payload(field: number, bytes: Uint8Array): void {
    this.w.header(field, bytes.byteLength);
    this.pieces.push(this.w.slice(this.start), bytes);
    this.start = this.w.pos;
  }

  finish(): Pieces {
    this.w.finish();
    if (this.w.pos > this.start) this.pieces.push(this.w.slice(this.start));
    return this.pieces;
  }
}

const controlPlaneCache = new Map<string, Uint8Array>();

/** `envoy.config.core.v3.ControlPlane{identifier}` serialized once per identifier. */
function controlPlaneBytes(identifier: string): Uint8Array {
  let bytes = controlPlaneCache.get(identifier);
  if (!bytes) {
    const length = Buffer.byteLength(identifier);
    bytes = FieldWriter.sized(fieldSize(length)).string(1, identifier, length).finish();
    controlPlaneCache.set(identifier, bytes);
  }
  return bytes;
}

/** The part of a state-of-the-world response that does not depend on the nonce, as pieces. */
export function encodeSotwBody(
  versionInfo: string,
  typeUrl: string,
  resources: readonly EncodedResource[],
  controlPlane: string,
): Pieces {
  return [headPiece(versionInfo), ...entryPieces('sotw', resources), tailPiece('sotw', typeUrl, [], controlPlane)];
}

/** Field 1 of both responses: version_info / system_version_info. */
function headPiece(version: string): Uint8Array {
  const length = Buffer.byteLength(version);
  return FieldWriter.sized(fieldSize(length)).string(1, version, length).finish();
}

/**
 * The fields after the resources: type_url (4), for delta the removed_resources (6), then control_plane
 * (field 6 of DiscoveryResponse, 7 of DeltaDiscoveryResponse).
 */
function tailPiece(kind: FullSetKind, typeUrl: string, removed: readonly string[], controlPlane: string): Uint8Array {
  const typeUrlLength = Buffer.byteLength(typeUrl);
  const cp = controlPlaneBytes(controlPlane);
  const removedLengths = removed.map((name) => Buffer.byteLength(name));
  let size = fieldSize(typeUrlLength) + fieldSize(cp.byteLength);
  for (const length of removedLengths) size += fieldSize(length);
  const w = FieldWriter.sized(size).string(4, typeUrl, typeUrlLength);
  removed.forEach((name, i) => w.string(6, name, removedLengths[i]!));
  return w.bytes(kind === 'sotw' ? 6 : 7, cp).finish();
}

/** A DeltaDiscoveryResponse without its nonce (Response adds it), as pieces. */
export function encodeDeltaBody(
  systemVersionInfo: string,
  typeUrl: string,
  resources: readonly EncodedResource[],
  removed: readonly string[],
  controlPlane: string,
): Pieces {
  return [
    headPiece(systemVersionInfo),
    ...entryPieces('delta', resources),
    tailPiece('delta', typeUrl, removed, controlPlane),
  ];
}

/** Pieces joined into one buffer (a body shared by many streams is joined once, when it is built). */
export function joinPieces(pieces: Pieces): Uint8Array {
  if (pieces.length === 1) return pieces[0]!;
  return Buffer.concat(pieces);
}

/**
 * A response as a stream queues it: its body (pieces of bytes, often shared by every stream that gets the
 * same content) and its nonce. Nothing is joined until grpc-js writes it (serializeResponse), so a queued
 * response holds no copy of its body.
 */
export class Response {
  readonly pieces: Pieces;
  /** Its size on the wire. */
  readonly byteLength: number;
  constructor(
    body: Uint8Array | Pieces,
    /** The nonce (field 5 of DiscoveryResponse and of DeltaDiscoveryResponse); undefined: `body` is whole. */
    readonly nonce: string | undefined,
  ) {
    this.pieces = body instanceof Uint8Array ? [body] : body;
    let size = nonce === undefined ? 0 : fieldSize(Buffer.byteLength(nonce));
    for (const piece of this.pieces) size += piece.byteLength;
    this.byteLength = size;
  }

  /** Writes the response's bytes at `target[offset]`: its body, then its nonce (field order is free in protobuf). */
  writeTo(target: Buffer, offset: number): number {
    let at = offset;
    for (const piece of this.pieces) {
      target.set(piece, at);
      at += piece.byteLength;
    }
    if (this.nonce !== undefined) {
      const length = Buffer.byteLength(this.nonce);
      at = new FieldWriter(target, at).string(5, this.nonce, length).pos;
    }
    if (at - offset !== this.byteLength) throw new Error(`response wrote ${at - offset} of ${this.byteLength} bytes`);
    return at - offset;
  }
}

/** The nonce as field 5 of a discovery response (its tag, length and text). */
export function nonceField(nonce: string): Buffer {
  const length = Buffer.byteLength(nonce);
  return FieldWriter.sized(fieldSize(length)).string(5, nonce, length).finish();
}

/** The response's bytes as one buffer (tests and benchmarks; the server writes with serializeResponse). */
export function responseBytes(response: Response): Buffer {
  const { pieces, nonce } = response;
  if (nonce === undefined && pieces.length === 1) {
    const only = pieces[0]!;
    return Buffer.from(only.buffer, only.byteOffset, only.byteLength);
  }
  const buf = Buffer.allocUnsafe(response.byteLength);
  response.writeTo(buf, 0);
  return buf;
}

/**
 * What the ADS methods' response serializer returns to grpc-js. grpc-js (1.14, server-interceptors.js
 * `serializeMessage`) frames a response by reading the serializer result's `byteLength`, allocating the
 * gRPC frame (5 header bytes + the message) and calling `result.copy(frame, 5)`, synchronously. This
 * object offers exactly that much of Buffer, so grpc-js's copy writes the pieces and the nonce straight
 * into its frame: the one copy of the response's bytes there is, where handing over a joined Buffer would
 * cost a second one (and a second allocation of the response's size) per stream. Should a grpc-js version
 * use the result any other way, it fails loudly: the call ends with INTERNAL ("Error serializing
 * response"), which test/xds/wire-bytes.test.ts (real grpc-js clients, every byte compared) would show.
 */
class FramedResponse {
  readonly byteLength: number;
  constructor(private readonly response: Response) {
    this.byteLength = response.byteLength;
  }

  get length(): number {
    return this.byteLength;
  }

  copy(target: Buffer, targetStart = 0): number {
    return this.response.writeTo(target, targetStart);
  }
}

/** The ADS methods' response serializer (see FramedResponse): a response copied once, into the gRPC frame. */
export function serializeResponse(response: Response): Buffer {
  const { pieces, nonce } = response;
  if (nonce === undefined && pieces.length === 1) return responseBytes(response); // already one buffer
  return new FramedResponse(response) as unknown as Buffer;
}

/** A complete DiscoveryResponse: a body from encodeSotwBody plus the nonce, as one buffer (tests, benchmarks). */
export function withNonce(body: Uint8Array | Pieces, nonce: string): Buffer {
  return responseBytes(new Response(body, nonce));
}

/** A complete DeltaDiscoveryResponse as one buffer (tests, benchmarks). */
export function encodeDeltaResponse(
  systemVersionInfo: string,
  typeUrl: string,
  resources: readonly EncodedResource[],
  removed: readonly string[],
  nonce: string,
  controlPlane: string,
): Buffer {
  return withNonce(encodeDeltaBody(systemVersionInfo, typeUrl, resources, removed, controlPlane), nonce);
}

/** Which response a whole-set body is for: a DiscoveryResponse or a DeltaDiscoveryResponse. */
export type FullSetKind = 'sotw' | 'delta';

/** A resource's entry in a response: `DiscoveryResponse.resources` (the Any) or a delta `Resource`. */
function entryPieces(kind: FullSetKind, resources: readonly EncodedResource[]): Pieces {
  if (kind === 'sotw') {
    let small = 0;
    for (const r of resources) small += headerSize(r.any.byteLength);
    const p = new PieceWriter(small);
    for (const r of resources) p.payload(2, r.any);
    return p.finish();
  }
  // Each resource is an `envoy.service.discovery.v3.Resource{version = 1, resource = 2, name = 3}`: its
  // header and fields around the Any, which is the cached piece.
  let small = 0;
  const lengths = resources.map((r) => {
    const version = Buffer.byteLength(r.version);
    const name = Buffer.byteLength(r.name);
    const message = fieldSize(version) + fieldSize(r.any.byteLength) + fieldSize(name);
    small += headerSize(message) + fieldSize(version) + headerSize(r.any.byteLength) + fieldSize(name);
    return { version, name, message };
  });
  const p = new PieceWriter(small);
  resources.forEach((r, i) => {
    const l = lengths[i]!;
    p.fields.header(2, l.message).string(1, r.version, l.version);
    p.payload(2, r.any);
    p.fields.string(3, r.name, l.name);
  });
  return p.finish();
}

/**
 * Bytes from which a piece is sent by reference, not copied: frame-writes.ts hands such pieces to the HTTP/2
 * stream as they are, and a whole-set body never copies a resource this large into a block.
 */
export const REFERENCE_MIN_BYTES = 16 * 1024;
/**
 * Resources per block on average (a block ends after a resource whose name hashes to 0 mod this): about
 * 150 KB of clusters, above glibc's mmap threshold (128 KiB in the image), so a block freed is memory
 * returned; 32 (40 KB blocks) left 200 MB more resident after a connect storm, and 65 chunks per response.
 */
const BLOCK_AVERAGE = 128;
/** A block ends after this many resources whatever their names. */
const BLOCK_MAX = 1024;

/** Whether a block ends after `r`: its name's FNV-1a hash (over UTF-16 code units) is 0 mod BLOCK_AVERAGE. */
function endsBlock(r: EncodedResource): boolean {
  let hash = 0x811c9dc5;
  for (let i = 0; i < r.name.length; i++) hash = Math.imul(hash ^ r.name.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % BLOCK_AVERAGE === 0;
}

/** A joined block and the serials of the resources it holds, in order. */
interface KnownBlock {
  readonly serials: readonly number[];
  readonly ref: WeakRef<Uint8Array>;
}

/**
 * Joined blocks by kind and the resources they hold (runKey), while some body uses them. A key is a hash:
 * the serials decide (sameRun), so two runs that share a key only share no block.
 */
const blocks = new Map<string, KnownBlock>();
const blockCleanup = new FinalizationRegistry<string>((key) => {
  if (blocks.get(key)?.ref.deref() === undefined) blocks.delete(key);
});

/**
 * A run's key: its kind, length, first serial and an FNV-1a hash of its serials. Numbers, not a string of
 * every serial: that string cost the first proxy after an endpoint change 3 ms for 3,000 assignments.
 */
function runKey(kind: FullSetKind, run: readonly EncodedResource[]): string {
  let hash = 0x811c9dc5;
  for (const r of run) hash = Math.imul(hash ^ r.serial, 0x01000193);
  return `${kind}|${run.length}|${run[0]!.serial}|${hash >>> 0}`;
}

/** Whether `run` holds exactly the resources of these serials, in order. */
function sameRun(serials: readonly number[], run: readonly EncodedResource[]): boolean {
  if (serials.length !== run.length) return false;
  for (let i = 0; i < run.length; i++) if (serials[i] !== run[i]!.serial) return false;
  return true;
}

type KeptBlock = { readonly serials: readonly number[]; readonly bytes: Uint8Array };

let joinedBlocks = 0;

/** Blocks joined so far (tests): how often a run of entries was copied into a new block. */
export function blocksJoined(): number {
  return joinedBlocks;
}

/**
 * Per resource that ends a run, by kind: the newest block joined for a run ending there, kept as long as
 * that resource lives. A change makes new sets, and the bodies of the sets it replaced die with them; the
 * first proxy to connect after it (the body of a new set is built when one first needs it) finds the blocks
 * of every run the change left alone here, and joins only the block that holds what changed. Without this,
 * once a GC had collected the old bodies' blocks, that proxy joined the whole set again: 2 MB of
 * ClusterLoadAssignments after an endpoint change, 5 ms of its first response. About one resource in
 * BLOCK_AVERAGE ends a run, so this map has a few hundred keys.
 */
const keptBlocks = new WeakMap<EncodedResource, { sotw?: KeptBlock; delta?: KeptBlock }>();

/** The block of `run`'s entries, joined once and shared by every body that holds the same run. */
function block(kind: FullSetKind, run: readonly EncodedResource[]): Uint8Array {
  const key = runKey(kind, run);
  const known = blocks.get(key);
  let bytes = known && sameRun(known.serials, run) ? known.ref.deref() : undefined;
  if (!bytes) {
    const last = run[run.length - 1]!;
    let kept = keptBlocks.get(last);
    if (!kept) keptBlocks.set(last, (kept = {}));
    let newest = kept[kind];
    if (!newest || !sameRun(newest.serials, run)) {
      newest = { serials: run.map((r) => r.serial), bytes: joinPieces(entryPieces(kind, run)) };
      joinedBlocks++;
      kept[kind] = newest;
    }
    bytes = newest.bytes;
    blocks.set(key, { serials: newest.serials, ref: new WeakRef(bytes) });
    blockCleanup.register(bytes, key);
  }
  return bytes;
}

/**
 * The entries of `resources` (in order) as pieces: runs of resources joined into blocks whose ends the
 * resources' names decide (content-defined, as rsync chunks files), so two sets that hold the same run of
 * resources share its block whatever comes before it; a resource of REFERENCE_MIN_BYTES or more stays
 * its cached bytes (frame-writes.ts sends those by reference).
 */
function entryBlocks(kind: FullSetKind, resources: readonly EncodedResource[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let start = 0;
  const flush = (end: number): void => {
    if (end > start) out.push(block(kind, resources.slice(start, end)));
    start = end;
  };
  for (let i = 0; i < resources.length; i++) {
    const r = resources[i]!;
    if (r.any.byteLength >= REFERENCE_MIN_BYTES) {
      flush(i);
      out.push(...entryPieces(kind, [r]));
      start = i + 1;
    } else if (endsBlock(r) || i + 1 - start >= BLOCK_MAX) {
      flush(i + 1);
    }
  }
  flush(resources.length);
  return out;
}

/**
 * Bodies of responses that carry a whole set (what every stream gets on connect): the same pieces for
 * every stream that gets the set, by set, then by kind and control-plane identifier; the same bytes as
 * encodeSotwBody / encodeDeltaBody of `resources` (no removed names).
 *
 * The resources' entries are joined into blocks shared across sets (`entryBlocks`). In a mesh of 1,000
 * Services every workload has its own CDS set (its inbound clusters) of 2,000 clusters, 2.5 MB, of which
 * the outbound ones are every workload's: joined per set, 100 workloads held 250 MB of bodies (or, in a
 * cache bounded in bytes, joined them again and again during a connect storm); in blocks, they share the
 * outbound blocks and each holds only the block where its own clusters sit. A body lives as long as its
 * set, a block as long as some body holds it or it is the newest of its kind ending at a living resource
 * (`keptBlocks`).
 */
const fullSetBodies = new WeakMap<object, Map<string, Pieces>>();

export function sharedFullSetBody(
  kind: FullSetKind,
  set: object,
  version: string,
  typeUrl: string,
  resources: readonly EncodedResource[],
  controlPlane: string,
): Pieces {
  let bodies = fullSetBodies.get(set);
  if (!bodies) fullSetBodies.set(set, (bodies = new Map()));
  const key = `${kind}|${controlPlane}`;
  let body = bodies.get(key);
  if (!body) {
    body = [headPiece(version), ...entryBlocks(kind, resources), tailPiece(kind, typeUrl, [], controlPlane)];
    bodies.set(key, body);
  }
  return body;
}

/** Update bodies shared per set are for responses of at most this many resources. */
export const SHARED_UPDATE_MAX_RESOURCES = 8;
/** At most this many distinct update bodies are kept per set (the others are built per stream). */
const SHARED_UPDATES_PER_SET = 64;
const updateBodies = new WeakMap<object, Map<string, Pieces>>();

/**
 * The body of a response carrying a few resources of `set` and removing nothing: the same pieces for
 * every stream that gets the same resources of the same set. After an endpoint change, every proxy of a
 * workload (the streams that share one set) gets the one changed ClusterLoadAssignment: one body for them,
 * instead of a head, an entry and a tail written per stream. The same bytes as encodeSotwBody /
 * encodeDeltaBody of `resources` with `set`'s version and type; larger responses are built per stream.
 */
export function sharedUpdateBody(
  kind: FullSetKind,
  set: { readonly version: string; readonly typeUrl: string },
  resources: readonly EncodedResource[],
  controlPlane: string,
): Pieces {
  const build = (): Pieces =>
    kind === 'sotw'
      ? encodeSotwBody(set.version, set.typeUrl, resources, controlPlane)
      : encodeDeltaBody(set.version, set.typeUrl, resources, [], controlPlane);
  if (resources.length > SHARED_UPDATE_MAX_RESOURCES) return build();
  let bodies = updateBodies.get(set);
  if (!bodies) updateBodies.set(set, (bodies = new Map()));
  let key = `${kind}|${controlPlane}`;
  for (const r of resources) key += `|${r.name}`;
  let body = bodies.get(key);
  if (!body) {
    body = build();
    if (bodies.size < SHARED_UPDATES_PER_SET) bodies.set(key, body);
  }
  return body;
}

// The classes above are made per response and dropped once it is written (lib/shape-keeper.ts).
keepShapes(FieldWriter.sized(0), new PieceWriter(0), new FramedResponse(new Response([], 'sample')));
