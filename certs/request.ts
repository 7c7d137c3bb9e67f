// The workload side of issuance: a key pair made where the workload runs (it never leaves) and a PKCS#10
// request for exactly one URI SAN, the SPIFFE ID the caller will prove. Written with der.ts and Node's
// WebCrypto, without @peculiar/x509, so that the agent, which makes one request per renewal, loads no
// certificate library.
import { bitString, extension, NULL, oid, positiveInteger, seq, tlv } from './der.js';
import { exportPrivateKeyPem, generateKeyPair, signingAlgorithm, type KeyType } from './keys.js';
import { toPem } from './pem.js';
import { subtle, type CryptoKeyPair, type EcKeyAlgorithm } from './webcrypto.js';
import { OID_ECDSA_SHA256, OID_ECDSA_SHA384, OID_EXTENSION_REQUEST, OID_RSA_SHA256, OID_SAN } from './oids.js';

export interface WorkloadKey {
  readonly keys: CryptoKeyPair;
  /** PKCS#8 PEM of the private key (what cert files and SDS hand to the local proxy or application). */
  readonly privateKeyPem: string;
}

/** A fresh key pair, ECDSA P-256 unless told otherwise. */
export async function generateWorkloadKey(type: KeyType = 'ec-p256'): Promise<WorkloadKey> {
  const keys = await generateKeyPair(type);
  return { keys, privateKeyPem: await exportPrivateKeyPem(keys.privateKey) };
}

/** GeneralName uniformResourceIdentifier: [6] IMPLICIT IA5String. */
const TAG_URI = 0x86;

/** A PEM CSR signed by `key`, with `spiffeId` as its only subjectAltName and no subject. */
export async function createCsr(key: WorkloadKey, spiffeId: string): Promise<string> {
  const { privateKey, publicKey } = key.keys;
  const spki = Buffer.from(await subtle.exportKey('spki', publicKey));
  const san = extension(OID_SAN, false, seq(tlv(TAG_URI, Buffer.from(spiffeId, 'ascii'))));
  // CertificationRequestInfo: version 0, an empty subject, the key, [0] attributes {extensionRequest}.
  const info = seq(
    tlv(0x02, Buffer.from([0])),
    seq(),
    spki,
    tlv(0xa0, seq(oid(OID_EXTENSION_REQUEST), tlv(0x31, seq(san)))),
  );
  const raw = new Uint8Array(await subtle.sign(signingAlgorithm(privateKey), privateKey, info));
  let algorithmIdentifier: Buffer;
  let signature: Buffer;
  if (privateKey.algorithm.name === 'ECDSA') {
    const p384 = (privateKey.algorithm as EcKeyAlgorithm).namedCurve === 'P-384';
    algorithmIdentifier = seq(oid(p384 ? OID_ECDSA_SHA384 : OID_ECDSA_SHA256));
    // WebCrypto signs r || s; X.509 wants SEQUENCE { INTEGER r, INTEGER s }.
    const half = raw.length / 2;
    signature = seq(positiveInteger(raw.subarray(0, half)), positiveInteger(raw.subarray(half)));
  } else {
    algorithmIdentifier = seq(oid(OID_RSA_SHA256), NULL);
    signature = Buffer.from(raw);
  }
  return toPem(seq(info, algorithmIdentifier, bitString(signature)), 'CERTIFICATE REQUEST');
}
