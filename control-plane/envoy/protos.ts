// The one module that owns the Envoy v3 protos (generated from the copy in @grpc/grpc-js-xds by
// scripts/gen-protos.mjs). Everything else imports Envoy types, type URLs, Any packing and proto3 JSON from
// here, so the generated layout stays an implementation detail.
import {
  create,
  createRegistry,
  fromBinary,
  fromJson,
  toBinary,
  toJson,
  type DescMessage,
  type JsonValue,
  type Message,
  type MessageShape,
  type Registry,
} from '@bufbuild/protobuf';
import {
  AnySchema,
  file_google_protobuf_any,
  file_google_protobuf_duration,
  file_google_protobuf_empty,
  file_google_protobuf_struct,
  file_google_protobuf_timestamp,
  file_google_protobuf_wrappers,
  type Any,
} from '@bufbuild/protobuf/wkt';
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { keepShapes } from '../../lib/shape-keeper.js';
import { allFiles } from './gen/index.js';

export type { Any } from '@bufbuild/protobuf/wkt';
export type { Message } from '@bufbuild/protobuf';

/** Every Envoy, xDS, udpa and well-known type: resolves Any type URLs for binary and JSON. */
export const registry: Registry = createRegistry(
  ...allFiles,
  file_google_protobuf_any,
  file_google_protobuf_duration,
  file_google_protobuf_empty,
  file_google_protobuf_struct,
  file_google_protobuf_timestamp,
  file_google_protobuf_wrappers,
);

const TYPE_URL_PREFIX = 'type.googleapis.com/';

/** The exact type URL Envoy expects for a message type name. */
export function typeUrlOf(typeName: string): string {
  return TYPE_URL_PREFIX + typeName;
}

/** The fully qualified message name in a type URL (the part after the last `/`). */
export function typeNameOf(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}

/** The xDS resource types Trellis serves, by the name used in logs, metrics and debug output. */
export const TypeUrl = {
  Listener: typeUrlOf('envoy.config.listener.v3.Listener'),
  Cluster: typeUrlOf('envoy.config.cluster.v3.Cluster'),
  RouteConfiguration: typeUrlOf('envoy.config.route.v3.RouteConfiguration'),
  ClusterLoadAssignment: typeUrlOf('envoy.config.endpoint.v3.ClusterLoadAssignment'),
  Secret: typeUrlOf('envoy.extensions.transport_sockets.tls.v3.Secret'),
} as const;

/** Short names for type URLs (`CDS`, `EDS`, …), used as metric labels; other types keep their message name. */
export function shortTypeName(typeUrl: string): string {
  switch (typeUrl) {
    case TypeUrl.Listener:
      return 'LDS';
    case TypeUrl.Cluster:
      return 'CDS';
    case TypeUrl.RouteConfiguration:
      return 'RDS';
    case TypeUrl.ClusterLoadAssignment:
      return 'EDS';
    case TypeUrl.Secret:
      return 'SDS';
    default:
      return typeNameOf(typeUrl);
  }
}

/** The schema of a message type, looked up in the registry; throws naming the type when unknown. */
export function schemaOf(typeName: string): DescMessage {
  const schema = registry.getMessage(typeName);
  if (!schema) throw new Error(`unknown Envoy message type ${typeName}`);
  return schema;
}

/** Serializes a message (any registered type) to protobuf bytes. */
export function encodeMessage(message: Message): Uint8Array {
  const schema = schemaOf(message.$typeName);
  const list = largeMessageList(schema, message);
  return list ? encodeWithElements(schema, message, list) : toBinary(schema, message);
}

/** A repeated message field longer than this has its elements' bytes kept per element object. */
const LARGE_LIST = 32;
const elementBytes = new WeakMap<object, Uint8Array>();

type ListField = DescMessage['fields'][number] & { fieldKind: 'list'; listKind: 'message' };

/** The first repeated message field of `message` with more than LARGE_LIST elements, if any. */
function largeMessageList(schema: DescMessage, message: Message): ListField | undefined {
  if (((message as { $unknown?: unknown[] }).$unknown?.length ?? 0) > 0) return undefined;
  for (const field of schema.fields) {
    if (field.fieldKind !== 'list' || field.listKind !== 'message' || field.oneof) continue;
    const value = (message as unknown as Record<string, unknown>)[field.localName];
    if (Array.isArray(value) && value.length > LARGE_LIST) return field as ListField;
  }
  return undefined;
}

/**
 * The same bytes as `toBinary(schema, message)`, with the elements of one large repeated field encoded once
 * per element object: a RouteConfiguration whose thousand virtual hosts are mostly the objects of the
 * previous one (translate/generator.ts patches one) costs the encoding of the new ones. protobuf-es writes
 * fields in field-number order, so the bytes are: the fields numbered below the list, the list's elements
 * (tag, length, bytes), the fields numbered above it. Messages handed to the encoder are never mutated
 * (the generator's contract), so an element's bytes stay valid while the object lives.
 */
function encodeWithElements(schema: DescMessage, message: Message, field: ListField): Uint8Array {
  const encoding = elementEncoding(schema, message, field);
  const out = new Uint8Array(encoding.length);
  writeElements(encoding, out, 0);
  return out;
}

/** A message's encoding with one large list kept per element: what `writeElements` writes, and its size. */
interface ElementEncoding {
  /** The fields numbered below the list. */
  readonly head: Uint8Array;
  /** The fields numbered above it. */
  readonly tail: Uint8Array;
  /** The list's tag (field number, length-delimited), as a varint value. */
  readonly tag: number;
  readonly elements: readonly Uint8Array[];
  readonly length: number;
}

function elementEncoding(schema: DescMessage, message: Message, field: ListField): ElementEncoding {
  const list = (message as unknown as Record<string, readonly Message[]>)[field.localName]!;
  const rest = toBinary(schema, { ...message, [field.localName]: [] } as Message);
  // Where the fields numbered above the list start in `rest`.
  const reader = new BinaryReader(rest);
  let split = rest.length;
  while (reader.pos < rest.length) {
    const at = reader.pos;
    const [no, wireType] = reader.tag();
    if (no > field.number) {
      split = at;
      break;
    }
    reader.skip(wireType, no);
  }
  const tag = (field.number << 3) | WireType.LengthDelimited;
  const tagSize = varintSize(tag);
  let length = rest.length;
  const elements = list.map((element) => {
    let bytes = elementBytes.get(element);
    if (!bytes) elementBytes.set(element, (bytes = toBinary(field.message, element)));
    length += tagSize + varintSize(bytes.length) + bytes.length;
    return bytes;
  });
  return { head: rest.subarray(0, split), tail: rest.subarray(split), tag, elements, length };
}

/** Writes `encoding` into `out` at `pos` (exactly `encoding.length` bytes); returns the position after it. */
function writeElements(encoding: ElementEncoding, out: Uint8Array, pos: number): number {
  out.set(encoding.head, pos);
  pos += encoding.head.length;
  for (const bytes of encoding.elements) {
    pos = writeVarint(out, pos, encoding.tag);
    pos = writeVarint(out, pos, bytes.length);
    out.set(bytes, pos);
    pos += bytes.length;
  }
  out.set(encoding.tail, pos);
  return pos + encoding.tail.length;
}

/** The size of `n` (a non-negative integer) as a protobuf varint. */
export function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeVarint(out: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    out[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  out[pos++] = n;
  return pos;
}

const typeUrlBytes = new Map<string, Uint8Array>();

/**
 * The bytes of `encodeAny(packAny(message))`, written once into a buffer of the exact size: no growing
 * writer, no intermediate `value` copied into the Any. protobuf-es writes an Any as field 1 (type_url) and
 * field 2 (value, left out when empty, as proto3 leaves out empty bytes).
 */
export function encodeMessageAny(message: Message): Uint8Array {
  const schema = schemaOf(message.$typeName);
  let url = typeUrlBytes.get(message.$typeName);
  if (!url) typeUrlBytes.set(message.$typeName, (url = new TextEncoder().encode(typeUrlOf(message.$typeName))));
  const list = largeMessageList(schema, message);
  const encoding = list ? elementEncoding(schema, message, list) : undefined;
  const value = encoding ? undefined : toBinary(schema, message);
  const valueLength = encoding ? encoding.length : value!.length;
  const size =
    1 + varintSize(url.length) + url.length + (valueLength > 0 ? 1 + varintSize(valueLength) + valueLength : 0);
  const out = new Uint8Array(size);
  let pos = 0;
  out[pos++] = (1 << 3) | WireType.LengthDelimited;
  pos = writeVarint(out, pos, url.length);
  out.set(url, pos);
  pos += url.length;
  if (valueLength > 0) {
    out[pos++] = (2 << 3) | WireType.LengthDelimited;
    pos = writeVarint(out, pos, valueLength);
    if (encoding) writeElements(encoding, out, pos);
    else out.set(value!, pos);
  }
  return out;
}

/** Packs a message into an Any with the exact type URL. */
export function packAny(message: Message): Any {
  return create(AnySchema, { typeUrl: typeUrlOf(message.$typeName), value: encodeMessage(message) });
}

/** Serializes an Any, as it appears in `DiscoveryResponse.resources`. */
export function encodeAny(any: Any): Uint8Array {
  return toBinary(AnySchema, any);
}

export function decodeAny(bytes: Uint8Array): Any {
  return fromBinary(AnySchema, bytes);
}

/** Unpacks an Any with the registry; throws naming the type URL when it is not a known type. */
export function unpackAny(any: Any): Message {
  const schema = schemaOf(typeNameOf(any.typeUrl));
  return fromBinary(schema, any.value);
}

/** Canonical proto3 JSON of a message (lowerCamelCase names, `"1.5s"` durations, `@type` in Any). */
export function messageToJson(message: Message): JsonValue {
  return toJson(schemaOf(message.$typeName), message, { registry });
}

function isObject(json: unknown): json is Record<string, JsonValue> {
  return typeof json === 'object' && json !== null && !Array.isArray(json);
}

function decodes(schema: DescMessage, json: JsonValue): boolean {
  try {
    fromJson(schema, json, { registry });
    return true;
  } catch {
    return false;
  }
}

/**
 * The path (in the JSON's own field names) of the first part of `json` that does not decode as `schema`,
 * found by decoding field by field and descending into the one that fails. Only run after a failure, to
 * turn the decoder's message into one that names the field.
 */
function failingPath(schema: DescMessage, json: JsonValue, path: string): string {
  if (!isObject(json)) return path;
  if (schema.typeName === 'google.protobuf.Any') {
    const type = json['@type'];
    const inner = typeof type === 'string' ? registry.getMessage(typeNameOf(type)) : undefined;
    if (!inner) return path ? `${path}.@type` : '@type';
    if (inner.typeName.startsWith('google.protobuf.')) return path;
    const rest = Object.fromEntries(Object.entries(json).filter(([k]) => k !== '@type'));
    return failingPath(inner, rest, path);
  }
  for (const [key, value] of Object.entries(json)) {
    const here = path ? `${path}.${key}` : key;
    const field = schema.fields.find((f) => f.jsonName === key || f.name === key);
    if (!field) return here;
    if (decodes(schema, { [key]: value })) continue;
    const child =
      field.fieldKind === 'message' || field.fieldKind === 'list' || field.fieldKind === 'map'
        ? field.message
        : undefined;
    const descend =
      child !== undefined &&
      (child.typeName === 'google.protobuf.Any' || !child.typeName.startsWith('google.protobuf.'));
    if (!descend) return here;
    if (field.fieldKind === 'list' && Array.isArray(value)) {
      const i = value.findIndex((item) => !decodes(child, item));
      return i === -1 ? here : failingPath(child, value[i]!, `${here}[${i}]`);
    }
    if (field.fieldKind === 'map' && isObject(value)) {
      const entry = Object.entries(value).find(([, item]) => !decodes(child, item));
      return entry ? failingPath(child, entry[1], `${here}.${entry[0]}`) : here;
    }
    return failingPath(child, value, here);
  }
  return path;
}

/** Parses proto3 JSON into a message of the given type; errors start with the path of the field that is wrong. */
export function messageFromJson<Desc extends DescMessage>(schema: Desc, json: JsonValue): MessageShape<Desc> {
  try {
    return fromJson(schema, json, { registry });
  } catch (err) {
    const path = failingPath(schema, json, '');
    throw new Error(`${path ? `${path}: ` : ''}${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** Canonical proto3 JSON of an Any: `{"@type": "...", ...fields}`. */
export function anyToJson(any: Any): JsonValue {
  return toJson(AnySchema, any, { registry });
}

/** Parses `{"@type": "type.googleapis.com/...", ...fields}` into an Any; errors start with the field's path. */
export function anyFromJson(json: JsonValue): Any {
  return messageFromJson(AnySchema, json);
}

/**
 * The xDS resource name of a resource: `name` for most types, `cluster_name` for ClusterLoadAssignment.
 * Returns undefined for a type that has no name field.
 */
export function resourceName(message: Message): string | undefined {
  const fields = message as unknown as Record<string, unknown>;
  const name =
    message.$typeName === 'envoy.config.endpoint.v3.ClusterLoadAssignment' ? fields.clusterName : fields.name;
  return typeof name === 'string' ? name : undefined;
}

// protobuf-es makes a writer per message it encodes and a reader per message it decodes, and every resource
// is packed into an Any that is dropped once encoded (lib/shape-keeper.ts).
keepShapes(new BinaryWriter(), new BinaryReader(new Uint8Array(0)), create(AnySchema));
