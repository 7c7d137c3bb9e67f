// The control plane's young generation stays at V8's initial size while it starts (control-plane/startup-heap.ts,
// issue 14's idle RSS) and grows again under load once the ports listen. Read from the real process's
// /metrics (trellis_nodejs_heap_space_size_total_bytes) and, for the release, from a child process
// that allocates what survives.
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startTrellis } from '../helpers/process.js';
import { repoRoot } from '../helpers/peer-paths.js';

const MiB = 1024 * 1024;

function newSpaceBytes(metrics: string): number {
  const name = 'trellis_nodejs_heap_space_size_total_bytes{space="new"}';
  const line = metrics.split('\n').find((l) => l.startsWith(name));
  if (!line) throw new Error(`no ${name} in /metrics`);
  return Number(line.split(' ').at(-1));
}

test('trellis control-plane in local mode listens with the young generation at its initial size', async (t) => {
  const cp = startTrellis([
    'control-plane',
    '--config-dir',
    'examples/mesh',
    '--xds-port',
    '0',
    '--monitoring-port',
    '0',
  ]);
  t.teardown(() => cp.stop());
  const listening = await cp.waitForLog((l) => l.msg === 'control plane listening', 60_000);
  const metrics = await (await fetch(`http://127.0.0.1:${String(listening.monitoringPort)}/metrics`)).text();
  // Loading the modules with V8's default growth leaves 16 to 32 MiB here (measured: 32 MiB).
  t.true(newSpaceBytes(metrics) <= 8 * MiB, `new space ${newSpaceBytes(metrics)} bytes`);
});

// Holds, allocates 100 MB that survives, reports the new space; then releases and does the same again.
const SCRIPT = `
import v8 from 'node:v8';
import { holdYoungGeneration, releaseYoungGeneration } from './control-plane/startup-heap.ts';
const newSpace = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
const keep = [];
const survive = () => { for (let i = 0; i < 1e6; i++) keep.push({ i, s: 'x' + i }); };
holdYoungGeneration();
survive();
const held = newSpace();
releaseYoungGeneration();
survive();
process.stdout.write(JSON.stringify({ held, released: newSpace() }));
`;

test('held, the young generation does not grow however much survives; released, it grows as by default', async (t) => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', SCRIPT],
    { cwd: repoRoot, env: { ...process.env, NODE_OPTIONS: '' } },
  );
  const { held, released } = JSON.parse(stdout) as { held: number; released: number };
  t.true(held <= 4 * MiB, `held: ${held} bytes`);
  t.true(released >= 8 * MiB, `released: ${released} bytes`);
});
