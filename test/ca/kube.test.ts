// The CA against a real kube-apiserver (tools/peers): TokenReview with audience trellis-ca made by the
// control plane's own ServiceAccount (bound to system:auth-delegator, nothing more), and the CA Secret
// trellis-system/trellis-ca created once for every replica.
import anyTest, { type TestFn } from 'ava';
import * as grpc from '@grpc/grpc-js';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { silentLogger } from '../../control-plane/logger.js';
import { certificateServiceDefinition } from '../../control-plane/ca/service.js';
import { setupCa } from '../../control-plane/ca/setup.js';
import { loadOrCreateKubeCa } from '../../control-plane/ca/store.js';
import { Registry } from 'prom-client';
import { useCluster, type Cluster } from '../helpers/cluster.js';
import { CaClient, grpcError, makeCsr } from './ca-helpers.js';

const test = anyTest as TestFn<unknown>;
const kube = useCluster(test);

const RBAC = `
apiVersion: v1
kind: Namespace
metadata: { name: trellis-system }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: trellisd, namespace: trellis-system }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: trellisd-auth-delegator }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:auth-delegator }
subjects: [{ kind: ServiceAccount, name: trellisd, namespace: trellis-system }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: trellisd-ca-secret, namespace: trellis-system }
rules:
  - { apiGroups: [""], resources: [secrets], verbs: [create] }
  - { apiGroups: [""], resources: [secrets], resourceNames: [trellis-ca], verbs: [get] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: trellisd-ca-secret, namespace: trellis-system }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: trellisd-ca-secret }
subjects: [{ kind: ServiceAccount, name: trellisd, namespace: trellis-system }]
`;

async function token(cluster: Cluster, namespace: string, sa: string, audiences?: string[]): Promise<string> {
  const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  const tr = await core.createNamespacedServiceAccountToken({
    name: sa,
    namespace,
    body: { spec: { ...(audiences ? { audiences } : {}), expirationSeconds: 600 } },
  });
  if (!tr.status?.token) throw new Error('TokenRequest returned no token');
  return tr.status.token;
}

/** A KubeConfig that authenticates as the control plane's ServiceAccount trellis-system/trellisd. */
async function trellisdKubeConfig(cluster: Cluster): Promise<KubeConfig> {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: 'test',
        server: cluster.server,
        caData: Buffer.from(cluster.caPem).toString('base64'),
        skipTLSVerify: false,
      },
    ],
    users: [{ name: 'trellisd', token: await token(cluster, 'trellis-system', 'trellisd') }],
    contexts: [{ name: 'trellisd', cluster: 'test', user: 'trellisd' }],
    currentContext: 'trellisd',
  });
  return kc;
}

let setup: Promise<{ kc: KubeConfig; client: CaClient; server: grpc.Server }> | undefined;
function caServer(cluster: Cluster): Promise<{ kc: KubeConfig; client: CaClient; server: grpc.Server }> {
  setup ??= (async () => {
    await cluster.kubectl(['apply', '-f', '-'], { input: RBAC });
    const kc = await trellisdKubeConfig(cluster);
    const ca = await setupCa({ kubeConfig: kc }, new Registry(), silentLogger);
    const server = new grpc.Server();
    server.addService(certificateServiceDefinition, ca.service.implementation());
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    return { kc, client: new CaClient(`127.0.0.1:${port}`), server };
  })();
  return setup;
}

test.after.always(async () => {
  const s = await setup?.catch(() => undefined);
  s?.client.close();
  s?.server.forceShutdown();
});

async function withServiceAccount(cluster: Cluster, sa: string): Promise<string> {
  const ns = await cluster.createNamespace('ca');
  await cluster.kubeConfig
    .makeApiClient(CoreV1Api)
    .createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: sa } } });
  return ns;
}

kube.serial(
  'the CA Secret trellis-system/trellis-ca is created once; concurrent replicas use the same CA',
  async (t, cluster) => {
    const { kc } = await caServer(cluster); // made the Secret already
    const replicas = await Promise.all([loadOrCreateKubeCa(kc), loadOrCreateKubeCa(kc), loadOrCreateKubeCa(kc)]);
    t.true(replicas.every((r) => !r.created));
    const pem = replicas[0]!.material.root.toPem();
    t.true(replicas.every((r) => r.material.root.toPem() === pem));
    const secret = await cluster.kubeConfig
      .makeApiClient(CoreV1Api)
      .readNamespacedSecret({ name: 'trellis-ca', namespace: 'trellis-system' });
    t.deepEqual(Object.keys(secret.data ?? {}).sort(), ['root-cert.pem', 'root-key.pem']);

    // A race for a new Secret (another name): one POST wins, the other gets 409 and reads the winner's.
    const race = await Promise.all([
      loadOrCreateKubeCa(cluster.kubeConfig, { name: 'race-ca' }),
      loadOrCreateKubeCa(cluster.kubeConfig, { name: 'race-ca' }),
    ]);
    t.is(race.filter((r) => r.created).length, 1);
    t.is(race[0]!.material.root.toPem(), race[1]!.material.root.toPem());
  },
);

kube.test(
  'a TokenRequest token (audience trellis-ca) gets a certificate for exactly its namespace and service account',
  async (t, cluster) => {
    const { client } = await caServer(cluster);
    const ns = await withServiceAccount(cluster, 'workload');
    const tok = await token(cluster, ns, 'workload', ['trellis-ca']);
    const id = `spiffe://cluster.local/ns/${ns}/sa/workload`;
    const chain = await client.createCertificate(await makeCsr(id), { token: tok });
    t.is(new crypto.X509Certificate(chain[0]!).subjectAltName, `URI:${id}`);
    // The same token asking for another service account of its namespace is refused.
    const other = await grpcError(
      client.createCertificate(await makeCsr(`spiffe://cluster.local/ns/${ns}/sa/default`), { token: tok }),
    );
    t.is(other.code, grpc.status.PERMISSION_DENIED);
    t.regex(other.details, /^foreign-san:/);
  },
);

kube.test('a token with another audience (the API server’s) is refused: UNAUTHENTICATED', async (t, cluster) => {
  const { client } = await caServer(cluster);
  const ns = await withServiceAccount(cluster, 'workload');
  const tok = await token(cluster, ns, 'workload'); // default audience: the API server
  const err = await grpcError(
    client.createCertificate(await makeCsr(`spiffe://cluster.local/ns/${ns}/sa/workload`), { token: tok }),
  );
  t.is(err.code, grpc.status.UNAUTHENTICATED);
  t.regex(err.details, /TokenReview/);
});

kube.test('an expired token is refused: UNAUTHENTICATED', async (t, cluster) => {
  // TokenRequest will not mint a token shorter than 600 s, so this takes a real TokenRequest token and
  // re-signs it with the cluster's own ServiceAccount signing key (the test cluster's pki/sa.key) with
  // exp/iat/nbf moved an hour into the past: to the API server, exactly that token having expired.
  const { client } = await caServer(cluster);
  const ns = await withServiceAccount(cluster, 'workload');
  const tok = await token(cluster, ns, 'workload', ['trellis-ca']);
  const [h, p] = tok.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>;
  const past = Math.floor(Date.now() / 1000) - 3600;
  const expiredClaims = { ...claims, iat: past - 600, nbf: past - 600, exp: past };
  const body = `${h}.${Buffer.from(JSON.stringify(expiredClaims)).toString('base64url')}`;
  const key = fs.readFileSync(path.join(cluster.dir, 'pki', 'sa.key'));
  const expired = `${body}.${crypto.sign('sha256', Buffer.from(body), key).toString('base64url')}`;
  // The re-signing itself is sound: the same claims with the original times are accepted.
  const freshBody = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  const fresh = `${freshBody}.${crypto.sign('sha256', Buffer.from(freshBody), key).toString('base64url')}`;
  const id = `spiffe://cluster.local/ns/${ns}/sa/workload`;
  await t.notThrowsAsync(client.createCertificate(await makeCsr(id), { token: fresh }));
  const err = await grpcError(client.createCertificate(await makeCsr(id), { token: expired }));
  t.is(err.code, grpc.status.UNAUTHENTICATED);
});

kube.test('a token whose ServiceAccount was deleted is refused: UNAUTHENTICATED', async (t, cluster) => {
  const { client } = await caServer(cluster);
  const ns = await withServiceAccount(cluster, 'doomed');
  const tok = await token(cluster, ns, 'doomed', ['trellis-ca']);
  const id = `spiffe://cluster.local/ns/${ns}/sa/doomed`;
  await t.notThrowsAsync(client.createCertificate(await makeCsr(id), { token: tok }));
  await cluster.kubeConfig.makeApiClient(CoreV1Api).deleteNamespacedServiceAccount({ name: 'doomed', namespace: ns });
  // The API server caches a successful token authentication for up to 10 s.
  const csr = await makeCsr(id);
  const deadline = Date.now() + 30_000;
  let last: grpc.ServiceError | undefined;
  for (let delay = 50; Date.now() < deadline; delay = Math.min(delay * 2, 1_000)) {
    last = await client.createCertificate(csr, { token: tok }).then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );
    if (last) break;
    await new Promise((r) => setTimeout(r, delay));
  }
  t.is(last?.code, grpc.status.UNAUTHENTICATED);
});
