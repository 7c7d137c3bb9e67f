// TLS serving certificates with DNS names (and IP addresses): what the API server checks when it calls the
// admission webhooks at `trellisd.trellis-system.svc`. Signed by the same CA as the SVIDs, so the webhook
// configurations' caBundle is the mesh trust bundle. Unlike an SVID (leaf.ts) there is no SPIFFE ID: the
// subject is CN=<first DNS name>, the SANs are the DNS names and IPs, and extKeyUsage is serverAuth only.
// The key is made here, in the process that serves with it.
import crypto from 'node:crypto';
import net from 'node:net';
import type { CertificateAuthority } from './authority.js';
import { bitString, extension, oid, positiveInteger, seq, time, tlv } from './der.js';
import { ecdsaRawToDer } from './csr.js';
import { leafSigner } from './leaf.js';
import { toPem } from './pem.js';
import { generateWorkloadKey } from './request.js';
import { CLOCK_SKEW_MS } from './root.js';
import { randomSerial } from './serial.js';
import { subjectPublicKeyBits } from './certificate.js';
import { subtle } from './webcrypto.js';
import {
  OID_BASIC_CONSTRAINTS,
  OID_COMMON_NAME,
  OID_EXT_KEY_USAGE,
  OID_KEY_USAGE,
  OID_SAN,
  OID_SERVER_AUTH,
  OID_SKI,
} from './oids.js';

export interface ServingCertificateRequest {
  /** DNS SANs; the first is also the subject's CN. At least one. */
  readonly dnsNames: readonly string[];
  /** IP SANs (IPv4 or IPv6), e.g. 127.0.0.1 for a server called by URL on loopback. */
  readonly ipAddresses?: readonly string[];
  /** Lifetime; default 24 h, never past the signing certificate's notAfter. */
  readonly ttlSeconds?: number;
  readonly now?: Date;
}

export interface ServingCertificate {
  /** PEM: the leaf, the intermediates, the root last (what a TLS server sends, root included, like the SVIDs). */
  readonly chain: readonly string[];
  readonly certificate: string;
  /** PKCS#8 PEM of the key made for it. */
  readonly privateKeyPem: string;
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
}

const DNS_NAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

function ipBytes(ip: string): Buffer {
  if (net.isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (!net.isIPv6(ip)) throw new Error(`serving certificate: ipAddresses: "${ip}" is not an IP address`);
  const [head = '', tail = ''] = ip.split('::');
  const groups = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const h = groups(head);
  const t = ip.includes('::') ? groups(tail) : [];
  const all = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.concat(all.map((g) => Buffer.from(g.padStart(4, '0'), 'hex')));
}

/** Issues a serving certificate (a new ECDSA P-256 key) from `authority` for the names asked. */
export async function issueServingCertificate(
  authority: CertificateAuthority,
  request: ServingCertificateRequest,
): Promise<ServingCertificate> {
  const dnsNames = [...request.dnsNames];
  const ipAddresses = [...(request.ipAddresses ?? [])];
  if (dnsNames.length === 0) throw new Error('serving certificate: dnsNames: at least one DNS name is needed');
  for (const name of dnsNames) {
    if (!DNS_NAME.test(name)) throw new Error(`serving certificate: dnsNames: "${name}" is not a DNS name`);
  }
  const { signer, signerKey } = authority.material;
  const ls = leafSigner(signerKey, signer.raw, signer.keyId());

  const key = await generateWorkloadKey();
  const spki = Buffer.from(await subtle.exportKey('spki', key.keys.publicKey));
  const nowMs = Math.floor((request.now ?? new Date()).getTime() / 1000) * 1000;
  const ttl = request.ttlSeconds !== undefined && request.ttlSeconds > 0 ? Math.floor(request.ttlSeconds) : 24 * 3600;
  const notBefore = new Date(nowMs - CLOCK_SKEW_MS);
  const signerEnd = Math.floor(signer.notAfter.getTime() / 1000) * 1000;
  const notAfter = new Date(Math.min(nowMs + ttl * 1000, signerEnd));
  const serial = randomSerial();

  const subject = seq(tlv(0x31, seq(oid(OID_COMMON_NAME), tlv(0x0c, Buffer.from(dnsNames[0]!, 'utf8')))));
  const san = seq(
    ...dnsNames.map((n) => tlv(0x82, Buffer.from(n, 'latin1'))),
    ...ipAddresses.map((ip) => tlv(0x87, ipBytes(ip))),
  );
  const subjectKeyId = crypto.createHash('sha1').update(subjectPublicKeyBits(spki)).digest();
  const extensions = seq(
    extension(OID_KEY_USAGE, true, bitString(Buffer.from([0x80]), 7)), // digitalSignature
    extension(OID_EXT_KEY_USAGE, false, seq(oid(OID_SERVER_AUTH))),
    extension(OID_BASIC_CONSTRAINTS, true, seq()),
    extension(OID_SKI, false, tlv(0x04, subjectKeyId)),
    ls.aki,
    extension(OID_SAN, false, san),
  );
  const tbs = seq(
    Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]),
    positiveInteger(Buffer.from(serial, 'hex')),
    ls.algorithmIdentifier,
    ls.issuer,
    seq(time(notBefore), time(notAfter)),
    subject,
    spki,
    tlv(0xa3, extensions),
  );
  const raw = new Uint8Array(await subtle.sign(ls.algorithm, ls.key, tbs));
  const signature = ls.ecdsa ? ecdsaRawToDer(raw) : Buffer.from(raw);
  const certificate = toPem(seq(tbs, ls.algorithmIdentifier, bitString(signature)), 'CERTIFICATE');
  return {
    chain: [certificate, ...authority.chainAboveLeaf()],
    certificate,
    privateKeyPem: key.privateKeyPem,
    serial,
    notBefore,
    notAfter,
    dnsNames,
    ipAddresses,
  };
}
