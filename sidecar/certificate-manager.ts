// The workload certificate of one pod: a fresh ECDSA P-256 key for every issuance (made here, never sent
// anywhere: design.md §5.2), a CSR for exactly the pod's SPIFFE ID, the chain from the CA, renewal before
// expiry, and backoff while the CA is away (design.md §5.4: the old certificate keeps being served).
//
// Timing (README.md "Certificates"):
//   - lifetime = notAfter − receivedAt (the CA backdates notBefore by 5 min for clock skew, so notBefore
//     would make a 60 s certificate look 6 min long);
//   - renewal at a uniformly random point between 40 % and 50 % of that lifetime after receipt, so a fleet
//     restarted together spreads its renewals;
//   - a failed attempt is retried after 1 s, doubling up to 30 s, each delay ×U(0.8, 1.2), and never later
//     than the current certificate's expiry (once expired, the 30 s cap alone);
//   - the first certificate (start()) is retried the same way until it arrives or stop() is called.
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { TlsMaterial } from '../certs/certificate-provider.js';
import type { KeyType } from '../certs/keys.js';
import { createCsr, generateWorkloadKey, type WorkloadKey } from '../certs/request.js';
import { spiffeId, type WorkloadIdentity } from '../certs/spiffe.js';
import { silentLogger, type Logger } from '../control-plane/logger.js';
import { backoffDelay } from '../lib/backoff.js';
import { systemClock, type Clock, type ClockTimer } from '../lib/clock.js';
import { CaClientError, type CaAuthMethod, type CertificateIssuer } from './ca-client.js';

export interface WorkloadCertificate extends TlsMaterial {
  readonly spiffeId: string;
  /** PEM: the leaf first, then intermediates; not the root. */
  readonly certChainPem: string;
  /** PEM PKCS#8 private key of the leaf. */
  readonly privateKeyPem: string;
  /** PEM roots: the root at the end of the CA's chain plus the extra roots, deduplicated. */
  readonly trustBundlePem: string;
  /** Lowercase hex, as the CA's audit log writes it. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** When this agent received it: the start of its useful lifetime. */
  readonly receivedAt: Date;
}

export interface BackoffOptions {
  /** First retry delay; default 1 s. */
  readonly initialMs?: number;
  /** Largest delay; default 30 s. */
  readonly maxMs?: number;
}

export interface CertificateManagerOptions {
  readonly issuer: CertificateIssuer;
  /** Whose certificate: `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>`. */
  readonly identity: WorkloadIdentity;
  /** Requested lifetime; default 0 (the CA's default, 24 h). */
  readonly ttlSeconds?: number;
  /** More PEM roots for the trust bundle (a root rotation, a federated domain). */
  readonly extraRootsPem?: string;
  readonly keyType?: KeyType;
  /**
   * `per-renewal` (default, as Istio): a new key for every certificate. `per-process` (as Linkerd): one
   * key made at start, kept in memory and used for every renewal. The agent uses `per-process` for
   * proxyless gRPC: grpc-js reads cert.pem and key.pem with two separate opens, and a renewal landing
   * between them would pair a certificate with another key; with one key every pair matches.
   */
  readonly keyRotation?: 'per-renewal' | 'per-process';
  readonly backoff?: BackoffOptions;
  readonly logger?: Logger;
  /** Registers the agent certificate metrics here when given. */
  readonly registry?: Registry;
  /** Time and timers (receipt, validity, renewal and retry delays); the system clock unless a test sets one. */
  readonly clock?: Clock;
}

export interface CertificateManagerEvents {
  /** A new certificate (the first one included). */
  rotated: [certificate: WorkloadCertificate];
}

/** The CA's answer does not fit the request (wrong identity, wrong key, unparseable). */
export class CertificateRejected extends Error {
  override readonly name = 'CertificateRejected';
}

/** Renewal is at this fraction of the lifetime after receipt: uniformly random in [RENEW_MIN, RENEW_MAX]. */
export const RENEW_MIN_FRACTION = 0.4;
export const RENEW_MAX_FRACTION = 0.5;

/**
 * While the CA is away, the last retry before the certificate in use expires is this long before notAfter
 * (a tenth of the certificate's lifetime, at most 5 s), so that a CA back in time can answer before expiry.
 */
export function lastTryMarginMs(certificate: Pick<WorkloadCertificate, 'receivedAt' | 'notAfter'>): number {
  return Math.min(5_000, Math.max(0, (certificate.notAfter.getTime() - certificate.receivedAt.getTime()) / 10));
}

const DEFAULT_INITIAL_BACKOFF_MS = 1_000;
const DEFAULT_MAX_BACKOFF_MS = 30_000;

/** When to renew a certificate received at `receivedAt`: `fraction` of the way from receipt to notAfter. */
export function renewalTime(certificate: Pick<WorkloadCertificate, 'receivedAt' | 'notAfter'>, fraction: number): Date {
  const received = certificate.receivedAt.getTime();
  const lifetime = Math.max(0, certificate.notAfter.getTime() - received);
  return new Date(received + lifetime * fraction);
}

class ManagerMetrics {
  readonly renewals: Counter<'via'>;
  readonly failures: Counter<'code'>;
  readonly expiry: Gauge;
  readonly nextRenewal: Gauge;

  constructor(registry: Registry) {
    this.renewals = new Counter({
      name: 'trellis_agent_certificate_issued_total',
      help: 'Workload certificates received from the CA (the first one and every renewal), by how the request authenticated.',
      labelNames: ['via'],
      registers: [registry],
    });
    this.failures = new Counter({
      name: 'trellis_agent_certificate_failures_total',
      help: 'Failed certificate requests, by gRPC status code, "rejected" (an answer that did not fit the request) or "error".',
      labelNames: ['code'],
      registers: [registry],
    });
    this.expiry = new Gauge({
      name: 'trellis_agent_certificate_expiry_seconds',
      help: 'notAfter of the current workload certificate, in Unix seconds.',
      registers: [registry],
    });
    this.nextRenewal = new Gauge({
      name: 'trellis_agent_certificate_next_attempt_seconds',
      help: 'When the next certificate request is scheduled, in Unix seconds.',
      registers: [registry],
    });
  }
}

export class CertificateManager extends EventEmitter<CertificateManagerEvents> {
  readonly spiffeId: string;
  private readonly logger: Logger;
  private readonly metrics: ManagerMetrics | undefined;
  private certificate: WorkloadCertificate | undefined;
  private readonly clock: Clock;
  private timer: ClockTimer | undefined;
  private attempt = 0;
  private running = false;
  private started = false;
  private inFlight: Promise<void> | undefined;
  private first: { resolve: (c: WorkloadCertificate) => void; reject: (e: Error) => void } | undefined;
  /** The key of `per-process` key rotation, made at the first request. */
  private processKey: Promise<WorkloadKey> | undefined;

  constructor(private readonly options: CertificateManagerOptions) {
    super();
    this.spiffeId = spiffeId(options.identity);
    this.logger = (options.logger ?? silentLogger).child({ component: 'certificates', spiffeId: this.spiffeId });
    this.metrics = options.registry ? new ManagerMetrics(options.registry) : undefined;
    this.clock = options.clock ?? systemClock;
  }

  /** Resolves with the first certificate (retrying with backoff); rejects only when stop() comes first. */
  start(): Promise<WorkloadCertificate> {
    if (this.started) throw new Error('the certificate manager is already started (it cannot be restarted)');
    this.started = true;
    this.running = true;
    const first = new Promise<WorkloadCertificate>((resolve, reject) => {
      this.first = { resolve, reject };
    });
    this.schedule(0);
    return first;
  }

  /** The latest certificate (check `notAfter`, or ready(), for whether it is still valid). */
  current(): WorkloadCertificate | undefined {
    return this.certificate;
  }

  /** A certificate that is valid now is held. */
  ready(): boolean {
    const c = this.certificate;
    const now = this.clock.now();
    return c !== undefined && c.notBefore.getTime() <= now && now < c.notAfter.getTime();
  }

  /** Stops renewing; an unfinished start() rejects. Resolves once an attempt in flight has ended. */
  async stop(): Promise<void> {
    this.running = false;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.first?.reject(new Error('the certificate manager was stopped before it got a certificate'));
    this.first = undefined;
    await this.inFlight;
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    this.clock.clearTimeout(this.timer);
    this.metrics?.nextRenewal.set((this.clock.now() + delayMs) / 1000);
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.inFlight = this.renew().finally(() => (this.inFlight = undefined));
    }, delayMs);
  }

  private async renew(): Promise<void> {
    let issued: WorkloadCertificate;
    let via: CaAuthMethod;
    try {
      ({ certificate: issued, via } = await this.request());
    } catch (err) {
      if (!this.running) return;
      this.onFailure(err as Error);
      return;
    }
    if (!this.running) return;
    this.attempt = 0;
    const previous = this.certificate;
    this.certificate = issued;
    this.metrics?.renewals.inc({ via });
    this.metrics?.expiry.set(issued.notAfter.getTime() / 1000);
    const fraction = RENEW_MIN_FRACTION + Math.random() * (RENEW_MAX_FRACTION - RENEW_MIN_FRACTION);
    const at = renewalTime(issued, fraction);
    this.logger.info(
      {
        serial: issued.serial,
        previousSerial: previous?.serial,
        notAfter: issued.notAfter.toISOString(),
        via,
        renewAt: at.toISOString(),
      },
      previous ? 'certificates: renewed' : 'certificates: got the first certificate',
    );
    this.schedule(Math.max(0, at.getTime() - this.clock.now()));
    this.first?.resolve(issued);
    this.first = undefined;
    try {
      this.emit('rotated', issued);
    } catch (err) {
      // A listener's failure must not stop renewal (it is already scheduled).
      this.logger.error(
        { err: (err as Error).message, serial: issued.serial },
        'certificates: a rotated listener threw',
      );
    }
  }

  private onFailure(err: Error): void {
    const code = err instanceof CaClientError ? err.code : undefined;
    this.metrics?.failures.inc({
      code: err instanceof CaClientError ? String(code) : err instanceof CertificateRejected ? 'rejected' : 'error',
    });
    const initial = this.options.backoff?.initialMs ?? DEFAULT_INITIAL_BACKOFF_MS;
    const max = this.options.backoff?.maxMs ?? DEFAULT_MAX_BACKOFF_MS;
    // The one backoff formula of the project (lib/backoff.ts): initial · 2^attempt, capped, drawn in [d/2, d].
    let delay = backoffDelay(this.attempt, { initialMs: initial, maxMs: max });
    this.attempt++;
    const c = this.certificate;
    const untilExpiry = c ? c.notAfter.getTime() - this.clock.now() : Infinity;
    // Never sleep past the expiry of the certificate still in use: try once more just before it (leaving
    // the request time to complete), and, within that margin, at the expiry itself.
    if (c && untilExpiry > 0) {
      const margin = lastTryMarginMs(c);
      delay = Math.min(delay, untilExpiry > margin ? untilExpiry - margin : untilExpiry);
    }
    delay = Math.max(0, Math.round(delay));
    this.logger.warn(
      {
        err: err.message,
        code,
        attempt: this.attempt,
        retryInMs: delay,
        serving: c?.serial,
        servingNotAfter: c?.notAfter.toISOString(),
        expired: c ? untilExpiry <= 0 : undefined,
      },
      c
        ? untilExpiry > 0
          ? 'certificates: renewal failed; the current certificate is still served'
          : 'certificates: renewal failed and the current certificate has EXPIRED'
        : 'certificates: could not get the first certificate',
    );
    this.schedule(delay);
  }

  private nextKey(): Promise<WorkloadKey> {
    const make = () => generateWorkloadKey(this.options.keyType ?? 'ec-p256');
    if (this.options.keyRotation !== 'per-process') return make();
    this.processKey ??= make();
    return this.processKey;
  }

  private async request(): Promise<{ certificate: WorkloadCertificate; via: CaAuthMethod }> {
    const key = await this.nextKey();
    const csr = await createCsr(key, this.spiffeId);
    const { chain, via } = await this.options.issuer.createCertificate({
      csr,
      validitySeconds: this.options.ttlSeconds ?? 0,
      current: this.ready() ? this.certificate : undefined,
    });
    const receivedAt = new Date(this.clock.now());
    return {
      certificate: assemble(chain, key.privateKeyPem, this.spiffeId, this.options.extraRootsPem, receivedAt),
      via,
    };
  }
}

/** The single PEM blocks of a PEM text, each normalised to end with one newline. */
export function splitPem(text: string): string[] {
  return (text.match(/-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g) ?? []).map((b) => `${b}\n`);
}

function isSelfSigned(cert: crypto.X509Certificate): boolean {
  return cert.issuer === cert.subject && cert.verify(cert.publicKey);
}

/**
 * A WorkloadCertificate from the CA's chain (leaf, intermediates, root last): checks that the leaf carries
 * exactly `expectedId` and the key of `privateKeyPem`, splits off the root into the trust bundle.
 */
export function assemble(
  chain: readonly string[],
  privateKeyPem: string,
  expectedId: string,
  extraRootsPem: string | undefined,
  receivedAt: Date,
): WorkloadCertificate {
  const pems = chain.flatMap(splitPem);
  if (pems.length === 0) throw new CertificateRejected('the CA returned no certificate');
  let certs: crypto.X509Certificate[];
  try {
    certs = pems.map((p) => new crypto.X509Certificate(p));
  } catch (err) {
    throw new CertificateRejected(`the CA returned a certificate that does not parse: ${(err as Error).message}`);
  }
  const leaf = certs[0]!;
  if (leaf.subjectAltName !== `URI:${expectedId}`) {
    throw new CertificateRejected(
      `the certificate is for ${leaf.subjectAltName ?? 'no SAN'}, expected URI:${expectedId}`,
    );
  }
  const spki = (k: crypto.KeyObject) => k.export({ type: 'spki', format: 'der' });
  if (!spki(leaf.publicKey).equals(spki(crypto.createPublicKey(privateKeyPem)))) {
    throw new CertificateRejected('the certificate does not carry the public key of the request');
  }
  const last = certs.length > 1 ? certs[certs.length - 1]! : undefined;
  const rootFromChain = last && isSelfSigned(last) ? pems[pems.length - 1]! : undefined;
  const chainPems = rootFromChain ? pems.slice(0, -1) : pems;
  // Deduplicated by DER, so the same root written with other line breaks counts once.
  const roots: string[] = [];
  const seen = new Set<string>();
  for (const pem of [...(rootFromChain ? [rootFromChain] : []), ...splitPem(extraRootsPem ?? '')]) {
    let der: string;
    try {
      der = new crypto.X509Certificate(pem).raw.toString('base64');
    } catch (err) {
      throw new CertificateRejected(`an extra root does not parse: ${(err as Error).message}`);
    }
    if (seen.has(der)) continue;
    seen.add(der);
    roots.push(pem);
  }
  if (roots.length === 0) {
    throw new CertificateRejected(
      'no trust bundle: the CA chain ends without a root and no extra roots are configured',
    );
  }
  return {
    spiffeId: expectedId,
    certChainPem: chainPems.join(''),
    privateKeyPem,
    trustBundlePem: roots.join(''),
    serial: leaf.serialNumber.toLowerCase(),
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    receivedAt,
  };
}
