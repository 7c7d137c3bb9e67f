// The gRPC services spoken between the agent and the control plane: trellis.ca.v1.CertificateService
// (control-plane/ca/ca.proto) as a grpc-js service definition that the CA serves and the agent calls, and the
// paths of the Envoy services the agent relays or serves. The CA itself is in control-plane/ca/; nothing here
// signs or checks anything.
//
// The two CA messages are read and written with protobuf's wire primitives rather than the generated
// schema, so the agent loads no protobuf reflection for them (test/api/services.test.ts checks the bytes
// against the schema generated from ca.proto, both ways).
import type { ServiceDefinition } from '@grpc/grpc-js';
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';

/** `trellis.ca.v1.CreateCertificateRequest`: `string csr = 1; int64 validity_seconds = 2;` */
export interface CreateCertificateRequest {
  /** PEM PKCS#10 request. */
  readonly csr: string;
  /** Requested lifetime; 0: the CA's default. */
  readonly validitySeconds: bigint;
}

/** `trellis.ca.v1.CreateCertificateResponse`: `repeated string cert_chain = 1;` (PEM, the leaf first, the root last). */
export interface CreateCertificateResponse {
  readonly certChain: string[];
}

export function encodeCreateCertificateRequest(m: CreateCertificateRequest): Uint8Array {
  const w = new BinaryWriter();
  if (m.csr !== '') w.tag(1, WireType.LengthDelimited).string(m.csr);
  if (m.validitySeconds !== 0n) w.tag(2, WireType.Varint).int64(m.validitySeconds);
  return w.finish();
}

export function decodeCreateCertificateRequest(bytes: Uint8Array): CreateCertificateRequest {
  const r = new BinaryReader(bytes);
  let csr = '';
  let validitySeconds = 0n;
  while (r.pos < r.len) {
    const [no, wireType] = r.tag();
    if (no === 1 && wireType === WireType.LengthDelimited) csr = r.string();
    else if (no === 2 && wireType === WireType.Varint) validitySeconds = BigInt(r.int64());
    else r.skip(wireType, no);
  }
  return { csr, validitySeconds };
}

export function encodeCreateCertificateResponse(m: CreateCertificateResponse): Uint8Array {
  const w = new BinaryWriter();
  for (const pem of m.certChain) w.tag(1, WireType.LengthDelimited).string(pem);
  return w.finish();
}

export function decodeCreateCertificateResponse(bytes: Uint8Array): CreateCertificateResponse {
  const r = new BinaryReader(bytes);
  const certChain: string[] = [];
  while (r.pos < r.len) {
    const [no, wireType] = r.tag();
    if (no === 1 && wireType === WireType.LengthDelimited) certChain.push(r.string());
    else r.skip(wireType, no);
  }
  return { certChain };
}

const toBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** `trellis.ca.v1.CertificateService`. */
export const CA_SERVICE_NAME = 'trellis.ca.v1.CertificateService';

export const certificateServiceDefinition = {
  CreateCertificate: {
    path: `/${CA_SERVICE_NAME}/CreateCertificate`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (m: CreateCertificateRequest) => toBuffer(encodeCreateCertificateRequest(m)),
    requestDeserialize: (b: Buffer) => decodeCreateCertificateRequest(b),
    responseSerialize: (m: CreateCertificateResponse) => toBuffer(encodeCreateCertificateResponse(m)),
    responseDeserialize: (b: Buffer) => decodeCreateCertificateResponse(b),
  },
} satisfies ServiceDefinition;

/** `envoy.service.discovery.v3.AggregatedDiscoveryService`: ADS, relayed by the agent's xDS proxy. */
export const ADS_SERVICE_NAME = 'envoy.service.discovery.v3.AggregatedDiscoveryService';

/** `envoy.service.secret.v3.SecretDiscoveryService`: SDS, served by the agent to Envoy. */
export const SDS_SERVICE_NAME = 'envoy.service.secret.v3.SecretDiscoveryService';
