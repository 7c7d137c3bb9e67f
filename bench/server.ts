// The control plane under benchmark, in its own process so that its RSS and CPU time are its own:
//   node --import tsx bench/server.ts --static-resources FILE [--debounce-after 100ms]
// It is startControlPlane() as `trellis control-plane` runs it (process metrics on), with a logger that
// keeps the run quiet but reports, as JSON lines on stdout, the events the benchmark times:
//   {"event":"listening","xdsPort":…,"monitoringPort":…,"pid":…}
//   {"event":"loaded","at":…,"generation":…}         the static file was re-read (source change seen)
//   {"event":"pushed","at":…,"durationMs":…,"streams":…,"encodeCount":…}   a push cycle ended
// `at` is epoch milliseconds with sub-millisecond precision (performance.timeOrigin + performance.now()).
// Commands on stdin: `stats`, `gc`, `profile-start`, `profile-stop FILE` (server-commands.ts). SIGTERM closes cleanly.
import './startup-heap.js'; // first: before the modules load
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { parseDuration } from '../control-plane/cli.js';
import { startControlPlane } from '../control-plane/control-plane.js';
import { releaseYoungGeneration } from '../control-plane/startup-heap.js';
import { answerCommands } from './server-commands.js';

const { values } = parseArgs({
  options: {
    'static-resources': { type: 'string' },
    'debounce-after': { type: 'string', default: '100ms' },
    'debounce-max': { type: 'string', default: '10s' },
  },
});
if (!values['static-resources']) throw new Error('--static-resources FILE is required');

const now = (): number => performance.timeOrigin + performance.now();
const emit = (event: Record<string, unknown>): void => {
  process.stdout.write(JSON.stringify(event) + '\n');
};

// Info-level lines are parsed here instead of printed: the reload line is the "source changed" event;
// warnings and errors go to stderr as they are.
const logger = pino(
  { name: 'trellis-bench-server', level: 'info', base: undefined },
  {
    write(line: string): void {
      const at = now();
      const entry = JSON.parse(line) as { level: number; msg?: string; generation?: number; errors?: number };
      if (entry.msg === 'static resources loaded')
        emit({ event: 'loaded', at, uptimeMs: performance.now(), generation: entry.generation, errors: entry.errors });
      else if (entry.level >= 40) process.stderr.write(line);
    },
  },
);

const cp = await startControlPlane({
  logger,
  host: '127.0.0.1',
  xdsPort: 0,
  monitoringPort: 0,
  staticResources: values['static-resources'],
  debounceQuietMs: parseDuration(values['debounce-after']),
  debounceMaxMs: parseDuration(values['debounce-max']),
  processMetrics: true,
});
releaseYoungGeneration(); // listening: V8's defaults from here, as trellis control-plane
cp.controller.on('pushed', ({ streams, durationMs }) => {
  emit({
    event: 'pushed',
    at: now(),
    durationMs,
    streams,
    encodeCount: cp.controller.cache.encodeCount,
    cacheSize: cp.controller.cache.size,
  });
});
emit({ event: 'listening', xdsPort: cp.xdsPort, monitoringPort: cp.monitoringPort, pid: process.pid });

answerCommands(cp, emit);

let closing = false;
process.on('SIGTERM', () => {
  if (closing) process.exit(1);
  closing = true;
  const force = setTimeout(() => process.exit(0), 5_000);
  cp.close().then(
    () => {
      clearTimeout(force);
      process.exit(0);
    },
    () => process.exit(1),
  );
});
