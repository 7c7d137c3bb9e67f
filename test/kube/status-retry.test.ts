// The status writer's retries on a manual clock (test/helpers/manual-clock.ts), against a real
// kube-apiserver: a write the API server refuses (403: no `patch` on virtualservices/status) is retried
// after the backoff of lib/backoff.ts — only when the clock says so — and goes through once the RBAC allows it.
import crypto from 'node:crypto';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import anyTest from 'ava';
import { StatusWriter } from '../../control-plane/sources/status-writer.js';
import { useCluster } from '../helpers/cluster.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { waitFor } from '../helpers/wait.js';
import {
  accepted,
  apply,
  installCrds,
  nextSnapshot,
  recordingLogger,
  startKubeSource,
  statusOf,
  type RoutingObject,
} from './kube-helpers.js';

const kube = useCluster(anyTest);

kube.test(
  'a refused status write waits for the backoff on the clock, then succeeds once allowed',
  async (t, cluster) => {
    await installCrds(cluster);
    const ns = await cluster.createNamespace('status-retry');
    const id = crypto.randomBytes(4).toString('hex');
    await cluster.kubectl(['create', 'serviceaccount', 'writer', '-n', ns]);
    const tr = await cluster.kubeConfig.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
      name: 'writer',
      namespace: ns,
      body: { spec: { expirationSeconds: 600 } },
    });
    const writerConfig = new KubeConfig();
    writerConfig.loadFromOptions({
      clusters: [{ name: 'test', server: cluster.server, caData: Buffer.from(cluster.caPem).toString('base64') }],
      users: [{ name: 'writer', token: tr.status?.token ?? '' }],
      contexts: [{ name: 'writer', cluster: 'test', user: 'writer' }],
      currentContext: 'writer',
    });

    const { logger } = recordingLogger();
    const source = await startKubeSource(cluster, { logger });
    t.teardown(() => source.stop());
    await apply(
      cluster,
      ns,
      `apiVersion: networking.trellis.dev/v1alpha1
kind: VirtualService
metadata: { name: reviews }
spec: { hosts: [reviews], http: [{ route: [{ destination: { host: reviews } }] }] }
`,
    );
    await nextSnapshot(source, 'the VirtualService judged', (s) => statusOf(s, 'VirtualService', ns, 'reviews'));

    // The writer sees only this namespace's statuses and objects.
    let cache: { from: ReturnType<typeof source.current>; view: ReturnType<typeof source.current> } | undefined;
    const clock = new ManualClock();
    const writer = new StatusWriter({
      kubeConfig: writerConfig,
      source: {
        current: () => {
          const snapshot = source.current();
          if (cache?.from !== snapshot) {
            cache = {
              from: snapshot,
              view: { ...snapshot, statuses: snapshot.statuses.filter((s) => s.namespace === ns) },
            };
          }
          return cache.view;
        },
        onChange: (l) => source.onChange(l),
        ready: () => source.ready(),
        live: (kind, namespace, name) => source.live(kind, namespace, name),
        onLiveChange: (l) =>
          source.onLiveChange((kind, namespace, name) => namespace === ns && l(kind, namespace, name)),
      },
      logger,
      clock,
      delayMs: 100,
    });
    t.teardown(() => writer.stop());
    writer.start();

    // The quiet period is on the clock too: nothing is written before it passes.
    t.deepEqual(clock.pending(), [100]);
    clock.advance(100);
    await waitFor('the refused write', () => writer.stats.errors === 1 && clock.pending().length === 1);
    const firstRetry = clock.pending()[0]!;
    t.true(firstRetry >= 500 && firstRetry <= 1000, `the first retry in [0.5 s, 1 s]: ${firstRetry}`);
    t.is(writer.stats.writes, 0);

    clock.advance(firstRetry);
    // The retry marks the key; the quiet period follows, then the write, refused again.
    await waitFor('the quiet period of the retry', () => clock.pending().length === 1);
    clock.advance(clock.pending()[0]!);
    await waitFor('the second refusal', () => writer.stats.errors === 2 && clock.pending().length === 1);
    const secondRetry = clock.pending()[0]!;
    t.true(secondRetry >= 1000 && secondRetry <= 2000, `the second retry in [1 s, 2 s]: ${secondRetry}`);

    // The documented RBAC (control-plane/sources/README.md): patch on the status subresources.
    await cluster.kubectl(['apply', '-f', '-'], {
      input: `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: status-writer-${id} }
rules:
  - apiGroups: [networking.trellis.dev]
    resources: [virtualservices/status, destinationrules/status]
    verbs: [patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: status-writer-${id} }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: status-writer-${id} }
subjects: [{ kind: ServiceAccount, name: writer, namespace: ${ns} }]
`,
    });
    t.teardown(() => cluster.kubectl(['delete', 'clusterrolebinding,clusterrole', `status-writer-${id}`]));
    t.is(writer.stats.writes, 0, 'nothing is retried before the clock moves');
    // RBAC takes effect when the API server's authorizer cache has the binding: step the clock until it does.
    await waitFor(
      'the status written',
      () => {
        const live = source.live('VirtualService', ns, 'reviews') as RoutingObject | undefined;
        // The watch event of the write can arrive before the PATCH's own answer: wait for both.
        if (live && accepted(live)?.status === 'True') return writer.stats.writes >= 1;
        const next = clock.pending()[0];
        if (next !== undefined) clock.advance(next);
        return false;
      },
      30_000,
    );
    t.true(writer.stats.writes >= 1);
    t.true(writer.stats.errors >= 2);
  },
);
