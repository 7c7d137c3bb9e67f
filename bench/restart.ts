// `npm run bench -- restart`: kill -9 of `trellis control-plane` under 1,000 connected ADS streams, and the
// time until every proxy has resynced after a restart (bench/restart-scenario.ts does the run).
import { parseArgs } from 'node:util';
import type { Protocol } from './ads-sim.js';
import {
  fmt,
  fmtInt,
  positiveInt,
  summarize,
  UsageError,
  type BenchResult,
  type Benchmark,
  type Progress,
  type Table,
} from './report.js';
import { runRestart, type RestartResult } from './restart-scenario.js';

const USAGE =
  'npm run bench -- restart [--protocol delta|sotw|both] [--streams 1000] [--connections 50] [--clusters 100] ' +
  '[--endpoints 3] [--backoff 1000,5000] [--timeout 600s]';

function verdict(r: RestartResult): string {
  const n = r.options.streams;
  const ok =
    Object.keys(r.hashesBefore).length === 1 &&
    r.endCodes.UNAVAILABLE === n &&
    r.keptConfig === n &&
    r.sameHash === n &&
    r.endedAgain === 0 &&
    r.errors.length === 0;
  return ok ? 'yes' : 'NO';
}

export const restart: Benchmark = {
  name: 'restart',
  description:
    'kill -9 of the control plane under 1,000 ADS streams: config kept, time until all resync after a restart',
  usage: USAGE,
  async run(argv, progress: Progress): Promise<BenchResult> {
    const { values } = parseArgs({
      args: [...argv],
      options: {
        protocol: { type: 'string', default: 'both' },
        streams: { type: 'string', default: '1000' },
        connections: { type: 'string', default: '50' },
        clusters: { type: 'string', default: '100' },
        endpoints: { type: 'string', default: '3' },
        backoff: { type: 'string', default: '1000,5000' },
        timeout: { type: 'string', default: '600s' },
      },
      strict: true,
    });
    const protocols: Protocol[] =
      values.protocol === 'both'
        ? ['delta', 'sotw']
        : values.protocol === 'delta' || values.protocol === 'sotw'
          ? [values.protocol]
          : [];
    if (protocols.length === 0) throw new UsageError('--protocol must be delta, sotw or both');
    const streams = positiveInt('streams', values.streams);
    const connections = positiveInt('connections', values.connections);
    const clusters = positiveInt('clusters', values.clusters);
    const endpoints = positiveInt('endpoints', values.endpoints);
    const backoff = values.backoff.split(',').map((v) => positiveInt('backoff', v));
    if (backoff.length !== 2) throw new UsageError('--backoff is INITIAL_MS,MAX_MS');
    const timeout = /^(\d+)s$/.exec(values.timeout);
    if (!timeout) throw new UsageError('--timeout is a number of seconds, e.g. 600s');

    const results: RestartResult[] = [];
    for (const protocol of protocols) {
      progress.phase(`restart: ${protocol}, ${streams} streams`);
      results.push(
        await runRestart({
          protocol,
          streams,
          connections,
          clusters,
          endpoints,
          timeoutMs: Number(timeout[1]) * 1000,
          reconnectBackoffMs: { initial: backoff[0]!, max: backoff[1]! },
          progress: (m) => progress.phase(`restart (${protocol}): ${m}`),
        }),
      );
    }

    const behaviour: Table = {
      title: 'Fail static: what the proxies saw',
      columns: [
        'protocol',
        'streams',
        'stream ended with',
        'config kept at the end',
        'same hash after resync',
        'distinct hashes before → after',
        'all good',
      ],
      rows: results.map((r) => [
        r.options.protocol,
        fmtInt(r.options.streams),
        Object.entries(r.endCodes)
          .map(([code, count]) => `${code} ×${fmtInt(count)}`)
          .join(', '),
        fmtInt(r.keptConfig),
        fmtInt(r.sameHash),
        `${Object.keys(r.hashesBefore).length} → ${Object.keys(r.hashesAfter).length}`,
        verdict(r),
      ]),
      notes: [
        "config hash: SHA-256 over every resource a stream holds (type, name, version, the Any bytes the server sent) and, in SotW, each type's version_info; taken before the kill, right after the stream ended, and after the resync.",
      ],
    };
    const times: Table = {
      title: 'Times (ms)',
      columns: [
        'protocol',
        'first connect (all streams)',
        'kill → all streams ended',
        'restart → listening',
        'listening → resync p50',
        'p99',
        'last',
        'kill → last resync',
        'control-plane CPU, restart → last resync',
      ],
      rows: results.map((r) => {
        const s = summarize(r.resyncMs);
        return [
          r.options.protocol,
          fmt(r.connectMs, 0),
          fmt(r.allEndedMs, 0),
          fmt(r.restartToListeningMs, 0),
          fmt(s.p50, 0),
          fmt(s.p99, 0),
          fmt(s.max, 0),
          fmt(r.killToLastResyncMs, 0),
          fmt(r.restartCpuMs, 0),
        ];
      }),
      notes: [
        'restart → listening: spawn of `node --import tsx control-plane/main.ts control-plane` until its `control plane listening` log line (process start, module loading, the static file read).',
        `listening → resync: per stream, until it has received and ACKed all four types on its new stream with the whole subscription held. Includes the clients' grpc-js reconnect backoff (initial ${backoff[0]} ms, max ${backoff[1]} ms, jittered): a connection that failed while the control plane was away waits out its current backoff step.`,
      ],
    };
    return {
      name: 'restart',
      title: `kill -9 of trellis control-plane under ${fmtInt(streams)} ADS streams, and the resync after a restart`,
      params: { protocols, streams, connections, clusters, endpoints, backoff, timeout: values.timeout },
      tables: [behaviour, times],
      notes: [
        `Static mode: \`trellis control-plane --static-resources F\` (bench/fixture.ts: ${clusters} EDS clusters with ${endpoints} endpoints each, one listener, one route configuration) on a fixed port, killed with SIGKILL and started again on the same port. Clients: bench/resync-fleet.ts in this process, ${streams} streams over ${connections} HTTP/2 connections, Envoy's subscription order, every response ACKed; a stream that ends opens a new one with waitForReady at once.`,
      ],
      data: results,
    };
  },
};
