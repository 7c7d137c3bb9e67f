// The push controller: who is pushed on a change, encode once, debounce, and a generator that fails.
import test from 'ava';
import { anyFromJson, TypeUrl, unpackAny, type Message } from '../../control-plane/envoy/protos.js';
import { silentLogger } from '../../control-plane/logger.js';
import { XdsMetrics } from '../../control-plane/metrics.js';
import { AdsServer } from '../../control-plane/xds/ads-server.js';
import { Debouncer, type DebounceOptions } from '../../control-plane/xds/debounce.js';
import type { ChangeTiming, Generator, ResourcesByType, SnapshotSource } from '../../control-plane/xds/generator.js';
import type { TraceSpan } from '../../lib/tracing.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { waitFor } from '../helpers/wait.js';
import { PushController } from '../../control-plane/xds/push-controller.js';
import {
  RawAdsClient,
  deltaNamesOf,
  deltaResourcesOf,
  endpointPortsOf,
  namesOf,
  resourcesOf,
  testNode,
  type DeltaStream,
  type SotwStream,
} from '../helpers/ads-client.js';
import {
  apiListener,
  assertServedResourcesValid,
  edsCluster,
  loadAssignment,
  routeConfig,
  startTestControlPlane,
  type JsonResource,
} from '../helpers/control-plane.js';
import { resourcesByType, startXdsEngine, type XdsEngine } from '../helpers/xds-engine.js';

// A snapshot source and a generator written for the test: proxies get the resources of their namespace
// (node metadata NAMESPACE), and the generator fails for the proxies the snapshot names.

interface Snapshot {
  readonly byNamespace: ReadonlyMap<string, ResourcesByType>;
  readonly failFor: ReadonlySet<string>;
}

class MutableSource implements SnapshotSource<Snapshot> {
  private readonly listeners = new Set<(change?: TraceSpan, timing?: ChangeTiming) => void>();
  constructor(private snapshot: Snapshot) {}
  current(): Snapshot {
    return this.snapshot;
  }
  ready(): boolean {
    return true;
  }
  onChange(listener: (change?: TraceSpan, timing?: ChangeTiming) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  /** Publishes `next`; `timing`: when the change behind it was seen, as a real source says. */
  set(next: Snapshot, timing?: ChangeTiming): void {
    this.snapshot = next;
    for (const listener of this.listeners) listener(undefined, timing);
  }
}

const byNamespace: Generator<Snapshot> = {
  generate(proxy, snapshot) {
    if (snapshot.failFor.has(proxy.id)) throw new Error(`generation for ${proxy.id} fails (test)`);
    return snapshot.byNamespace.get(proxy.namespace) ?? new Map();
  },
};

/** A resource as the generator hands it out, built from the proto3 JSON a user would write. */
function message(json: JsonResource): Message {
  return unpackAny(anyFromJson(json as Parameters<typeof anyFromJson>[0]));
}

/** Clusters and assignments by type; checked against Envoy's validation like every resource served in tests. */
async function resources(clusters: JsonResource[], assignments: JsonResource[]): Promise<ResourcesByType> {
  await assertServedResourcesValid([...clusters, ...assignments]);
  return new Map([
    [TypeUrl.Cluster, clusters.map(message)],
    [TypeUrl.ClusterLoadAssignment, assignments.map(message)],
  ]);
}

function snapshot(namespaces: Record<string, ResourcesByType>, failFor: readonly string[] = []): Snapshot {
  return { byNamespace: new Map(Object.entries(namespaces)), failFor: new Set(failFor) };
}

async function startInProcess(initial: Snapshot) {
  const metrics = new XdsMetrics();
  const source = new MutableSource(initial);
  const controller = new PushController(source, byNamespace, {
    debounce: { quietMs: 10, maxMs: 1_000 },
    metrics,
    logger: silentLogger,
  });
  controller.start();
  const ads = new AdsServer(controller as unknown as PushController<unknown>, { metrics, logger: silentLogger });
  const port = await ads.listen('127.0.0.1', 0);
  const client = new RawAdsClient(`127.0.0.1:${port}`);
  return {
    metrics,
    ads,
    client,
    /** Replaces the snapshot and resolves with the push cycle it causes. */
    change(next: Snapshot): Promise<{ streams: number }> {
      const pushed = new Promise<{ streams: number }>((resolve) => controller.once('pushed', resolve));
      source.set(next);
      return pushed;
    },
    async [Symbol.asyncDispose]() {
      client.close();
      controller.stop();
      await ads.close();
    },
  };
}

/** Opens a delta stream for `id` in `namespace` with a wildcard CDS and a named EDS subscription. */
async function deltaProxy(client: RawAdsClient, id: string, namespace: string, eds: string[]): Promise<DeltaStream> {
  const s = client.delta();
  s.send({ node: testNode(id, { NAMESPACE: namespace }), typeUrl: TypeUrl.Cluster });
  s.send({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNamesSubscribe: eds });
  for (let i = 0; i < 2; i++) {
    const res = await s.next();
    s.send({ typeUrl: res.typeUrl, responseNonce: res.nonce });
  }
  return s;
}

test('a change is pushed only to the proxies whose generated config changed', async (t) => {
  await using env = await startInProcess(
    snapshot({
      a: await resources([edsCluster('x')], [loadAssignment('x', [9001])]),
      b: await resources([edsCluster('y')], [loadAssignment('y', [9002])]),
    }),
  );
  const pa = await deltaProxy(env.client, 'pa.a', 'a', ['x']);
  const pb = await deltaProxy(env.client, 'pb.b', 'b', ['y']);
  const pbSotw: SotwStream = env.client.sotw();
  pbSotw.send({ node: testNode('pb2.b', { NAMESPACE: 'b' }), typeUrl: TypeUrl.Cluster });
  const initial = await pbSotw.next();
  t.deepEqual(namesOf(initial), ['y']);
  pbSotw.send({ typeUrl: TypeUrl.Cluster, responseNonce: initial.nonce, versionInfo: initial.versionInfo });

  // Namespace a gets another cluster; b gets new objects with the same content (so the same config).
  const pushed = await env.change(
    snapshot({
      a: await resources(
        [edsCluster('x'), edsCluster('x2')],
        [loadAssignment('x', [9001]), loadAssignment('x2', [9003])],
      ),
      b: await resources([edsCluster('y')], [loadAssignment('y', [9002])]),
    }),
  );
  t.is(pushed.streams, 1);
  const cds = await pa.next();
  t.is(cds.typeUrl, TypeUrl.Cluster);
  t.deepEqual(deltaNamesOf(cds), ['x2']);

  // The b streams got nothing: the next message on each answers a new subscription.
  pb.send({ typeUrl: TypeUrl.Listener });
  const lds = await pb.next();
  t.is(lds.typeUrl, TypeUrl.Listener);
  pbSotw.send({ typeUrl: TypeUrl.Listener });
  t.is((await pbSotw.next()).typeUrl, TypeUrl.Listener);
});

test('ten proxies on the same config: each resource is encoded once, not once per proxy', async (t) => {
  const base = [
    edsCluster('a'),
    edsCluster('b'),
    loadAssignment('a', [9001]),
    loadAssignment('b', [9002]),
    apiListener('echo:8080', 'r1'),
    routeConfig('r1', ['echo:8080', 'echo'], { a: 1 }),
  ];
  const cp = await startTestControlPlane(base);
  const client = new RawAdsClient(cp.target);
  t.teardown(async () => {
    client.close();
    await cp.close();
  });
  const streams: (SotwStream | DeltaStream)[] = [];
  for (let i = 0; i < 10; i++) {
    const node = testNode(`p${i}.default`);
    if (i % 2 === 0) {
      const s = client.sotw();
      s.send({ node, typeUrl: TypeUrl.Cluster });
      s.send({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ['a', 'b'] });
      s.send({ typeUrl: TypeUrl.Listener });
      s.send({ typeUrl: TypeUrl.RouteConfiguration, resourceNames: ['r1'] });
      streams.push(s);
    } else {
      const s = client.delta();
      s.send({ node, typeUrl: TypeUrl.Cluster });
      s.send({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNamesSubscribe: ['a', 'b'] });
      s.send({ typeUrl: TypeUrl.Listener });
      s.send({ typeUrl: TypeUrl.RouteConfiguration, resourceNamesSubscribe: ['r1'] });
      streams.push(s);
    }
  }
  for (const s of streams) for (let i = 0; i < 4; i++) await s.next();
  t.is(cp.controller.cache.encodeCount, base.length);

  // A change re-encodes at most the resources of the new snapshot, whatever the number of proxies.
  const before = cp.controller.cache.encodeCount;
  await cp.write(base.map((r) => (r.clusterName === 'b' ? loadAssignment('b', [9002, 9003]) : r)));
  for (const s of streams) t.is((await s.next()).typeUrl, TypeUrl.ClusterLoadAssignment);
  const reencoded = cp.controller.cache.encodeCount - before;
  t.true(reencoded >= 1 && reencoded <= base.length, `${reencoded} encodings for one change`);
});

/** A debouncer that counts its fires; `fired(n)` resolves once it has fired n times. */
function countingDebouncer(options: DebounceOptions) {
  let fires = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  const debouncer = new Debouncer(options, () => {
    fires++;
    for (const w of waiters.filter((w) => w.n <= fires)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  return {
    debouncer,
    get fires() {
      return fires;
    },
    fired(n: number, timeoutMs = 5_000): Promise<void> {
      if (fires >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`fewer than ${n} fires within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          n,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
  };
}

test('debouncer: many triggers within the quiet window fire once', async (t) => {
  const d = countingDebouncer({ quietMs: 50, maxMs: 10_000 });
  t.teardown(() => d.debouncer.stop());
  for (let i = 0; i < 50; i++) d.debouncer.trigger();
  await d.fired(1);
  // A later single trigger fires after the burst's fire: had the burst fired more than once, those fires
  // (all due within the quiet window of the burst) would have come first.
  d.debouncer.trigger();
  await d.fired(2);
  t.is(d.fires, 2);
});

test('debouncer: a steady stream of triggers still fires by the max bound', async (t) => {
  const d = countingDebouncer({ quietMs: 100, maxMs: 300 });
  // Triggers every 20 ms never leave 100 ms of quiet; only the max bound can fire.
  const interval = setInterval(() => d.debouncer.trigger(), 20);
  t.teardown(() => {
    clearInterval(interval);
    d.debouncer.stop();
  });
  d.debouncer.trigger();
  await d.fired(1, 2_000);
  // And it keeps firing while the triggers go on.
  await d.fired(2, 2_000);
  t.pass();
});

test('the debounce counts from when the source saw the change: a model build is not added to the quiet time', async (t) => {
  const clock = new ManualClock();
  const source = new MutableSource(snapshot({}));
  const controller = new PushController(source, byNamespace, {
    debounce: { quietMs: 100, maxMs: 10_000 },
    metrics: new XdsMetrics(),
    logger: silentLogger,
    debounceClock: clock,
  });
  controller.start();
  t.teardown(() => controller.stop());
  const pushed = () => new Promise<void>((resolve) => controller.once('pushed', () => resolve()));

  let cycle = pushed();
  source.set(snapshot({}), { observedMsAgo: 70 }); // the source took 70 ms to build what it saw
  t.deepEqual(clock.pending(), [30], 'the push waits for the rest of the quiet time only');
  clock.advance(30);
  await cycle;

  cycle = pushed();
  source.set(snapshot({})); // a source that does not say: the whole quiet time from now
  t.deepEqual(clock.pending(), [100]);
  clock.advance(100);
  await cycle;

  cycle = pushed();
  source.set(snapshot({}), { observedMsAgo: 400 }); // seen longer ago than the quiet time: at once
  t.deepEqual(clock.pending(), [0]);
  clock.advance(0);
  await cycle;
});

test('a generator that fails for one proxy: others are pushed, it keeps its last config, the error is counted', async (t) => {
  const before = snapshot({ a: await resources([edsCluster('x')], [loadAssignment('x', [9001])]) });
  await using env = await startInProcess(before);
  const ok = await deltaProxy(env.client, 'ok.a', 'a', ['x']);
  const bad = await deltaProxy(env.client, 'bad.a', 'a', ['x']);
  const hashBefore = env.ads.status().find((s) => s.node?.id === 'bad.a')?.configHash;

  const changed = await resources([edsCluster('x', { connectTimeout: '2s' })], [loadAssignment('x', [9002])]);
  const pushed = await env.change(snapshot({ a: changed }, ['bad.a']));
  t.is(pushed.streams, 1);
  t.is((await ok.next()).typeUrl, TypeUrl.Cluster);
  const eds = await ok.next();
  t.deepEqual(endpointPortsOf(deltaResourcesOf(eds).get('x')!), [9002]);
  t.is((await env.metrics.generationErrors.get()).values[0]?.value, 1);

  // The failing proxy was sent nothing and still serves from its last config: dropping and re-adding the
  // subscription answers with the old endpoints (and is the next message on its stream).
  bad.send({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNamesUnsubscribe: ['x'] });
  bad.send({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNamesSubscribe: ['x'] });
  const old = await bad.next();
  t.is(old.typeUrl, TypeUrl.ClusterLoadAssignment);
  t.deepEqual(endpointPortsOf(deltaResourcesOf(old).get('x')!), [9001]);
  t.is(env.ads.status().find((s) => s.node?.id === 'bad.a')?.configHash, hashBefore);

  // Once generation works again, it catches up (and only it is pushed: the other proxy has that config).
  const recovered = await env.change(snapshot({ a: changed }));
  t.is(recovered.streams, 1);
  t.is((await bad.next()).typeUrl, TypeUrl.Cluster);
  const caughtUp = await bad.next();
  t.deepEqual(endpointPortsOf(deltaResourcesOf(caughtUp).get('x')!), [9002]);
});

test('pushes stream out: each proxy is written to, and the event loop runs, before the next is generated', async (t) => {
  // The push generates here (nothing prepared ahead): see the next tests for the preparation.
  const seen: { generating: string; alreadySent: string[]; loopRan: boolean }[] = [];
  const ref: { engine?: XdsEngine; loopRan: boolean } = { loopRan: false };
  const recording: Generator<ResourcesByType> = {
    generate(proxy, snapshot) {
      const engine = ref.engine;
      // Which other proxies already have this snapshot's EDS written to them (their sent version)?
      const version = engine?.controller.cache.encodeSet(
        TypeUrl.ClusterLoadAssignment,
        snapshot.get(TypeUrl.ClusterLoadAssignment)!,
      ).version;
      const alreadySent = (engine?.ads.status() ?? [])
        .filter((s) => s.node?.id !== proxy.id && s.types.some((ty) => ty.type === 'EDS' && ty.sentVersion === version))
        .map((s) => s.node!.id);
      // Did the event loop get a turn since the previous proxy was generated (so its write could flush)?
      seen.push({ generating: proxy.id, alreadySent, loopRan: ref.loopRan });
      ref.loopRan = false;
      setImmediate(() => (ref.loopRan = true));
      return snapshot;
    },
  };
  // sliceMs 0: the cycle yields after every proxy.
  await using engine = await startXdsEngine(await resourcesByType([edsCluster('x'), loadAssignment('x', [9001])]), {
    generator: recording,
    controller: { sliceMs: 0, prepareAhead: false },
  });
  ref.engine = engine;
  const streams: SotwStream[] = [];
  for (const id of ['p1.default', 'p2.default', 'p3.default']) {
    const s = engine.client().sotw();
    s.send({ node: testNode(id), typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ['x'] });
    const res = await s.next();
    s.send({ typeUrl: res.typeUrl, resourceNames: ['x'], versionInfo: res.versionInfo, responseNonce: res.nonce });
    streams.push(s);
  }
  seen.length = 0;
  await engine.change(await resourcesByType([edsCluster('x'), loadAssignment('x', [9002])]));
  for (const s of streams) t.deepEqual(endpointPortsOf(resourcesOf(await s.next()).get('x')!), [9002]);
  t.deepEqual(
    seen.map((e) => e.alreadySent.length),
    [0, 1, 2],
    `each proxy is generated after the ones before it were written to: ${JSON.stringify(seen)}`,
  );
  t.deepEqual(
    seen.slice(1).map((e) => e.loopRan),
    [true, true],
    `the event loop ran between two proxies: ${JSON.stringify(seen)}`,
  );
});

// Generation ahead of the push (PushController.prepare): the configs of a new snapshot are generated while
// the change waits out the debounce's quiet time. The debounce runs on a ManualClock here, so the test
// decides when the quiet time is over.

/** A generator that counts its calls per snapshot and proxy, and tells `onGenerate` of each. */
function countingGenerator(onGenerate: (proxy: string, snapshot: ResourcesByType) => void = () => undefined) {
  const calls = new Map<ResourcesByType, string[]>();
  const generator: Generator<ResourcesByType> = {
    generate(proxy, snapshot) {
      calls.set(snapshot, [...(calls.get(snapshot) ?? []), proxy.id]);
      onGenerate(proxy.id, snapshot);
      return snapshot;
    },
  };
  return { generator, callsFor: (snapshot: ResourcesByType) => calls.get(snapshot) ?? [] };
}

/** SotW EDS streams for `ids`, each with its first response ACKed. */
async function edsStreams(engine: XdsEngine, ids: readonly string[]): Promise<SotwStream[]> {
  const streams: SotwStream[] = [];
  for (const id of ids) {
    const s = engine.client().sotw();
    s.send({ node: testNode(id), typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ['x'] });
    const res = await s.next();
    s.send({ typeUrl: res.typeUrl, resourceNames: ['x'], versionInfo: res.versionInfo, responseNonce: res.nonce });
    streams.push(s);
  }
  return streams;
}

const sentVersions = (engine: XdsEngine): (string | undefined)[] =>
  engine.ads.status().map((s) => s.types.find((ty) => ty.type === 'EDS')?.sentVersion);

/**
 * An engine whose debounce runs on a ManualClock, with a counting generator (`onGenerate` told of each call)
 * and SotW EDS streams for `ids`, each with its first response ACKed.
 */
async function engineWithPreparation(
  ids: readonly string[],
  options: {
    sliceMs?: number;
    /** The debounce's quiet time; default 10 ms. */
    quietMs?: number;
    onGenerate?: (proxy: string, snapshot: ResourcesByType, engine: XdsEngine) => void;
  } = {},
) {
  const clock = new ManualClock();
  const ref: { engine?: XdsEngine } = {};
  const { generator, callsFor } = countingGenerator((proxy, snapshot) =>
    options.onGenerate?.(proxy, snapshot, ref.engine!),
  );
  const engine = await startXdsEngine(await resourcesByType([edsCluster('x'), loadAssignment('x', [9001])]), {
    generator,
    debounce: { quietMs: options.quietMs ?? 10, maxMs: 1_000 },
    controller: { debounceClock: clock, ...(options.sliceMs === undefined ? {} : { sliceMs: options.sliceMs }) },
  });
  ref.engine = engine;
  const streams = await edsStreams(engine, ids);
  return { clock, engine, streams, callsFor, [Symbol.asyncDispose]: () => engine[Symbol.asyncDispose]() };
}

test('configs are generated while a change waits out the debounce: the push then only sends', async (t) => {
  const ids = ['p1.default', 'p2.default', 'p3.default'];
  await using env = await engineWithPreparation(ids);
  const { clock, engine, streams, callsFor } = env;
  const before = sentVersions(engine);

  const next = await resourcesByType([edsCluster('x'), loadAssignment('x', [9002])]);
  const pushed = engine.change(next);
  await waitFor('the configs of the new snapshot', () => callsFor(next).length === ids.length, 10_000);
  t.deepEqual([...callsFor(next)].sort(), ids, 'every connected proxy is generated once, during the quiet time');
  t.deepEqual(clock.pending(), [10], 'the debounce still waits');
  t.deepEqual(sentVersions(engine), before, 'nothing is sent before the debounce ends');

  clock.advance(10);
  await pushed;
  for (const s of streams) t.deepEqual(endpointPortsOf(resourcesOf(await s.next()).get('x')!), [9002]);
  t.is(callsFor(next).length, ids.length, 'the push generated nothing again');
  t.deepEqual(await generatedByWhen(engine), { connect: 3, ahead: 3 }, 'trellis_xds_configs_generated_total');
});

/** trellis_xds_configs_generated_total by its `when` label. */
async function generatedByWhen(engine: XdsEngine): Promise<Record<string, number>> {
  const { values } = await engine.metrics.configsGenerated.get();
  return Object.fromEntries(values.map((v) => [String(v.labels.when), v.value]));
}

test('a burst of changes prepares only its first snapshot; the push generates for the newest', async (t) => {
  const ids = ['p1.default', 'p2.default'];
  await using env = await engineWithPreparation(ids);
  const { clock, engine, streams, callsFor } = env;

  const first = await resourcesByType([edsCluster('x'), loadAssignment('x', [9002])]);
  const pushed = engine.change(first);
  await waitFor('the first snapshot prepared', () => callsFor(first).length === ids.length, 10_000);
  const newest = await resourcesByType([edsCluster('x'), loadAssignment('x', [9003])]);
  engine.change(newest).catch(() => undefined); // the same push cycle as `pushed`
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(callsFor(newest), [], 'no second preparation before the push');

  clock.advance(10);
  await pushed;
  for (const s of streams) t.deepEqual(endpointPortsOf(resourcesOf(await s.next()).get('x')!), [9003]);
  t.deepEqual([...callsFor(newest)].sort(), ids, 'the push generated the newest snapshot, once per proxy');
  t.is(callsFor(first).length, ids.length);

  // The next change, after that push, is prepared again.
  const later = await resourcesByType([edsCluster('x'), loadAssignment('x', [9004])]);
  const pushedLater = engine.change(later);
  await waitFor('the next change prepared', () => callsFor(later).length === ids.length, 10_000);
  clock.advance(10);
  await pushedLater;
  for (const s of streams) t.deepEqual(endpointPortsOf(resourcesOf(await s.next()).get('x')!), [9004]);
  t.is(callsFor(later).length, ids.length);
});

test('a push that starts before the preparation is through sends what is ready at once and generates the rest', async (t) => {
  const ref: { next?: ResourcesByType } = {};
  const alreadySent: Record<string, number> = {};
  const ids = ['p1.default', 'p2.default', 'p3.default'];
  // sliceMs 0: the preparation and the push yield after every proxy.
  await using env = await engineWithPreparation(ids, {
    sliceMs: 0,
    onGenerate: (proxy, snapshot, engine) => {
      if (snapshot !== ref.next) return;
      const version = engine.controller.cache.encodeSet(
        TypeUrl.ClusterLoadAssignment,
        snapshot.get(TypeUrl.ClusterLoadAssignment)!,
      ).version;
      alreadySent[proxy] = sentVersions(engine).filter((v) => v === version).length;
      // The quiet time ends right after the first proxy was prepared (before the preparation's next slice).
      if (proxy === 'p1.default') setImmediate(() => env.clock.advance(10));
    },
  });
  const { engine, streams, callsFor } = env;

  ref.next = await resourcesByType([edsCluster('x'), loadAssignment('x', [9002])]);
  await engine.change(ref.next);
  for (const s of streams) t.deepEqual(endpointPortsOf(resourcesOf(await s.next()).get('x')!), [9002]);
  t.deepEqual(callsFor(ref.next), ids, 'each proxy generated once: p1 ahead, p2 and p3 by the push');
  t.deepEqual(await generatedByWhen(engine), { connect: 3, ahead: 1, push: 2 });
  t.deepEqual(
    alreadySent,
    { 'p1.default': 0, 'p2.default': 1, 'p3.default': 2 },
    'the prepared proxy was sent first, and each other one was generated after those before it were written to',
  );
});

test('a change that arrives during a push cycle is prepared once that cycle has ended', async (t) => {
  const ids = ['p1.default', 'p2.default', 'p3.default'];
  // sliceMs 0: the push yields after every proxy, so the change below arrives while it runs.
  await using env = await engineWithPreparation(ids, { sliceMs: 0 });
  const { clock, engine, streams, callsFor } = env;
  const first = await resourcesByType([edsCluster('x'), loadAssignment('x', [9002])]);
  const second = await resourcesByType([edsCluster('x'), loadAssignment('x', [9003])]);
  const firstPushed = engine.change(first);
  await waitFor('the first change prepared', () => callsFor(first).length === ids.length, 10_000);

  clock.advance(10); // the first push starts: it sends to p1 and yields
  const secondPushed = engine.change(second); // p2 and p3 get the second snapshot from the first push
  await firstPushed;
  // Once the first push has ended, the second change is prepared for every proxy (p1 still needs it).
  await waitFor('the second change prepared', () => callsFor(second).slice(-ids.length).join() === ids.join(), 10_000);
  t.deepEqual(clock.pending(), [10], 'the second push still waits for its quiet time');
  const generated = callsFor(second).length;

  clock.advance(10);
  await secondPushed;
  t.is(callsFor(second).length, generated, 'the second push generated nothing again');
  t.deepEqual(endpointPortsOf(resourcesOf(await streams[0]!.next()).get('x')!), [9002]);
  t.deepEqual(endpointPortsOf(resourcesOf(await streams[0]!.next()).get('x')!), [9003]);
  for (const s of streams.slice(1)) t.deepEqual(endpointPortsOf(resourcesOf(await s.next()).get('x')!), [9003]);
});

test('with no quiet time to spend (a debounce of 0) nothing is prepared: the push generates as it goes', async (t) => {
  const ids = ['p1.default', 'p2.default'];
  await using env = await engineWithPreparation(ids, { quietMs: 0 });
  const { clock, engine, streams, callsFor } = env;
  const next = await resourcesByType([edsCluster('x'), loadAssignment('x', [9002])]);
  const pushed = engine.change(next);
  t.deepEqual(clock.pending(), [0], 'the push is due at once');
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(callsFor(next), [], 'nothing generated ahead');
  clock.advance(0);
  await pushed;
  for (const s of streams) t.deepEqual(endpointPortsOf(resourcesOf(await s.next()).get('x')!), [9002]);
  t.deepEqual(callsFor(next), ids);
  t.deepEqual(await generatedByWhen(engine), { connect: 2, push: 2 });
});
