// The admission webhooks' serving certificate when the control plane is its own CA (Kubernetes mode with
// the CA and no --webhook-cert): DNS names trellisd, trellisd.trellis-system, trellisd.trellis-system.svc
// (what the API server dials through the Service of install.yaml), issued in process by the mesh CA
// (certs/serving.ts), the key never written anywhere. Renewed at half its lifetime with a new key; each
// certificate is handed to `onIssued` (the webhook server swaps its TLS context: new connections get it).
// The configurations' caBundle is the trust bundle (ca-bundle.ts), so every renewal verifies at once.
import type { CertificateAuthority } from '../../certs/authority.js';
import { issueServingCertificate, type ServingCertificate } from '../../certs/serving.js';
import type { Logger } from '../logger.js';

export const WEBHOOK_SERVICE = 'trellisd';
export const WEBHOOK_NAMESPACE = 'trellis-system';
/** The names the API server may use for the Service: short, namespaced, `.svc`. */
export const WEBHOOK_DNS_NAMES: readonly string[] = [
  WEBHOOK_SERVICE,
  `${WEBHOOK_SERVICE}.${WEBHOOK_NAMESPACE}`,
  `${WEBHOOK_SERVICE}.${WEBHOOK_NAMESPACE}.svc`,
];
/** 24 h, renewed at 12 h. */
export const WEBHOOK_CERT_TTL_SECONDS = 24 * 3600;

export interface WebhookServingCertOptions {
  readonly authority: CertificateAuthority;
  readonly logger: Logger;
  /** Called with every certificate issued, the first one included. */
  readonly onIssued: (cert: ServingCertificate) => void;
  /** IP SANs besides the DNS names (a webhook registered by URL on loopback, in tests: 127.0.0.1). */
  readonly ipAddresses?: readonly string[];
  readonly ttlSeconds?: number;
}

export class WebhookServingCert {
  private issued: ServingCertificate | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  private constructor(private readonly o: WebhookServingCertOptions) {}

  /** Issues the first certificate (handed to onIssued before this resolves) and schedules renewals. */
  static async start(options: WebhookServingCertOptions): Promise<WebhookServingCert> {
    const cert = new WebhookServingCert(options);
    await cert.renew();
    return cert;
  }

  get current(): ServingCertificate {
    if (!this.issued) throw new Error('the webhook serving certificate has not been issued yet');
    return this.issued;
  }

  /** Issues a new certificate now (new key) and schedules the next renewal at half its lifetime. */
  async renew(): Promise<ServingCertificate> {
    clearTimeout(this.timer);
    const issued = await issueServingCertificate(this.o.authority, {
      dnsNames: WEBHOOK_DNS_NAMES,
      ipAddresses: this.o.ipAddresses ?? [],
      ttlSeconds: this.o.ttlSeconds ?? WEBHOOK_CERT_TTL_SECONDS,
    });
    this.issued = issued;
    this.o.onIssued(issued);
    this.o.logger.info(
      { dnsNames: issued.dnsNames, serial: issued.serial, notAfter: issued.notAfter.toISOString() },
      'webhook: issued the serving certificate from the mesh CA',
    );
    this.schedule((issued.notAfter.getTime() - Date.now()) / 2);
    return issued;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.renew().catch((err: unknown) => {
        const retryMs = Math.max(1_000, (this.current.notAfter.getTime() - Date.now()) / 5);
        this.o.logger.error({ err, retryMs }, 'webhook: renewing the serving certificate failed; retrying');
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
