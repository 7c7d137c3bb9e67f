// A self-signed serving certificate for 127.0.0.1 (EC P-256, valid for an hour), for tests that run an HTTPS
// server such as the webhook server and trust the certificate itself as the CA.
import { exportPrivateKeyPem, generateKeyPair, signingAlgorithm } from '../../certs/keys.js';
import { x509 } from '../../certs/x509.js';

export async function servingCertificate(): Promise<{ certPem: string; keyPem: string }> {
  const keys = await generateKeyPair('ec-p256');
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=127.0.0.1',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    keys,
    signingAlgorithm: signingAlgorithm(keys.privateKey),
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }])],
  });
  return { certPem: cert.toString('pem'), keyPem: await exportPrivateKeyPem(keys.privateKey) };
}
