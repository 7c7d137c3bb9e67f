// TLS material held in memory and handed to @grpc/grpc-js as a certificate provider, so a server or a
// channel picks up a rotated certificate for every new handshake without being rebuilt. One provider
// serves both halves: the identity (certificate chain + key) and the CA (trust bundle).
//
// grpc-js's `createCertificateProviderServerCredentials(a, b, requireClientCertificate)` passes `a` as the
// identity provider and `b` as the CA provider (its .d.ts names them the other way round); passing the
// same provider for both sidesteps that. With `requireClientCertificate: false` the server still asks
// for a client certificate and verifies it against the bundle; `call.getAuthContext()` then returns the
// peer certificate only when it verified.
import { experimental, ServerCredentials, type ChannelCredentials } from '@grpc/grpc-js';
import type tls from 'node:tls';

type CaListener = experimental.CaCertificateUpdateListener;
type IdentityListener = experimental.IdentityCertificateUpdateListener;

export interface TlsMaterial {
  /** PEM: the leaf first, then intermediates (a root at the end is harmless). */
  readonly certChainPem: string;
  /** PEM PKCS#8 private key of the leaf. */
  readonly privateKeyPem: string;
  /** PEM roots that peers' certificates must chain to. */
  readonly trustBundlePem: string;
}

export class MemoryCertificateProvider implements experimental.CertificateProvider {
  private material: TlsMaterial | undefined;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();

  constructor(material?: TlsMaterial) {
    this.material = material;
  }

  /** Replaces the material; connections made from now on use it (existing ones keep theirs). */
  update(material: TlsMaterial): void {
    this.material = material;
    for (const listener of this.caListeners) listener({ caCertificate: Buffer.from(material.trustBundlePem) });
    for (const listener of this.identityListeners) listener(this.identity(material));
  }

  current(): TlsMaterial | undefined {
    return this.material;
  }

  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    const m = this.material;
    if (m) process.nextTick(listener, { caCertificate: Buffer.from(m.trustBundlePem) });
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    const m = this.material;
    if (m) process.nextTick(listener, this.identity(m));
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }

  private identity(m: TlsMaterial) {
    return { certificate: Buffer.from(m.certChainPem), privateKey: Buffer.from(m.privateKeyPem) };
  }

  /**
   * Server credentials that present this identity and verify client certificates against the bundle.
   * `requireClientCertificate: false` still requests one (a CA client without a certificate yet may
   * connect; it must then prove itself with a token).
   */
  serverCredentials(requireClientCertificate: boolean): ServerCredentials {
    return experimental.createCertificateProviderServerCredentials(this, this, requireClientCertificate);
  }

  /**
   * Channel credentials that verify the server against the bundle, check that its certificate carries
   * `expectedServerId` as a URI SAN (instead of a host name), and present this identity when there is one.
   */
  channelCredentials(expectedServerId: string): ChannelCredentials {
    return experimental.createCertificateProviderChannelCredentials(this, this, {
      checkServerIdentity: checkServerSpiffeId(expectedServerId),
    });
  }
}

/**
 * A `checkServerIdentity` for grpc-js `verifyOptions`: the server is who its URI SAN says (a SPIFFE ID),
 * not whatever host name was dialled. Use with `credentials.createSsl(bundle, null, null, {...})` for a
 * client that has no certificate of its own yet.
 */
export function checkServerSpiffeId(expected: string): (host: string, cert: tls.PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    const ids = uriSans(cert);
    return ids.includes(expected)
      ? undefined
      : new Error(`the server presented ${ids.join(', ') || 'no URI SAN'}, expected ${expected}`);
  };
}

/** The URI SANs of a peer certificate, from Node's `subjectaltname` string. */
export function uriSans(cert: tls.PeerCertificate | undefined): string[] {
  const text = cert?.subjectaltname;
  if (!text) return [];
  return text
    .split(/,\s*/)
    .filter((entry) => entry.startsWith('URI:'))
    .map((entry) => entry.slice(4));
}
