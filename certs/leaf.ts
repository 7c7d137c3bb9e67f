// The DER of a workload certificate (X.509 v3 SVID), signed with WebCrypto (der.ts says why).
import { ecdsaRawToDer } from './csr.js';
import { subtle, type CryptoKey, type SigningAlgorithm } from './webcrypto.js';
import {
  bitString,
  children,
  expectTag,
  extension,
  NULL,
  oid,
  positiveInteger,
  readTlv,
  seq,
  time,
  tlv,
  whole,
} from './der.js';
import {
  OID_AKI,
  OID_BASIC_CONSTRAINTS,
  OID_CLIENT_AUTH,
  OID_EXT_KEY_USAGE,
  OID_KEY_USAGE,
  OID_SAN,
  OID_SERVER_AUTH,
} from './oids.js';

/** How the CA signs: the AlgorithmIdentifier written into certificates, and Node's hash name. */
export interface LeafSigner {
  readonly key: CryptoKey;
  /** WebCrypto parameters of the signature. */
  readonly algorithm: SigningAlgorithm;
  readonly ecdsa: boolean;
  readonly algorithmIdentifier: Buffer;
  /** The signer certificate's subject, exact DER (the leaves' issuer). */
  readonly issuer: Buffer;
  /** AuthorityKeyIdentifier extension, prebuilt from the signer's SKI. */
  readonly aki: Buffer;
}

/** Signature algorithm of a CA key: ECDSA with SHA-256 (P-256) or SHA-384 (P-384), or RSA PKCS#1 v1.5 SHA-256. */
export function leafSigner(key: CryptoKey, signerCertDer: Uint8Array, signerKeyId: Buffer): LeafSigner {
  const ecdsa = key.algorithm.name === 'ECDSA';
  const p384 = ecdsa && (key.algorithm as unknown as { namedCurve: string }).namedCurve === 'P-384';
  const algorithm: SigningAlgorithm = ecdsa
    ? { name: 'ECDSA', hash: p384 ? 'SHA-384' : 'SHA-256' }
    : { name: 'RSASSA-PKCS1-v1_5' };
  const algorithmIdentifier = ecdsa
    ? seq(oid(p384 ? '1.2.840.10045.4.3.3' : '1.2.840.10045.4.3.2'))
    : seq(oid('1.2.840.113549.1.1.11'), NULL);
  // Certificate → TBSCertificate → [version], serial, signature, issuer, validity, subject.
  const cert = readTlv(signerCertDer, 0);
  const tbs = children(signerCertDer, expectTag(children(signerCertDer, cert)[0], 0x30, 'TBSCertificate'));
  const offset = tbs[0]?.tag === 0xa0 ? 1 : 0;
  const subject = expectTag(tbs[offset + 4], 0x30, 'subject');
  const issuer = Buffer.from(whole(signerCertDer, subject));
  const aki = extension(OID_AKI, false, seq(tlv(0x80, signerKeyId)));
  return { key, algorithm, ecdsa, algorithmIdentifier, issuer, aki };
}

const VERSION_3 = Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]);
const EMPTY_NAME = Buffer.from([0x30, 0x00]);
// keyUsage (critical): digitalSignature (bit 0) → 03 02 07 80; + keyEncipherment (bit 2) → 03 02 05 a0.
const KU_EC = extension(OID_KEY_USAGE, true, bitString(Buffer.from([0x80]), 7));
const KU_RSA = extension(OID_KEY_USAGE, true, bitString(Buffer.from([0xa0]), 5));
const EKU = extension(OID_EXT_KEY_USAGE, false, seq(oid(OID_SERVER_AUTH), oid(OID_CLIENT_AUTH)));
// basicConstraints (critical), CA=false: the DEFAULT is omitted in DER, so an empty SEQUENCE.
const NOT_CA = extension(OID_BASIC_CONSTRAINTS, true, seq());

export interface LeafFields {
  readonly serial: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** SubjectPublicKeyInfo DER (from the CSR). */
  readonly spki: Buffer;
  readonly rsaKey: boolean;
  readonly uri: string;
}

/** Builds and signs the certificate (WebCrypto: on the thread pool); returns its DER. */
export async function signLeaf(signer: LeafSigner, f: LeafFields): Promise<Buffer> {
  const san = extension(OID_SAN, true, seq(tlv(0x86, Buffer.from(f.uri, 'latin1'))));
  const tbs = seq(
    VERSION_3,
    positiveInteger(f.serial),
    signer.algorithmIdentifier,
    signer.issuer,
    seq(time(f.notBefore), time(f.notAfter)),
    EMPTY_NAME,
    f.spki,
    tlv(0xa3, seq(f.rsaKey ? KU_RSA : KU_EC, EKU, NOT_CA, signer.aki, san)),
  );
  const raw = new Uint8Array(await subtle.sign(signer.algorithm, signer.key, tbs));
  const signature = signer.ecdsa ? ecdsaRawToDer(raw) : Buffer.from(raw);
  return seq(tbs, signer.algorithmIdentifier, bitString(signature));
}
