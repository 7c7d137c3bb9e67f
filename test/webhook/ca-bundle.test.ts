// The control plane as its own webhook CA, against the real kube-apiserver: with exactly the RBAC of
// deploy/install.yaml (ServiceAccount trellis-system/trellisd), in Kubernetes mode with the CA, it serves
// the webhook port with a certificate from the mesh CA and writes the mesh root into the caBundle of both
// webhook configurations; the API server then calls the webhook successfully. An edited caBundle is put
// back, a new trust bundle (setTrustBundle) and a new root (the Secret replaced, the control plane
// restarted) are written. The configurations are registered by URL (https://127.0.0.1:<port>/…), as the
// API server runs on this host; install.yaml registers them by Service.
import anyTest, { type TestFn } from 'ava';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { startControlPlane, type RunningControlPlane } from '../../control-plane/control-plane.js';
import { createRootCa } from '../../certs/index.js';
import { caBundlePatch } from '../../control-plane/webhook/ca-bundle.js';
import { installObjects } from '../../deploy/manifest.js';
import { renderObjects } from '../../deploy/render.js';
import { captureLogs } from '../helpers/ca-control-plane.js';
import { useCluster, type Cluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';
import { crdsEstablished } from '../helpers/crds-established.js';

const test = anyTest as TestFn<unknown>;
const kube = useCluster(test);

const RBAC_KINDS = new Set([
  'Namespace',
  'CustomResourceDefinition',
  'ServiceAccount',
  'ClusterRole',
  'ClusterRoleBinding',
  'Role',
  'RoleBinding',
]);

/** A KubeConfig that authenticates as trellis-system/trellisd (a TokenRequest token). */
async function trellisdKubeConfig(cluster: Cluster): Promise<KubeConfig> {
  const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  const tr = await core.createNamespacedServiceAccountToken({
    name: 'trellisd',
    namespace: 'trellis-system',
    body: { spec: { expirationSeconds: 3600 } },
  });
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'test', server: cluster.server, caData: Buffer.from(cluster.caPem).toString('base64') }],
    users: [{ name: 'trellisd', token: tr.status?.token ?? '' }],
    contexts: [{ name: 'trellisd', cluster: 'test', user: 'trellisd' }],
    currentContext: 'trellisd',
  });
  return kc;
}

/** The two configurations of install.yaml, but registered by URL on `port` (and without a caBundle). */
function configurationsByUrl(port: number): string {
  const objects = installObjects().filter(
    (o) => o.kind === 'MutatingWebhookConfiguration' || o.kind === 'ValidatingWebhookConfiguration',
  );
  const byUrl = objects.map((o) => ({
    ...o,
    webhooks: (o.webhooks as { clientConfig: { service: { path: string } } }[]).map((w) => ({
      ...w,
      clientConfig: { url: `https://127.0.0.1:${port}${w.clientConfig.service.path}` },
    })),
  }));
  return renderObjects(byUrl, '');
}

interface Config {
  webhooks?: { clientConfig?: { caBundle?: string } }[];
}

async function caBundles(cluster: Cluster): Promise<string[]> {
  const out: string[] = [];
  for (const kind of [
    'mutatingwebhookconfiguration/trellis-sidecar-injector',
    'validatingwebhookconfiguration/trellis-validator',
  ]) {
    const got = await cluster.kubectl(['get', kind, '-o', 'json'], { allowFailure: true });
    if (got.code !== 0) return [];
    for (const w of (JSON.parse(got.stdout) as Config).webhooks ?? []) out.push(w.clientConfig?.caBundle ?? '');
  }
  return out;
}

async function allCarry(cluster: Cluster, bundle: string, what: string): Promise<void> {
  const want = Buffer.from(bundle).toString('base64');
  await waitFor(
    what,
    async () => {
      const got = await caBundles(cluster);
      return got.length === 3 && got.every((b) => b === want);
    },
    20_000,
  );
}

const BAD_VS = (ns: string, name: string): string => `
apiVersion: networking.trellis.dev/v1alpha1
kind: VirtualService
metadata: { name: ${name}, namespace: ${ns} }
spec:
  hosts: [reviews]
  http: [{ match: [{ uri: { regex: "(?=a)" } }], route: [{ destination: { host: reviews } }] }]
`;

/** The API server calls /validate through TLS it verified with the caBundle: our message comes back. */
async function webhookAnswers(cluster: Cluster, ns: string, name: string): Promise<string> {
  const res = await cluster.kubectl(['apply', '-f', '-'], { input: BAD_VS(ns, name), allowFailure: true });
  return res.stderr;
}

async function start(kc: KubeConfig): Promise<{ cp: RunningControlPlane; logs: Record<string, unknown>[] }> {
  const { logger, lines } = captureLogs('info');
  const cp = await startControlPlane({
    logger,
    xdsPort: 0,
    monitoringPort: 0,
    kube: { kubeConfig: kc, writeStatus: false },
    ca: { publishRootCert: false },
    webhook: { port: 0, ipAddresses: ['127.0.0.1'] },
  });
  return { cp, logs: lines };
}

kube.serial(
  'the control plane writes its root into both caBundles, serves the webhook with it, and rewrites it after a root change',
  async (t, cluster) => {
    const rbac = installObjects().filter((o) => RBAC_KINDS.has(o.kind));
    await cluster.kubectl(['apply', '--server-side', '-f', '-'], { input: renderObjects(rbac, '') });
    await crdsEstablished(cluster);
    const kc = await trellisdKubeConfig(cluster);

    let { cp } = await start(kc);
    t.teardown(() => cp.close());
    t.truthy(cp.webhookPort);
    t.truthy(cp.webhookCaBundle);
    // Registered after the start, without a caBundle: the watch brings them and the bundle is written.
    await cluster.kubectl(['apply', '-f', '-'], { input: configurationsByUrl(cp.webhookPort!) });
    const root1 = cp.ca!.authority.trustBundle();
    await allCarry(cluster, root1, 'the first caBundle');
    const ns = await cluster.createNamespace('cabundle');
    await waitFor(
      'the API server to call the webhook',
      async () =>
        /denied the request: VirtualService .*must be an RE2 regex/.test(await webhookAnswers(cluster, ns, 'bad-1')),
      20_000,
    );

    // Someone blanks a caBundle (a kubectl apply of the shipped YAML would): it is put back.
    await cluster.kubectl([
      'patch',
      'validatingwebhookconfiguration',
      'trellis-validator',
      '--type=json',
      '-p',
      '[{"op":"replace","path":"/webhooks/0/clientConfig/caBundle","value":""}]',
    ]);
    await allCarry(cluster, root1, 'the caBundle put back');

    // A new trust bundle handed over at run time (a root rotation): written to both.
    const other = (await createRootCa()).certPem;
    cp.webhookCaBundle!.setTrustBundle(root1 + other);
    await allCarry(cluster, root1 + other, 'the rotated trust bundle');

    // A new root: the Secret replaced, the control plane restarted. The new root is written, and the
    // API server verifies the new serving certificate with it.
    await cp.close();
    await cluster.kubectl(['delete', 'secret', '-n', 'trellis-system', 'trellis-ca']);
    const restarted = await start(kc);
    cp = restarted.cp;
    const logs = restarted.logs;
    const root2 = cp.ca!.authority.trustBundle();
    t.not(root2, root1);
    await cluster.kubectl(['apply', '-f', '-'], { input: configurationsByUrl(cp.webhookPort!) });
    await allCarry(cluster, root2, 'the new root');
    await waitFor(
      'the API server to call the restarted webhook',
      async () =>
        /denied the request: VirtualService .*must be an RE2 regex/.test(await webhookAnswers(cluster, ns, 'bad-2')),
      20_000,
    );
    const good = await cluster.kubectl(['apply', '-f', '-'], {
      input: `apiVersion: networking.trellis.dev/v1alpha1
kind: VirtualService
metadata: { name: good, namespace: ${ns} }
spec: { hosts: [reviews], http: [{ route: [{ destination: { host: reviews } }] }] }
`,
    });
    t.regex(good.stdout, /virtualservice.networking.trellis.dev\/good created/);
    t.true(logs.some((l) => l.msg === 'webhook-ca-bundle: wrote the trust bundle into the caBundle of each webhook'));
    t.false(
      logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('webhook-ca-bundle: writing the caBundle failed')),
    );
    await cp.close();
  },
);

test('caBundlePatch: nothing when every webhook carries the bundle; else a test of each name and an add of its caBundle', (t) => {
  const config = {
    webhooks: [
      { name: 'a.trellis.dev', clientConfig: { caBundle: 'QQ==' } },
      { name: 'b.trellis.dev', clientConfig: {} },
    ],
  };
  t.deepEqual(caBundlePatch(config, 'QQ=='), [
    { op: 'test', path: '/webhooks/0/name', value: 'a.trellis.dev' },
    { op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: 'QQ==' },
    { op: 'test', path: '/webhooks/1/name', value: 'b.trellis.dev' },
    { op: 'add', path: '/webhooks/1/clientConfig/caBundle', value: 'QQ==' },
  ]);
  t.is(caBundlePatch({ webhooks: [config.webhooks[0]!] }, 'QQ=='), undefined);
  t.is(caBundlePatch({}, 'QQ=='), undefined);
});
