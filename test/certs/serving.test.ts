// Serving certificates with DNS names from the mesh CA (certs/serving.ts): what the API server checks when
// it calls the webhooks at trellisd.trellis-system.svc. Read back with @peculiar/x509 and Node.
import test from 'ava';
import crypto from 'node:crypto';
import { CertificateAuthority, createRootCa, loadRootCa } from '../../certs/index.js';
import { issueServingCertificate } from '../../certs/serving.js';
import { x509 } from '../../certs/x509.js';

async function authority(): Promise<{ ca: CertificateAuthority; rootPem: string }> {
  const root = await createRootCa();
  return {
    ca: CertificateAuthority.create(await loadRootCa(root.certPem, root.keyPem), 'cluster.local'),
    rootPem: root.certPem,
  };
}

test('a serving certificate: DNS and IP SANs, CN the first name, serverAuth only, not a CA, chained to the root', async (t) => {
  const { ca, rootPem } = await authority();
  const names = ['trellisd', 'trellisd.trellis-system', 'trellisd.trellis-system.svc'];
  const s = await issueServingCertificate(ca, { dnsNames: names, ipAddresses: ['127.0.0.1', '::1'], ttlSeconds: 3600 });
  const node = new crypto.X509Certificate(s.certificate);
  const root = new crypto.X509Certificate(rootPem);
  t.true(node.verify(root.publicKey));
  t.true(node.checkIssued(root));
  t.is(node.subject, 'CN=trellisd');
  t.is(
    node.subjectAltName,
    'DNS:trellisd, DNS:trellisd.trellis-system, DNS:trellisd.trellis-system.svc, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
  );
  t.is(node.checkHost('trellisd.trellis-system.svc'), 'trellisd.trellis-system.svc');
  t.is(node.checkHost('trellisd.other.svc'), undefined);
  t.false(node.ca);
  t.deepEqual(node.keyUsage, ['1.3.6.1.5.5.7.3.1']);
  t.true(node.checkPrivateKey(crypto.createPrivateKey(s.privateKeyPem)));
  t.is(s.chain[0], s.certificate);
  t.is(s.chain.at(-1)!.trim(), rootPem.trim());
  t.is((s.notAfter.getTime() - s.notBefore.getTime()) / 1000, 3600 + 300);

  const peculiar = new x509.X509Certificate(s.certificate);
  const ku = peculiar.getExtension(x509.KeyUsagesExtension);
  t.true(ku?.critical);
  t.is(ku?.usages, x509.KeyUsageFlags.digitalSignature);
  t.is(peculiar.getExtension(x509.BasicConstraintsExtension)?.ca, false);
  t.is(peculiar.issuer, new x509.X509Certificate(rootPem).subject);
  const aki = peculiar.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
  t.is(aki, new x509.X509Certificate(rootPem).getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
  t.truthy(peculiar.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
});

test('a new key each time; bad names are refused naming the field', async (t) => {
  const { ca } = await authority();
  const a = await issueServingCertificate(ca, { dnsNames: ['a.example'] });
  const b = await issueServingCertificate(ca, { dnsNames: ['a.example'] });
  t.not(a.privateKeyPem, b.privateKeyPem);
  t.not(a.serial, b.serial);
  await t.throwsAsync(issueServingCertificate(ca, { dnsNames: [] }), { message: /dnsNames: at least one/ });
  await t.throwsAsync(issueServingCertificate(ca, { dnsNames: ['Not A Name'] }), { message: /dnsNames: "Not A Name"/ });
  await t.throwsAsync(issueServingCertificate(ca, { dnsNames: ['a'], ipAddresses: ['300.1.1.1'] }), {
    message: /ipAddresses: "300.1.1.1"/,
  });
});
