// Inbound (server-side) TLS of listener filter chains: Envoy sidecars take the workload certificate and
// the trust bundle from the agent's SDS (`default`, `ROOTCA`, envoy-translation.md §3.3); proxyless gRPC
// servers from the certificate provider instances of their bootstrap (grpc-js-xds.md §3 "transport_socket").
// Both require a client certificate: that is what mesh mutual TLS means. No SAN check on the server side
// (Istio leaves identity to authorization policy; grpc-js ignores server SAN matchers anyway).
import { create } from '@bufbuild/protobuf';
import type { TransportSocketSchema } from '../envoy/gen/envoy/config/core/v3/base_pb.js';
import { TlsParameters_TlsProtocol } from '../envoy/gen/envoy/extensions/transport_sockets/tls/v3/common_pb.js';
import { DownstreamTlsContextSchema } from '../envoy/gen/envoy/extensions/transport_sockets/tls/v3/tls_pb.js';
import { packAny } from '../envoy/protos.js';
import { GRPC_IDENTITY_PROVIDER, GRPC_ROOT_PROVIDER } from './cluster-names.js';
import { ROOT_SECRET, WORKLOAD_SECRET } from './cluster-tls.js';
import type { InitOf } from './route-values.js';

export type TransportSocketInit = InitOf<typeof TransportSocketSchema>;

export const TLS_TRANSPORT_SOCKET = 'envoy.transport_sockets.tls';

/** Envoy sidecar mTLS termination. ALPN: h2/http1.1 for HTTP chains (Istio), none for TCP chains. */
export function sidecarInboundTls(http: boolean): TransportSocketInit {
  const context = create(DownstreamTlsContextSchema, {
    requireClientCertificate: true,
    commonTlsContext: {
      tlsParams: {
        tlsMinimumProtocolVersion: TlsParameters_TlsProtocol.TLSv1_2,
        tlsMaximumProtocolVersion: TlsParameters_TlsProtocol.TLSv1_3,
      },
      ...(http ? { alpnProtocols: ['h2', 'http/1.1'] } : {}),
      tlsCertificateSdsSecretConfigs: [WORKLOAD_SECRET],
      validationContextType: {
        case: 'combinedValidationContext',
        value: {
          defaultValidationContext: {},
          validationContextSdsSecretConfig: ROOT_SECRET,
        },
      },
    },
  });
  return { name: TLS_TRANSPORT_SOCKET, configType: { case: 'typedConfig', value: packAny(context) } };
}

/**
 * Proxyless gRPC server mTLS: `tls_certificate_provider_instance` is required by grpc-js, and
 * `require_client_certificate` needs the validation context with the root provider. No `tls_params`
 * (grpc-js NACKs them).
 */
export function grpcServerTls(): TransportSocketInit {
  const context = create(DownstreamTlsContextSchema, {
    requireClientCertificate: true,
    commonTlsContext: {
      tlsCertificateProviderInstance: { instanceName: GRPC_IDENTITY_PROVIDER },
      validationContextType: {
        case: 'validationContext',
        value: { caCertificateProviderInstance: { instanceName: GRPC_ROOT_PROVIDER } },
      },
    },
  });
  return { name: TLS_TRANSPORT_SOCKET, configType: { case: 'typedConfig', value: packAny(context) } };
}
