// A real single-node Kubernetes cluster with real pods (tools/cluster: etcd, apiserver, controller-manager,
// scheduler, kubelet, kube-proxy, CoreDNS, containerd + runc + CNI), one per test file, for tests that need
// pods to run: injection, the control plane as a Deployment, traffic between pods.
//
// - Only one such cluster can run on a machine (fixed link, namespace, cgroup and kubelet ports): the
//   cluster takes a machine-wide lock (tools/cluster/lock.ts) and a second test file waits for it. Declare
//   the file's tests with `suite.serial` — they share the one cluster.
// - Torn down in test.after.always and, however the test process ends (crash, kill -9), by the reaper,
//   which runs `tools/cluster/cli.ts down` for the cluster's folder.
// - Skipped with one line saying why when the peers, the Debian packages or root are missing, except under
//   CI=true, where that fails the file.
// - TRELLIS_KEEP_CLUSTER=1 keeps the folder (logs) after the file.
//
// Usage:
//   const suite = useLocalCluster(anyTest);
//   suite.serial('a pod runs', async (t, cluster) => { const ns = await cluster.createNamespace('x'); ... });
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext, TestFn } from 'ava';
import { runInNetns, type RunResult } from '../../tools/cluster/exec.js';
import type { ImageTarball } from '../../tools/cluster/images.js';
import { checkPrerequisites, upLocalCluster, type LocalCluster } from '../../tools/cluster/local-cluster.js';
import { tellReaper } from '../../tools/cluster/processes.js';

export type { ImageTarball, LocalCluster };

export interface LocalClusterOptions {
  /** More image tarballs to import (besides pause and the Trellis images of `npm run images`). */
  readonly images?: readonly ImageTarball[];
  /** How long to wait for another test file's cluster to go; 15 min by default. */
  readonly lockWaitMs?: number;
}

export interface PodSummary {
  readonly name: string;
  readonly phase: string;
  readonly ready: string;
  readonly containers: readonly string[];
  readonly initContainers: readonly string[];
}

export interface TestCluster extends LocalCluster {
  /**
   * Creates a namespace `<prefix>-<random>` with `labels` and waits until the controller-manager made its
   * `default` ServiceAccount (pods are refused before that). Returns its name.
   */
  createNamespace(prefix?: string, labels?: Record<string, string>): Promise<string>;
  /** Applies YAML (`kubectl apply -f -`), in `namespace` when given. */
  apply(yaml: string, namespace?: string): Promise<void>;
  /** Runs a command inside the cluster's network namespace (where pod and Service IPs are routed). */
  inNetns(cmd: string, args: readonly string[]): Promise<RunResult>;
  /** `kubectl get -o json` of one object, parsed. */
  getJson<T = unknown>(args: readonly string[]): Promise<T>;
  /** What `kubectl describe`/events say about a namespace's pods: for failure messages. */
  diagnose(namespace: string): Promise<string>;
}

export type LocalClusterTestImpl<C> = (t: ExecutionContext<C>, cluster: TestCluster) => unknown;

export interface LocalClusterSuite<C> {
  /** True when the cluster can run here (or CI=true, where a missing part fails the file). */
  readonly enabled: boolean;
  /** Why it cannot run; empty when it can. */
  readonly problems: readonly string[];
  /** A test that gets the file's cluster, run serially (tests share it). */
  serial(title: string, impl: LocalClusterTestImpl<C>): void;
  /** The running cluster (inside tests and hooks after test.before). */
  cluster(): TestCluster;
}

const tsxLoader = (): string => import.meta.resolve('tsx');
const cliPath = fileURLToPath(new URL('../../tools/cluster/cli.ts', import.meta.url));

function extend(c: LocalCluster): TestCluster {
  const getJson = async <T>(args: readonly string[]): Promise<T> =>
    JSON.parse((await c.kubectl(['get', ...args, '-o', 'json'])).stdout) as T;
  return {
    ...c,
    async createNamespace(prefix = 'test', labels = {}) {
      const name = `${prefix}-${crypto.randomBytes(4).toString('hex')}`;
      const labelArgs = Object.entries(labels).map(([k, v]) => `${k}=${v}`);
      await c.kubectl(['create', 'namespace', name]);
      if (labelArgs.length) await c.kubectl(['label', 'namespace', name, ...labelArgs]);
      const deadline = Date.now() + 60_000;
      for (;;) {
        const r = await c.kubectl(['get', 'serviceaccount', 'default', '-n', name], { allowFailure: true });
        if (r.code === 0) return name;
        if (Date.now() > deadline) throw new Error(`namespace ${name}: no default ServiceAccount after 60 s`);
        await new Promise((res) => setTimeout(res, 200));
      }
    },
    async apply(yaml, namespace) {
      await c.kubectl(['apply', ...(namespace ? ['-n', namespace] : []), '-f', '-'], { input: yaml });
    },
    inNetns: (cmd, args) => runInNetns(c.netnsFile, cmd, args, { allowFailure: true }),
    getJson,
    async diagnose(namespace) {
      const pods = await c.kubectl(['get', 'pods', '-n', namespace, '-o', 'wide'], { allowFailure: true });
      const events = await c.kubectl(['get', 'events', '-n', namespace, '--sort-by=.lastTimestamp'], {
        allowFailure: true,
      });
      return `pods:\n${pods.stdout}${pods.stderr}\nevents:\n${events.stdout.split('\n').slice(-25).join('\n')}`;
    },
  };
}

/**
 * One local cluster for the test file: started in test.before (after waiting for the machine-wide lock),
 * removed in test.after.always and by the reaper however the process ends.
 */
export function useLocalCluster<C>(test: TestFn<C>, options: LocalClusterOptions = {}): LocalClusterSuite<C> {
  const pre = checkPrerequisites();
  const ci = process.env.CI === 'true';
  const enabled = pre.ok || ci;
  let running: TestCluster | undefined;
  const get = (): TestCluster => {
    if (!running) throw new Error('the local cluster is not running (did test.before fail?)');
    return running;
  };
  const file = path.relative(process.cwd(), fileURLToPath(test.meta.file));
  if (enabled) {
    let dir: string | undefined;
    let reaperLine: string | undefined;
    test.before(async (t) => {
      // Waiting for another file's cluster and starting this one take minutes: tell ava's global timeout.
      t.timeout((options.lockWaitMs ?? 15 * 60_000) + 10 * 60_000);
      if (!pre.ok) throw new Error(`the local cluster cannot run here:\n  ${pre.problems.join('\n  ')}`);
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-lc-'));
      // However this process ends, the reaper tears the cluster down.
      reaperLine = `+c ${JSON.stringify([process.execPath, '--import', tsxLoader(), cliPath, 'down', '--dir', dir])}`;
      tellReaper(reaperLine);
      const started = Date.now();
      const cluster = await upLocalCluster({
        dir,
        tied: true,
        lockWaitMs: options.lockWaitMs ?? 15 * 60_000,
        ...(options.images ? { images: options.images } : {}),
        log: (line) => {
          if (/^(waiting for the local cluster|cluster ready)/.test(line)) t.log(line);
        },
      });
      t.log(`local cluster up in ${((Date.now() - started) / 1000).toFixed(1)} s (${file})`);
      running = extend(cluster);
    });
    test.after.always(async (t) => {
      if (!dir) return;
      const keep = process.env.TRELLIS_KEEP_CLUSTER === '1';
      const started = Date.now();
      const report = await (running?.down({ keepDir: keep, background: true }) ??
        import('../../tools/cluster/local-cluster.js').then((m) => m.downLocalCluster(dir, { keepDir: true })));
      if (reaperLine) tellReaper(`-c${reaperLine.slice(2)}`);
      t.log(`local cluster down in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      if (report.leftovers.length) throw new Error(`local cluster teardown left: ${report.leftovers.join(', ')}`);
    });
  } else {
    console.log(`⚠ skipping the tests in ${file}: ${pre.problems.join('; ')}`);
  }
  return {
    enabled,
    problems: pre.problems,
    serial: (title, impl) => {
      const fn = async (t: ExecutionContext<C>): Promise<void> => {
        await impl(t, get());
      };
      if (!enabled) test.skip(title, fn);
      else test.serial(title, fn);
    },
    cluster: get,
  };
}
