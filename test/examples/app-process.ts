// Runs one example app (examples/kubernetes/apps/main.ts) as a real child process and reads its JSON logs.
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { repoRoot } from '../helpers/peer-paths.js';
import type { LogLine } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';

export interface AppProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logs: LogLine[];
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  stop(): Promise<void>;
}

export function startApp(name: string, args: readonly string[], env: Readonly<Record<string, string>>): AppProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/kubernetes/apps/main.ts', ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  readline.createInterface({ input: child.stdout! }).on('line', (text) => {
    try {
      logs.push(JSON.parse(text) as LogLine);
    } catch {
      logs.push({ msg: text });
    }
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4_000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = (): void => void child.kill('SIGKILL');
  process.once('exit', kill);
  return {
    name,
    child,
    logs,
    waitForLog: (match, timeoutMs = 60_000) =>
      waitFor(
        `${name}: a log line`,
        () => {
          if (child.exitCode !== null) throw new Error(`${name} exited ${child.exitCode}: ${stderr.slice(-2_000)}`);
          return logs.find(match);
        },
        timeoutMs,
      ).catch((err: Error) => {
        const last = logs.slice(-5).map((l) => JSON.stringify(l));
        throw new Error(`${err.message}; last logs: ${last.join(' | ')}; stderr: ${stderr.slice(-1_000)}`);
      }),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      process.removeListener('exit', kill);
    },
  };
}
