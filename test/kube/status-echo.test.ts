// The Kubernetes path of issue 14 against a real kube-apiserver: the echo of a status write (a new
// resourceVersion and status, nothing the model reads) costs no rebuild and publishes nothing, and the
// statuses of a couple of hundred routing objects converge (no timing is asserted: a generous deadline).
import anyTest from 'ava';
import { Registry } from 'prom-client';
import { KubeModeMetrics } from '../../control-plane/sources/metrics.js';
import { StatusWriter } from '../../control-plane/sources/status-writer.js';
import { useCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';
import { accepted, installCrds, recordingLogger, startKubeSource, type RoutingObject } from './kube-helpers.js';

const kube = useCluster(anyTest);

const N = 100;

function mesh(n: number): string {
  const docs: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = `svc-${i}`;
    docs.push(`apiVersion: v1
kind: Service
metadata: { name: ${name} }
spec: { ports: [{ name: http, port: 8080 }] }`);
    docs.push(`apiVersion: networking.trellis.dev/v1alpha1
kind: VirtualService
metadata: { name: ${name} }
spec:
  hosts: [${name}]
  http: [{ timeout: 2s, route: [{ destination: { host: ${name}, subset: v1 } }] }]`);
    docs.push(`apiVersion: networking.trellis.dev/v1alpha1
kind: DestinationRule
metadata: { name: ${name} }
spec:
  host: ${name}
  subsets: [{ name: v1, labels: { version: v1 } }]`);
  }
  return docs.join('\n---\n');
}

/** Sum of a counter's samples whose labels include `labels`. */
async function counter(
  metrics: KubeModeMetrics['rebuilds'] | KubeModeMetrics['events'],
  labels: Record<string, string>,
): Promise<number> {
  const { values } = await metrics.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x))
    .reduce((sum, v) => sum + v.value, 0);
}

kube.test(
  `status echoes of ${2 * N} routing objects cost no rebuild, and every status converges`,
  async (t, cluster) => {
    await installCrds(cluster);
    const ns = await cluster.createNamespace('status-echo');
    await cluster.kubectl(['apply', '-n', ns, '-f', '-'], { input: mesh(N) });

    const registry = new Registry();
    const metrics = new KubeModeMetrics(registry);
    const { logger } = recordingLogger();
    const source = await startKubeSource(cluster, { logger, metrics });
    t.teardown(() => source.stop());
    // Everything was there before the first list: one snapshot judges every object.
    const atReady = source.meshStats;
    t.is(atReady.published, 1, JSON.stringify(atReady));
    const statuses = source.current().statuses.filter((s) => s.namespace === ns);
    t.is(statuses.length, 2 * N);
    t.true(statuses.every((s) => s.accepted));

    const writer = new StatusWriter({ kubeConfig: cluster.kubeConfig, source, logger, metrics, concurrency: 16 });
    t.teardown(() => writer.stop());
    writer.start();

    // Converged: every object in the informer's cache (so its echo has arrived) says Accepted=True.
    const pending = (): number =>
      statuses.filter((s) => {
        const live = source.live(s.kind, s.namespace, s.name) as RoutingObject | undefined;
        return !(live && accepted(live)?.status === 'True' && live.status?.observedGeneration === 1);
      }).length;
    await waitFor(`every status written and echoed (${2 * N} objects)`, () => pending() === 0, 120_000);
    await writer.idle();
    t.true(writer.stats.writes >= 2 * N, JSON.stringify(writer.stats));

    // The echoes reached the informer (and the writer, which found them current), not the model. The
    // informer's store is current at once, its batch to KubeSource follows within batchMs.
    await waitFor('every echo handed to KubeSource', () => source.meshStats.ignored >= writer.stats.writes);
    const after = source.meshStats;
    t.is(
      after.rebuilds,
      atReady.rebuilds,
      `no rebuild for ${writer.stats.writes} status echoes: ${JSON.stringify(after)}`,
    );
    t.is(after.published, atReady.published, 'no snapshot published');
    t.true(after.ignored >= 2 * N, JSON.stringify(after));
    t.is(await counter(metrics.events, { effect: 'ignored' }), after.ignored);
    t.is(await counter(metrics.rebuilds, {}), after.rebuilds);
    t.is(await counter(metrics.statusWrites, { result: 'written' }), writer.stats.writes);
    const text = await registry.metrics();
    t.regex(text, /trellis_status_write_duration_seconds_count \d+/);
    t.regex(text, /trellis_mesh_rebuild_duration_seconds_count 1\b/);

    // A label on a VirtualService is not read by the model either; a spec edit is.
    await cluster.kubectl(['label', 'vs', '-n', ns, 'svc-0', 'team=a']);
    await waitFor('the label in the cache', () => {
      const live = source.live('VirtualService', ns, 'svc-0') as { metadata?: { labels?: Record<string, string> } };
      return live?.metadata?.labels?.team === 'a';
    });
    t.is(source.meshStats.rebuilds, atReady.rebuilds, 'no rebuild for a label');
    await cluster.kubectl([
      'patch',
      'vs',
      '-n',
      ns,
      'svc-0',
      '--type=merge',
      '-p',
      '{"spec":{"http":[{"timeout":"3s","route":[{"destination":{"host":"svc-0","subset":"v1"}}]}]}}',
    ]);
    await waitFor('the spec edit in the snapshot', () => source.meshStats.published === atReady.published + 1, 30_000);
    await waitFor(
      'the status of generation 2',
      () => {
        const live = source.live('VirtualService', ns, 'svc-0') as RoutingObject | undefined;
        return live?.status?.observedGeneration === 2;
      },
      30_000,
    );
    await writer.idle();
    t.is(source.meshStats.rebuilds, atReady.rebuilds + 1, 'one rebuild for the spec edit, none for its status');
  },
);
