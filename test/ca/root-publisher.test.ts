// RootCertPublisher (control-plane/ca/root-publisher.ts) against a real kube-apiserver: ConfigMap
// trellis-ca-root-cert with exactly the trust bundle in every namespace, new ones included; deleted or edited
// copies restored; Terminating namespaces skipped; a forbidden namespace retried without holding up the rest
// (and the RBAC of control-plane/ca/README.md enough); nothing written after stop(); the control plane's
// wiring. Every publisher writes every namespace of the cluster, so the cluster tests run serially.
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import crypto from 'node:crypto';
import net from 'node:net';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { CaMetrics } from '../../control-plane/ca/metrics.js';
import {
  isUpToDate,
  ROOT_CERT_CONFIGMAP,
  ROOT_CERT_KEY,
  RootCertPublisher,
  rootCertConfigMap,
  type ConfigMapJson,
} from '../../control-plane/ca/root-publisher.js';
import { startControlPlane } from '../../control-plane/control-plane.js';
import { silentLogger } from '../../control-plane/logger.js';
import { KubeApiError, kubeRequest } from '../../control-plane/kube/http.js';
import { useCluster, type Cluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';
import { recordingLogger } from '../kube/kube-helpers.js';
import { foreignAuthority } from './ca-helpers.js';

const test = anyTest as TestFn<unknown>;
const kube = useCluster(test);

/** The rules of control-plane/ca/README.md ("RBAC"), bound to a test ServiceAccount below. */
const DOCUMENTED_RULES = `
  - { apiGroups: [""], resources: [namespaces], verbs: [list, watch] }
  - { apiGroups: [""], resources: [configmaps], verbs: [get, list, watch, create, update] }`;

async function readRootCert(kubeConfig: KubeConfig, namespace: string): Promise<ConfigMapJson | undefined> {
  try {
    return await kubeRequest<ConfigMapJson>(kubeConfig, {
      path: `/api/v1/namespaces/${namespace}/configmaps/${ROOT_CERT_CONFIGMAP}`,
    });
  } catch (err) {
    if (err instanceof KubeApiError && err.statusCode === 404) return undefined;
    throw err;
  }
}

function published(cluster: Cluster, namespace: string, bundle: string, timeoutMs = 5_000): Promise<ConfigMapJson> {
  return waitFor(
    `ConfigMap ${namespace}/${ROOT_CERT_CONFIGMAP} with the trust bundle`,
    async () => {
      const cm = await readRootCert(cluster.kubeConfig, namespace);
      return cm && isUpToDate(cm, bundle) ? cm : undefined;
    },
    timeoutMs,
  );
}

/** Fails unless `namespace` still has no ConfigMap after polling for `ms` (a bounded poll, not a sleep). */
async function staysAbsent(t: ExecutionContext, cluster: Cluster, namespace: string, ms = 1_500): Promise<void> {
  const found = waitFor(`a ConfigMap in ${namespace}`, () => readRootCert(cluster.kubeConfig, namespace), ms);
  await t.throwsAsync(found, { message: /timed out/ }, `no ConfigMap ${ROOT_CERT_CONFIGMAP} in ${namespace}`);
}

async function writes(metrics: CaMetrics, result: string): Promise<number> {
  return (await metrics.rootCertWrites.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
}

async function startPublisher(t: ExecutionContext, kubeConfig: KubeConfig) {
  const bundle = (await foreignAuthority()).trustBundle();
  const metrics = new CaMetrics(new Registry());
  const { logger, records } = recordingLogger();
  const publisher = new RootCertPublisher({
    kubeConfig,
    trustBundle: bundle,
    writes: metrics.rootCertWrites,
    logger,
    backoff: { initialMs: 50, maxMs: 500 },
  });
  publisher.start();
  t.teardown(() => publisher.stop());
  return { publisher, bundle, metrics, records };
}

test('the ConfigMap carries exactly authority.trustBundle(), byte for byte', async (t) => {
  const authority = await foreignAuthority();
  const bundle = authority.trustBundle();
  const cm = rootCertConfigMap('shop', bundle);
  t.deepEqual(Object.keys(cm.data ?? {}), [ROOT_CERT_KEY]);
  const sent = JSON.parse(JSON.stringify(cm)) as ConfigMapJson; // what goes over the wire
  t.true(Buffer.from(sent.data?.[ROOT_CERT_KEY] ?? '', 'utf8').equals(Buffer.from(authority.trustBundle(), 'utf8')));
  t.is(cm.metadata?.name, ROOT_CERT_CONFIGMAP);
  t.is(cm.metadata?.namespace, 'shop');
  t.is(cm.metadata?.labels?.['trellis.dev/config'], 'root-cert');
  t.true(isUpToDate(cm, bundle));
  // An update keeps the object's own metadata (resourceVersion, other labels), drops managedFields and
  // replaces data as a whole.
  const edited: ConfigMapJson = {
    metadata: { name: ROOT_CERT_CONFIGMAP, resourceVersion: '42', labels: { team: 'a' }, managedFields: [{}] },
    data: { [ROOT_CERT_KEY]: 'tampered', extra: 'x' },
  };
  t.false(isUpToDate(edited, bundle));
  const fixed = rootCertConfigMap('shop', bundle, edited);
  t.is(fixed.metadata?.resourceVersion, '42');
  t.is(fixed.metadata?.labels?.team, 'a');
  t.false('managedFields' in (fixed.metadata ?? {}));
  t.deepEqual(fixed.data, { [ROOT_CERT_KEY]: bundle });
  t.false(isUpToDate({ ...cm, metadata: { ...cm.metadata, labels: {} } }, bundle), 'the label is part of it');
  t.false(isUpToDate({ ...cm, binaryData: { x: 'eA==' } }, bundle));
});

test('an unreachable API server: failures are logged and retried with backoff; stop() ends it', async (t) => {
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'gone', server: `https://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'x' }],
    contexts: [{ name: 'c', cluster: 'gone', user: 'u' }],
    currentContext: 'c',
  });
  const { publisher, records } = await startPublisher(t, kc);
  const failures = () =>
    records.filter((r) => r.msg === 'root-cert: list/watch failed; keeping the last objects and retrying');
  await waitFor('three failed attempts of each loop', () =>
    ['Namespace', 'ConfigMap'].every((kind) => failures().some((r) => r.kind === kind && r.attempt === 3)),
  );
  t.is(failures().find((r) => r.attempt === 1)?.level, 40, 'the first failure is a warning');
  t.false(publisher.status().synced);
  await publisher.stop();
  const seen = failures().length;
  await t.throwsAsync(
    waitFor('another attempt after stop()', () => failures().length > seen, 700),
    { message: /timed out/ },
  );
});

kube.serial(
  'existing namespaces get ConfigMap trellis-ca-root-cert with exactly the trust bundle; new ones within seconds',
  async (t, cluster) => {
    const before = [await cluster.createNamespace('root-a'), await cluster.createNamespace('root-b')];
    const { publisher, bundle, metrics } = await startPublisher(t, cluster.kubeConfig);
    for (const ns of [...before, 'default', 'kube-system']) {
      const cm = await published(cluster, ns, bundle, 10_000);
      t.true(Buffer.from(cm.data?.[ROOT_CERT_KEY] ?? '').equals(Buffer.from(bundle)), `${ns}: byte for byte`);
      t.deepEqual(Object.keys(cm.data ?? {}), [ROOT_CERT_KEY]);
      t.is(cm.metadata?.labels?.['trellis.dev/config'], 'root-cert');
    }
    t.true((await writes(metrics, 'created')) >= 2);

    const t0 = Date.now();
    const later = await cluster.createNamespace('root-new');
    await published(cluster, later, bundle);
    t.log(`a new namespace had its ConfigMap after ${Date.now() - t0} ms`);
    await waitFor('the publisher to see everything up to date', () => {
      const s = publisher.status();
      return s.synced && s.upToDate === s.namespaces;
    });
    t.is(await writes(metrics, 'error'), 0);
  },
);

kube.serial('a deleted ConfigMap is recreated; an edited one is restored', async (t, cluster) => {
  const ns = await cluster.createNamespace('root-edit');
  const { bundle, metrics } = await startPublisher(t, cluster.kubeConfig);
  const first = await published(cluster, ns, bundle);

  await cluster.kubectl(['delete', '-n', ns, `configmap/${ROOT_CERT_CONFIGMAP}`]);
  const again = await published(cluster, ns, bundle);
  t.not(again.metadata?.uid, first.metadata?.uid, 'a new object');

  const patch = {
    metadata: { labels: { 'trellis.dev/config': null, team: 'shop' } },
    data: { [ROOT_CERT_KEY]: 'tampered', extra: 'x' },
  };
  await cluster.kubectl([
    'patch',
    '-n',
    ns,
    `configmap/${ROOT_CERT_CONFIGMAP}`,
    '--type=merge',
    '-p',
    JSON.stringify(patch),
  ]);
  const restored = await published(cluster, ns, bundle);
  t.deepEqual(restored.data, { [ROOT_CERT_KEY]: bundle });
  t.is(restored.metadata?.labels?.team, 'shop', 'labels of others are kept');
  t.true((await writes(metrics, 'updated')) >= 1);
  t.true((await writes(metrics, 'created')) >= 1);
});

kube.serial('namespaces being deleted (Terminating) are skipped, without errors', async (t, cluster) => {
  const doomed = await cluster.createNamespace('root-doomed');
  const other = await cluster.createNamespace('root-other');
  const { publisher, bundle, metrics } = await startPublisher(t, cluster.kubeConfig);
  await published(cluster, doomed, bundle);
  await published(cluster, other, bundle);
  // No namespace controller runs here: a deleted namespace stays Terminating, its objects stay.
  await cluster.kubectl(['delete', 'namespace', doomed, '--wait=false']);
  await waitFor(`${doomed} Terminating`, async () => {
    const ns = await kubeRequest<{ status?: { phase?: string } }>(cluster.kubeConfig, {
      path: `/api/v1/namespaces/${doomed}`,
    });
    return ns.status?.phase === 'Terminating';
  });
  await cluster.kubectl(['delete', '-n', doomed, `configmap/${ROOT_CERT_CONFIGMAP}`]);
  // Deleted after, so delivered after on the same watch and handled after (the queue is FIFO): once this
  // one is back, the doomed namespace's deletion has been handled.
  await cluster.kubectl(['delete', '-n', other, `configmap/${ROOT_CERT_CONFIGMAP}`]);
  await published(cluster, other, bundle);
  t.is(await readRootCert(cluster.kubeConfig, doomed), undefined);
  t.is(await writes(metrics, 'error'), 0);
  t.is(publisher.status().retrying, 0);
});

kube.serial(
  'a forbidden namespace is retried with backoff and holds up no other; the documented RBAC is enough',
  async (t, cluster) => {
    const home = await cluster.createNamespace('root-rbac');
    const allowed = await cluster.createNamespace('root-allowed');
    const forbidden = await cluster.createNamespace('root-forbidden');
    const id = crypto.randomBytes(4).toString('hex');
    const subject = `[{ kind: ServiceAccount, name: publisher, namespace: ${home} }]`;
    await cluster.kubectl(['apply', '-f', '-'], {
      input: `
apiVersion: v1
kind: ServiceAccount
metadata: { name: publisher, namespace: ${home} }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: root-read-${id} }
rules:
  - { apiGroups: [""], resources: [namespaces], verbs: [list, watch] }
  - { apiGroups: [""], resources: [configmaps], verbs: [get, list, watch] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: root-read-${id} }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: root-read-${id} }
subjects: ${subject}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: root-write, namespace: ${allowed} }
rules: [{ apiGroups: [""], resources: [configmaps], verbs: [create, update] }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: root-write, namespace: ${allowed} }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: root-write }
subjects: ${subject}
`,
    });
    const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    const tr = await core.createNamespacedServiceAccountToken({
      name: 'publisher',
      namespace: home,
      body: { spec: { expirationSeconds: 600 } },
    });
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'test', server: cluster.server, caData: Buffer.from(cluster.caPem).toString('base64') }],
      users: [{ name: 'publisher', token: tr.status?.token ?? '' }],
      contexts: [{ name: 'publisher', cluster: 'test', user: 'publisher' }],
      currentContext: 'publisher',
    });

    const { bundle, metrics, records } = await startPublisher(t, kc);
    await published(cluster, allowed, bundle);
    const refused = await waitFor(`a retried 403 for ${forbidden}`, () =>
      records.find((r) => r.namespace === forbidden && r.attempt === 2 && /403/.test(String(r.err))),
    );
    t.is(refused.msg, 'root-cert: writing the ConfigMap failed; retrying');
    t.true((await writes(metrics, 'error')) >= 2);
    t.is(await readRootCert(cluster.kubeConfig, forbidden), undefined);

    // The RBAC of control-plane/ca/README.md, cluster-wide: the forbidden namespace's retry succeeds.
    await cluster.kubectl(['apply', '-f', '-'], {
      input: `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: root-documented-${id} }
rules:${DOCUMENTED_RULES}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: root-documented-${id} }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: root-documented-${id} }
subjects: ${subject}
`,
    });
    await cluster.kubectl(['delete', 'clusterrolebinding', `root-read-${id}`]);
    await published(cluster, forbidden, bundle);
    const fresh = await cluster.createNamespace('root-after-rbac');
    await published(cluster, fresh, bundle);
  },
);

kube.serial(
  'across an API server restart: the watches fail, relist with backoff, and publish again',
  async (t, cluster) => {
    const { bundle, records } = await startPublisher(t, cluster.kubeConfig);
    await published(cluster, await cluster.createNamespace('root-pre-restart'), bundle);
    await cluster.restartApiServer();
    await waitFor('a failed list/watch', () =>
      records.some((r) => r.msg === 'root-cert: list/watch failed; keeping the last objects and retrying'),
    );
    const ns = await cluster.createNamespace('root-post-restart');
    await published(cluster, ns, bundle, 15_000);
    t.pass();
  },
);

kube.serial('after stop() nothing is written: a new namespace gets no ConfigMap', async (t, cluster) => {
  const ns = await cluster.createNamespace('root-stop');
  const { publisher, bundle } = await startPublisher(t, cluster.kubeConfig);
  await published(cluster, ns, bundle);
  await publisher.stop();
  const after = await cluster.createNamespace('root-after-stop');
  await waitFor(`namespace ${after} on the API server`, () =>
    kubeRequest(cluster.kubeConfig, { path: `/api/v1/namespaces/${after}` }).then(() => true),
  );
  await cluster.kubectl(['delete', '-n', ns, `configmap/${ROOT_CERT_CONFIGMAP}`]);
  await staysAbsent(t, cluster, after);
  t.is(await readRootCert(cluster.kubeConfig, ns), undefined, 'a deleted one is not restored either');
});

kube.serial(
  'the control plane publishes the root in Kubernetes mode with the CA, unless ca.publishRootCert is false',
  async (t, cluster) => {
    await cluster.kubectl(['apply', '-f', '-'], {
      input: 'apiVersion: v1\nkind: Namespace\nmetadata: { name: trellis-system }\n',
    });
    const start = (publishRootCert?: boolean) =>
      startControlPlane({
        logger: silentLogger,
        xdsPort: 0,
        monitoringPort: 0,
        kube: { kubeConfig: cluster.kubeConfig, writeStatus: false },
        ca: { ...(publishRootCert === undefined ? {} : { publishRootCert }) },
      });

    const off = await start(false);
    const quiet = await cluster.createNamespace('root-cp-off');
    await staysAbsent(t, cluster, quiet);
    await off.close();

    const on = await start();
    t.teardown(() => on.close());
    const bundle = on.ca?.authority.trustBundle() ?? '';
    t.regex(bundle, /BEGIN CERTIFICATE/);
    await published(cluster, quiet, bundle, 10_000);
    await published(cluster, await cluster.createNamespace('root-cp-on'), bundle);
    const metric = await on.metrics.registry.getSingleMetricAsString('trellis_ca_root_cert_writes_total');
    t.regex(metric, /trellis_ca_root_cert_writes_total\{result="created"\} [1-9]/);
  },
);
