// Node's WebCrypto and its types, for the modules of certs/ that do not need @peculiar/x509 (keys and
// requests, which the agent loads): importing x509.ts would load that library and reflect-metadata.
import { webcrypto } from 'node:crypto';

export const subtle = webcrypto.subtle;
export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;
export type SigningAlgorithm = webcrypto.Algorithm | webcrypto.EcdsaParams;
export type ImportAlgorithm = webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams;
export type EcKeyAlgorithm = webcrypto.EcKeyAlgorithm;
