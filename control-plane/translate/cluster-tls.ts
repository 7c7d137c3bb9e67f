// DestinationRule `tls` and auto mutual TLS → a cluster's transport socket, per proxy type
// (envoy-translation.md §1.4 "tls"; grpc-js-xds.md §2 "Security" and §6 for what proxyless gRPC accepts).
//
// | mode                      | Envoy sidecar                                         | proxyless gRPC                          |
// |---------------------------|-------------------------------------------------------|-----------------------------------------|
// | (none)                    | auto mTLS: transport_socket_matches on endpoint       | destination STRICT: as MESH_MUTUAL;     |
// |                           | metadata tlsMode=mesh, else raw_buffer; destination   | else plaintext (grpc-js ignores socket  |
// |                           | DISABLE: plaintext                                    | matches: it cannot choose per endpoint) |
// | DISABLE                   | plaintext                                             | plaintext                               |
// | MESH_MUTUAL/ISTIO_MUTUAL  | SDS `default` + `ROOTCA`, SAN = SPIFFE ids, Istio SNI | providers identity + root, SAN = ids    |
// | SIMPLE                    | no client cert; CA: caCertificates file over the      | root provider only, SAN = DR or ids     |
// |                           | agent's SDS (`file-root:<ca>`), else system roots;    |                                         |
// |                           | SAN = DR or the SNI (Istio: auto SAN)                 |                                         |
// | MUTUAL                    | SIMPLE + clientCertificate/privateKey files over the  | identity + root provider, SAN = DR/ids  |
// |                           | agent's SDS (`file-cert:<certificate>~<key>`)         |                                         |
// | SIMPLE/MUTUAL credential- | SDS over ADS: `kubernetes://<name>` (MUTUAL: the      | cluster left out (see below)            |
// | Name                      | client certificate) and `kubernetes://<name>-cacert`  |                                         |
// |                           | (trust), served from the proxy's namespace (secrets.ts)|                                        |
//
// TLS origination (Istio's cluster_tls.go constructUpstreamTLS): certificate files are named to the
// agent's SDS, as Istio does (`file-cert:`, `file-root:`, api/names.ts), which reads them in the proxy's
// container and sends them again when they change (sidecar/file-secrets.ts): a rotated certificate reaches
// Envoy without a config change, which a `filename` data source would not (Envoy reads it once, when the
// cluster is built). `caCrl` is a `crl` file beside the trusted CA (read by Envoy), `insecureSkipVerify`
// no validation context at all (no CA, no SAN check). With `credentialName` the Secret's material comes
// from the control plane over ADS, like Istio's gateways; unlike Istio, sidecars get it too, without a
// workloadSelector on the rule, because a Secret is served only to proxies of its own namespace
// (translate/secrets.ts) - a proxy of another namespace that the rule applies to resolves the name in
// its own namespace, and without such a Secret its TLS never gets a certificate (no plaintext fallback).
// MUTUAL with neither files nor credentialName (refused by the validator since Istio refuses it; a kept
// older version) presents the workload's own SPIFFE certificate, as before.
// Proxyless gRPC knows no system roots, files or SDS (only certificate provider instances), so it always
// validates against the mesh root; a policy that asks for what it cannot do - certificate files,
// credentialName, caCrl or insecureSkipVerify - gets no cluster for proxyless clients at all (`grpcCannot
// Originate`): their calls to the destination fail UNAVAILABLE instead of trusting the wrong CA, and
// nothing is NACKed.
// A service with no known service account gets an empty SAN list: any certificate of the mesh root
// (Envoy), any certificate with a SAN (grpc-js). Istio behaves the same.
// Proxyless gRPC without a rule: mesh mTLS when the destination's PeerAuthentication mode is STRICT for
// every workload behind the port (model/peer-authentication.ts destinationMtls), because those servers
// refuse plaintext anyway; plaintext otherwise (PERMISSIVE proxyless servers serve plaintext only, and a
// client cannot switch per endpoint). grpc-js applies the TLS only with XdsChannelCredentials and the
// certificate providers in its bootstrap (the agent writes both); with plain credentials it is ignored.
import { create, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { anyPack, AnySchema } from '@bufbuild/protobuf/wkt';
import type { ClientTLSSettings } from '../../crds/types.js';
import type { ResolvedMtlsMode } from '../model/snapshot.js';
import { Cluster_TransportSocketMatchSchema } from '../envoy/gen/envoy/config/cluster/v3/cluster_pb.js';
import { TransportSocketSchema, type TransportSocket } from '../envoy/gen/envoy/config/core/v3/base_pb.js';
import {
  ApiConfigSource_ApiType,
  ApiVersion,
  ConfigSourceSchema,
} from '../envoy/gen/envoy/config/core/v3/config_source_pb.js';
import { RawBufferSchema } from '../envoy/gen/envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer_pb.js';
import {
  SubjectAltNameMatcher_SanType,
  TlsParameters_TlsProtocol,
  TlsParametersSchema,
} from '../envoy/gen/envoy/extensions/transport_sockets/tls/v3/common_pb.js';
import { SdsSecretConfigSchema } from '../envoy/gen/envoy/extensions/transport_sockets/tls/v3/secret_pb.js';
import { fileCertificateSecretName, fileRootSecretName } from '../../api/names.js';
import { credentialCaResourceName, credentialResourceName } from './secrets.js';
import {
  CommonTlsContextSchema,
  UpstreamTlsContextSchema,
  type CommonTlsContext,
} from '../envoy/gen/envoy/extensions/transport_sockets/tls/v3/tls_pb.js';
import type { ProxyType } from '../xds/node.js';
import {
  GRPC_IDENTITY_PROVIDER,
  GRPC_ROOT_PROVIDER,
  MESH_MTLS_ALPN,
  SDS_CLUSTER,
  SDS_ROOT_SECRET,
  SDS_WORKLOAD_SECRET,
  TLS_MODE_MESH,
} from './cluster-names.js';
import type { ClusterInit } from './cluster-traffic.js';

type TransportSocketMatchInit = MessageInitShape<typeof Cluster_TransportSocketMatchSchema>;
type CommonTlsInit = MessageInitShape<typeof CommonTlsContextSchema>;
/** Some fields of a CommonTlsContext, to spread into one (the init form only, never a message). */
type CommonTlsFields = Exclude<CommonTlsInit, CommonTlsContext>;

/** What the TLS of one outbound cluster depends on. */
export interface ClusterTlsInput {
  readonly proxyType: ProxyType;
  /** The resolved `tls` block of the cluster's policy, if any. */
  readonly tls?: ClientTLSSettings;
  /** Istio's SNI for the cluster, `outbound_.<port>_.<subset>_.<fqdn>`. */
  readonly meshSni: string;
  /** The SPIFFE ids of the service's service accounts (sorted). */
  readonly meshSans: readonly string[];
  readonly fqdn: string;
  /** The cluster speaks HTTP/2 (offers ALPN h2). */
  readonly http2: boolean;
  /**
   * Auto mTLS (Envoy, no `tls` in the policy): per endpoint by its metadata (EDS clusters); `always` or
   * `never` where endpoints carry no metadata: an ORIGINAL_DST cluster whose endpoints all have sidecars
   * (Istio), or not; a DNS cluster (outside the mesh).
   */
  readonly autoMtls: 'endpointMetadata' | 'always' | 'never';
  /**
   * The destination's inbound mode (PeerAuthentication, then the mesh config) when every workload behind
   * the port agrees, else MIXED. Without a `tls` in the policy: STRICT gives proxyless gRPC mesh mTLS,
   * DISABLE gives Envoy plaintext. Ignored where `autoMtls` is `never` (outside the mesh).
   */
  readonly destinationMtls: ResolvedMtlsMode | 'MIXED';
}

// The constant parts below are created once and shared by every cluster (never mutated).

/** The agent's SDS server, a static cluster in the Envoy bootstrap (design.md §3). */
const SDS_SOURCE = create(ConfigSourceSchema, {
  configSourceSpecifier: {
    case: 'apiConfigSource',
    value: {
      apiType: ApiConfigSource_ApiType.GRPC,
      transportApiVersion: ApiVersion.V3,
      grpcServices: [{ targetSpecifier: { case: 'envoyGrpc', value: { clusterName: SDS_CLUSTER } } }],
      setNodeOnFirstMessageOnly: true,
    },
  },
  resourceApiVersion: ApiVersion.V3,
  // Wait for the certificate however long it takes: a cluster without it cannot connect anyway.
  initialFetchTimeout: { seconds: 0n },
});

/** The workload certificate and the trust bundle from the agent's SDS (design.md §3), shared by clusters and listeners. */
export const WORKLOAD_SECRET = create(SdsSecretConfigSchema, { name: SDS_WORKLOAD_SECRET, sdsConfig: SDS_SOURCE });
export const ROOT_SECRET = create(SdsSecretConfigSchema, { name: SDS_ROOT_SECRET, sdsConfig: SDS_SOURCE });

/** SPIFFE ids and other URIs are URI SANs; anything else is a DNS name. */
function typedSan(san: string) {
  return {
    sanType: /^[a-z][a-z0-9+.-]*:\/\//i.test(san)
      ? SubjectAltNameMatcher_SanType.URI
      : SubjectAltNameMatcher_SanType.DNS,
    matcher: { matchPattern: { case: 'exact' as const, value: san } },
  };
}

const TLS_PARAMS = create(TlsParametersSchema, {
  tlsMinimumProtocolVersion: TlsParameters_TlsProtocol.TLSv1_2,
  tlsMaximumProtocolVersion: TlsParameters_TlsProtocol.TLSv1_3,
});

const UPSTREAM_TLS_TYPE_URL = `type.googleapis.com/${UpstreamTlsContextSchema.typeName}`;

// Encoded common_tls_context parts, by what they depend on (bounded; shared across builds).
const commonTlsBytes = new Map<string, Uint8Array>();

/**
 * A TLS transport socket whose UpstreamTlsContext is encoded as `{common_tls_context}` + `{sni}`:
 * concatenated protobuf messages merge, and fields 1 then 2 is the canonical order, so the bytes are
 * exactly those of encoding the whole message; but the common part, the same for every port and subset
 * of a service, is encoded once instead of once per cluster (TLS encoding dominated CDS time).
 */
function tlsSocket(sni: string, key: string, common: () => CommonTlsInit): TransportSocket {
  let head = commonTlsBytes.get(key);
  if (!head) {
    head = toBinary(UpstreamTlsContextSchema, create(UpstreamTlsContextSchema, { commonTlsContext: common() }));
    if (commonTlsBytes.size >= 4096) commonTlsBytes.clear();
    commonTlsBytes.set(key, head);
  }
  const tail =
    sni === '' ? new Uint8Array(0) : toBinary(UpstreamTlsContextSchema, create(UpstreamTlsContextSchema, { sni }));
  const value = new Uint8Array(head.length + tail.length);
  value.set(head);
  value.set(tail, head.length);
  return create(TransportSocketSchema, {
    name: 'envoy.transport_sockets.tls',
    configType: { case: 'typedConfig', value: create(AnySchema, { typeUrl: UPSTREAM_TLS_TYPE_URL, value }) },
  });
}

const RAW_BUFFER_SOCKET = create(TransportSocketSchema, {
  name: 'envoy.transport_sockets.raw_buffer',
  configType: { case: 'typedConfig', value: anyPack(RawBufferSchema, create(RawBufferSchema)) },
});

const PLAINTEXT_MATCH = create(Cluster_TransportSocketMatchSchema, {
  name: 'tlsMode-disabled',
  match: {},
  transportSocket: RAW_BUFFER_SOCKET,
});

/** Envoy mesh mTLS: the workload certificate and the trust bundle from the agent's SDS, SPIFFE SAN check. */
export function envoyMeshSocket(sni: string, sans: readonly string[], http2: boolean): TransportSocket {
  return tlsSocket(sni, JSON.stringify(['mesh', http2, sans]), () => ({
    tlsParams: TLS_PARAMS,
    // `istio` lets the server's inbound chains tell mesh mTLS from an application's own TLS.
    alpnProtocols: http2 ? [MESH_MTLS_ALPN, 'h2'] : [MESH_MTLS_ALPN],
    tlsCertificateSdsSecretConfigs: [WORKLOAD_SECRET],
    validationContextType: {
      case: 'combinedValidationContext',
      value: {
        defaultValidationContext: { matchTypedSubjectAltNames: sans.map(typedSan) },
        validationContextSdsSecretConfig: ROOT_SECRET,
      },
    },
  }));
}

/** Secrets of `credentialName` come over the ADS stream (Istio's SDSAdsConfig), served by the control plane. */
const ADS_SECRET_SOURCE = create(ConfigSourceSchema, {
  configSourceSpecifier: { case: 'ads', value: {} },
  resourceApiVersion: ApiVersion.V3,
});

/** The client certificate of an Envoy SIMPLE/MUTUAL cluster: CommonTlsContext fields. */
function originationCertificate(tls: ClientTLSSettings): CommonTlsFields {
  if (tls.mode !== 'MUTUAL') return {};
  if (tls.credentialName !== undefined) {
    return {
      tlsCertificateSdsSecretConfigs: [
        { name: credentialResourceName(tls.credentialName), sdsConfig: ADS_SECRET_SOURCE },
      ],
    };
  }
  if (tls.clientCertificate !== undefined && tls.privateKey !== undefined) {
    return {
      tlsCertificateSdsSecretConfigs: [
        { name: fileCertificateSecretName(tls.clientCertificate, tls.privateKey), sdsConfig: SDS_SOURCE },
      ],
    };
  }
  // No material (see the top of the file): the workload certificate.
  return { tlsCertificateSdsSecretConfigs: [WORKLOAD_SECRET] };
}

/** The server check of an Envoy SIMPLE/MUTUAL cluster: CommonTlsContext `validation_context_type`. */
function originationValidation(tls: ClientTLSSettings, sans: readonly string[]): CommonTlsFields {
  if (tls.insecureSkipVerify === true) return {};
  const matchTypedSubjectAltNames = sans.map(typedSan);
  if (tls.credentialName !== undefined) {
    return {
      validationContextType: {
        case: 'combinedValidationContext',
        value: {
          defaultValidationContext: { matchTypedSubjectAltNames },
          validationContextSdsSecretConfig: {
            name: credentialCaResourceName(tls.credentialName),
            sdsConfig: ADS_SECRET_SOURCE,
          },
        },
      },
    };
  }
  const crl = tls.caCrl !== undefined ? { crl: { specifier: { case: 'filename' as const, value: tls.caCrl } } } : {};
  if (tls.caCertificates !== undefined) {
    return {
      validationContextType: {
        case: 'combinedValidationContext',
        value: {
          defaultValidationContext: { matchTypedSubjectAltNames, ...crl },
          validationContextSdsSecretConfig: { name: fileRootSecretName(tls.caCertificates), sdsConfig: SDS_SOURCE },
        },
      },
    };
  }
  // Without caCertificates the CRL is left out (the validator warns: it revokes for the CA file).
  return {
    validationContextType: { case: 'validationContext', value: { systemRootCerts: {}, matchTypedSubjectAltNames } },
  };
}

/**
 * Envoy SIMPLE and MUTUAL (TLS origination): SNI = DR `sni` or the host, SANs = DR `subjectAltNames` or
 * the SNI; certificates and trust per the table at the top.
 */
function envoySimpleSocket(tls: ClientTLSSettings, fqdn: string, http2: boolean) {
  const sni = tls.sni ?? fqdn;
  const sans = tls.subjectAltNames ?? [sni];
  const key = JSON.stringify([
    'origination',
    http2,
    sans,
    tls.mode,
    tls.caCertificates,
    tls.clientCertificate,
    tls.privateKey,
    tls.credentialName,
    tls.caCrl,
    tls.insecureSkipVerify,
  ]);
  return tlsSocket(sni, key, () => ({
    tlsParams: TLS_PARAMS,
    ...(http2 ? { alpnProtocols: ['h2'] } : {}),
    ...originationCertificate(tls),
    ...originationValidation(tls, sans),
  }));
}

/**
 * Whether proxyless gRPC cannot honour the policy's TLS (certificate files, credentialName, caCrl or
 * insecureSkipVerify: grpc-js reads certificates only from its bootstrap's certificate providers and
 * NACKs static certificates and SDS). Such clusters are left out for proxyless clients.
 */
export function grpcCannotOriginate(tls: ClientTLSSettings | undefined): boolean {
  if (tls?.mode !== 'SIMPLE' && tls?.mode !== 'MUTUAL') return false;
  return (
    tls.caCertificates !== undefined ||
    tls.clientCertificate !== undefined ||
    tls.privateKey !== undefined ||
    tls.credentialName !== undefined ||
    tls.caCrl !== undefined ||
    tls.insecureSkipVerify === true
  );
}

/**
 * Proxyless gRPC: certificates only from the bootstrap's certificate provider instances (grpc-js NACKs
 * SDS, static certificates and `tls_params`), SANs in the untyped `match_subject_alt_names` (the only
 * form grpc-js reads; Envoy reports it deprecated, not invalid), no SNI (grpc-js ignores it: the SAN
 * check replaces hostname verification).
 */
function grpcSocket(sans: readonly string[], clientCert: boolean): TransportSocket {
  return tlsSocket('', JSON.stringify(['grpc', clientCert, sans]), () => ({
    ...(clientCert ? { tlsCertificateProviderInstance: { instanceName: GRPC_IDENTITY_PROVIDER } } : {}),
    // Not combined_validation_context: Envoy's rules require its SDS half, which grpc-js NACKs.
    validationContextType: {
      case: 'validationContext',
      value: {
        caCertificateProviderInstance: { instanceName: GRPC_ROOT_PROVIDER },
        matchSubjectAltNames: sans.map((san) => ({ matchPattern: { case: 'exact' as const, value: san } })),
      },
    },
  }));
}

function isMeshMode(tls: ClientTLSSettings): boolean {
  return tls.mode === 'MESH_MUTUAL' || tls.mode === 'ISTIO_MUTUAL';
}

/** `transport_socket` or `transport_socket_matches` of an outbound cluster (see the table at the top). */
export function outboundTlsFields(input: ClusterTlsInput): ClusterInit {
  const { tls, proxyType } = input;
  if (tls?.mode === 'DISABLE') return {};
  if (proxyType === 'grpc') {
    if (!tls) {
      const mesh = input.autoMtls !== 'never' && input.destinationMtls === 'STRICT';
      return mesh ? { transportSocket: grpcSocket(input.meshSans, true) } : {};
    }
    const sans = tls.subjectAltNames ?? input.meshSans;
    return { transportSocket: grpcSocket(sans, tls.mode !== 'SIMPLE') };
  }
  if (tls && isMeshMode(tls)) {
    return {
      transportSocket: envoyMeshSocket(tls.sni ?? input.meshSni, tls.subjectAltNames ?? input.meshSans, input.http2),
    };
  }
  if (tls) return { transportSocket: envoySimpleSocket(tls, input.fqdn, input.http2) };
  if (input.autoMtls === 'never' || input.destinationMtls === 'DISABLE') return {};
  const mesh = envoyMeshSocket(input.meshSni, input.meshSans, input.http2);
  if (input.autoMtls === 'always') return { transportSocket: mesh };
  return { transportSocketMatches: autoMtlsMatches(mesh) };
}

/** Auto mutual TLS: mTLS to endpoints whose metadata says they have a sidecar, plaintext to the others. */
function autoMtlsMatches(mesh: TransportSocket): TransportSocketMatchInit[] {
  return [
    { name: `tlsMode-${TLS_MODE_MESH}`, match: { tlsMode: TLS_MODE_MESH }, transportSocket: mesh },
    PLAINTEXT_MATCH,
  ];
}
