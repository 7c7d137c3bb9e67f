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
import { spawn, type ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { ExecutionContext, TestFn } from 'ava';
import { stringify as toYaml } from 'yaml';
import { peerBinary, peerSpecOfBinary, peersCacheRoot } from './peer-paths.js';

const execFileAsync = promisify(execFile);

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

// ---------------------------------------------------------------------------------------------------------
// Processes: spawn in their own process group, log to a file, kill the group at the end, whatever happens.

interface Proc {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  readonly child: ChildProcess;
  /** Set once the process has exited. */
  exit?: { code: number | null; signal: NodeJS.Signals | null };
  readonly exited: Promise<void>;
}

const liveGroups = new Set<number>();
const liveDirs = new Set<string>();
let reaper: ChildProcess | undefined;
let handlersInstalled = false;

// A detached Node process that reads "+pgid", "-pgid", "+d dir", "-d dir" lines on stdin. When stdin closes
// (this process exited, however it died), it kills the remaining groups and deletes the remaining folders.
const REAPER_SOURCE = `
const fs = require('fs');
const groups = new Set(), dirs = new Set();
let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const line = buf.slice(0, i); buf = buf.slice(i + 1);
    if (line.startsWith('+d ')) dirs.add(line.slice(3));
    else if (line.startsWith('-d ')) dirs.delete(line.slice(3));
    else if (line.startsWith('+')) groups.add(Number(line.slice(1)));
    else if (line.startsWith('-')) groups.delete(Number(line.slice(1)));
  }
});
process.stdin.on('end', () => {
  const kill = (sig) => { for (const g of groups) { try { process.kill(-g, sig); } catch {} } };
  const rm = () => { for (const d of dirs) { try { fs.rmSync(d, { recursive: true, force: true }); } catch {} } };
  if (groups.size === 0) { rm(); return; }
  kill('SIGTERM');
  setTimeout(() => { kill('SIGKILL'); setTimeout(() => { rm(); process.exit(0); }, 500); }, 3000);
});
`;

function tellReaper(line: string): void {
  if (!reaper) {
    reaper = spawn(process.execPath, ['-e', REAPER_SOURCE], {
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
      env: { PATH: process.env.PATH ?? '' },
    });
    reaper.unref();
    if (reaper.stdin instanceof net.Socket) reaper.stdin.unref();
    reaper.stdin?.on('error', () => undefined);
  }
  reaper.stdin?.write(`${line}\n`);
}

/** Synchronous last-resort cleanup: SIGKILL every live group, delete every live folder. */
function killAllNow(): void {
  for (const g of liveGroups) {
    try {
      process.kill(-g, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  liveGroups.clear();
  for (const d of liveDirs) fs.rmSync(d, { recursive: true, force: true });
  liveDirs.clear();
}

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', killAllNow);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAllNow();
      // If nobody else handles the signal, die of it as the default action would.
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, onSignal);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, onSignal);
  }
}

function trackDir(dir: string): void {
  installExitHandlers();
  liveDirs.add(dir);
  tellReaper(`+d ${dir}`);
}

function untrackDir(dir: string): void {
  liveDirs.delete(dir);
  tellReaper(`-d ${dir}`);
}

function startProcess(name: string, binary: string, args: readonly string[], dir: string): Proc {
  installExitHandlers();
  const logFile = path.join(dir, `${name}.log`);
  const fd = fs.openSync(logFile, 'a');
  // A clean environment: no proxies (all traffic is loopback), HOME inside the cluster folder.
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    TMPDIR: dir,
    NO_PROXY: '127.0.0.1,localhost',
    no_proxy: '127.0.0.1,localhost',
  };
  let child: ChildProcess;
  try {
    child = spawn(binary, [...args], { cwd: dir, env, detached: true, stdio: ['ignore', fd, fd] });
  } finally {
    fs.closeSync(fd);
  }
  child.on('error', () => undefined); // a failed spawn shows as pid === undefined below
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name}: could not start ${binary}`);
  liveGroups.add(pid);
  tellReaper(`+${pid}`);
  const proc: Proc = {
    name,
    pid,
    logFile,
    child,
    exited: new Promise<void>((resolve) => {
      child.on('exit', (code, signal) => {
        proc.exit = { code, signal };
        resolve();
      });
    }),
  };
  return proc;
}

async function stopProcess(proc: Proc, graceMs = 3000): Promise<void> {
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-proc.pid, sig);
    } catch {
      // group already gone
    }
  };
  if (!proc.exit) {
    signal('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      proc.exited.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      signal('SIGKILL');
      await proc.exited;
    }
  }
  signal('SIGKILL'); // anything the main process left behind in its group
  liveGroups.delete(proc.pid);
  tellReaper(`-${proc.pid}`);
}

function logTail(proc: Proc, lines = 40): string {
  try {
    return fs.readFileSync(proc.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

class PortInUseError extends Error {}

/** Polls `probe` until it returns true, the process exits, or the deadline passes. */
async function waitReady(proc: Proc, what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
    if (proc.exit) {
      const tail = logTail(proc);
      const msg = `${proc.name} exited (${proc.exit.code ?? proc.exit.signal}) before ${what}:\n${tail}`;
      if (/address already in use/i.test(tail)) throw new PortInUseError(msg);
      throw new Error(msg);
    }
    try {
      if (await probe()) return;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${proc.name}: not ${what} after ${timeoutMs} ms (last probe error: ${lastError || 'none'}); log ${proc.logFile}:\n${logTail(proc)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

/** Starts a server on fresh free ports, retrying when a port was taken between choosing and binding it. */
async function withPortRetry<T>(start: () => Promise<T>, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await start();
    } catch (err) {
      if (!(err instanceof PortInUseError) || i >= attempts) throw err;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Small network helpers (loopback only).

/** A TCP port that is free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('no port'))));
    });
  });
}

async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

export interface HttpResult {
  readonly status: number;
  readonly body: string;
}

/** An HTTP(S) request to a loopback server, with an optional CA and bearer token. */
export function request(
  url: string,
  opts: { method?: string; body?: string; headers?: Record<string, string>; ca?: string; token?: string } = {},
): Promise<HttpResult> {
  const u = new URL(url);
  if (u.hostname !== '127.0.0.1' && u.hostname !== 'localhost') throw new Error(`refusing non-loopback URL ${url}`);
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers['content-length'] = String(Buffer.byteLength(opts.body));
  return new Promise((resolve, reject) => {
    const onResponse = (res: http.IncomingMessage): void => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    };
    const common = { method: opts.method ?? 'GET', headers, agent: false as const, timeout: 5000 };
    const req =
      u.protocol === 'https:'
        ? https.request(u, { ...common, ca: opts.ca }, onResponse)
        : http.request(u, common, onResponse);
    req.on('timeout', () => req.destroy(new Error(`timeout: ${url}`)));
    req.on('error', reject);
    req.end(opts.body);
  });
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
// PKI (openssl): one CA per cluster; it signs the apiserver's serving cert and any webhook serving certs.

export interface ServingCert {
  readonly certPem: string;
  readonly keyPem: string;
  /** PEM of the CA that signed it: use as a webhook's caBundle (base64 of this) or a client's CA. */
  readonly caPem: string;
  readonly certFile: string;
  readonly keyFile: string;
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  try {
    await execFileAsync('openssl', [...args], { cwd });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr ?? e.message}`, { cause: err });
  }
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '7'];

async function makeCa(pkiDir: string): Promise<{ certFile: string; keyFile: string }> {
  const certFile = path.join(pkiDir, 'ca.crt');
  const keyFile = path.join(pkiDir, 'ca.key');
  await openssl(
    [
      'req',
      '-x509',
      ...EC,
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-subj',
      '/CN=trellis-test-ca',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    pkiDir,
  );
  return { certFile, keyFile };
}

async function signCert(
  pkiDir: string,
  ca: { certFile: string; keyFile: string },
  name: string,
  opts: {
    cn: string;
    ips?: readonly string[];
    dnsNames?: readonly string[];
    usage: 'serverAuth' | 'clientAuth';
    org?: string;
  },
): Promise<ServingCert> {
  const certFile = path.join(pkiDir, `${name}.crt`);
  const keyFile = path.join(pkiDir, `${name}.key`);
  const san = [...(opts.ips ?? []).map((ip) => `IP:${ip}`), ...(opts.dnsNames ?? []).map((d) => `DNS:${d}`)];
  const subj = `/CN=${opts.cn}${opts.org ? `/O=${opts.org}` : ''}`;
  await openssl(
    [
      'req',
      '-x509',
      ...EC,
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-subj',
      subj,
      '-CA',
      ca.certFile,
      '-CAkey',
      ca.keyFile,
      '-addext',
      'basicConstraints=critical,CA:FALSE',
      '-addext',
      'keyUsage=critical,digitalSignature',
      '-addext',
      `extendedKeyUsage=${opts.usage}`,
      ...(san.length ? ['-addext', `subjectAltName=${san.join(',')}`] : []),
    ],
    pkiDir,
  );
  return {
    certPem: fs.readFileSync(certFile, 'utf8'),
    keyPem: fs.readFileSync(keyFile, 'utf8'),
    caPem: fs.readFileSync(ca.certFile, 'utf8'),
    certFile,
    keyFile,
  };
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

export interface KubectlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface KubectlOptions {
  /** Written to kubectl's stdin (use with `-f -`). */
  readonly input?: string;
  /** Resolve with a non-zero code instead of rejecting. */
  readonly allowFailure?: boolean;
  readonly timeoutMs?: number;
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
    fs.writeFileSync(
      kubeconfigPath,
      toYaml({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          {
            name: 'trellis-test',
            cluster: { server: api.server, 'certificate-authority-data': Buffer.from(caPem).toString('base64') },
          },
        ],
        users: [{ name: 'admin', user: { token: pki.adminToken } }],
        contexts: [{ name: 'trellis-test', context: { cluster: 'trellis-test', user: 'admin', namespace: 'default' } }],
        'current-context': 'trellis-test',
      }),
      { mode: 0o600 },
    );
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(kubeconfigPath);
    const kubectlCache = path.join(dir, 'kubectl-cache');

    const kubectl = (args: readonly string[], opts: KubectlOptions = {}): Promise<KubectlResult> =>
      new Promise((resolve, reject) => {
        const full = [`--kubeconfig=${kubeconfigPath}`, `--cache-dir=${kubectlCache}`, ...args];
        const child = spawn(bins.kubectl, full, {
          env: {
            PATH: process.env.PATH ?? '',
            HOME: dir,
            NO_PROXY: '127.0.0.1,localhost',
            no_proxy: '127.0.0.1,localhost',
          },
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout.on('data', (d: Buffer) => out.push(d));
        child.stderr.on('data', (d: Buffer) => err.push(d));
        const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
        child.on('error', (e) => {
          clearTimeout(timer);
          reject(e);
        });
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          const result = {
            code: code ?? -1,
            stdout: Buffer.concat(out).toString('utf8'),
            stderr: Buffer.concat(err).toString('utf8') + (signal ? `\n(killed by ${signal})` : ''),
          };
          if (result.code !== 0 && !opts.allowFailure) {
            reject(new Error(`kubectl ${args.join(' ')} exited ${result.code}:\n${result.stderr}${result.stdout}`));
          } else resolve(result);
        });
        child.stdin.on('error', () => undefined);
        child.stdin.end(opts.input ?? '');
      });

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
