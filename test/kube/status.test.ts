// The CRDs and the status writer on a real kube-apiserver: crds/*.yaml apply server-side and become
// Established; the schema and CEL refuse what they can with their messages; a running KubeSource and
// StatusWriter set `Accepted` True/False (validator's message, observedGeneration) through the status
// subresource, write only when the status changes, and retry a conflict. Skipped with one line when the
// peers are not built (failed under CI=true).
import anyTest from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RouteConfiguration } from '../../control-plane/envoy/gen/envoy/config/route/v3/route_pb.js';
import { TypeUrl } from '../../control-plane/envoy/protos.js';
import { silentLogger } from '../../control-plane/logger.js';
import { XdsMetrics } from '../../control-plane/metrics.js';
import { defaultMeshConfig } from '../../control-plane/translate/context.js';
import { meshGenerator } from '../../control-plane/translate/generator.js';
import { PushController, type ConfigConsumer, type ProxyConfig } from '../../control-plane/xds/push-controller.js';
import { routeConfigJson } from '../translate/_routes-fixtures.js';
import { envoyProxy } from '../translate/_snapshots.js';
import { waitFor } from '../helpers/wait.js';
import type { KubeSource } from '../../control-plane/sources/kube-source.js';
import { StatusWriter } from '../../control-plane/sources/status-writer.js';
import { useCluster, type Cluster } from '../helpers/cluster.js';
import {
  accepted,
  apply,
  getRouting,
  installCrds,
  nextSnapshot,
  recordingLogger,
  startKubeSource,
  statusOf,
  type RoutingObject,
} from './kube-helpers.js';

const kube = useCluster(anyTest);

const vs = (name: string, regex: string, extra = ''): string => `
apiVersion: networking.trellis.dev/v1alpha1
kind: VirtualService
metadata: { name: ${name}${extra} }
spec:
  hosts: [${name}]
  http:
    - match: [{ uri: { regex: "${regex}" } }]
      route: [{ destination: { host: ${name} } }]
`;

/** Waits (store events, deadline) until the cached object satisfies `probe`; returns it as the API server wrote it. */
function stored(
  source: KubeSource,
  kind: 'VirtualService' | 'DestinationRule' | 'PeerAuthentication' | 'AuthorizationPolicy' | 'Sidecar',
  ns: string,
  name: string,
  what: string,
  probe: (o: RoutingObject) => boolean,
  timeoutMs = 15_000,
): Promise<RoutingObject> {
  return new Promise((resolve, reject) => {
    let off = (): void => undefined;
    const check = (): boolean => {
      const o = source.live(kind, ns, name) as RoutingObject | undefined;
      if (!o || !probe(o)) return false;
      clearTimeout(timer);
      off();
      resolve(o);
      return true;
    };
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${kind} ${ns}/${name}: ${what}`));
    }, timeoutMs);
    if (!check()) off = source.onLiveChange(() => void check());
  });
}

/**
 * Polls `read` for `windowMs` and fails as soon as its value differs from the first one: what should not
 * happen (a snapshot published for nothing) is given a bounded time to show up.
 */
async function staysPut(what: string, read: () => unknown, windowMs: number): Promise<void> {
  const first = JSON.stringify(read());
  const deadline = Date.now() + windowMs;
  while (Date.now() < deadline) {
    await sleep(20);
    const now = JSON.stringify(read());
    if (now !== first) throw new Error(`${what} changed from ${first} to ${now}`);
  }
}

async function running(cluster: Cluster): Promise<{ source: KubeSource; writer: StatusWriter }> {
  await installCrds(cluster);
  const { logger } = recordingLogger();
  const source = await startKubeSource(cluster, { logger });
  const writer = new StatusWriter({ kubeConfig: cluster.kubeConfig, source, logger, delayMs: 20 });
  writer.start();
  return { source, writer };
}

kube.serial('the CRDs apply server-side and are Established', async (t, cluster) => {
  await installCrds(cluster);
  const { stdout } = await cluster.kubectl([
    'get',
    'crd',
    'virtualservices.networking.trellis.dev',
    'destinationrules.networking.trellis.dev',
    '-o',
    'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Established")].status}{"\\n"}{end}',
  ]);
  t.deepEqual(stdout.trim().split('\n').sort(), [
    'destinationrules.networking.trellis.dev=True',
    'virtualservices.networking.trellis.dev=True',
  ]);
});

kube.test('the schema and CEL refuse what they can, with their messages, before any webhook', async (t, cluster) => {
  await installCrds(cluster);
  const ns = await cluster.createNamespace('schema');
  const overWeight = `
apiVersion: networking.trellis.dev/v1alpha1
kind: VirtualService
metadata: { name: heavy }
spec:
  hosts: [reviews]
  http: [{ route: [{ destination: { host: reviews }, weight: -1 }] }]
`;
  const schema = await cluster.kubectl(['apply', '-n', ns, '-f', '-'], { input: overWeight, allowFailure: true });
  t.not(schema.code, 0);
  t.regex(schema.stderr, /VirtualService.*"heavy" is invalid/);
  t.regex(
    schema.stderr,
    /spec\.http\[0\]\.route\[0\]\.weight: Invalid value: -1: spec\.http\[0\]\.route\[0\]\.weight in body should be greater than or equal to 0/,
  );

  const noRoutes = `
apiVersion: networking.trellis.dev/v1alpha1
kind: VirtualService
metadata: { name: empty }
spec:
  hosts: [reviews]
`;
  const cel = await cluster.kubectl(['apply', '-n', ns, '-f', '-'], { input: noRoutes, allowFailure: true });
  t.not(cel.code, 0);
  t.regex(cel.stderr, /spec: Invalid value: "object": must have http, tls or tcp routes/);
  const listed = await cluster.kubectl(['get', 'vs', '-n', ns, '-o', 'name']);
  t.is(listed.stdout.trim(), '');
});

// The tests with a writer run one at a time: a writer writes every routing object of the cluster.
kube.serial(
  'a valid VirtualService gets Accepted=True, an invalid one Accepted=False with the validator message',
  async (t, cluster) => {
    const { source, writer } = await running(cluster);
    t.teardown(async () => {
      await writer.stop();
      await source.stop();
    });
    const ns = await cluster.createNamespace('status');

    await apply(cluster, ns, vs('good', '/good/.*'));
    let good = await stored(
      source,
      'VirtualService',
      ns,
      'good',
      'Accepted=True',
      (o) => accepted(o)?.status === 'True',
    );
    t.like(accepted(good), { status: 'True', reason: 'Accepted', message: 'accepted', observedGeneration: 1 });
    t.is(good.status?.observedGeneration, 1);
    t.regex(accepted(good)?.lastTransitionTime ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    // What the API server has (and `kubectl get` shows), not only what the cache saw.
    t.like(accepted(await getRouting(cluster, ns, 'vs', 'good')), { status: 'True', observedGeneration: 1 });
    const columns = await cluster.kubectl(['get', 'vs', '-n', ns, 'good', '--no-headers']);
    t.regex(columns.stdout, /^good\s+\["good"\]\s+True\s/);

    // Passes the schema and CEL (the API server stores it) but not the RE2 rule of crds/validator.ts.
    await apply(cluster, ns, vs('bad', '/bad/(?!internal).*'));
    const bad = await stored(
      source,
      'VirtualService',
      ns,
      'bad',
      'Accepted=False',
      (o) => accepted(o)?.status === 'False',
    );
    t.like(accepted(bad), {
      status: 'False',
      reason: 'Invalid',
      message: 'spec.http[0].match[0].uri.regex: must be an RE2 regex (invalid perl operator: (?!); not applied',
      observedGeneration: 1,
    });
    t.like(statusOf(source.current(), 'VirtualService', ns, 'bad'), { accepted: false, reason: 'Invalid' });

    // Fixed: generation 2 is accepted; the condition flipped, so lastTransitionTime is new (or the same second).
    await apply(cluster, ns, vs('bad', '/bad/internal.*'));
    const fixed = await stored(
      source,
      'VirtualService',
      ns,
      'bad',
      'Accepted=True at generation 2',
      (o) => accepted(o)?.status === 'True' && o.status?.observedGeneration === 2,
    );
    t.like(accepted(fixed), { status: 'True', reason: 'Accepted', observedGeneration: 2 });
    t.true((accepted(fixed)?.lastTransitionTime ?? '') >= (accepted(bad)?.lastTransitionTime ?? ''));

    // A new generation of the valid one: observedGeneration follows, lastTransitionTime stays (no flip).
    await apply(cluster, ns, vs('good', '/better/.*'));
    good = await stored(
      source,
      'VirtualService',
      ns,
      'good',
      'observedGeneration 2',
      (o) => o.status?.observedGeneration === 2 && accepted(o)?.observedGeneration === 2,
    );
    t.is(accepted(good)?.lastTransitionTime, accepted(await getRouting(cluster, ns, 'vs', 'good'))?.lastTransitionTime);

    // A DestinationRule too: a Maglev table size that is not prime passes the schema, not the validator.
    await apply(
      cluster,
      ns,
      `
apiVersion: networking.trellis.dev/v1alpha1
kind: DestinationRule
metadata: { name: good }
spec:
  host: good
  trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: x-user, maglev: { tableSize: 1000 } } } }
`,
    );
    const dr = await stored(source, 'DestinationRule', ns, 'good', 'Accepted set', (o) => accepted(o) !== undefined);
    t.like(accepted(dr), {
      status: 'False',
      reason: 'Invalid',
      message: 'spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize: must be a prime number; not applied',
      observedGeneration: 1,
    });
    t.is(dr.status?.observedGeneration, 1);
  },
);

kube.serial('the status is written only when it changes', async (t, cluster) => {
  const { source, writer } = await running(cluster);
  t.teardown(async () => {
    await writer.stop();
    await source.stop();
  });
  const ns = await cluster.createNamespace('status-once');
  await apply(cluster, ns, vs('once', '/once/.*'));
  const first = await stored(
    source,
    'VirtualService',
    ns,
    'once',
    'Accepted=True',
    (o) => accepted(o)?.status === 'True',
  );
  await writer.idle();
  const writes = writer.stats.writes;

  // A metadata-only change (generation stays 1): the status is still right, nothing is written.
  await cluster.kubectl(['label', 'vs', '-n', ns, 'once', 'team=a']);
  const labelled = await stored(
    source,
    'VirtualService',
    ns,
    'once',
    'the label',
    (o) => (o.metadata as { labels?: Record<string, string> }).labels?.team === 'a',
  );
  await writer.idle();
  // Snapshots that change for other reasons (a new Service) do not write either.
  await apply(
    cluster,
    ns,
    'apiVersion: v1\nkind: Service\nmetadata: { name: once }\nspec: { ports: [{ name: http, port: 80 }] }\n',
  );
  await nextSnapshot(source, 'the Service', (s) => s.index.servicesByFqdn.has(`once.${ns}.svc.cluster.local`));
  await writer.idle();
  t.is(writer.stats.writes, writes);
  const now = await getRouting(cluster, ns, 'vs', 'once');
  t.is(now.metadata.resourceVersion, labelled.metadata.resourceVersion, 'no write after the label');
  t.is(accepted(now)?.lastTransitionTime, accepted(first)?.lastTransitionTime);

  // A control plane that starts over finds every status right and writes nothing.
  const { logger } = recordingLogger();
  const again = new StatusWriter({ kubeConfig: cluster.kubeConfig, source, logger, delayMs: 20 });
  again.start();
  await again.idle();
  t.is(again.stats.writes, 0);
  t.true(again.stats.unchanged >= 1);
  await again.stop();

  // Someone wipes the status: it is written again (store events are watched, not only snapshots).
  await cluster.kubectl([
    'patch',
    'vs',
    '-n',
    ns,
    'once',
    '--subresource=status',
    '--type=merge',
    '-p',
    '{"status":null}',
  ]);
  const rewritten = await stored(
    source,
    'VirtualService',
    ns,
    'once',
    'the status back',
    (o) => accepted(o)?.status === 'True' && o.metadata.resourceVersion !== now.metadata.resourceVersion,
  );
  t.is(rewritten.status?.observedGeneration, 1);
  await writer.idle();
  t.is(writer.stats.writes, writes + 1);
});

// Serial: the other tests' status writers watch every namespace and would write this status first.
kube.serial(
  'a conflict (the status was computed from an older object) is retried on the fresh object',
  async (t, cluster) => {
    await installCrds(cluster);
    const source = await startKubeSource(cluster);
    t.teardown(() => source.stop());
    const ns = await cluster.createNamespace('status-conflict');
    await apply(cluster, ns, vs('race', '/race/.*'));
    await nextSnapshot(source, 'the VirtualService', (s) => statusOf(s, 'VirtualService', ns, 'race'));
    const stale = source.live('VirtualService', ns, 'race');
    if (!stale) return t.fail('not in the store');
    // The object changes under the writer (a label: same generation, new resourceVersion) …
    await cluster.kubectl(['label', 'vs', '-n', ns, 'race', 'moved=yes']);
    // … but the writer reads a live object that still has the old resourceVersion.
    const dbg = recordingLogger();
    t.teardown(() => {
      if (!t.passed) t.log(JSON.stringify(dbg.records));
    });
    const writer2 = new StatusWriter({
      kubeConfig: cluster.kubeConfig,
      source: {
        current: () => source.current(),
        onChange: (l) => source.onChange(l),
        ready: () => true,
        live: (kind, namespace, name) =>
          kind === 'VirtualService' && namespace === ns && name === 'race' ? stale : undefined,
        onLiveChange: () => () => undefined,
      },
      delayMs: 1,
      logger: dbg.logger,
    });
    writer2.start();
    await writer2.idle();
    await writer2.stop();
    t.is(writer2.stats.conflicts, 1);
    t.is(writer2.stats.writes, 1);
    const o = await getRouting(cluster, ns, 'vs', 'race');
    t.like(accepted(o), { status: 'True', observedGeneration: 1 });
    t.is((o.metadata as { labels?: Record<string, string> }).labels?.moved, 'yes');
  },
);

kube.serial(
  'PeerAuthentication status: Accepted, Invalid (beyond the schema), Conflicted (a younger namespace policy)',
  async (t, cluster) => {
    const { source, writer } = await running(cluster);
    t.teardown(async () => {
      await writer.stop();
      await source.stop();
    });
    const ns = await cluster.createNamespace('status-pa');
    const pa = (name: string, spec: string) => `
apiVersion: security.trellis.dev/v1alpha1
kind: PeerAuthentication
metadata: { name: ${name} }
spec: ${spec}
`;
    await apply(cluster, ns, pa('a-strict', '{ mtls: { mode: STRICT } }'));
    const strict = await stored(
      source,
      'PeerAuthentication',
      ns,
      'a-strict',
      'Accepted=True',
      (o) => accepted(o)?.status === 'True',
    );
    t.like(accepted(strict), { status: 'True', reason: 'Accepted', message: 'accepted', observedGeneration: 1 });
    const columns = await cluster.kubectl(['get', 'pa', '-n', ns, 'a-strict', '--no-headers']);
    t.regex(columns.stdout, /^a-strict\s+STRICT\s+True\s/);

    // Created after it (or in the same second: then the name decides, and `permissive` > `a-strict`).
    await apply(cluster, ns, pa('permissive', '{ mtls: { mode: PERMISSIVE } }'));
    const loser = await stored(
      source,
      'PeerAuthentication',
      ns,
      'permissive',
      'Conflicted',
      (o) => accepted(o)?.reason === 'Conflicted',
    );
    t.like(accepted(loser), {
      status: 'False',
      reason: 'Conflicted',
      message: `conflicts with the older PeerAuthentication ${ns}/a-strict, which is the policy of namespace ${ns} (only the oldest without a selector applies); it has no effect until the older PeerAuthentication is removed`,
    });

    // A label name over 63 characters passes the schema (map keys are unbounded there), not the validator.
    const long = 'x'.repeat(64);
    await apply(cluster, ns, pa('long', `{ selector: { matchLabels: { ${long}: a } }, mtls: { mode: DISABLE } }`));
    const invalid = await stored(
      source,
      'PeerAuthentication',
      ns,
      'long',
      'Accepted=False',
      (o) => accepted(o)?.status === 'False',
    );
    t.like(accepted(invalid), {
      reason: 'Invalid',
      message: `spec.selector.matchLabels[${long}]: label name must be at most 63 characters; not applied`,
      observedGeneration: 1,
    });
  },
);

kube.serial(
  'once the status is written the snapshot stays put (no publication, no regeneration); a spec edit still reaches translation',
  async (t, cluster) => {
    const { source, writer } = await running(cluster);
    // The xDS side as the control plane runs it: the push controller regenerates each proxy per snapshot.
    const generator = meshGenerator(defaultMeshConfig);
    const controller = new PushController(source, generator, {
      debounce: { quietMs: 20, maxMs: 1_000 },
      metrics: new XdsMetrics(),
      logger: silentLogger,
    });
    let pushes = 0;
    controller.on('pushed', () => pushes++);
    controller.start();
    t.teardown(async () => {
      controller.stop();
      await writer.stop();
      await source.stop();
    });
    const ns = await cluster.createNamespace('status-quiet');
    const proxy = envoyProxy(ns);
    const received: ProxyConfig[] = [];
    const consumer: ConfigConsumer = {
      proxy,
      get config() {
        return received.at(-1);
      },
      get configHash() {
        return received.at(-1)?.hash;
      },
      onConfig: (config) => void received.push(config),
    };
    controller.attach(consumer);
    const routeOf = () =>
      JSON.stringify(
        routeConfigJson(
          generator.generate(proxy, source.current()).get(TypeUrl.RouteConfiguration) as RouteConfiguration[],
          '8080',
        ),
      );
    const counts = () => ({
      published: source.meshStats.published,
      rebuilds: source.meshStats.rebuilds,
      version: source.current().version,
      pushes,
      generations: generator.generations(),
      configs: received.length,
    });
    const quiet = (timeout: string) => `
apiVersion: v1
kind: Service
metadata: { name: quiet }
spec: { ports: [{ name: http, port: 8080 }] }
---
apiVersion: networking.trellis.dev/v1alpha1
kind: VirtualService
metadata: { name: quiet }
spec:
  hosts: [quiet]
  http: [{ timeout: ${timeout}, route: [{ destination: { host: quiet } }] }]
`;
    await apply(cluster, ns, quiet('2s'));
    // The snapshot that judged the VirtualService (the status writer writes what it says) …
    const judged = await nextSnapshot(source, 'the VirtualService judged', (s) =>
      statusOf(s, 'VirtualService', ns, 'quiet')?.accepted &&
      s.index.servicesByFqdn.has(`quiet.${ns}.svc.cluster.local`)
        ? { published: source.meshStats.published, version: s.version }
        : undefined,
    );
    // … is pushed (the proxy gets the route) …
    await waitFor('the route of the VirtualService pushed', () => pushes > 0 && routeOf().includes('"timeout":"2s"'));
    // … and the writer's write comes back through the watch (a new resourceVersion, the status in it).
    const written = await stored(
      source,
      'VirtualService',
      ns,
      'quiet',
      'Accepted=True',
      (o) => accepted(o)?.status === 'True',
    );
    await writer.idle();
    t.is(writer.stats.writes >= 1, true);
    // That echo reached the informer but not the model: no rebuild, nothing published after the
    // snapshot that judged it.
    const settled = counts();
    t.is(settled.published, judged.published, 'no snapshot for the status write');
    t.is(settled.version, judged.version);
    t.true(source.meshStats.ignored > 0, JSON.stringify(source.meshStats));
    await staysPut('the snapshot and the push controller after the status write', counts, 1_000);

    // A label (metadata only, generation 1): a store change, no snapshot, no regeneration, no write.
    const writes = writer.stats.writes;
    await cluster.kubectl(['label', 'vs', '-n', ns, 'quiet', 'team=a']);
    const labelled = await stored(
      source,
      'VirtualService',
      ns,
      'quiet',
      'the label',
      (o) => (o.metadata as { labels?: Record<string, string> }).labels?.team === 'a',
    );
    t.not(labelled.metadata.resourceVersion, written.metadata.resourceVersion);
    await writer.idle();
    await staysPut('the snapshot and the push controller after a label', counts, 1_000);
    t.deepEqual(counts(), settled);
    t.is(writer.stats.writes, writes);
    t.log(`events the model does not read (no rebuild): ${source.meshStats.ignored}`);

    // A spec edit is a new generation: published, translated, pushed, and its status written.
    await apply(cluster, ns, quiet('3s'));
    await nextSnapshot(source, 'generation 2', (s) => statusOf(s, 'VirtualService', ns, 'quiet')?.generation === 2);
    await waitFor('the new timeout pushed', () => routeOf().includes('"timeout":"3s"') && pushes > settled.pushes);
    t.true(received.length > settled.configs, 'the proxy was handed the new config');
    const updated = await stored(
      source,
      'VirtualService',
      ns,
      'quiet',
      'observedGeneration 2',
      (o) => o.status?.observedGeneration === 2 && accepted(o)?.status === 'True',
    );
    t.is(accepted(updated)?.observedGeneration, 2);
    await writer.idle();
    const after = counts();
    await staysPut('the snapshot after the status of generation 2', counts, 1_000);
    t.is(after.published, settled.published + 1, 'one snapshot for the spec edit, none for its status');
  },
);

kube.serial(
  'AuthorizationPolicy status: Accepted, AcceptedWithWarnings (an ALLOW without rules), Invalid (beyond the schema)',
  async (t, cluster) => {
    const { source, writer } = await running(cluster);
    t.teardown(async () => {
      await writer.stop();
      await source.stop();
    });
    const ns = await cluster.createNamespace('status-ap');
    const ap = (name: string, spec: string) => `
apiVersion: security.trellis.dev/v1alpha1
kind: AuthorizationPolicy
metadata: { name: ${name} }
spec: ${spec}
`;
    await apply(
      cluster,
      ns,
      ap('callers', `{ action: DENY, rules: [{ from: [{ source: { notNamespaces: [${ns}] } }] }] }`),
    );
    const ok = await stored(
      source,
      'AuthorizationPolicy',
      ns,
      'callers',
      'Accepted=True',
      (o) => accepted(o)?.status === 'True',
    );
    t.like(accepted(ok), { status: 'True', reason: 'Accepted', message: 'accepted', observedGeneration: 1 });
    const columns = await cluster.kubectl(['get', 'ap', '-n', ns, 'callers', '--no-headers']);
    t.regex(columns.stdout, /^callers\s+DENY\s+True\s/);

    await apply(cluster, ns, ap('deny-all', '{}'));
    const warned = await stored(
      source,
      'AuthorizationPolicy',
      ns,
      'deny-all',
      'AcceptedWithWarnings',
      (o) => accepted(o)?.reason === 'AcceptedWithWarnings',
    );
    t.like(accepted(warned), {
      status: 'True',
      message:
        'accepted with warnings: spec.rules: none: this ALLOW policy denies every request to the workloads it selects',
    });

    // Five digits pass the schema's pattern; the port range is the validator's.
    await apply(cluster, ns, ap('port', "{ rules: [{ to: [{ operation: { ports: ['70000'] } }] }] }"));
    const invalid = await stored(
      source,
      'AuthorizationPolicy',
      ns,
      'port',
      'Accepted=False',
      (o) => accepted(o)?.status === 'False',
    );
    t.like(accepted(invalid), {
      reason: 'Invalid',
      message: 'spec.rules[0].to[0].operation.ports[0]: must be a port number 1-65535; not applied',
    });
  },
);

kube.test(
  'Sidecar status: Accepted, Conflicted (a younger namespace default), Invalid (beyond the schema); the sdc short name (sc is StorageClass)',
  async (t, cluster) => {
    const { source, writer } = await running(cluster);
    t.teardown(async () => {
      await writer.stop();
      await source.stop();
    });
    const ns = await cluster.createNamespace('status-sc');
    const sc = (name: string, spec: string) => `
apiVersion: networking.trellis.dev/v1alpha1
kind: Sidecar
metadata: { name: ${name} }
spec: ${spec}
`;
    await apply(cluster, ns, sc('default', "{ egress: [{ hosts: ['./*'] }] }"));
    const ok = await stored(source, 'Sidecar', ns, 'default', 'Accepted=True', (o) => accepted(o)?.status === 'True');
    t.like(accepted(ok), { status: 'True', reason: 'Accepted', message: 'accepted', observedGeneration: 1 });
    const columns = await cluster.kubectl(['get', 'sdc', '-n', ns, 'default', '--no-headers']);
    t.regex(columns.stdout, /^default\s+True\s/, 'no Selector: the namespace default');

    // A second namespace default: the younger one has no effect (creationTimestamp has one-second resolution).
    await new Promise((r) => setTimeout(r, 1_100));
    await apply(cluster, ns, sc('second', "{ egress: [{ hosts: ['*/*'] }] }"));
    const conflicted = await stored(
      source,
      'Sidecar',
      ns,
      'second',
      'Conflicted',
      (o) => accepted(o)?.reason === 'Conflicted',
    );
    t.like(accepted(conflicted), { status: 'False' });
    t.regex(String(accepted(conflicted)?.message), new RegExp(`conflicts with the older Sidecar ${ns}/default`));

    // The host form is the validator's (the schema only bounds the string).
    await apply(
      cluster,
      ns,
      sc(
        'bad',
        "{ workloadSelector: { labels: { app: x } }, egress: [{ hosts: ['reviews.shop.svc.cluster.local'] }] }",
      ),
    );
    const invalid = await stored(
      source,
      'Sidecar',
      ns,
      'bad',
      'Accepted=False',
      (o) => accepted(o)?.status === 'False',
    );
    t.like(accepted(invalid), {
      reason: 'Invalid',
      message: 'spec.egress[0].hosts[0]: host must be of form namespace/dnsName; not applied',
    });
  },
);
