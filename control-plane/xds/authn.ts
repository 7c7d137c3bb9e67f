// xDS authentication (design.md §5.1): a stream on the TLS port (15012) is bound to the SPIFFE ID of its
// verified client certificate, and the node may not claim another namespace, service account or trust
// domain. Streams on the plaintext port (15010, local mode only) are not authenticated.
import * as grpc from '@grpc/grpc-js';
import type { Node } from '../envoy/gen/envoy/config/core/v3/base_pb.js';
import { certificateIdentity, type PeerAuthContext, type PeerIdentity } from '../../certs/peer-identity.js';
import type { ProxyInfo } from './node.js';

/** How a stream's peer is known: not at all (plaintext port), or by its certificate (TLS port). */
export type StreamPeer =
  { readonly transport: 'plaintext' } | { readonly transport: 'tls'; readonly identity: PeerIdentity };

/** Why a stream was refused, the `reason` label of trellis_xds_authn_refusals_total. */
export type RefusalReason = 'no-certificate' | 'invalid-certificate' | 'metadata-mismatch';

/** A stream refused for who it is (not for a malformed request): its gRPC status and the reason. */
export class StreamRefusal extends Error {
  override readonly name = 'StreamRefusal';
  constructor(
    readonly code: grpc.status,
    readonly reason: RefusalReason,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The peer of a call that arrived on the TLS port: the identity of its verified client certificate.
 * Throws StreamRefusal (UNAUTHENTICATED) without one, or when it is not a workload SPIFFE ID of
 * `trustDomain`.
 */
export function authenticateTlsPeer(auth: PeerAuthContext | null | undefined, trustDomain: string): StreamPeer {
  const proof = certificateIdentity(auth, trustDomain);
  if (proof.kind === 'none') {
    throw new StreamRefusal(
      grpc.status.UNAUTHENTICATED,
      'no-certificate',
      'xDS on the TLS port needs a client certificate (an SVID) that verifies against the mesh trust bundle',
    );
  }
  if (proof.kind === 'invalid')
    throw new StreamRefusal(grpc.status.UNAUTHENTICATED, 'invalid-certificate', proof.reason);
  return { transport: 'tls', identity: proof.identity };
}

const BOUND_FIELDS = [
  ['NAMESPACE', 'namespace'],
  ['SERVICE_ACCOUNT', 'serviceAccount'],
  ['TRUST_DOMAIN', 'trustDomain'],
] as const;

/**
 * Binds a proxy to the identity of its certificate: `node.metadata` NAMESPACE, SERVICE_ACCOUNT and
 * TRUST_DOMAIN, when present (a non-empty value), must equal the certificate's (else StreamRefusal,
 * PERMISSION_DENIED, naming the field and both values); when absent, the certificate's fill them.
 */
export function bindProxy(node: Node | undefined, proxy: ProxyInfo, identity: PeerIdentity): ProxyInfo {
  const metadata: Readonly<Record<string, unknown>> = node?.metadata ?? {};
  for (const [field, key] of BOUND_FIELDS) {
    const claimed = metadata[field];
    if (claimed === undefined || claimed === null || claimed === '') continue;
    if (claimed !== identity[key]) {
      throw new StreamRefusal(
        grpc.status.PERMISSION_DENIED,
        'metadata-mismatch',
        `node.metadata.${field} is ${JSON.stringify(claimed)} but the client certificate says ${JSON.stringify(identity[key])} (${identity.spiffeId})`,
      );
    }
  }
  return {
    ...proxy,
    namespace: identity.namespace,
    serviceAccount: identity.serviceAccount,
    trustDomain: identity.trustDomain,
    authenticated: true,
  };
}
