// `npm run fuzz -- [--runs N] [--seed S] [--batch B] [--only mesh,bytes]`: the fuzz properties of test/fuzz/
// for as long as asked. Progress goes to stderr; the last lines (stdout) give the count and the time, or the
// shrunk counterexample and the seed that replays it (exit 1).
import { parseArgs } from 'node:util';
import { envoyValidateAvailable, EnvoyValidateUnavailableError } from '../helpers/envoy-validate.js';
import { runBytesFuzz } from './bytes-fuzz.js';
import { runMeshFuzz } from './mesh-fuzz.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10000' },
    seed: { type: 'string' },
    batch: { type: 'string', default: '500' },
    only: { type: 'string', default: 'mesh,bytes' },
  },
});

function positive(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) {
    console.error(`--${name}: not a positive integer: ${text}`);
    process.exit(2);
  }
  return n;
}

const runs = positive('runs', values.runs);
const batch = positive('batch', values.batch);
const seed = values.seed !== undefined ? Number(values.seed) | 0 : (Date.now() ^ (process.pid << 16)) | 0;
const only = new Set(values.only.split(','));
const elapsed = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
let failed = false;

if (only.has('mesh') && !envoyValidateAvailable()) {
  console.error(`mesh: ${new EnvoyValidateUnavailableError().message}; or --only bytes`);
  process.exit(2);
}

if (only.has('mesh')) {
  const t0 = performance.now();
  console.error(`mesh: ${runs} runs, seed ${seed}, batches of ${batch}`);
  const { stats, failure } = await runMeshFuzz({
    runs,
    seed,
    batch,
    progress: (s) =>
      console.error(
        `mesh: ${s.runs} runs, ${s.acceptedObjects} objects accepted, ${s.rejectedObjects} rejected, ` +
          `${s.invalidEdits} invalid edits, ${s.envoyChecked} distinct resources passed Envoy's checker, ${elapsed(t0)}`,
      ),
  });
  if (failure) {
    failed = true;
    console.log(
      `mesh: FAILED after ${stats.runs} runs (${elapsed(t0)}); replay: --seed ${failure.seed} --batch ${batch}`,
    );
    console.log(`counterexample: ${failure.counterexample}`);
    for (const f of failure.failures) console.log(`  ${f}`);
  } else {
    console.log(
      `mesh: ${stats.runs} runs passed in ${elapsed(t0)} (seed ${seed}; ${stats.acceptedObjects} objects accepted, ` +
        `${stats.rejectedObjects} rejected, ${stats.invalidEdits} invalid edits; ${stats.envoyChecked} distinct resources through Envoy's checker in ${stats.envoyCalls} calls)`,
    );
  }
}

if (only.has('bytes') && !failed) {
  const t0 = performance.now();
  console.error(`bytes: ${runs} runs per decoder, seed ${seed}`);
  const results = await runBytesFuzz({
    runs,
    seed,
    progress: (name, done) => console.error(`bytes: ${name}: ${done} runs, ${elapsed(t0)}`),
  });
  for (const r of results) {
    if (r.failure) {
      failed = true;
      console.log(`bytes: ${r.name}: FAILED (seed ${seed}): ${r.failure}`);
    } else {
      console.log(`bytes: ${r.name}: ${r.runs} runs passed in ${(r.ms / 1000).toFixed(1)} s (${r.outcomes})`);
    }
  }
}

process.exitCode = failed ? 1 : 0;
