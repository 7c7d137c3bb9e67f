// Processes of a cluster: each spawned in its own process group with its output in a log file, stopped by
// group (SIGTERM, then SIGKILL), and — for processes that must not outlive the Node process that started them
// (tests) — also killed when that process exits, is interrupted or is killed outright: a small detached
// reaper process watches this one through a pipe and, when the pipe closes, kills what is left and deletes
// the folders it was told about (or runs a command, such as a cluster's teardown).
// Moved here from test/helpers/cluster.ts so that the local cluster (tools/cluster) and the test helpers
// share one implementation.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export interface Proc {
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

// A detached Node process that reads "+pgid", "-pgid", "+d dir", "-d dir", "+c json", "-c json" lines on
// stdin. When stdin closes (this process exited, however it died), it kills the remaining groups, runs the
// remaining commands (a JSON argv each, one after another, e.g. a cluster's teardown) and deletes the
// remaining folders.
const REAPER_SOURCE = `
const fs = require('fs');
const { spawnSync } = require('child_process');
const groups = new Set(), dirs = new Set(), cmds = new Set();
let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const line = buf.slice(0, i); buf = buf.slice(i + 1);
    if (line.startsWith('+d ')) dirs.add(line.slice(3));
    else if (line.startsWith('-d ')) dirs.delete(line.slice(3));
    else if (line.startsWith('+c ')) cmds.add(line.slice(3));
    else if (line.startsWith('-c ')) cmds.delete(line.slice(3));
    else if (line.startsWith('+')) groups.add(Number(line.slice(1)));
    else if (line.startsWith('-')) groups.delete(Number(line.slice(1)));
  }
});
process.stdin.on('end', () => {
  const kill = (sig) => { for (const g of groups) { try { process.kill(-g, sig); } catch {} } };
  const run = () => {
    for (const c of cmds) {
      try { const argv = JSON.parse(c); spawnSync(argv[0], argv.slice(1), { stdio: 'ignore', timeout: 120000 }); } catch {}
    }
  };
  const rm = () => { for (const d of dirs) { try { fs.rmSync(d, { recursive: true, force: true }); } catch {} } };
  if (groups.size === 0) { run(); rm(); return; }
  kill('SIGTERM');
  setTimeout(() => { kill('SIGKILL'); setTimeout(() => { run(); rm(); process.exit(0); }, 500); }, 3000);
});
`;

export function tellReaper(line: string): void {
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
export function killAllNow(): void {
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

export function installExitHandlers(): void {
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

export function trackDir(dir: string): void {
  installExitHandlers();
  liveDirs.add(dir);
  tellReaper(`+d ${dir}`);
}

export function untrackDir(dir: string): void {
  liveDirs.delete(dir);
  tellReaper(`-d ${dir}`);
}

export interface StartOptions {
  /** Added to the clean environment (PATH, HOME and TMPDIR = dir, no proxies). */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Whether the process dies with this Node process (the reaper and exit handlers kill its group); true by
   * default. `npm run cluster -- up` starts processes that outlive it (false), and `down` stops them.
   */
  readonly tied?: boolean;
}

/** Spawns `binary` in its own process group, output appended to `<dir>/<name>.log`. */
export function startProcess(
  name: string,
  binary: string,
  args: readonly string[],
  dir: string,
  options: StartOptions = {},
): Proc {
  const tied = options.tied ?? true;
  if (tied) installExitHandlers();
  const logFile = path.join(dir, `${name}.log`);
  const fd = fs.openSync(logFile, 'a');
  // A clean environment: no proxies (all traffic is local), HOME inside the cluster folder.
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    TMPDIR: dir,
    NO_PROXY: '127.0.0.1,localhost',
    no_proxy: '127.0.0.1,localhost',
    ...options.env,
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
  if (tied) {
    liveGroups.add(pid);
    tellReaper(`+${pid}`);
  } else child.unref();
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

export async function stopProcess(proc: Proc, graceMs = 3000): Promise<void> {
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

export function logTail(proc: Proc, lines = 40): string {
  try {
    return fs.readFileSync(proc.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export class PortInUseError extends Error {}

/** Polls `probe` until it returns true, the process exits, or the deadline passes. */
export async function waitReady(
  proc: Proc,
  what: string,
  timeoutMs: number,
  probe: () => Promise<boolean>,
): Promise<void> {
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
export async function withPortRetry<T>(start: () => Promise<T>, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await start();
    } catch (err) {
      if (!(err instanceof PortInUseError) || i >= attempts) throw err;
    }
  }
}
