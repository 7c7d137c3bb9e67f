// The Go peers of the xDS comparison (tools/peers/go-control-plane, tools/peers/xds-load) as child processes
// that speak JSON lines on stdout and take commands on stdin: the go-control-plane server (`gcp`) and the
// neutral ADS load generator (`xds-load`). Used by bench/xds-compare.ts and test/peers/gcp.test.ts.
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { peerBinary } from '../test/helpers/peer-paths.js';

export type GcpCache = 'snapshot' | 'linear';

export type GoEvent =
  | { event: 'listening'; xdsPort: number; pid: number; cache: GcpCache }
  | { event: 'loaded'; at: number; parsedAt?: number; generation: number; resources: number; changed: number }
  | { event: 'stats'; rss: number; hwm: number; cpuMs: number }
  | { event: 'converged'; startedAt: number; allMs: number; streamMs: number[] }
  | { event: 'error'; stream: number; error: string }
  | { event: 'watching'; round: number }
  | {
      event: 'changed';
      round: number;
      complete: boolean;
      /** Per stream: epoch ms when it had written its ACK of the change; null when it missed it. */
      ackedAt: (number | null)[];
      firstReceiptAt: number | null;
    }
  | { event: 'counters'; bytes: number; responses: number; byType: Record<string, number> }
  // xds-load --mesh (bench/mesh-load.ts)
  | { event: 'connected'; batch: number; startedAt: number; ms: number[] }
  /** Per stream open when the round started: epoch ms when it had written its ACK of the change; null: missed. */
  | { event: 'round'; round: number; complete: boolean; ackedAt: (number | null)[] }
  | { event: 'held'; streams: Record<string, Record<string, string>>[] };

/** The path of a built Go peer binary, or undefined when `npm run peers` has not built it. */
export function goPeer(binary: 'gcp' | 'xds-load'): string | undefined {
  return peerBinary(binary);
}

/** A Go peer process: its events (JSON lines on stdout), commands on stdin, stderr kept for errors. */
export class GoProcess {
  readonly events: GoEvent[] = [];
  readonly errors: string[] = [];
  stderr = '';
  private readonly waiters: { match: (e: GoEvent) => boolean; resolve: (e: GoEvent) => void }[] = [];
  private readonly exited: Promise<number | null>;
  readonly pid: number;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    if (child.pid === undefined) throw new Error(`could not start ${name}`);
    this.pid = child.pid;
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      let event: GoEvent;
      try {
        event = JSON.parse(line) as GoEvent;
      } catch {
        this.stderr += `${line}\n`;
        return;
      }
      if (event.event === 'error' && this.errors.length < 20) this.errors.push(`${name}: ${event.error}`);
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

  static spawn(name: string, binary: string, args: readonly string[]): GoProcess {
    return new GoProcess(name, spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'] }));
  }

  /** The first event (already seen or still to come) that matches; rejects at the timeout or when the process exits. */
  waitFor<E extends GoEvent>(match: (e: GoEvent) => e is E, timeoutMs: number, since = 0): Promise<E> {
    const seen = this.events.slice(since).find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise<E>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i !== -1) this.waiters.splice(i, 1);
        reject(
          new Error(`${this.name}: no matching event within ${timeoutMs} ms; stderr: ${this.stderr.slice(-2000)}`),
        );
      }, timeoutMs);
      const waiter = {
        match,
        resolve: (e: GoEvent) => {
          clearTimeout(timer);
          resolve(e as E);
        },
      };
      this.waiters.push(waiter);
      void this.exited.then((code) => {
        if (!this.waiters.includes(waiter)) return;
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        clearTimeout(timer);
        reject(new Error(`${this.name} exited (${code}): ${this.stderr.slice(-2000)}`));
      });
    });
  }

  command(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  /** Closes stdin (the load generator exits on it), SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.stdin!.end();
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

export const isEvent =
  <K extends GoEvent['event']>(kind: K) =>
  (e: GoEvent): e is Extract<GoEvent, { event: K }> =>
    e.event === kind;

/** Starts the go-control-plane server on `file`; resolves once it listens. */
export async function startGcp(
  binary: string,
  file: string,
  cache: GcpCache,
): Promise<{ server: GoProcess; xdsPort: number }> {
  const server = GoProcess.spawn(`gcp (${cache})`, binary, ['--resources', file, '--cache', cache, '--port', '0']);
  const listening = await server.waitFor(isEvent('listening'), 60_000);
  return { server, xdsPort: listening.xdsPort };
}

export interface LoadOptions {
  readonly target: string;
  readonly protocol: 'sotw' | 'delta';
  readonly streams: number;
  readonly connections: number;
  readonly routes: readonly string[];
  readonly record?: boolean;
}

/** Starts the load generator; it opens every stream at once and reports "converged". */
export function startLoad(binary: string, o: LoadOptions): GoProcess {
  return GoProcess.spawn(`xds-load (${o.protocol}, ${o.streams})`, binary, [
    '--target',
    o.target,
    '--protocol',
    o.protocol,
    '--streams',
    String(o.streams),
    '--connections',
    String(o.connections),
    '--routes',
    o.routes.join(','),
    ...(o.record ? ['--record'] : []),
  ]);
}
