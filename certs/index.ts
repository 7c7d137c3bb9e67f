// certs/: the Trellis CA as a library (no I/O policy). See README.md.
export {
  CertificateAuthority,
  DEFAULT_TTL_SECONDS,
  MAX_TTL_SECONDS,
  loadPluginCa,
  loadRootCa,
  nodeCertificates,
  type CaMaterial,
  type IssuedCertificate,
  type PemFile,
  type PluginCaFiles,
  type SignRequest,
} from './authority.js';
export { CsrRefusal, PluginCaError, type CsrRefusalReason } from './errors.js';
export { KEY_TYPES, generateKeyPair, importPrivateKeyPem, type KeyType } from './keys.js';
export { pemBlocks, toPem } from './pem.js';
export { CLOCK_SKEW_MS, createRootCa, type GeneratedRoot, type RootOptions } from './root.js';
export { DEFAULT_TRUST_DOMAIN, parseSpiffeId, spiffeId, type WorkloadIdentity } from './spiffe.js';
export { MemoryCertificateProvider, checkServerSpiffeId, uriSans, type TlsMaterial } from './certificate-provider.js';
export { createCsr, generateWorkloadKey, type WorkloadKey } from './request.js';
