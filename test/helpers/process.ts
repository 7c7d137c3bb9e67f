// Runs `trellis` as a real child process and reads its JSON log lines.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { repoRoot } from './peer-paths.js';

export interface LogLine {
  readonly msg?: string;
  readonly [key: string]: unknown;
}

export interface TrellisProcess {
  readonly child: ChildProcess;
  readonly logs: LogLine[];
  /** Resolves with the first log line that matches (already seen or still to come), or rejects at the deadline. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
  stop(): Promise<number | null>;
}

export function startTrellis(args: readonly string[]): TrellisProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'control-plane/main.ts', ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  const waiters = new Set<() => void>();
  readline.createInterface({ input: child.stdout! }).on('line', (text) => {
    try {
      logs.push(JSON.parse(text) as LogLine);
    } catch {
      logs.push({ msg: text });
    }
    for (const w of [...waiters]) w();
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const kill = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', kill);
  return {
    child,
    logs,
    exited,
    waitForLog(match, timeoutMs = 20_000) {
      const found = logs.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const line = logs.find(match);
          if (!line) return;
          cleanup();
          resolve(line);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`));
        }, timeoutMs);
        const cleanup = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        void exited.then(() => {
          if (!waiters.has(check)) return;
          cleanup();
          reject(new Error(`trellis exited before the log line; stderr: ${stderr.slice(-2000)}`));
        });
      });
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const code = await exited;
      process.removeListener('exit', kill);
      return code;
    },
  };
}

/** Starts `trellis control-plane` on free ports and returns its ports once it listens. */
export async function startControlPlaneProcess(
  extraArgs: readonly string[],
): Promise<TrellisProcess & { xdsPort: number; monitoringPort: number }> {
  const proc = startTrellis(['control-plane', '--xds-port', '0', '--monitoring-port', '0', ...extraArgs]);
  const line = await proc.waitForLog((l) => l.msg === 'control plane listening');
  return Object.assign(proc, { xdsPort: Number(line.xdsPort), monitoringPort: Number(line.monitoringPort) });
}

/** Polls `check` until it returns true or the deadline passes. */
export async function eventually(
  check: () => Promise<boolean> | boolean,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A proxyless-gRPC `trellis agent` on this machine, against a local control plane's secure port. */
export interface LocalAgentOptions {
  /** The control plane's secure xDS/CA port on 127.0.0.1. */
  readonly securePort: number;
  /**
   * The control plane's `workDir` (localControlPlaneArgs): the agent trusts `<workDir>/state/root-cert.pem`,
   * reads its token from `<workDir>/<podName>.token` and writes to `<workDir>/agent-<podName>`.
   */
  readonly workDir: string;
  /** The service account token the agent presents; written to its token file. */
  readonly token: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly podName: string;
  /** `k=v,k=v`. */
  readonly labels: string;
  /** More flags (e.g. `--ttl 30s`). */
  readonly extraArgs?: readonly string[];
}

/**
 * Writes the agent's token, starts it and waits for `agent started`; resolves with the process, its output
 * directory (certificates, bootstrap) and its bootstrap file's path.
 */
export async function startLocalGrpcAgent(
  o: LocalAgentOptions,
  timeoutMs = 30_000,
): Promise<{ proc: TrellisProcess; outputDir: string; bootstrapPath: string }> {
  const tokenFile = path.join(o.workDir, `${o.podName}.token`);
  const outputDir = path.join(o.workDir, `agent-${o.podName}`);
  await fs.writeFile(tokenFile, o.token);
  const proc = startTrellis([
    'agent',
    '--proxy-type',
    'grpc',
    '--control-plane',
    `127.0.0.1:${o.securePort}`,
    '--root-cert',
    path.join(o.workDir, 'state', 'root-cert.pem'),
    '--token-file',
    tokenFile,
    '--namespace',
    o.namespace,
    '--service-account',
    o.serviceAccount,
    '--pod-name',
    o.podName,
    '--instance-ips',
    '127.0.0.1',
    '--labels',
    o.labels,
    '--output-dir',
    outputDir,
    ...(o.extraArgs ?? []),
    '--health-host',
    '127.0.0.1',
    '--health-port',
    '0',
  ]);
  const started = await proc.waitForLog((l) => l.msg === 'agent started', timeoutMs);
  return { proc, outputDir, bootstrapPath: String(started.bootstrap) };
}

/** A local-mode `trellis control-plane` with its CA (state dir, tokens file) on the given 127.0.0.1 ports. */
export interface LocalControlPlaneOptions {
  readonly configDir: string;
  /** `--state-dir` (the CA's root is `root-cert.pem` there) and `--tokens-file` live in this folder. */
  readonly workDir: string;
  readonly xdsPort: number;
  readonly securePort: number;
  readonly monitoringPort: number;
}

/** Its arguments: `--debounce-after 20ms`, the CA state in `<workDir>/state`, tokens in `<workDir>/tokens.yaml`. */
export function localControlPlaneArgs(o: LocalControlPlaneOptions): string[] {
  return [
    'control-plane',
    '--config-dir',
    o.configDir,
    '--state-dir',
    path.join(o.workDir, 'state'),
    '--tokens-file',
    path.join(o.workDir, 'tokens.yaml'),
    '--xds-port',
    String(o.xdsPort),
    '--secure-port',
    String(o.securePort),
    '--monitoring-port',
    String(o.monitoringPort),
    '--debounce-after',
    '20ms',
  ];
}
