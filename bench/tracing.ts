// `npm run bench -- tracing`: what control-plane tracing (lib/tracing.ts) costs a push. The same translated
// mesh as `xds-mesh` (bench/mesh-fixture.ts, --config-dir) is served three times by a control plane in its
// own process (bench/tracing-server.ts): tracing off (the SDK not loaded), on at 1% and at 100% sampling
// (parent-based trace-id ratio of the mesh.change root span; OTLP/gRPC to a real Jaeger, so the exporter's
// work is real too). Each mode connects the same delta ADS fleet (bench/mesh-sim.ts: sidecars and proxyless
// clients that ACK), then makes `--rounds` VirtualService changes (weights) that every stream must ACK as a
// new RouteConfiguration; a round's latency is from the file rename to the last stream's ACK, and the server
// reports each push cycle's duration. Modes run one after another on the same machine: the note says the
// load average, which the numbers depend on more than on tracing at small sizes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from '../control-plane/cli.js';
import { TypeUrl } from '../control-plane/envoy/protos.js';
import { startJaeger } from '../test/helpers/cluster.js';
import { MeshFixture } from './mesh-fixture.js';
import { MeshFleet, proxylessNode, sidecarNodes, type SimNode } from './mesh-sim.js';
import {
  fmt,
  positiveInt,
  summarize,
  UsageError,
  type Benchmark,
  type BenchResult,
  type Progress,
  type Summary,
} from './report.js';
import { ServerProcess } from './server-process.js';

const USAGE = `npm run bench -- tracing [--services 50] [--endpoints 3] [--sidecars 40] [--proxyless 10]
    [--rounds 10] [--connections 10] [--debounce-after 100ms] [--timeout 120s]`;

interface Options {
  services: number;
  endpoints: number;
  sidecars: number;
  proxyless: number;
  rounds: number;
  connections: number;
  debounceMs: number;
  timeoutMs: number;
}

function parseOptions(argv: readonly string[]): Options {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      services: { type: 'string', default: '50' },
      endpoints: { type: 'string', default: '3' },
      sidecars: { type: 'string', default: '40' },
      proxyless: { type: 'string', default: '10' },
      rounds: { type: 'string', default: '10' },
      connections: { type: 'string', default: '10' },
      'debounce-after': { type: 'string', default: '100ms' },
      timeout: { type: 'string', default: '120s' },
    },
    strict: true,
  });
  const o = {
    services: positiveInt('services', values.services),
    endpoints: positiveInt('endpoints', values.endpoints),
    sidecars: positiveInt('sidecars', values.sidecars),
    proxyless: Number(values.proxyless),
    rounds: positiveInt('rounds', values.rounds),
    connections: positiveInt('connections', values.connections),
    debounceMs: parseDuration(values['debounce-after']),
    timeoutMs: parseDuration(values.timeout),
  };
  if (!Number.isInteger(o.proxyless) || o.proxyless < 0) throw new UsageError('--proxyless must be an integer >= 0');
  if (o.sidecars > o.services * Math.min(10, o.endpoints))
    throw new UsageError('--sidecars must be at most services × min(10, endpoints)');
  return o;
}

function nodes(o: Options): SimNode[] {
  return [...sidecarNodes(o.sidecars, o.endpoints), ...Array.from({ length: o.proxyless }, (_, k) => proxylessNode(k))];
}

interface Mode {
  readonly name: string;
  readonly env: Readonly<Record<string, string>>;
}

interface ModeResult {
  readonly mode: string;
  /** Per round: ms from the rename to the last stream's ACK. */
  readonly lastAck: number[];
  /** Per round and stream: ms from the rename to its ACK. */
  readonly perStream: number[];
  /** Push cycles of the rounds (server clock). */
  readonly pushCycle: number[];
  readonly cpuMsPerRound: number;
  readonly rssMiB: number;
  readonly load: readonly number[];
  readonly complete: boolean;
  /** trellisd traces Jaeger holds after this mode (all modes so far). */
  readonly tracesInJaeger: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** How many traces of trellisd Jaeger holds (polled until the count stops growing: the SDK exports in batches). */
async function traceCount(queryUrl: string): Promise<number> {
  const count = async (): Promise<number> => {
    const response = await fetch(`${queryUrl}/api/traces?service=trellisd&lookback=1h&limit=100000`);
    if (!response.ok) return 0;
    return ((await response.json()) as { data: unknown[] | null }).data?.length ?? 0;
  };
  let last = -1;
  let now = await count();
  while (now !== last) {
    await sleep(6000); // longer than the SDK's batch delay (5 s)
    last = now;
    now = await count();
  }
  return now;
}

async function runMode(mode: Mode, o: Options, progress: Progress, queryUrl: string): Promise<ModeResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-bench-tracing-'));
  const fixture = new MeshFixture(dir, { services: o.services, endpoints: o.endpoints });
  fixture.writeAll();
  const saved = { ...process.env };
  Object.assign(process.env, mode.env);
  let started: Awaited<ReturnType<typeof ServerProcess.start>>;
  try {
    started = await ServerProcess.start({
      debounceMs: o.debounceMs,
      script: { path: path.join('bench', 'tracing-server.ts'), args: ['--config-dir', dir] },
    });
  } finally {
    for (const key of Object.keys(mode.env)) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
  }
  const { server, xdsPort } = started;
  const fleet = new MeshFleet(`127.0.0.1:${xdsPort}`, o.connections);
  const load = [os.loadavg()[0]!];
  const lastAck: number[] = [];
  const perStream: number[] = [];
  const pushCycle: number[] = [];
  let complete = true;
  let cpu = 0;
  try {
    progress.phase(`${mode.name}: connecting ${o.sidecars} sidecars + ${o.proxyless} proxyless`);
    await fleet.connect(nodes(o), o.timeoutMs);
    await sleep(1000);
    for (let r = 0; r < o.rounds; r++) {
      const i = (r * 7 + 3) % o.services;
      progress.phase(`${mode.name}: VirtualService change ${r + 1}/${o.rounds}`);
      await sleep(Math.max(300, o.debounceMs * 3));
      const pushedBefore = server.events.filter((e) => e.event === 'pushed').length;
      const cpu0 = server.cpuMs();
      const { done } = await fleet.startRound({ kind: 'type', typeUrl: TypeUrl.RouteConfiguration }, o.timeoutMs);
      fixture.update(i, { v1Weight: 80 - (r % 50) });
      const ended = await done;
      complete = ended.complete && complete;
      cpu += server.cpuMs() - cpu0;
      const acks = ended.ackedMs.filter((x) => !Number.isNaN(x));
      perStream.push(...acks);
      lastAck.push(Math.max(...acks));
      await sleep(200);
      for (const e of server.events.slice(pushedBefore))
        if (e.event === 'pushed' && e.streams > 0) pushCycle.push(e.durationMs);
    }
    load.push(os.loadavg()[0]!);
    const rss = server.memory().rss / (1024 * 1024);
    progress.phase(`${mode.name}: counting traces in Jaeger`);
    const tracesInJaeger = await traceCount(queryUrl);
    return {
      mode: mode.name,
      lastAck,
      perStream,
      pushCycle,
      cpuMsPerRound: cpu / o.rounds,
      rssMiB: rss,
      load,
      complete,
      tracesInJaeger,
    };
  } finally {
    await fleet.close();
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const row = (r: ModeResult, s: Summary, p: Summary): (string | number)[] => [
  r.mode,
  fmt(s.p50),
  fmt(s.p99),
  fmt(s.max),
  fmt(p.p50),
  fmt(p.max),
  fmt(r.cpuMsPerRound),
  fmt(r.rssMiB),
  r.load.map((l) => fmt(l)).join(' → '),
  r.complete ? 'yes' : 'NO',
];

export const tracing: Benchmark = {
  name: 'tracing',
  description: 'push latency (change → last ACK) with control-plane tracing off, on at 1% and at 100% sampling',
  usage: USAGE,
  async run(argv: readonly string[], progress: Progress): Promise<BenchResult> {
    const o = parseOptions(argv);
    progress.phase('starting Jaeger (the OTLP collector)');
    const jaeger = await startJaeger();
    const otlp = {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${jaeger.otlpGrpcPort}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    };
    const modes: Mode[] = [
      { name: 'off', env: {} },
      { name: 'on, 1%', env: { ...otlp, OTEL_TRACES_SAMPLER_ARG: '0.01' } },
      { name: 'on, 100%', env: { ...otlp, OTEL_TRACES_SAMPLER_ARG: '1' } },
    ];
    const results: ModeResult[] = [];
    try {
      for (const mode of modes) results.push(await runMode(mode, o, progress, jaeger.queryUrl));
    } finally {
      await jaeger.stop();
    }
    const off = summarize(results[0]!.lastAck).p50;
    return {
      name: 'tracing',
      title: 'Control-plane tracing: push latency off / 1% / 100%',
      params: { ...o, jaeger: 'v1.75.0 (v2.12.0), memory storage' },
      tables: [
        {
          title: `VirtualService change → last ACK of ${o.sidecars + o.proxyless} streams (${o.rounds} rounds each), ms`,
          columns: [
            'tracing',
            'last ACK p50',
            'p99',
            'max',
            'push cycle p50',
            'max',
            'server CPU ms / round',
            'RSS MiB',
            'load (1 min)',
            'complete',
          ],
          rows: results.map((r) =>
            row(r, summarize(r.lastAck), summarize(r.pushCycle.length > 0 ? r.pushCycle : [NaN])),
          ),
        },
        {
          title: 'Per stream (change → its ACK), ms',
          columns: ['tracing', 'p50', 'p90', 'p99', 'vs off (last-ACK p50)', 'trellisd traces in Jaeger (cumulative)'],
          rows: results.map((r) => {
            const s = summarize(r.perStream);
            return [
              r.mode,
              fmt(s.p50),
              fmt(s.p90),
              fmt(s.p99),
              `${fmt(summarize(r.lastAck).p50 - off)} ms`,
              r.tracesInJaeger,
            ];
          }),
        },
      ],
      notes: [
        'Modes run one after another against a fresh control plane process each; the debounce (--debounce-after) is part of every latency.',
        'Off: lib/tracing.ts never imports the SDK (tracer().enabled is false: one property read per push and per response).',
        'On: spans mesh.change → xds.push → xds.push.proxy (per proxy pushed) → xds.response (per response, ended by the ACK); at 1% most rounds are not sampled, so only the root span and the sampling decision are paid.',
        `Load average (1 min) at the start and end of each mode is in the table: on a shared 2-core machine the load moves these numbers more than tracing does.`,
      ],
      data: results,
    };
  },
};
