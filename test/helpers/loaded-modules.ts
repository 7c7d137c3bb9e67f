// Which modules a process loads: runs a child under tsx with record-loads.mjs, which appends the URL of every
// module an ESM import resolves to a file. Node's ESM loader offers no list of loaded modules, and
// process.moduleLoadList names only Node's own; the resolve hook sees every import of our code and of the
// packages it imports (a CommonJS package's own require() calls are not seen, the package itself is).
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from './peer-paths.js';

export interface LoadedModules {
  /** Repo-relative paths of our modules (`crds/validator.ts`), and `node_modules/<package>/…` for packages. */
  readonly modules: readonly string[];
  readonly exitCode: number | null;
  /** True when `stopWhenOutput` was seen (and the process was sent SIGTERM). */
  readonly sawStopOutput: boolean;
  readonly stdout: string;
  readonly stderr: string;
}

export interface LoadedModulesOptions {
  /** Sent to stdin, which is then closed. */
  readonly input?: string;
  /** A long-running process: SIGTERM once its stdout contains this (e.g. a log line saying it is up). */
  readonly stopWhenOutput?: string;
}

/** Runs `node --import tsx <args>` from the repo root and lists what it imported, until it exits. */
export async function loadedModules(
  args: readonly string[],
  options: LoadedModulesOptions = {},
): Promise<LoadedModules> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-loads-'));
  const file = path.join(dir, 'loads.txt');
  await fs.writeFile(file, '');
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', './test/helpers/record-loads.mjs', ...args], {
      cwd: repoRoot,
      env: { ...process.env, TRELLIS_RECORD_LOADS: file },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let sawStopOutput = false;
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!sawStopOutput && options.stopWhenOutput !== undefined && stdout.includes(options.stopWhenOutput)) {
        sawStopOutput = true;
        child.kill('SIGTERM');
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.end(options.input ?? '');
    const exitCode = await new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const root = `file://${repoRoot}/`;
    const modules = [
      ...new Set(
        (await fs.readFile(file, 'utf8'))
          .split('\n')
          .filter((url) => url.startsWith(root))
          .map((url) => url.slice(root.length)),
      ),
    ].sort();
    return { modules, exitCode, sawStopOutput, stdout, stderr };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** The modules of `loaded` that match any of `patterns` (for an assertion that lists the offenders). */
export function matching(loaded: readonly string[], patterns: readonly RegExp[]): string[] {
  return loaded.filter((m) => patterns.some((p) => p.test(m)));
}
