// `npm run bench -- ca`: certificates signed per second, and p50/p99 latency, at concurrency 1 and 50,
// with a P-256 and an RSA-2048 CA key: in process (CertificateAuthority.sign) and through the gRPC
// service on loopback (`trellis control-plane --state-dir S --tokens-file T`, its own process, audit log
// at info drained from its stdout). CSRs are made beforehand like the agent makes them (a P-256 key per
// workload, @peculiar/x509), so the numbers are the CA's, not the client's key generation.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import { CertificateAuthority, createRootCa, loadRootCa, type KeyType } from '../certs/index.js';
import { CaClient, makeCsr } from '../test/ca/ca-helpers.js';
import {
  fmt,
  fmtInt,
  repoRoot,
  summarize,
  UsageError,
  type BenchResult,
  type Benchmark,
  type Progress,
  type Table,
} from './report.js';
import { processCpuMs } from './server-process.js';

const USAGE = 'npm run bench -- ca [--seconds 5] [--concurrency 1,50] [--keys ec-p256,rsa-2048] [--csrs 64]';

interface Cell {
  readonly mode: 'in-process' | 'gRPC';
  readonly key: KeyType;
  readonly concurrency: number;
  readonly count: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** CPU ms per certificate: the server process (gRPC) or this process (in process). */
  readonly serverCpuMsPerCert: number;
  readonly clientCpuMsPerCert?: number;
}

const IDENTITY = { trustDomain: 'cluster.local', namespace: 'bench', serviceAccount: 'load' };
const URI = 'spiffe://cluster.local/ns/bench/sa/load';
const TOKEN = 'bench-token-0123456789abcdef';

/** Runs `one` from `concurrency` loops for `seconds` (after a warm-up) and times each call. */
async function drive(
  one: (i: number) => Promise<unknown>,
  concurrency: number,
  seconds: number,
  warmup: number,
): Promise<{ latencies: number[]; elapsedMs: number }> {
  for (let i = 0; i < warmup; i++) await one(i);
  const latencies: number[] = [];
  const start = performance.now();
  const end = start + seconds * 1000;
  let n = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await one(n++);
        latencies.push(performance.now() - t);
      }
    }),
  );
  return { latencies, elapsedMs: performance.now() - start };
}

function cell(
  mode: Cell['mode'],
  key: KeyType,
  concurrency: number,
  r: { latencies: number[]; elapsedMs: number },
  serverCpuMs: number,
  clientCpuMs?: number,
): Cell {
  const s = summarize(r.latencies);
  return {
    mode,
    key,
    concurrency,
    count: s.count,
    seconds: r.elapsedMs / 1000,
    perSecond: s.count / (r.elapsedMs / 1000),
    p50: s.p50,
    p99: s.p99,
    max: s.max,
    serverCpuMsPerCert: serverCpuMs / s.count,
    clientCpuMsPerCert: clientCpuMs === undefined ? undefined : clientCpuMs / s.count,
  };
}

interface CaProcess {
  readonly child: ChildProcess;
  readonly port: number;
  stop(): Promise<void>;
}

/** `trellis control-plane` with the CA, in its own process; its JSON log is read (and drained) here. */
async function startCaProcess(args: readonly string[]): Promise<CaProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'control-plane/main.ts', 'control-plane', '--xds-port', '0', '--monitoring-port', '0', ...args],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      if (!line.includes('control plane listening')) return;
      resolve(Number((JSON.parse(line) as { xdsPort: number }).xdsPort));
    });
    void exited.then(() => reject(new Error(`the control plane exited before listening:\n${stderr}`)));
  });
  return {
    child,
    port,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export const ca: Benchmark = {
  name: 'ca',
  description: 'CA: certificates signed per second and p50/p99, in process and over gRPC, P-256 and RSA-2048 CA keys',
  usage: USAGE,
  async run(argv, progress: Progress): Promise<BenchResult> {
    const { values } = parseArgs({
      args: [...argv],
      options: {
        seconds: { type: 'string', default: '5' },
        concurrency: { type: 'string', default: '1,50' },
        keys: { type: 'string', default: 'ec-p256,rsa-2048' },
        csrs: { type: 'string', default: '64' },
      },
      strict: true,
    });
    const seconds = Number(values.seconds);
    const concurrencies = values.concurrency.split(',').map(Number);
    const keys = values.keys.split(',') as KeyType[];
    const csrCount = Number(values.csrs);
    if (!(seconds > 0)) throw new UsageError('--seconds must be positive');
    if (!concurrencies.every((c) => Number.isInteger(c) && c > 0))
      throw new UsageError('--concurrency: positive integers');
    if (!keys.every((k) => ['ec-p256', 'ec-p384', 'rsa-2048'].includes(k)))
      throw new UsageError('--keys: ec-p256, ec-p384, rsa-2048');
    if (!(Number.isInteger(csrCount) && csrCount > 0)) throw new UsageError('--csrs must be a positive integer');

    progress.phase(`ca: making ${csrCount} CSRs (P-256 workload keys)`);
    const csrs = await Promise.all(Array.from({ length: csrCount }, () => makeCsr(URI)));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-bench-ca-'));
    const cells: Cell[] = [];
    try {
      fs.writeFileSync(
        path.join(dir, 'tokens.json'),
        JSON.stringify([{ token: TOKEN, namespace: 'bench', serviceAccount: 'load' }]),
      );
      for (const key of keys) {
        const root = await createRootCa({ keyType: key });
        const authority = CertificateAuthority.create(await loadRootCa(root.certPem, root.keyPem), 'cluster.local');
        for (const concurrency of concurrencies) {
          progress.phase(`ca: in process, ${key} CA key, concurrency ${concurrency}, ${seconds} s`);
          const cpu0 = process.cpuUsage();
          const r = await drive(
            async (i) => authority.sign({ csr: csrs[i % csrs.length]!, identity: IDENTITY }),
            concurrency,
            seconds,
            200,
          );
          const cpu = process.cpuUsage(cpu0);
          cells.push(cell('in-process', key, concurrency, r, (cpu.user + cpu.system) / 1000));
        }
        // The same CA key served by the real CLI (a plug-in CA directory whose ca-cert is the root).
        const pluginDir = path.join(dir, `plugin-${key}`);
        fs.mkdirSync(pluginDir);
        for (const f of ['ca-cert.pem', 'root-cert.pem']) fs.writeFileSync(path.join(pluginDir, f), root.certPem);
        fs.writeFileSync(path.join(pluginDir, 'ca-key.pem'), root.keyPem, { mode: 0o600 });
        progress.phase(`ca: starting trellis control-plane with the ${key} CA`);
        const server = await startCaProcess([
          '--plugin-ca-dir',
          pluginDir,
          '--tokens-file',
          path.join(dir, 'tokens.json'),
        ]);
        const client = new CaClient(`127.0.0.1:${server.port}`);
        try {
          for (const concurrency of concurrencies) {
            progress.phase(`ca: gRPC, ${key} CA key, concurrency ${concurrency}, ${seconds} s`);
            await drive(async (i) => client.createCertificate(csrs[i % csrs.length]!, { token: TOKEN }), 1, 0, 200);
            const s0 = processCpuMs(server.child.pid!);
            const c0 = process.cpuUsage();
            const r = await drive(
              async (i) => client.createCertificate(csrs[i % csrs.length]!, { token: TOKEN }),
              concurrency,
              seconds,
              0,
            );
            const c = process.cpuUsage(c0);
            cells.push(
              cell('gRPC', key, concurrency, r, processCpuMs(server.child.pid!) - s0, (c.user + c.system) / 1000),
            );
          }
        } finally {
          client.close();
          await server.stop();
        }
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }

    const tables: Table[] = [
      {
        title: 'Certificates signed (P-256 workload CSRs; 24 h SVIDs)',
        columns: [
          'mode',
          'CA key',
          'concurrency',
          'certs/s',
          'p50 ms',
          'p99 ms',
          'max ms',
          'CA CPU ms/cert',
          'client CPU ms/cert',
          'count',
        ],
        rows: cells.map((c) => [
          c.mode,
          c.key,
          c.concurrency,
          fmtInt(c.perSecond),
          fmt(c.p50, 3),
          fmt(c.p99, 3),
          fmt(c.max, 2),
          fmt(c.serverCpuMsPerCert, 3),
          c.clientCpuMsPerCert === undefined ? '–' : fmt(c.clientCpuMsPerCert, 3),
          fmtInt(c.count),
        ]),
        notes: [
          "in-process: CertificateAuthority.sign (parse the CSR, verify its signature, check SANs and CA request, build and sign the SVID); the signature verify and sign run as WebCrypto jobs on libuv's thread pool, so concurrency 50 can use both cores.",
          'gRPC: trellis.ca.v1.CertificateService/CreateCertificate on 127.0.0.1 against `trellis control-plane --plugin-ca-dir D --tokens-file T` in its own process (tokens-file authentication, one audit line per certificate at info level), one HTTP/2 connection from a grpc-js client in this process.',
          'CA CPU: utime+stime of the control-plane process (10 ms ticks) over the run / certificates; client CPU: this process.',
          'Goal (performance-anchors.md): ≥ 2,000 certs/s with P-256 on 2 cores; p99 < 50 ms at 50 in flight. Ceiling: ≈10k/s per core with a P-256 CA key, ≈3k/s with RSA-2048 (one verify + one sign).',
        ],
      },
    ];
    return {
      name: 'ca',
      title: `ca: ${keys.join(' and ')} CA keys, concurrency ${concurrencies.join(' and ')}, ${seconds} s each`,
      params: { seconds, concurrencies, keys, csrs: csrCount },
      tables,
      notes: [],
      data: { cells },
    };
  },
};
