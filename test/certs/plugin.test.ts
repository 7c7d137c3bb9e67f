// A plug-in CA made here (an operator's own root + intermediate): leaf → intermediate → root, and the
// errors that name the file when the files do not fit together.
import test from 'ava';
import crypto from 'node:crypto';
import { CertificateAuthority, loadPluginCa, PluginCaError, type PluginCaFiles } from '../../certs/index.js';
import { x509 } from '../../certs/x509.js';
import { makeCsr, makeRootAndIntermediate, type TestCaPems } from '../ca/ca-helpers.js';

const ID = { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'cart' };
const URI = 'spiffe://cluster.local/ns/shop/sa/cart';

/** The four files; `chain: null` leaves cert-chain.pem out. */
function files(p: TestCaPems, chain: string | null = p.caCertPem + p.rootCertPem): PluginCaFiles {
  return {
    caCert: { file: 'ca-cert.pem', pem: p.caCertPem },
    caKey: { file: 'ca-key.pem', pem: p.caKeyPem },
    rootCert: { file: 'root-cert.pem', pem: p.rootCertPem },
    ...(chain === null ? {} : { certChain: { file: 'cert-chain.pem', pem: chain } }),
  };
}

for (const [title, opts] of [
  ['EC P-256 root and intermediate', {}],
  ['RSA-2048 root, EC P-384 intermediate', { rootKey: 'rsa-2048', caKey: 'ec-p384' }],
  ['EC P-256 root, RSA-2048 intermediate', { caKey: 'rsa-2048' }],
] as const) {
  test(`plug-in CA (${title}): leaf → intermediate → root, verified by Node and @peculiar/x509`, async (t) => {
    const pems = await makeRootAndIntermediate(opts);
    const ca = CertificateAuthority.create(await loadPluginCa(files(pems)), 'cluster.local');
    const issued = await ca.sign({ csr: await makeCsr(URI), identity: ID });
    t.is(issued.chain.length, 3);
    t.is(issued.chain[1], pems.caCertPem);
    t.is(issued.chain[2], pems.rootCertPem);
    t.is(ca.trustBundle(), pems.rootCertPem);
    const [leaf, inter, root] = issued.chain.map((p) => new crypto.X509Certificate(p)) as [
      crypto.X509Certificate,
      crypto.X509Certificate,
      crypto.X509Certificate,
    ];
    t.true(leaf.verify(inter.publicKey));
    t.true(leaf.checkIssued(inter));
    t.true(inter.verify(root.publicKey));
    t.true(inter.checkIssued(root));
    t.false(leaf.verify(root.publicKey));
    t.is(leaf.subjectAltName, `URI:${URI}`);
    const leafCert = new x509.X509Certificate(issued.certificate);
    t.is(
      leafCert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId,
      new x509.X509Certificate(pems.caCertPem).getExtension(x509.SubjectKeyIdentifierExtension)?.keyId,
    );
    const built = await new x509.X509ChainBuilder({
      certificates: [new x509.X509Certificate(pems.caCertPem), new x509.X509Certificate(pems.rootCertPem)],
    }).build(leafCert);
    t.deepEqual(
      [...built].map((c) => c.subject),
      ['', 'CN=Example Corp Intermediate, O=Example Corp', 'CN=Example Corp Root, O=Example Corp'],
    );
  });
}

test('cert-chain.pem may be left out when ca-cert is signed by the root directly, or hold only the intermediates', async (t) => {
  const pems = await makeRootAndIntermediate();
  for (const chain of [null, '', pems.caCertPem]) {
    const m = await loadPluginCa(files(pems, chain));
    t.is(m.intermediates.length, 0);
    t.is(m.signer.subject, 'CN=Example Corp Intermediate, O=Example Corp');
  }
});

test('a plug-in CA whose ca-cert is the root itself gives leaf → root', async (t) => {
  const pems = await makeRootAndIntermediate();
  const m = await loadPluginCa({
    caCert: { file: 'ca-cert.pem', pem: pems.rootCertPem },
    caKey: { file: 'ca-key.pem', pem: pems.rootKeyPem },
    rootCert: { file: 'root-cert.pem', pem: pems.rootCertPem },
  });
  const ca = CertificateAuthority.create(m, 'cluster.local');
  const issued = await ca.sign({ csr: await makeCsr(URI), identity: ID });
  t.deepEqual(issued.chain.slice(1), [pems.rootCertPem]);
});

async function loadError(f: PluginCaFiles): Promise<PluginCaError> {
  const err = await loadPluginCa(f).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof PluginCaError)) throw new Error(`expected a PluginCaError, got ${String(err)}`);
  return err;
}

test('plug-in errors name the file: a key that does not match ca-cert', async (t) => {
  const a = await makeRootAndIntermediate();
  const b = await makeRootAndIntermediate();
  const err = await loadError({ ...files(a), caKey: { file: '/etc/cacerts/ca-key.pem', pem: b.caKeyPem } });
  t.is(err.file, '/etc/cacerts/ca-key.pem');
  t.regex(err.message, /does not match the certificate in ca-cert\.pem/);
});

test('plug-in errors name the file: ca-cert is not a CA', async (t) => {
  const p = await makeRootAndIntermediate({ intermediateIsCa: false });
  const err = await loadError(files(p));
  t.is(err.file, 'ca-cert.pem');
  t.regex(err.message, /is not a CA certificate/);
});

test('plug-in errors name the file: the chain does not verify to root-cert.pem', async (t) => {
  const a = await makeRootAndIntermediate();
  const other = await makeRootAndIntermediate({ name: 'Other' });
  const err = await loadError({ ...files(a, null), rootCert: { file: 'root-cert.pem', pem: other.rootCertPem } });
  t.is(err.file, 'ca-cert.pem');
  t.regex(err.message, /does not verify to root-cert\.pem/);
  const err2 = await loadError(files(a, other.caCertPem));
  t.is(err2.file, 'cert-chain.pem');
  t.regex(err2.message, /did not sign ca-cert\.pem/);
});

test('plug-in errors name the file: not PKCS#8, no certificate, a root that is not self-signed', async (t) => {
  const p = await makeRootAndIntermediate();
  const sec1 = crypto.createPrivateKey(p.caKeyPem).export({ type: 'sec1', format: 'pem' }).toString();
  const e1 = await loadError({ ...files(p), caKey: { file: 'ca-key.pem', pem: sec1 } });
  t.is(e1.file, 'ca-key.pem');
  t.regex(e1.message, /expected a PKCS#8 "PRIVATE KEY" PEM block, found "EC PRIVATE KEY"/);
  const e2 = await loadError({ ...files(p), caCert: { file: 'ca-cert.pem', pem: '' } });
  t.is(e2.file, 'ca-cert.pem');
  t.regex(e2.message, /no PEM CERTIFICATE block/);
  const e3 = await loadError({ ...files(p), rootCert: { file: 'root-cert.pem', pem: p.caCertPem } });
  t.is(e3.file, 'root-cert.pem');
  t.regex(e3.message, /is not self-signed/);
});
