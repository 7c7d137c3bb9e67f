// What the debug CLI tests share: `trellis …` as a real process, and a static-resources control plane with
// one proxyless grpc-js-xds client (routes to cluster `outbound|8080||a` of an echo server).
import { spawn } from 'node:child_process';
import { repoRoot } from '../helpers/peer-paths.js';
import { apiListener, edsCluster, loadAssignment, routeConfig, type JsonResource } from '../helpers/control-plane.js';

export interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `trellis <args>` as a child process (tsx), killed after 60 s. */
export function trellis(args: readonly string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'control-plane/main.ts', ...args], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export const HOST = 'echo.default.svc.cluster.local';
export const TARGET = `${HOST}:8080`;
export const CLUSTER = 'outbound|8080||a';

/**
 * The resources of one client: its API listener, route config `8080` to CLUSTER, the EDS cluster (with
 * `clusterExtra` merged in) and its endpoint on `port`.
 */
export function clientResources(port: number, clusterExtra: Record<string, unknown> = {}): JsonResource[] {
  return [
    apiListener(TARGET, '8080'),
    routeConfig('8080', [TARGET, HOST], { [CLUSTER]: 1 }),
    edsCluster(CLUSTER, clusterExtra),
    loadAssignment(CLUSTER, [port]),
  ];
}
