// CA key pairs: generation (ECDSA P-256 / P-384, RSA-2048) and PKCS#8 PEM import/export, all through
// WebCrypto so the same CryptoKey signs certificates.
import crypto from 'node:crypto';
import { pemBlocks, toPem } from './pem.js';
import {
  subtle,
  type CryptoKey,
  type CryptoKeyPair,
  type EcKeyAlgorithm,
  type ImportAlgorithm,
  type SigningAlgorithm,
} from './webcrypto.js';

export type KeyType = 'ec-p256' | 'ec-p384' | 'rsa-2048';
export const KEY_TYPES: readonly KeyType[] = ['ec-p256', 'ec-p384', 'rsa-2048'];

/** The WebCrypto algorithm (key generation/import and signing) of each key type. */
export function keyAlgorithm(type: KeyType): ImportAlgorithm {
  switch (type) {
    case 'ec-p256':
      return { name: 'ECDSA', namedCurve: 'P-256' };
    case 'ec-p384':
      return { name: 'ECDSA', namedCurve: 'P-384' };
    case 'rsa-2048':
      return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  }
}

/** The signature algorithm used with a key: ECDSA with SHA-256 (P-256) or SHA-384 (P-384), RSA PKCS#1 v1.5 SHA-256. */
export function signingAlgorithm(key: CryptoKey): SigningAlgorithm {
  const alg = key.algorithm as EcKeyAlgorithm;
  if (alg.name === 'ECDSA') {
    return {
      name: 'ECDSA',
      hash: alg.namedCurve === 'P-384' ? 'SHA-384' : 'SHA-256',
    };
  }
  return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
}

export async function generateKeyPair(type: KeyType): Promise<CryptoKeyPair> {
  const alg = keyAlgorithm(type);
  const params =
    alg.name === 'ECDSA' ? alg : { ...alg, modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) };
  return (await subtle.generateKey(params, true, ['sign', 'verify'])) as CryptoKeyPair;
}

/** The key type of a PKCS#8 private key, from its ASN.1 (via Node's KeyObject). */
export function keyTypeOf(pkcs8: crypto.KeyObject): KeyType {
  const details = pkcs8.asymmetricKeyDetails ?? {};
  if (pkcs8.asymmetricKeyType === 'ec') {
    if (details.namedCurve === 'prime256v1') return 'ec-p256';
    if (details.namedCurve === 'secp384r1') return 'ec-p384';
    throw new Error(`unsupported EC curve ${details.namedCurve ?? '(unknown)'} (P-256 or P-384)`);
  }
  if (pkcs8.asymmetricKeyType === 'rsa') {
    if ((details.modulusLength ?? 0) < 2048) throw new Error(`RSA key of ${details.modulusLength} bits (2048 or more)`);
    return 'rsa-2048';
  }
  throw new Error(`unsupported key type ${pkcs8.asymmetricKeyType ?? '(unknown)'} (EC P-256/P-384 or RSA)`);
}

export interface ImportedKey {
  readonly type: KeyType;
  readonly privateKey: CryptoKey;
  /** SubjectPublicKeyInfo (DER) of the matching public key. */
  readonly spki: Buffer;
}

/** Imports a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`); EC or RSA. */
export async function importPrivateKeyPem(pem: string): Promise<ImportedKey> {
  const block = pemBlocks(pem).find((b) => b.label === 'PRIVATE KEY');
  if (!block) {
    const other = pemBlocks(pem)[0]?.label;
    throw new Error(
      other
        ? `expected a PKCS#8 "PRIVATE KEY" PEM block, found "${other}" (convert with: openssl pkcs8 -topk8 -nocrypt)`
        : 'no PEM "PRIVATE KEY" block',
    );
  }
  const keyObject = crypto.createPrivateKey({ key: block.der, format: 'der', type: 'pkcs8' });
  const type = keyTypeOf(keyObject);
  const alg = keyAlgorithm(type);
  const privateKey = await subtle.importKey('pkcs8', block.der, alg, true, ['sign']);
  const spki = crypto.createPublicKey(keyObject).export({ type: 'spki', format: 'der' });
  return { type, privateKey, spki };
}

export async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  return toPem(await subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}
