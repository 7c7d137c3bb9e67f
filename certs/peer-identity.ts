// The identity a client proves with its certificate on the TLS port (15012): grpc-js hands the server the
// peer certificate (`call.getAuthContext().sslPeerCertificate`) only when it verified against the trust
// bundle, so all that is left is to read its one URI SAN as a workload SPIFFE ID of our trust domain.
// Shared by the CA service (renewal by certificate) and the xDS server (stream binding).
import type tls from 'node:tls';
import { uriSans } from './certificate-provider.js';
import { parseSpiffeId, type WorkloadIdentity } from './spiffe.js';

export interface PeerIdentity extends WorkloadIdentity {
  /** `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`, as in the certificate. */
  readonly spiffeId: string;
}

/** The part of grpc-js's AuthContext (not exported by the package) read here. */
export interface PeerAuthContext {
  readonly transportSecurityType?: string;
  readonly sslPeerCertificate?: tls.PeerCertificate;
}

/** What a verified client certificate proves, or why it proves nothing usable. */
export type CertificateIdentity =
  | { readonly kind: 'none' }
  | { readonly kind: 'identity'; readonly identity: PeerIdentity }
  | { readonly kind: 'invalid'; readonly reason: string };

/**
 * Reads the verified client certificate of a call. `none`: no certificate, or one that did not verify
 * (grpc-js leaves it out then), or a plaintext call. `invalid`: it verified but does not carry exactly one
 * URI SAN that is a workload SPIFFE ID of `trustDomain`.
 */
export function certificateIdentity(
  auth: PeerAuthContext | null | undefined,
  trustDomain: string,
): CertificateIdentity {
  const cert = auth?.sslPeerCertificate;
  if (!cert) return { kind: 'none' };
  const uris = uriSans(cert);
  if (uris.length !== 1) {
    return {
      kind: 'invalid',
      reason: `the client certificate must carry exactly one URI SAN, it has ${uris.length === 0 ? 'none' : uris.join(', ')}`,
    };
  }
  const spiffeId = uris[0]!;
  const parsed = parseSpiffeId(spiffeId);
  if (!parsed) {
    return {
      kind: 'invalid',
      reason: `the client certificate's URI SAN ${spiffeId} is not spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`,
    };
  }
  if (parsed.trustDomain !== trustDomain) {
    return {
      kind: 'invalid',
      reason: `the client certificate's SPIFFE ID ${spiffeId} is not in trust domain ${trustDomain}`,
    };
  }
  return { kind: 'identity', identity: { ...parsed, spiffeId } };
}
