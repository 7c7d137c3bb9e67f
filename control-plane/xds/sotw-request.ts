// Decoding a state-of-the-world request (DiscoveryRequest) without decoding its `resource_names` until they
// are read.
//
// A SotW client repeats its whole subscription on every request: every EDS ACK of a proxy with 1,000
// clusters carries the 1,000 names again, and decoding them (fromBinary) was ~40% of the control plane's
// CPU in a SotW fan-out (bench/README.md). decodeSotwRequest reads the other fields and keeps the
// resource_names records as they are on the wire (resourceNamesWire); `resourceNames` decodes them on
// first read. SotwStream reads them only when those bytes differ from the previous request of the type.
//
// The result is exact: it equals what fromBinary(DiscoveryRequestSchema, bytes) returns, field for field,
// and decodeSotwRequest throws where fromBinary throws (grpc-js answers a throwing deserializer with
// INTERNAL). Whatever the scan does not read the way fromBinary does is decoded by fromBinary itself: a
// field with another wire type than length-delimited (fromBinary reads it as its declared type anyway),
// a message field that occurs twice (fromBinary merges them), unknown fields, resource_locators,
// resource_names records that are not contiguous, a name that is not ASCII (fromBinary checks that
// strings are valid UTF-8; ASCII is, and its check is one native call) and any error.
import { fromBinary } from '@bufbuild/protobuf';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { isAscii } from 'node:buffer';
import { createHash } from 'node:crypto';
import { keepShapes } from '../../lib/shape-keeper.js';
import { NodeSchema, type Node } from '../envoy/gen/envoy/config/core/v3/base_pb.js';
import {
  DiscoveryRequestSchema,
  type DiscoveryRequest,
  type ResourceLocator,
} from '../envoy/gen/envoy/service/discovery/v3/discovery_pb.js';
import { StatusSchema, type Status } from '../envoy/gen/google/rpc/status_pb.js';

// Field numbers of DiscoveryRequest (envoy/service/discovery/v3/discovery.proto).
const VERSION_INFO = 1;
const NODE = 2;
const RESOURCE_NAMES = 3;
const TYPE_URL = 4;
const RESPONSE_NONCE = 5;
const ERROR_DETAIL = 6;
/** The one-byte tag of a resource_names record. */
const NAME_TAG = (RESOURCE_NAMES << 3) | WireType.LengthDelimited;

const fields = DiscoveryRequestSchema.field;
/** fromBinary validates UTF-8 in proto3 strings; the scan reads them with the same reader call. */
const strictVersion = fields.versionInfo!.utf8Validation;
const strictTypeUrl = fields.typeUrl!.utf8Validation;
const strictNonce = fields.responseNonce!.utf8Validation;
const strictNames = fields.resourceNames!.utf8Validation;
/**
 * Node and error_detail are decoded on their own rather than inside a DiscoveryRequest, one level less
 * deep: one less allowed nesting level keeps fromBinary's recursion limit (100) where it was.
 */
const nestedReadOptions = { recursionLimit: 99 };

const EMPTY = new Uint8Array(0);

/** A DiscoveryRequest whose resource_names are decoded when first read. */
class LazyDiscoveryRequest implements DiscoveryRequest {
  readonly $typeName = 'envoy.service.discovery.v3.DiscoveryRequest' as const;
  versionInfo = '';
  node: Node | undefined = undefined;
  resourceLocators: ResourceLocator[] = [];
  typeUrl = '';
  responseNonce = '';
  errorDetail: Status | undefined = undefined;
  private names: string[] | undefined = undefined;

  constructor(
    /** The resource_names records (tag, length, name each) as they were on the wire, in order. */
    readonly namesWire: Uint8Array,
  ) {}

  get resourceNames(): string[] {
    return (this.names ??= decodeNames(this.namesWire));
  }

  set resourceNames(names: string[]) {
    this.names = names;
  }
}

/** Decodes resource_names records exactly as fromBinary does (BinaryReader.string). */
export function decodeNames(wire: Uint8Array): string[] {
  const names: string[] = [];
  const reader = new BinaryReader(wire);
  while (reader.pos < reader.len) {
    reader.tag();
    names.push(reader.string(strictNames));
  }
  return names;
}

/**
 * The requestDeserialize of StreamAggregatedResources: the message fromBinary(DiscoveryRequestSchema)
 * returns, with resource_names decoded on first read when the scan could keep them on the wire.
 */
export function decodeSotwRequest(bytes: Uint8Array): DiscoveryRequest {
  let scanned: DiscoveryRequest | undefined;
  try {
    scanned = scan(bytes);
  } catch {
    scanned = undefined; // fromBinary throws its own error, or reads what the scan would not
  }
  return scanned ?? fromBinary(DiscoveryRequestSchema, bytes);
}

/**
 * The resource_names records of a request from decodeSotwRequest as they were on the wire (its names in
 * order, as bytes: two requests whose records are equal bytes have equal names); undefined when the
 * request was decoded in full.
 */
export function resourceNamesWire(request: DiscoveryRequest): Uint8Array | undefined {
  return request instanceof LazyDiscoveryRequest ? request.namesWire : undefined;
}

/** The request with resource_names left on the wire, or undefined where fromBinary must decode it. */
function scan(bytes: Uint8Array): LazyDiscoveryRequest | undefined {
  const reader = new BinaryReader(bytes);
  let versionInfo = '';
  let typeUrl = '';
  let responseNonce = '';
  let node: Uint8Array | undefined;
  let errorDetail: Uint8Array | undefined;
  let namesStart = -1;
  let namesEnd = -1;
  while (reader.pos < reader.len) {
    const start = reader.pos;
    const [fieldNo, wireType] = reader.tag();
    if (wireType !== WireType.LengthDelimited) return undefined;
    switch (fieldNo) {
      case VERSION_INFO:
        versionInfo = reader.string(strictVersion);
        break;
      case NODE:
        if (node) return undefined;
        node = reader.bytes();
        break;
      case RESOURCE_NAMES:
        if (namesStart === -1) namesStart = start;
        else if (namesEnd !== start) return undefined;
        // Past this record and the ones right after it (BinaryReader.skip would make a view per name).
        for (;;) {
          const length = reader.uint32();
          reader.pos += length;
          if (!(reader.pos <= reader.len)) return undefined;
          if (bytes[reader.pos] !== NAME_TAG) break;
          reader.pos++;
        }
        namesEnd = reader.pos;
        break;
      case TYPE_URL:
        typeUrl = reader.string(strictTypeUrl);
        break;
      case RESPONSE_NONCE:
        responseNonce = reader.string(strictNonce);
        break;
      case ERROR_DETAIL:
        if (errorDetail) return undefined;
        errorDetail = reader.bytes();
        break;
      default:
        return undefined;
    }
  }
  const namesWire = namesStart === -1 ? EMPTY : bytes.subarray(namesStart, namesEnd);
  // All ASCII: every name is valid UTF-8 (and every tag and length one byte).
  if (!isAscii(namesWire)) return undefined;
  const request = new LazyDiscoveryRequest(namesWire);
  request.versionInfo = versionInfo;
  request.typeUrl = typeUrl;
  request.responseNonce = responseNonce;
  if (node) request.node = fromBinary(NodeSchema, node, nestedReadOptions);
  if (errorDetail) request.errorDetail = fromBinary(StatusSchema, errorDetail, nestedReadOptions);
  return request;
}

/**
 * Kept copies of resource_names records, one per distinct byte string: proxies of one kind subscribe to
 * the same names in the same order, and a copy per stream would cost 1,000 streams × ~48 KB for 1,000
 * EDS names. Indexed by a SHA-256 of the bytes; a copy is shared only when its bytes are equal.
 */
const keptWires = new Map<string, WeakRef<Uint8Array>>();
const forgetWire = new FinalizationRegistry<string>((key) => {
  if (keptWires.get(key)?.deref() === undefined) keptWires.delete(key);
});

/**
 * A copy of `wire` (a view of a request's buffer) to keep and compare with later requests: the copy
 * another stream keeps when it holds the same bytes. Never modify it.
 */
export function keepWire(wire: Uint8Array): Uint8Array {
  const key = createHash('sha256').update(wire).digest('base64');
  const kept = keptWires.get(key)?.deref();
  if (kept && Buffer.compare(kept, wire) === 0) return kept;
  const copy = new Uint8Array(wire);
  if (!kept) {
    keptWires.set(key, new WeakRef(copy));
    forgetWire.register(copy, key);
  }
  return copy;
}

// One is made per request and dropped once handled (lib/shape-keeper.ts).
keepShapes(new LazyDiscoveryRequest(new Uint8Array(0)));
