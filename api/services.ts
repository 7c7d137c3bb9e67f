// The gRPC services spoken between the agent and the control plane: trellis.ca.v1.CertificateService
// (control-plane/ca/ca.proto; its messages generated with the Envoy protos by scripts/gen-protos.mjs) as a
// grpc-js service definition that the CA serves and the agent calls, and the paths of the Envoy services the
// agent relays or serves. The CA itself is in control-plane/ca/; nothing here signs or checks anything.
import type { ServiceDefinition } from '@grpc/grpc-js';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  CertificateService,
  CreateCertificateRequestSchema,
  CreateCertificateResponseSchema,
  type CreateCertificateRequest,
  type CreateCertificateResponse,
} from '../control-plane/envoy/gen/trellis/ca/v1/ca_pb.js';

export {
  CreateCertificateRequestSchema,
  CreateCertificateResponseSchema,
  type CreateCertificateRequest,
  type CreateCertificateResponse,
} from '../control-plane/envoy/gen/trellis/ca/v1/ca_pb.js';

/** `trellis.ca.v1.CertificateService`. */
export const CA_SERVICE_NAME = CertificateService.typeName;

export const certificateServiceDefinition = {
  CreateCertificate: {
    path: `/${CA_SERVICE_NAME}/CreateCertificate`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (m: CreateCertificateRequest) => Buffer.from(toBinary(CreateCertificateRequestSchema, m)),
    requestDeserialize: (b: Buffer) => fromBinary(CreateCertificateRequestSchema, b),
    responseSerialize: (m: CreateCertificateResponse) => Buffer.from(toBinary(CreateCertificateResponseSchema, m)),
    responseDeserialize: (b: Buffer) => fromBinary(CreateCertificateResponseSchema, b),
  },
} satisfies ServiceDefinition;

/** `envoy.service.discovery.v3.AggregatedDiscoveryService`: ADS, relayed by the agent's xDS proxy. */
export const ADS_SERVICE_NAME = 'envoy.service.discovery.v3.AggregatedDiscoveryService';

/** `envoy.service.secret.v3.SecretDiscoveryService`: SDS, served by the agent to Envoy. */
export const SDS_SERVICE_NAME = 'envoy.service.secret.v3.SecretDiscoveryService';
