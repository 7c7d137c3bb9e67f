// A parsed X.509 certificate, for what the CA reads of its own material (the signer, the chain, the roots):
// names, validity, the public key, basicConstraints, keyUsage and the subject key identifier, read with
// der.ts; signatures checked with Node's X509Certificate (OpenSSL). No certificate library is loaded, so
// a control plane that loads an existing CA does not pay for one in memory (bench/cli-startup.ts).
import crypto from 'node:crypto';
import { children, DerError, expectTag, oidText, readTlv, value, whole, type Tlv } from './der.js';
import { OID_BASIC_CONSTRAINTS, OID_KEY_USAGE, OID_SKI } from './oids.js';
import { toPem } from './pem.js';

/** keyUsage bit 5 (keyCertSign) is 0x04 in the first content byte of the BIT STRING. */
const KEY_CERT_SIGN = 0x04;

export class Certificate {
  /** The DER. */
  readonly raw: Buffer;
  /** The subject as OpenSSL prints it, one attribute after another joined by ", " (e.g. `O=Trellis, CN=Trellis Root CA`). */
  readonly subject: string;
  readonly issuer: string;
  /** The exact DER of the subject and issuer Names (what chains are matched on). */
  readonly subjectDer: Buffer;
  readonly issuerDer: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** SubjectPublicKeyInfo, DER. */
  readonly spki: Buffer;
  /** basicConstraints CA=true. */
  readonly basicConstraintsCa: boolean;
  /** The keyUsage bits' first byte, or undefined without the extension. */
  private readonly keyUsage: number | undefined;
  /** The subjectKeyIdentifier extension's key id, if present. */
  private readonly ski: Buffer | undefined;
  private readonly node: crypto.X509Certificate;

  /** Parses `der`; throws (DerError or OpenSSL's error) when it is not a certificate. */
  constructor(der: Uint8Array) {
    this.raw = Buffer.from(der);
    this.node = new crypto.X509Certificate(this.raw);
    const buf = this.raw;
    const outer = expectTag(readTlv(buf, 0), 0x30, 'Certificate');
    if (outer.end !== buf.length) throw new DerError('trailing bytes');
    const tbs = children(buf, expectTag(children(buf, outer)[0], 0x30, 'TBSCertificate'));
    const at = tbs[0]?.tag === 0xa0 ? 1 : 0;
    this.issuerDer = whole(buf, expectTag(tbs[at + 2], 0x30, 'issuer'));
    const validity = children(buf, expectTag(tbs[at + 3], 0x30, 'validity'));
    this.notBefore = readTime(buf, validity[0]);
    this.notAfter = readTime(buf, validity[1]);
    this.subjectDer = whole(buf, expectTag(tbs[at + 4], 0x30, 'subject'));
    this.spki = whole(buf, expectTag(tbs[at + 5], 0x30, 'subjectPublicKeyInfo'));
    this.subject = this.node.subject.split('\n').join(', ');
    this.issuer = this.node.issuer.split('\n').join(', ');
    let ca = false;
    let keyUsage: number | undefined;
    let ski: Buffer | undefined;
    const extensions = tbs.slice(at + 6).find((t) => t.tag === 0xa3);
    if (extensions) {
      for (const ext of children(buf, expectTag(children(buf, extensions)[0], 0x30, 'Extensions'))) {
        const parts = children(buf, expectTag(ext, 0x30, 'Extension'));
        const id = oidText(value(buf, expectTag(parts[0], 0x06, 'extnID')));
        const content = expectTag(parts[parts.length - 1], 0x04, 'extnValue');
        const inner = readTlv(buf, content.valueStart, content.end);
        if (id === OID_BASIC_CONSTRAINTS) {
          const first = children(buf, expectTag(inner, 0x30, 'BasicConstraints'))[0];
          ca = first?.tag === 0x01 && buf[first.valueStart] !== 0;
        } else if (id === OID_KEY_USAGE) {
          const bits = value(buf, expectTag(inner, 0x03, 'KeyUsage'));
          keyUsage = bits[1] ?? 0;
        } else if (id === OID_SKI) {
          ski = Buffer.from(value(buf, expectTag(inner, 0x04, 'SubjectKeyIdentifier')));
        }
      }
    }
    this.basicConstraintsCa = ca;
    this.keyUsage = keyUsage;
    this.ski = ski;
  }

  /** A CA certificate: basicConstraints CA=true, and keyCertSign when keyUsage is present. */
  get isCa(): boolean {
    return this.basicConstraintsCa && (this.keyUsage === undefined || (this.keyUsage & KEY_CERT_SIGN) !== 0);
  }

  /** The subject key identifier: the extension's, else SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2 (1)). */
  keyId(): Buffer {
    return this.ski ?? crypto.createHash('sha1').update(subjectPublicKeyBits(this.spki)).digest();
  }

  /** Whether `issuer` issued this one: names match byte for byte and the signature verifies with its key. */
  signedBy(issuer: Certificate): boolean {
    if (!this.issuerDer.equals(issuer.subjectDer)) return false;
    try {
      return this.node.verify(issuer.node.publicKey);
    } catch {
      return false;
    }
  }

  equals(other: Certificate): boolean {
    return this.raw.equals(other.raw);
  }

  /** PEM, ending with a newline. */
  toPem(): string {
    return toPem(this.raw, 'CERTIFICATE');
  }
}

/** The subjectPublicKey bits of a SubjectPublicKeyInfo (what a key identifier hashes). */
export function subjectPublicKeyBits(spki: Buffer): Buffer {
  const bits = expectTag(children(spki, readTlv(spki, 0))[1], 0x03, 'subjectPublicKey');
  return value(spki, bits).subarray(1);
}

/** UTCTime (YYMMDDHHMMSSZ, 50–99 → 19xx) or GeneralizedTime (YYYYMMDDHHMMSSZ). */
function readTime(buf: Buffer, t: Tlv | undefined): Date {
  if (!t || (t.tag !== 0x17 && t.tag !== 0x18)) throw new DerError('expected a UTCTime or GeneralizedTime');
  const text = value(buf, t).toString('latin1');
  const m = (
    t.tag === 0x17 ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/ : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/
  ).exec(text);
  if (!m) throw new DerError(`time "${text}" is not in DER form`);
  let year = Number(m[1]);
  if (t.tag === 0x17) year += year < 50 ? 2000 : 1900;
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}
