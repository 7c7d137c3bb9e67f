// control-plane/kube/informer.ts with a manual clock (test/helpers/manual-clock.ts): its backoff waits only
// for the test, so reconnects are checked step by step, in milliseconds. Against a closed port (no server
// at all) and against a real kube-apiserver (a CRD that is not installed yet; an API server restart).
import net from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import anyTest from 'ava';
import { Informer, type InformerBatch, type KubeObject } from '../../control-plane/kube/informer.js';
import { silentLogger } from '../../control-plane/logger.js';
import { useCluster } from '../helpers/cluster.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { waitFor } from '../helpers/wait.js';
import { installCrds } from './kube-helpers.js';

const kube = useCluster(anyTest);

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** Advances the clock to each pending timer until `done()`; rejects after `timeoutMs` of real time. */
async function advanceUntil(clock: ManualClock, what: string, done: () => boolean, timeoutMs = 30_000): Promise<void> {
  await waitFor(
    what,
    () => {
      if (done()) return true;
      const next = clock.pending()[0];
      if (next !== undefined) clock.advance(next);
      return false;
    },
    timeoutMs,
  );
}

anyTest('no API server: retries wait 100, 200, 400, 400 ms on the clock, and stop() leaves no timer', async (t) => {
  const port = await closedPort();
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'gone', server: `https://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'x' }],
    contexts: [{ name: 'c', cluster: 'gone', user: 'u' }],
    currentContext: 'c',
  });
  const clock = new ManualClock();
  const informer = new Informer<KubeObject>({
    kubeConfig,
    kind: 'Namespace',
    path: '/api/v1/namespaces',
    logger: silentLogger,
    clock,
    backoff: { initialMs: 100, maxMs: 400 },
    random: () => 1,
  });
  informer.start();
  const delays: number[] = [];
  for (let failures = 1; failures <= 4; failures++) {
    // Connection refused comes back at once; the retry then waits on the clock, and only there.
    await waitFor(`failure ${failures}`, () => informer.status().errors === failures && clock.pending().length === 1);
    delays.push(clock.pending()[0]!);
    clock.advance(clock.pending()[0]!);
  }
  t.deepEqual(delays, [100, 200, 400, 400]);
  await waitFor('failure 5', () => informer.status().errors === 5 && clock.pending().length === 1);
  t.false(informer.isSynced());
  t.regex(informer.status().lastError ?? '', /ECONNREFUSED/);
  await informer.stop();
  t.deepEqual(clock.pending(), [], 'stop() ended the wait');
  t.is(informer.status().errors, 5, 'no attempt after stop()');
  await t.throwsAsync(informer.whenSynced(), { message: /stopped/ });
});

kube.serial('a CRD not installed yet: 404, backoff on the clock, then the list once it exists', async (t, cluster) => {
  const clock = new ManualClock();
  const batches: InformerBatch<KubeObject>[] = [];
  const informer = new Informer<KubeObject>({
    kubeConfig: cluster.kubeConfig,
    kind: 'DestinationRule',
    path: '/apis/networking.trellis.dev/v1alpha1/destinationrules',
    logger: silentLogger,
    clock,
    batchMs: 0,
    backoff: { initialMs: 1000, maxMs: 8000 },
    random: () => 1,
  });
  t.teardown(() => informer.stop());
  informer.onBatch((b) => void batches.push(b));
  informer.start();
  await waitFor('the 404', () => informer.status().errors === 1 && clock.pending().length === 1);
  t.regex(informer.status().lastError ?? '', /404/);
  t.deepEqual(clock.pending(), [1000]);
  await installCrds(cluster);
  await advanceUntil(clock, 'the first list', () => informer.isSynced());
  await informer.whenSynced();
  t.true(batches.at(-1)?.listed);

  const ns = await cluster.createNamespace('informer-crd');
  await cluster.kubectl(['apply', '-n', ns, '-f', '-'], {
    input: `apiVersion: networking.trellis.dev/v1alpha1
kind: DestinationRule
metadata: { name: reviews }
spec: { host: reviews }
`,
  });
  await waitFor('the watched object', () => informer.get(ns, 'reviews'));
  const added = batches.flatMap((b) => b.changes).find((c) => c.key === `${ns}/reviews`);
  t.is(added?.previous, undefined);
  t.is(added?.current?.metadata?.name, 'reviews');
});

kube.serial(
  'an API server restart: the informer waits on the clock, then reconnects (relisting) and sees what changed meanwhile',
  async (t, cluster) => {
    const clock = new ManualClock();
    const informer = new Informer<KubeObject>({
      kubeConfig: cluster.kubeConfig,
      kind: 'Namespace',
      path: '/api/v1/namespaces',
      logger: silentLogger,
      clock,
      batchMs: 0,
      backoff: { initialMs: 500, maxMs: 30_000 },
      random: () => 0.5,
    });
    t.teardown(() => informer.stop());
    informer.start();
    await informer.whenSynced();
    const before = await cluster.createNamespace('informer-before');
    await waitFor('the namespace before the restart', () => informer.get(undefined, before));

    await cluster.restartApiServer();
    // The stream broke; the informer waits on the clock (it keeps every object meanwhile).
    await waitFor('the failure', () => informer.status().errors > 0 && clock.pending().length === 1, 30_000);
    t.truthy(informer.get(undefined, before), 'fail static: the objects stay');
    t.false(informer.status().watching);
    const during = await cluster.createNamespace('informer-during');
    t.is(informer.get(undefined, during), undefined, 'nothing happens until the clock moves');

    await advanceUntil(clock, 'the watch open again with the new namespace', () =>
      Boolean(informer.status().watching && informer.get(undefined, during)),
    );
    t.truthy(informer.get(undefined, before));
    t.true(informer.status().lists >= 2, `relisted: ${JSON.stringify(informer.status())}`);
  },
);

kube.serial(
  'a watch the server ends (timeoutSeconds) is reopened from the last resourceVersion: no relist, nothing missed',
  async (t, cluster) => {
    const informer = new Informer<KubeObject>({
      kubeConfig: cluster.kubeConfig,
      kind: 'Namespace',
      path: '/api/v1/namespaces',
      logger: silentLogger,
      batchMs: 0,
      watchTimeoutSeconds: 2,
    });
    t.teardown(() => informer.stop());
    informer.start();
    await informer.whenSynced();
    // Each watch ends after two seconds; several in a row, quiet or not, and the informer goes on.
    await waitFor('three watch streams', () => informer.status().watches >= 3, 30_000);
    const ns = await cluster.createNamespace('informer-rewatch');
    await waitFor('the namespace created after them', () => informer.get(undefined, ns), 30_000);
    t.like(informer.status(), { lists: 1, errors: 0, synced: true });
  },
);
