// The validator's own checks of DestinationRule `tls` for TLS origination (crds/validator.ts
// originationTls), beyond Istio's ValidateTLS rules (those are in istio-cases.ts): a credentialName must be
// a Secret name; certificate fields a mode does not read are warnings, never silently dropped.
import test from 'ava';
import { validateRoutingResource } from '../../crds/validator.js';
import { dr } from './istio-cases.js';

const issues = (spec: Record<string, unknown>) =>
  validateRoutingResource(dr({ host: 'api.example.com', trafficPolicy: { tls: spec } })).issues.map(
    (i) => `${i.severity} ${i.path}: ${i.message}`,
  );

test('credentialName must be a Secret name (a lower-case DNS subdomain)', (t) => {
  t.deepEqual(issues({ mode: 'SIMPLE', credentialName: 'egress-ca.v2' }), []);
  for (const bad of ['Egress', 'kubernetes://egress', 'ns/egress', 'a_b']) {
    t.deepEqual(
      issues({ mode: 'SIMPLE', credentialName: bad }),
      [
        'error spec.trafficPolicy.tls.credentialName: must be the name of a Secret (a lower-case DNS subdomain) in the namespace of the client proxies',
      ],
      bad,
    );
  }
});

test('origination fields with another mode, and client files with SIMPLE, are warnings', (t) => {
  t.deepEqual(issues({ mode: 'MESH_MUTUAL', credentialName: 'egress' }), [
    'warning spec.trafficPolicy.tls: credentialName is ignored unless mode is SIMPLE or MUTUAL',
  ]);
  t.deepEqual(issues({ mode: 'DISABLE', caCertificates: '/ca.pem', insecureSkipVerify: true }), [
    'warning spec.trafficPolicy.tls: caCertificates, insecureSkipVerify are ignored unless mode is SIMPLE or MUTUAL',
  ]);
  t.deepEqual(issues({ mode: 'SIMPLE', clientCertificate: '/c.pem', privateKey: '/k.pem' }), [
    'warning spec.trafficPolicy.tls: clientCertificate and privateKey are ignored when mode is SIMPLE (no client certificate)',
  ]);
  t.deepEqual(issues({ mode: 'MUTUAL', clientCertificate: '/c.pem', privateKey: '/k.pem', caCrl: '/crl.pem' }), [
    'warning spec.trafficPolicy.tls.caCrl: ignored without caCertificates (the CRL goes with the CA file it revokes for)',
  ]);
  t.deepEqual(
    issues({
      mode: 'MUTUAL',
      clientCertificate: '/c.pem',
      privateKey: '/k.pem',
      caCertificates: '/ca.pem',
      caCrl: '/crl.pem',
    }),
    [],
  );
});
