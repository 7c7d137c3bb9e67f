// certs/certificate.ts reads what the CA needs of a certificate with its own DER reader and Node's
// X509Certificate. Each field is checked against @peculiar/x509, an independent parser, on certificates
// that library made.
import test from 'ava';
import { Certificate } from '../../certs/certificate.js';
import { x509 } from '../../certs/x509.js';
import { testKeys, type TestKeyType } from '../ca/ca-helpers.js';

type Keys = Awaited<ReturnType<typeof testKeys>>;
type GeneratorKeys = Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'];

interface Made {
  readonly peculiar: x509.X509Certificate;
  readonly ours: Certificate;
  readonly keys: Keys;
}

async function selfSigned(
  name: string,
  extensions: x509.Extension[],
  options: { notBefore?: Date; notAfter?: Date; keyType?: TestKeyType } = {},
): Promise<Made> {
  const keys = await testKeys(options.keyType ?? 'ec-p256');
  const peculiar = await x509.X509CertificateGenerator.createSelfSigned({
    name,
    notBefore: options.notBefore ?? new Date('2026-01-02T03:04:05Z'),
    notAfter: options.notAfter ?? new Date('2036-01-02T03:04:05Z'),
    keys: keys as unknown as GeneratorKeys,
    signingAlgorithm:
      keys.privateKey.algorithm.name === 'ECDSA' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'RSASSA-PKCS1-v1_5' },
    extensions,
  });
  return { peculiar, ours: new Certificate(new Uint8Array(peculiar.rawData)), keys };
}

const caExtensions = (): x509.Extension[] => [
  new x509.BasicConstraintsExtension(true, undefined, true),
  new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
];

test('names, validity and the public key read as @peculiar/x509 reads them', async (t) => {
  for (const name of ['CN=Example Root, O=Example Corp', 'O=Trellis, CN=Trellis Root CA', 'CN=one']) {
    const { peculiar, ours } = await selfSigned(name, caExtensions());
    t.is(ours.subject, peculiar.subject, name);
    t.is(ours.issuer, peculiar.issuer, name);
    t.deepEqual(ours.subjectDer, Buffer.from(peculiar.subjectName.toArrayBuffer()), name);
    t.is(ours.notBefore.getTime(), peculiar.notBefore.getTime(), name);
    t.is(ours.notAfter.getTime(), peculiar.notAfter.getTime(), name);
    t.deepEqual(ours.spki, Buffer.from(peculiar.publicKey.rawData), name);
    t.true(ours.toPem().startsWith('-----BEGIN CERTIFICATE-----\n'));
    t.deepEqual(new Certificate(new Uint8Array(new x509.X509Certificate(ours.toPem()).rawData)).raw, ours.raw);
  }
});

test('validity past 2049 (GeneralizedTime) and before it (UTCTime) both read exactly', async (t) => {
  const { peculiar, ours } = await selfSigned('CN=long', caExtensions(), {
    notBefore: new Date('1999-12-31T23:59:59Z'),
    notAfter: new Date('2071-06-30T12:00:00Z'),
  });
  t.is(ours.notBefore.toISOString(), '1999-12-31T23:59:59.000Z');
  t.is(ours.notAfter.toISOString(), '2071-06-30T12:00:00.000Z');
  t.is(ours.notAfter.getTime(), peculiar.notAfter.getTime());
});

test('a CA needs basicConstraints CA=true, and keyCertSign when keyUsage is there', async (t) => {
  t.true((await selfSigned('CN=ca', caExtensions())).ours.isCa);
  t.true((await selfSigned('CN=no-ku', [new x509.BasicConstraintsExtension(true, undefined, true)])).ours.isCa);
  const signOnly = await selfSigned('CN=sign-only', [
    new x509.BasicConstraintsExtension(true, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.cRLSign, true),
  ]);
  t.false(signOnly.ours.isCa);
  t.false((await selfSigned('CN=leaf', [new x509.BasicConstraintsExtension(false, undefined, true)])).ours.isCa);
  t.false((await selfSigned('CN=none', [])).ours.isCa);
});

test('the key id is the SKI extension, else SHA-1 of the public key bits (what @peculiar/x509 computes)', async (t) => {
  const keys = await testKeys('ec-p256');
  const ski = await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as never);
  const withSki = await selfSigned('CN=with-ski', [...caExtensions(), ski]);
  t.is(withSki.ours.keyId().toString('hex'), ski.keyId);
  for (const keyType of ['ec-p256', 'rsa-2048'] as const) {
    const without = await selfSigned('CN=without-ski', caExtensions(), { keyType });
    t.deepEqual(without.ours.keyId(), Buffer.from(await without.peculiar.publicKey.getKeyIdentifier()), keyType);
  }
});

test('signedBy: matching names and a signature that verifies with the issuer key', async (t) => {
  const root = await selfSigned('CN=Root', caExtensions());
  const sameName = await selfSigned('CN=Root', caExtensions());
  t.true(root.ours.signedBy(root.ours));
  t.false(root.ours.signedBy(sameName.ours), 'the same name with another key does not verify');
  const child = await x509.X509CertificateGenerator.create({
    subject: 'CN=Intermediate',
    issuer: root.peculiar.subjectName,
    notBefore: new Date('2026-01-02T03:04:05Z'),
    notAfter: new Date('2030-01-02T03:04:05Z'),
    publicKey: (await testKeys()).publicKey as never,
    signingKey: root.keys.privateKey as never,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: caExtensions(),
  });
  const ours = new Certificate(new Uint8Array(child.rawData));
  t.true(ours.signedBy(root.ours));
  t.false(ours.signedBy(sameName.ours));
  t.false(ours.signedBy(ours), 'its issuer name is not its own');
  t.false(root.ours.equals(sameName.ours));
  t.true(root.ours.equals(new Certificate(root.ours.raw)));
});

test('what is not a certificate is refused', (t) => {
  t.throws(() => new Certificate(Buffer.from('30030201', 'hex')));
  t.throws(() => new Certificate(Buffer.alloc(0)));
});
