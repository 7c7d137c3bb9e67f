// `npm run bench -- kube-status`: Kubernetes mode against a real kube-apiserver (test/helpers/cluster.ts:
// etcd + kube-apiserver from `npm run peers`). Creates --services Services, EndpointSlices,
// VirtualServices and DestinationRules, starts `trellis control-plane --kubeconfig` in its own process,
// and reports (issue 14, "the Kubernetes path"):
// - time until /readyz, and until every VirtualService and DestinationRule has `Accepted=True` for its
//   generation (seen by an informer in this process: the status as the API server has it);
// - rebuilds of the mesh snapshot per status echo (goal 0), from the control plane's /metrics;
// - CPU of the control plane per endpoint change (--changes EndpointSlice edits, one at a time, each
//   awaited until its snapshot is published, read from the control plane's log).
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import type { KubeConfig } from '@kubernetes/client-node';
import { kubeRequest } from '../control-plane/kube/http.js';
import { Informer, type KubeObject } from '../control-plane/kube/informer.js';
import { silentLogger } from '../control-plane/logger.js';
import { freePort, peersStatus, startCluster, type Cluster } from '../test/helpers/cluster.js';
import { installCrds } from '../test/kube/kube-helpers.js';
import {
  fmt,
  fmtInt,
  mib,
  positiveInt,
  repoRoot,
  summarize,
  UsageError,
  type BenchResult,
  type Benchmark,
} from './report.js';
import { metricSums, processCpuMs, processMemory } from './server-process.js';

const USAGE =
  'npm run bench -- kube-status [--services 1000] [--changes 20] [--timeout 900] [--checkout DIR (the control plane of another tree, for a before/after)]';

const ROUTING = '/apis/networking.trellis.dev/v1alpha1';

/** Runs `jobs` with at most `limit` in flight. */
async function pool<T>(items: readonly T[], limit: number, job: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await job(items[next++]!);
    }),
  );
}

function objectsOf(i: number, ns: string): { path: string; body: unknown }[] {
  const name = `svc-${String(i).padStart(4, '0')}`;
  return [
    {
      path: `/api/v1/namespaces/${ns}/services`,
      body: {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name },
        spec: { selector: { app: name }, ports: [{ name: 'http', port: 8080, targetPort: 9080 }] },
      },
    },
    {
      path: `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`,
      body: {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: `${name}-1`, labels: { 'kubernetes.io/service-name': name } },
        addressType: 'IPv4',
        ports: [{ name: 'http', port: 9080, protocol: 'TCP' }],
        endpoints: [0, 1, 2].map((e) => ({
          addresses: [`10.${Math.floor(i / 250)}.${i % 250}.${e + 1}`],
          conditions: { ready: true },
        })),
      },
    },
    {
      path: `${ROUTING}/namespaces/${ns}/virtualservices`,
      body: {
        apiVersion: 'networking.trellis.dev/v1alpha1',
        kind: 'VirtualService',
        metadata: { name },
        spec: {
          hosts: [name],
          http: [{ timeout: '2s', retries: { attempts: 2 }, route: [{ destination: { host: name, subset: 'v1' } }] }],
        },
      },
    },
    {
      path: `${ROUTING}/namespaces/${ns}/destinationrules`,
      body: {
        apiVersion: 'networking.trellis.dev/v1alpha1',
        kind: 'DestinationRule',
        metadata: { name },
        spec: {
          host: name,
          trafficPolicy: { connectionPool: { tcp: { maxConnections: 100 } } },
          subsets: [{ name: 'v1', labels: { version: 'v1' } }],
        },
      },
    },
  ];
}

interface RoutingJson extends KubeObject {
  readonly status?: {
    readonly observedGeneration?: number;
    readonly conditions?: readonly { type: string; status: string; observedGeneration?: number }[];
  };
}

function acceptedForGeneration(o: RoutingJson | undefined): boolean {
  if (!o) return false;
  const c = o.status?.conditions?.find((x) => x.type === 'Accepted');
  return c?.status === 'True' && o.status?.observedGeneration === o.metadata?.generation;
}

/** Every routing object of `ns`, followed by informers; `done()` when each one is Accepted for its generation. */
async function followStatuses(kubeConfig: KubeConfig, ns: string, expected: number) {
  const informers = ['virtualservices', 'destinationrules'].map(
    (plural) =>
      new Informer<RoutingJson>({
        kubeConfig,
        kind: plural,
        path: `${ROUTING}/namespaces/${ns}/${plural}`,
        logger: silentLogger,
        batchMs: 50,
      }),
  );
  let accepted = 0;
  const seen = new Set<string>();
  for (const informer of informers) {
    informer.onBatch((batch) => {
      for (const c of batch.changes) {
        const key = `${informer.kind}/${c.key}`;
        const ok = acceptedForGeneration(c.current);
        if (ok && !seen.has(key)) {
          seen.add(key);
          accepted += 1;
        } else if (!ok && seen.delete(key)) accepted -= 1;
      }
    });
    informer.start();
  }
  await Promise.all(informers.map((i) => i.whenSynced()));
  return {
    accepted: () => accepted,
    done: () => accepted >= expected,
    stop: () => Promise.all(informers.map((i) => i.stop())),
  };
}

interface ControlPlaneProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly monitoringPort: number;
  /** Throws when the process has exited. */
  alive(): void;
  /** 'mesh snapshot' log lines so far (one per published snapshot). */
  snapshots(): number;
  nextSnapshot(after: number, timeoutMs: number): Promise<void>;
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

async function startControlPlaneProcess(cluster: Cluster, checkout: string): Promise<ControlPlaneProcess> {
  const monitoringPort = await freePort();
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'control-plane/main.ts',
      'control-plane',
      '--kubeconfig',
      cluster.kubeconfigPath,
      '--xds-port',
      '0',
      '--monitoring-port',
      String(monitoringPort),
      '--log-level',
      'info',
    ],
    { cwd: checkout, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let exitCode: number | string | undefined;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exitCode = code ?? signal ?? 'unknown';
      resolve();
    }),
  );
  let snapshots = 0;
  const waiters = new Set<() => void>();
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    let entry: { msg?: string; level?: number };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      return;
    }
    if (entry.msg === 'mesh snapshot') {
      snapshots += 1;
      for (const w of [...waiters]) w();
    } else if ((entry.level ?? 0) >= 50) process.stderr.write(`control plane: ${line}\n`);
  });
  child.stderr!.on('data', (d: Buffer) => process.stderr.write(d));
  return {
    child,
    pid: child.pid!,
    monitoringPort,
    alive: () => {
      if (exitCode !== undefined) throw new Error(`the control plane exited (${exitCode}); its stderr is above`);
    },
    snapshots: () => snapshots,
    nextSnapshot: (after, timeoutMs) =>
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (snapshots <= after) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no snapshot published within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    metrics: async () => {
      const res = await fetch(`http://127.0.0.1:${monitoringPort}/metrics`);
      return res.text();
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function poll<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 100,
  alive: () => void = () => undefined,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    alive();
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const METRICS = [
  'trellis_mesh_rebuilds_total',
  'trellis_kube_events_total',
  'trellis_status_writes_total',
  'trellis_mesh_rebuild_duration_seconds_sum',
  'trellis_status_write_duration_seconds_sum',
  'trellis_status_write_duration_seconds_count',
] as const;

/** The counters of interest, with the labelled ones split. */
function readMetrics(text: string) {
  const sums = metricSums(text, METRICS);
  const labelled = (name: string, label: string, value: string): number => {
    const re = new RegExp(`^${name}\\{[^}]*${label}="${value}"[^}]*\\}\\s+(\\S+)`, 'gm');
    let total = 0;
    for (const m of text.matchAll(re)) total += Number(m[1]);
    return total;
  };
  return {
    rebuilds: sums.trellis_mesh_rebuilds_total!,
    published: labelled('trellis_mesh_rebuilds_total', 'result', 'published'),
    ignored: labelled('trellis_kube_events_total', 'effect', 'ignored'),
    applied: labelled('trellis_kube_events_total', 'effect', 'rebuild'),
    written: labelled('trellis_status_writes_total', 'result', 'written'),
    conflicts: labelled('trellis_status_writes_total', 'result', 'conflict'),
    errors: labelled('trellis_status_writes_total', 'result', 'error'),
    rebuildSeconds: sums.trellis_mesh_rebuild_duration_seconds_sum!,
    writeSeconds: sums.trellis_status_write_duration_seconds_sum!,
    writeCount: sums.trellis_status_write_duration_seconds_count!,
  };
}

export const kubeStatus: Benchmark = {
  name: 'kube-status',
  description:
    'Kubernetes mode on a real API server: time until every VirtualService/DestinationRule status is written, rebuilds per status echo, CPU per endpoint change',
  usage: USAGE,
  async run(argv, progress): Promise<BenchResult> {
    const { values } = parseArgs({
      args: [...argv],
      options: {
        services: { type: 'string', default: '1000' },
        changes: { type: 'string', default: '20' },
        timeout: { type: 'string', default: '900' },
        checkout: { type: 'string', default: repoRoot },
      },
    });
    const services = positiveInt('services', values.services);
    const changes = positiveInt('changes', values.changes);
    const timeoutMs = positiveInt('timeout', values.timeout) * 1000;
    const peers = peersStatus();
    if (!peers.ok) throw new UsageError(peers.message ?? 'the Kubernetes peers are not built (npm run peers)');

    progress.phase('starting etcd + kube-apiserver');
    const cluster = await startCluster({ serviceCidr: '10.0.0.0/16' });
    let cp: ControlPlaneProcess | undefined;
    let follower: Awaited<ReturnType<typeof followStatuses>> | undefined;
    try {
      await installCrds(cluster);
      const ns = await cluster.createNamespace('bench');
      progress.phase(`creating ${services} Services, EndpointSlices, VirtualServices and DestinationRules`);
      const createStart = performance.now();
      const jobs = Array.from({ length: services }, (_, i) => objectsOf(i, ns)).flat();
      let created = 0;
      await pool(jobs, 32, async (job) => {
        await kubeRequest(cluster.kubeConfig, { method: 'POST', path: job.path, body: job.body });
        created += 1;
        progress.update(`created ${created}/${jobs.length}`);
      });
      const createSeconds = (performance.now() - createStart) / 1000;
      follower = await followStatuses(cluster.kubeConfig, ns, 2 * services);

      progress.phase('starting trellis control-plane --kubeconfig');
      const started = performance.now();
      cp = await startControlPlaneProcess(cluster, values.checkout);
      const proc = cp;
      await poll(
        '/readyz',
        async () => ((await fetch(`http://127.0.0.1:${proc.monitoringPort}/readyz`)).ok ? true : undefined),
        timeoutMs,
        50,
        () => proc.alive(),
      );
      const readyMs = performance.now() - started;
      const atReady = readMetrics(await cp.metrics());
      const cpuAtReady = processCpuMs(cp.pid);
      const f = follower;
      await poll(
        'every status Accepted',
        async () => {
          progress.update(`statuses Accepted: ${f.accepted()}/${2 * services}`);
          return f.done() ? true : undefined;
        },
        timeoutMs,
        100,
        () => proc.alive(),
      );
      const statusMs = performance.now() - started;
      const cpuAtStatuses = processCpuMs(cp.pid);
      // Let the last echoes arrive: the counters stay put for a second.
      let last = '';
      await poll(
        'quiet counters',
        async () => {
          const m = JSON.stringify(readMetrics(await proc.metrics()));
          const same = m === last;
          last = m;
          return same ? true : undefined;
        },
        60_000,
        1000,
      );
      const converged = readMetrics(await cp.metrics());
      const memory = processMemory(cp.pid);

      progress.phase(`${changes} endpoint changes, one at a time`);
      const latencies: number[] = [];
      const cpuBefore = processCpuMs(cp.pid);
      for (let c = 0; c < changes; c++) {
        const i = c % services;
        const name = `svc-${String(i).padStart(4, '0')}-1`;
        const seen = cp.snapshots();
        const t0 = performance.now();
        await kubeRequest(cluster.kubeConfig, {
          method: 'PATCH',
          path: `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices/${name}`,
          contentType: 'application/merge-patch+json',
          body: {
            endpoints: [{ addresses: [`10.200.${c % 250}.${(c % 200) + 1}`], conditions: { ready: true } }],
          },
        });
        await cp.nextSnapshot(seen, 30_000);
        latencies.push(performance.now() - t0);
      }
      const cpuPerChange = (processCpuMs(cp.pid) - cpuBefore) / changes;
      const afterChanges = readMetrics(await cp.metrics());
      const lat = summarize(latencies);

      const writes = converged.written;
      const echoRebuilds = converged.rebuilds - atReady.rebuilds;
      const rows = [
        [
          fmtInt(2 * services),
          fmt(createSeconds, 1),
          fmt(readyMs / 1000, 2),
          fmt(statusMs / 1000, 2),
          fmtInt(writes),
          fmtInt(converged.conflicts),
          fmtInt(converged.errors),
          fmtInt(converged.rebuilds),
          fmt(writes > 0 ? echoRebuilds / writes : 0, 3),
          fmtInt(converged.ignored),
          fmt((cpuAtStatuses - cpuAtReady) / 1000, 2),
          fmt(cpuAtStatuses / 1000, 2),
          mib(memory.hwm),
        ],
      ];
      return {
        name: 'kube-status',
        title: `kube-status: ${services} Services, EndpointSlices, VirtualServices and DestinationRules on a real kube-apiserver`,
        params: { services, changes, timeoutMs, checkout: values.checkout },
        tables: [
          {
            title: 'Start: ready, then every VirtualService and DestinationRule Accepted for its generation',
            columns: [
              'routing objects',
              'create s',
              'ready s',
              'all Accepted s',
              'status writes',
              'conflicts',
              'errors',
              'rebuilds',
              'rebuilds per status echo',
              'events ignored',
              'CPU s ready→Accepted',
              'CPU s total',
              'peak RSS',
            ],
            rows,
            notes: [
              'Times from the spawn of `trellis control-plane --kubeconfig`; "all Accepted" is when an informer in the benchmark process has seen every status (the echo included).',
              'rebuilds per status echo = (rebuilds after convergence − rebuilds at ready) / status writes (goal 0); events ignored: object changes the model does not read (trellis_kube_events_total{effect="ignored"}).',
            ],
          },
          {
            title: `One endpoint change (an EndpointSlice PATCH), ${changes} times in a row`,
            columns: ['changes', 'CPU ms per change', 'PATCH → snapshot p50 ms', 'p99 ms', 'rebuild s (sum)'],
            rows: [
              [
                fmtInt(changes),
                fmt(cpuPerChange, 1),
                fmt(lat.p50, 1),
                fmt(lat.p99, 1),
                fmt(afterChanges.rebuildSeconds - converged.rebuildSeconds, 2),
              ],
            ],
            notes: [
              'CPU of the control-plane process (utime+stime, 10 ms ticks) over all changes / changes; no proxy is connected, so this is the source and model side.',
            ],
          },
        ],
        notes: [],
        data: { createSeconds, readyMs, statusMs, atReady, converged, afterChanges, latencies, cpuPerChange, memory },
      };
    } finally {
      await follower?.stop();
      await cp?.stop();
      await cluster.stop();
    }
  },
};
