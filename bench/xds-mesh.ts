// `npm run bench -- xds-mesh`: a translated mesh at scale, through the source path the product uses.
//
// The control plane (bench/xds-mesh-server.ts: startControlPlane in --config-dir mode) serves a mesh
// directory (bench/mesh-fixture.ts: `--services` Services with `--endpoints` Pods, a VirtualService and a
// DestinationRule each). This process connects Envoy-shaped sidecars for the Pods of the first Services
// (10 Pods per workload, each its own node id, labels and IP) and proxyless gRPC clients (bench/mesh-sim.ts,
// delta ADS), then measures, each from the rename of a file to the last stream's ACK:
//   - the connect storm (every stream at once), CPU and RSS per proxy after it;
//   - one endpoint change (an address in one EndpointSlice): all streams see the Service, all must ACK the
//     ClusterLoadAssignment with the new address; and which types were pushed;
//   - one VirtualService change (weights): all streams must ACK a new RouteConfiguration;
//   - a new Pod of an existing workload connecting: its time to a complete config, before its endpoint is
//     listed, and (as on Kubernetes, where the EndpointSlice controller lists a Pod not ready once it has an
//     IP) after its not-ready endpoint is published;
//   - the same new Pod's first config from go-control-plane v0.14.0 serving the very same resources
//     (bench/mesh-baseline.ts): what handing over those bytes takes on this machine, the baseline;
//   - a rollout of 10 workloads (`--rollout` Pods: new names, IPs and pod-template-hash).
// Tests never assert timings; this writes bench/results/xds-mesh-latest.md (+json).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from '../control-plane/cli.js';
import { shortTypeName, TypeUrl } from '../control-plane/envoy/protos.js';
import {
  MeshFixture,
  NAMESPACE_COUNT,
  namespaceOf,
  outboundCluster,
  podIp,
  serviceFqdn,
  serviceName,
} from './mesh-fixture.js';
import { goPeer, type GcpCache } from './go-peers.js';
import { baselineNewPods, writeProxyConfig, type BaselinePods } from './mesh-baseline.js';
import { GoMeshFleet } from './mesh-load.js';
import {
  MeshFleet,
  proxylessNode,
  sidecarNode,
  sidecarNodes,
  type Expectation,
  type Fleet,
  type SimNode,
} from './mesh-sim.js';
import {
  fmt,
  fmtBytes,
  fmtInt,
  mib,
  positiveInt,
  summarize,
  type Benchmark,
  type BenchResult,
  type Progress,
  type Table,
  UsageError,
} from './report.js';
import { ServerProcess, type ServerEvent } from './server-process.js';
import { summarizeProfile, type CpuProfile, type ProfileEntry, type ProfileSummary } from './profile.js';

const USAGE = `npm run bench -- xds-mesh [--services 1000] [--endpoints 10] [--sidecars 1000] [--proxyless 200]
    [--connections 50] [--rounds 5] [--debounce-after 100ms] [--timeout 300s] [--scope 0] [--cpu-prof]
    [--heap-snapshot] [--clients go|node] [--pin] [--client-window 268435456] [--new-pods 10]
    [--baseline snapshot,linear]
  quick run: --services 200 --sidecars 100 --proxyless 20
  --clients: the simulated proxies run in the Go load generator (go, the default; tools/peers/xds-load,
    built by \`npm run peers\`) or in this Node process (node: bench/mesh-sim.ts, the same streams, but
    its CPU per byte received exceeds the control plane's per byte sent, on the same cores)
  --scope N: a namespace Sidecar in every namespace scopes each proxy to N Services (those the rounds
    change first, so every stream still sees each change); 0: no Sidecar, every proxy gets every Service
  --cpu-prof: a V8 CPU profile of the control plane during the storm, each round and each row of new
    Pods (.cpuprofile in $TMPDIR/trellis-bench-profiles/), summed up in a table: where each round's CPU
    went; sampled every 500 µs, or every TRELLIS_PROF_US µs
  --heap-snapshot: a V8 heap snapshot of the control plane after the connect storm and a full GC
    ($TMPDIR/trellis-bench-profiles/xds-mesh-after-storm.heapsnapshot)
  --pin: the control plane (all its threads) on CPU 0, the proxies and this process on CPU 1 (taskset):
    what the control plane does with a core of its own, without the proxies competing for it
  --client-window: the Go proxies' HTTP/2 receive window per stream and per connection, in bytes; the
    default is Envoy's (256 MiB, which neither Istio's nor Trellis's bootstrap changes); 0: grpc-go's own
    (64 KiB, grown by its BDP estimate)
  --new-pods N: how many new Pods connect, one at a time, in each of the two new-Pod rows
  --baseline: go-control-plane v0.14.0 caches (snapshot, linear; or none) that serve a sidecar's resources,
    as Trellis sent them, to --new-pods more new Pods of the same Go proxies (npm run peers -- gcp xds-load)`;

interface Options {
  services: number;
  endpoints: number;
  sidecars: number;
  proxyless: number;
  connections: number;
  rounds: number;
  debounceMs: number;
  timeoutMs: number;
  /** Services per namespace Sidecar; 0: no Sidecar. */
  scope: number;
  cpuProf: boolean;
  heapSnapshot: boolean;
  clients: 'go' | 'node';
  pin: boolean;
  /** The Go proxies' HTTP/2 receive window in bytes; 0: grpc-go's. */
  clientWindow: number;
  /** New Pods per new-Pod row. */
  newPods: number;
  /** go-control-plane caches of the new-Pod baseline (empty: none). */
  baseline: GcpCache[];
}

/** Envoy's default HTTP/2 receive window, per stream and per connection (Http2ProtocolOptions). */
const ENVOY_WINDOW = 256 * 1024 * 1024;

function parseOptions(argv: readonly string[]): Options {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      services: { type: 'string', default: '1000' },
      endpoints: { type: 'string', default: '10' },
      sidecars: { type: 'string', default: '1000' },
      proxyless: { type: 'string', default: '200' },
      connections: { type: 'string', default: '50' },
      rounds: { type: 'string', default: '5' },
      'debounce-after': { type: 'string', default: '100ms' },
      timeout: { type: 'string', default: '300s' },
      scope: { type: 'string', default: '0' },
      'cpu-prof': { type: 'boolean', default: false },
      'heap-snapshot': { type: 'boolean', default: false },
      clients: { type: 'string', default: 'go' },
      pin: { type: 'boolean', default: false },
      'client-window': { type: 'string', default: String(ENVOY_WINDOW) },
      'new-pods': { type: 'string', default: '10' },
      baseline: { type: 'string', default: 'snapshot,linear' },
    },
    strict: true,
  });
  const o: Options = {
    services: positiveInt('services', values.services),
    endpoints: positiveInt('endpoints', values.endpoints),
    sidecars: positiveInt('sidecars', values.sidecars),
    proxyless: Number(values.proxyless),
    connections: positiveInt('connections', values.connections),
    rounds: positiveInt('rounds', values.rounds),
    debounceMs: parseDuration(values['debounce-after']),
    timeoutMs: parseDuration(values.timeout),
    scope: Number(values.scope),
    cpuProf: values['cpu-prof'],
    heapSnapshot: values['heap-snapshot'],
    clients: values.clients === 'node' ? 'node' : 'go',
    pin: values.pin,
    clientWindow: Number(values['client-window']),
    newPods: positiveInt('new-pods', values['new-pods']),
    baseline: values.baseline === 'none' ? [] : (values.baseline.split(',') as GcpCache[]),
  };
  if (o.baseline.some((c) => c !== 'snapshot' && c !== 'linear'))
    throw new UsageError('--baseline must be none or a list of snapshot and linear');
  if (o.baseline.length > 0 && o.clients !== 'go') throw new UsageError('--baseline needs --clients go');
  if (values.clients !== 'go' && values.clients !== 'node') throw new UsageError('--clients must be go or node');
  if (
    !Number.isInteger(o.clientWindow) ||
    (o.clientWindow !== 0 && (o.clientWindow < 65535 || o.clientWindow > 2 ** 31 - 1))
  )
    throw new UsageError('--client-window must be 0 or an integer from 65535 to 2147483647');
  if (!Number.isInteger(o.proxyless) || o.proxyless < 0) throw new UsageError('--proxyless must be an integer >= 0');
  if (o.sidecars > o.services * o.endpoints)
    throw new UsageError('--sidecars must be at most --services × --endpoints');
  if (o.services < 20) throw new UsageError('--services must be at least 20 (the rollout rewrites 10 workloads)');
  if (!Number.isInteger(o.scope) || o.scope < 0 || o.scope > o.services)
    throw new UsageError('--scope must be an integer from 0 to --services');
  return o;
}

/** The Services the rounds change (endpoints, VirtualService weights, the rollout), in that order, unique. */
function changedServices(o: Options): number[] {
  const out = new Set<number>();
  for (let r = 0; r < o.rounds; r++) out.add((r * 37 + 11) % o.services);
  for (let r = 0; r < o.rounds; r++) out.add((r * 53 + 7) % o.services);
  for (let k = 0; k < 10; k++) out.add(10 + k);
  return [...out];
}

/**
 * `--scope N`: one Sidecar per namespace (the namespace default) whose egress names N Services: the ones the
 * rounds change first (so every stream still receives every change), then Services 0, 1, …
 */
function writeScopeSidecars(dir: string, o: Options): number[] {
  const chosen = new Set(changedServices(o).slice(0, o.scope));
  for (let i = 0; chosen.size < o.scope; i++) chosen.add(i);
  const hosts = [...chosen].sort((a, b) => a - b).map((i) => `${namespaceOf(i)}/${serviceFqdn(i)}`);
  const docs = Array.from({ length: NAMESPACE_COUNT }, (_, n) =>
    JSON.stringify({
      apiVersion: 'networking.trellis.dev/v1alpha1',
      kind: 'Sidecar',
      metadata: { name: 'default', namespace: `ns-${n}` },
      spec: { egress: [{ hosts }] },
    }),
  );
  fs.writeFileSync(path.join(dir, 'sidecars.yaml'), docs.join('\n---\n') + '\n');
  return [...chosen];
}

interface Phase {
  readonly name: string;
  readonly ms: number[];
  readonly cpuMs: number;
  /** The main thread's part of cpuMs (the rest: V8's compiler and GC threads, libuv's pool). */
  readonly mainCpuMs: number;
  readonly responses: Record<string, number>;
  readonly complete: boolean;
  /** Ms from the change: the snapshot published, the push cycle started and ended (NaN: none). */
  readonly timeline?: { readonly snapshotMs: number; readonly pushStartMs: number; readonly pushEndMs: number };
  /** With --cpu-prof: where the control plane's CPU went during the round. */
  readonly profile?: ProfileSummary;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The pause before each new Pod of the row "a new Pod connects" and of the baseline. */
const NEW_POD_GAP_MS = 200;

/** Binds every thread of process `pid` (and the processes it starts later) to `cpus` (taskset). */
function pin(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

export const xdsMesh: Benchmark = {
  name: 'xds-mesh',
  description: 'translated mesh (--config-dir): sidecars of many workloads + proxyless clients; change → last ACK',
  usage: USAGE,
  async run(argv: readonly string[], progress: Progress): Promise<BenchResult> {
    const o = parseOptions(argv);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-xds-mesh-'));
    const fixture = new MeshFixture(dir, { services: o.services, endpoints: o.endpoints });
    progress.phase(`writing ${o.services} Services × ${o.endpoints} Pods to ${dir}`);
    fixture.writeAll();
    if (o.scope > 0) {
      const scoped = writeScopeSidecars(dir, o);
      if (changedServices(o).some((i) => !scoped.includes(i)))
        progress.phase(
          `--scope ${o.scope}: some changed Services are outside the scope; their rounds wait for streams that never see them`,
        );
    }
    const load = [os.loadavg()[0]!];
    const startedAt = performance.now();
    if (o.pin) {
      if (os.cpus().length < 2) throw new UsageError('--pin needs at least 2 CPUs');
      pin(process.pid, '1');
    }
    const { server, xdsPort, monitoringPort } = await ServerProcess.start({
      debounceMs: o.debounceMs,
      script: { path: path.join('bench', 'xds-mesh-server.ts'), args: ['--config-dir', dir] },
      ...(o.pin ? { cpus: '0' } : {}),
    });
    const readyMs = performance.now() - startedAt;
    const fleet: Fleet =
      o.clients === 'go'
        ? new GoMeshFleet(goLoadBinary(), `127.0.0.1:${xdsPort}`, o.connections, o.clientWindow)
        : new MeshFleet(`127.0.0.1:${xdsPort}`, o.connections);
    const phases: Phase[] = [];
    const typeCounts = async (): Promise<Record<string, number>> => {
      const counts = await fleet.typeCounts();
      return Object.fromEntries(TYPES.map((t) => [shortTypeName(t), counts.get(t) ?? 0]));
    };
    /** The control plane's trellis_xds_initial_config_seconds for Envoy proxies: sum (s) and count. */
    const initialConfig = async (): Promise<{ sum: number; count: number }> => {
      const text = await (await fetch(`http://127.0.0.1:${monitoringPort}/metrics`)).text();
      const read = (suffix: string): number =>
        Number(
          new RegExp(`^trellis_xds_initial_config_seconds_${suffix}\\{proxy="envoy"\\} (\\S+)$`, 'm').exec(text)?.[1] ??
            0,
        );
      return { sum: read('sum'), count: read('count') };
    };
    /** Mean ms of the initial configs observed between two readings. */
    const meanInitialMs = (a: { sum: number; count: number }, b: { sum: number; count: number }): number =>
      b.count > a.count ? ((b.sum - a.sum) / (b.count - a.count)) * 1000 : NaN;
    const diffCounts = (a: Record<string, number>, b: Record<string, number>): Record<string, number> =>
      Object.fromEntries(Object.keys(b).map((k) => [k, b[k]! - (a[k] ?? 0)]));
    try {
      await sleep(1000);
      await server.gc();
      const idle = server.memory();
      const idleCpu = server.cpuMs();
      const idleMainCpu = server.mainCpuMs();

      // 1. Connect storm.
      const nodes = [
        ...sidecarNodes(o.sidecars, o.endpoints),
        ...Array.from({ length: o.proxyless }, (_, k) => proxylessNode(k, k % 20)),
      ];
      /** With --cpu-prof: a CPU profile of the control plane starts. */
      const startProfile = async (): Promise<void> => {
        if (!o.cpuProf) return;
        server.command('profile-start');
        await server.waitFor((e) => e.event === 'profiling', 10_000);
      };
      /** With --cpu-prof: the profile started last, written to a file named after `name`, summed up. */
      const stopProfile = async (name: string): Promise<ProfileSummary | undefined> => {
        if (!o.cpuProf) return undefined;
        const dir = path.join(os.tmpdir(), 'trellis-bench-profiles');
        fs.mkdirSync(dir, { recursive: true });
        const file = path.join(dir, `xds-mesh-${phases.length}-${name.replace(/[^a-z0-9]+/gi, '-')}.cpuprofile`);
        server.command(`profile-stop ${file}`);
        await server.waitFor((e) => e.event === 'profiled', 120_000);
        progress.phase(`profile: ${file}`);
        return summarizeProfile(JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile, 8);
      };
      progress.phase(`connect storm: ${o.sidecars} sidecars + ${o.proxyless} proxyless`);
      await startProfile();
      const storm = await fleet.connect(nodes, o.timeoutMs);
      await stopProfile('connect storm');
      phases.push({
        name: 'connect storm (all at once)',
        ms: storm,
        cpuMs: server.cpuMs() - idleCpu,
        mainCpuMs: server.mainCpuMs() - idleMainCpu,
        responses: await typeCounts(),
        complete: true,
      });
      await sleep(500);
      const afterStorm = server.memory();
      const heap = await server.gc();
      const afterGc = server.memory();
      if (o.heapSnapshot) {
        const file = path.join(os.tmpdir(), 'trellis-bench-profiles', 'xds-mesh-after-storm.heapsnapshot');
        fs.mkdirSync(path.dirname(file), { recursive: true });
        server.command(`heap-snapshot ${file}`);
        await server.waitFor((e) => e.event === 'heap-snapshot', 600_000);
        progress.phase(`heap snapshot: ${file}`);
      }
      load.push(os.loadavg()[0]!);

      // A round: apply `change` (file renames) at t0, wait until every stream has what `expect` says.
      const round = async (name: string, expect: Expectation, change: () => void): Promise<void> => {
        await sleep(Math.max(300, o.debounceMs * 3));
        const before = await typeCounts();
        const cpu0 = server.cpuMs();
        const mainCpu0 = server.mainCpuMs();
        await startProfile();
        const eventsBefore = server.events.length;
        const { t0, done } = await fleet.startRound(expect, o.timeoutMs);
        change();
        const { complete, ackedMs } = await done;
        // The last proxy can ACK before the control plane has reported the end of its push cycle (it ends
        // after a yield to the event loop); wait briefly for that report, for the timeline column.
        if (!server.events.slice(eventsBefore).some((e) => e.event === 'pushed'))
          await server.waitFor((e) => e.event === 'pushed', 2_000).catch(() => undefined);
        const t0Epoch = performance.timeOrigin + t0;
        const events = server.events.slice(eventsBefore);
        const snapshot = events.find((e) => e.event === 'snapshot');
        const pushes = events.filter((e): e is Extract<ServerEvent, { event: 'pushed' }> => e.event === 'pushed');
        const firstPush = pushes.find((p) => p.streams > 0) ?? pushes[0];
        const lastPush = pushes[pushes.length - 1];
        const timeline = {
          snapshotMs: snapshot && 'at' in snapshot ? snapshot.at - t0Epoch : NaN,
          pushStartMs: firstPush ? firstPush.at - firstPush.durationMs - t0Epoch : NaN,
          pushEndMs: lastPush ? lastPush.at - t0Epoch : NaN,
        };
        const cpu = server.cpuMs() - cpu0;
        const mainCpu = server.mainCpuMs() - mainCpu0;
        const profile = await stopProfile(name);
        await sleep(200);
        phases.push({
          name,
          ms: ackedMs.filter((x) => !Number.isNaN(x)),
          cpuMs: cpu,
          mainCpuMs: mainCpu,
          responses: diffCounts(before, await typeCounts()),
          complete,
          timeline,
          ...(profile ? { profile } : {}),
        });
      };

      // 2. Endpoint changes: the first address of one Service's slice moves.
      for (let r = 0; r < o.rounds; r++) {
        const i = (r * 37 + 11) % o.services;
        const address = `1.0.${r}.${i & 255}`;
        progress.phase(`endpoint change ${r + 1}/${o.rounds}: ${serviceName(i)}`);
        await round('one endpoint change', { kind: 'eds', targets: new Map([[outboundCluster(i), address]]) }, () =>
          fixture.update(i, { firstAddress: address }),
        );
      }
      // 3. VirtualService changes: the v1/v2 weights of one Service.
      for (let r = 0; r < o.rounds; r++) {
        const i = (r * 53 + 7) % o.services;
        progress.phase(`VirtualService change ${r + 1}/${o.rounds}: ${serviceName(i)}`);
        await round('one VirtualService change', { kind: 'type', typeUrl: TypeUrl.RouteConfiguration }, () =>
          fixture.update(i, { v1Weight: 80 - r }),
        );
      }
      // 4. A new Pod of workload 0 connects (its endpoint is not in the slice yet, as before readiness).
      /** A new Pod of workload 0 (`pod`, at `ip`) connects: its time to a whole config. */
      const connectPod = async (pod: string, ip: string): Promise<number> => {
        const node: SimNode = { ...sidecarNode(0, 0, o.endpoints), id: `${pod}.${namespaceOf(0)}`, instanceIps: [ip] };
        const [ms] = await fleet.connect([node], o.timeoutMs);
        return ms!;
      };
      const podPhase = (name: string, ms: number[], profile?: ProfileSummary): Phase => ({
        name,
        ms,
        cpuMs: NaN,
        mainCpuMs: NaN,
        responses: {},
        complete: true,
        ...(profile ? { profile } : {}),
      });
      const newPod: number[] = [];
      const beforeNewPods = await initialConfig();
      await startProfile();
      const bytesBeforeNewPods = await fleet.totalBytes();
      for (let r = 0; r < o.newPods; r++) {
        await sleep(NEW_POD_GAP_MS);
        newPod.push(await connectPod(`${serviceName(0)}-new-${r}`, `10.250.0.${r + 1}`));
      }
      const newPodName = 'a new Pod connects';
      phases.push(podPhase(newPodName, newPod, await stopProfile(newPodName)));
      const bytesPerNewPod = ((await fleet.totalBytes()) - bytesBeforeNewPods) / o.newPods;
      const afterNewPods = await initialConfig();
      // 4b. The same, as on Kubernetes: the EndpointSlice controller lists the Pod, not ready, once it has an
      // IP, which is before its proxy starts; the Pod connects once that snapshot is published and pushed.
      const startedPod: number[] = [];
      /** Streams each of those pushes reached (none: a not-ready endpoint is in no assignment). */
      const startedPushStreams: number[] = [];
      const starting: { pod: string; ip: string }[] = [];
      await startProfile();
      for (let r = 0; r < o.newPods; r++) {
        const pod = `${serviceName(0)}-starting-${r}`;
        starting.push({ pod, ip: `10.251.0.${r + 1}` });
        const published = server.waitFor((e) => e.event === 'snapshot', o.timeoutMs);
        const pushed = published.then(() => server.waitFor((e) => e.event === 'pushed', o.timeoutMs));
        fixture.update(0, { starting: [...starting] });
        const push = await pushed;
        if (push.event === 'pushed') startedPushStreams.push(push.streams);
        startedPod.push(await connectPod(pod, starting[r]!.ip));
      }
      const startedPodName = 'a new Pod connects, its not-ready endpoint published first';
      phases.push(podPhase(startedPodName, startedPod, await stopProfile(startedPodName)));
      const afterStartedPods = await initialConfig();
      const serverViewMs = [meanInitialMs(beforeNewPods, afterNewPods), meanInitialMs(afterNewPods, afterStartedPods)];
      // 4c. The baseline: go-control-plane serving the resources a Pod of workload 0 holds now, to new Pods of
      // the same Go proxies (a process of their own; the Trellis streams stay connected, idle).
      const baselines: BaselinePods[] = [];
      let baselineConfig = { resources: 0, bytes: 0 };
      if (o.baseline.length > 0) {
        const file = path.join(dir, 'baseline-resources.json');
        baselineConfig = await writeProxyConfig(monitoringPort, sidecarNode(0, 0, o.endpoints).id, file);
        /** A new Pod of workload 0 named `name` (go-control-plane serves every node the same). */
        const pod = (name: string): SimNode => ({ ...sidecarNode(0, 0, o.endpoints), id: `${name}.${namespaceOf(0)}` });
        for (const cache of o.baseline) {
          progress.phase(`baseline: ${o.newPods} new Pods from go-control-plane (${cache} cache)`);
          const result = await baselineNewPods({
            gcpBinary: gcpBinary(),
            loadBinary: goLoadBinary(),
            file,
            cache,
            warmup: pod(`${serviceName(0)}-gcp-${cache}-warmup`),
            nodes: Array.from({ length: o.newPods }, (_, r) => pod(`${serviceName(0)}-gcp-${cache}-${r}`)),
            window: o.clientWindow,
            gapMs: NEW_POD_GAP_MS,
            timeoutMs: o.timeoutMs,
          });
          baselines.push(result);
          phases.push(
            podPhase(`a new Pod connects to go-control-plane (${cache} cache), the same resources`, result.ms),
          );
        }
      }
      // 5. Rollout: 10 workloads (Services 10..19) get new Pods (names, IPs, pod-template-hash).
      const rolled = Array.from({ length: 10 }, (_, k) => 10 + k);
      progress.phase(`rollout: ${rolled.length * Math.min(10, o.endpoints)} Pods of ${rolled.length} workloads`);
      await round(
        `rollout (${rolled.length} workloads × ${o.endpoints} Pods)`,
        { kind: 'eds', targets: new Map(rolled.map((i) => [outboundCluster(i), podIp(i, 1, 0)])) },
        () => {
          for (const i of rolled) fixture.update(i, { revision: 1, firstAddress: undefined });
        },
      );
      load.push(os.loadavg()[0]!);
      const final = server.memory();
      const finalHeap = await server.gc();
      const finalGc = server.memory();
      const proxies = nodes.length + 2 * o.newPods;

      const tables: Table[] = [
        {
          title: `Change → last ACK, ${o.sidecars} sidecars + ${o.proxyless} proxyless (delta), ${o.services} Services × ${o.endpoints} endpoints, debounce ${o.debounceMs} ms`,
          columns: [
            'what',
            'samples',
            'p50 ms',
            'p99 ms',
            'max ms',
            'control-plane CPU (main thread)',
            'snapshot / push start / push end ms',
            'responses by type',
            'all ACKed',
          ],
          rows: phases.map((p) => {
            const s = summarize(p.ms);
            return [
              p.name,
              fmtInt(s.count),
              fmt(s.p50),
              fmt(s.p99),
              fmt(s.max),
              Number.isNaN(p.cpuMs) ? '–' : `${fmtInt(p.cpuMs)} ms (${fmtInt(p.mainCpuMs)})`,
              p.timeline
                ? [p.timeline.snapshotMs, p.timeline.pushStartMs, p.timeline.pushEndMs]
                    .map((x) => (Number.isNaN(x) ? '–' : fmtInt(x)))
                    .join(' / ')
                : '–',
              Object.entries(p.responses)
                .filter(([, n]) => n > 0)
                .map(([t, n]) => `${t} ${fmtInt(n)}`)
                .join(', ') || '–',
              p.complete ? 'yes' : 'NO (timeout)',
            ];
          }),
          notes: [
            'Rounds: ms from the rename of the file to each stream’s ACK of the response carrying the change (endpoint: the ClusterLoadAssignment with the new address; VirtualService: a RouteConfiguration); p50/p99 over all streams of all rounds. CPU: control-plane utime+stime per round (summed over rounds for the storm), in brackets its main thread’s (the JavaScript; the rest is V8’s compiler and GC threads and libuv’s pool).',
            'Snapshot / push start / push end: ms from the rename to the control plane publishing the new mesh snapshot, starting the push cycle that carried the change (after the debounce), and ending the last push cycle of the round (every stream handed its config).',
            'Connect storm: ms from opening all streams to each one’s whole initial config ACKed. New Pod: the same for one stream, with the others connected; first with no endpoint of its own yet (its inbound side then comes from the Services that select its labels), then, as on Kubernetes, once its not-ready endpoint is in the EndpointSlice (published and pushed before it connects).',
            'Responses by type: what the streams received during the rounds (an EDS-only change shows only ClusterLoadAssignment).',
            `New Pods, each sample in the order they connected (ms): ${newPod.map((x) => fmt(x, 1)).join(', ')} with no endpoint yet; ${startedPod.map((x) => fmt(x, 1)).join(', ')} with the not-ready endpoint published first (the pushes that published those endpoints reached ${startedPushStreams.join(', ')} streams).`,
            `New Pods as the control plane sees them (trellis_xds_initial_config_seconds: first request → its first ACK of each of CDS, EDS, LDS and RDS), mean of the ${o.newPods}: ${fmt(serverViewMs[0]!, 1)} ms with no endpoint yet, ${fmt(serverViewMs[1]!, 1)} ms with the not-ready endpoint published first. Bytes each received: ${fmtBytes(bytesPerNewPod)}.`,
            ...(baselines.length > 0
              ? [
                  `Baseline: go-control-plane v0.14.0 serving the ${fmtInt(baselineConfig.resources)} CDS, EDS, LDS and RDS resources (${fmtBytes(baselineConfig.bytes)}) a Pod of the same workload held from Trellis (read from its /debug/config and encoded again), from a process of its own, to new Pods of the same Go proxies in a second load-generator process (the Trellis streams connected and idle meanwhile), one every ${NEW_POD_GAP_MS} ms after one not counted. ${baselines.map((b) => `${b.cache} cache: ${b.ms.map((x) => fmt(x, 1)).join(', ')} ms, ${fmtBytes(b.bytesPerPod)} each`).join('; ')}.`,
                ]
              : []),
          ],
        },
        {
          title: 'Control-plane memory',
          columns: ['when', 'RSS', 'per proxy above idle'],
          rows: [
            ['idle (mesh loaded, no proxy)', `${mib(idle.rss)} MiB`, '–'],
            [
              'after the connect storm',
              `${mib(afterStorm.rss)} MiB`,
              fmtBytes((afterStorm.rss - idle.rss) / nodes.length),
            ],
            [
              'after a full GC',
              `${mib(afterGc.rss)} MiB (heap ${mib(heap.heapUsed)} MiB)`,
              fmtBytes((afterGc.rss - idle.rss) / nodes.length),
            ],
            [
              'at the end',
              `${mib(final.rss)} MiB (peak ${mib(final.hwm)} MiB)`,
              fmtBytes((final.rss - idle.rss) / proxies),
            ],
            [
              'at the end, after a full GC',
              `${mib(finalGc.rss)} MiB (heap ${mib(finalHeap.heapUsed)} MiB)`,
              fmtBytes((finalGc.rss - idle.rss) / proxies),
            ],
          ],
        },
      ];
      const profiled = phases.filter((p) => p.profile);
      if (profiled.length > 0)
        tables.push({
          title: 'Where the control plane’s CPU went (--cpu-prof, self time)',
          columns: ['round', 'busy ms', 'top modules', 'top functions'],
          rows: profiled.map((p) => {
            const top = (entries: readonly ProfileEntry[], n: number): string =>
              entries
                .slice(0, n)
                .map((e) => `${e.name} ${fmt(e.percent, 0)}%`)
                .join('; ');
            return [p.name, fmtInt(p.profile!.busyMs), top(p.profile!.modules, 5), top(p.profile!.functions, 8)];
          }),
          notes: [
            'Busy: profiled time not idle, from the profile start (before the change) to the last ACK; for the new',
            'Pods, all five of them (and the pauses between them, idle).',
          ],
        });
      if (fleet.errors.length > 0)
        tables.push({ title: 'Stream errors', columns: ['error'], rows: fleet.errors.map((e) => [e]) });
      return {
        name: 'xds-mesh',
        title: 'xds-mesh: a translated mesh through --config-dir',
        params: { ...o, readyMs: Math.round(readyMs), loadAverage: load.map((l) => fmt(l, 1)).join(' → ') },
        tables,
        notes: [
          `Control plane ready (directory read, ports open) ${fmtInt(readyMs)} ms after the start. Load average (1 min) during the run: ${load.map((l) => fmt(l, 1)).join(' → ')}.`,
          `Bytes received by all streams: ${fmtBytes(await fleet.totalBytes())}.`,
          o.clients === 'go'
            ? 'Proxies: the Go load generator (tools/peers/xds-load --mesh), one process beside the control plane.'
            : 'Proxies: Node clients in the benchmark process (bench/mesh-sim.ts).',
        ],
        data: { phases, memory: { idle, afterStorm, afterGc, final, heap, finalGc, finalHeap } },
      };
    } finally {
      await fleet.close();
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
};

/** The go-control-plane peer, or a usage error saying how to build it. */
function gcpBinary(): string {
  const binary = goPeer('gcp');
  if (!binary) throw new UsageError('go-control-plane is not built: npm run peers -- gcp (or --baseline none)');
  return binary;
}

/** The Go load generator, or a usage error saying how to build it. */
function goLoadBinary(): string {
  const binary = goPeer('xds-load');
  if (!binary)
    throw new UsageError('the Go load generator is not built: npm run peers -- xds-load (or --clients node)');
  return binary;
}

const TYPES = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration];
