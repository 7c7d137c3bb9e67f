// Runs a built kubectl against one kubeconfig, with a clean environment (no proxies, HOME and the cache in
// the cluster's folder), stdin from a string, a deadline, and an error naming the command on failure.
import { spawn } from 'node:child_process';
import path from 'node:path';

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

export type Kubectl = (args: readonly string[], opts?: KubectlOptions) => Promise<KubectlResult>;

/** A kubectl function bound to `binary`, `kubeconfigPath` and a folder for HOME and kubectl's cache. */
export function makeKubectl(binary: string, kubeconfigPath: string, dir: string): Kubectl {
  const cacheDir = path.join(dir, 'kubectl-cache');
  return (args, opts = {}) =>
    new Promise((resolve, reject) => {
      const full = [`--kubeconfig=${kubeconfigPath}`, `--cache-dir=${cacheDir}`, ...args];
      const child = spawn(binary, full, {
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
}
