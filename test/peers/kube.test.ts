// Real Kubernetes: etcd + kube-apiserver 1.34 built from tools/peers/, driven by @kubernetes/client-node and
// the kubectl built from the same module. Skipped (one line) when the peers are not built, failed under CI.
import { once } from 'node:events';
import https from 'node:https';
import crypto from 'node:crypto';
import anyTest from 'ava';
import {
  AdmissionregistrationV1Api,
  AuthenticationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type V1Pod,
} from '@kubernetes/client-node';
import { useCluster } from '../helpers/cluster.js';
import { crdsEstablished } from '../helpers/crds-established.js';

const kube = useCluster(anyTest);

async function eventually<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 25; ; delay = Math.min(delay * 2, 500)) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

kube.test('the cluster reports v1.34.4 on both kubectl and the server', async (t, cluster) => {
  t.log(`warm start: ${JSON.stringify(cluster.timings)}`);
  const { stdout } = await cluster.kubectl(['version', '-o', 'json']);
  const v = JSON.parse(stdout) as { clientVersion: { gitVersion: string }; serverVersion: { gitVersion: string } };
  t.is(v.clientVersion.gitVersion, 'v1.34.4');
  t.is(v.serverVersion.gitVersion, 'v1.34.4');
});

kube.test('a ServiceAccount token for audience trellis-ca passes TokenReview', async (t, cluster) => {
  const ns = await cluster.createNamespace('tokens');
  const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  const auth = cluster.kubeConfig.makeApiClient(AuthenticationV1Api);
  await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'workload' } } });

  const tr = await core.createNamespacedServiceAccountToken({
    name: 'workload',
    namespace: ns,
    body: { spec: { audiences: ['trellis-ca'], expirationSeconds: 600 } },
  });
  const token = tr.status?.token;
  if (!token) return t.fail('TokenRequest returned no token');
  const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
    aud: string[];
    sub: string;
    iss: string;
  };
  t.deepEqual(claims.aud, ['trellis-ca']);
  t.is(claims.sub, `system:serviceaccount:${ns}:workload`);
  t.is(claims.iss, cluster.serviceAccountIssuer);

  const review = await auth.createTokenReview({ body: { spec: { token, audiences: ['trellis-ca'] } } });
  t.true(review.status?.authenticated);
  t.is(review.status?.user?.username, `system:serviceaccount:${ns}:workload`);
  t.deepEqual(review.status?.audiences, ['trellis-ca']);
  t.true(review.status?.user?.groups?.includes(`system:serviceaccounts:${ns}`));

  const wrongAudience = await auth.createTokenReview({ body: { spec: { token, audiences: ['someone-else'] } } });
  t.not(wrongAudience.status?.authenticated, true);

  // Real behaviour a fake usually misses: the token dies with its ServiceAccount (after up to 10 s: the
  // apiserver caches successful token authentications that long).
  await core.deleteNamespacedServiceAccount({ name: 'workload', namespace: ns });
  await eventually('the token to be rejected after its ServiceAccount was deleted', 30_000, async () => {
    const r = await auth.createTokenReview({ body: { spec: { token, audiences: ['trellis-ca'] } } });
    return r.status?.authenticated === true ? undefined : r;
  });
});

const crdName = 'probes.peers-test.trellis.dev';
const crd = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: ${crdName}
spec:
  group: peers-test.trellis.dev
  names: { kind: Probe, plural: probes, singular: probe, listKind: ProbeList }
  scope: Namespaced
  versions:
    - name: v1alpha1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [weight]
              properties:
                weight: { type: integer, minimum: 0, maximum: 100 }
`;

kube.test('kubectl applies a CRD server-side; it becomes Established and validates objects', async (t, cluster) => {
  const applied = await cluster.kubectl(['apply', '--server-side', '--field-manager=trellis-test', '-f', '-'], {
    input: crd,
  });
  t.regex(applied.stdout, /serverside-applied/);
  await crdsEstablished(cluster, [crdName]);

  const ns = await cluster.createNamespace('crd');
  const custom = cluster.kubeConfig.makeApiClient(CustomObjectsApi);
  const created = (await custom.createNamespacedCustomObject({
    group: 'peers-test.trellis.dev',
    version: 'v1alpha1',
    namespace: ns,
    plural: 'probes',
    body: {
      apiVersion: 'peers-test.trellis.dev/v1alpha1',
      kind: 'Probe',
      metadata: { name: 'p' },
      spec: { weight: 7 },
    },
  })) as { metadata: { uid: string } };
  t.truthy(created.metadata.uid);

  const got = await cluster.kubectl([
    'get',
    'probes.peers-test.trellis.dev',
    'p',
    '-n',
    ns,
    '-o',
    'jsonpath={.spec.weight}',
  ]);
  t.is(got.stdout, '7');

  // The real apiserver enforces the structural schema.
  const bad = await cluster.kubectl(['apply', '--server-side', '-n', ns, '-f', '-'], {
    allowFailure: true,
    input: 'apiVersion: peers-test.trellis.dev/v1alpha1\nkind: Probe\nmetadata: { name: bad }\nspec: { weight: 101 }\n',
  });
  t.not(bad.code, 0);
  t.regex(bad.stderr, /spec\.weight/);
});

kube.test('a Pod is admitted (ServiceAccount admission included) and stays Pending', async (t, cluster) => {
  const ns = await cluster.createNamespace('pods');
  const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name: 'app', labels: { app: 'app' } },
      spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1', ports: [{ containerPort: 8080 }] }] },
    },
  });
  const pod = await core.readNamespacedPod({ name: 'app', namespace: ns });
  t.is(pod.status?.phase, 'Pending');
  t.is(pod.spec?.nodeName, undefined);
  t.is(pod.spec?.serviceAccountName, 'default');
  t.true(pod.spec?.volumes?.some((v) => v.name.startsWith('kube-api-access-')) ?? false);
  t.is(pod.spec?.containers[0]?.image, 'registry.invalid/app:1');
});

kube.test('a mutating webhook registered by URL on 127.0.0.1 is called for Pod CREATE', async (t, cluster) => {
  const ns = await cluster.createNamespace('webhook', { 'trellis.dev/inject': 'enabled' });
  const cert = await cluster.issueServingCert();
  const seen: string[] = [];
  const server = https.createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        request: { uid: string; namespace: string; object: V1Pod; dryRun?: boolean };
      };
      seen.push(`${review.request.namespace}/${review.request.object.metadata?.name ?? ''}`);
      const patch = [{ op: 'add', path: '/metadata/labels/trellis.dev~1mutated', value: 'yes' }];
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          response: {
            uid: review.request.uid,
            allowed: true,
            patchType: 'JSONPatch',
            patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
          },
        }),
      );
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  const admission = cluster.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  const configName = `trellis-test-${crypto.randomBytes(4).toString('hex')}`;
  await admission.createMutatingWebhookConfiguration({
    body: {
      metadata: { name: configName },
      webhooks: [
        {
          name: 'inject.peers-test.trellis.dev',
          admissionReviewVersions: ['v1'],
          sideEffects: 'None',
          failurePolicy: 'Fail',
          timeoutSeconds: 5,
          clientConfig: {
            url: `https://127.0.0.1:${port}/inject`,
            caBundle: Buffer.from(cert.caPem).toString('base64'),
          },
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
          rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
        },
      ],
    },
  });
  t.teardown(() => admission.deleteMutatingWebhookConfiguration({ name: configName }).then(() => undefined));

  const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  const pod = (name: string): V1Pod => ({
    metadata: { name, labels: { app: name } },
    spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
  });
  // The apiserver picks up new webhook configurations asynchronously: dry-run until it calls us.
  await eventually('the apiserver to call the new webhook', 30_000, async () => {
    const r = await core.createNamespacedPod({ namespace: ns, body: pod('probe'), dryRun: 'All' });
    return r.metadata?.labels?.['trellis.dev/mutated'] === 'yes' ? r : undefined;
  });
  await core.createNamespacedPod({ namespace: ns, body: pod('app') });
  const stored = await core.readNamespacedPod({ name: 'app', namespace: ns });
  t.is(stored.metadata?.labels?.['trellis.dev/mutated'], 'yes');
  t.true(seen.includes(`${ns}/app`));
});
