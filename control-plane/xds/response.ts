// Discovery responses written straight from cached bytes. A response is a few header fields around
// resources that are already serialized (resource-cache.ts): an embedded message field is its bytes with
// a length prefix, so `resources` is written with `bytes()` and nothing is encoded twice. The field
// numbers are those of envoy/service/discovery/v3/discovery.proto.
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import type { EncodedResource } from './resource-cache.js';

const controlPlaneCache = new Map<string, Uint8Array>();

/** `envoy.config.core.v3.ControlPlane{identifier}` serialized once per identifier. */
function controlPlaneBytes(identifier: string): Uint8Array {
  let bytes = controlPlaneCache.get(identifier);
  if (!bytes) {
    bytes = new BinaryWriter().tag(1, WireType.LengthDelimited).string(identifier).finish();
    controlPlaneCache.set(identifier, bytes);
  }
  return bytes;
}

/** The part of a state-of-the-world response that does not depend on the nonce. */
export function encodeSotwBody(
  versionInfo: string,
  typeUrl: string,
  resources: Iterable<EncodedResource>,
  controlPlane: string,
): Uint8Array {
  const w = new BinaryWriter();
  w.tag(1, WireType.LengthDelimited).string(versionInfo); // version_info
  for (const r of resources) w.tag(2, WireType.LengthDelimited).bytes(r.any); // resources
  w.tag(4, WireType.LengthDelimited).string(typeUrl); // type_url
  w.tag(6, WireType.LengthDelimited).bytes(controlPlaneBytes(controlPlane)); // control_plane
  return w.finish();
}

/** A complete DiscoveryResponse: a body from encodeSotwBody plus the nonce (field order is free in protobuf). */
export function withNonce(body: Uint8Array, nonce: string): Buffer {
  const tail = new BinaryWriter().tag(5, WireType.LengthDelimited).string(nonce).finish(); // nonce
  return Buffer.concat([body, tail]);
}

const deltaResourceCache = new WeakMap<EncodedResource, Uint8Array>();

/** `envoy.service.discovery.v3.Resource{name, version, resource}` serialized once per resource. */
function deltaResourceBytes(r: EncodedResource): Uint8Array {
  let bytes = deltaResourceCache.get(r);
  if (!bytes) {
    bytes = new BinaryWriter()
      .tag(1, WireType.LengthDelimited)
      .string(r.version) // version
      .tag(2, WireType.LengthDelimited)
      .bytes(r.any) // resource
      .tag(3, WireType.LengthDelimited)
      .string(r.name) // name
      .finish();
    deltaResourceCache.set(r, bytes);
  }
  return bytes;
}

export function encodeDeltaResponse(
  systemVersionInfo: string,
  typeUrl: string,
  resources: Iterable<EncodedResource>,
  removed: Iterable<string>,
  nonce: string,
  controlPlane: string,
): Buffer {
  const w = new BinaryWriter();
  w.tag(1, WireType.LengthDelimited).string(systemVersionInfo); // system_version_info
  for (const r of resources) w.tag(2, WireType.LengthDelimited).bytes(deltaResourceBytes(r)); // resources
  w.tag(4, WireType.LengthDelimited).string(typeUrl); // type_url
  w.tag(5, WireType.LengthDelimited).string(nonce); // nonce
  for (const name of removed) w.tag(6, WireType.LengthDelimited).string(name); // removed_resources
  w.tag(7, WireType.LengthDelimited).bytes(controlPlaneBytes(controlPlane)); // control_plane
  const bytes = w.finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
