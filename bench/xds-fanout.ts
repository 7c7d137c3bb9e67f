// `npm run bench -- xds-fanout`: convergence of a one-endpoint change across N simulated ADS streams.
//
// The control plane (bench/server.ts, i.e. startControlPlane) runs in its own process and serves a
// static-resources file with `clusters` EDS clusters (bench/fixture.ts). This process opens N streams over
// M gRPC connections (bench/ads-sim.ts) that subscribe and ACK as Envoy does, waits until every stream has
// its whole initial config ACKed, then makes R rounds of one change: rewrite the file atomically (temp +
// rename) with one ClusterLoadAssignment's endpoint port changed. t0 is taken just before the rename; a
// stream's time is when it has received and ACKed the response carrying the new port. This is the time
// from a registry change to the last ACK that Istio's `pilot_proxy_convergence_time` measures, and it
// includes the file watch, the re-read, the debounce and the push (each shown in "Where the time goes").
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { parseDuration } from '../control-plane/cli.js';
import { shortTypeName } from '../control-plane/envoy/protos.js';
import { Fleet, type Protocol, type RoundWatch } from './ads-sim.js';
import { Fixture, ROUTE_NAME } from './fixture.js';
import {
  inclusiveTimes,
  summarizeProfile,
  type CpuProfile,
  type ProfileEntry,
  type ProfileSummary,
} from './profile.js';

/** Functions of the push path whose inclusive time the profile table shows. */
const PROFILED_FUNCTIONS = [
  'reload@control-plane/static-resources.ts',
  'pushCycle@xds/push-controller.ts',
  'configFor@xds/push-controller.ts',
  'encode@xds/resource-cache.ts',
  'onConfig@xds/xds-stream.ts',
  'send@xds/xds-stream.ts',
  'onRequest@xds/sotw-stream.ts',
  'onRequest@xds/delta-stream.ts',
  'replaceSubscription@xds/type-state.ts',
  '@xds/ads-server.ts', // its anonymous functions: the request deserializer (the handlers run only at connect)
];

/** The static source's re-read of the file: left out of the profile table (shown as one number). */
const isStaticReload = (frame: { functionName: string; url: string }): boolean =>
  frame.functionName === 'reload' && frame.url.endsWith('control-plane/static-resources.ts');
import {
  fmt,
  fmtBytes,
  fmtInt,
  median,
  mib,
  summarize,
  type Benchmark,
  type BenchResult,
  type Progress,
  type Summary,
  type Table,
  positiveInt,
  UsageError,
} from './report.js';
import { metricSums, ServerProcess, type ServerEvent } from './server-process.js';

const USAGE = `npm run bench -- xds-fanout [--protocol delta|sotw|both] [--streams 1000] [--clusters 1000]
    [--connections 50] [--rounds 5] [--endpoints 3] [--debounce-after 100ms,0ms] [--pin] [--cpu-prof]
    [--timeout 120s]
  --debounce-after  the server's --debounce-after; a comma list runs each setting
  --pin             control plane on CPU 0, clients on CPU 1 (taskset), as in performance-anchors.md §3
  --cpu-prof        V8 CPU profile of the control plane during the rounds (.cpuprofile in $TMPDIR/trellis-bench-profiles/)`;

interface Options {
  protocols: Protocol[];
  streams: number;
  clusters: number;
  connections: number;
  rounds: number;
  endpoints: number;
  debounces: number[];
  pin: boolean;
  cpuProf: boolean;
  timeoutMs: number;
}

function parseOptions(argv: readonly string[]): Options {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      protocol: { type: 'string', default: 'both' },
      streams: { type: 'string', default: '1000' },
      clusters: { type: 'string', default: '1000' },
      connections: { type: 'string', default: '50' },
      rounds: { type: 'string', default: '5' },
      endpoints: { type: 'string', default: '3' },
      'debounce-after': { type: 'string', default: '100ms,0ms' },
      pin: { type: 'boolean', default: false },
      'cpu-prof': { type: 'boolean', default: false },
      timeout: { type: 'string', default: '120s' },
    },
    strict: true,
  });
  const protocol = values.protocol;
  if (protocol !== 'delta' && protocol !== 'sotw' && protocol !== 'both')
    throw new UsageError(`--protocol must be delta, sotw or both`);
  return {
    protocols: protocol === 'both' ? ['delta', 'sotw'] : [protocol],
    streams: positiveInt('streams', values.streams),
    clusters: positiveInt('clusters', values.clusters),
    connections: positiveInt('connections', values.connections),
    rounds: positiveInt('rounds', values.rounds),
    endpoints: positiveInt('endpoints', values.endpoints),
    debounces: values['debounce-after'].split(',').map((d) => parseDuration(d)),
    pin: values.pin,
    cpuProf: values['cpu-prof'],
    timeoutMs: parseDuration(values.timeout),
  };
}

// ---------------------------------------------------------------------------------------------------

interface ConnectResult {
  allMs: number;
  /** Per stream: ms from the start of the fleet to its initial config ACKed. */
  perStream: Summary;
  bytes: number;
  responses: number;
  serverCpuMs: number;
  clientCpuMs: number;
  rssAfter: number;
}

interface RoundResult {
  round: number;
  target: string;
  port: number;
  complete: boolean;
  acked: number;
  latency: Summary;
  /** Per stream, ms from t0 to its ACK of the change (streams that missed it are left out). */
  samples: number[];
  firstReceiptMs: number;
  /** t0 → the server has re-read the file. */
  loadedMs: number;
  /** t0 → the push cycle started (after the debounce). */
  pushStartMs: number;
  /** The push cycle: generate, encode and write to every stream (server clock). */
  pushCycleMs: number;
  pushCycles: number;
  pushedStreams: number;
  encodes: number;
  bytes: number;
  responses: number;
  responsesByType: Record<string, number>;
  serverCpuMs: number;
  clientCpuMs: number;
  rssAfter: number;
}

interface RunResult {
  protocol: Protocol;
  debounceMs: number;
  connect: ConnectResult;
  rounds: RoundResult[];
  latency: Summary;
  /** Per stream, from the server's snapshot change (file re-read done) to the ACK, over all rounds. */
  fromSnapshot: Summary;
  memory: {
    idle: number;
    afterConnect: number;
    beforeRounds: number;
    afterRounds: number;
    peakDuringRounds: number;
    hwm: number;
    /** Live JS heap after a forced full GC: with no stream, after connect, after the rounds. */
    heapIdle: number;
    heapConnected: number;
    heapAfterRounds: number;
  };
  serverMetrics: Record<string, number>;
  /** 1-minute load average before the rounds and after them (other work on the machine skews results). */
  loadAverage: [number, number];
  errors: string[];
  profile?: { file: string; summary: ProfileSummary; inclusive: ProfileEntry[] };
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function cpuMsOf(usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1000;
}

// ---------------------------------------------------------------------------------------------------
// The parts of a run that bench/xds-proxy.ts shares: converging a fleet, and one round's change.

/** Waits until every stream of `fleet` has its whole initial config ACKed (progress every 250 ms). */
export async function convergeFleet(
  fleet: Fleet,
  timeoutMs: number,
  progress: Progress,
  label: string,
): Promise<{ tStart: number; allMs: number }> {
  const streams = fleet.options.streams;
  const tStart = performance.now();
  const ticker = setInterval(
    () =>
      progress.update(`${label}: ${fleet.converged}/${streams} streams converged, ${mib(fleet.bytes)} MiB received`),
    250,
  );
  try {
    await fleet.start(timeoutMs);
  } finally {
    clearInterval(ticker);
  }
  return { tStart, allMs: performance.now() - tStart };
}

/** Round `round`'s change: the first endpoint of one ClusterLoadAssignment moves to a port of its own. */
export interface EndpointChange {
  readonly round: number;
  readonly index: number;
  readonly target: string;
  readonly port: number;
}

/** Makes round `round`'s change in the fixture and writes it to `tmp` (the served file is not touched yet). */
export function stageChange(fixture: Fixture, round: number, tmp: string): EndpointChange {
  const index = (round * 7919 + 13) % fixture.clusterNames.length;
  const port = 20_000 + round;
  fixture.setPort(index, port);
  fs.writeFileSync(tmp, fixture.text());
  return { round, index, target: fixture.clusterNames[index]!, port };
}

/**
 * Publishes a staged change: t0 just before the atomic rename of `tmp` over `file`. `done` resolves with
 * true when every stream has ACKed the response carrying it, false at the timeout.
 */
export function publishChange(
  fleet: Fleet,
  change: EndpointChange,
  tmp: string,
  file: string,
  timeoutMs: number,
): { t0: number; watch: RoundWatch; done: Promise<boolean> } {
  const t0 = performance.now();
  const { watch, done } = fleet.watchChange(change.target, change.port, t0, timeoutMs);
  fs.renameSync(tmp, file);
  return { t0, watch, done };
}

/** Waits for a published change and then `settleMs` more; the ms from t0 to each stream's ACK (misses left out). */
export async function awaitChange(
  fleet: Fleet,
  published: { watch: RoundWatch; done: Promise<boolean> },
  settleMs: number,
  progress: Progress,
  label: string,
): Promise<{ complete: boolean; latencies: number[] }> {
  const { watch, done } = published;
  const streams = fleet.options.streams;
  const tick = setInterval(
    () => progress.update(`${label}: ${streams - watch.remaining}/${streams} streams ACKed the change`),
    100,
  );
  const complete = await done;
  clearInterval(tick);
  await sleep(settleMs); // late responses, and any further push the change causes, belong to this round
  fleet.watch = undefined;
  return { complete, latencies: [...watch.ackedMs].filter((v) => !Number.isNaN(v)) };
}

function pinSelf(cpus: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(process.pid)], { stdio: 'ignore' });
}

const METRICS = [
  'trellis_xds_pushes_total',
  'trellis_xds_response_bytes_total',
  'trellis_xds_acks_total',
  'trellis_xds_stale_requests_total',
  'trellis_xds_nacks_total',
  'trellis_xds_push_cycle_duration_seconds_sum',
  'trellis_xds_push_cycle_duration_seconds_count',
  'trellis_process_resident_memory_bytes',
  'trellis_nodejs_heap_size_used_bytes',
];

async function runOne(
  o: Options,
  protocol: Protocol,
  debounceMs: number,
  progress: Progress,
  label: string,
): Promise<RunResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-bench-'));
  const file = path.join(dir, 'resources.json');
  const tmp = path.join(dir, 'resources.json.tmp');
  const fixture = new Fixture({ clusters: o.clusters, endpoints: o.endpoints });
  fs.writeFileSync(file, fixture.text());
  progress.phase(`${label}: starting the control plane (${fmtBytes(fs.statSync(file).size)} static-resources file)`);
  const { server, xdsPort, monitoringPort } = await ServerProcess.start({
    staticResources: file,
    debounceMs,
    cpus: o.pin ? '0' : undefined,
  });
  const metrics = async (): Promise<Record<string, number>> =>
    metricSums(await (await fetch(`http://127.0.0.1:${monitoringPort}/metrics`)).text(), METRICS);
  const errors: string[] = [];
  let fleet: Fleet | undefined;
  try {
    await server.waitFor((e) => e.event === 'pushed' || e.event === 'loaded', 1).catch(() => undefined);
    await sleep(500);
    const heapIdle = (await server.gc()).heapUsed;
    const idle = server.memory().rss;

    // Connect and converge all N.
    fleet = new Fleet({
      target: `127.0.0.1:${xdsPort}`,
      protocol,
      streams: o.streams,
      connections: o.connections,
      clusterNames: fixture.clusterNames,
      routeNames: [ROUTE_NAME],
    });
    const f = fleet;
    progress.phase(`${label}: opening ${o.streams} streams over ${o.connections} connections`);
    const serverCpu0 = server.cpuMs();
    const clientCpu0 = process.cpuUsage();
    const { tStart, allMs } = await convergeFleet(f, o.timeoutMs, progress, label);
    const connect: ConnectResult = {
      allMs,
      perStream: summarize(fleet.streams.map((s) => s.convergedAt - tStart)),
      bytes: fleet.bytes,
      responses: fleet.responses,
      serverCpuMs: server.cpuMs() - serverCpu0,
      clientCpuMs: cpuMsOf(process.cpuUsage(clientCpu0)),
      rssAfter: server.memory().rss,
    };
    progress.phase(
      `${label}: all ${o.streams} streams converged in ${fmtInt(allMs)} ms (${mib(connect.bytes)} MiB received)`,
    );
    await sleep(500);
    const heapConnected = (await server.gc()).heapUsed; // also keeps a full GC of the connect phase out of round 1
    await sleep(500);
    const memoryBeforeRounds = server.memory().rss;

    const loadBefore = os.loadavg()[0]!;
    let profileFile: string | undefined;
    if (o.cpuProf) {
      server.command('profile-start');
      await server.waitFor((e) => e.event === 'profiling', 10_000);
    }

    // Rounds of one change.
    const rounds: RoundResult[] = [];
    let peakDuringRounds = 0;
    const settleMs = debounceMs + 600;
    for (let r = 1; r <= o.rounds; r++) {
      const change = stageChange(fixture, r, tmp);
      const { target, port } = change;
      server.command('stats');
      const stats = await server.waitFor((e) => e.event === 'stats', 10_000);
      const encodesBefore = stats.event === 'stats' ? stats.encodeCount : NaN;
      const eventsBefore = server.events.length;
      const serverCpu = server.cpuMs();
      const clientCpu = process.cpuUsage();
      const bytes = fleet.bytes;
      const responses = fleet.responses;
      const byType = fleet.responsesByType();
      const sampler = setInterval(() => {
        peakDuringRounds = Math.max(peakDuringRounds, server.memory().rss);
      }, 50);
      const published = publishChange(fleet, change, tmp, file, o.timeoutMs);
      const { t0, watch } = published;
      const { complete, latencies } = await awaitChange(
        fleet,
        published,
        settleMs,
        progress,
        `${label}: round ${r}/${o.rounds}`,
      );
      clearInterval(sampler);
      const events = server.events.slice(eventsBefore);
      const t0Epoch = performance.timeOrigin + t0;
      const loaded = events.find((e): e is Extract<ServerEvent, { event: 'loaded' }> => e.event === 'loaded');
      const pushes = events.filter((e): e is Extract<ServerEvent, { event: 'pushed' }> => e.event === 'pushed');
      const firstPush = pushes.find((p) => p.streams > 0) ?? pushes[0];
      const lastPush = pushes[pushes.length - 1];
      const byTypeAfter = fleet.responsesByType();
      const roundByType: Record<string, number> = {};
      for (const [t, n] of byTypeAfter)
        if (n - (byType.get(t) ?? 0) > 0) roundByType[shortTypeName(t)] = n - (byType.get(t) ?? 0);
      const round: RoundResult = {
        round: r,
        target,
        port,
        complete,
        acked: latencies.length,
        latency: summarize(latencies),
        samples: latencies.map((v) => Math.round(v * 100) / 100),
        firstReceiptMs: watch.firstReceiptMs,
        loadedMs: loaded ? loaded.at - t0Epoch : NaN,
        pushStartMs: firstPush ? firstPush.at - firstPush.durationMs - t0Epoch : NaN,
        pushCycleMs: firstPush ? firstPush.durationMs : NaN,
        pushCycles: pushes.length,
        pushedStreams: pushes.reduce((a, p) => a + p.streams, 0),
        encodes: lastPush ? lastPush.encodeCount - encodesBefore : NaN,
        bytes: fleet.bytes - bytes,
        responses: fleet.responses - responses,
        responsesByType: roundByType,
        serverCpuMs: server.cpuMs() - serverCpu,
        clientCpuMs: cpuMsOf(process.cpuUsage(clientCpu)),
        rssAfter: server.memory().rss,
      };
      rounds.push(round);
      progress.phase(
        `${label}: round ${r}/${o.rounds}: ${round.acked}/${o.streams} ACKed, p50 ${fmt(round.latency.p50)} ms, p99 ${fmt(round.latency.p99)} ms, last ${fmt(round.latency.max)} ms`,
      );
      if (!complete)
        errors.push(
          `round ${r}: only ${round.acked} of ${o.streams} streams ACKed the change within ${o.timeoutMs} ms`,
        );
    }

    let profile: RunResult['profile'];
    if (o.cpuProf) {
      const profilesDir = path.join(os.tmpdir(), 'trellis-bench-profiles');
      fs.mkdirSync(profilesDir, { recursive: true });
      profileFile = path.join(
        profilesDir,
        `xds-fanout-${protocol}-${debounceMs}ms-${o.streams}x${o.clusters}.cpuprofile`,
      );
      server.command(`profile-stop ${profileFile}`);
      await server.waitFor((e) => e.event === 'profiled', 60_000);
      const cpuProfile = JSON.parse(fs.readFileSync(profileFile, 'utf8')) as CpuProfile;
      profile = {
        file: profileFile,
        summary: summarizeProfile(cpuProfile, 25, isStaticReload),
        inclusive: inclusiveTimes(cpuProfile, PROFILED_FUNCTIONS),
      };
    }

    const serverMetrics = await metrics();
    const mem = server.memory();
    const heapAfterRounds = (await server.gc()).heapUsed;
    errors.push(...fleet.errors);
    return {
      protocol,
      debounceMs,
      connect,
      rounds,
      latency: summarize(rounds.flatMap((r) => r.samples)),
      fromSnapshot: summarize(rounds.flatMap((r) => r.samples.map((v) => v - r.loadedMs))),
      memory: {
        idle,
        afterConnect: connect.rssAfter,
        beforeRounds: memoryBeforeRounds,
        afterRounds: mem.rss,
        peakDuringRounds,
        hwm: mem.hwm,
        heapIdle,
        heapConnected,
        heapAfterRounds,
      },
      serverMetrics,
      loadAverage: [Math.round(loadBefore * 100) / 100, Math.round(os.loadavg()[0]! * 100) / 100],
      errors,
      ...(profile ? { profile } : {}),
    };
  } finally {
    fleet?.close();
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------
// Report

const GOAL_P99_MS = 250;

function runLabel(r: RunResult): [string, string] {
  return [r.protocol, `${r.debounceMs} ms`];
}

function tables(o: Options, runs: readonly RunResult[]): Table[] {
  const out: Table[] = [];
  out.push({
    title: `One-endpoint change → last ACK: ${o.streams} streams × ${o.clusters} clusters, ${o.rounds} rounds (ms from the file rename)`,
    columns: [
      'protocol',
      'debounce',
      'samples',
      'p50',
      'p90',
      'p99',
      'max',
      'last ACK/round (median)',
      `goal p99 < ${GOAL_P99_MS}`,
    ],
    rows: runs.map((r) => [
      ...runLabel(r),
      fmtInt(r.latency.count),
      fmt(r.latency.p50),
      fmt(r.latency.p90),
      fmt(r.latency.p99),
      fmt(r.latency.max),
      fmt(median(r.rounds.map((x) => x.latency.max))),
      r.protocol === 'delta'
        ? r.latency.p99 < GOAL_P99_MS && r.latency.count === o.streams * o.rounds
          ? 'met'
          : 'missed'
        : '(delta only)',
    ]),
    notes: [
      'samples = streams × rounds; a stream counts when it has received and ACKed the response carrying the new port.',
      'The time includes the debounce (quiet period) and the server re-reading the whole static-resources file.',
    ],
  });
  out.push({
    title:
      'The same, from the snapshot change: the server has re-read the file → last ACK (what pilot_proxy_convergence_time measures)',
    columns: ['protocol', 'debounce', 'samples', 'p50', 'p90', 'p99', 'max', `goal p99 < ${GOAL_P99_MS}`],
    rows: runs.map((r) => [
      ...runLabel(r),
      fmtInt(r.fromSnapshot.count),
      fmt(r.fromSnapshot.p50),
      fmt(r.fromSnapshot.p90),
      fmt(r.fromSnapshot.p99),
      fmt(r.fromSnapshot.max),
      r.protocol === 'delta'
        ? r.fromSnapshot.p99 < GOAL_P99_MS && r.fromSnapshot.count === o.streams * o.rounds
          ? 'met'
          : 'missed'
        : '(delta only)',
    ]),
    notes: [
      'Leaves out the static source (fs.watch + reading and parsing the whole file), which a Kubernetes source replaces; keeps the debounce.',
    ],
  });
  out.push({
    title: 'Where the time goes (median over rounds, ms from the rename)',
    columns: [
      'protocol',
      'debounce',
      'file re-read',
      'push starts',
      'push cycle',
      'first stream ACKed',
      'last stream ACKed',
    ],
    rows: runs.map((r) => [
      ...runLabel(r),
      fmt(median(r.rounds.map((x) => x.loadedMs))),
      fmt(median(r.rounds.map((x) => x.pushStartMs))),
      fmt(median(r.rounds.map((x) => x.pushCycleMs))),
      fmt(median(r.rounds.map((x) => x.latency.min))),
      fmt(median(r.rounds.map((x) => x.latency.max))),
    ]),
    notes: [
      'file re-read: the server has seen the rename (fs.watch) and parsed the file; push starts: after the debounce;',
      'push cycle: generate + encode + write to every stream (server clock); server times are on the shared wall clock.',
    ],
  });
  out.push({
    title: 'Cost per round',
    columns: [
      'protocol',
      'debounce',
      'bytes received',
      'responses',
      'server CPU ms',
      'client CPU ms',
      'encodes',
      'push cycles',
    ],
    rows: runs.map((r) => [
      ...runLabel(r),
      fmtBytes(median(r.rounds.map((x) => x.bytes))),
      fmtInt(median(r.rounds.map((x) => x.responses))),
      fmtInt(median(r.rounds.map((x) => x.serverCpuMs))),
      fmtInt(median(r.rounds.map((x) => x.clientCpuMs))),
      fmtInt(median(r.rounds.map((x) => x.encodes))),
      fmtInt(median(r.rounds.map((x) => x.pushCycles))),
    ]),
    notes: [
      'bytes received: sum of the gRPC messages all streams received from the rename until the round settled;',
      'server CPU: utime+stime of the control-plane process (/proc/PID/stat, 10 ms ticks); client CPU: this process (all streams);',
      'encodes: resources serialized by the resource cache in the round.',
    ],
  });
  out.push({
    title: 'Control-plane memory (MiB)',
    columns: [
      'protocol',
      'debounce',
      'RSS idle',
      'after connect',
      'before rounds',
      'after rounds',
      'peak in rounds',
      'peak (VmHWM)',
      'live heap idle',
      'connected',
      'per stream KiB',
      'after rounds',
    ],
    rows: runs.map((r) => [
      ...runLabel(r),
      mib(r.memory.idle),
      mib(r.memory.afterConnect),
      mib(r.memory.beforeRounds),
      mib(r.memory.afterRounds),
      mib(r.memory.peakDuringRounds),
      mib(r.memory.hwm),
      mib(r.memory.heapIdle),
      mib(r.memory.heapConnected),
      fmt((r.memory.heapConnected - r.memory.heapIdle) / 1024 / o.streams),
      mib(r.memory.heapAfterRounds),
    ]),
    notes: [
      'RSS from /proc/PID/status (VmRSS; VmHWM is the peak over the whole run, connect included); peak in rounds: sampled every 50 ms.',
      'live heap: V8 heap used after a forced full GC (the server runs with --expose-gc; the GC is forced outside the timed rounds).',
    ],
  });
  out.push({
    title: `Connect and converge all ${o.streams} streams (initial config of every type ACKed)`,
    columns: [
      'protocol',
      'debounce',
      'all converged ms',
      'p50 ms',
      'p99 ms',
      'bytes received',
      'per stream',
      'server CPU ms',
      'client CPU ms',
    ],
    rows: runs.map((r) => [
      ...runLabel(r),
      fmtInt(r.connect.allMs),
      fmtInt(r.connect.perStream.p50),
      fmtInt(r.connect.perStream.p99),
      fmtBytes(r.connect.bytes),
      fmtBytes(r.connect.bytes / o.streams),
      fmtInt(r.connect.serverCpuMs),
      fmtInt(r.connect.clientCpuMs),
    ]),
    notes: ['All streams are opened at once; times are from the first stream opened.'],
  });
  out.push({
    title: 'Per round',
    columns: [
      'protocol',
      'debounce',
      'round',
      'ACKed',
      'p50',
      'p99',
      'max',
      'push cycle',
      'bytes',
      'responses by type',
      'server CPU ms',
    ],
    rows: runs.flatMap((r) =>
      r.rounds.map((x) => [
        ...runLabel(r),
        x.round,
        `${x.acked}/${o.streams}`,
        fmt(x.latency.p50),
        fmt(x.latency.p99),
        fmt(x.latency.max),
        fmt(x.pushCycleMs),
        fmtBytes(x.bytes),
        Object.entries(x.responsesByType)
          .map(([t, n]) => `${t} ${n}`)
          .join(', ') || '–',
        fmtInt(x.serverCpuMs),
      ]),
    ),
  });
  for (const r of runs) {
    if (!r.profile) continue;
    const s = r.profile.summary;
    out.push({
      title: `Control-plane CPU profile during the rounds: ${r.protocol}, debounce ${r.debounceMs} ms (busy ${fmtInt(s.busyMs)} of ${fmtInt(s.totalMs)} ms)`,
      columns: ['self ms', '% of busy', 'function'],
      rows: [
        [
          fmt(s.excludedMs),
          fmt((100 * s.excludedMs) / s.busyMs),
          'StaticResourcesSource.reload and all it calls (file re-read)',
        ],
        ...s.functions.map((f) => [fmt(f.selfMs), fmt(f.percent), f.name]),
      ],
      notes: [
        `by module: ${s.modules.map((m) => `${m.name} ${fmt(m.percent, 0)}%`).join(', ')}`,
        `profile: ${r.profile.file}`,
      ],
    });
    out.push({
      title: `Inclusive CPU time per round of the push path: ${r.protocol}, debounce ${r.debounceMs} ms (ms per round)`,
      columns: ['ms per round', '% of busy', 'function (and all it calls)'],
      rows: r.profile.inclusive.map((f) => [
        fmt(f.selfMs / o.rounds),
        fmt(f.percent),
        f.name === '@xds/ads-server.ts' ? 'request decoding (fromBinary in ads-server.ts)' : f.name,
      ]),
    });
  }
  return out;
}

export const xdsFanout: Benchmark = {
  name: 'xds-fanout',
  description: 'one-endpoint change pushed to N ADS streams (delta and SotW): time to the last ACK, bytes, CPU, RSS',
  usage: USAGE,
  async run(argv, progress): Promise<BenchResult> {
    const o = parseOptions(argv);
    if (o.pin) {
      if (os.cpus().length < 2) throw new Error('--pin needs at least 2 CPUs');
      pinSelf('1');
    }
    const runs: RunResult[] = [];
    const total = o.protocols.length * o.debounces.length;
    for (const debounceMs of o.debounces) {
      for (const protocol of o.protocols) {
        const label = `[${runs.length + 1}/${total}] ${protocol}, debounce ${debounceMs} ms`;
        runs.push(await runOne(o, protocol, debounceMs, progress, label));
      }
    }
    const notes = [
      `Control plane: bench/server.ts (startControlPlane, as \`trellis control-plane --static-resources\`) in its own process; ${o.streams} simulated ADS streams over ${o.connections} gRPC connections in the benchmark process, on the same machine${o.pin ? ' (control plane pinned to CPU 0, clients to CPU 1)' : ', not pinned: both processes share all cores'}.`,
      `Config: ${o.clusters} EDS clusters with ${o.endpoints} endpoints each, 1 listener, 1 route configuration with ${o.clusters} virtual hosts (bench/fixture.ts). Each round changes the port of one endpoint of one ClusterLoadAssignment.`,
      'Anchors (performance-anchors.md): Istio "endpoint updates to 500 sidecars in under 1 s"; grpc-js raw fan-out of one 10 KiB message to 1,000 streams over 50 connections: 281 ms (p50 192 ms) on this kind of machine.',
    ];
    notes.push(
      `1-minute load average before/after the rounds (2 = both cores busy): ${runs.map((r) => `${r.protocol}/${r.debounceMs} ms ${r.loadAverage.join('/')}`).join('; ')}.`,
    );
    for (const r of runs) for (const e of r.errors) notes.push(`${r.protocol}/${r.debounceMs} ms: ${e}`);
    return {
      name: 'xds-fanout',
      title: `xds-fanout: ${o.streams} ADS streams × ${o.clusters} clusters`,
      params: {
        protocols: o.protocols,
        streams: o.streams,
        clusters: o.clusters,
        connections: o.connections,
        rounds: o.rounds,
        endpoints: o.endpoints,
        debounceAfterMs: o.debounces,
        pinned: o.pin,
      },
      tables: tables(o, runs),
      notes,
      data: runs.map((r) => ({ ...r, rounds: r.rounds.map(({ samples: _samples, ...round }) => round) })),
    };
  },
};
