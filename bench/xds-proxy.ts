// `npm run bench -- xds-proxy`: what the agent's local xDS proxy (sidecar/xds-proxy.ts) costs.
//
// The same one-endpoint change as xds-fanout (bench/fixture.ts, bench/ads-sim.ts, and the round helpers of
// bench/xds-fanout.ts), pushed to N delta (or SotW) ADS streams, each its own node and its own pod, over
// three paths, each run with a fresh control plane:
//   direct     every stream on its own HTTP/2 connection to the control plane's plaintext port;
//   plaintext  every stream through its own XdsProxy (one per simulated pod, Unix socket downstream), each
//              proxy with its own upstream connection to the plaintext port;
//   mtls       the same over mutual TLS to the control plane's TLS port, each proxy presenting the SVID of
//              its pod (spiffe://cluster.local/ns/ns-K/sa/default), wired as sidecar/agent.ts wires it.
// The control plane is the real CLI, `trellis control-plane --static-resources F --plugin-ca-dir D
// --tokens-file T` (as bench/ca.ts runs it), in its own process and with the CA (so with the TLS port) on
// for all three paths. The CA is a certs/ root made here and handed to the control plane as a plug-in CA
// directory; this process signs the pods' certificates with the same root.
//
// The proxies of a run all live in one more process (this file run with `--proxy-host CONFIG`), so their
// CPU (process.cpuUsage), memory (RSS, and live heap after a forced GC) and socket bytes (/proc/self/io
// rchar/wchar) are their own. Each proxy gets `grpc.use_local_subchannel_pool`: in one process grpc-js
// would otherwise share one connection among all proxies with the same target and credentials, where
// separate agent processes have one each.
import * as grpc from '@grpc/grpc-js';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  CertificateAuthority,
  DEFAULT_TRUST_DOMAIN,
  MemoryCertificateProvider,
  createCsr,
  createRootCa,
  generateWorkloadKey,
  loadRootCa,
  spiffeId,
  type TlsMaterial,
} from '../certs/index.js';
import { controlPlaneSpiffeId } from '../control-plane/ca/serving-identity.js';
import { parseDuration } from '../control-plane/cli.js';
import { shortTypeName } from '../control-plane/envoy/protos.js';
import { DEFAULT_CONTROL_PLANE_SERVER_NAME } from '../sidecar/ca-client.js';
import { XdsProxy } from '../sidecar/xds-proxy.js';
import { Fleet, type FleetOptions, type Protocol } from './ads-sim.js';
import { Fixture, ROUTE_NAME } from './fixture.js';
import {
  fmt,
  fmtBytes,
  fmtInt,
  median,
  mib,
  repoRoot,
  summarize,
  positiveInt,
  UsageError,
  type Benchmark,
  type BenchResult,
  type Progress,
  type Summary,
  type Table,
} from './report.js';
import { metricSums, processCpuMs, processMemory } from './server-process.js';
import { awaitChange, convergeFleet, cpuMsOf, publishChange, sleep, stageChange } from './xds-fanout.js';

const USAGE = `npm run bench -- xds-proxy [--streams 100,500] [--clusters 1000] [--paths direct,plaintext,mtls]
    [--protocol delta|sotw] [--rounds 10] [--endpoints 3] [--debounce-after 0ms] [--timeout 120s]
  --streams   a comma list: each size runs every path (one stream, one node, one proxy per simulated pod)
  --paths     direct (no proxy), plaintext (proxy, plaintext upstream), mtls (proxy, mutual TLS upstream)`;

const PATHS = ['direct', 'plaintext', 'mtls'] as const;
type PathKind = (typeof PATHS)[number];

interface Options {
  streams: number[];
  clusters: number;
  paths: PathKind[];
  protocol: Protocol;
  rounds: number;
  endpoints: number;
  debounceMs: number;
  timeoutMs: number;
}

function parseOptions(argv: readonly string[]): Options {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      streams: { type: 'string', default: '100,500' },
      clusters: { type: 'string', default: '1000' },
      paths: { type: 'string', default: PATHS.join(',') },
      protocol: { type: 'string', default: 'delta' },
      rounds: { type: 'string', default: '10' },
      endpoints: { type: 'string', default: '3' },
      'debounce-after': { type: 'string', default: '0ms' },
      timeout: { type: 'string', default: '120s' },
    },
    strict: true,
  });
  const paths = values.paths.split(',');
  for (const p of paths)
    if (!(PATHS as readonly string[]).includes(p)) throw new UsageError(`--paths: ${PATHS.join(', ')}, not "${p}"`);
  if (values.protocol !== 'delta' && values.protocol !== 'sotw')
    throw new UsageError('--protocol must be delta or sotw');
  return {
    streams: values.streams.split(',').map((s) => positiveInt('streams', s)),
    clusters: positiveInt('clusters', values.clusters),
    paths: paths as PathKind[],
    protocol: values.protocol,
    rounds: positiveInt('rounds', values.rounds),
    endpoints: positiveInt('endpoints', values.endpoints),
    debounceMs: parseDuration(values['debounce-after']),
    timeoutMs: parseDuration(values.timeout),
  };
}

// ---------------------------------------------------------------------------------------------------
// The CA: a certs/ root, given to the control plane as a plug-in CA directory; pod SVIDs signed here.

interface BenchCa {
  readonly pluginDir: string;
  readonly tokensFile: string;
  /** The TLS material of pod i (node bench-i.ns-(i % 10), service account default). */
  readonly pods: TlsMaterial[];
  readonly signMs: number;
}

async function makeCa(dir: string, pods: number): Promise<BenchCa> {
  const root = await createRootCa();
  const authority = CertificateAuthority.create(await loadRootCa(root.certPem, root.keyPem), DEFAULT_TRUST_DOMAIN);
  // As bench/ca.ts: a plug-in CA directory whose signing certificate is the root itself.
  const pluginDir = path.join(dir, 'plugin-ca');
  fs.mkdirSync(pluginDir);
  for (const f of ['ca-cert.pem', 'root-cert.pem']) fs.writeFileSync(path.join(pluginDir, f), root.certPem);
  fs.writeFileSync(path.join(pluginDir, 'ca-key.pem'), root.keyPem, { mode: 0o600 });
  // The CA service needs an authenticator; nothing here asks it for a certificate.
  const tokensFile = path.join(dir, 'tokens.json');
  fs.writeFileSync(
    tokensFile,
    JSON.stringify([{ token: 'bench-unused-token-0123456789', namespace: 'bench', serviceAccount: 'unused' }]),
  );
  const t = performance.now();
  const material = await Promise.all(
    Array.from({ length: pods }, async (_, i): Promise<TlsMaterial> => {
      // The namespace and service account ads-sim's node metadata claims (the TLS port binds them).
      const identity = { trustDomain: DEFAULT_TRUST_DOMAIN, namespace: `ns-${i % 10}`, serviceAccount: 'default' };
      const key = await generateWorkloadKey();
      const issued = await authority.sign({ csr: await createCsr(key, spiffeId(identity)), identity });
      return {
        certChainPem: issued.chain.join(''),
        privateKeyPem: key.privateKeyPem,
        trustBundlePem: authority.trustBundle(),
      };
    }),
  );
  return { pluginDir, tokensFile, pods: material, signMs: performance.now() - t };
}

// ---------------------------------------------------------------------------------------------------
// The control plane: `trellis control-plane` in its own process; its JSON log is read here.

class ControlPlaneProcess {
  /** Epoch ms (pino `time`) of every `static resources loaded` line: the snapshot changes. */
  readonly loaded: number[] = [];
  readonly warnings: string[] = [];
  private stderr = '';
  private readonly exited: Promise<void>;

  private constructor(readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.on('exit', () => resolve()));
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-32 * 1024);
    });
  }

  static async start(
    args: readonly string[],
  ): Promise<{ cp: ControlPlaneProcess; xdsPort: number; securePort: number; monitoringPort: number }> {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'control-plane/main.ts',
        'control-plane',
        '--xds-port',
        '0',
        '--monitoring-port',
        '0',
        ...args,
      ],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const cp = new ControlPlaneProcess(child);
    const ports = await new Promise<{ xdsPort: number; securePort: number; monitoringPort: number }>(
      (resolve, reject) => {
        readline.createInterface({ input: child.stdout! }).on('line', (line) => {
          let entry: { level?: number; time?: number; msg?: string; [k: string]: unknown };
          try {
            entry = JSON.parse(line) as typeof entry;
          } catch {
            return;
          }
          if (entry.msg === 'static resources loaded') cp.loaded.push(entry.time ?? NaN);
          else if (entry.msg === 'control plane listening')
            resolve({
              xdsPort: entry.xdsPort as number,
              securePort: entry.secureXdsPort as number,
              monitoringPort: entry.monitoringPort as number,
            });
          else if ((entry.level ?? 0) >= 40 && cp.warnings.length < 20) cp.warnings.push(`${entry.msg}: ${line}`);
        });
        void cp.exited.then(() => reject(new Error(`the control plane exited before listening:\n${cp.stderr}`)));
      },
    );
    return { cp, ...ports };
  }

  cpuMs(): number {
    return processCpuMs(this.child.pid!);
  }

  memory(): { rss: number; hwm: number } {
    return processMemory(this.child.pid!);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------------
// The proxies of a run, in a process of their own (`node --expose-gc --import tsx bench/xds-proxy.ts
// --proxy-host CONFIG`). It answers `usage TAG` and `gc TAG` on stdin with a JSON line on stdout.

interface ProxyHostConfig {
  readonly upstream: string;
  /** The control plane's SPIFFE ID, for TLS. */
  readonly serverId?: string;
  readonly pods: readonly { readonly socketPath: string; readonly tls?: TlsMaterial }[];
}

interface HostUsage {
  readonly tag: string;
  /** process.cpuUsage(), user + system, ms. */
  readonly cpuMs: number;
  readonly rss: number;
  /** After a forced full GC for `gc TAG`, as is otherwise. */
  readonly heapUsed: number;
  /** process.memoryUsage().external: Buffers and native memory V8 knows of (it includes arrayBuffers). */
  readonly external: number;
  /** /proc/self/io: bytes read and written by syscalls (the sockets on both sides, HTTP/2 and TLS included). */
  readonly rchar: number;
  readonly wchar: number;
  /** Sums of XdsProxy.status() over all proxies. */
  readonly requests: number;
  readonly responses: number;
  readonly openStreams: number;
  /** Fewest and most open streams of one proxy (1 and 1: every pod's stream through its own proxy). */
  readonly streamsPerProxy: [number, number];
  /** ms from the first proxy constructed to every upstream READY (the `ready` report only). */
  readonly startMs?: number;
}

function procIo(): { rchar: number; wchar: number } {
  const text = fs.readFileSync('/proc/self/io', 'utf8');
  const get = (k: string): number => Number(new RegExp(`^${k}: (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return { rchar: get('rchar'), wchar: get('wchar') };
}

async function proxyHostMain(configFile: string): Promise<void> {
  const config = JSON.parse(fs.readFileSync(configFile, 'utf8')) as ProxyHostConfig;
  const proxies: XdsProxy[] = [];
  const emit = (e: HostUsage): void => void process.stdout.write(JSON.stringify(e) + '\n');
  const collect = async (): Promise<void> => {
    // Twice, with a pause: V8 frees the backing stores of dead ArrayBuffers (Buffers) concurrently, after the GC.
    for (let i = 0; i < 2; i++) {
      (globalThis as { gc?: () => void }).gc?.();
      await sleep(100);
    }
  };
  const usage = (tag: string, extra: Partial<HostUsage> = {}): HostUsage => {
    const m = process.memoryUsage();
    const statuses = proxies.map((p) => p.status());
    const open = statuses.map((s) => s.openStreams);
    return {
      tag,
      cpuMs: cpuMsOf(process.cpuUsage()),
      rss: m.rss,
      heapUsed: m.heapUsed,
      external: m.external,
      ...procIo(),
      requests: statuses.reduce((a, s) => a + s.requestsRelayed, 0),
      responses: statuses.reduce((a, s) => a + s.responsesRelayed, 0),
      openStreams: open.reduce((a, n) => a + n, 0),
      streamsPerProxy: [Math.min(...open, Infinity), Math.max(...open, -Infinity)],
      ...extra,
    };
  };
  await collect();
  emit(usage('baseline'));
  const t = performance.now();
  for (const pod of config.pods) {
    const tls = pod.tls;
    proxies.push(
      new XdsProxy({
        listen: { socketPath: pod.socketPath },
        upstream: {
          target: config.upstream,
          // As sidecar/agent.ts: the pod's SVID from a MemoryCertificateProvider, the server checked by its SPIFFE ID.
          credentials: tls
            ? new MemoryCertificateProvider(tls).channelCredentials(config.serverId!)
            : grpc.credentials.createInsecure(),
          channelOptions: {
            ...(tls ? { 'grpc.ssl_target_name_override': DEFAULT_CONTROL_PLANE_SERVER_NAME } : {}),
            'grpc.use_local_subchannel_pool': 1, // one connection per proxy, as one agent process per pod has
          },
        },
      }),
    );
  }
  await Promise.all(proxies.map((p) => p.start()));
  await Promise.all(proxies.map((p) => p.whenReady(60_000)));
  const startMs = performance.now() - t;
  await collect();
  emit(usage('ready', { startMs }));
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    const [command, tag = ''] = line.trim().split(/\s+/, 2);
    if (command === 'usage') emit(usage(tag));
    else if (command === 'gc') void collect().then(() => emit(usage(tag)));
  });
  const close = (): void => {
    const force = setTimeout(() => process.exit(0), 5_000);
    Promise.all(proxies.map((p) => p.close())).then(
      () => {
        clearTimeout(force);
        process.exit(0);
      },
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', close);
  process.stdin.once('end', close); // the benchmark went away
}

class ProxyHost {
  private readonly waiters = new Map<string, (u: HostUsage) => void>();
  private readonly exited: Promise<void>;
  private stderr = '';
  private seq = 0;

  private constructor(readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.on('exit', () => resolve()));
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-32 * 1024);
    });
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      let u: HostUsage;
      try {
        u = JSON.parse(line) as HostUsage;
      } catch {
        process.stderr.write(`proxy host: ${line}\n`);
        return;
      }
      this.waiters.get(u.tag)?.(u);
      this.waiters.delete(u.tag);
    });
  }

  /** Starts the host; resolves once every proxy's upstream is READY, with its usage before and after. */
  static async start(configFile: string): Promise<{ host: ProxyHost; baseline: HostUsage; ready: HostUsage }> {
    const child = spawn(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', path.join('bench', 'xds-proxy.ts'), '--proxy-host', configFile],
      { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const host = new ProxyHost(child);
    const died = host.exited.then(() => {
      throw new Error(`the proxy host exited before its proxies were ready:\n${host.stderr}`);
    });
    const [baseline, ready] = await Promise.race([
      Promise.all([host.expect('baseline', 60_000), host.expect('ready', 120_000)]),
      died,
    ]);
    return { host, baseline, ready };
  }

  private expect(tag: string, timeoutMs: number): Promise<HostUsage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`proxy host: no "${tag}" within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.set(tag, (u) => {
        clearTimeout(timer);
        resolve(u);
      });
    });
  }

  /** The host's usage now; with `gc`, after a forced full GC (outside timed windows only). */
  usage(gc = false): Promise<HostUsage> {
    const tag = `u${++this.seq}`;
    const answer = this.expect(tag, 30_000);
    this.child.stdin!.write(`${gc ? 'gc' : 'usage'} ${tag}\n`);
    return answer;
  }

  pid(): number {
    return this.child.pid!;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------------
// One run: a path × a number of streams

/**
 * Fleet options whose `target` is a different address for each connection Fleet.start() opens, in
 * order: ads-sim's Fleet dials one target, this benchmark one Unix socket per pod. runOne checks that
 * it worked (every proxy relays exactly one stream).
 */
function perConnectionTargets(base: Omit<FleetOptions, 'target'>, targets: readonly string[]): FleetOptions {
  let next = 0;
  return Object.defineProperty({ ...base }, 'target', {
    enumerable: true,
    get: () => targets[next++ % targets.length]!,
  }) as FleetOptions;
}

interface Delta {
  cpuMs: number;
  rchar: number;
  wchar: number;
  requests: number;
  responses: number;
}

function hostDelta(a: HostUsage, b: HostUsage): Delta {
  return {
    cpuMs: b.cpuMs - a.cpuMs,
    rchar: b.rchar - a.rchar,
    wchar: b.wchar - a.wchar,
    requests: b.requests - a.requests,
    responses: b.responses - a.responses,
  };
}

interface RoundResult {
  round: number;
  target: string;
  complete: boolean;
  acked: number;
  latency: Summary;
  /** Per stream, ms from t0 (the rename) to its ACK of the change. */
  samples: number[];
  /** t0 → the control plane logged `static resources loaded` (its snapshot changed). */
  loadedMs: number;
  /** trellis_xds_push_cycle_duration_seconds of the round's push cycle(s), ms. */
  pushCycleMs: number;
  bytes: number;
  responses: number;
  responsesByType: Record<string, number>;
  cpCpuMs: number;
  clientCpuMs: number;
  proxy?: Delta;
}

interface RunResult {
  path: PathKind;
  streams: number;
  connect: {
    allMs: number;
    perStream: Summary;
    bytes: number;
    cpCpuMs: number;
    clientCpuMs: number;
    proxy?: Delta;
  };
  rounds: RoundResult[];
  /** From the rename, all rounds. */
  latency: Summary;
  /** From the snapshot change (control plane's log line) to the ACK, all rounds. */
  fromSnapshot: Summary;
  cp: { rssIdle: number; rssConnected: number; rssAfterRounds: number; hwm: number; metrics: Record<string, number> };
  proxy?: {
    startMs: number;
    baseline: HostUsage;
    ready: HostUsage;
    /** After a forced GC, streams converged. */
    connected: HostUsage;
    afterRounds: HostUsage;
    /** CPU ms per second of the proxies with every stream open and nothing to relay. */
    idleCpuMsPerSecond: number;
    hwm: number;
  };
  loadAverage: [number, number];
  errors: string[];
}

const METRICS = [
  'trellis_xds_push_cycle_duration_seconds_sum',
  'trellis_xds_push_cycle_duration_seconds_count',
  'trellis_xds_response_bytes_total',
  'trellis_xds_nacks_total',
  'trellis_xds_authn_refusals_total',
  'trellis_xds_connected_proxies',
];

async function runOne(
  o: Options,
  ca: BenchCa,
  kind: PathKind,
  streams: number,
  progress: Progress,
  label: string,
): Promise<RunResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-bench-proxy-'));
  const file = path.join(dir, 'resources.json');
  const tmp = path.join(dir, 'resources.json.tmp');
  const fixture = new Fixture({ clusters: o.clusters, endpoints: o.endpoints });
  fs.writeFileSync(file, fixture.text());
  progress.phase(`${label}: starting trellis control-plane (${fmtBytes(fs.statSync(file).size)} static file, CA on)`);
  const { cp, xdsPort, securePort, monitoringPort } = await ControlPlaneProcess.start([
    '--static-resources',
    file,
    '--plugin-ca-dir',
    ca.pluginDir,
    '--tokens-file',
    ca.tokensFile,
    '--debounce-after',
    `${o.debounceMs}ms`,
  ]);
  const metrics = async (): Promise<Record<string, number>> =>
    metricSums(await (await fetch(`http://127.0.0.1:${monitoringPort}/metrics`)).text(), METRICS);
  const errors: string[] = [];
  let host: ProxyHost | undefined;
  let fleet: Fleet | undefined;
  try {
    await sleep(500);
    const rssIdle = cp.memory().rss;

    let proxyStart: { baseline: HostUsage; ready: HostUsage } | undefined;
    let targets = [`127.0.0.1:${xdsPort}`];
    if (kind !== 'direct') {
      const sockets = Array.from({ length: streams }, (_, i) => path.join(dir, `pod-${i}.sock`));
      const config: ProxyHostConfig = {
        upstream: `127.0.0.1:${kind === 'mtls' ? securePort : xdsPort}`,
        serverId: controlPlaneSpiffeId(DEFAULT_TRUST_DOMAIN),
        pods: sockets.map((socketPath, i) => ({ socketPath, ...(kind === 'mtls' ? { tls: ca.pods[i]! } : {}) })),
      };
      const configFile = path.join(dir, 'proxy-host.json');
      fs.writeFileSync(configFile, JSON.stringify(config));
      progress.phase(`${label}: starting ${streams} xDS proxies (${kind} upstream) in their own process`);
      const started = await ProxyHost.start(configFile);
      host = started.host;
      proxyStart = started;
      targets = sockets.map((s) => `unix://${s}`);
      progress.phase(
        `${label}: ${streams} proxies up in ${fmtInt(started.ready.startMs ?? NaN)} ms, every upstream READY`,
      );
    }

    // One connection per pod on every path: the direct streams too, as every Envoy has its own.
    fleet = new Fleet(
      perConnectionTargets(
        {
          protocol: o.protocol,
          streams,
          connections: streams,
          clusterNames: fixture.clusterNames,
          routeNames: [ROUTE_NAME],
        },
        targets,
      ),
    );
    progress.phase(`${label}: opening ${streams} streams`);
    const cpCpu0 = cp.cpuMs();
    const clientCpu0 = process.cpuUsage();
    const host0 = await host?.usage();
    const { tStart, allMs } = await convergeFleet(fleet, o.timeoutMs, progress, label);
    const host1 = await host?.usage();
    const connect: RunResult['connect'] = {
      allMs,
      perStream: summarize(fleet.streams.map((s) => s.convergedAt - tStart)),
      bytes: fleet.bytes,
      cpCpuMs: cp.cpuMs() - cpCpu0,
      clientCpuMs: cpuMsOf(process.cpuUsage(clientCpu0)),
      ...(host0 && host1 ? { proxy: hostDelta(host0, host1) } : {}),
    };
    progress.phase(
      `${label}: all ${streams} streams converged in ${fmtInt(allMs)} ms (${mib(connect.bytes)} MiB received)`,
    );
    await sleep(1_000);
    const hostConnected = await host?.usage(true);
    if (hostConnected && (hostConnected.streamsPerProxy[0] !== 1 || hostConnected.streamsPerProxy[1] !== 1))
      throw new Error(
        `expected one stream per proxy, found ${hostConnected.streamsPerProxy.join('–')} (Fleet's targets)`,
      );
    const rssConnected = cp.memory().rss;

    // Rounds: round 0 is a warm-up (the first push after the connect storm), not counted.
    const loadBefore = os.loadavg()[0]!;
    const rounds: RoundResult[] = [];
    const settleMs = o.debounceMs + 600;
    for (let r = 0; r <= o.rounds; r++) {
      const change = stageChange(fixture, r, tmp);
      const m0 = await metrics();
      const u0 = await host?.usage();
      const loadedBefore = cp.loaded.length;
      const cpCpu = cp.cpuMs();
      const clientCpu = process.cpuUsage();
      const bytes = fleet.bytes;
      const responses = fleet.responses;
      const byType = fleet.responsesByType();
      const published = publishChange(fleet, change, tmp, file, o.timeoutMs);
      const roundLabel = r === 0 ? `${label}: warm-up round` : `${label}: round ${r}/${o.rounds}`;
      const { complete, latencies } = await awaitChange(fleet, published, settleMs, progress, roundLabel);
      const cpCpuMs = cp.cpuMs() - cpCpu;
      const clientCpuMs = cpuMsOf(process.cpuUsage(clientCpu));
      const u1 = await host?.usage();
      const m1 = await metrics();
      const loadedAt = cp.loaded[loadedBefore];
      const byTypeAfter = fleet.responsesByType();
      const roundByType: Record<string, number> = {};
      for (const [t, n] of byTypeAfter)
        if (n - (byType.get(t) ?? 0) > 0) roundByType[shortTypeName(t)] = n - (byType.get(t) ?? 0);
      const cycles =
        m1.trellis_xds_push_cycle_duration_seconds_count! - m0.trellis_xds_push_cycle_duration_seconds_count!;
      const round: RoundResult = {
        round: r,
        target: change.target,
        complete,
        acked: latencies.length,
        latency: summarize(latencies),
        samples: latencies.map((v) => Math.round(v * 100) / 100),
        loadedMs: loadedAt === undefined ? NaN : loadedAt - (performance.timeOrigin + published.t0),
        pushCycleMs:
          cycles > 0
            ? (1000 *
                (m1.trellis_xds_push_cycle_duration_seconds_sum! - m0.trellis_xds_push_cycle_duration_seconds_sum!)) /
              cycles
            : NaN,
        bytes: fleet.bytes - bytes,
        responses: fleet.responses - responses,
        responsesByType: roundByType,
        cpCpuMs,
        clientCpuMs,
        ...(u0 && u1 ? { proxy: hostDelta(u0, u1) } : {}),
      };
      progress.phase(
        `${roundLabel}: ${round.acked}/${streams} ACKed, p50 ${fmt(round.latency.p50)} ms, p99 ${fmt(round.latency.p99)} ms (snapshot at ${fmt(round.loadedMs)} ms)`,
      );
      if (r === 0) continue;
      rounds.push(round);
      if (!complete)
        errors.push(`round ${r}: only ${round.acked} of ${streams} streams ACKed the change within ${o.timeoutMs} ms`);
    }

    const afterRounds = await host?.usage(true);
    // The proxies' CPU with nothing to relay (timers, keepalives): what a round's CPU contains besides the push.
    let idleCpuMsPerSecond = NaN;
    if (host) {
      const i0 = await host.usage();
      const t = performance.now();
      await sleep(2_000);
      const i1 = await host.usage();
      idleCpuMsPerSecond = ((i1.cpuMs - i0.cpuMs) * 1000) / (performance.now() - t);
    }
    const cpMem = cp.memory();
    errors.push(...fleet.errors, ...cp.warnings);
    return {
      path: kind,
      streams,
      connect,
      rounds,
      latency: summarize(rounds.flatMap((r) => r.samples)),
      fromSnapshot: summarize(rounds.flatMap((r) => r.samples.map((v) => v - r.loadedMs))),
      cp: { rssIdle, rssConnected, rssAfterRounds: cpMem.rss, hwm: cpMem.hwm, metrics: await metrics() },
      ...(proxyStart && hostConnected && afterRounds && host
        ? {
            proxy: {
              startMs: proxyStart.ready.startMs ?? NaN,
              baseline: proxyStart.baseline,
              ready: proxyStart.ready,
              connected: hostConnected,
              afterRounds,
              idleCpuMsPerSecond,
              hwm: processMemory(host.pid()).hwm,
            },
          }
        : {}),
      loadAverage: [Math.round(loadBefore * 100) / 100, Math.round(os.loadavg()[0]! * 100) / 100],
      errors,
    };
  } finally {
    fleet?.close();
    await host?.stop();
    await cp.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------
// Report

const kib = (bytes: number): string => fmt(bytes / 1024);

function tables(o: Options, runs: readonly RunResult[]): Table[] {
  const direct = (r: RunResult): RunResult | undefined =>
    runs.find((d) => d.path === 'direct' && d.streams === r.streams);
  const plus = (value: number, base: number | undefined): string =>
    base === undefined || Number.isNaN(base) ? '–' : `${value - base >= 0 ? '+' : ''}${fmt(value - base)}`;
  const proxied = runs.filter((r) => r.proxy);
  const out: Table[] = [];
  out.push({
    title: `Push latency, snapshot change → ACK: one-endpoint change, ${o.protocol} streams × ${o.clusters} clusters, ${o.rounds} rounds (ms)`,
    columns: [
      'streams',
      'path',
      'samples',
      'p50',
      'p90',
      'p99',
      'max',
      'p50 vs direct',
      'p99 vs direct',
      'last ACK/round (median)',
      'from rename p50 / p99',
    ],
    rows: runs.map((r) => [
      r.streams,
      r.path,
      fmtInt(r.fromSnapshot.count),
      fmt(r.fromSnapshot.p50),
      fmt(r.fromSnapshot.p90),
      fmt(r.fromSnapshot.p99),
      fmt(r.fromSnapshot.max),
      r.path === 'direct' ? '' : plus(r.fromSnapshot.p50, direct(r)?.fromSnapshot.p50),
      r.path === 'direct' ? '' : plus(r.fromSnapshot.p99, direct(r)?.fromSnapshot.p99),
      fmt(median(r.rounds.map((x) => x.latency.max - x.loadedMs))),
      `${fmt(r.latency.p50)} / ${fmt(r.latency.p99)}`,
    ]),
    notes: [
      'snapshot change: the control plane logged `static resources loaded` (pino time, 1 ms resolution); a stream counts when it has received and ACKed (written the ACK of) the response carrying the new port.',
      'samples = streams × rounds; a warm-up round after the connect is not counted. direct: every stream on its own connection to the plaintext port; plaintext/mtls: every stream through its own XdsProxy (Unix socket), every proxy on its own upstream connection.',
    ],
  });
  if (proxied.length > 0) {
    out.push({
      title: "The proxies' cost (all proxies of a run in one process; per stream = one proxy = one pod)",
      columns: [
        'streams',
        'path',
        'start ms (all upstreams READY)',
        'RSS baseline MiB',
        'RSS per proxy idle KiB',
        'RSS per stream KiB',
        'heap per proxy idle KiB',
        'heap per stream KiB',
        'external per stream KiB',
        'CPU connect per stream ms',
        'CPU per round ms',
        'CPU per stream per round µs',
        'idle CPU ms/s',
        'peak RSS MiB',
      ],
      rows: proxied.map((r) => {
        const p = r.proxy!;
        const n = r.streams;
        const roundCpu = median(r.rounds.map((x) => x.proxy?.cpuMs ?? NaN));
        return [
          n,
          r.path,
          fmtInt(p.startMs),
          mib(p.baseline.rss),
          kib((p.ready.rss - p.baseline.rss) / n),
          kib((p.connected.rss - p.ready.rss) / n),
          kib((p.ready.heapUsed - p.baseline.heapUsed) / n),
          kib((p.connected.heapUsed - p.ready.heapUsed) / n),
          kib((p.connected.external - p.ready.external) / n),
          fmt((r.connect.proxy?.cpuMs ?? NaN) / n, 2),
          fmt(roundCpu),
          fmt((1000 * roundCpu) / n),
          fmt(p.idleCpuMsPerSecond),
          mib(p.hwm),
        ];
      }),
      notes: [
        'RSS: process.memoryUsage().rss of the proxy process; baseline = Node + tsx + the modules loaded, no proxy; per proxy idle = (every proxy listening and its upstream READY − baseline) / N; per stream = (streams converged − idle) / N. Taken after a forced full GC.',
        'heap: V8 heap used after a forced full GC, the same differences; external: memoryUsage().external (which includes arrayBuffers), the same differences. peak RSS: VmHWM of the proxy process (the connect storm).',
        'CPU: process.cpuUsage() (user + system) of the proxy process; per round = median over rounds, from just before the rename until the round settled (relaying one EDS response and its ACK per stream, plus the idle CPU of that window); idle: 2 s with every stream open and nothing to relay.',
        'One agent process per pod would also pay the baseline (and its own certificate manager, SDS server…) per pod; only the proxy part is measured here.',
      ],
    });
    out.push({
      title: 'Bytes and messages relayed by the proxies',
      columns: [
        'streams',
        'path',
        'connect: messages per stream',
        'socket bytes read / written per stream',
        'xDS bytes received per stream',
        'round: messages',
        'socket bytes read / written',
        'xDS bytes received',
      ],
      rows: proxied.map((r) => {
        const n = r.streams;
        const c = r.connect.proxy!;
        const med = (f: (d: Delta) => number): number => median(r.rounds.map((x) => (x.proxy ? f(x.proxy) : NaN)));
        return [
          n,
          r.path,
          `${fmt(c.requests / n)} up, ${fmt(c.responses / n)} down`,
          `${fmtBytes(c.rchar / n)} / ${fmtBytes(c.wchar / n)}`,
          fmtBytes(r.connect.bytes / n),
          `${fmtInt(med((d) => d.requests))} up, ${fmtInt(med((d) => d.responses))} down`,
          `${fmtBytes(med((d) => d.rchar))} / ${fmtBytes(med((d) => d.wchar))}`,
          fmtBytes(median(r.rounds.map((x) => x.bytes))),
        ];
      }),
      notes: [
        'socket bytes: /proc/PID/io rchar/wchar of the proxy process, i.e. bytes through read()/write() on both sides (Unix socket and TCP), with HTTP/2 framing, and TLS records for mtls. Each relayed byte is read once and written once.',
        'xDS bytes received: the gRPC messages the clients got (byte-identical to what the control plane sent: the proxy relays raw bytes). messages: XdsProxy.status() requestsRelayed (up) / responsesRelayed (down).',
      ],
    });
  }
  out.push({
    title: 'Connect and converge (every stream has every type ACKed; all opened at once)',
    columns: [
      'streams',
      'path',
      'all converged ms',
      'p50 ms',
      'p99 ms',
      'xDS bytes',
      'control-plane CPU ms',
      'proxy CPU ms',
      'client CPU ms',
      'control-plane RSS idle → connected MiB',
    ],
    rows: runs.map((r) => [
      r.streams,
      r.path,
      fmtInt(r.connect.allMs),
      fmtInt(r.connect.perStream.p50),
      fmtInt(r.connect.perStream.p99),
      fmtBytes(r.connect.bytes),
      fmtInt(r.connect.cpCpuMs),
      r.connect.proxy ? fmtInt(r.connect.proxy.cpuMs) : '–',
      fmtInt(r.connect.clientCpuMs),
      `${mib(r.cp.rssIdle)} → ${mib(r.cp.rssConnected)}`,
    ]),
  });
  out.push({
    title: 'Cost per round (median over rounds)',
    columns: [
      'streams',
      'path',
      'push cycle ms',
      'control-plane CPU ms',
      'proxy CPU ms',
      'client CPU ms',
      'responses',
      'xDS bytes',
    ],
    rows: runs.map((r) => [
      r.streams,
      r.path,
      fmt(median(r.rounds.map((x) => x.pushCycleMs))),
      fmtInt(median(r.rounds.map((x) => x.cpCpuMs))),
      r.proxy ? fmtInt(median(r.rounds.map((x) => x.proxy?.cpuMs ?? NaN))) : '–',
      fmtInt(median(r.rounds.map((x) => x.clientCpuMs))),
      fmtInt(median(r.rounds.map((x) => x.responses))),
      fmtBytes(median(r.rounds.map((x) => x.bytes))),
    ]),
    notes: [
      'push cycle: trellis_xds_push_cycle_duration_seconds (generate + encode + write to every stream); control-plane CPU: /proc/PID/stat (10 ms ticks); client CPU: this process (all simulated Envoys).',
    ],
  });
  out.push({
    title: 'Per round',
    columns: [
      'streams',
      'path',
      'round',
      'ACKed',
      'snapshot at',
      'p50',
      'p99',
      'max',
      'push cycle',
      'responses by type',
    ],
    rows: runs.flatMap((r) =>
      r.rounds.map((x) => [
        r.streams,
        r.path,
        x.round,
        `${x.acked}/${r.streams}`,
        fmt(x.loadedMs),
        fmt(x.latency.p50 - x.loadedMs),
        fmt(x.latency.p99 - x.loadedMs),
        fmt(x.latency.max - x.loadedMs),
        fmt(x.pushCycleMs),
        Object.entries(x.responsesByType)
          .map(([t, n]) => `${t} ${n}`)
          .join(', ') || '–',
      ]),
    ),
    notes: ['snapshot at: ms from the rename to the control plane having re-read the file; p50/p99/max from there.'],
  });
  return out;
}

export const xdsProxy: Benchmark = {
  name: 'xds-proxy',
  description:
    "the agent's xDS proxy: push latency direct vs through one proxy per pod (plaintext, mTLS), its CPU, memory and bytes",
  usage: USAGE,
  async run(argv, progress): Promise<BenchResult> {
    const o = parseOptions(argv);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-bench-proxy-ca-'));
    const runs: RunResult[] = [];
    let signMs: number | undefined;
    try {
      const pods = o.paths.includes('mtls') ? Math.max(...o.streams) : 0;
      progress.phase(`xds-proxy: a certs/ root CA and ${pods} pod certificates`);
      const ca = await makeCa(dir, pods);
      signMs = ca.signMs;
      const total = o.streams.length * o.paths.length;
      for (const streams of o.streams) {
        for (const kind of o.paths) {
          const label = `[${runs.length + 1}/${total}] ${streams} streams, ${kind}`;
          runs.push(await runOne(o, ca, kind, streams, progress, label));
        }
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const notes = [
      `Control plane: \`trellis control-plane --static-resources F --plugin-ca-dir D --tokens-file T --debounce-after ${o.debounceMs}ms\` (control-plane/main.ts under tsx) in its own process, a fresh one per run; proxies: sidecar/xds-proxy.ts XdsProxy, one per simulated pod, all in one more process; clients: bench/ads-sim.ts (${o.protocol}, node bench-NNNNN.ns-K, one connection each) in this process. All three processes share the machine's ${os.cpus().length} cores.`,
      `Config: ${o.clusters} EDS clusters with ${o.endpoints} endpoints each, 1 listener, 1 route configuration (bench/fixture.ts). Each round moves one endpoint of one ClusterLoadAssignment (the same changes as xds-fanout).`,
      `mtls: a certs/ P-256 root as the plug-in CA; each pod's SVID (spiffe://cluster.local/ns/ns-K/sa/default, P-256 key, 24 h) signed beforehand (${fmtInt(signMs ?? NaN)} ms for all); the proxy presents it through a MemoryCertificateProvider and checks the control plane's ${controlPlaneSpiffeId(DEFAULT_TRUST_DOMAIN)}, as sidecar/agent.ts does; the TLS port binds each stream to its certificate.`,
      `1-minute load average before/after the rounds (2 = both cores busy): ${runs.map((r) => `${r.streams}/${r.path} ${r.loadAverage.join('/')}`).join('; ')}.`,
    ];
    for (const r of runs) {
      const m = r.cp.metrics;
      if (m.trellis_xds_nacks_total || m.trellis_xds_authn_refusals_total)
        notes.push(
          `${r.streams}/${r.path}: ${m.trellis_xds_nacks_total} NACKs, ${m.trellis_xds_authn_refusals_total} refused streams`,
        );
      for (const e of r.errors) notes.push(`${r.streams}/${r.path}: ${e}`);
    }
    return {
      name: 'xds-proxy',
      title: `xds-proxy: ${o.streams.join(' and ')} ${o.protocol} ADS streams × ${o.clusters} clusters, direct vs through the agent's xDS proxy`,
      params: {
        streams: o.streams,
        clusters: o.clusters,
        paths: o.paths,
        protocol: o.protocol,
        rounds: o.rounds,
        endpoints: o.endpoints,
        debounceAfterMs: o.debounceMs,
      },
      tables: tables(o, runs),
      notes,
      data: runs.map((r) => ({ ...r, rounds: r.rounds.map(({ samples: _samples, ...round }) => round) })),
    };
  },
};

// Run as the proxy host (see ProxyHost).
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--proxy-host');
  if (i === -1 || !process.argv[i + 1]) {
    process.stderr.write('usage: node --expose-gc --import tsx bench/xds-proxy.ts --proxy-host CONFIG\n');
    process.exit(2);
  }
  proxyHostMain(process.argv[i + 1]!).catch((err: unknown) => {
    process.stderr.write(`proxy host: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
