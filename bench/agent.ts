// `npm run bench -- agent`: what one `trellis agent` costs a pod. The product is compiled (product-build.ts)
// and run as real processes: a local-mode control plane with its CA (TLS port, short certificates), and the
// agent in gRPC mode relaying one ADS stream (a client in this process on the agent's socket, ACKing every
// response) while its certificate renews every few seconds. Measured per set of Node flags:
//   - start: spawn → the agent's first log line (modules loaded, health port open), certificate received →
//     ready (certificate installed, bootstrap written, upstream channel READY), spawn → ready;
//   - steady state: RSS (and its anonymous and file-backed parts) sampled every second after the stream is
//     up, with the renewals counted from the agent's log.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import { create, toBinary } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { AGENT_NODE_OPTIONS } from '../api/names.js';
import { NodeSchema } from '../control-plane/envoy/gen/envoy/config/core/v3/base_pb.js';
import { TypeUrl } from '../control-plane/envoy/protos.js';
import { decodeSotwResponse, sotwRequest } from './ads-sim.js';
import { buildProduct, processRss } from './product-build.js';
import {
  fmt,
  median,
  mib,
  positiveInt,
  repoRoot,
  UsageError,
  type Benchmark,
  type BenchResult,
  type Progress,
} from './report.js';

interface Options {
  durationS: number;
  ttlS: number;
  starts: number;
  variants: Variant[];
}

interface Variant {
  readonly name: string;
  readonly flags: readonly string[];
}

const VARIANTS: Record<string, Variant> = {
  default: { name: 'node defaults', flags: [] },
  sidecar: { name: `sidecar flags (${AGENT_NODE_OPTIONS})`, flags: AGENT_NODE_OPTIONS.split(' ') },
  lite: { name: `sidecar flags + --lite-mode`, flags: [...AGENT_NODE_OPTIONS.split(' '), '--lite-mode'] },
};

function parseOptions(argv: readonly string[]): Options {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      duration: { type: 'string', default: '40' },
      ttl: { type: 'string', default: '20' },
      starts: { type: 'string', default: '5' },
      variants: { type: 'string', default: 'default,sidecar,lite' },
    },
    strict: true,
  });
  const ttlS = positiveInt('ttl', values.ttl);
  if (ttlS < 2) throw new UsageError('--ttl must be at least 2 (seconds)');
  return {
    durationS: positiveInt('duration', values.duration),
    ttlS,
    starts: positiveInt('starts', values.starts),
    variants: values.variants.split(',').map((v) => {
      const variant = VARIANTS[v];
      if (!variant) throw new UsageError(`--variants: ${Object.keys(VARIANTS).join(', ')}, not "${v}"`);
      return variant;
    }),
  };
}

// ---------------------------------------------------------------------------------------------------
// Processes that log JSON lines

interface LogLine {
  readonly msg?: string;
  readonly time?: number;
  readonly [key: string]: unknown;
}

class LoggingProcess {
  readonly lines: LogLine[] = [];
  private readonly waiters = new Set<() => void>();
  readonly exited: Promise<number | null>;
  output = '';

  constructor(readonly child: ChildProcess) {
    readline.createInterface({ input: child.stdout! }).on('line', (text) => {
      try {
        this.lines.push(JSON.parse(text) as LogLine);
      } catch {
        this.output += `${text}\n`;
      }
      for (const w of [...this.waiters]) w();
    });
    child.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  /** The first line that matches (seen or to come); rejects on exit or after `timeoutMs`. */
  waitFor(match: (line: LogLine) => boolean, timeoutMs: number): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const line = this.lines.find(match);
        if (!line) return false;
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve(line);
        return true;
      };
      const waiter = (): void => void check();
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`no matching log line within ${timeoutMs} ms; output:\n${this.output.slice(-2000)}`));
      }, timeoutMs);
      if (check()) return;
      this.waiters.add(waiter);
      void this.exited.then((code) => {
        if (!this.waiters.has(waiter)) return;
        this.waiters.delete(waiter);
        clearTimeout(timer);
        reject(new Error(`exited (${code}) before the log line; output:\n${this.output.slice(-2000)}`));
      });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(killer);
  }
}

// ---------------------------------------------------------------------------------------------------
// The setup: a control plane with its CA, a token for one workload

const NAMESPACE = 'bookinfo';
const SERVICE_ACCOUNT = 'bookinfo-reviews';

interface Setup {
  readonly dir: string;
  readonly trellis: string;
  readonly controlPlane: LoggingProcess;
  readonly securePort: number;
  readonly tokenFile: string;
  readonly rootCert: string;
}

async function startControlPlane(trellis: string, dir: string): Promise<Setup> {
  const token = 'bench-agent-token-0123456789';
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, token);
  const tokensFile = path.join(dir, 'tokens.yaml');
  fs.writeFileSync(tokensFile, `- token: ${token}\n  namespace: ${NAMESPACE}\n  serviceAccount: ${SERVICE_ACCOUNT}\n`);
  const stateDir = path.join(dir, 'state');
  const child = spawn(
    process.execPath,
    [
      trellis,
      'control-plane',
      '--config-dir',
      path.join(repoRoot, 'examples', 'mesh'),
      '--state-dir',
      stateDir,
      '--tokens-file',
      tokensFile,
      '--xds-port',
      '0',
      '--monitoring-port',
      '0',
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const controlPlane = new LoggingProcess(child);
  const listening = await controlPlane.waitFor((l) => l.msg === 'control plane listening', 120_000);
  const securePort = Number(listening.secureXdsPort);
  if (!Number.isInteger(securePort) || securePort <= 0) throw new Error('the control plane did not open its TLS port');
  return { dir, trellis, controlPlane, securePort, tokenFile, rootCert: path.join(stateDir, 'root-cert.pem') };
}

function startAgent(setup: Setup, variant: Variant, ttlS: number, run: number): LoggingProcess {
  const outputDir = path.join(setup.dir, `agent-${run}`);
  fs.rmSync(outputDir, { recursive: true, force: true });
  const child = spawn(
    process.execPath,
    [
      ...variant.flags,
      setup.trellis,
      'agent',
      '--proxy-type',
      'grpc',
      '--control-plane',
      `127.0.0.1:${setup.securePort}`,
      '--root-cert',
      setup.rootCert,
      '--token-file',
      setup.tokenFile,
      '--pod-name',
      `reviews-bench-${run}`,
      '--namespace',
      NAMESPACE,
      '--service-account',
      SERVICE_ACCOUNT,
      '--instance-ips',
      '127.0.0.1',
      '--output-dir',
      outputDir,
      '--health-host',
      '127.0.0.1',
      '--health-port',
      '0',
      '--ttl',
      `${ttlS}s`,
    ],
    { cwd: setup.dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return new LoggingProcess(child);
}

interface StartTimes {
  /** Spawn → first log line: modules loaded, health port open. */
  readonly loadMs: number;
  /** Certificate received → ready (installed, bootstrap written, upstream READY). */
  readonly certToReadyMs: number;
  /** Spawn → ready. */
  readonly totalMs: number;
}

/** Waits until the agent is ready and reads its start from its log (pino `time`, ms since the epoch). */
async function startTimes(agent: LoggingProcess, spawnedAt: number): Promise<StartTimes> {
  const first = await agent.waitFor((l) => l.msg === 'agent: requesting a certificate', 60_000);
  const cert = await agent.waitFor((l) => l.msg === 'certificates: got the first certificate', 60_000);
  const started = await agent.waitFor((l) => l.msg === 'agent started', 60_000);
  const upstream = await agent.waitFor(
    (l) => l.msg === 'xDS proxy upstream channel state changed' && l.to === 'READY',
    60_000,
  );
  const ready = Math.max(started.time!, upstream.time!);
  return { loadMs: first.time! - spawnedAt, certToReadyMs: ready - cert.time!, totalMs: ready - spawnedAt };
}

// ---------------------------------------------------------------------------------------------------
// One relayed stream

interface RelayedStream {
  responses: number;
  close(): void;
}

function openStream(socketPath: string, podName: string): RelayedStream {
  const client = new grpc.Client(`unix://${socketPath}`, grpc.credentials.createInsecure());
  const call = client.makeBidiStreamRequest(
    '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
    (b: Buffer) => b,
    (b: Buffer) => b,
  );
  const node = toBinary(
    NodeSchema,
    create(NodeSchema, {
      id: `${podName}.${NAMESPACE}`,
      metadata: {
        NAMESPACE,
        SERVICE_ACCOUNT,
        PROXY_TYPE: 'grpc',
        INSTANCE_IPS: '127.0.0.1',
      },
    }),
  );
  const stream: RelayedStream = {
    responses: 0,
    close: () => {
      call.cancel();
      client.close();
    },
  };
  call.on('data', (bytes: Buffer) => {
    const response = decodeSotwResponse(bytes);
    stream.responses++;
    call.write(sotwRequest(response.typeUrl, { version: response.version, nonce: response.nonce }));
  });
  call.on('error', () => undefined);
  call.write(sotwRequest(TypeUrl.Cluster, { node }));
  return stream;
}

// ---------------------------------------------------------------------------------------------------

interface VariantResult {
  readonly variant: string;
  readonly starts: StartTimes[];
  readonly rss: number[];
  readonly anon: number[];
  readonly file: number[];
  readonly hwm: number;
  readonly renewals: number;
  readonly responses: number;
}

async function measureVariant(setup: Setup, variant: Variant, o: Options, progress: Progress): Promise<VariantResult> {
  const starts: StartTimes[] = [];
  for (let i = 0; i < o.starts; i++) {
    progress.update(`${variant.name}: start ${i + 1}/${o.starts}`);
    const spawnedAt = Date.now();
    const agent = startAgent(setup, variant, o.ttlS, i);
    try {
      starts.push(await startTimes(agent, spawnedAt));
    } finally {
      await agent.stop();
    }
  }
  // Steady state: one agent, one stream, renewals running.
  const run = o.starts;
  const agent = startAgent(setup, variant, o.ttlS, run);
  let stream: RelayedStream | undefined;
  try {
    await startTimes(agent, Date.now());
    const started = await agent.waitFor((l) => l.msg === 'agent started', 1_000);
    stream = openStream(String(started.xdsSocket), `reviews-bench-${run}`);
    const pid = agent.child.pid!;
    const samples: ReturnType<typeof processRss>[] = [];
    for (let s = 0; s < o.durationS; s++) {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      samples.push(processRss(pid));
      progress.update(`${variant.name}: steady state ${s + 1}/${o.durationS} s, RSS ${mib(samples.at(-1)!.rss)}`);
    }
    // The second half: after start-up garbage is collected, with renewals in it.
    const late = samples.slice(Math.floor(samples.length / 2));
    return {
      variant: variant.name,
      starts,
      rss: late.map((x) => x.rss),
      anon: late.map((x) => x.anon),
      file: late.map((x) => x.file),
      hwm: samples.at(-1)!.hwm,
      renewals: agent.lines.filter((l) => l.msg === 'certificates: renewed').length,
      responses: stream.responses,
    };
  } finally {
    stream?.close();
    await agent.stop();
  }
}

export const agent: Benchmark = {
  name: 'agent',
  description: 'one trellis agent (gRPC mode, compiled): start to ready, and RSS with one relayed stream and renewals',
  usage: '[--duration 40 (s)] [--ttl 20 (s, certificate lifetime)] [--starts 5] [--variants default,sidecar,lite]',
  async run(argv, progress): Promise<BenchResult> {
    const o = parseOptions(argv);
    progress.phase('agent: compiling the product (tsc)');
    const { trellis } = await buildProduct();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-bench-agent-'));
    progress.phase('agent: control plane with its CA');
    const setup = await startControlPlane(trellis, dir);
    const results: VariantResult[] = [];
    try {
      for (const variant of o.variants) {
        progress.phase(`agent: ${variant.name}`);
        results.push(await measureVariant(setup, variant, o, progress));
      }
    } finally {
      await setup.controlPlane.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const load = os.loadavg().map((l) => fmt(l, 2));
    return {
      name: 'agent',
      title: 'trellis agent: start and steady-state memory (gRPC mode, one relayed stream, renewals running)',
      params: { durationS: o.durationS, ttlS: o.ttlS, starts: o.starts },
      tables: [
        {
          title: 'Steady state (second half of the run)',
          columns: [
            'flags',
            'RSS p50',
            'RSS max',
            'anonymous p50',
            'file-backed p50',
            'peak RSS',
            'renewals',
            'responses relayed',
          ],
          rows: [
            ...results.map((r) => [
              r.variant,
              mib(median(r.rss)),
              mib(Math.max(...r.rss)),
              mib(median(r.anon)),
              mib(median(r.file)),
              mib(r.hwm),
              r.renewals,
              r.responses,
            ]),
            ['Istio pilot-agent (anchor, issue 14)', '≈ 25 MiB', '', '', '', '', '', ''],
            ['goal (issue 14)', '≤ 60 MiB', '', '', '', '', '', ''],
          ],
          notes: [
            "RSS from /proc/<pid>/status. File-backed RSS is mostly the node binary's own code (bare `node` has ≈ 34 MiB of it), shared in the page cache by every process of the same image on a node; anonymous RSS is what each agent adds.",
            'The pilot-agent figure is the one issue 14 quotes ("about 25 MiB, and its users file bugs at 50"); performance-anchors.md has no row for it.',
          ],
        },
        {
          title: `Start (median of ${o.starts} starts)`,
          columns: ['flags', 'spawn → modules loaded', 'certificate → ready', 'spawn → ready'],
          rows: [
            ...results.map((r) => [
              r.variant,
              `${fmt(median(r.starts.map((s) => s.loadMs)), 0)} ms`,
              `${fmt(median(r.starts.map((s) => s.certToReadyMs)), 0)} ms`,
              `${fmt(median(r.starts.map((s) => s.totalMs)), 0)} ms`,
            ]),
            ['goal (issue 14)', '', '≤ 300 ms', ''],
          ],
          notes: [
            '"certificate → ready": from the log line of the first certificate to the later of `agent started` and the upstream channel turning READY (pino timestamps, 1 ms).',
          ],
        },
      ],
      notes: [
        `load average at the end: ${load.join(' / ')} (2 cores shared with other work: times are noisy, RSS much less so)`,
      ],
      data: results,
    };
  },
};
