// Runs a host command (ip, mount, ctr, …) and returns its output; a failure names the command and its
// stderr. `inNetns` prefixes nsenter into the cluster's network namespace.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface RunOptions {
  /** Resolve with the result instead of rejecting on a non-zero exit. */
  readonly allowFailure?: boolean;
  readonly timeoutMs?: number;
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export async function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  try {
    const { stdout, stderr } = await execFileAsync(cmd, [...args], {
      timeout: opts.timeoutMs ?? 60_000,
      maxBuffer: 64 * 1024 * 1024,
      encoding: 'utf8',
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string; message: string };
    const result = { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    if (opts.allowFailure) return result;
    throw new Error(`${cmd} ${args.join(' ')} failed: ${(e.stderr ?? '').trim() || e.message}`, { cause: err });
  }
}

/** argv that runs `cmd args` inside the network namespace bound at `netnsFile`. */
export function netnsArgv(netnsFile: string, cmd: string, args: readonly string[]): [string, string[]] {
  return ['nsenter', [`--net=${netnsFile}`, '--', cmd, ...args]];
}

export async function runInNetns(
  netnsFile: string,
  cmd: string,
  args: readonly string[],
  opts: RunOptions = {},
): Promise<RunResult> {
  const [c, a] = netnsArgv(netnsFile, cmd, args);
  return run(c, a, opts);
}

/** Whether `cmd` is an executable on PATH (plus the sbin folders root uses). */
export function hasCommand(cmd: string): boolean {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  return dirs.filter(Boolean).some((d) => {
    try {
      fs.accessSync(path.join(d, cmd), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
