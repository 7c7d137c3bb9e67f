// `npm run bench` runs every benchmark with its defaults; `npm run bench -- NAME [--flags]` runs one.
// Each prints its tables and writes bench/results/<name>.{md,json} (the latest run) and appends it to bench/results/history/<name>.md.
// `--label TEXT` (any benchmark) inserts TEXT into those file names, to keep a variant run apart.
import { agent } from './agent.js';
import { ca } from './ca.js';
import { cliStartup } from './cli-startup.js';
import { encode } from './encode.js';
import { inject } from './inject.js';
import { kubeStatus } from './kube-status.js';
import { machineInfo, Progress, renderText, UsageError, writeResults, type Benchmark } from './report.js';
import { restart } from './restart.js';
import { tracing } from './tracing.js';
import { translate } from './translate.js';
import { xdsCompare } from './xds-compare.js';
import { xdsFanout } from './xds-fanout.js';
import { xdsMesh } from './xds-mesh.js';
import { xdsProxy } from './xds-proxy.js';

const benchmarks: readonly Benchmark[] = [
  encode,
  xdsFanout,
  xdsCompare,
  xdsProxy,
  xdsMesh,
  translate,
  ca,
  restart,
  agent,
  cliStartup,
  kubeStatus,
  inject,
  tracing,
];

function usage(): string {
  return [
    'usage: npm run bench [-- NAME [--flags]] [--label TEXT]',
    '',
    ...benchmarks.flatMap((b) => [`${b.name}: ${b.description}`, `  ${b.usage}`, '']),
  ].join('\n');
}

/** Takes `--label X` / `--label=X` out of the arguments. */
function takeLabel(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--label') {
      const value = args[i + 1];
      args.splice(i, 2);
      return value;
    }
    if (arg.startsWith('--label=')) {
      args.splice(i, 1);
      return arg.slice('--label='.length);
    }
  }
  return undefined;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(usage() + '\n');
    return 0;
  }
  const label = takeLabel(args);
  if (label !== undefined && !/^[\w.-]+$/.test(label))
    throw new UsageError(`--label must be letters, digits, ".", "_" or "-"`);
  let selected: readonly Benchmark[] = benchmarks;
  let flags: string[] = [];
  if (args.length > 0 && !args[0]!.startsWith('-')) {
    const bench = benchmarks.find((b) => b.name === args[0]);
    if (!bench) {
      process.stderr.write(`unknown benchmark "${args[0]}"\n\n${usage()}\n`);
      return 2;
    }
    selected = [bench];
    flags = args.slice(1);
  } else if (args.length > 0) {
    process.stderr.write(`flags need a benchmark name\n\n${usage()}\n`);
    return 2;
  }

  const machine = machineInfo();
  const progress = new Progress();
  for (const bench of selected) {
    progress.phase(`${bench.name}: ${bench.description}`);
    const result = await bench.run(flags, progress);
    progress.clear();
    const command = ['npm run bench --', bench.name, ...flags, ...(label ? ['--label', label] : [])].join(' ');
    const files = writeResults(result, machine, command, label);
    process.stdout.write(`\n${renderText(result, machine)}\n\n`);
    progress.phase(`${bench.name}: results in ${files.map((f) => f.replace(`${process.cwd()}/`, '')).join(', ')}`);
  }
  return 0;
}

main().then(
  (code) => {
    // Open handles (gRPC channels closing, timers) must not keep a finished run alive.
    process.exit(code);
  },
  (err: unknown) => {
    // A bad flag is the user's mistake: its message and the usage, no stack.
    const code = (err as { code?: unknown } | null)?.code;
    if (err instanceof UsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))) {
      process.stderr.write(`\n${(err as Error).message}\n\n${usage()}\n`);
      process.exit(2);
    }
    process.stderr.write(`\nbench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
