// A real Kubernetes control plane (etcd + kube-apiserver) and, on request, a real Jaeger, for tests.
// The binaries come from tools/peers/ (built by `npm run peers`); nothing here is a fake.
//
// - Every server binds 127.0.0.1 on free ports, with data in a fresh temporary folder; all traffic stays on
//   loopback. Webhooks must be registered by URL (https://127.0.0.1:<port>/...) with a caBundle, never by
//   Service (a Service reference makes the apiserver dial a 10.0.0.x ClusterIP).
// - Readiness is polled with deadlines (etcd /health, apiserver /readyz, Jaeger health + query API).
// - Admin access: a static bearer token in group system:masters, written to a kubeconfig.
// - ServiceAccount tokens: TokenRequest and TokenReview work (signing key + issuer flags). There is no
//   kube-controller-manager: createNamespace() also creates the `default` ServiceAccount and the
//   kube-root-ca.crt ConfigMap that its controllers would; deleted namespaces stay Terminating; Pods stay
//   Pending (no kubelet/scheduler). Admission is the apiserver's default set, webhooks included.
// - Everything is stopped by process group at stop(), and also when the test process exits, is interrupted,
//   or is killed outright (a small reaper process watches this one).
//
// Usage in a test file (one cluster per file; tests isolate by namespace):
//   const kube = useCluster(anyTest);                  // or useCluster(anyTest, { jaeger: true })
//   kube.test('does X', async (t, cluster) => { const ns = await cluster.createNamespace('x'); ... });
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { ExecutionContext, TestFn } from 'ava';
import { stringify as toYaml } from 'yaml';
import { freePort, freePorts, request } from '../../tools/cluster/http.js';
import { writeKubeconfig } from '../../tools/cluster/kubeconfig.js';
import { makeKubectl, type KubectlOptions, type KubectlResult } from '../../tools/cluster/kubectl.js';
import { makeCa, signCert, type ServingCert } from '../../tools/cluster/pki.js';
import {
  startProcess,
  stopProcess,
  trackDir,
  untrackDir,
  waitReady,
  withPortRetry,
  type Proc,
} from '../../tools/cluster/processes.js';
import { peerBinary, peerSpecOfBinary, peersCacheRoot } from './peer-paths.js';

export { freePort, request, type HttpResult } from '../../tools/cluster/http.js';
export type { KubectlOptions, KubectlResult, ServingCert };

// ---------------------------------------------------------------------------------------------------------
// Peers: are the binaries there, and what to do when they are not.

export interface ClusterOptions {
  /** Also start Jaeger (all-in-one, memory storage). */
  readonly jaeger?: boolean;
  /** `--service-cluster-ip-range`; 10.0.0.0/24 (254 Services). The kube-status benchmark needs more. */
  readonly serviceCidr?: string;
}

export interface PeersStatus {
  readonly ok: boolean;
  /** Binary name -> absolute path, for the binaries that are built. */
  readonly binaries: Readonly<Record<string, string>>;
  readonly missing: readonly string[];
  /** One line saying what is missing and how to get it; undefined when ok. */
  readonly message?: string;
}

const KUBE_BINARIES = ['etcd', 'kube-apiserver', 'kubectl'] as const;

function goInstalled(): boolean {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  return [...dirs.map((d) => path.join(d, 'go')), '/usr/local/go/bin/go'].some((f) => {
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Whether the peer binaries a cluster with `options` needs are built. */
export function peersStatus(options: ClusterOptions = {}): PeersStatus {
  const needed: string[] = [...KUBE_BINARIES, ...(options.jaeger ? ['jaeger'] : [])];
  const binaries: Record<string, string> = {};
  const missing: string[] = [];
  for (const b of needed) {
    const file = peerBinary(b);
    if (file) binaries[b] = file;
    else missing.push(b);
  }
  if (missing.length === 0) return { ok: true, binaries, missing };
  const peers = [...new Set(missing.map((b) => peerSpecOfBinary(b).name))];
  const how = goInstalled()
    ? `run \`npm run peers\` (or \`npm run peers -- ${peers.join(' ')}\`) to build them`
    : 'install Go >= 1.26, then run `npm run peers` to build them';
  const message =
    `real Kubernetes/Jaeger peers not built (missing ${missing.join(', ')} under ${peersCacheRoot()}): ${how}` +
    (process.env.CI === 'true' ? ' [CI=true: a missing peer is a failure]' : '');
  return { ok: false, binaries, missing, message };
}

/**
 * For a single test that needs the peers: returns true when they are built. When they are not, it fails the
 * test under CI=true and otherwise logs why and returns false (the caller returns early).
 */
export function requirePeers(t: ExecutionContext<unknown>, options: ClusterOptions = {}): boolean {
  const status = peersStatus(options);
  if (status.ok) return true;
  if (process.env.CI === 'true') t.fail(status.message);
  else {
    t.log(`skipped: ${status.message}`);
    t.pass();
  }
  return false;
}

export type ClusterTestImpl<C> = (t: ExecutionContext<C>, cluster: Cluster) => unknown;

export interface ClusterSuite<C> {
  /** True when the peers are built (or CI=true, where missing peers fail the file's tests). */
  readonly enabled: boolean;
  readonly status: PeersStatus;
  /** Declares a test that gets the file's shared cluster; skipped when the peers are not built. */
  test(title: string, impl: ClusterTestImpl<C>): void;
  /** Same, run serially. */
  serial(title: string, impl: ClusterTestImpl<C>): void;
  /** The running cluster (inside tests and hooks after test.before). */
  cluster(): Cluster;
}

/**
 * One cluster per test file: starts it in test.before and stops it in test.after.always. When the peers are
 * not built, the suite's tests are skipped with one line saying why, except under CI=true, where the
 * before hook fails with that line instead.
 */
export function useCluster<C>(test: TestFn<C>, options: ClusterOptions = {}): ClusterSuite<C> {
  const status = peersStatus(options);
  const enabled = status.ok || process.env.CI === 'true';
  let running: Cluster | undefined;
  const get = (): Cluster => {
    if (!running) throw new Error('the cluster is not running (did test.before fail?)');
    return running;
  };
  if (enabled) {
    test.before(async () => {
      running = await startCluster(options);
    });
    test.after.always(async () => {
      await running?.stop();
    });
  } else {
    const file = path.relative(process.cwd(), fileURLToPath(test.meta.file));
    console.log(`⚠ skipping the tests in ${file}: ${status.message}`);
  }
  const declare = (serial: boolean) => (title: string, impl: ClusterTestImpl<C>) => {
    const fn = async (t: ExecutionContext<C>): Promise<void> => {
      await impl(t, get());
    };
    if (!enabled) test.skip(title, fn);
    else if (serial) test.serial(title, fn);
    else test(title, fn);
  };
  return { enabled, status, test: declare(false), serial: declare(true), cluster: get };
}

export interface SocketEnd {
  readonly address: string;
  readonly port: number;
}

export interface ProcessSocket {
  readonly protocol: 'tcp' | 'tcp6' | 'udp' | 'udp6';
  /** TCP: 'listen', 'established', 'syn-sent', …; UDP: 'bound' (unconnected) or 'connected'. */
  readonly state: string;
  readonly local: SocketEnd;
  readonly remote: SocketEnd;
}

export interface ListeningSocket extends SocketEnd {
  readonly protocol: ProcessSocket['protocol'];
}

const TCP_STATES: Record<string, string> = {
  '01': 'established',
  '02': 'syn-sent',
  '03': 'syn-recv',
  '04': 'fin-wait1',
  '05': 'fin-wait2',
  '06': 'time-wait',
  '07': 'close',
  '08': 'close-wait',
  '09': 'last-ack',
  '0A': 'listen',
  '0B': 'closing',
};

function decodeProcAddress(hex: string): SocketEnd {
  const [ip, port] = hex.split(':') as [string, string];
  let address: string;
  if (ip.length === 8) {
    address = [3, 2, 1, 0].map((i) => parseInt(ip.slice(i * 2, i * 2 + 2), 16)).join('.');
  } else {
    // four 32-bit words, each in host (little-endian) order
    const bytes: number[] = [];
    for (let w = 0; w < 4; w++) {
      for (let b = 3; b >= 0; b--) bytes.push(parseInt(ip.slice(w * 8 + b * 2, w * 8 + b * 2 + 2), 16));
    }
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
    address = groups.join(':');
    if (address.startsWith('0:0:0:0:0:ffff:')) {
      const v4 = bytes.slice(12).join('.');
      address = `::ffff:${v4}`;
    } else if (address === '0:0:0:0:0:0:0:1') address = '::1';
    else if (address === '0:0:0:0:0:0:0:0') address = '::';
  }
  return { address, port: parseInt(port, 16) };
}

/** Every TCP/UDP socket a process holds (Linux /proc); empty elsewhere. */
export function processSockets(pid: number): ProcessSocket[] {
  const inodes = new Set<string>();
  try {
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m?.[1]) inodes.add(m[1]);
      } catch {
        // fd closed meanwhile
      }
    }
  } catch {
    return [];
  }
  const out: ProcessSocket[] = [];
  for (const protocol of ['tcp', 'tcp6', 'udp', 'udp6'] as const) {
    let table: string;
    try {
      table = fs.readFileSync(`/proc/${pid}/net/${protocol}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of table.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      const [local, remote, st, inode] = [f[1], f[2], f[3], f[9]];
      if (!local || !remote || !st || !inode || !inodes.has(inode)) continue;
      const state = protocol.startsWith('tcp') ? (TCP_STATES[st] ?? st) : st === '07' ? 'bound' : 'connected';
      out.push({ protocol, state, local: decodeProcAddress(local), remote: decodeProcAddress(remote) });
    }
  }
  return out;
}

/** TCP listeners and bound (unconnected) UDP sockets of a process (Linux /proc); empty elsewhere. */
export function listeningSockets(pid: number): ListeningSocket[] {
  return processSockets(pid)
    .filter((s) => s.state === 'listen' || s.state === 'bound')
    .map((s) => ({ protocol: s.protocol, ...s.local }));
}

// ---------------------------------------------------------------------------------------------------------
// The servers.

export interface JaegerInfo {
  /** OTLP/gRPC receiver. */
  readonly otlpGrpcPort: number;
  /** OTLP/HTTP receiver (POST /v1/traces). */
  readonly otlpHttpPort: number;
  /** Query HTTP API and UI (/api/traces, /api/services, /api/v3/...). */
  readonly queryPort: number;
  /** Query gRPC API (api_v2 / api_v3). */
  readonly queryGrpcPort: number;
  /** healthcheckv2 HTTP (GET /status). */
  readonly healthPort: number;
  readonly otlpHttpUrl: string;
  readonly queryUrl: string;
  readonly pid: number;
}

export interface Jaeger extends JaegerInfo {
  /** Milliseconds from spawn to ready. */
  readonly readyMs: number;
  stop(): Promise<void>;
}

export interface Cluster {
  /** https://127.0.0.1:<port> */
  readonly server: string;
  readonly kubeconfigPath: string;
  /** A KubeConfig loaded from kubeconfigPath (admin, system:masters). */
  readonly kubeConfig: KubeConfig;
  /** Bearer token of the admin user. */
  readonly adminToken: string;
  /** PEM of the cluster CA: it signed the apiserver's serving cert and issueServingCert() certs. */
  readonly caPem: string;
  /** The ServiceAccount token issuer (also the default API audience). */
  readonly serviceAccountIssuer: string;
  /** The temporary folder (data, logs, certs); deleted by stop(). */
  readonly dir: string;
  readonly pids: { readonly etcd: number; readonly apiserver: number; readonly jaeger?: number };
  readonly logs: { readonly etcd: string; readonly apiserver: string; readonly jaeger?: string };
  /** Milliseconds each server took to become ready. */
  readonly timings: {
    readonly etcdMs: number;
    readonly apiserverMs: number;
    readonly jaegerMs?: number;
    readonly totalMs: number;
  };
  readonly jaeger?: JaegerInfo;
  /** Runs the built kubectl (v1.34) against this cluster. */
  kubectl(args: readonly string[], opts?: KubectlOptions): Promise<KubectlResult>;
  /**
   * Creates a uniquely named namespace `<prefix>-<random>` with what kube-controller-manager would add to
   * it (ServiceAccount `default`, ConfigMap `kube-root-ca.crt`) and returns its name.
   */
  createNamespace(prefix?: string, labels?: Record<string, string>): Promise<string>;
  /**
   * Stops kube-apiserver (SIGTERM, SIGKILL after 3 s); etcd and its data stay. Clients see connection
   * refused until startApiServer(). `pids.apiserver` is 0 meanwhile.
   */
  stopApiServer(): Promise<void>;
  /** Starts kube-apiserver again: same port, flags, certificates and etcd; resolves once /readyz is ok. */
  startApiServer(): Promise<void>;
  /** stopApiServer(), then startApiServer(): an API server restart as clients see it. */
  restartApiServer(): Promise<void>;
  /**
   * A serving certificate for a server the apiserver must call (an admission webhook on 127.0.0.1),
   * signed by the cluster CA. Register the webhook by URL with caBundle = base64(caPem).
   */
  issueServingCert(opts?: { ips?: readonly string[]; dnsNames?: readonly string[] }): Promise<ServingCert>;
  stop(): Promise<void>;
}

function need(status: PeersStatus, binary: string): string {
  const file = status.binaries[binary];
  if (!file) throw new Error(status.message ?? `peer binary ${binary} is not built`);
  return file;
}

async function startEtcd(binary: string, dir: string): Promise<{ proc: Proc; url: string }> {
  return withPortRetry(async () => {
    const [clientPort, peerPort] = (await freePorts(2)) as [number, number];
    const url = `http://127.0.0.1:${clientPort}`;
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const dataDir = path.join(dir, 'etcd');
    fs.rmSync(dataDir, { recursive: true, force: true });
    const proc = startProcess(
      'etcd',
      binary,
      [
        '--name=trellis',
        `--data-dir=${dataDir}`,
        `--listen-client-urls=${url}`,
        `--advertise-client-urls=${url}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=trellis=${peerUrl}`,
        '--unsafe-no-fsync=true',
        '--log-level=warn',
      ],
      dir,
    );
    try {
      await waitReady(proc, 'healthy', 30_000, async () => {
        const r = await request(`${url}/health`);
        return r.status === 200 && (JSON.parse(r.body) as { health?: string }).health === 'true';
      });
    } catch (err) {
      await stopProcess(proc);
      throw err;
    }
    return { proc, url };
  });
}

async function startApiserver(
  binary: string,
  dir: string,
  etcdUrl: string,
  pki: { caFile: string; certFile: string; keyFile: string; tokensFile: string; saPub: string; saKey: string },
  adminToken: string,
  caPem: string,
  issuer: string,
  serviceCidr: string,
  /** Start on this port (a restart); a fresh free port when omitted. */
  fixedPort?: number,
): Promise<{ proc: Proc; server: string }> {
  // A fixed port (a restart) is retried on the same port: it is free once the old process is gone.
  return withPortRetry(async () => {
    const port = fixedPort ?? (await freePort());
    const server = `https://127.0.0.1:${port}`;
    const proc = startProcess(
      'kube-apiserver',
      binary,
      [
        `--etcd-servers=${etcdUrl}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${port}`,
        '--advertise-address=127.0.0.1',
        '--endpoint-reconciler-type=none',
        `--cert-dir=${path.join(dir, 'apiserver-certs')}`,
        `--tls-cert-file=${pki.certFile}`,
        `--tls-private-key-file=${pki.keyFile}`,
        `--client-ca-file=${pki.caFile}`,
        `--token-auth-file=${pki.tokensFile}`,
        '--authorization-mode=RBAC',
        `--service-cluster-ip-range=${serviceCidr}`,
        '--allow-privileged=true',
        `--service-account-issuer=${issuer}`,
        `--service-account-key-file=${pki.saPub}`,
        `--service-account-signing-key-file=${pki.saKey}`,
        '--profiling=false',
      ],
      dir,
    );
    try {
      await waitReady(proc, 'ready (/readyz)', 90_000, async () => {
        const r = await request(`${server}/readyz`, { ca: caPem, token: adminToken });
        return r.status === 200;
      });
    } catch (err) {
      await stopProcess(proc);
      throw err;
    }
    return { proc, server };
  });
}

function jaegerConfig(p: Omit<JaegerInfo, 'otlpHttpUrl' | 'queryUrl' | 'pid'>): string {
  // Only what tests use, every listener on 127.0.0.1 (the embedded all-in-one config binds
  // ${JAEGER_LISTEN_HOST:-localhost} on fixed ports and the query extension defaults to :16686 on all
  // interfaces). No Jaeger/Zipkin receivers, no sampling/expvar/zpages, no self-metrics listener, and no
  // self-tracing: jaeger_query defaults to enable_tracing=true, which exports its own spans over OTLP to
  // the fixed localhost:4317 (and stalls shutdown ~10 s retrying when nothing listens there).
  return toYaml({
    service: {
      extensions: ['jaeger_storage', 'jaeger_query', 'healthcheckv2'],
      pipelines: { traces: { receivers: ['otlp'], processors: ['batch'], exporters: ['jaeger_storage_exporter'] } },
      telemetry: {
        resource: { 'service.name': 'jaeger' },
        metrics: { level: 'none' },
        traces: { level: 'none' },
        logs: { level: 'info' },
      },
    },
    extensions: {
      jaeger_storage: { backends: { memstore: { memory: { max_traces: 100000 } } } },
      jaeger_query: {
        enable_tracing: false,
        storage: { traces: 'memstore' },
        http: { endpoint: `127.0.0.1:${p.queryPort}` },
        grpc: { endpoint: `127.0.0.1:${p.queryGrpcPort}` },
      },
      healthcheckv2: { use_v2: true, http: { endpoint: `127.0.0.1:${p.healthPort}` } },
    },
    receivers: {
      otlp: {
        protocols: {
          grpc: { endpoint: `127.0.0.1:${p.otlpGrpcPort}` },
          http: { endpoint: `127.0.0.1:${p.otlpHttpPort}` },
        },
      },
    },
    processors: { batch: { timeout: '100ms' } },
    exporters: { jaeger_storage_exporter: { trace_storage: 'memstore' } },
  });
}

/** Starts Jaeger v2 all-in-one (memory storage) with a generated config; `dir` holds config and log. */
export async function startJaeger(options: { dir?: string; binary?: string } = {}): Promise<Jaeger> {
  const binary = options.binary ?? peerBinary('jaeger');
  if (!binary) throw new Error(peersStatus({ jaeger: true }).message);
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-jaeger-'));
  if (ownDir) trackDir(dir);
  const { proc, info, readyMs } = await withPortRetry(async () => {
    const [otlpGrpcPort, otlpHttpPort, queryPort, queryGrpcPort, healthPort] = (await freePorts(5)) as [
      number,
      number,
      number,
      number,
      number,
    ];
    const ports = { otlpGrpcPort, otlpHttpPort, queryPort, queryGrpcPort, healthPort };
    const configFile = path.join(dir, 'jaeger.yaml');
    fs.writeFileSync(configFile, jaegerConfig(ports));
    const started = Date.now();
    const proc = startProcess('jaeger', binary, [`--config=${configFile}`], dir);
    const info: JaegerInfo = {
      ...ports,
      otlpHttpUrl: `http://127.0.0.1:${otlpHttpPort}`,
      queryUrl: `http://127.0.0.1:${queryPort}`,
      pid: proc.pid,
    };
    try {
      await waitReady(proc, 'ready (health + query API)', 60_000, async () => {
        const health = await request(`http://127.0.0.1:${healthPort}/status`);
        if (health.status !== 200) return false;
        const q = await request(`${info.queryUrl}/api/services`);
        return q.status === 200;
      });
    } catch (err) {
      await stopProcess(proc);
      throw err;
    }
    return { proc, info, readyMs: Date.now() - started };
  });
  return {
    ...info,
    readyMs,
    stop: async () => {
      await stopProcess(proc);
      if (ownDir) {
        fs.rmSync(dir, { recursive: true, force: true });
        untrackDir(dir);
      }
    },
  };
}

/** Starts etcd, then kube-apiserver, then (with `jaeger: true`) Jaeger, and writes an admin kubeconfig. */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const status = peersStatus(options);
  const bins = {
    etcd: need(status, 'etcd'),
    apiserver: need(status, 'kube-apiserver'),
    kubectl: need(status, 'kubectl'),
    jaeger: options.jaeger ? need(status, 'jaeger') : undefined,
  };
  const t0 = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-cluster-'));
  trackDir(dir);
  const procs: Proc[] = [];
  let jaeger: Jaeger | undefined;
  let jaegerStarted: Promise<Jaeger> | undefined;
  const stopAll = async (): Promise<void> => {
    await Promise.all([jaeger?.stop(), ...procs.map((p) => stopProcess(p))]);
  };
  try {
    // PKI, tokens and the ServiceAccount signing key, made while etcd starts.
    const pkiDir = path.join(dir, 'pki');
    fs.mkdirSync(pkiDir, { mode: 0o700 });
    const pkiReady = (async () => {
      const ca = await makeCa(pkiDir);
      const serving = await signCert(pkiDir, ca, 'apiserver', {
        cn: 'kube-apiserver',
        usage: 'serverAuth',
        ips: ['127.0.0.1', '10.0.0.1'],
        dnsNames: [
          'localhost',
          'kubernetes',
          'kubernetes.default',
          'kubernetes.default.svc',
          'kubernetes.default.svc.cluster.local',
        ],
      });
      const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
      const saPub = path.join(pkiDir, 'sa.pub');
      const saKey = path.join(pkiDir, 'sa.key');
      fs.writeFileSync(saPub, publicKey.export({ type: 'spki', format: 'pem' }));
      fs.writeFileSync(saKey, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      const adminToken = crypto.randomBytes(24).toString('hex');
      const tokensFile = path.join(pkiDir, 'tokens.csv');
      fs.writeFileSync(tokensFile, `${adminToken},admin,admin-uid,"system:masters"\n`, { mode: 0o600 });
      return { ca, serving, saPub, saKey, adminToken, tokensFile };
    })();

    const etcd = await startEtcd(bins.etcd, dir);
    procs.push(etcd.proc);
    const etcdMs = Date.now() - t0;

    // Jaeger starts alongside the apiserver.
    jaegerStarted = bins.jaeger ? startJaeger({ dir, binary: bins.jaeger }) : undefined;
    jaegerStarted?.catch(() => undefined); // awaited below (or in the catch block)

    const pki = await pkiReady;
    const caPem = pki.serving.caPem;
    const issuer = 'https://kubernetes.default.svc.cluster.local';
    const t1 = Date.now();
    const apiPki = {
      caFile: pki.ca.certFile,
      certFile: pki.serving.certFile,
      keyFile: pki.serving.keyFile,
      tokensFile: pki.tokensFile,
      saPub: pki.saPub,
      saKey: pki.saKey,
    };
    const serviceCidr = options.serviceCidr ?? '10.0.0.0/24';
    const api = await startApiserver(bins.apiserver, dir, etcd.url, apiPki, pki.adminToken, caPem, issuer, serviceCidr);
    procs.push(api.proc);
    let apiProc: Proc | undefined = api.proc;
    const apiPort = Number(new URL(api.server).port);
    const stopApiServer = async (): Promise<void> => {
      const proc = apiProc;
      if (!proc) return;
      apiProc = undefined;
      await stopProcess(proc);
      procs.splice(procs.indexOf(proc), 1);
    };
    const startApiServer = async (): Promise<void> => {
      if (apiProc) return;
      const restarted = await startApiserver(
        bins.apiserver,
        dir,
        etcd.url,
        apiPki,
        pki.adminToken,
        caPem,
        issuer,
        serviceCidr,
        apiPort,
      );
      apiProc = restarted.proc;
      procs.push(restarted.proc);
    };
    const apiserverMs = Date.now() - t1;

    jaeger = jaegerStarted ? await jaegerStarted : undefined;
    const jaegerMs = jaeger?.readyMs;

    const kubeconfigPath = path.join(dir, 'kubeconfig');
    writeKubeconfig(kubeconfigPath, {
      server: api.server,
      caPem,
      user: { token: pki.adminToken },
      name: 'trellis-test',
      namespace: 'default',
    });
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(kubeconfigPath);
    const kubectl = makeKubectl(bins.kubectl, kubeconfigPath, dir);

    const core = kubeConfig.makeApiClient(CoreV1Api);
    const createNamespace = async (prefix = 'test', labels: Record<string, string> = {}): Promise<string> => {
      const name = `${prefix}-${crypto.randomBytes(4).toString('hex')}`;
      await core.createNamespace({ body: { metadata: { name, labels } } });
      await core.createNamespacedServiceAccount({ namespace: name, body: { metadata: { name: 'default' } } });
      await core.createNamespacedConfigMap({
        namespace: name,
        body: { metadata: { name: 'kube-root-ca.crt' }, data: { 'ca.crt': caPem } },
      });
      return name;
    };

    let webhookCerts = 0;
    let stopped = false;
    return {
      server: api.server,
      kubeconfigPath,
      kubeConfig,
      adminToken: pki.adminToken,
      caPem,
      serviceAccountIssuer: issuer,
      dir,
      pids: {
        etcd: etcd.proc.pid,
        get apiserver() {
          return apiProc?.pid ?? 0;
        },
        jaeger: jaeger?.pid,
      },
      logs: {
        etcd: etcd.proc.logFile,
        apiserver: api.proc.logFile,
        jaeger: jaeger ? path.join(dir, 'jaeger.log') : undefined,
      },
      timings: { etcdMs, apiserverMs, jaegerMs, totalMs: Date.now() - t0 },
      jaeger: jaeger
        ? {
            otlpGrpcPort: jaeger.otlpGrpcPort,
            otlpHttpPort: jaeger.otlpHttpPort,
            queryPort: jaeger.queryPort,
            queryGrpcPort: jaeger.queryGrpcPort,
            healthPort: jaeger.healthPort,
            otlpHttpUrl: jaeger.otlpHttpUrl,
            queryUrl: jaeger.queryUrl,
            pid: jaeger.pid,
          }
        : undefined,
      kubectl,
      createNamespace,
      stopApiServer,
      startApiServer,
      restartApiServer: async () => {
        await stopApiServer();
        await startApiServer();
      },
      issueServingCert: (opts = {}) =>
        signCert(pkiDir, pki.ca, `serving-${++webhookCerts}`, {
          cn: 'trellis-test-server',
          usage: 'serverAuth',
          ips: opts.ips ?? ['127.0.0.1'],
          dnsNames: opts.dnsNames ?? ['localhost'],
        }),
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await stopAll();
        if (process.env.TRELLIS_KEEP_CLUSTER !== '1') fs.rmSync(dir, { recursive: true, force: true });
        untrackDir(dir);
      },
    };
  } catch (err) {
    if (jaegerStarted) jaeger = await jaegerStarted.catch(() => undefined);
    await stopAll().catch(() => undefined);
    // Keep the folder (logs) when starting failed; the error names the log.
    untrackDir(dir);
    throw err;
  }
}
