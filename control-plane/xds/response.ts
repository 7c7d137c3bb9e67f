// Discovery responses written straight from cached bytes. A response is a few header fields around
// resources that are already serialized (resource-cache.ts). An embedded message field is a tag, a varint
// length and the bytes, so a response is assembled by measuring every field first and then copying each
// one once into a buffer of the exact size: no writer that grows (and copies what it holds) as it goes.
// The field numbers are those of envoy/service/discovery/v3/discovery.proto.
import type { EncodedResource } from './resource-cache.js';

/** Wire type 2 (length-delimited); every field written here is one, with a field number below 16. */
const tag = (field: number): number => (field << 3) | 2;

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** One length-delimited field's size on the wire, given its payload size. */
const fieldSize = (payload: number): number => 1 + varintSize(payload) + payload;

/** Writes bytes into a buffer of known size, field by field. */
class FieldWriter {
  constructor(
    private readonly buf: Buffer,
    private pos = 0,
  ) {}

  static sized(size: number): FieldWriter {
    return new FieldWriter(Buffer.allocUnsafe(size));
  }

  private header(field: number, length: number): void {
    this.buf[this.pos++] = tag(field);
    while (length >= 0x80) {
      this.buf[this.pos++] = (length & 0x7f) | 0x80;
      length = Math.floor(length / 128);
    }
    this.buf[this.pos++] = length;
  }

  bytes(field: number, bytes: Uint8Array): this {
    this.header(field, bytes.byteLength);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.byteLength;
    return this;
  }

  string(field: number, text: string, length: number): this {
    this.header(field, length);
    this.pos += this.buf.write(text, this.pos, length, 'utf8');
    return this;
  }

  /** The buffer, checked to be exactly full (a measuring mistake would otherwise send garbage). */
  finish(): Buffer {
    if (this.pos !== this.buf.byteLength)
      throw new Error(`response assembled ${this.pos} of ${this.buf.byteLength} bytes`);
    return this.buf;
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

/** The part of a state-of-the-world response that does not depend on the nonce. */
export function encodeSotwBody(
  versionInfo: string,
  typeUrl: string,
  resources: readonly EncodedResource[],
  controlPlane: string,
): Uint8Array {
  const versionLength = Buffer.byteLength(versionInfo);
  const typeUrlLength = Buffer.byteLength(typeUrl);
  const cp = controlPlaneBytes(controlPlane);
  let size = fieldSize(versionLength) + fieldSize(typeUrlLength) + fieldSize(cp.byteLength);
  for (const r of resources) size += fieldSize(r.any.byteLength);
  const w = FieldWriter.sized(size);
  w.string(1, versionInfo, versionLength); // version_info
  for (const r of resources) w.bytes(2, r.any); // resources
  w.string(4, typeUrl, typeUrlLength); // type_url
  w.bytes(6, cp); // control_plane
  return w.finish();
}

/**
 * A response as a stream queues it: a body (often shared by every stream that gets the same content) and
 * its nonce. The two are joined only when gRPC serializes it for the wire (serializeResponse), so a queued
 * response holds no copy of its body.
 */
export class Response {
  /** Its size on the wire. */
  readonly byteLength: number;
  constructor(
    readonly body: Uint8Array,
    /** The nonce (field 5 of DiscoveryResponse and of DeltaDiscoveryResponse); undefined: `body` is whole. */
    readonly nonce: string | undefined,
  ) {
    this.byteLength = body.byteLength + (nonce === undefined ? 0 : fieldSize(Buffer.byteLength(nonce)));
  }
}

/** The response's bytes on the wire: its body, then its nonce field (field order is free in protobuf). */
export function serializeResponse(response: Response): Buffer {
  const { body, nonce } = response;
  if (nonce === undefined) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  return withNonce(body, nonce);
}

/** A complete DiscoveryResponse: a body from encodeSotwBody plus the nonce (field order is free in protobuf). */
export function withNonce(body: Uint8Array, nonce: string): Buffer {
  const nonceLength = Buffer.byteLength(nonce);
  const buf = Buffer.allocUnsafe(body.byteLength + fieldSize(nonceLength));
  buf.set(body, 0);
  return new FieldWriter(buf, body.byteLength).string(5, nonce, nonceLength).finish(); // nonce
}

const deltaResourceCache = new WeakMap<EncodedResource, Uint8Array>();

/** `envoy.service.discovery.v3.Resource{name, version, resource}` serialized once per resource. */
function deltaResourceBytes(r: EncodedResource): Uint8Array {
  let bytes = deltaResourceCache.get(r);
  if (!bytes) {
    const versionLength = Buffer.byteLength(r.version);
    const nameLength = Buffer.byteLength(r.name);
    bytes = FieldWriter.sized(fieldSize(versionLength) + fieldSize(r.any.byteLength) + fieldSize(nameLength))
      .string(1, r.version, versionLength) // version
      .bytes(2, r.any) // resource
      .string(3, r.name, nameLength) // name
      .finish();
    deltaResourceCache.set(r, bytes);
  }
  return bytes;
}

/** A DeltaDiscoveryResponse without its nonce (Response adds it). */
export function encodeDeltaBody(
  systemVersionInfo: string,
  typeUrl: string,
  resources: readonly EncodedResource[],
  removed: readonly string[],
  controlPlane: string,
): Uint8Array {
  const versionLength = Buffer.byteLength(systemVersionInfo);
  const typeUrlLength = Buffer.byteLength(typeUrl);
  const cp = controlPlaneBytes(controlPlane);
  const wrapped = resources.map(deltaResourceBytes);
  const removedLengths = removed.map((name) => Buffer.byteLength(name));
  let size = fieldSize(versionLength) + fieldSize(typeUrlLength) + fieldSize(cp.byteLength);
  for (const bytes of wrapped) size += fieldSize(bytes.byteLength);
  for (const length of removedLengths) size += fieldSize(length);
  const w = FieldWriter.sized(size);
  w.string(1, systemVersionInfo, versionLength); // system_version_info
  for (const bytes of wrapped) w.bytes(2, bytes); // resources
  w.string(4, typeUrl, typeUrlLength); // type_url
  removed.forEach((name, i) => w.string(6, name, removedLengths[i]!)); // removed_resources
  w.bytes(7, cp); // control_plane
  return w.finish();
}

/** A complete DeltaDiscoveryResponse (the nonce after the body). */
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

/**
 * Bodies of responses that carry a whole set (what every stream gets on connect), built once per set and
 * shared: by set, then by kind (`sotw`/`delta`) and control-plane identifier.
 */
const fullSetBodies = new WeakMap<object, Map<string, Uint8Array>>();

/** The body for `set`'s resources in `resources` (all of them, in name order), built once and shared. */
export function sharedFullSetBody(set: object, key: string, build: () => Uint8Array): Uint8Array {
  let bodies = fullSetBodies.get(set);
  if (!bodies) fullSetBodies.set(set, (bodies = new Map()));
  let body = bodies.get(key);
  if (!body) bodies.set(key, (body = build()));
  return body;
}
