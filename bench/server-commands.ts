// The stdin commands of the benchmark servers (server.ts, xds-mesh-server.ts), one per line:
//   stats               → {"event":"stats","encodeCount":…,"cacheSize":…,"streams":…}
//   gc                  → a full GC (with --expose-gc), then {"event":"gc","heapUsed":…,"external":…,"rss":…}
//   profile-start       → {"event":"profiling"}: a V8 CPU profile starts, with the sampler `node --cpu-prof` uses
//   profile-stop FILE   → {"event":"profiled","file":…}: the profile of just that window, written to FILE
//   heap-snapshot FILE  → {"event":"heap-snapshot","file":…}: a V8 heap snapshot written to FILE
import fs from 'node:fs';
import { Session } from 'node:inspector/promises';
import readline from 'node:readline';
import v8 from 'node:v8';
import type { startControlPlane } from '../control-plane/control-plane.js';

type ControlPlane = Awaited<ReturnType<typeof startControlPlane>>;

export function answerCommands(cp: ControlPlane, emit: (event: Record<string, unknown>) => void): void {
  let session: Session | undefined;
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    const [command, arg] = line.trim().split(/\s+/, 2);
    void (async () => {
      if (command === 'profile-start') {
        session = new Session();
        session.connect();
        await session.post('Profiler.enable');
        await session.post('Profiler.setSamplingInterval', { interval: Number(process.env.TRELLIS_PROF_US ?? 500) });
        await session.post('Profiler.start');
        emit({ event: 'profiling' });
      } else if (command === 'profile-stop' && session && arg) {
        const { profile } = await session.post('Profiler.stop');
        fs.writeFileSync(arg, JSON.stringify(profile));
        session.disconnect();
        session = undefined;
        emit({ event: 'profiled', file: arg });
      } else if (command === 'heap-snapshot' && arg) {
        v8.writeHeapSnapshot(arg);
        emit({ event: 'heap-snapshot', file: arg });
      } else if (command === 'stats') {
        emit({
          event: 'stats',
          encodeCount: cp.controller.cache.encodeCount,
          cacheSize: cp.controller.cache.size,
          streams: cp.controller.streams.size,
        });
      } else if (command === 'gc') {
        (globalThis as { gc?: () => void }).gc?.();
        const m = process.memoryUsage();
        emit({ event: 'gc', heapUsed: m.heapUsed, external: m.external + m.arrayBuffers, rss: m.rss });
      }
    })().catch((err: unknown) => process.stderr.write(`bench server: ${String(err)}\n`));
  });
}
