// kill -9 of `trellis control-plane` (static mode, a real process) under N connected ADS streams, then a
// restart on the same port. Shared by `npm run bench -- restart` and test/e2e/restart.test.ts.
//
//   1. Write the fixture (bench/fixture.ts) as a static-resources file; start the control plane on a fixed
//      free port; connect the fleet (bench/resync-fleet.ts) and wait until every stream has its config.
//   2. SIGKILL the process. Every stream ends; the proxies keep what they hold.
//   3. Start the control plane again, same file, same port. Every stream reconnects (grpc-js backoff) and
//      is sent its config again.
//
// It measures, and leaves the verdicts to the caller: how each stream ended, its hash right after and after
// the resync, and the times.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePorts } from '../test/helpers/mesh-e2e.js';
import { startTrellis, type TrellisProcess } from '../test/helpers/process.js';
import type { Protocol } from './ads-sim.js';
import { Fixture, ROUTE_NAME } from './fixture.js';
import { ResyncFleet } from './resync-fleet.js';
import { processCpuMs } from './server-process.js';

export interface RestartOptions {
  readonly protocol: Protocol;
  readonly streams: number;
  readonly connections: number;
  readonly clusters: number;
  readonly endpoints: number;
  /** Deadline of each phase (connect, streams ended, resync), ms. */
  readonly timeoutMs: number;
  /** grpc-js reconnect backoff of the clients (initial, max ms); grpc-js's defaults are 1 s and 120 s. */
  readonly reconnectBackoffMs: { readonly initial: number; readonly max: number };
  readonly progress?: (message: string) => void;
}

export interface RestartResult {
  readonly options: Omit<RestartOptions, 'progress'>;
  /** ms for every stream to have its whole config, first start. */
  readonly connectMs: number;
  /** Distinct config hashes before the kill → streams holding each. */
  readonly hashesBefore: Record<string, number>;
  /** How the streams ended at the kill: status code name → count. */
  readonly endCodes: Record<string, number>;
  /** Streams whose hash right after their stream ended equals their hash before the kill. */
  readonly keptConfig: number;
  /** ms from the SIGKILL until every stream had ended. */
  readonly allEndedMs: number;
  /** ms from the second start (spawn) until its `control plane listening` line. */
  readonly restartToListeningMs: number;
  /** Per stream, ms from `listening` of the restarted process to its complete resync. */
  readonly resyncMs: readonly number[];
  /** ms from the SIGKILL until the last stream had resynced. */
  readonly killToLastResyncMs: number;
  /** Distinct config hashes after the resync → streams holding each. */
  readonly hashesAfter: Record<string, number>;
  /** Streams whose hash after the resync equals their hash before the kill. */
  readonly sameHash: number;
  /** Streams that ended more than once (a second end is not the kill's). */
  readonly endedAgain: number;
  /** CPU of the restarted control plane from its start to the last resync, ms. */
  readonly restartCpuMs: number;
  readonly errors: readonly string[];
}

async function startControlPlane(args: readonly string[]): Promise<{ proc: TrellisProcess; listeningMs: number }> {
  const t0 = performance.now();
  const proc = startTrellis(args);
  await proc.waitForLog((l) => l.msg === 'control plane listening', 120_000);
  return { proc, listeningMs: performance.now() - t0 };
}

function countBy(values: Iterable<string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

export async function runRestart(options: RestartOptions): Promise<RestartResult> {
  const say = options.progress ?? (() => undefined);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-restart-'));
  const fixture = new Fixture({ clusters: options.clusters, endpoints: options.endpoints });
  const file = path.join(dir, 'static-resources.json');
  await fs.writeFile(file, fixture.text());
  const [xdsPort, monitoringPort] = (await freePorts(2)) as [number, number];
  const args = [
    'control-plane',
    '--static-resources',
    file,
    '--xds-port',
    String(xdsPort),
    '--monitoring-port',
    String(monitoringPort),
  ];
  let proc: TrellisProcess | undefined;
  let fleet: ResyncFleet | undefined;
  try {
    say(`starting trellis control-plane on 127.0.0.1:${xdsPort}`);
    proc = (await startControlPlane(args)).proc;
    say(`connecting ${options.streams} ${options.protocol} streams over ${options.connections} connections`);
    const t0 = performance.now();
    const f = (fleet = new ResyncFleet({
      target: `127.0.0.1:${xdsPort}`,
      protocol: options.protocol,
      streams: options.streams,
      connections: options.connections,
      clusterNames: fixture.clusterNames,
      routeNames: [ROUTE_NAME],
      reconnectBackoffMs: options.reconnectBackoffMs,
    }));
    const n = options.streams;
    await f.until(
      () => f.completeOn(1) === n,
      options.timeoutMs,
      () =>
        `${n - f.completeOn(1)} of ${n} streams had no config within ${options.timeoutMs} ms: ${f.errors.join('; ')}`,
    );
    const connectMs = performance.now() - t0;
    const before = f.streams.map((s) => s.hash());

    say(`kill -9 ${proc.child.pid}`);
    const killedAt = performance.now();
    proc.child.kill('SIGKILL');
    await proc.exited;
    await f.until(
      () => f.endedTimes(1) === n,
      options.timeoutMs,
      () => `${n - f.endedTimes(1)} streams did not end within ${options.timeoutMs} ms of the kill`,
    );
    const allEndedMs = performance.now() - killedAt;
    const firstEnds = f.streams.map((s) => s.ends[0]!);

    say('restarting trellis control-plane on the same port');
    const restarted = await startControlPlane(args);
    proc = restarted.proc;
    const listeningAt = performance.now();
    const cpuBefore = processCpuMs(proc.child.pid!);
    await f.until(
      () => f.completeOn(2) === n || f.streams.some((s) => s.epoch > 2),
      options.timeoutMs,
      () => `${n - f.completeOn(2)} of ${n} streams had not resynced within ${options.timeoutMs} ms`,
    );
    const lastAt = performance.now();
    const restartCpuMs = processCpuMs(proc.child.pid!) - cpuBefore;
    const after = f.streams.map((s) => s.hash());
    return {
      options: {
        protocol: options.protocol,
        streams: n,
        connections: options.connections,
        clusters: options.clusters,
        endpoints: options.endpoints,
        timeoutMs: options.timeoutMs,
        reconnectBackoffMs: options.reconnectBackoffMs,
      },
      connectMs,
      hashesBefore: countBy(before),
      endCodes: countBy(firstEnds.map((e) => e.code)),
      keptConfig: firstEnds.filter((e, i) => e.hashAfter === before[i]).length,
      allEndedMs,
      restartToListeningMs: restarted.listeningMs,
      resyncMs: f.streams.map((s) => s.completeAt - listeningAt),
      killToLastResyncMs: lastAt - killedAt,
      hashesAfter: countBy(after),
      sameHash: after.filter((h, i) => h === before[i]).length,
      endedAgain: f.streams.filter((s) => s.ends.length > 1).length,
      restartCpuMs,
      errors: [...f.errors],
    };
  } finally {
    fleet?.close();
    await proc?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
}
