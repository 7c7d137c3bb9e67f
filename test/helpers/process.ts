// `trellis` as a real process (node + tsx on the sources), with its JSON log lines parsed as they arrive.
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export type LogLine = Record<string, unknown> & { msg?: string };

export interface TrellisProcess {
  readonly child: ChildProcess;
  /** Parsed JSON lines of stdout so far. */
  readonly logs: LogLine[];
  /** Everything else it printed (stderr, non-JSON stdout), for failure messages. */
  readonly output: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first log line (already seen or to come) whose `msg` is `msg`. */
  logLine(msg: string, timeoutMs?: number): Promise<LogLine>;
  /** SIGKILL if still running (teardown). */
  kill(): void;
}

export function spawnTrellis(args: readonly string[]): TrellisProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'control-plane/main.ts', ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  const output: string[] = [];
  const watchers: { msg: string; resolve: (line: LogLine) => void }[] = [];
  readline.createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      output.push(text);
      return;
    }
    logs.push(line);
    for (const w of watchers.filter((w) => w.msg === line.msg)) {
      watchers.splice(watchers.indexOf(w), 1);
      w.resolve(line);
    }
  });
  readline.createInterface({ input: child.stderr! }).on('line', (text) => output.push(text));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    logs,
    output,
    exited,
    logLine(msg, timeoutMs = 30_000) {
      const seen = logs.find((l) => l.msg === msg);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`no log line "${msg}" within ${timeoutMs} ms; output:\n${output.join('\n')}`));
        }, timeoutMs);
        const done = (line: LogLine): void => {
          clearTimeout(timer);
          resolve(line);
        };
        watchers.push({ msg, resolve: done });
        void exited.then(({ code, signal }) => {
          clearTimeout(timer);
          reject(new Error(`exited (${code ?? signal}) before log line "${msg}"; output:\n${output.join('\n')}`));
        });
      });
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
