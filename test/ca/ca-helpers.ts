// Shared by test/certs/ and test/ca/: CSRs made the way the agent makes them (a key generated here with
// WebCrypto, a PKCS#10 request built with @peculiar/x509), a gRPC client for trellis.ca.v1, and a
// self-made root + intermediate for plug-in CA tests.
import * as grpc from '@grpc/grpc-js';
import { webcrypto } from 'node:crypto';
import tls from 'node:tls';
import {
  CertificateAuthority,
  MemoryCertificateProvider,
  checkServerSpiffeId,
  createCsr,
  createRootCa,
  generateWorkloadKey,
  loadRootCa,
  spiffeId as spiffeIdOf,
  type WorkloadIdentity,
  type WorkloadKey,
} from '../../certs/index.js';
import { x509 } from '../../certs/x509.js';
import { certificateServiceDefinition } from '../../control-plane/ca/service.js';
import type { CreateCertificateRequest, CreateCertificateResponse } from '../../api/services.js';

export type TestKeyType = 'ec-p256' | 'ec-p384' | 'rsa-2048' | 'rsa-1024';

export async function testKeys(type: TestKeyType = 'ec-p256'): Promise<webcrypto.CryptoKeyPair> {
  const params =
    type === 'ec-p256' || type === 'ec-p384'
      ? { name: 'ECDSA', namedCurve: type === 'ec-p256' ? 'P-256' : 'P-384' }
      : {
          name: 'RSASSA-PKCS1-v1_5',
          hash: 'SHA-256',
          modulusLength: type === 'rsa-2048' ? 2048 : 1024,
          publicExponent: new Uint8Array([1, 0, 1]),
        };
  return (await webcrypto.subtle.generateKey(params, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
}

function algOf(keys: webcrypto.CryptoKeyPair): { name: string; hash: string } {
  return keys.privateKey.algorithm.name === 'ECDSA'
    ? {
        name: 'ECDSA',
        hash: (keys.privateKey.algorithm as webcrypto.EcKeyAlgorithm).namedCurve === 'P-384' ? 'SHA-384' : 'SHA-256',
      }
    : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
}

export interface CsrOptions {
  readonly sans?: x509.JsonGeneralNames;
  readonly ca?: boolean;
  readonly keys?: webcrypto.CryptoKeyPair;
  readonly subject?: string;
  /** Flip the last byte of the signature (still parseable, no longer valid). */
  readonly badSignature?: boolean;
}

/** A PEM CSR for `uri` (one URI SAN), or for whatever `options.sans` says. */
export async function makeCsr(uri: string | undefined, options: CsrOptions = {}): Promise<string> {
  const keys = options.keys ?? (await testKeys());
  const sans = options.sans ?? (uri ? [{ type: 'url' as const, value: uri }] : []);
  const extensions: x509.Extension[] = [];
  if (sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sans));
  if (options.ca) extensions.push(new x509.BasicConstraintsExtension(true, undefined, true));
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    ...(options.subject ? { name: options.subject } : {}),
    keys: keys as unknown as CryptoKeyPairLike,
    signingAlgorithm: algOf(keys),
    extensions,
  });
  if (!options.badSignature) return csr.toString('pem');
  const der = Buffer.from(csr.rawData);
  der[der.length - 1] = der[der.length - 1]! ^ 0x01;
  return new x509.Pkcs10CertificateRequest(der).toString('pem');
}

type CryptoKeyPairLike = Parameters<typeof x509.Pkcs10CertificateRequestGenerator.create>[0]['keys'];

export interface TestCaPems {
  readonly rootCertPem: string;
  readonly rootKeyPem: string;
  readonly caCertPem: string;
  readonly caKeyPem: string;
}

async function pkcs8Pem(key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY') + '\n';
}

/** A root and an intermediate under it, made here (not by certs/), like an operator's own PKI. */
export async function makeRootAndIntermediate(
  options: { rootKey?: TestKeyType; caKey?: TestKeyType; intermediateIsCa?: boolean; name?: string } = {},
): Promise<TestCaPems> {
  const rootKeys = await testKeys(options.rootKey ?? 'ec-p256');
  const caKeys = await testKeys(options.caKey ?? 'ec-p256');
  const name = options.name ?? 'Example Corp';
  const notBefore = new Date(Date.now() - 3600_000);
  const notAfter = new Date(Date.now() + 365 * 86400_000);
  const rootSki = await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey as never);
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${name} Root, O=${name}`,
    notBefore,
    notAfter,
    keys: rootKeys as unknown as CryptoKeyPairLike,
    signingAlgorithm: algOf(rootKeys),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      rootSki,
    ],
  });
  const ca = await x509.X509CertificateGenerator.create({
    subject: `CN=${name} Intermediate, O=${name}`,
    issuer: root.subjectName,
    notBefore,
    notAfter,
    publicKey: caKeys.publicKey as never,
    signingKey: rootKeys.privateKey as never,
    signingAlgorithm: algOf(rootKeys),
    extensions: [
      new x509.BasicConstraintsExtension(options.intermediateIsCa ?? true, 0, true),
      new x509.KeyUsagesExtension(
        (options.intermediateIsCa ?? true)
          ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign
          : x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey as never),
      new x509.AuthorityKeyIdentifierExtension(rootSki.keyId),
    ],
  });
  return {
    rootCertPem: root.toString('pem') + '\n',
    rootKeyPem: await pkcs8Pem(rootKeys.privateKey),
    caCertPem: ca.toString('pem') + '\n',
    caKeyPem: await pkcs8Pem(caKeys.privateKey),
  };
}

/** A grpc-js client for trellis.ca.v1.CertificateService. */
export class CaClient {
  private readonly client: grpc.Client;

  /** Plaintext unless `credentials` says otherwise (the TLS port: tlsCredentials()). */
  constructor(
    target: string,
    credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
    options: grpc.ChannelOptions = {},
  ) {
    this.client = new grpc.Client(target, credentials, options);
  }

  createCertificate(csr: string, options: { token?: string; validitySeconds?: number } = {}): Promise<string[]> {
    const metadata = new grpc.Metadata();
    if (options.token !== undefined) metadata.set('authorization', `Bearer ${options.token}`);
    const def = certificateServiceDefinition.CreateCertificate;
    const request: CreateCertificateRequest = { csr, validitySeconds: BigInt(options.validitySeconds ?? 0) };
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        request,
        metadata,
        { deadline: Date.now() + 30_000 },
        (err: grpc.ServiceError | null, res?: CreateCertificateResponse) =>
          err ? reject(err) : resolve(res!.certChain),
      );
    });
  }

  close(): void {
    this.client.close();
  }
}

/** The error a call failed with; throws if it succeeded. */
export async function grpcError(p: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error('the call succeeded');
}

/** The control plane's own SPIFFE ID (trellisd), which its TLS port presents. */
export const CONTROL_PLANE_ID = 'spiffe://cluster.local/ns/trellis-system/sa/trellisd';

/** A workload's TLS material: what the agent holds after CreateCertificate. */
export interface WorkloadCert {
  /** PEM, leaf first, root last (as the CA returns it). */
  readonly chain: readonly string[];
  readonly keyPem: string;
}

/**
 * Channel options for the TLS port: the name a workload dials in a cluster as SNI (Node warns about an IP
 * address there). The server is verified by its SPIFFE ID whatever the name.
 */
export const TLS_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.ssl_target_name_override': 'trellisd.trellis-system.svc',
};

/**
 * Channel credentials for the control plane's TLS port: the server must verify against `rootPem` and
 * carry `serverId` as its URI SAN (not a host name); `cert`, when given, is presented as the client
 * certificate (through MemoryCertificateProvider, as the agent does).
 */
export function tlsCredentials(rootPem: string, serverId: string, cert?: WorkloadCert): grpc.ChannelCredentials {
  if (!cert) {
    return grpc.credentials.createSsl(Buffer.from(rootPem), null, null, {
      checkServerIdentity: checkServerSpiffeId(serverId),
    });
  }
  return new MemoryCertificateProvider({
    certChainPem: cert.chain.join(''),
    privateKeyPem: cert.keyPem,
    trustBundlePem: rootPem,
  }).channelCredentials(serverId);
}

/** A CA client on the TLS port `target`, checking the server as `serverId` under `rootPem`, presenting `cert` when given. */
export function tlsCaClient(
  target: string,
  rootPem: string,
  cert?: WorkloadCert,
  serverId = CONTROL_PLANE_ID,
): CaClient {
  return new CaClient(target, tlsCredentials(rootPem, serverId, cert), TLS_CHANNEL_OPTIONS);
}

/** A key made here and a CSR for `spiffeId` (generateWorkloadKey + createCsr, as the agent makes them). */
export async function workloadCsr(spiffeId: string): Promise<{ key: WorkloadKey; csr: string }> {
  const key = await generateWorkloadKey();
  return { key, csr: await createCsr(key, spiffeId) };
}

/** A certificate for `spiffeId` from `client` (a token, or none to use the channel's certificate). */
export async function obtainCert(
  client: CaClient,
  spiffeId: string,
  options: { token?: string; validitySeconds?: number } = {},
): Promise<WorkloadCert> {
  const { key, csr } = await workloadCsr(spiffeId);
  return { chain: await client.createCertificate(csr, options), keyPem: key.privateKeyPem };
}

/** A certificate signed directly by `authority` (another CA, a past `now` for an expired one, …). */
export async function signedBy(
  authority: CertificateAuthority,
  identity: WorkloadIdentity,
  options: { ttlSeconds?: number; now?: Date } = {},
): Promise<WorkloadCert> {
  const { key, csr } = await workloadCsr(spiffeIdOf(identity));
  const issued = await authority.sign({ csr, identity, ...options });
  return { chain: issued.chain, keyPem: key.privateKeyPem };
}

/**
 * A CA of its own (a fresh self-signed root, certs/ only): for certificates the control plane must not
 * trust, or a CA without a control plane.
 */
export async function foreignAuthority(trustDomain = 'cluster.local'): Promise<CertificateAuthority> {
  const root = await createRootCa();
  return CertificateAuthority.create(await loadRootCa(root.certPem, root.keyPem), trustDomain);
}

/** The peer certificate of one fresh TLS handshake with `port` (no client certificate), checked by `serverId`. */
export function handshakeCertificate(port: number, rootPem: string, serverId: string): Promise<tls.PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'trellisd.trellis-system.svc',
      ca: rootPem,
      ALPNProtocols: ['h2'],
      checkServerIdentity: checkServerSpiffeId(serverId),
    });
    socket.once('secureConnect', () => {
      const cert = socket.getPeerCertificate(true);
      socket.destroy();
      resolve(cert);
    });
    socket.once('error', reject);
  });
}
