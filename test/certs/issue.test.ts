// certs/: the root, every field of an issued SVID, chain verification with Node's X509Certificate and
// with @peculiar/x509, and the CSR refusals with their reasons.
import test from 'ava';
import crypto from 'node:crypto';
import {
  CertificateAuthority,
  createRootCa,
  CsrRefusal,
  loadRootCa,
  MAX_TTL_SECONDS,
  type CsrRefusalReason,
  type KeyType,
} from '../../certs/index.js';
import { children, readTlv } from '../../certs/der.js';
import { x509 } from '../../certs/x509.js';
import { makeCsr, testKeys } from '../ca/ca-helpers.js';

const ID = { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'cart' };
const URI = 'spiffe://cluster.local/ns/shop/sa/cart';

const cas = new Map<KeyType, Promise<{ ca: CertificateAuthority; rootPem: string }>>();
function caWith(keyType: KeyType): Promise<{ ca: CertificateAuthority; rootPem: string }> {
  let p = cas.get(keyType);
  if (!p) {
    p = (async () => {
      const root = await createRootCa({ keyType });
      return {
        ca: CertificateAuthority.create(await loadRootCa(root.certPem, root.keyPem), 'cluster.local'),
        rootPem: root.certPem,
      };
    })();
    cas.set(keyType, p);
  }
  return p;
}

test('the root: self-signed, 10 years, CA critical, keyCertSign+cRLSign, O=Trellis CN=Trellis Root CA, SKI = AKI', async (t) => {
  const now = new Date('2026-11-26T08:00:00Z');
  const root = await createRootCa({ now });
  const cert = new x509.X509Certificate(root.certPem);
  const node = new crypto.X509Certificate(root.certPem);
  t.is(node.subject, 'O=Trellis\nCN=Trellis Root CA');
  t.is(node.issuer, node.subject);
  t.true(node.ca);
  t.true(node.verify(node.publicKey));
  t.is(cert.notAfter.toISOString(), '2036-11-26T08:00:00.000Z');
  t.is(cert.notBefore.toISOString(), '2026-11-26T07:55:00.000Z');
  const bc = cert.getExtension(x509.BasicConstraintsExtension)!;
  t.true(bc.ca);
  t.true(bc.critical);
  const ku = cert.getExtension(x509.KeyUsagesExtension)!;
  t.is(ku.usages, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
  t.true(ku.critical);
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension)!;
  t.is(cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId, ski.keyId);
  t.is((cert.signatureAlgorithm as unknown as { name: string }).name, 'ECDSA');
  t.is((cert.publicKey.algorithm as { namedCurve?: string }).namedCurve, 'P-256');
  t.regex(root.keyPem, /^-----BEGIN PRIVATE KEY-----/);
});

test('an issued certificate, field by field (P-256 CA, P-256 workload key)', async (t) => {
  const { ca, rootPem } = await caWith('ec-p256');
  const now = new Date();
  const issued = await ca.sign({ csr: await makeCsr(URI), identity: ID, now });
  const node = new crypto.X509Certificate(issued.certificate);
  const cert = new x509.X509Certificate(issued.certificate);
  const rootNode = new crypto.X509Certificate(rootPem);
  const rootCert = new x509.X509Certificate(rootPem);

  // Version: TBSCertificate starts with [0] EXPLICIT INTEGER 2 (v3).
  const der = new Uint8Array(node.raw);
  const tbs = children(der, children(der, readTlv(der, 0))[0]!);
  t.deepEqual([...der.subarray(tbs[0]!.start, tbs[0]!.end)], [0xa0, 0x03, 0x02, 0x01, 0x02]);
  // Serial: a positive INTEGER with a 128-bit magnitude (16 bytes, first byte non-zero).
  const serial = der.subarray(tbs[1]!.valueStart, tbs[1]!.end);
  t.true(serial[0]! < 0x80, 'positive');
  const magnitude = serial[0] === 0 ? serial.subarray(1) : serial;
  t.is(magnitude.length, 16);
  t.not(magnitude[0], 0);
  t.is(node.serialNumber.toLowerCase(), issued.serial);
  // Validity: now - 5 min .. now + 24 h (whole seconds).
  const s = Math.floor(now.getTime() / 1000) * 1000;
  t.is(cert.notBefore.getTime(), s - 5 * 60_000);
  t.is(cert.notAfter.getTime(), s + 24 * 3600_000);
  t.is(issued.ttlSeconds, 24 * 3600);
  // Subject empty; SAN exactly the URI, critical.
  t.is(node.subject as string | undefined, undefined); // Node's way of saying: an empty Name
  t.is(cert.subject, '');
  t.is(node.subjectAltName, `URI:${URI}`);
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!;
  t.true(san.critical);
  t.deepEqual(san.names.toJSON(), [{ type: 'url', value: URI }]);
  t.is(cert.getExtensions(x509.SubjectAlternativeNameExtension).length, 1);
  // keyUsage digitalSignature only (EC key), critical; EKU serverAuth + clientAuth; not a CA.
  const ku = cert.getExtension(x509.KeyUsagesExtension)!;
  t.is(ku.usages, x509.KeyUsageFlags.digitalSignature);
  t.true(ku.critical);
  t.deepEqual(node.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  const bc = cert.getExtension(x509.BasicConstraintsExtension)!;
  t.false(bc.ca);
  t.true(bc.critical);
  t.false(node.ca);
  // AKI = the issuer's SKI; issuer = the root's subject.
  t.is(
    cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId,
    rootCert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId,
  );
  t.is(node.issuer, rootNode.subject);
  // Exactly these five extensions.
  t.deepEqual([...cert.extensions].map((e) => e.type).sort(), [
    '2.5.29.15',
    '2.5.29.17',
    '2.5.29.19',
    '2.5.29.35',
    '2.5.29.37',
  ]);
  // Signature: ECDSA with SHA-256 by the root; verifies with Node and @peculiar/x509.
  t.is((cert.signatureAlgorithm as unknown as { name: string }).name, 'ECDSA');
  t.is((cert.signatureAlgorithm.hash as { name: string }).name, 'SHA-256');
  t.true(node.verify(rootNode.publicKey));
  t.true(node.checkIssued(rootNode));
  t.true(await cert.verify({ publicKey: rootCert.publicKey, date: now }));
  // Chain: leaf, root last; the trust bundle is the root.
  t.deepEqual(issued.chain, [issued.certificate, rootPem]);
  t.is(ca.trustBundle(), rootPem);
  const built = await new x509.X509ChainBuilder({ certificates: [rootCert] }).build(cert);
  t.deepEqual(
    [...built].map((c) => c.subject),
    ['', rootCert.subject],
  );
});

test('lifetime: 0 means 24 h, a short request is honoured, more than 7 days is clamped to 7 days', async (t) => {
  const { ca } = await caWith('ec-p256');
  const csr = await makeCsr(URI);
  const now = new Date('2026-11-26T08:00:00Z');
  const lifetime = async (ttlSeconds: number): Promise<number> => {
    const issued = await ca.sign({ csr, identity: ID, now, ttlSeconds });
    const c = new crypto.X509Certificate(issued.certificate);
    return (new Date(c.validTo).getTime() - now.getTime()) / 1000;
  };
  t.is(await lifetime(0), 24 * 3600);
  t.is(await lifetime(-5), 24 * 3600);
  t.is(await lifetime(60), 60);
  t.is(await lifetime(3600), 3600);
  t.is(await lifetime(30 * 86400), MAX_TTL_SECONDS);
  t.is(MAX_TTL_SECONDS, 7 * 86400);
});

test('an RSA-2048 workload key gets keyUsage digitalSignature + keyEncipherment', async (t) => {
  const { ca } = await caWith('ec-p256');
  const issued = await ca.sign({ csr: await makeCsr(URI, { keys: await testKeys('rsa-2048') }), identity: ID });
  const ku = new x509.X509Certificate(issued.certificate).getExtension(x509.KeyUsagesExtension)!;
  t.is(ku.usages, x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);
});

for (const keyType of ['ec-p384', 'rsa-2048'] as const) {
  test(`a ${keyType} root signs verifiable certificates`, async (t) => {
    const { ca, rootPem } = await caWith(keyType);
    const issued = await ca.sign({ csr: await makeCsr(URI), identity: ID });
    const leaf = new crypto.X509Certificate(issued.certificate);
    const root = new crypto.X509Certificate(rootPem);
    t.true(leaf.verify(root.publicKey));
    t.true(leaf.checkIssued(root));
    const cert = new x509.X509Certificate(issued.certificate);
    const alg = cert.signatureAlgorithm as unknown as { name: string; hash: { name: string } };
    t.deepEqual(
      [alg.name, alg.hash.name],
      keyType === 'ec-p384' ? ['ECDSA', 'SHA-384'] : ['RSASSA-PKCS1-v1_5', 'SHA-256'],
    );
    const chain = await new x509.X509ChainBuilder({ certificates: [new x509.X509Certificate(rootPem)] }).build(cert);
    t.is(chain.length, 2);
  });
}

test('the trust bundle holds every root during a rotation; the chain ends at the signing root', async (t) => {
  const oldRoot = await createRootCa();
  const newRoot = await createRootCa();
  const ca = CertificateAuthority.create(
    await loadRootCa(newRoot.certPem, newRoot.keyPem, [oldRoot.certPem]),
    'cluster.local',
  );
  t.is(ca.trustBundle(), newRoot.certPem + oldRoot.certPem);
  const issued = await ca.sign({ csr: await makeCsr(URI), identity: ID });
  t.is(issued.chain[issued.chain.length - 1], newRoot.certPem);
});

async function refusal(csr: string): Promise<CsrRefusal> {
  const { ca } = await caWith('ec-p256');
  try {
    await ca.sign({ csr, identity: ID });
  } catch (err) {
    if (err instanceof CsrRefusal) return err;
    throw err;
  }
  throw new Error('the CSR was signed');
}

const refusals: [string, () => Promise<string>, CsrRefusalReason, RegExp][] = [
  [
    'a foreign SAN (another service account)',
    () => makeCsr('spiffe://cluster.local/ns/shop/sa/admin'),
    'foreign-san',
    /asks for spiffe:\/\/cluster.local\/ns\/shop\/sa\/admin but the caller is spiffe:\/\/cluster.local\/ns\/shop\/sa\/cart/,
  ],
  [
    'a foreign SAN (another namespace)',
    () => makeCsr('spiffe://cluster.local/ns/bank/sa/cart'),
    'foreign-san',
    /ns\/bank/,
  ],
  ['a foreign trust domain', () => makeCsr('spiffe://evil.example/ns/shop/sa/cart'), 'foreign-san', /evil\.example/],
  [
    'the SPIFFE ID as a DNS name',
    () => makeCsr(undefined, { sans: [{ type: 'dns', value: URI }] }),
    'extra-san',
    /DNS:/,
  ],
  [
    'an extra DNS SAN',
    () =>
      makeCsr(undefined, {
        sans: [
          { type: 'url', value: URI },
          { type: 'dns', value: 'cart.shop.svc' },
        ],
      }),
    'extra-san',
    /URI:spiffe:\/\/cluster.local\/ns\/shop\/sa\/cart, DNS:cart\.shop\.svc; only one URI SAN/,
  ],
  [
    'an extra IP SAN',
    () =>
      makeCsr(undefined, {
        sans: [
          { type: 'url', value: URI },
          { type: 'ip', value: '10.0.0.1' },
        ],
      }),
    'extra-san',
    /IP:10\.0\.0\.1/,
  ],
  [
    'an extra email SAN',
    () =>
      makeCsr(undefined, {
        sans: [
          { type: 'url', value: URI },
          { type: 'email', value: 'a@b.c' },
        ],
      }),
    'extra-san',
    /email:a@b\.c/,
  ],
  [
    'a second URI SAN',
    () =>
      makeCsr(undefined, {
        sans: [
          { type: 'url', value: URI },
          { type: 'url', value: 'spiffe://cluster.local/ns/x/sa/y' },
        ],
      }),
    'extra-san',
    /ns\/x\/sa\/y/,
  ],
  ['no SAN', () => makeCsr(undefined, { subject: 'CN=cart' }), 'missing-san', /no subjectAltName/],
  ['a CA request', () => makeCsr(URI, { ca: true }), 'ca-request', /basicConstraints CA=true/],
  ['a bad signature', () => makeCsr(URI, { badSignature: true }), 'bad-signature', /does not verify/],
  [
    'an RSA-1024 key',
    async () => makeCsr(URI, { keys: await testKeys('rsa-1024') }),
    'unsupported-key',
    /RSA 1024 bits/,
  ],
  ['not a CSR', async () => 'hello', 'malformed-csr', /no PEM "CERTIFICATE REQUEST" block/],
  [
    'garbage in a PEM block',
    async () => '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n',
    'malformed-csr',
    /does not parse/,
  ],
];
for (const [title, csr, reason, message] of refusals) {
  test(`refused: ${title} → ${reason}`, async (t) => {
    const err = await refusal(await csr());
    t.is(err.reason, reason);
    t.regex(err.message, message);
  });
}

test('refused: a public key that is not a point on its curve → malformed-csr', async (t) => {
  const pem = await makeCsr(URI);
  const der = Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  // The uncompressed point 04||x||y follows the P-256 SPKI header; change one byte of y.
  const at = der.indexOf(Buffer.from('06082a8648ce3d030107034200', 'hex')) + 13 + 64;
  der[at] = der[at]! ^ 0x01;
  const err = await refusal(
    `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`,
  );
  t.is(err.reason, 'malformed-csr');
  t.regex(err.message, /public key does not import/);
});

test('the subject and other extensions a CSR asks for are ignored (empty subject, the CA’s own extensions)', async (t) => {
  const { ca } = await caWith('ec-p256');
  const issued = await ca.sign({ csr: await makeCsr(URI, { subject: 'CN=root-of-everything, O=Evil' }), identity: ID });
  t.is(new x509.X509Certificate(issued.certificate).subject, '');
});

test('serial numbers are random', async (t) => {
  const { ca } = await caWith('ec-p256');
  const csr = await makeCsr(URI);
  const serials = new Set(
    (await Promise.all(Array.from({ length: 200 }, () => ca.sign({ csr, identity: ID })))).map((i) => i.serial),
  );
  t.is(serials.size, 200);
});
