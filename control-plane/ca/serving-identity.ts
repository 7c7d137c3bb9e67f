// The control plane's own SVID, `spiffe://<trust-domain>/ns/trellis-system/sa/trellisd`, for the TLS port
// (15012). It is issued in process by the control plane's own CertificateAuthority (the key is made here
// and never written anywhere), held in a MemoryCertificateProvider with the trust bundle, and renewed at
// half its lifetime; new handshakes get the new certificate, open connections keep theirs.
//
// Clients verify the control plane by this URI SAN (certs' checkServerSpiffeId), not by a host name: the
// certificate has an empty subject and no DNS SAN, so it is the same whatever address a client dials.
import {
  CertificateAuthority,
  MemoryCertificateProvider,
  createCsr,
  generateWorkloadKey,
  spiffeId,
  type IssuedCertificate,
} from '../../certs/index.js';
import type { Logger } from '../logger.js';
import type { CaMetrics } from './metrics.js';

export const CONTROL_PLANE_NAMESPACE = 'trellis-system';
export const CONTROL_PLANE_SERVICE_ACCOUNT = 'trellisd';
/** Lifetime of a serving certificate unless told otherwise: 24 h. */
export const DEFAULT_SERVING_TTL_SECONDS = 24 * 3600;

/** `spiffe://<trustDomain>/ns/trellis-system/sa/trellisd`: what clients of port 15012 expect. */
export function controlPlaneSpiffeId(trustDomain: string): string {
  return spiffeId({ trustDomain, namespace: CONTROL_PLANE_NAMESPACE, serviceAccount: CONTROL_PLANE_SERVICE_ACCOUNT });
}

export interface ServingIdentityOptions {
  readonly authority: CertificateAuthority;
  readonly logger: Logger;
  /** Lifetime of each certificate (renewed at half of it); default 24 h. */
  readonly ttlSeconds?: number;
  /** Sets `trellis_ca_certificate_expiry_timestamp_seconds{certificate="serving"}`. */
  readonly metrics?: CaMetrics;
}

export class ServingIdentity {
  readonly provider = new MemoryCertificateProvider();
  readonly spiffeId: string;
  private issued: IssuedCertificate | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  private constructor(private readonly options: ServingIdentityOptions) {
    this.spiffeId = controlPlaneSpiffeId(options.authority.trustDomain);
  }

  /** Issues the first certificate and schedules its renewals. */
  static async start(options: ServingIdentityOptions): Promise<ServingIdentity> {
    const identity = new ServingIdentity(options);
    await identity.renew();
    return identity;
  }

  /** The certificate served now. */
  get current(): IssuedCertificate {
    if (!this.issued) throw new Error('the serving identity has not been issued yet');
    return this.issued;
  }

  /** Issues a new certificate (with a new key) now and schedules the next renewal at half its lifetime. */
  async renew(): Promise<IssuedCertificate> {
    const { authority, logger } = this.options;
    clearTimeout(this.timer);
    const key = await generateWorkloadKey();
    const issued = await authority.sign({
      csr: await createCsr(key, this.spiffeId),
      identity: {
        trustDomain: authority.trustDomain,
        namespace: CONTROL_PLANE_NAMESPACE,
        serviceAccount: CONTROL_PLANE_SERVICE_ACCOUNT,
      },
      ttlSeconds: this.options.ttlSeconds ?? DEFAULT_SERVING_TTL_SECONDS,
    });
    this.issued = issued;
    this.provider.update({
      certChainPem: issued.chain.join(''),
      privateKeyPem: key.privateKeyPem,
      trustBundlePem: authority.trustBundle(),
    });
    this.options.metrics?.expiry.set({ certificate: 'serving' }, issued.notAfter.getTime() / 1000);
    logger.info(
      { spiffeId: issued.spiffeId, serial: issued.serial, notAfter: issued.notAfter.toISOString() },
      'ca: issued the control plane its serving certificate',
    );
    // Half of what is left (the lifetime counts from a whole second, and signing took a moment).
    this.schedule((issued.notAfter.getTime() - Date.now()) / 2);
    return issued;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.renew().catch((err: unknown) => {
        // Keep serving the current certificate and try again soon (it is still valid for a while).
        const retryMs = Math.max(1_000, (this.current.notAfter.getTime() - Date.now()) / 5);
        this.options.logger.error(
          { err, notAfter: this.current.notAfter.toISOString(), retryMs },
          'ca: renewing the control plane serving certificate failed',
        );
        this.schedule(retryMs);
      });
    }, delayMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
