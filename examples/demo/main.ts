// `npm start`: the demo mesh (run.ts) with a live view, or headless with `--json`. Run it as
// `npm start -- [options]` or `node --import tsx examples/demo/main.ts [options]`.
//
// Stopping: Ctrl-C (SIGINT), SIGTERM or SIGHUP stop the load, then every process of the mesh (each in a
// process group of its own: SIGTERM, SIGKILL after 5 s), remove the run directory and exit 0; another
// signal more than 2 s later kills them all at once. With `--duration`, the demo stops by itself and exits 0.
import { Command, InvalidArgumentError, Option } from 'commander';
import { startDemo, defaultConfigDir, type RunningDemo } from './run.js';
import { renderView, summary } from './view.js';

/** `20` (seconds), `500ms`, `20s`, `5m`, `1h`. */
function parseSeconds(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`"${value}" is not a duration (20, 20s, 5m)`);
  return Math.round(Number(m[1]) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms']);
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`"${value}" is not a positive integer`);
  return n;
}

interface MainOptions {
  duration: number;
  json: boolean;
  jaeger?: string;
  configDir: string;
  rate: number;
  batch: number;
  concurrency: number;
  certTtl?: string;
}

const program = new Command('npm start --')
  .description(
    'the Trellis demo: control plane, CA, one trellis agent per Pod and the example gRPC apps as local processes, proxyless, with mutual TLS, under load',
  )
  .addOption(
    new Option('--duration <time>', 'stop after this long (20 = 20 s; 500ms, 5m); default: until Ctrl-C')
      .default(0)
      .argParser(parseSeconds),
  )
  .option('--json', 'no live view: print one JSON summary at the end (use with --duration)', false)
  .option(
    '--jaeger <url>',
    'send traces to this OTLP endpoint (Jaeger: http://127.0.0.1:4317); default: $OTEL_EXPORTER_OTLP_ENDPOINT',
  )
  .option('--config-dir <dir>', 'the demo YAML, watched live', defaultConfigDir)
  .addOption(new Option('--rate <n>', 'calls per second at most').default(50).argParser(positiveInt))
  .addOption(new Option('--batch <n>', 'calls per /call request of the load loop').default(10).argParser(positiveInt))
  .addOption(new Option('--concurrency <n>', 'calls at a time').default(1).argParser(positiveInt))
  .option('--cert-ttl <duration>', 'workload certificate lifetime the agents ask for (e.g. 10m; default the CA’s 24h)')
  .showHelpAfterError();

async function main(): Promise<void> {
  program.parse(process.argv);
  const opts = program.opts<MainOptions>();
  const otlpEndpoint = opts.jaeger ?? process.env.OTEL_EXPORTER_OTLP_ENDPOINT ?? undefined;
  const interactive = !opts.json && process.stdout.isTTY === true;
  const progress = (line: string): void => void process.stderr.write(`${line}\n`);

  const starting = new AbortController();
  let demo: RunningDemo | undefined;
  let stopRequested: ((signal: string) => void) | undefined;
  const stopped = new Promise<string>((resolve) => (stopRequested = resolve));
  // Under `npm start` one Ctrl-C arrives twice (from the terminal, and forwarded by npm): a repeat within
  // 2 s is that one; a later one means "now", and kills every process group at once.
  let firstSignalAt: number | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (firstSignalAt !== undefined) {
      if (Date.now() - firstSignalAt < 2_000) return;
      for (const child of demo?.supervisor.all ?? []) child.signalGroup('SIGKILL');
      process.exit(1);
    }
    firstSignalAt = Date.now();
    starting.abort();
    stopRequested!(signal);
  };
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, onSignal);

  try {
    demo = await startDemo({
      configDir: opts.configDir,
      otlpEndpoint,
      rate: opts.rate,
      batch: opts.batch,
      concurrency: opts.concurrency,
      certificateTtl: opts.certTtl,
      runId: process.env.TRELLIS_DEMO_RUN || undefined,
      signal: starting.signal,
      progress,
    });
  } catch (err) {
    progress(`the demo did not start: ${(err as Error).message}`);
    process.exitCode = starting.signal.aborted ? 0 : 1;
    return;
  }
  const running = demo;
  progress(
    `the mesh is up: ${running.workloads.length} workloads${opts.duration ? `, running for ${opts.duration / 1000} s` : ''}`,
  );

  const draw = (): void => {
    if (opts.json) return;
    const view = renderView(running);
    process.stdout.write(interactive ? `\x1b[H\x1b[2J${view}\n` : `${view}\n\n`);
  };
  draw();
  const ticker = setInterval(draw, 1_000);
  const timer = opts.duration > 0 ? setTimeout(() => stopRequested!('duration'), opts.duration) : undefined;
  let failure: Error | undefined;
  const why = await Promise.race([
    stopped,
    running.failed.catch((err: Error) => {
      failure = err;
      return 'failure';
    }),
  ]);
  clearInterval(ticker);
  clearTimeout(timer);
  const result = summary(running);
  if (failure) progress(`stopping: ${failure.message}`);
  else if (why !== 'duration') progress(`stopping (${why})`);
  await running.stop({ keepRunDir: failure !== undefined });
  if (opts.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  progress(
    failure
      ? `stopped; the logs are kept in ${running.logDir}`
      : `stopped: ${result.calls} calls in ${result.durationSeconds} s, every process ended`,
  );
  process.exitCode = failure ? 1 : 0;
}

await main();
