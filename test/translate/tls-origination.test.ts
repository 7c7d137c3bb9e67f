// TLS origination (DestinationRule tls SIMPLE / MUTUAL with files or credentialName): the Envoy cluster's
// UpstreamTlsContext (translate/cluster-tls.ts), proxyless gRPC leaving such clusters out, the Secrets of
// the model (model/secrets.ts: only referenced ones, Istio's key names, redacted) and their Envoy form per
// namespace (translate/secrets.ts). Every cluster and Secret here passes Envoy's own validation.
import test, { type ExecutionContext } from 'ava';
import { webcrypto } from 'node:crypto';
import { inspect } from 'node:util';
import { x509 } from '../../certs/x509.js';
import type { TrafficPolicy } from '../../crds/types.js';
import type { MeshObject } from '../../control-plane/model/objects.js';
import { buildClusters } from '../../control-plane/translate/clusters.js';
import { generateResources } from '../../control-plane/translate/generator.js';
import { namespaceSecrets, proxySecrets } from '../../control-plane/translate/secrets.js';
import { TypeUrl } from '../../control-plane/envoy/protos.js';
import { resourceChanges } from '../../control-plane/inspect/config-diff.js';
import { makeRootAndIntermediate, type TestCaPems } from '../ca/ca-helpers.js';
import {
  AGENT_SDS_JSON,
  assertEnvoyResourcesValid,
  contextFor,
  destinationRule,
  envoyProxy,
  grpcProxy,
  namespace,
  snapshotOf,
  toJson,
  workload,
} from './_snapshots.js';

const FQDN = 'reviews.default.svc.cluster.local';
const CLUSTER = `outbound|9080||${FQDN}`;
const TLS_PARAMS = { tlsMinimumProtocolVersion: 'TLSv1_2', tlsMaximumProtocolVersion: 'TLSv1_3' };
const ADS = { ads: {}, resourceApiVersion: 'V3' };

let pems: TestCaPems;
let other: TestCaPems;
/** An empty CRL of `other`'s root, PEM. */
let CRL: string;
test.before(async () => {
  pems = await makeRootAndIntermediate({ name: 'Egress' });
  other = await makeRootAndIntermediate({ name: 'Other' });
  const key = await webcrypto.subtle.importKey(
    'pkcs8',
    x509.PemConverter.decodeFirst(other.rootKeyPem),
    { name: 'ECDSA', namedCurve: 'P-256' },
    false,
    ['sign'],
  );
  const crl = await x509.X509CrlGenerator.create({
    issuer: new x509.X509Certificate(other.rootCertPem).subject,
    signingKey: key as never,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as never,
    nextUpdate: new Date(Date.now() + 86_400_000),
  });
  // OpenSSL (Envoy) reads the label X509 CRL.
  CRL = crl.toString('pem').replace(/(BEGIN|END) CRL/g, '$1 X509 CRL') + '\n';
});

function mesh(trafficPolicy: TrafficPolicy, ...extra: MeshObject[]): MeshObject[] {
  return [
    namespace('default'),
    ...workload('default', 'reviews', { name: 'http', port: 9080 }, [
      { version: 'v1', address: '10.0.0.1', port: 9080 },
    ]),
    destinationRule('default', 'reviews', { host: 'reviews', trafficPolicy }),
    ...extra,
  ];
}

function secret(ns: string, name: string, data: Record<string, string>, stringData = false): MeshObject {
  const values = stringData
    ? { stringData: data }
    : { data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])) };
  return {
    kind: 'Secret',
    namespace: ns,
    name,
    object: { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: ns }, ...values },
    origin: {},
  } as MeshObject;
}

async function tlsOf(t: ExecutionContext, trafficPolicy: TrafficPolicy): Promise<Record<string, unknown>> {
  const snapshot = snapshotOf(mesh(trafficPolicy));
  t.deepEqual(
    snapshot.statuses.map((s) => s.reason),
    ['Accepted'],
    JSON.stringify(snapshot.statuses),
  );
  const clusters = buildClusters(contextFor(snapshot, envoyProxy()));
  await assertEnvoyResourcesValid(t, clusters);
  const cluster = clusters.find((c) => c.name === CLUSTER);
  const json = toJson(cluster!) as { transportSocket?: { typedConfig: Record<string, unknown> } };
  return json.transportSocket!.typedConfig;
}

test('SIMPLE without files: system roots, SNI and SAN = the host', async (t) => {
  t.like(await tlsOf(t, { tls: { mode: 'SIMPLE' } }), {
    sni: FQDN,
    commonTlsContext: {
      tlsParams: TLS_PARAMS,
      validationContext: {
        systemRootCerts: {},
        matchTypedSubjectAltNames: [{ sanType: 'DNS', matcher: { exact: FQDN } }],
      },
    },
  });
});

test('SIMPLE caCertificates + caCrl: the CA file over the agent’s SDS (file-root:), the crl file, DR sni and SANs', async (t) => {
  const tls = await tlsOf(t, {
    tls: {
      mode: 'SIMPLE',
      caCertificates: '/etc/certs/ca.pem',
      caCrl: '/etc/certs/ca.crl',
      sni: 'api.example.com',
      subjectAltNames: ['api.example.com', 'spiffe://example.com/api'],
    },
  });
  t.deepEqual(tls.sni, 'api.example.com');
  t.deepEqual((tls.commonTlsContext as Record<string, unknown>).combinedValidationContext, {
    defaultValidationContext: {
      matchTypedSubjectAltNames: [
        { sanType: 'DNS', matcher: { exact: 'api.example.com' } },
        { sanType: 'URI', matcher: { exact: 'spiffe://example.com/api' } },
      ],
      crl: { filename: '/etc/certs/ca.crl' },
    },
    validationContextSdsSecretConfig: {
      name: 'file-root:/etc/certs/ca.pem',
      sdsConfig: AGENT_SDS_JSON,
    },
  });
  t.false('tlsCertificates' in (tls.commonTlsContext as object));
  t.false('tlsCertificateSdsSecretConfigs' in (tls.commonTlsContext as object));
});

test('SIMPLE insecureSkipVerify: no validation context at all', async (t) => {
  const tls = await tlsOf(t, { tls: { mode: 'SIMPLE', insecureSkipVerify: true } });
  t.deepEqual(tls.commonTlsContext, { tlsParams: TLS_PARAMS });
});

test('MUTUAL with files: the certificate and key, and the CA, over the agent’s SDS (file-cert:, file-root:)', async (t) => {
  const tls = await tlsOf(t, {
    tls: { mode: 'MUTUAL', clientCertificate: '/c/cert.pem', privateKey: '/c/key.pem', caCertificates: '/c/ca.pem' },
  });
  t.like(tls.commonTlsContext, {
    tlsCertificateSdsSecretConfigs: [{ name: 'file-cert:/c/cert.pem~/c/key.pem', sdsConfig: AGENT_SDS_JSON }],
    combinedValidationContext: {
      validationContextSdsSecretConfig: { name: 'file-root:/c/ca.pem', sdsConfig: AGENT_SDS_JSON },
    },
  });
  t.false('tlsCertificates' in (tls.commonTlsContext as object));
});

test('MUTUAL credentialName: SDS over ADS for the certificate and the -cacert trust', async (t) => {
  const tls = await tlsOf(t, { tls: { mode: 'MUTUAL', credentialName: 'egress' } });
  t.deepEqual(tls.commonTlsContext, {
    tlsParams: TLS_PARAMS,
    tlsCertificateSdsSecretConfigs: [{ name: 'kubernetes://egress', sdsConfig: ADS }],
    combinedValidationContext: {
      defaultValidationContext: { matchTypedSubjectAltNames: [{ sanType: 'DNS', matcher: { exact: FQDN } }] },
      validationContextSdsSecretConfig: { name: 'kubernetes://egress-cacert', sdsConfig: ADS },
    },
  });
});

test('SIMPLE credentialName: only the trust comes from the Secret; insecureSkipVerify drops it', async (t) => {
  const simple = await tlsOf(t, { tls: { mode: 'SIMPLE', credentialName: 'egress' } });
  t.false('tlsCertificateSdsSecretConfigs' in (simple.commonTlsContext as object));
  t.like(simple.commonTlsContext, {
    combinedValidationContext: { validationContextSdsSecretConfig: { name: 'kubernetes://egress-cacert' } },
  });
  const skip = await tlsOf(t, { tls: { mode: 'MUTUAL', credentialName: 'egress', insecureSkipVerify: true } });
  t.deepEqual(skip.commonTlsContext, {
    tlsParams: TLS_PARAMS,
    tlsCertificateSdsSecretConfigs: [{ name: 'kubernetes://egress', sdsConfig: ADS }],
  });
});

test('proxyless gRPC: no cluster where the policy needs files or a Secret; the mesh form otherwise', (t) => {
  for (const tls of [
    { mode: 'SIMPLE', caCertificates: '/ca.pem' },
    { mode: 'MUTUAL', credentialName: 'egress' },
    { mode: 'MUTUAL', clientCertificate: '/c', privateKey: '/k' },
    { mode: 'SIMPLE', insecureSkipVerify: true },
  ] as const) {
    const names = buildClusters(contextFor(snapshotOf(mesh({ tls })), grpcProxy())).map((c) => c.name);
    t.false(names.includes(CLUSTER), JSON.stringify(tls));
  }
  // Only a port-level override asks for files: the other ports keep their cluster.
  const names = buildClusters(
    contextFor(
      snapshotOf(
        mesh({ portLevelSettings: [{ port: { number: 9080 }, tls: { mode: 'SIMPLE', caCertificates: '/x' } }] }),
      ),
      grpcProxy(),
    ),
  ).map((c) => c.name);
  t.false(names.includes(CLUSTER));
  const plain = buildClusters(contextFor(snapshotOf(mesh({ tls: { mode: 'SIMPLE' } })), grpcProxy()));
  t.true(plain.some((c) => c.name === CLUSTER));
});

test('the model keeps only referenced Secrets (and their -cacert), with Istio key names, key redacted', (t) => {
  const snapshot = snapshotOf(
    mesh(
      { tls: { mode: 'MUTUAL', credentialName: 'egress' } },
      secret('default', 'egress', { 'tls.crt': pems.caCertPem, 'tls.key': pems.caKeyPem, 'ca.crt': pems.rootCertPem }),
      secret('default', 'egress-cacert', { cacert: other.rootCertPem }, true),
      secret('default', 'unrelated', { password: 'hunter2' }),
      secret('other', 'egress', { cert: other.caCertPem, key: other.caKeyPem }),
    ),
  );
  t.deepEqual(
    snapshot.secrets.map((s) => `${s.namespace}/${s.name}`),
    ['default/egress', 'default/egress-cacert', 'other/egress'],
  );
  const egress = snapshot.secrets[0]!;
  t.is(egress.certificateChain, pems.caCertPem);
  t.is(egress.privateKey?.reveal(), pems.caKeyPem);
  t.is(snapshot.secrets[2]!.certificateChain, other.caCertPem, 'generic cert/key');
  const keyLine = pems.caKeyPem.split('\n')[1]!;
  for (const shown of [JSON.stringify(snapshot.secrets), inspect(snapshot, { depth: 10 }), String(egress.privateKey)]) {
    t.false(shown.includes(keyLine));
  }
  t.true(JSON.stringify(egress).includes('"privateKey":"[redacted]"'));
  // A key change moves the snapshot hash (through the digest) although the key never appears in it.
  const rotated = snapshotOf(
    mesh(
      { tls: { mode: 'MUTUAL', credentialName: 'egress' } },
      secret('default', 'egress', { 'tls.crt': pems.caCertPem, 'tls.key': other.caKeyPem, 'ca.crt': pems.rootCertPem }),
      secret('default', 'egress-cacert', { cacert: other.rootCertPem }, true),
      secret('other', 'egress', { cert: other.caCertPem, key: other.caKeyPem }),
    ),
  );
  t.not(rotated.hash, snapshot.hash);
});

test('a referenced Secret without usable keys or with bad PEM is a warning naming its keys, and not served', (t) => {
  const snapshot = snapshotOf(
    mesh(
      { tls: { mode: 'SIMPLE', credentialName: 'egress' } },
      secret('default', 'egress', { password: 'x', username: 'y' }),
      secret('other', 'egress', { 'ca.crt': 'not a certificate' }),
    ),
  );
  t.deepEqual(snapshot.secrets, []);
  t.deepEqual(
    snapshot.problems.filter((p) => p.object?.kind === 'Secret').map((p) => p.message),
    [
      'warning: Secret default/egress: has neither a certificate and key (tls.crt and tls.key, or cert and key) nor a CA (ca.crt or cacert); found password, username; not served',
      'warning: Secret other/egress: ca.crt holds no PEM certificate; not served',
    ],
  );
});

test('Envoy Secrets per namespace: certificate, trust from -cacert first, else inside, else system roots', async (t) => {
  const snapshot = snapshotOf(
    mesh(
      { tls: { mode: 'MUTUAL', credentialName: 'egress' } },
      destinationRule('default', 'more', {
        host: 'more.example.com',
        trafficPolicy: { tls: { mode: 'MUTUAL', credentialName: 'nocacert' } },
      }),
      secret('default', 'egress', { 'tls.crt': pems.caCertPem, 'tls.key': pems.caKeyPem, 'ca.crt': pems.rootCertPem }),
      secret('default', 'egress-cacert', { 'ca.crt': other.rootCertPem, 'ca.crl': CRL }),
      secret('default', 'nocacert', { 'tls.crt': pems.caCertPem, 'tls.key': pems.caKeyPem }),
      secret('elsewhere', 'egress', { 'ca.crt': other.rootCertPem }),
    ),
  );
  const secrets = namespaceSecrets(snapshot, 'default');
  await assertEnvoyResourcesValid(t, secrets);
  const json = Object.fromEntries(secrets.map((s) => [s.name, toJson(s)]));
  t.deepEqual(Object.keys(json), [
    'kubernetes://egress',
    'kubernetes://egress-cacert',
    'kubernetes://nocacert',
    'kubernetes://nocacert-cacert',
  ]);
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  t.deepEqual(json['kubernetes://egress'], {
    name: 'kubernetes://egress',
    tlsCertificate: {
      certificateChain: { inlineBytes: b64(pems.caCertPem) },
      privateKey: { inlineBytes: b64(pems.caKeyPem) },
    },
  });
  t.deepEqual(json['kubernetes://egress-cacert'], {
    name: 'kubernetes://egress-cacert',
    validationContext: {
      trustedCa: { inlineBytes: b64(other.rootCertPem) },
      crl: { inlineBytes: b64(CRL) },
    },
  });
  t.deepEqual(json['kubernetes://nocacert-cacert'], {
    name: 'kubernetes://nocacert-cacert',
    validationContext: { systemRootCerts: {} },
  });
  t.deepEqual(
    namespaceSecrets(snapshot, 'elsewhere').map((s) => s.name),
    ['kubernetes://egress-cacert'],
  );
});

test('only an authenticated Envoy proxy gets its namespace Secrets, in the generated config', (t) => {
  const snapshot = snapshotOf(
    mesh(
      { tls: { mode: 'MUTUAL', credentialName: 'egress' } },
      secret('default', 'egress', { 'tls.crt': pems.caCertPem, 'tls.key': pems.caKeyPem }),
    ),
  );
  const names = (proxy: ReturnType<typeof envoyProxy>) =>
    (generateResources(contextFor(snapshot, proxy)).get(TypeUrl.Secret) ?? []).map(
      (s) => (s as unknown as { name: string }).name,
    );
  t.deepEqual(names(envoyProxy('default', { authenticated: true })), [
    'kubernetes://egress',
    'kubernetes://egress-cacert',
  ]);
  t.deepEqual(names(envoyProxy('default')), [], 'announced, not proven: nothing');
  t.deepEqual(names(envoyProxy('other', { authenticated: true })), [], 'another namespace: nothing');
  t.deepEqual(names(grpcProxy('default', { authenticated: true })), [], 'proxyless gRPC reads no SDS');
  t.is(
    proxySecrets(snapshot, envoyProxy('default', { authenticated: true, id: 'a' })),
    proxySecrets(snapshot, envoyProxy('default', { authenticated: true, id: 'b' })),
    'one array per namespace and snapshot',
  );
});

test('a snapshot that changes something else keeps the Secret messages; a rotated key makes new ones', (t) => {
  const objects = mesh(
    { tls: { mode: 'MUTUAL', credentialName: 'egress' } },
    secret('carry', 'egress', { 'tls.crt': pems.caCertPem, 'tls.key': pems.caKeyPem }),
  );
  const proxy = envoyProxy('carry', { authenticated: true });
  const first = proxySecrets(snapshotOf(objects), proxy);
  t.is(first.length, 2);
  t.is(proxySecrets(snapshotOf([...objects, namespace('unrelated')]), proxy), first, 'the same array');
  const rotated = objects.map((o) =>
    o.kind === 'Secret' ? secret('carry', 'egress', { 'tls.crt': pems.caCertPem, 'tls.key': other.caKeyPem }) : o,
  );
  const next = proxySecrets(snapshotOf(rotated), proxy);
  t.not(next, first);
  t.deepEqual(
    next.map((s) => s.name),
    first.map((s) => s.name),
  );
});

test('trellis diff (inspect/config-diff.ts) shows a rotated key as a redacted change, never the key', (t) => {
  const objects = (key: string) =>
    mesh(
      { tls: { mode: 'MUTUAL', credentialName: 'egress' } },
      secret('default', 'egress', { 'tls.crt': pems.caCertPem, 'tls.key': key }),
    );
  const proxy = envoyProxy('default', { authenticated: true });
  const before = generateResources(contextFor(snapshotOf(objects(pems.caKeyPem)), proxy));
  const after = generateResources(contextFor(snapshotOf(objects(other.caKeyPem)), proxy));
  const changes = resourceChanges(before, after, new Map());
  t.deepEqual(
    changes.map((c) => `${c.type} ${c.name} ${c.change}`),
    ['SDS kubernetes://egress changed'],
  );
  const shown = JSON.stringify(changes);
  t.true(shown.includes('[redacted sha256:'));
  for (const key of [pems.caKeyPem, other.caKeyPem]) {
    t.false(shown.includes(Buffer.from(key).toString('base64').slice(60, 100)));
  }
});

test('a DestinationRule whose credentialName has no usable Secret in its namespace is a warning', (t) => {
  const warnings = (...objects: MeshObject[]) =>
    snapshotOf(mesh({ tls: { mode: 'MUTUAL', credentialName: 'egress' } }, ...objects))
      .problems.filter((p) => p.object?.kind === 'DestinationRule')
      .map((p) => p.message);
  t.deepEqual(warnings(), [
    'warning: DestinationRule default/reviews: credentialName egress: no usable Secret egress in namespace default; the TLS of its proxies there waits for it',
  ]);
  t.deepEqual(warnings(secret('default', 'egress-cacert', { 'ca.crt': pems.rootCertPem })), [
    'warning: DestinationRule default/reviews: credentialName egress: Secret default/egress has no usable certificate and key (tls.crt and tls.key, or cert and key) for MUTUAL; the TLS of its proxies there waits for it',
  ]);
  t.deepEqual(warnings(secret('default', 'egress', { 'tls.crt': pems.caCertPem, 'tls.key': pems.caKeyPem })), []);
  t.deepEqual(warnings(secret('other', 'egress', { 'tls.crt': pems.caCertPem, 'tls.key': pems.caKeyPem })).length, 1);
});
