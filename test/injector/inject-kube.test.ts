// The /inject webhook on a real kube-apiserver, registered by URL (https://127.0.0.1:<port>/inject) with the
// test CA as caBundle, as deploy/ registers it: one entry for labelled namespaces (pods labelled
// trellis.dev/inject=false excluded by objectSelector), one for pods labelled trellis.dev/inject=true in
// unlabelled namespaces. A pod in a labelled namespace is stored injected; in an unlabelled one untouched;
// opt-out and opt-in work; a pod that cannot be injected is refused with our message; with the webhook down
// and failurePolicy Fail, pods are refused with a message naming the webhook. Skipped with one line when the
// peers are not built (failed under CI=true).
import crypto from 'node:crypto';
import anyTest from 'ava';
import { stringify } from 'yaml';
import { Registry } from 'prom-client';
import { controlPlaneInjectHandler } from '../../injector/webhook.js';
import { injectPod } from '../../injector/inject.js';
import type { Container, Pod } from '../../injector/types.js';
import { WebhookServer } from '../../control-plane/webhook/server.js';
import { useCluster, type Cluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';
import { recordingLogger } from '../kube/kube-helpers.js';
import { IMAGE } from './pods.js';

const kube = useCluster(anyTest);

function podYaml(
  name: string,
  extra: { labels?: Record<string, string>; annotations?: Record<string, string> } = {},
): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      labels: { app: name, ...extra.labels },
      ...(extra.annotations ? { annotations: extra.annotations } : {}),
    },
    spec: {
      containers: [
        {
          name: 'app',
          image: 'registry.test/app:1',
          ports: [{ containerPort: 8080, name: 'http' }],
          readinessProbe: { httpGet: { path: '/ready', port: 'http' } },
        },
      ],
    },
  });
}

async function getPod(cluster: Cluster, ns: string, name: string): Promise<Pod> {
  const r = await cluster.kubectl(['get', 'pod', '-n', ns, name, '-o', 'json']);
  return JSON.parse(r.stdout) as Pod;
}

const names = (list: readonly Container[] | undefined): string[] => (list ?? []).map((c) => c.name);

async function register(cluster: Cluster, port: number, caPem: string, testId: string): Promise<string> {
  const name = `trellis-inject-${testId}`;
  const common = {
    clientConfig: { url: `https://127.0.0.1:${port}/inject`, caBundle: Buffer.from(caPem).toString('base64') },
    rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' }],
    failurePolicy: 'Fail',
    sideEffects: 'None',
    reinvocationPolicy: 'Never',
    admissionReviewVersions: ['v1'],
    timeoutSeconds: 10,
  };
  const configuration = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name },
    webhooks: [
      {
        name: 'namespace.inject.trellis.dev',
        ...common,
        namespaceSelector: {
          matchLabels: { 'trellis.dev/inject': 'enabled', 'trellis-test': testId },
          matchExpressions: [
            { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'trellis-system'] },
          ],
        },
        objectSelector: { matchExpressions: [{ key: 'trellis.dev/inject', operator: 'NotIn', values: ['false'] }] },
      },
      {
        name: 'object.inject.trellis.dev',
        ...common,
        namespaceSelector: {
          matchLabels: { 'trellis-test': testId },
          matchExpressions: [
            { key: 'trellis.dev/inject', operator: 'DoesNotExist' },
            { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'trellis-system'] },
          ],
        },
        objectSelector: { matchLabels: { 'trellis.dev/inject': 'true' } },
      },
    ],
  };
  await cluster.kubectl(['apply', '-f', '-'], { input: stringify(configuration) });
  return name;
}

kube.test(
  'pods are stored injected as the namespace label and pod labels say; webhook down: refused',
  async (t, cluster) => {
    const testId = crypto.randomBytes(4).toString('hex');
    const labelled = await cluster.createNamespace('inject', {
      'trellis.dev/inject': 'enabled',
      'trellis-test': testId,
    });
    const plain = await cluster.createNamespace('plain', { 'trellis-test': testId });
    const cert = await cluster.issueServingCert();
    const { logger, records } = recordingLogger();
    const registry = new Registry();
    const server = new WebhookServer({
      cert: cert.certPem,
      key: cert.keyPem,
      handlers: {
        '/inject': controlPlaneInjectHandler({ logger, registry, image: IMAGE, kubeConfig: cluster.kubeConfig }),
      },
    });
    // The handler reads the API server's version (native sidecars from 1.29).
    const version = await waitFor('the API server version in the log', () =>
      records.find((r) => r.msg === 'injector: API server version'),
    );
    t.is(version.minor, '34');
    const port = await server.listen('127.0.0.1', 0);
    const name = await register(cluster, port, cert.caPem, testId);
    t.teardown(async () => {
      await cluster.kubectl(['delete', 'mutatingwebhookconfiguration', name, '--ignore-not-found']);
      await server.close();
    });

    // The API server picks up a new configuration asynchronously: probe with a server-side dry run.
    await waitFor(
      'the injection webhook to be in effect',
      async () => {
        const r = await cluster.kubectl(['create', '--dry-run=server', '-n', labelled, '-o', 'json', '-f', '-'], {
          input: podYaml('probe'),
          allowFailure: true,
        });
        return r.code === 0 && names((JSON.parse(r.stdout) as Pod).spec?.initContainers).includes('trellis-proxy');
      },
      30_000,
    );

    // Labelled namespace: stored injected, with the very containers injectPod makes.
    await cluster.kubectl(['apply', '-n', labelled, '-f', '-'], { input: podYaml('web') });
    const web = await getPod(cluster, labelled, 'web');
    t.deepEqual(names(web.spec!.initContainers), ['trellis-init', 'trellis-proxy']);
    t.is(web.spec!.initContainers![1]!.restartPolicy, 'Always');
    t.is(web.metadata!.labels!['trellis.dev/tlsMode'], 'mesh');
    t.truthy(web.metadata!.annotations!['trellis.dev/status']);
    const local = injectPod(
      (await import('yaml')).parse(podYaml('web')) as Pod,
      { name: labelled },
      { image: IMAGE, kubernetesMinor: 34 },
    );
    if (local.outcome !== 'injected') throw new Error(JSON.stringify(local));
    const proxy = web.spec!.initContainers![1]!;
    const expected = local.pod.spec!.initContainers![1]!;
    t.deepEqual(proxy.args, expected.args);
    t.deepEqual(proxy.env, expected.env);
    t.deepEqual(proxy.securityContext, expected.securityContext);
    t.deepEqual(
      web.spec!.volumes!.map((v) => v.name).filter((v) => v.startsWith('trellis-')),
      ['trellis-data', 'trellis-ca-root-cert', 'trellis-token'],
    );

    // Unlabelled namespace: untouched.
    await cluster.kubectl(['apply', '-n', plain, '-f', '-'], { input: podYaml('plain') });
    const untouched = await getPod(cluster, plain, 'plain');
    t.deepEqual(names(untouched.spec!.initContainers), []);
    t.is(untouched.metadata!.annotations?.['trellis.dev/status'], undefined);

    // Opt-out, by label (the webhook is not even called) and by annotation (the handler says no).
    await cluster.kubectl(['apply', '-n', labelled, '-f', '-'], {
      input: podYaml('out-label', { labels: { 'trellis.dev/inject': 'false' } }),
    });
    await cluster.kubectl(['apply', '-n', labelled, '-f', '-'], {
      input: podYaml('out-annotation', { annotations: { 'trellis.dev/inject': 'false' } }),
    });
    for (const pod of ['out-label', 'out-annotation']) {
      t.deepEqual(names((await getPod(cluster, labelled, pod)).spec!.initContainers), [], pod);
    }

    // Opt-in from the unlabelled namespace (the objectSelector entry).
    await cluster.kubectl(['apply', '-n', plain, '-f', '-'], {
      input: podYaml('in', { labels: { 'trellis.dev/inject': 'true' } }),
    });
    t.deepEqual(names((await getPod(cluster, plain, 'in')).spec!.initContainers), ['trellis-init', 'trellis-proxy']);

    // A pod that cannot be injected as written is refused with our message.
    const bad = await cluster.kubectl(['apply', '-n', labelled, '-f', '-'], {
      input: podYaml('bad', { annotations: { 'trellis.dev/template': 'linkerd' } }),
      allowFailure: true,
    });
    t.not(bad.code, 0);
    t.true(
      bad.stderr.includes(
        `admission webhook "namespace.inject.trellis.dev" denied the request: Pod ${labelled}/bad: metadata.annotations[trellis.dev/template]: must be envoy or grpc, not "linkerd"`,
      ),
      bad.stderr,
    );

    // The webhook down, failurePolicy Fail: refused, naming the webhook; the unlabelled namespace goes on.
    await server.close();
    const down = await cluster.kubectl(['apply', '-n', labelled, '-f', '-'], {
      input: podYaml('down'),
      allowFailure: true,
    });
    t.not(down.code, 0);
    t.log(down.stderr.trim());
    t.regex(down.stderr, /Internal error occurred: failed calling webhook "namespace\.inject\.trellis\.dev"/);
    t.regex(down.stderr, /connection refused/);
    t.is(
      (await cluster.kubectl(['get', 'pod', '-n', labelled, 'down', '--ignore-not-found', '-o', 'name'])).stdout,
      '',
    );
    await cluster.kubectl(['apply', '-n', plain, '-f', '-'], { input: podYaml('unaffected') });
    const metrics = await registry.metrics();
    t.regex(metrics, /trellis_injections_total\{result="injected"\} [1-9]/);
    t.regex(metrics, /trellis_injections_total\{result="refused"\} 1/);
  },
);
