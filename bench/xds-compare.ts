// `npm run bench -- xds-compare`: Trellis beside a neutral baseline, go-control-plane v0.14.0, in the same run.
//
// Both servers serve the same static-resources file (bench/fixture.ts: 1,000 EDS clusters + 1,000
// ClusterLoadAssignments + a listener and a route configuration) in their own process, and both are loaded by
// the same Go ADS load generator (tools/peers/xds-load), so neither side gets clients in its own runtime:
// the clients eat the same 2 cores whichever server they load. Servers:
//   trellis       `trellis control-plane --static-resources FILE` (bench/server.ts, a real process)
//   gcp-snapshot  go-control-plane's SnapshotCache (one snapshot for every node), tools/peers/go-control-plane
//   gcp-linear    go-control-plane's LinearCache (one per type, behind a MuxCache)
// Each watches the file; a round renames a new version of it over the old one (t0 just before the rename)
// with one ClusterLoadAssignment's first endpoint on a new port, and every stream's time is when it had
// written its ACK of the response carrying that port (wall clock shared by the processes).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from '../control-plane/cli.js';
import { Fixture, ROUTE_NAME } from './fixture.js';
import { goPeer, isEvent, startGcp, startLoad, type GoEvent, type GoProcess } from './go-peers.js';
import {
  fmt,
  fmtInt,
  median,
  mib,
  positiveInt,
  summarize,
  UsageError,
  type Benchmark,
  type BenchResult,
  type Cell,
  type Progress,
  type Summary,
  type Table,
} from './report.js';
import { processCpuMs, processMemory, ServerProcess } from './server-process.js';
import { sleep, stageChange } from './xds-fanout.js';

const SERVERS = ['trellis', 'gcp-snapshot', 'gcp-linear'] as const;
type ServerName = (typeof SERVERS)[number];
type Protocol = 'sotw' | 'delta';

const USAGE = `npm run bench -- xds-compare [--streams 1000,2000,5000] [--protocol delta|sotw|both]
    [--servers trellis,gcp-snapshot,gcp-linear] [--clusters 1000] [--endpoints 3] [--connections 50]
    [--rounds 5] [--debounce-after 0ms] [--timeout 300s]
  needs the Go peers: npm run peers -- gcp xds-load
  --debounce-after  Trellis's --debounce-after (go-control-plane has none; 0ms compares like with like)`;

interface Options {
  streams: number[];
  protocols: Protocol[];
  servers: ServerName[];
  clusters: number;
  endpoints: number;
  connections: number;
  rounds: number;
  debounceMs: number;
  timeoutMs: number;
}

function parseOptions(argv: readonly string[]): Options {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      streams: { type: 'string', default: '1000,2000,5000' },
      protocol: { type: 'string', default: 'both' },
      servers: { type: 'string', default: SERVERS.join(',') },
      clusters: { type: 'string', default: '1000' },
      endpoints: { type: 'string', default: '3' },
      connections: { type: 'string', default: '50' },
      rounds: { type: 'string', default: '5' },
      'debounce-after': { type: 'string', default: '0ms' },
      timeout: { type: 'string', default: '300s' },
    },
    strict: true,
  });
  const protocol = values.protocol;
  if (protocol !== 'delta' && protocol !== 'sotw' && protocol !== 'both')
    throw new UsageError('--protocol must be delta, sotw or both');
  const servers = values.servers.split(',');
  for (const s of servers)
    if (!(SERVERS as readonly string[]).includes(s))
      throw new UsageError(`--servers: unknown server "${s}" (known: ${SERVERS.join(', ')})`);
  return {
    streams: values.streams.split(',').map((s) => positiveInt('streams', s)),
    protocols: protocol === 'both' ? ['delta', 'sotw'] : [protocol],
    servers: servers as ServerName[],
    clusters: positiveInt('clusters', values.clusters),
    endpoints: positiveInt('endpoints', values.endpoints),
    connections: positiveInt('connections', values.connections),
    rounds: positiveInt('rounds', values.rounds),
    debounceMs: parseDuration(values['debounce-after']),
    timeoutMs: parseDuration(values.timeout),
  };
}

interface RoundResult {
  round: number;
  /** ms from the rename until the server had re-read and parsed the file. */
  parsedMs: number;
  complete: boolean;
  acked: number;
  latency: Summary;
  serverCpuMs: number;
  loadGenCpuMs: number;
  bytes: number;
  responses: number;
}

interface RunResult {
  server: ServerName;
  protocol: Protocol;
  streams: number;
  /** All streams opened at once → every stream has its initial config ACKed (the load generator's clock). */
  connectMs: number;
  connectPerStream: Summary;
  connectServerCpuMs: number;
  rssIdle: number;
  rssConnected: number;
  rssPerStream: number;
  hwm: number;
  rounds: RoundResult[];
  /** Every stream's ms from the rename to its ACK, over all rounds. */
  latency: Summary;
  /** The same from the moment the server had read and parsed the new file (its own clock): the xDS part. */
  fromParsed: Summary;
  /** Median over rounds of the round's slowest stream. */
  lastAckMs: number;
  /** Median over rounds of the server's CPU ms from the rename until the round settled. */
  cpuPerRoundMs: number;
  loadAverage: [number, number];
  errors: string[];
}

const nowEpoch = (): number => performance.timeOrigin + performance.now();

/** One server, one protocol, one stream count: start, connect the load, rounds of one change, stop. */
async function runOne(
  o: Options,
  bins: { gcp: string; load: string },
  server: ServerName,
  protocol: Protocol,
  streams: number,
  progress: Progress,
): Promise<RunResult> {
  const label = `${server} ${protocol} ${streams}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-compare-'));
  const file = path.join(dir, 'resources.json');
  const tmp = path.join(dir, 'resources.json.tmp');
  const fixture = new Fixture({ clusters: o.clusters, endpoints: o.endpoints });
  fs.writeFileSync(file, fixture.text());
  progress.phase(`${label}: starting the server`);
  let stopServer: () => Promise<void>;
  /** Epoch ms at which the server had each new version of the file read and parsed, in order. */
  let parsedTimes: () => number[];
  let pid: number;
  let xdsPort: number;
  if (server === 'trellis') {
    const started = await ServerProcess.start({ staticResources: file, debounceMs: o.debounceMs });
    stopServer = () => started.server.stop();
    parsedTimes = () => started.server.events.flatMap((e) => (e.event === 'loaded' ? [e.at] : []));
    pid = started.server.pid;
    xdsPort = started.xdsPort;
  } else {
    const started = await startGcp(bins.gcp, file, server === 'gcp-linear' ? 'linear' : 'snapshot');
    stopServer = () => started.server.stop();
    parsedTimes = () =>
      started.server.events.flatMap((e) => (e.event === 'loaded' && e.parsedAt !== undefined ? [e.parsedAt] : []));
    pid = started.server.pid;
    xdsPort = started.xdsPort;
  }
  let load: GoProcess | undefined;
  const errors: string[] = [];
  try {
    await sleep(500); // let the start's allocations settle before the idle reading
    const rssIdle = processMemory(pid).rss;
    const cpu0 = processCpuMs(pid);
    progress.phase(`${label}: opening ${streams} streams over ${o.connections} connections (xds-load)`);
    load = startLoad(bins.load, {
      target: `127.0.0.1:${xdsPort}`,
      protocol,
      streams,
      connections: o.connections,
      routes: [ROUTE_NAME],
    });
    const converged = await load.waitFor(isEvent('converged'), o.timeoutMs);
    const connectServerCpuMs = processCpuMs(pid) - cpu0;
    progress.phase(`${label}: all ${streams} streams converged in ${fmtInt(converged.allMs)} ms`);
    await sleep(500);
    const rssConnected = processMemory(pid).rss;
    const loadBefore = os.loadavg()[0]!;

    const rounds: RoundResult[] = [];
    const all: number[] = [];
    const allFromParsed: number[] = [];
    for (let r = 1; r <= o.rounds; r++) {
      const change = stageChange(fixture, r, tmp);
      const since = load.events.length;
      load.command(`watch ${r} ${change.target} ${change.port}`);
      const isWatching = (e: GoEvent): e is Extract<GoEvent, { event: 'watching' }> =>
        e.event === 'watching' && e.round === r;
      const isChanged = (e: GoEvent): e is Extract<GoEvent, { event: 'changed' }> =>
        e.event === 'changed' && e.round === r;
      await load.waitFor(isWatching, 10_000, since);
      load.command('counters');
      const before = await load.waitFor(isEvent('counters'), 10_000, since);
      const serverCpu = processCpuMs(pid);
      const loadCpu = processCpuMs(load.pid);
      const t0 = nowEpoch();
      fs.renameSync(tmp, file);
      let changed = await load.waitFor(isChanged, o.timeoutMs, since).catch(() => undefined);
      if (!changed) {
        load.command('cancel');
        changed = await load.waitFor(isChanged, 10_000, since);
      }
      await sleep(300); // late responses of this change belong to this round's CPU and bytes
      const afterSince = load.events.length;
      load.command('counters');
      const after = await load.waitFor(isEvent('counters'), 10_000, afterSince);
      const acked = changed.ackedAt.filter((v): v is number => v !== null);
      const latencies = acked.map((v) => v - t0);
      all.push(...latencies);
      const parsedAt = parsedTimes().find((at) => at >= t0) ?? NaN;
      allFromParsed.push(...acked.map((v) => v - parsedAt));
      const round: RoundResult = {
        round: r,
        parsedMs: parsedAt - t0,
        complete: changed.complete,
        acked: latencies.length,
        latency: summarize(latencies),
        serverCpuMs: processCpuMs(pid) - serverCpu,
        loadGenCpuMs: processCpuMs(load.pid) - loadCpu,
        bytes: after.bytes - before.bytes,
        responses: after.responses - before.responses,
      };
      rounds.push(round);
      progress.phase(
        `${label}: round ${r}/${o.rounds}: ${round.acked}/${streams} ACKed, p50 ${fmt(round.latency.p50)} ms, ` +
          `p99 ${fmt(round.latency.p99)} ms, server CPU ${fmtInt(round.serverCpuMs)} ms`,
      );
      if (!changed.complete)
        errors.push(
          `round ${r}: only ${latencies.length} of ${streams} streams ACKed the change within ${o.timeoutMs} ms`,
        );
    }
    errors.push(...load.errors);
    return {
      server,
      protocol,
      streams,
      connectMs: converged.allMs,
      connectPerStream: summarize(converged.streamMs),
      connectServerCpuMs,
      rssIdle,
      rssConnected,
      rssPerStream: (rssConnected - rssIdle) / streams,
      hwm: processMemory(pid).hwm,
      rounds,
      latency: summarize(all),
      fromParsed: summarize(allFromParsed.filter((v) => Number.isFinite(v))),
      lastAckMs: median(rounds.map((x) => x.latency.max)),
      cpuPerRoundMs: median(rounds.map((x) => x.serverCpuMs)),
      loadAverage: [loadBefore, os.loadavg()[0]!],
      errors,
    };
  } finally {
    await load?.stop();
    await stopServer();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const ratio = (a: number, b: number): string => (Number.isFinite(a / b) && b > 0 ? `${fmt(a / b, 2)}×` : '–');

function tables(o: Options, runs: readonly RunResult[]): Table[] {
  const out: Table[] = [];
  const find = (s: ServerName, p: Protocol, n: number): RunResult | undefined =>
    runs.find((r) => r.server === s && r.protocol === p && r.streams === n);
  const rows: Cell[][] = [];
  for (const p of o.protocols)
    for (const n of o.streams)
      for (const s of o.servers) {
        const r = find(s, p, n);
        if (!r) continue;
        rows.push([
          p,
          fmtInt(n),
          s,
          fmt(r.latency.p50),
          fmt(r.latency.p99),
          fmt(r.fromParsed.p99),
          fmt(median(r.rounds.map((x) => x.parsedMs))),
          fmt(r.lastAckMs),
          fmtInt(r.cpuPerRoundMs),
          fmtInt(r.connectMs),
          fmtInt(r.connectServerCpuMs),
          mib(r.rssIdle),
          mib(r.rssConnected),
          fmt(r.rssPerStream / 1024, 1),
          fmt(r.loadAverage[0], 1),
        ]);
      }
  out.push({
    title: 'One-endpoint change → ACK, connect storm and memory, per server (the same Go load generator)',
    columns: [
      'protocol',
      'streams',
      'server',
      'p50 ms',
      'p99 ms',
      'p99 from parsed ms',
      'file re-read ms',
      'last ACK/round ms',
      'server CPU/round ms',
      'connect storm ms',
      'connect CPU ms',
      'RSS idle MiB',
      'RSS connected MiB',
      'RSS/stream KiB',
      'load avg',
    ],
    rows,
    notes: [
      'p50/p99: every stream over every round, ms from the rename of the file to the stream having written its ACK.',
      '"p99 from parsed": the same from the moment the server had read and parsed the new file (the xDS part alone); "file re-read": median ms from the rename to that moment (fs watch + read + JSON parse: Trellis protobuf-es, go-control-plane protojson).',
      '"last ACK/round" and "server CPU/round": medians over rounds (CPU: utime+stime of the server process from the rename until the round settled, 300 ms after the last ACK).',
      'connect storm: every stream opened at once until all have CDS, EDS, LDS and RDS ACKed. RSS/stream: (RSS connected − RSS idle) / streams.',
      'load avg: 1-minute load average before the rounds (2 cores; other sessions share the machine).',
    ],
  });
  const ratioRows: Cell[][] = [];
  for (const p of o.protocols)
    for (const n of o.streams) {
      const t = find('trellis', p, n);
      const snap = find('gcp-snapshot', p, n);
      const lin = find('gcp-linear', p, n);
      if (!t || (!snap && !lin)) continue;
      ratioRows.push([
        p,
        fmtInt(n),
        snap ? ratio(t.latency.p99, snap.latency.p99) : '–',
        lin ? ratio(t.latency.p99, lin.latency.p99) : '–',
        snap ? ratio(t.fromParsed.p99, snap.fromParsed.p99) : '–',
        lin ? ratio(t.fromParsed.p99, lin.fromParsed.p99) : '–',
        snap ? ratio(t.cpuPerRoundMs, snap.cpuPerRoundMs) : '–',
        lin ? ratio(t.cpuPerRoundMs, lin.cpuPerRoundMs) : '–',
        snap ? ratio(t.connectMs, snap.connectMs) : '–',
        lin ? ratio(t.connectMs, lin.connectMs) : '–',
        snap ? ratio(t.rssPerStream, snap.rssPerStream) : '–',
        lin ? ratio(t.rssPerStream, lin.rssPerStream) : '–',
      ]);
    }
  out.push({
    title: 'Trellis / go-control-plane (below 1.0×: Trellis is faster or smaller)',
    columns: [
      'protocol',
      'streams',
      'p99 / snapshot',
      'p99 / linear',
      'p99 from parsed / snapshot',
      'p99 from parsed / linear',
      'CPU/round / snapshot',
      'CPU/round / linear',
      'connect / snapshot',
      'connect / linear',
      'RSS/stream / snapshot',
      'RSS/stream / linear',
    ],
    rows: ratioRows,
    notes: [
      "Issue 14's goals: p99 and CPU per round ≤ 0.3× go-control-plane; connect storm ≤ 1.0× its LinearCache; RSS per stream ≤ 0.7×.",
    ],
  });
  const roundRows: Cell[][] = [];
  for (const r of runs)
    for (const x of r.rounds)
      roundRows.push([
        r.protocol,
        fmtInt(r.streams),
        r.server,
        x.round,
        `${x.acked}/${r.streams}`,
        fmt(x.latency.p50),
        fmt(x.latency.p99),
        fmt(x.latency.max),
        fmtInt(x.serverCpuMs),
        fmtInt(x.loadGenCpuMs),
        x.responses,
        fmt(x.bytes / 1024, 1),
      ]);
  out.push({
    title: 'Per round',
    columns: [
      'protocol',
      'streams',
      'server',
      'round',
      'ACKed',
      'p50 ms',
      'p99 ms',
      'last ms',
      'server CPU ms',
      'xds-load CPU ms',
      'responses',
      'KiB received',
    ],
    rows: roundRows,
  });
  return out;
}

export const xdsCompare: Benchmark = {
  name: 'xds-compare',
  description:
    'Trellis beside go-control-plane v0.14.0 (SnapshotCache, LinearCache): the same file, the same Go ADS load',
  usage: USAGE,
  async run(argv, progress): Promise<BenchResult> {
    const o = parseOptions(argv);
    const gcp = goPeer('gcp');
    const load = goPeer('xds-load');
    if (!gcp || !load) throw new UsageError('xds-compare needs the Go peers: npm run peers -- gcp xds-load');
    const runs: RunResult[] = [];
    const errors: string[] = [];
    for (const n of o.streams)
      for (const p of o.protocols)
        for (const s of o.servers) {
          try {
            const r = await runOne(o, { gcp, load }, s, p, n, progress);
            runs.push(r);
            errors.push(...r.errors.map((e) => `${s} ${p} ${n}: ${e}`));
          } catch (err) {
            // A server that cannot take the load is a result too: say so and go on with the others.
            const message = err instanceof Error ? err.message.split('\n')[0]! : String(err);
            errors.push(`${s} ${p} ${n}: ${message}`);
            progress.phase(`${s} ${p} ${n}: failed: ${message}`);
          }
        }
    return {
      name: 'xds-compare',
      title: `xDS: Trellis vs go-control-plane v0.14.0, ${o.clusters} clusters + ${o.clusters} ClusterLoadAssignments, ${o.streams.join('/')} streams (Go load generator)`,
      params: { ...o },
      tables: tables(o, runs),
      notes: [
        `Trellis runs with --debounce-after ${o.debounceMs}ms (go-control-plane has no debounce); both re-read and parse the whole file on a change.`,
        'The load generator (tools/peers/xds-load) and the server share the machine; its CPU per round is in "Per round".',
        ...(errors.length ? ['Errors:', ...errors.slice(0, 30)] : []),
      ],
      data: runs,
    };
  },
};
