// The control plane under benchmark as a child process (bench/server.ts): its events, its /proc numbers
// (RSS, peak RSS, CPU time) and its /metrics.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { repoRoot } from './report.js';
import { CONTROL_PLANE_MALLOC_ENV } from '../deploy/images/runtime-env.js';

export type ServerEvent =
  | { event: 'listening'; xdsPort: number; monitoringPort: number; pid: number }
  | { event: 'loaded'; at: number; generation: number; errors: number }
  | { event: 'pushed'; at: number; durationMs: number; streams: number; encodeCount: number; cacheSize: number }
  | { event: 'stats'; encodeCount: number; cacheSize: number; streams: number }
  | { event: 'profiling' }
  | { event: 'profiled'; file: string }
  | { event: 'heap-snapshot'; file: string }
  | { event: 'gc'; heapUsed: number; external: number; rss: number }
  | { event: 'snapshot'; at: number; version: number };

let clockTicks: number | undefined;

function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** utime + stime, in ms, of the process or thread whose `stat` file (procfs) is `statFile`. */
function cpuMsOf(statFile: string): number {
  const stat = fs.readFileSync(statFile, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond();
}

/** utime + stime of a process, in ms (resolution: one clock tick, usually 10 ms). */
export function processCpuMs(pid: number): number {
  return cpuMsOf(`/proc/${pid}/stat`);
}

/**
 * CPU time (user + system, ms) of a process's main thread alone (its task whose id is the pid): for a Node
 * process, the JavaScript; the rest of processCpuMs is V8's platform threads (compilers, GC helpers) and
 * libuv's pool.
 */
export function mainThreadCpuMs(pid: number): number {
  return cpuMsOf(`/proc/${pid}/task/${pid}/stat`);
}

/** VmRSS and VmHWM (peak RSS) of a process, in bytes. */
export function processMemory(pid: number): { rss: number; hwm: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** Sums every sample of each named metric in a Prometheus text exposition. */
export function metricSums(text: string, names: readonly string[]): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m && m[1]! in out) out[m[1]!]! += Number(m[2]);
  }
  return out;
}

export interface ServerStartOptions {
  /** The static-resources file of bench/server.ts; or `script` instead. */
  readonly staticResources?: string;
  /** Another server script (e.g. bench/xds-mesh-server.ts) and its arguments, instead of bench/server.ts. */
  readonly script?: { readonly path: string; readonly args: readonly string[] };
  readonly debounceMs: number;
  /** CPU list for taskset (e.g. "0"); undefined: not pinned. */
  readonly cpus?: string;
}

export class ServerProcess {
  readonly events: ServerEvent[] = [];
  private readonly waiters: { match: (e: ServerEvent) => boolean; resolve: (e: ServerEvent) => void }[] = [];
  private readonly exited: Promise<number | null>;
  stderr = '';

  private constructor(
    readonly child: ChildProcess,
    readonly pid: number,
  ) {
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      let event: ServerEvent;
      try {
        event = JSON.parse(line) as ServerEvent;
      } catch {
        process.stderr.write(`server: ${line}\n`);
        return;
      }
      this.events.push(event);
      for (const w of [...this.waiters]) {
        if (w.match(event)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(event);
        }
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
      if (this.stderr.length > 64 * 1024) this.stderr = this.stderr.slice(-32 * 1024);
    });
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  static async start(
    options: ServerStartOptions,
  ): Promise<{ server: ServerProcess; xdsPort: number; monitoringPort: number }> {
    // TRELLIS_BENCH_SERVER_FLAGS: extra Node flags for the control plane (e.g. --trace-gc), to investigate.
    const extra = (process.env.TRELLIS_BENCH_SERVER_FLAGS ?? '').split(' ').filter((f) => f !== '');
    const nodeArgs = [
      ...extra,
      '--expose-gc',
      '--import',
      'tsx',
      ...(options.script
        ? [options.script.path, ...options.script.args]
        : [path.join('bench', 'server.ts'), '--static-resources', options.staticResources ?? '']),
      '--debounce-after',
      `${options.debounceMs}ms`,
    ];
    // The control plane's image environment (the allocator setting); TRELLIS_BENCH_GLIBC_DEFAULTS=1 leaves it out.
    const env =
      process.env.TRELLIS_BENCH_GLIBC_DEFAULTS === '1' ? process.env : { ...process.env, ...CONTROL_PLANE_MALLOC_ENV };
    const child = options.cpus
      ? spawn('taskset', ['-c', options.cpus, process.execPath, ...nodeArgs], {
          cwd: repoRoot,
          env,
          stdio: ['pipe', 'pipe', 'pipe'],
        })
      : spawn(process.execPath, nodeArgs, { cwd: repoRoot, env, stdio: ['pipe', 'pipe', 'pipe'] });
    if (child.pid === undefined) throw new Error('could not start the control plane');
    const server = new ServerProcess(child, child.pid);
    const listening = await Promise.race([
      server.waitFor((e) => e.event === 'listening', 60_000),
      server.exited.then((code) => {
        throw new Error(`control plane exited (${code}) before listening: ${server.stderr}`);
      }),
    ]);
    if (listening.event !== 'listening') throw new Error('unexpected event');
    return { server, xdsPort: listening.xdsPort, monitoringPort: listening.monitoringPort };
  }

  waitFor(match: (e: ServerEvent) => boolean, timeoutMs: number): Promise<ServerEvent> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`control plane: no matching event within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = {
        match,
        resolve: (e: ServerEvent) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      this.waiters.push(waiter);
    });
  }

  command(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  /** Forces a full GC in the control plane; returns the live heap (bytes) after it. */
  async gc(): Promise<{ heapUsed: number; external: number }> {
    this.command('gc');
    const e = await this.waitFor((x) => x.event === 'gc', 30_000);
    return e.event === 'gc' ? e : { heapUsed: NaN, external: NaN };
  }

  cpuMs(): number {
    return processCpuMs(this.pid);
  }

  /** The main thread's share of cpuMs() (mainThreadCpuMs). */
  mainCpuMs(): number {
    return mainThreadCpuMs(this.pid);
  }

  memory(): { rss: number; hwm: number } {
    return processMemory(this.pid);
  }

  /** SIGTERM (a clean close), then SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
