// DestinationRule `tls.credentialName` served over SDS on the ADS stream (translate/secrets.ts), through
// the real protocol: a real control plane in local mode (config directory, CA on), real TLS, and raw
// grpc-js ADS clients whose namespace is proven by their certificates. A proxy of namespace alpha that
// subscribes `kubernetes://foo` gets alpha's Secret foo, never beta's; a name only beta has is never sent
// to it; a plaintext (unauthenticated) stream gets no Secret at all; debug output never carries a key.
import anyTest, { type TestFn } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { TypeUrl } from '../../control-plane/envoy/protos.js';
import type { Secret } from '../../control-plane/envoy/gen/envoy/extensions/transport_sockets/tls/v3/secret_pb.js';
import type { Cluster } from '../../control-plane/envoy/gen/envoy/config/cluster/v3/cluster_pb.js';
import { UpstreamTlsContextSchema } from '../../control-plane/envoy/gen/envoy/extensions/transport_sockets/tls/v3/tls_pb.js';
import { fromBinary } from '@bufbuild/protobuf';
import type { RunningControlPlane } from '../../control-plane/control-plane.js';
import { namesOf, RawAdsClient, resourcesOf, type SotwRequestInit } from '../helpers/ads-client.js';
import { startCaControlPlane, type CaControlPlane } from '../helpers/ca-control-plane.js';
import { waitFor } from '../helpers/wait.js';
import {
  CONTROL_PLANE_ID,
  makeRootAndIntermediate,
  obtainCert,
  tlsCaClient,
  tlsCredentials,
  TLS_CHANNEL_OPTIONS,
  type TestCaPems,
  type WorkloadCert,
} from '../ca/ca-helpers.js';

interface Ctx {
  env: CaControlPlane<RunningControlPlane>;
  root: string;
  alpha: TestCaPems;
  beta: TestCaPems;
  certs: { alpha: WorkloadCert; beta: WorkloadCert };
  clients: RawAdsClient[];
}
const test = anyTest as TestFn<Ctx>;

const TOKENS = {
  alpha: 'token-for-alpha-client-0123456789',
  beta: 'token-for-beta-client-0123456789a',
};

const b64 = (text: string): string => Buffer.from(text).toString('base64');

/** A namespace with an external service, a rule originating mTLS with credential `foo`, and Secrets. */
function namespaceYaml(ns: string, pems: TestCaPems, extraSecret?: string): string {
  return `
apiVersion: v1
kind: Namespace
metadata: { name: ${ns} }
---
apiVersion: v1
kind: Service
metadata: { name: payments, namespace: ${ns} }
spec: { type: ExternalName, externalName: api.payments.example, ports: [{ name: http, port: 443 }] }
---
apiVersion: networking.trellis.dev/v1alpha1
kind: DestinationRule
metadata: { name: payments, namespace: ${ns} }
spec:
  host: payments
  exportTo: ['.']
  trafficPolicy: { tls: { mode: MUTUAL, credentialName: foo } }
---
apiVersion: v1
kind: Secret
metadata: { name: foo, namespace: ${ns} }
type: kubernetes.io/tls
data:
  tls.crt: ${b64(pems.caCertPem)}
  tls.key: ${b64(pems.caKeyPem)}
  ca.crt: ${b64(pems.rootCertPem)}
${
  extraSecret
    ? `---
apiVersion: networking.trellis.dev/v1alpha1
kind: DestinationRule
metadata: { name: ${extraSecret}, namespace: ${ns} }
spec:
  host: ${extraSecret}.example
  exportTo: ['.']
  trafficPolicy: { tls: { mode: SIMPLE, credentialName: ${extraSecret} } }
---
apiVersion: v1
kind: Secret
metadata: { name: ${extraSecret}, namespace: ${ns} }
stringData: { ca.crt: ${JSON.stringify(pems.rootCertPem)} }
`
    : ''
}`;
}

test.before(async (t) => {
  const alpha = await makeRootAndIntermediate({ name: 'Alpha' });
  const beta = await makeRootAndIntermediate({ name: 'Beta' });
  const env = await startCaControlPlane({
    prefix: 'trellis-sds-credentials-',
    tokens: [
      { token: TOKENS.alpha, namespace: 'alpha', serviceAccount: 'client' },
      { token: TOKENS.beta, namespace: 'beta', serviceAccount: 'client' },
    ],
    debounceQuietMs: 10,
    debounceMaxMs: 50,
    start: async (options) => {
      const configDir = path.join(path.dirname(options.ca!.stateDir!), 'mesh');
      fs.mkdirSync(configDir, { recursive: true });
      fs.writeFileSync(path.join(configDir, 'alpha.yaml'), namespaceYaml('alpha', alpha));
      fs.writeFileSync(path.join(configDir, 'beta.yaml'), namespaceYaml('beta', beta, 'only-beta'));
      const { startControlPlane } = await import('../../control-plane/control-plane.js');
      return startControlPlane({ ...options, configDir });
    },
  });
  const root = env.cp.ca!.authority.trustBundle();
  const target = `127.0.0.1:${env.cp.secureXdsPort!}`;
  const certs = {
    alpha: await obtainCert(tlsCaClient(target, root), 'spiffe://cluster.local/ns/alpha/sa/client', {
      token: TOKENS.alpha,
    }),
    beta: await obtainCert(tlsCaClient(target, root), 'spiffe://cluster.local/ns/beta/sa/client', {
      token: TOKENS.beta,
    }),
  };
  t.context = { env, root, alpha, beta, certs, clients: [] };
});

test.after.always(async (t) => {
  for (const c of t.context.clients ?? []) c.close();
  await t.context.env?.cleanup();
});

function tlsClient(t: { context: Ctx }, ns: 'alpha' | 'beta'): RawAdsClient {
  const client = new RawAdsClient(
    `127.0.0.1:${t.context.env.cp.secureXdsPort!}`,
    tlsCredentials(t.context.root, CONTROL_PLANE_ID, t.context.certs[ns]),
    TLS_CHANNEL_OPTIONS,
  );
  t.context.clients.push(client);
  return client;
}

function node(id: string): SotwRequestInit['node'] {
  return { id, cluster: 'test', metadata: { PROXY_TYPE: 'envoy' } };
}

function secretsOf(response: Awaited<ReturnType<ReturnType<RawAdsClient['sotw']>['next']>>): Map<string, Secret> {
  return resourcesOf(response) as Map<string, Secret>;
}

function text(secret: Secret | undefined, part: 'chain' | 'key' | 'ca'): string {
  const type = secret?.type;
  if (part === 'ca') {
    return type?.case === 'validationContext' && type.value.trustedCa?.specifier.case === 'inlineBytes'
      ? Buffer.from(type.value.trustedCa.specifier.value).toString()
      : '';
  }
  if (type?.case !== 'tlsCertificate') return '';
  const source = part === 'chain' ? type.value.certificateChain : type.value.privateKey;
  return source?.specifier.case === 'inlineBytes' ? Buffer.from(source.specifier.value).toString() : '';
}

test.serial(
  'a proxy of alpha gets alpha Secret foo (certificate, key, CA) for its credentialName cluster',
  async (t) => {
    const s = tlsClient(t, 'alpha').sotw();
    s.send({ node: node('payments-client.alpha'), typeUrl: TypeUrl.Cluster });
    const cds = resourcesOf(await s.next(10_000)) as Map<string, Cluster>;
    const cluster = cds.get('outbound|443||payments.alpha.svc.cluster.local');
    const socket = cluster?.transportSocket?.configType;
    t.is(socket?.case, 'typedConfig');
    const tls = fromBinary(
      UpstreamTlsContextSchema,
      socket?.case === 'typedConfig' ? socket.value.value : new Uint8Array(),
    );
    t.deepEqual(
      tls.commonTlsContext?.tlsCertificateSdsSecretConfigs.map((c) => c.name),
      ['kubernetes://foo'],
    );

    s.send({ typeUrl: TypeUrl.Secret, resourceNames: ['kubernetes://foo', 'kubernetes://foo-cacert'] });
    const sds = secretsOf(await s.next(10_000));
    t.deepEqual([...sds.keys()].sort(), ['kubernetes://foo', 'kubernetes://foo-cacert']);
    t.is(text(sds.get('kubernetes://foo'), 'chain'), t.context.alpha.caCertPem);
    t.is(text(sds.get('kubernetes://foo'), 'key'), t.context.alpha.caKeyPem);
    t.is(text(sds.get('kubernetes://foo-cacert'), 'ca'), t.context.alpha.rootCertPem);
    s.close();
  },
);

test.serial('a proxy of beta gets beta foo; a name only beta has is never sent to alpha', async (t) => {
  const b = tlsClient(t, 'beta').sotw();
  b.send({ node: node('payments-client.beta'), typeUrl: TypeUrl.Secret, resourceNames: ['kubernetes://foo'] });
  const beta = secretsOf(await b.next(10_000));
  t.is(text(beta.get('kubernetes://foo'), 'chain'), t.context.beta.caCertPem);
  t.not(text(beta.get('kubernetes://foo'), 'key'), t.context.alpha.caKeyPem);
  b.close();

  // alpha asks for beta's `only-beta` in the same request as its own foo: the answer holds foo only.
  const a = tlsClient(t, 'alpha').sotw();
  a.send({
    node: node('curious.alpha'),
    typeUrl: TypeUrl.Secret,
    resourceNames: ['kubernetes://only-beta-cacert', 'kubernetes://foo', 'kubernetes://beta/only-beta'],
  });
  const res = await a.next(10_000);
  t.deepEqual(namesOf(res), ['kubernetes://foo']);
  t.is(text(secretsOf(res).get('kubernetes://foo'), 'chain'), t.context.alpha.caCertPem);
  // The names it cannot have are logged once each, for the operator.
  const warned = await waitFor('the absent Secrets logged', () => {
    const names = t.context.env.logs
      .filter((l) => l.proxy === 'curious.alpha' && l.type === 'Secret' && l.level === 40)
      .map((l) => l.name);
    return names.length === 2 ? names : undefined;
  });
  t.deepEqual([...warned].sort(), ['kubernetes://beta/only-beta', 'kubernetes://only-beta-cacert']);
  a.close();

  // beta itself is served its only-beta (a CA-only Secret: the trust resource).
  const b2 = tlsClient(t, 'beta').sotw();
  b2.send({ node: node('other.beta'), typeUrl: TypeUrl.Secret, resourceNames: ['kubernetes://only-beta-cacert'] });
  t.is(text(secretsOf(await b2.next(10_000)).get('kubernetes://only-beta-cacert'), 'ca'), t.context.beta.rootCertPem);
  b2.close();
});

test.serial('a plaintext stream claiming namespace alpha gets no Secret; debug output never shows a key', async (t) => {
  const { env } = t.context;
  const plain = new RawAdsClient(`127.0.0.1:${env.cp.xdsPort!}`);
  t.context.clients.push(plain);
  const p = plain.sotw();
  p.send({
    node: { id: 'liar.alpha', cluster: 'test', metadata: { PROXY_TYPE: 'envoy', NAMESPACE: 'alpha' } },
    typeUrl: TypeUrl.Secret,
    resourceNames: ['kubernetes://foo'],
  });
  const a = tlsClient(t, 'alpha').sotw();
  a.send({ node: node('held.alpha'), typeUrl: TypeUrl.Secret, resourceNames: ['kubernetes://foo'] });
  await a.next(10_000);

  const monitoring = (pathname: string) => fetch(`http://127.0.0.1:${env.cp.monitoringPort}${pathname}`);
  // What the plaintext proxy was handed: the mesh config, no SDS type at all.
  const plainConfig = await waitFor('the plaintext proxy has a config', async () => {
    const res = await monitoring('/debug/config?proxy=liar.alpha');
    if (res.status !== 200) return undefined;
    const body = (await res.json()) as { config: Record<string, unknown> };
    return 'CDS' in body.config ? body.config : undefined;
  });
  t.false('SDS' in plainConfig, 'an unauthenticated stream is never handed Secrets');

  const key = t.context.alpha.caKeyPem;
  const keyBody = key.split('\n')[1]!; // a line of the base64 body, in whatever form it would appear
  const keyB64 = Buffer.from(key).toString('base64').slice(60, 100); // past the generic header
  for (const pathname of ['/debug/config?proxy=held.alpha', '/debug/config_dump?proxy=held.alpha']) {
    const body = await (await monitoring(pathname)).text();
    t.true(body.includes('kubernetes://foo'), `${pathname} lists the Secret`);
    t.false(body.includes(keyBody) || body.includes(keyB64), `${pathname} carries no private key`);
  }
  const logs = JSON.stringify(env.logs);
  t.false(logs.includes(keyBody) || logs.includes(keyB64), 'no log line carries the key');
  p.close();
  a.close();
});
