// The product as it ships, for the start-up and memory benchmarks: compiled by tsc (tsconfig.build.json)
// into node_modules/.cache/trellis-bench-dist and run with plain `node`. Running the sources through tsx
// would add about 30 MiB and its transform time to every number.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './report.js';

export const productDist = path.join(repoRoot, 'node_modules', '.cache', 'trellis-bench-dist');

/** Compiles the product into `productDist` and returns the path of the `trellis` executable there. */
export async function buildProduct(): Promise<{ dist: string; trellis: string; agent: string }> {
  fs.rmSync(productDist, { recursive: true, force: true });
  const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  // Type errors do not stop the emit; a module that fails to compile fails the run when it is loaded.
  await promisify(execFile)(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', productDist], {
    cwd: repoRoot,
    maxBuffer: 64 * 1024 * 1024,
  }).catch((err: unknown) => {
    const out = (err as { stdout?: string }).stdout ?? '';
    process.stderr.write(`bench: tsc reported errors (emitted anyway):\n${out.split('\n').slice(0, 10).join('\n')}\n`);
  });
  // The package's own package.json: "type": "module" for the compiled files, and its name and version
  // for the modules that look themselves up.
  fs.copyFileSync(path.join(repoRoot, 'package.json'), path.join(productDist, 'package.json'));
  const trellis = path.join(productDist, 'control-plane', 'main.js');
  const agent = path.join(productDist, 'sidecar', 'main.js');
  for (const file of [trellis, agent]) if (!fs.existsSync(file)) throw new Error(`bench: ${file} was not built`);
  return { dist: productDist, trellis, agent };
}

/** RSS of a live process from /proc: total, anonymous (private heap, stacks) and file-backed (mostly node's own code). */
export function processRss(pid: number): { rss: number; anon: number; file: number; hwm: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile'), hwm: kb('VmHWM') };
}
