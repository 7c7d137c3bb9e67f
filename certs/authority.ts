// The certificate authority: a signing certificate and key, the chain above it, and the trust bundle.
// It signs workload certificates (X.509 SVIDs) from PKCS#10 CSRs for an identity the caller has already
// authenticated; it never takes the identity from the CSR (design.md §5.1).
import crypto from 'node:crypto';
import { CsrRefusal, PluginCaError } from './errors.js';
import { importPrivateKeyPem, type KeyType } from './keys.js';
import { checkCsr } from './csr.js';
import { leafSigner, signLeaf, type LeafSigner } from './leaf.js';
import { pemBlocks, toPem } from './pem.js';
import { CLOCK_SKEW_MS } from './root.js';
import { randomSerial } from './serial.js';
import { spiffeId, type WorkloadIdentity } from './spiffe.js';
import { Certificate } from './certificate.js';
import type { CryptoKey } from './webcrypto.js';

export const DEFAULT_TTL_SECONDS = 24 * 3600;
export const MAX_TTL_SECONDS = 7 * 24 * 3600;

export interface SignRequest {
  /** PEM PKCS#10 certificate request. */
  readonly csr: string;
  /** The authenticated identity: the only SPIFFE ID the certificate may carry. */
  readonly identity: WorkloadIdentity;
  /** Requested lifetime; <= 0 or absent means the default (24 h); more than the maximum (7 days) is clamped. */
  readonly ttlSeconds?: number;
  readonly now?: Date;
}

export interface IssuedCertificate {
  readonly spiffeId: string;
  /** The leaf, PEM. */
  readonly certificate: string;
  /** PEM: the leaf, the intermediates, the root last. */
  readonly chain: readonly string[];
  /** Hex, as in the certificate. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The lifetime granted, seconds from now (after clamping). */
  readonly ttlSeconds: number;
}

/** What a CA is made of; from createRootCa() + loadCa(), or a plug-in CA (loadPluginCa()). */
export interface CaMaterial {
  /** The certificate that signs workload certificates (the root itself, or an intermediate). */
  readonly signer: Certificate;
  readonly signerKey: CryptoKey;
  readonly signerKeyType: KeyType;
  /** Certificates between the signer and the root, the signer's issuer first (empty when the signer is a root). */
  readonly intermediates: readonly Certificate[];
  /** The root the chain ends at. */
  readonly root: Certificate;
  /** Every trusted root (the trust bundle); contains `root`; more than one during a rotation. */
  readonly roots: readonly Certificate[];
}

function certs(file: string, pem: string): Certificate[] {
  const blocks = pemBlocks(pem).filter((b) => b.label === 'CERTIFICATE');
  const out: Certificate[] = [];
  for (const [i, b] of blocks.entries()) {
    try {
      out.push(new Certificate(b.der));
    } catch (err) {
      throw new PluginCaError(file, `certificate #${i + 1} does not parse: ${(err as Error).message}`);
    }
  }
  return out;
}

function checkValidity(file: string, cert: Certificate, now: Date, what: string): void {
  if (now < cert.notBefore)
    throw new PluginCaError(file, `${what} is not valid before ${cert.notBefore.toISOString()}`);
  if (now > cert.notAfter) throw new PluginCaError(file, `${what} expired on ${cert.notAfter.toISOString()}`);
}

export interface PemFile {
  /** The file's name or path, used in errors. */
  readonly file: string;
  readonly pem: string;
}

/** The four files of a plug-in CA (Istio's `cacerts` layout). */
export interface PluginCaFiles {
  /** `ca-cert.pem`: the signing certificate (an intermediate, or the root itself). */
  readonly caCert: PemFile;
  /** `ca-key.pem`: its PKCS#8 private key (EC or RSA). */
  readonly caKey: PemFile;
  /** `root-cert.pem`: the root (or roots, during a rotation). */
  readonly rootCert: PemFile;
  /** `cert-chain.pem`: the chain from ca-cert up to the root (ca-cert and the root may be included). Optional when ca-cert is the root or is signed by it directly. */
  readonly certChain?: PemFile;
}

/**
 * Loads and checks a plug-in CA: the key matches ca-cert, ca-cert is a CA, and ca-cert → chain → a root
 * verifies (signatures, names, validity now). Every error is a PluginCaError naming the file.
 */
export async function loadPluginCa(files: PluginCaFiles, now = new Date()): Promise<CaMaterial> {
  const [signer, ...extra] = certs(files.caCert.file, files.caCert.pem);
  if (!signer) throw new PluginCaError(files.caCert.file, 'no PEM CERTIFICATE block');
  if (extra.length > 0)
    throw new PluginCaError(files.caCert.file, 'holds more than one certificate (put the chain into cert-chain.pem)');
  if (!signer.isCa) {
    throw new PluginCaError(
      files.caCert.file,
      'is not a CA certificate (needs basicConstraints CA=true and keyUsage keyCertSign)',
    );
  }
  checkValidity(files.caCert.file, signer, now, 'the CA certificate');

  let key;
  try {
    key = await importPrivateKeyPem(files.caKey.pem);
  } catch (err) {
    throw new PluginCaError(files.caKey.file, (err as Error).message);
  }
  if (!key.spki.equals(signer.spki)) {
    throw new PluginCaError(files.caKey.file, `the private key does not match the certificate in ${files.caCert.file}`);
  }

  const roots = certs(files.rootCert.file, files.rootCert.pem);
  if (roots.length === 0) throw new PluginCaError(files.rootCert.file, 'no PEM CERTIFICATE block');
  for (const [i, root] of roots.entries()) {
    const what = roots.length > 1 ? `root #${i + 1} (${root.subject})` : `the root (${root.subject})`;
    if (!root.isCa) throw new PluginCaError(files.rootCert.file, `${what} is not a CA certificate`);
    if (!root.signedBy(root)) throw new PluginCaError(files.rootCert.file, `${what} is not self-signed`);
    checkValidity(files.rootCert.file, root, now, what);
  }

  // The chain: drop ca-cert at its head and roots at its tail; what is left are the intermediates.
  const chainFile = files.certChain?.file ?? 'cert-chain.pem';
  let chain = files.certChain ? certs(files.certChain.file, files.certChain.pem) : [];
  if (chain[0]?.equals(signer)) chain = chain.slice(1);
  while (chain.length > 0 && roots.some((r) => r.equals(chain[chain.length - 1]!))) chain = chain.slice(0, -1);

  const signerIsRoot = roots.find((r) => r.equals(signer));
  if (signerIsRoot) {
    return { signer, signerKey: key.privateKey, signerKeyType: key.type, intermediates: [], root: signerIsRoot, roots };
  }
  let below = signer;
  let belowName = files.caCert.file;
  for (const [i, cert] of chain.entries()) {
    if (!cert.isCa)
      throw new PluginCaError(chainFile, `certificate #${i + 1} (${cert.subject}) is not a CA certificate`);
    checkValidity(chainFile, cert, now, `certificate #${i + 1} (${cert.subject})`);
    if (!below.signedBy(cert)) {
      throw new PluginCaError(
        chainFile,
        `certificate #${i + 1} (${cert.subject}) did not sign ${belowName} (${below.subject})`,
      );
    }
    below = cert;
    belowName = `certificate #${i + 1}`;
  }
  let root: Certificate | undefined;
  for (const r of roots) if (below.signedBy(r)) root = r;
  if (!root) {
    throw new PluginCaError(
      files.certChain ? chainFile : files.caCert.file,
      `the chain does not verify to ${files.rootCert.file}: ${below.subject} (issuer ${below.issuer}) is not signed by any root there` +
        (files.certChain ? '' : '; give the intermediates in cert-chain.pem'),
    );
  }
  return { signer, signerKey: key.privateKey, signerKeyType: key.type, intermediates: chain, root, roots };
}

/** A CA whose root is its signer: the built-in self-signed root (root-cert.pem + root-key.pem). */
export async function loadRootCa(
  certPem: string,
  keyPem: string,
  extraRoots: readonly string[] = [],
): Promise<CaMaterial> {
  const material = await loadPluginCa({
    caCert: { file: 'root-cert.pem', pem: certPem },
    caKey: { file: 'root-key.pem', pem: keyPem },
    rootCert: { file: 'root-cert.pem', pem: [certPem, ...extraRoots].join('\n') },
  });
  return material;
}

export class CertificateAuthority {
  private readonly chainTail: readonly string[];
  private readonly bundle: string;

  private constructor(
    readonly material: CaMaterial,
    readonly trustDomain: string,
    private readonly leafSigner: LeafSigner,
  ) {
    this.chainTail = material.signer.equals(material.root)
      ? [material.root.toPem()]
      : [material.signer, ...material.intermediates, material.root].map((c) => c.toPem());
    this.bundle = material.roots.map((c) => c.toPem()).join('');
  }

  static create(material: CaMaterial, trustDomain: string): CertificateAuthority {
    return new CertificateAuthority(
      material,
      trustDomain,
      leafSigner(material.signerKey, material.signer.raw, material.signer.keyId()),
    );
  }

  /** The roots, PEM, concatenated: what verifiers trust (`ROOTCA`). */
  trustBundle(): string {
    return this.bundle;
  }

  /** The certificates after a leaf in a response: the intermediates (signer first), the root last. */
  chainAboveLeaf(): readonly string[] {
    return this.chainTail;
  }

  /** The lifetime a request gets: the default for <= 0 or absent, at most MAX_TTL_SECONDS. */
  static grantedTtl(requestedSeconds: number | undefined): number {
    if (requestedSeconds === undefined || !Number.isFinite(requestedSeconds) || requestedSeconds <= 0)
      return DEFAULT_TTL_SECONDS;
    return Math.min(Math.floor(requestedSeconds), MAX_TTL_SECONDS);
  }

  /**
   * Checks the CSR and signs an SVID for `identity`. Throws CsrRefusal (with its reason) when the CSR
   * does not parse, its signature does not verify, its key is not accepted, it asks for a CA, or its SANs
   * are not exactly the identity's SPIFFE ID as one URI.
   */
  async sign(request: SignRequest): Promise<IssuedCertificate> {
    const id = spiffeId({ ...request.identity, trustDomain: request.identity.trustDomain || this.trustDomain });
    const csr = await checkCsr(request.csr);
    if (csr.caRequested)
      throw new CsrRefusal('ca-request', 'the CSR asks for a CA certificate (basicConstraints CA=true)');
    const sans = csr.sans;
    if (sans.length === 0)
      throw new CsrRefusal('missing-san', `the CSR has no subjectAltName; it must ask for exactly ${id}`);
    if (sans.length > 1 || sans[0]!.kind !== 'URI') {
      const list = sans.map((n) => `${n.kind}:${n.value}`).join(', ');
      throw new CsrRefusal('extra-san', `the CSR asks for ${list}; only one URI SAN, ${id}, is allowed`);
    }
    if (sans[0]!.value !== id) {
      throw new CsrRefusal('foreign-san', `the CSR asks for ${sans[0]!.value} but the caller is ${id}`);
    }

    const nowMs = Math.floor((request.now ?? new Date()).getTime() / 1000) * 1000;
    const ttlSeconds = CertificateAuthority.grantedTtl(request.ttlSeconds);
    const notBefore = new Date(nowMs - CLOCK_SKEW_MS);
    let notAfter = new Date(nowMs + ttlSeconds * 1000);
    const signerEnd = Math.floor(this.material.signer.notAfter.getTime() / 1000) * 1000;
    if (notAfter.getTime() > signerEnd) notAfter = new Date(signerEnd);
    const serial = randomSerial();
    const der = await signLeaf(this.leafSigner, {
      serial: Buffer.from(serial, 'hex'),
      notBefore,
      notAfter,
      spki: csr.spki,
      rsaKey: csr.keyType === 'rsa',
      uri: id,
    });
    const certificate = toPem(der, 'CERTIFICATE');
    return {
      spiffeId: id,
      certificate,
      chain: [certificate, ...this.chainTail],
      serial,
      notBefore,
      notAfter,
      ttlSeconds: Math.round((notAfter.getTime() - nowMs) / 1000),
    };
  }
}

/** Node's X509Certificate list for a PEM chain (convenient for callers that verify with Node). */
export function nodeCertificates(pems: readonly string[]): crypto.X509Certificate[] {
  return pems.map((p) => new crypto.X509Certificate(p));
}
