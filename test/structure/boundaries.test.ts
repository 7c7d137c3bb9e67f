// The layering rules of .dependency-cruiser.cjs (design.md §1–2) are enforced by `npm run lint`. This
// test writes an import that breaks a rule into a temporary file inside the product and checks that the
// checker `npm run lint` runs refuses it, naming the rule; the same file with an allowed import passes.
// Serial: a probe file must not exist while the graph test reads the whole tree.
import test from 'ava';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const depcruise = path.join(root, 'node_modules/.bin/depcruise');

async function cruise(file: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(
      depcruise,
      [file, '--config', '.dependency-cruiser.cjs', '--output-type', 'err'],
      { cwd: root, timeout: 120_000 },
    );
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

async function withProbe<T>(dir: string, body: string, fn: (rel: string) => Promise<T>): Promise<T> {
  const rel = path.join(dir, `lint-probe-${process.pid}-${Date.now()}.ts`);
  fs.writeFileSync(path.join(root, rel), body);
  try {
    return await fn(rel);
  } finally {
    fs.rmSync(path.join(root, rel), { force: true });
  }
}

test.serial('an import from the xDS engine into the model breaks the lint, naming the rule', async (t) => {
  const result = await withProbe(
    'control-plane/xds',
    "import type { MeshService } from '../model/snapshot.js';\nexport type Probe = MeshService;\n",
    cruise,
  );
  t.not(result.code, 0, result.output);
  t.regex(result.output, /xds-engine-knows-no-config-model/);
});

test.serial('the product importing the demo breaks the lint', async (t) => {
  const result = await withProbe(
    'control-plane',
    "export const probe = (): Promise<unknown> => import('../examples/demo/run.js');\n",
    cruise,
  );
  t.not(result.code, 0, result.output);
  t.regex(result.output, /product-not-examples-tests-bench/);
});

test.serial('the same probe with an allowed import passes', async (t) => {
  const result = await withProbe(
    'control-plane/xds',
    "import type { ProxyInfo } from './node.js';\nexport type Probe = ProxyInfo;\n",
    cruise,
  );
  t.is(result.code, 0, result.output);
});

test.serial('docs/architecture.md holds the graph of the code as it is', async (t) => {
  try {
    await run(process.execPath, ['--import=tsx', 'scripts/graph.ts', '--check'], { cwd: root, timeout: 180_000 });
    t.pass();
  } catch (err) {
    const e = err as { stderr?: string };
    t.fail(`the graph is stale; run npm run graph\n${e.stderr ?? String(err)}`);
  }
});
