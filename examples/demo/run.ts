// The demo mesh (`npm start`): real processes, no cluster. In a run directory of its own it starts
//   - `trellis control-plane` in local mode on the demo's YAML (a symlink to examples/demo/, so edits there
//     are seen live) plus the EndpointSlices the demo writes, with the CA (--state-dir, --tokens-file);
//   - for every Pod of workloads.yaml, one `trellis agent --proxy-type grpc` (key, CSR, certificate files,
//     gRPC bootstrap, local xDS proxy over mutual TLS to the control plane) and the example app it names
//     (examples/kubernetes/apps/main.ts), proxyless on the agent's bootstrap;
//   - a load loop that asks the frontend's admin port for small batches of calls (`/call?records=1`) and
//     tallies every call per service and subset.
// Every process is a child in a process group of its own (processes.ts); stop() ends them all.
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runLoadLoop, type LoadLoop } from './load.js';
import { ProcessSupervisor, type DemoChild, type LogLine } from './processes.js';
import { DemoStats } from './stats.js';
import { endpointSlices, placeWorkloads, readWorkloads, tokensFile, type PlacedWorkload } from './workloads.js';

/** The repository root (examples/demo/ is two levels down). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const defaultConfigDir = path.join(repoRoot, 'examples', 'demo');
const APPS_ENTRY = path.join(repoRoot, 'examples', 'kubernetes', 'apps', 'main.ts');
const TRELLIS_ENTRY = path.join(repoRoot, 'control-plane', 'main.ts');

export interface DemoOptions {
  /** The demo's YAML (default examples/demo/): watched live by the control plane. */
  readonly configDir?: string;
  /** Where the run's files go (default: a new temporary directory, removed on stop). */
  readonly runDir?: string;
  /** OTLP endpoint for traces (the control plane, the agents and the apps get OTEL_EXPORTER_OTLP_ENDPOINT). */
  readonly otlpEndpoint?: string;
  /** Calls per batch, at a time, and per second at most (the load loop). */
  readonly batch?: number;
  readonly concurrency?: number;
  readonly rate?: number;
  /** Aborting it while the demo starts stops what has started, and startDemo rejects. */
  readonly signal?: AbortSignal;
  /** Certificate lifetime the agents ask for. */
  readonly certificateTtl?: string;
  /** Marks every child process (processes.ts RUN_MARKER); default random. */
  readonly runId?: string;
  /** Progress while starting, one line each. */
  readonly progress?: (line: string) => void;
}

export interface WorkloadState extends PlacedWorkload {
  readonly agent: DemoChild;
  readonly appProcess: DemoChild;
  readonly spiffeId: () => string;
  /** The current certificate's expiry and serial, from the agent's "certificate installed" lines. */
  readonly certificate: () =>
    { readonly notAfter: Date; readonly serial: string; readonly rotations: number } | undefined;
}

export interface ControlPlaneState {
  readonly process: DemoChild;
  readonly xdsPort: number;
  readonly securePort: number;
  readonly monitoringPort: number;
  /** The last "mesh snapshot" line: version and time. */
  readonly snapshot: () => { readonly version: unknown; readonly time: number } | undefined;
  /** The problems of the YAML the control plane reports now (errors and warnings, not yet resolved), oldest first. */
  readonly problems: () => readonly string[];
}

export interface RunningDemo {
  readonly runId: string;
  readonly runDir: string;
  readonly configDir: string;
  readonly logDir: string;
  readonly startedAt: number;
  readonly otlpEndpoint: string | undefined;
  readonly controlPlane: ControlPlaneState;
  readonly workloads: readonly WorkloadState[];
  readonly frontendAdmin: string;
  readonly stats: DemoStats;
  readonly supervisor: ProcessSupervisor;
  /** Rejects when a process of the mesh exits while the demo runs. */
  readonly failed: Promise<never>;
  /** Stops the load and every process; removes the run directory it made unless told to keep it (the logs). */
  stop(how?: { readonly keepRunDir?: boolean }): Promise<void>;
}

const node = (entry: string, args: readonly string[]): { command: string; args: string[] } => ({
  command: process.execPath,
  args: ['--import', 'tsx', entry, ...args],
});

/** Starts the whole demo; on any failure while starting, stops what it started and rethrows. */
export async function startDemo(options: DemoOptions = {}): Promise<RunningDemo> {
  const progress = options.progress ?? (() => undefined);
  const configDir = path.resolve(options.configDir ?? defaultConfigDir);
  const runId = options.runId ?? crypto.randomBytes(6).toString('hex');
  const ownRunDir = options.runDir === undefined;
  const runDir = options.runDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-demo-')));
  const logDir = path.join(runDir, 'logs');
  const supervisor = new ProcessSupervisor(runId, logDir);
  const stats = new DemoStats();
  let loop: LoadLoop | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (how: { keepRunDir?: boolean } = {}): Promise<void> =>
    (stopping ??= (async () => {
      await loop?.stop();
      await supervisor.stopAll();
      if (ownRunDir && !how.keepRunDir) await fs.rm(runDir, { recursive: true, force: true });
    })());

  const onAbort = (): void => void supervisor.stopAll();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const { workloads, extra } = await placeWorkloads(await readWorkloads(configDir), (w) => w.app === 'frontend', 3);
    const [xdsPort, securePort, monitoringPort] = extra as [number, number, number];
    if (!workloads.some((w) => w.app === 'frontend')) {
      throw new Error(`${configDir}: no Pod labelled app: frontend (the load loop drives it)`);
    }
    // The control plane's config: the demo's YAML (live, through a directory symlink) and the EndpointSlices.
    const meshDir = path.join(runDir, 'mesh');
    await fs.mkdir(meshDir, { recursive: true });
    await fs.symlink(configDir, path.join(meshDir, 'config'), 'dir');
    await fs.writeFile(path.join(meshDir, 'endpoints.yaml'), endpointSlices(workloads));
    await fs.writeFile(path.join(runDir, 'tokens.yaml'), tokensFile(workloads), { mode: 0o600 });
    const stateDir = path.join(runDir, 'state');
    for (const w of workloads) {
      await fs.mkdir(path.join(runDir, 'agents', w.pod), { recursive: true });
      await fs.writeFile(path.join(runDir, 'agents', w.pod, 'token'), w.token, { mode: 0o600 });
    }

    const tracingEnv: Record<string, string> = options.otlpEndpoint
      ? { OTEL_EXPORTER_OTLP_ENDPOINT: options.otlpEndpoint }
      : {};
    progress(`control plane: starting (logs in ${logDir})`);
    const cp = supervisor.start({
      name: 'control-plane',
      ...node(TRELLIS_ENTRY, [
        'control-plane',
        '--config-dir',
        meshDir,
        '--state-dir',
        stateDir,
        '--tokens-file',
        path.join(runDir, 'tokens.yaml'),
        '--xds-port',
        String(xdsPort),
        '--secure-port',
        String(securePort),
        '--monitoring-port',
        String(monitoringPort),
        '--debounce-after',
        '50ms',
      ]),
      env: { ...tracingEnv, OTEL_SERVICE_NAME: 'trellisd' },
      cwd: repoRoot,
    });
    await cp.waitFor('"control plane listening"', (l) => l.msg === 'control plane listening', 120_000);
    progress(`control plane: xDS and CA on 127.0.0.1:${xdsPort}, TLS on ${securePort}, debug on ${monitoringPort}`);

    const states = workloads.map((w): WorkloadState => {
      const agent = supervisor.start({
        name: `agent-${w.pod}`,
        ...node(TRELLIS_ENTRY, [
          'agent',
          '--proxy-type',
          'grpc',
          '--control-plane',
          `127.0.0.1:${securePort}`,
          '--root-cert',
          path.join(stateDir, 'root-cert.pem'),
          '--token-file',
          path.join(runDir, 'agents', w.pod, 'token'),
          '--namespace',
          w.namespace,
          '--service-account',
          w.serviceAccount,
          '--pod-name',
          w.pod,
          '--instance-ips',
          '127.0.0.1',
          '--labels',
          Object.entries(w.labels)
            .map(([k, v]) => `${k}=${v}`)
            .join(','),
          '--output-dir',
          path.join(runDir, 'agents', w.pod),
          '--health-host',
          '127.0.0.1',
          '--health-port',
          String(w.healthPort),
          ...(options.certificateTtl ? ['--ttl', options.certificateTtl] : []),
        ]),
        env: { ...tracingEnv, OTEL_SERVICE_NAME: `trellis-agent.${w.pod}` },
        cwd: repoRoot,
      });
      return {
        ...w,
        agent,
        appProcess: undefined as unknown as DemoChild,
        spiffeId: () => {
          const line = agent.lines.find((l) => l.msg === 'agent started');
          return typeof line?.spiffeId === 'string' ? line.spiffeId : '';
        },
        certificate: () => {
          const installed = agent.find((l) => l.msg === 'certificate installed');
          const last = installed.at(-1);
          if (!last) return undefined;
          return {
            notAfter: new Date(String(last.notAfter)),
            serial: String(last.serial),
            rotations: installed.length - 1,
          };
        },
      };
    });
    progress(`agents: ${states.length} (${states.map((s) => s.pod).join(', ')}), asking the CA for certificates`);
    const started = await Promise.all(
      states.map((s) => s.agent.waitFor('"agent started"', (l) => l.msg === 'agent started', 120_000)),
    );

    const apps = states.map((s, i): WorkloadState => {
      const bootstrap = String(started[i]!.bootstrap);
      const appProcess = supervisor.start({
        name: `app-${s.pod}`,
        ...node(APPS_ENTRY, s.args),
        env: {
          ...tracingEnv,
          OTEL_SERVICE_NAME: s.app,
          ...s.env,
          GRPC_XDS_BOOTSTRAP: bootstrap,
          POD_NAME: s.pod,
          POD_NAMESPACE: s.namespace,
          POD_IP: '127.0.0.1',
          PORT: String(s.port),
          VERSION: s.version || 'v1',
          ...(s.adminPort ? { ADMIN_HOST: '127.0.0.1', ADMIN_PORT: String(s.adminPort) } : {}),
        },
        cwd: repoRoot,
      });
      return { ...s, appProcess };
    });
    progress(`apps: ${apps.map((a) => `${a.pod} (${a.app})`).join(', ')}`);
    await Promise.all(apps.map((a) => waitForApp(a)));

    const frontend = apps.find((a) => a.app === 'frontend')!;
    const frontendAdmin = `http://127.0.0.1:${frontend.adminPort}`;
    progress('load: waiting for the first call through the mesh to succeed');
    loop = await runLoadLoop({
      admin: frontendAdmin,
      stats,
      batch: options.batch ?? 10,
      concurrency: options.concurrency ?? 1,
      rate: options.rate ?? 50,
      signal: options.signal,
    });
    options.signal?.removeEventListener('abort', onAbort);

    const failed = new Promise<never>((_, reject) => {
      for (const child of supervisor.all) {
        void child.exited.then((code) => {
          if (!stopping) reject(new Error(`${child.spec.name} exited (code ${code}); see ${child.logFile}`));
        });
      }
    });
    failed.catch(() => undefined);

    return {
      runId,
      runDir,
      configDir,
      logDir,
      startedAt: Date.now(),
      otlpEndpoint: options.otlpEndpoint,
      controlPlane: {
        process: cp,
        xdsPort,
        securePort,
        monitoringPort,
        snapshot: () => latestSnapshot(cp),
        problems: () => currentProblems(cp),
      },
      workloads: apps,
      frontendAdmin,
      stats,
      supervisor,
      failed,
      stop,
    };
  } catch (err) {
    options.signal?.removeEventListener('abort', onAbort);
    await stop({ keepRunDir: !options.signal?.aborted });
    if (!options.signal?.aborted) progress(`the logs are kept in ${logDir}`);
    throw options.signal?.aborted ? new Error('stopped while starting') : err;
  }
}

async function waitForApp(a: WorkloadState): Promise<void> {
  const what =
    a.app === 'frontend'
      ? { text: '"frontend admin listening"', match: (l: LogLine) => l.msg === 'frontend admin listening' }
      : { text: '"serving"', match: (l: LogLine) => l.msg === 'serving' };
  await a.appProcess.waitFor(what.text, what.match, 120_000);
}

function latestSnapshot(cp: DemoChild): { version: unknown; time: number } | undefined {
  const line = cp.find((l) => l.msg === 'mesh snapshot').at(-1);
  return line ? { version: line.version, time: Number(line.time) } : undefined;
}

/**
 * The control plane logs each problem of the mesh once when it appears (warn or error, the message names
 * the file, object and field) and once when it is gone (info, `resolved: <message>`).
 */
function currentProblems(cp: DemoChild): string[] {
  const open = new Set<string>();
  for (const line of cp.lines) {
    const msg = line.msg ?? '';
    if (typeof line.level === 'number' && line.level >= 40 && (line.object !== undefined || line.file !== undefined))
      open.add(msg);
    else if (msg.startsWith('resolved: ')) open.delete(msg.slice('resolved: '.length));
  }
  return [...open];
}
