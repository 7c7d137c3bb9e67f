// Prometheus metrics of the CA service, registered on the control plane's registry.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * `issued`, or why not: `unauthenticated`, `denied` (a CSR refusal), `invalid` (bad request), `unavailable`, `error`,
 * `plaintext` (a call on the plaintext port outside local mode, plaintext-guard.ts).
 */
export type CaResult = 'issued' | 'unauthenticated' | 'denied' | 'invalid' | 'unavailable' | 'error' | 'plaintext';

/** A write of ConfigMap `trellis-ca-root-cert` (root-publisher.ts): `created`, `updated`, `conflict` (409, retried), `error`. */
export type RootCertWriteResult = 'created' | 'updated' | 'conflict' | 'error';

export class CaMetrics {
  readonly requests: Counter<'result'>;
  readonly signDuration: Histogram;
  /**
   * notAfter of the signing certificate, of the root and of the control plane's own serving certificate,
   * so an alert can fire long before any of them expires.
   */
  readonly expiry: Gauge<'certificate'>;
  /** Writes of the trust bundle ConfigMap `trellis-ca-root-cert`, one per namespace (root-publisher.ts). */
  readonly rootCertWrites: Counter<'result'>;

  constructor(registry: Registry) {
    this.requests = new Counter({
      name: 'trellis_ca_requests_total',
      help: 'CreateCertificate requests by result (issued, unauthenticated, denied, invalid, unavailable, error, plaintext).',
      labelNames: ['result'] as const,
      registers: [registry],
    });
    this.signDuration = new Histogram({
      name: 'trellis_ca_sign_duration_seconds',
      help: 'Time to check a CSR and sign a certificate (authentication excluded).',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
      registers: [registry],
    });
    this.expiry = new Gauge({
      name: 'trellis_ca_certificate_expiry_timestamp_seconds',
      help: 'notAfter (Unix seconds) of the CA certificates: certificate="signer" (signs workloads), "root", and "serving" (the control plane\'s own TLS certificate on port 15012).',
      labelNames: ['certificate'] as const,
      registers: [registry],
    });
    this.rootCertWrites = new Counter({
      name: 'trellis_ca_root_cert_writes_total',
      help: 'Writes of the trust bundle ConfigMap trellis-ca-root-cert by result (created, updated, conflict, error).',
      labelNames: ['result'] as const,
      registers: [registry],
    });
  }
}
