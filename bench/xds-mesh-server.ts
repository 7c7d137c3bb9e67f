// The control plane under the `xds-mesh` benchmark, in its own process (its RSS and CPU are its own):
//   node --import tsx bench/xds-mesh-server.ts --config-dir DIR [--debounce-after 100ms]
// startControlPlane() in local mode, as `trellis control-plane --config-dir` runs it, with a logger that keeps
// the run quiet and reports as JSON lines on stdout (the events bench/server-process.ts reads):
//   {"event":"listening",…}  {"event":"snapshot","at":…,"version":…}  {"event":"pushed","at":…,…}
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
    'config-dir': { type: 'string' },
    'debounce-after': { type: 'string', default: '100ms' },
    'debounce-max': { type: 'string', default: '10s' },
  },
});
if (!values['config-dir']) throw new Error('--config-dir DIR is required');

const now = (): number => performance.timeOrigin + performance.now();
const emit = (event: Record<string, unknown>): void => {
  process.stdout.write(JSON.stringify(event) + '\n');
};

const logger = pino(
  { name: 'trellis-bench-mesh-server', level: 'info', base: undefined },
  {
    write(line: string): void {
      const at = now();
      const entry = JSON.parse(line) as { level: number; msg?: string; version?: number };
      if (entry.msg === 'mesh snapshot') emit({ event: 'snapshot', at, version: entry.version });
      else if (entry.level >= 40) process.stderr.write(line);
    },
  },
);

const cp = await startControlPlane({
  logger,
  host: '127.0.0.1',
  xdsPort: 0,
  monitoringPort: 0,
  configDir: values['config-dir'],
  debounceQuietMs: parseDuration(values['debounce-after']),
  debounceMaxMs: parseDuration(values['debounce-max']),
  processMetrics: true,
  // A full config of this mesh is several MiB per type; the clients accept 64 MiB.
  maxMessageBytes: 64 * 1024 * 1024,
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
