// A real Prometheus (tools/peers/prometheus, built by `npm run peers -- prometheus`) for tests: it binds
// 127.0.0.1 on a free port, keeps its TSDB in a fresh temporary folder, scrapes the given targets (static
// configs, one job each) every `scrapeIntervalMs`, and answers PromQL through its HTTP API.
//
//   const prom = await startPrometheus({ targets: [{ job: 'trellisd', address: `127.0.0.1:${port}` }] });
//   await prom.waitForScrape('trellisd');                  // the target is up (one scrape went through)
//   const [sample] = await prom.query('sum(trellis_xds_acks_total)');
//   await prom.stop();
//
// The process runs in its own process group and is killed with it at stop() or when the test process
// exits. Readiness is polled (`/-/ready`) with a deadline; nothing sleeps.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../tools/cluster/http.js';
import { peerBinary } from './peer-paths.js';

export interface ScrapeTarget {
  readonly job: string;
  /** `host:port`; loopback only. */
  readonly address: string;
  /** Default `/metrics`. */
  readonly metricsPath?: string;
}

export interface PrometheusOptions {
  readonly targets: readonly ScrapeTarget[];
  /** Default 1,000 ms (Prometheus accepts down to 1 ms; a second keeps the load low). */
  readonly scrapeIntervalMs?: number;
  /** The binary; default the built peer. */
  readonly binary?: string;
}

/** One series of an instant vector. */
export interface PromSample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface PrometheusTargetHealth {
  readonly job: string;
  readonly health: 'up' | 'down' | 'unknown';
  readonly lastError: string;
  readonly scrapeUrl: string;
}

export interface Prometheus {
  readonly url: string;
  readonly pid: number;
  /** Runs an instant PromQL query (`/api/v1/query`); throws with Prometheus's error. Vector or scalar results. */
  query(promql: string): Promise<PromSample[]>;
  /** The active targets and their health (`/api/v1/targets`). */
  targets(): Promise<PrometheusTargetHealth[]>;
  /** Resolves once every target of `job` is up (scraped successfully), within `timeoutMs`. */
  waitForScrape(job: string, timeoutMs?: number): Promise<void>;
  /**
   * Resolves with the first result of `promql` that `accept` takes, polling (twice per scrape interval)
   * until `timeoutMs`; throws with the last result otherwise.
   */
  waitForQuery(promql: string, accept: (samples: PromSample[]) => boolean, timeoutMs?: number): Promise<PromSample[]>;
  stop(): Promise<void>;
}

/** The Prometheus peer binary, or undefined when it is not built. */
export function prometheusBinary(): string | undefined {
  return peerBinary('prometheus');
}

/** Why Prometheus tests cannot run here, or undefined when they can. */
export function prometheusMissing(): string | undefined {
  return prometheusBinary()
    ? undefined
    : 'the Prometheus peer is not built: run `npm run peers -- prometheus` (needs Go and the module proxy)';
}

/** The scrape configuration: one job per target, static configs, the given interval. */
export function prometheusConfig(targets: readonly ScrapeTarget[], scrapeIntervalMs: number): string {
  const interval = `${scrapeIntervalMs}ms`;
  const lines = ['global:', `  scrape_interval: ${interval}`, `  scrape_timeout: ${interval}`, 'scrape_configs:'];
  for (const t of targets) {
    lines.push(
      `  - job_name: ${JSON.stringify(t.job)}`,
      `    metrics_path: ${JSON.stringify(t.metricsPath ?? '/metrics')}`,
      '    static_configs:',
      `      - targets: [${JSON.stringify(t.address)}]`,
    );
  }
  return lines.join('\n') + '\n';
}

/** Calls `probe` every `everyMs` until it returns true; rejects after `timeoutMs` naming `what`. */
async function poll(what: string, probe: () => Promise<boolean>, timeoutMs: number, everyMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

interface ApiAnswer<T> {
  readonly status: 'success' | 'error';
  readonly data?: T;
  readonly error?: string;
}

async function api<T>(url: string): Promise<T> {
  const res = await fetch(url);
  const body = (await res.json()) as ApiAnswer<T>;
  if (body.status !== 'success') throw new Error(`prometheus ${url}: ${body.error ?? res.status}`);
  return body.data as T;
}

export async function startPrometheus(options: PrometheusOptions): Promise<Prometheus> {
  const binary = options.binary ?? prometheusBinary();
  if (!binary) throw new Error(prometheusMissing());
  const intervalMs = options.scrapeIntervalMs ?? 1_000;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-prometheus-'));
  const configFile = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(configFile, prometheusConfig(options.targets, intervalMs));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const log = fs.openSync(path.join(dir, 'prometheus.log'), 'a');
  const child = spawn(
    binary,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { cwd: dir, detached: true, stdio: ['ignore', log, log] },
  );
  fs.closeSync(log);
  running.add(child);
  let exited: string | undefined;
  const gone = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = `exited (${signal ?? code})`;
      running.delete(child);
      resolve();
    }),
  );
  const logTail = (): string => {
    try {
      return fs.readFileSync(path.join(dir, 'prometheus.log'), 'utf8').split('\n').slice(-20).join('\n');
    } catch {
      return '';
    }
  };
  const stop = async (): Promise<void> => {
    if (exited === undefined) {
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        // already gone
      }
      const killer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }, 5_000);
      await gone;
      clearTimeout(killer);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await poll(
      'prometheus /-/ready',
      async () => {
        if (exited !== undefined) throw new Error(`prometheus ${exited}:\n${logTail()}`);
        try {
          return (await fetch(`${url}/-/ready`)).status === 200;
        } catch {
          return false;
        }
      },
      60_000,
      100,
    );
  } catch (err) {
    await stop();
    throw err;
  }

  const query = async (promql: string): Promise<PromSample[]> => {
    const data = await api<{ resultType: string; result: unknown }>(
      `${url}/api/v1/query?query=${encodeURIComponent(promql)}`,
    );
    if (data.resultType === 'scalar') {
      const [, v] = data.result as [number, string];
      return [{ metric: {}, value: Number(v) }];
    }
    return (data.result as { metric: Record<string, string>; value: [number, string] }[]).map((r) => ({
      metric: r.metric,
      value: Number(r.value[1]),
    }));
  };
  const targets = async (): Promise<PrometheusTargetHealth[]> => {
    const data = await api<{
      activeTargets: { labels: { job: string }; health: string; lastError: string; scrapeUrl: string }[];
    }>(`${url}/api/v1/targets?state=active`);
    return data.activeTargets.map((t) => ({
      job: t.labels.job,
      health: t.health as PrometheusTargetHealth['health'],
      lastError: t.lastError,
      scrapeUrl: t.scrapeUrl,
    }));
  };
  const waitForQuery = async (
    promql: string,
    accept: (samples: PromSample[]) => boolean,
    timeoutMs = 30_000,
  ): Promise<PromSample[]> => {
    let last: PromSample[] = [];
    try {
      await poll(
        `PromQL ${promql}`,
        async () => {
          last = await query(promql);
          return accept(last);
        },
        timeoutMs,
        Math.max(100, intervalMs / 2),
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}; last result: ${JSON.stringify(last)}`, { cause: err });
    }
    return last;
  };
  return {
    url,
    pid: child.pid!,
    query,
    targets,
    waitForScrape: async (job, timeoutMs = 30_000) => {
      let last: PrometheusTargetHealth[] = [];
      try {
        await poll(
          `prometheus target ${job} up`,
          async () => {
            last = (await targets()).filter((t) => t.job === job);
            return last.length > 0 && last.every((t) => t.health === 'up');
          },
          timeoutMs,
          Math.max(100, intervalMs / 2),
        );
      } catch (err) {
        throw new Error(`${(err as Error).message}; targets: ${JSON.stringify(last)}`, { cause: err });
      }
    },
    waitForQuery,
    stop,
  };
}
