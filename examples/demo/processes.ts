// The demo's child processes: each runs in a process group of its own (spawned `detached`), so one
// signal to the group reaches everything it started, and a Ctrl-C in the terminal (which goes to the
// demo's foreground group only) is handled once, by the demo, which then stops every group: SIGTERM, and
// SIGKILL after a grace period. Every child carries TRELLIS_DEMO_RUN=<run id> in its environment, so a
// test (or a user) can find any process a run left behind in /proc. Output: each line of stdout and
// stderr goes to `<logDir>/<name>.log`; stdout lines that are JSON (pino) are parsed and kept for the
// demo to wait on ("control plane listening", "agent started", ...).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

export type LogLine = Readonly<Record<string, unknown>> & { readonly msg?: string };

/** The environment variable that marks every process of one demo run. */
export const RUN_MARKER = 'TRELLIS_DEMO_RUN';

export interface ChildSpec {
  /** Short name: the log file and the messages use it. */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
}

export class DemoChild {
  readonly lines: LogLine[] = [];
  readonly exited: Promise<number | null>;
  private readonly waiters = new Set<() => void>();
  private exitCode: number | null | undefined;
  private stderrTail = '';

  constructor(
    readonly spec: ChildSpec,
    readonly process: ChildProcess,
    readonly logFile: string,
  ) {
    const log = fs.createWriteStream(logFile, { flags: 'a' });
    // The log ends once the child's output streams have closed ('close', which comes after 'exit': lines the
    // child wrote just before it exited may still be on their way when 'exit' fires).
    const write = (text: string): void => {
      if (!log.writableEnded) log.write(text + '\n');
    };
    process.on('close', () => log.end());
    readline.createInterface({ input: process.stdout! }).on('line', (text) => {
      write(text);
      let parsed: LogLine;
      try {
        const value: unknown = JSON.parse(text);
        parsed = typeof value === 'object' && value !== null ? (value as LogLine) : { msg: text };
      } catch {
        parsed = { msg: text };
      }
      this.lines.push(parsed);
      if (this.lines.length > 2_000) this.lines.splice(0, 1_000);
      for (const wake of [...this.waiters]) wake();
    });
    readline.createInterface({ input: process.stderr! }).on('line', (text) => {
      write(text);
      this.stderrTail = (this.stderrTail + text + '\n').slice(-4_000);
    });
    this.exited = new Promise((resolve) => {
      process.on('exit', (code) => {
        this.exitCode = code;
        for (const wake of [...this.waiters]) wake();
        resolve(code);
      });
    });
  }

  get pid(): number {
    return this.process.pid!;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** The last stderr lines, for error messages. */
  get stderr(): string {
    return this.stderrTail;
  }

  /** Every parsed stdout line that matches, as it comes. */
  find(match: (line: LogLine) => boolean): LogLine[] {
    return this.lines.filter(match);
  }

  /** The first stdout line that matches (seen already or still to come); rejects if the child exits first or at the deadline. */
  waitFor(what: string, match: (line: LogLine) => boolean, timeoutMs: number): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const line = this.lines.find(match);
        if (line) {
          done();
          resolve(line);
        } else if (!this.running) {
          done();
          reject(new Error(`${this.spec.name} exited before ${what} (see ${this.logFile}):\n${this.stderr}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.spec.name}: no ${what} within ${timeoutMs / 1000} s (see ${this.logFile})`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Sends `signal` to the child's whole process group; false when it is gone already. */
  signalGroup(signal: NodeJS.Signals): boolean {
    if (!this.running) return false;
    try {
      process.kill(-this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}

/** Starts children and stops them all, each in its own process group. */
export class ProcessSupervisor {
  private readonly children: DemoChild[] = [];
  private stopping: Promise<void> | undefined;
  private readonly killOnExit = (): void => {
    for (const child of this.children) child.signalGroup('SIGKILL');
  };

  constructor(
    readonly runId: string,
    readonly logDir: string,
  ) {
    fs.mkdirSync(logDir, { recursive: true });
    // Last resort (an uncaught error, process.exit): no child outlives the demo.
    process.on('exit', this.killOnExit);
  }

  get all(): readonly DemoChild[] {
    return this.children;
  }

  start(spec: ChildSpec): DemoChild {
    if (this.stopping) throw new Error(`not starting ${spec.name}: the demo is stopping`);
    const child = spawn(spec.command, [...spec.args], {
      cwd: spec.cwd,
      env: { ...process.env, ...spec.env, [RUN_MARKER]: this.runId },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const started = new DemoChild(spec, child, path.join(this.logDir, `${spec.name}.log`));
    this.children.push(started);
    return started;
  }

  /** SIGTERM to every group, then SIGKILL to those still there after `graceMs`; resolves once all exited. Idempotent. */
  stopAll(graceMs = 5_000): Promise<void> {
    return (this.stopping ??= (async () => {
      const running = this.children.filter((c) => c.running);
      for (const child of running) child.signalGroup('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const all = Promise.all(running.map((c) => c.exited));
      const grace = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
      if ((await Promise.race([all, grace])) === 'late') {
        for (const child of running) child.signalGroup('SIGKILL');
        await all;
      }
      clearTimeout(timer);
      // A group may hold processes its leader started and left behind: they go too.
      for (const child of this.children) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // the group is empty: the usual case
        }
      }
      process.removeListener('exit', this.killOnExit);
    })());
  }
}
