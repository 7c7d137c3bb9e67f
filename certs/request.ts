// The workload side of issuance: a key pair made where the workload runs (it never leaves) and a PKCS#10
// request for exactly one URI SAN, the SPIFFE ID the caller will prove. Built with @peculiar/x509: an
// agent makes one request per renewal, so the library's speed is no concern here (unlike signing).
import { exportPrivateKeyPem, generateKeyPair, signingAlgorithm, type KeyType } from './keys.js';
import { x509, type CryptoKeyPair } from './x509.js';

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

type GeneratorKeys = Parameters<typeof x509.Pkcs10CertificateRequestGenerator.create>[0]['keys'];

/** A PEM CSR signed by `key`, with `spiffeId` as its only subjectAltName and no subject. */
export async function createCsr(key: WorkloadKey, spiffeId: string): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys: key.keys as unknown as GeneratorKeys,
    signingAlgorithm: signingAlgorithm(key.keys.privateKey),
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }])],
  });
  return csr.toString('pem');
}
