// The self-signed root of the built-in CA: ECDSA P-256 by default (P-384, RSA-2048 as options), 10 years,
// basicConstraints CA (critical), keyUsage keyCertSign + cRLSign (critical), SKI and AKI, subject
// O=Trellis, CN=Trellis Root CA. @peculiar/x509 makes it, imported only here and only when a root is made:
// a control plane that loads an existing CA never loads it (it costs about 6 MiB of resident memory).
import { exportPrivateKeyPem, generateKeyPair, signingAlgorithm, type KeyType } from './keys.js';
import { randomSerial } from './serial.js';

export interface RootOptions {
  readonly keyType?: KeyType;
  readonly validityYears?: number;
  readonly now?: Date;
  readonly organization?: string;
  readonly commonName?: string;
}

export interface GeneratedRoot {
  readonly certPem: string;
  readonly keyPem: string;
}

/** Backdating of notBefore for clock skew between the CA and the verifiers. */
export const CLOCK_SKEW_MS = 5 * 60_000;

export async function createRootCa(options: RootOptions = {}): Promise<GeneratedRoot> {
  const { x509 } = await import('./x509.js');
  const keys = await generateKeyPair(options.keyType ?? 'ec-p256');
  const now = options.now ?? new Date();
  const notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);
  const notAfter = new Date(now);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + (options.validityYears ?? 10));
  const ski = await x509.SubjectKeyIdentifierExtension.create(keys.publicKey);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ O: [options.organization ?? 'Trellis'] }, { CN: [options.commonName ?? 'Trellis Root CA'] }],
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: signingAlgorithm(keys.privateKey),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ski,
      new x509.AuthorityKeyIdentifierExtension(ski.keyId),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await exportPrivateKeyPem(keys.privateKey) };
}
