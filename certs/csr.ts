// PKCS#10 request checks for the signing path: parse (der.ts), verify the self-signature with Node's
// WebCrypto (on the thread pool), read the extension request (subjectAltName, basicConstraints).
import {
  children,
  DerError,
  expectTag,
  oidText,
  positiveInteger,
  readTlv,
  seq,
  value,
  whole,
  type Tlv,
} from './der.js';
import { CsrRefusal } from './errors.js';
import { pemBlocks } from './pem.js';
import { subtle, type CryptoKey } from './webcrypto.js';
import { OID_BASIC_CONSTRAINTS, OID_EXTENSION_REQUEST, OID_SAN } from './oids.js';

const SIGNATURE_HASH: Readonly<Record<string, { hash: string; key: 'ec' | 'rsa' }>> = {
  '1.2.840.10045.4.3.2': { hash: 'SHA-256', key: 'ec' },
  '1.2.840.10045.4.3.3': { hash: 'SHA-384', key: 'ec' },
  '1.2.840.10045.4.3.4': { hash: 'SHA-512', key: 'ec' },
  '1.2.840.113549.1.1.11': { hash: 'SHA-256', key: 'rsa' },
  '1.2.840.113549.1.1.12': { hash: 'SHA-384', key: 'rsa' },
  '1.2.840.113549.1.1.13': { hash: 'SHA-512', key: 'rsa' },
};

const CURVES: Readonly<Record<string, string>> = {
  '1.2.840.10045.3.1.7': 'P-256',
  '1.3.132.0.34': 'P-384',
  '1.3.132.0.35': 'P-521',
};

type SpkiKey =
  | { readonly kind: 'ec'; readonly curve: string; readonly point: Buffer }
  | { readonly kind: 'rsa'; readonly bits: number }
  | { readonly kind: 'other'; readonly oid: string }
  | { readonly kind: 'malformed'; readonly detail: string };

/** The key type and size of a SubjectPublicKeyInfo, read from its DER (cheaper than importing it). */
export function spkiKey(spki: Buffer): SpkiKey {
  try {
    const outer = readTlv(spki, 0);
    const [algTlv, keyTlv] = children(spki, expectTag(outer, 0x30, 'SubjectPublicKeyInfo'));
    const [algOid, params] = children(spki, expectTag(algTlv, 0x30, 'AlgorithmIdentifier'));
    const oid = oidText(value(spki, expectTag(algOid, 0x06, 'OID')));
    const bits = value(spki, expectTag(keyTlv, 0x03, 'subjectPublicKey'));
    if (oid === '1.2.840.10045.2.1') {
      const curveOid = oidText(value(spki, expectTag(params, 0x06, 'namedCurve')));
      if (bits[0] !== 0) throw new DerError('subjectPublicKey has unused bits');
      return { kind: 'ec', curve: CURVES[curveOid] ?? curveOid, point: bits.subarray(1) };
    }
    if (oid === '1.2.840.113549.1.1.1') {
      const rsa = bits.subarray(1);
      const [n] = children(rsa, expectTag(readTlv(rsa, 0), 0x30, 'RSAPublicKey'));
      const modulus = value(rsa, expectTag(n, 0x02, 'modulus'));
      let i = 0;
      while (i < modulus.length && modulus[i] === 0) i++;
      const top = modulus[i] ?? 0;
      return { kind: 'rsa', bits: (modulus.length - i) * 8 - (top ? Math.clz32(top) - 24 : 8) };
    }
    return { kind: 'other', oid };
  } catch (err) {
    return { kind: 'malformed', detail: (err as Error).message };
  }
}

/** An ECDSA signature from DER (SEQUENCE of two INTEGERs) to WebCrypto's r||s, each `size` bytes. */
export function ecdsaDerToRaw(der: Uint8Array, size: number): Uint8Array {
  const [r, s] = children(der, expectTag(readTlv(der, 0), 0x30, 'ECDSA-Sig-Value'));
  const out = new Uint8Array(2 * size);
  for (const [i, t] of [r, s].entries()) {
    let v = value(der, expectTag(t, 0x02, 'INTEGER'));
    while (v.length > size && v[0] === 0) v = v.subarray(1);
    if (v.length > size) throw new DerError('ECDSA integer too long');
    out.set(v, (i + 1) * size - v.length);
  }
  return out;
}

/** WebCrypto's r||s to a DER ECDSA signature. */
export function ecdsaRawToDer(raw: Uint8Array): Buffer {
  const half = raw.length / 2;
  return seq(positiveInteger(raw.subarray(0, half)), positiveInteger(raw.subarray(half)));
}

/** A subjectAltName entry as requested: its kind and its text. */
export interface RequestedName {
  readonly kind: 'URI' | 'DNS' | 'IP' | 'email' | 'dirName' | 'otherName' | 'registeredID' | string;
  readonly value: string;
}

export interface CheckedCsr {
  /** SubjectPublicKeyInfo, DER, as in the request. */
  readonly spki: Buffer;
  readonly keyType: 'ec' | 'rsa';
  readonly sans: readonly RequestedName[];
  readonly caRequested: boolean;
}

function nameOf(buf: Buffer, t: Tlv): RequestedName {
  const v = value(buf, t);
  switch (t.tag) {
    case 0x86:
      return { kind: 'URI', value: v.toString('latin1') };
    case 0x82:
      return { kind: 'DNS', value: v.toString('latin1') };
    case 0x81:
      return { kind: 'email', value: v.toString('latin1') };
    case 0x87:
      return {
        kind: 'IP',
        value: v.length === 4 ? [...v].join('.') : (v.toString('hex').match(/.{4}/g) ?? []).join(':'),
      };
    case 0xa4:
      return { kind: 'dirName', value: v.toString('hex') };
    case 0xa0:
      return { kind: 'otherName', value: v.toString('hex') };
    case 0x88:
      return { kind: 'registeredID', value: oidText(v) };
    default:
      return { kind: `[${t.tag & 0x1f}]`, value: v.toString('hex') };
  }
}

/**
 * Parses a PEM PKCS#10 request and verifies its signature; throws CsrRefusal ('malformed-csr',
 * 'unsupported-key', 'bad-signature'). SAN and CA checks are left to the caller, which knows the identity.
 */
export async function checkCsr(pem: string): Promise<CheckedCsr> {
  const block = pemBlocks(pem).find((b) => b.label === 'CERTIFICATE REQUEST' || b.label === 'NEW CERTIFICATE REQUEST');
  if (!block) throw new CsrRefusal('malformed-csr', 'no PEM "CERTIFICATE REQUEST" block');
  const der = block.der;
  let info: Tlv, sigAlg: string, signature: Buffer, spki: Buffer;
  let attributes: Tlv | undefined;
  try {
    const outer = expectTag(readTlv(der, 0), 0x30, 'CertificationRequest');
    if (outer.end !== der.length) throw new DerError('trailing bytes');
    const [cri, alg, sig] = children(der, outer);
    info = expectTag(cri, 0x30, 'CertificationRequestInfo');
    sigAlg = oidText(value(der, expectTag(children(der, expectTag(alg, 0x30, 'signatureAlgorithm'))[0], 0x06, 'OID')));
    const bits = value(der, expectTag(sig, 0x03, 'signature BIT STRING'));
    if (bits[0] !== 0) throw new DerError('signature has unused bits');
    signature = bits.subarray(1);
    const [version, subject, key, attrs] = children(der, info);
    expectTag(version, 0x02, 'version');
    expectTag(subject, 0x30, 'subject');
    spki = whole(der, expectTag(key, 0x30, 'subjectPKInfo'));
    attributes = attrs ? expectTag(attrs, 0xa0, 'attributes') : undefined;
  } catch (err) {
    throw new CsrRefusal('malformed-csr', `the CSR does not parse: ${(err as Error).message}`);
  }

  const key = spkiKey(spki);
  if (key.kind === 'malformed')
    throw new CsrRefusal('malformed-csr', `the CSR's public key does not parse: ${key.detail}`);
  const ok =
    key.kind === 'rsa' ? key.bits >= 2048 : key.kind === 'ec' && (key.curve === 'P-256' || key.curve === 'P-384');
  if (!ok) {
    const what =
      key.kind === 'rsa' ? `RSA ${key.bits} bits` : key.kind === 'ec' ? `EC ${key.curve}` : `of type ${key.oid}`;
    throw new CsrRefusal(
      'unsupported-key',
      `the CSR's key is ${what}; EC P-256/P-384 or RSA >= 2048 bits are accepted`,
    );
  }
  const alg = SIGNATURE_HASH[sigAlg];
  if (!alg || alg.key !== key.kind) {
    throw new CsrRefusal('bad-signature', `signature algorithm ${sigAlg} is not supported for a ${key.kind} key`);
  }
  // WebCrypto: the verification runs on libuv's thread pool, off the event loop (bench/ca.ts).
  let publicKey: CryptoKey;
  try {
    // An EC key is imported from its point ('raw'): a third of the cost of decoding the SPKI again.
    publicKey =
      key.kind === 'ec'
        ? await subtle.importKey('raw', key.point, { name: 'ECDSA', namedCurve: key.curve }, false, ['verify'])
        : await subtle.importKey('spki', spki, { name: 'RSASSA-PKCS1-v1_5', hash: alg.hash }, false, ['verify']);
  } catch (err) {
    throw new CsrRefusal('malformed-csr', `the CSR's public key does not import: ${(err as Error).message}`);
  }
  let verified: boolean;
  try {
    const sig = key.kind === 'ec' ? ecdsaDerToRaw(signature, key.curve === 'P-384' ? 48 : 32) : signature;
    verified = await subtle.verify(
      key.kind === 'ec' ? { name: 'ECDSA', hash: alg.hash } : { name: 'RSASSA-PKCS1-v1_5' },
      publicKey,
      sig,
      whole(der, info),
    );
  } catch {
    verified = false;
  }
  if (!verified) throw new CsrRefusal('bad-signature', "the CSR's signature does not verify with its public key");

  const sans: RequestedName[] = [];
  let caRequested = false;
  try {
    for (const attr of attributes ? children(der, attributes) : []) {
      const [type, values] = children(der, expectTag(attr, 0x30, 'Attribute'));
      if (oidText(value(der, expectTag(type, 0x06, 'OID'))) !== OID_EXTENSION_REQUEST) continue;
      for (const exts of children(der, expectTag(values, 0x31, 'SET'))) {
        for (const ext of children(der, expectTag(exts, 0x30, 'Extensions'))) {
          const parts = children(der, expectTag(ext, 0x30, 'Extension'));
          const id = oidText(value(der, expectTag(parts[0], 0x06, 'OID')));
          const content = expectTag(parts[parts.length - 1], 0x04, 'extnValue');
          const inner = readTlv(der, content.valueStart, content.end);
          if (id === OID_SAN) {
            for (const n of children(der, expectTag(inner, 0x30, 'GeneralNames'))) sans.push(nameOf(der, n));
          } else if (id === OID_BASIC_CONSTRAINTS) {
            const first = children(der, expectTag(inner, 0x30, 'BasicConstraints'))[0];
            if (first?.tag === 0x01 && der[first.valueStart] !== 0) caRequested = true;
          }
        }
      }
    }
  } catch (err) {
    throw new CsrRefusal('malformed-csr', `the CSR's extension request does not parse: ${(err as Error).message}`);
  }
  return { spki, keyType: key.kind, sans, caRequested };
}
