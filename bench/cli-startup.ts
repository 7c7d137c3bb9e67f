// `npm run bench -- cli-startup`: what a `trellis` command costs before it does anything, on the compiled
// product (product-build.ts) run with plain `node`:
//   - commands that exit (`trellis validate` of one small file, `--help`s): wall time from spawn to exit and
//     peak RSS (the process's own maxRSS, written at exit by a one-line preload);
//   - the control plane idle in each mode (static resources, local mode, local mode with the CA): spawn →
//     `control plane listening`, and RSS after it has been listening for a while with no proxy connected (and
//     again once V8 has collected the start-up garbage).
import { spawn } from 'node:child_process';
import { CONTROL_PLANE_MALLOC_ENV } from '../deploy/images/runtime-env.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import { buildProduct, processRss } from './product-build.js';
import { fmt, median, mib, positiveInt, repoRoot, type Benchmark, type BenchResult } from './report.js';

interface Options {
  runs: number;
  idleS: number;
  settledS: number;
}

function parseOptions(argv: readonly string[]): Options {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      runs: { type: 'string', default: '5' },
      idle: { type: 'string', default: '5' },
      settled: { type: 'string', default: '20' },
    },
    strict: true,
  });
  const idleS = positiveInt('idle', values.idle);
  return {
    runs: positiveInt('runs', values.runs),
    idleS,
    settledS: Math.max(idleS, positiveInt('settled', values.settled)),
  };
}

const TINY_YAML = `apiVersion: networking.trellis.dev/v1alpha1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http: [{ route: [{ destination: { host: reviews } }] }]
`;

/** Written to the file in $TRELLIS_BENCH_EXIT_FILE at exit: the process's peak RSS (bytes). */
const EXIT_PRELOAD = `import fs from 'node:fs';
process.on('exit', () => fs.writeFileSync(process.env.TRELLIS_BENCH_EXIT_FILE, String(process.resourceUsage().maxRSS * 1024)));
`;

interface ExitRun {
  readonly wallMs: number;
  readonly peakRss: number;
  readonly exitCode: number | null;
}

async function runToExit(args: readonly string[], preload: string, dir: string): Promise<ExitRun> {
  const exitFile = path.join(dir, 'exit.txt');
  fs.rmSync(exitFile, { force: true });
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', preload, ...args], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'ignore'],
    env: { ...process.env, TRELLIS_BENCH_EXIT_FILE: exitFile },
  });
  const exitCode = await new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const wallMs = performance.now() - started;
  return { wallMs, peakRss: Number(fs.readFileSync(exitFile, 'utf8')), exitCode };
}

interface IdleRun {
  readonly readyMs: number;
  /** At `idleS`. */
  readonly rss: number;
  readonly anon: number;
  /** At `settledS`: after V8's memory reducer has run (it collects once allocation has been low for ~8 s). */
  readonly settledRss: number;
  readonly settledAnon: number;
}

async function idleControlPlane(
  trellis: string,
  args: readonly string[],
  idleS: number,
  settledS: number,
  dir: string,
): Promise<IdleRun> {
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [trellis, 'control-plane', '--xds-port', '0', '--monitoring-port', '0', ...args],
    {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      // As in its image (deploy/images/runtime-env.ts); TRELLIS_BENCH_GLIBC_DEFAULTS=1 leaves it out.
      env:
        process.env.TRELLIS_BENCH_GLIBC_DEFAULTS === '1'
          ? process.env
          : { ...process.env, ...CONTROL_PLANE_MALLOC_ENV },
    },
  );
  let output = '';
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const readyMs = await new Promise<number>((resolve, reject) => {
      readline.createInterface({ input: child.stdout }).on('line', (line) => {
        output += `${line}\n`;
        if (line.includes('"control plane listening"')) resolve(performance.now() - started);
      });
      void exited.then((code) => reject(new Error(`control plane exited (${code}):\n${output.slice(-2000)}`)));
    });
    let last = processRss(child.pid!);
    let atIdle = last;
    for (let s = 1; s <= settledS; s++) {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      last = processRss(child.pid!);
      if (s === idleS) atIdle = last;
    }
    return { readyMs, rss: atIdle.rss, anon: atIdle.anon, settledRss: last.rss, settledAnon: last.anon };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

export const cliStartup: Benchmark = {
  name: 'cli-startup',
  description:
    'start time and memory of trellis commands (compiled): validate, --help, and the idle control plane per mode',
  usage:
    '[--runs 5] [--idle 5 (s the control plane idles before RSS is read)] [--settled 20 (s before it is read again)]',
  async run(argv, progress): Promise<BenchResult> {
    const o = parseOptions(argv);
    progress.phase('cli-startup: compiling the product (tsc)');
    const { trellis } = await buildProduct();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-bench-cli-'));
    try {
      const preload = path.join(dir, 'exit-rss.mjs');
      fs.writeFileSync(preload, EXIT_PRELOAD);
      fs.writeFileSync(path.join(dir, 'tiny.yaml'), TINY_YAML);
      const token = 'bench-cli-token-0123456789';
      fs.writeFileSync(
        path.join(dir, 'tokens.yaml'),
        `- token: ${token}\n  namespace: default\n  serviceAccount: app\n`,
      );

      const commands: { name: string; args: string[] }[] = [
        { name: 'node (nothing loaded)', args: ['-e', ''] },
        { name: 'trellis validate -f tiny.yaml', args: [trellis, 'validate', '-f', 'tiny.yaml'] },
        { name: 'trellis --help', args: [trellis, '--help'] },
        { name: 'trellis agent --help', args: [trellis, 'agent', '--help'] },
        { name: 'trellis control-plane --help', args: [trellis, 'control-plane', '--help'] },
      ];
      const exitRows: (string | number)[][] = [];
      const exitData: Record<string, ExitRun[]> = {};
      for (const c of commands) {
        const runs: ExitRun[] = [];
        for (let i = 0; i < o.runs; i++) {
          progress.update(`${c.name}: run ${i + 1}/${o.runs}`);
          runs.push(await runToExit(c.args, preload, dir));
        }
        exitData[c.name] = runs;
        exitRows.push([
          c.name,
          `${fmt(median(runs.map((r) => r.wallMs)), 0)} ms`,
          `${fmt(Math.min(...runs.map((r) => r.wallMs)), 0)} ms`,
          mib(median(runs.map((r) => r.peakRss))),
          runs.map((r) => r.exitCode).join(' '),
        ]);
      }

      const modes: { name: string; args: string[] }[] = [
        {
          name: 'static (--static-resources)',
          args: ['--static-resources', path.join(repoRoot, 'examples', 'demo', 'static-resources.yaml')],
        },
        { name: 'local (--config-dir)', args: ['--config-dir', path.join(repoRoot, 'examples', 'mesh')] },
        {
          name: 'local with the CA',
          args: [
            '--config-dir',
            path.join(repoRoot, 'examples', 'mesh'),
            '--state-dir',
            path.join(dir, 'state'),
            '--tokens-file',
            path.join(dir, 'tokens.yaml'),
          ],
        },
      ];
      const idleRows: (string | number)[][] = [];
      const idleData: Record<string, IdleRun[]> = {};
      for (const m of modes) {
        const runs: IdleRun[] = [];
        for (let i = 0; i < Math.min(o.runs, 3); i++) {
          progress.update(`control plane ${m.name}: run ${i + 1}`);
          runs.push(await idleControlPlane(trellis, m.args, o.idleS, o.settledS, dir));
        }
        idleData[m.name] = runs;
        idleRows.push([
          m.name,
          `${fmt(median(runs.map((r) => r.readyMs)), 0)} ms`,
          mib(median(runs.map((r) => r.rss))),
          mib(median(runs.map((r) => r.anon))),
          mib(median(runs.map((r) => r.settledRss))),
          mib(median(runs.map((r) => r.settledAnon))),
        ]);
      }
      idleRows.push(
        ['goal (issue 14)', '', '≤ 80 MiB', '', '≤ 80 MiB', ''],
        ['go-control-plane (issue 14)', '', '34 MiB', '', '', ''],
      );

      const load = os.loadavg().map((l) => fmt(l, 2));
      return {
        name: 'cli-startup',
        title: 'trellis commands: start time and memory (compiled, plain node)',
        params: { runs: o.runs, idleS: o.idleS, settledS: o.settledS },
        tables: [
          {
            title: `Commands that exit (median of ${o.runs})`,
            columns: ['command', 'wall p50', 'wall min', 'peak RSS p50', 'exit codes'],
            rows: [...exitRows, ['goal (issue 16)', '< 300 ms', '', '', '']],
            notes: ["Wall time from spawn to exit; peak RSS is the process's maxRSS (getrusage), written at exit."],
          },
          {
            title: `Control plane idle, no proxy connected (median of ${Math.min(o.runs, 3)})`,
            columns: [
              'mode',
              'spawn → listening',
              `RSS after ${o.idleS} s`,
              'anonymous RSS',
              `RSS after ${o.settledS} s`,
              'anonymous RSS',
            ],
            rows: idleRows,
            notes: [
              'The first start with the CA makes its root (and loads the X.509 library that makes it); the later ones read it.',
              `After ${o.settledS} s V8's memory reducer has run: it collects once allocation has been low for about 8 s.`,
            ],
          },
        ],
        notes: [`load average at the end: ${load.join(' / ')} (2 cores shared: times are noisy, RSS much less so)`],
        data: { exit: exitData, idle: idleData },
      };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
};
