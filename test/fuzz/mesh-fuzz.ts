// Runs the mesh properties (mesh-property.ts) over generated cases, for the ava slice and `npm run fuzz`.
//
// Envoy's checker is a process per call, so the runs go in batches: fast-check runs a batch with every
// in-process property (and shrinks at once when one fails), then every resource the batch generated that
// the checker has not passed before goes to it in one call. Should the checker refuse one, the batch is run
// again from its seed with the checker inside the property, so that fast-check finds the first failing case
// and shrinks it like any other.
import fc from 'fast-check';
import { validateEnvoyResources, type ValidationResult } from '../helpers/envoy-validate.js';
import { meshCaseArb, type MeshCase } from './arbitraries.js';
import { checkMeshCase, resourceKey, type EnvoyCheck } from './mesh-property.js';

export interface MeshFuzzOptions {
  readonly runs: number;
  readonly seed: number;
  /** Cases per batch (per call of Envoy's checker); 500. */
  readonly batch?: number;
  /** Called after every batch. */
  readonly progress?: (stats: MeshFuzzStats) => void;
}

export interface MeshFuzzStats {
  runs: number;
  acceptedObjects: number;
  rejectedObjects: number;
  /** Cases whose edit made an accepted object invalid (property 4). */
  invalidEdits: number;
  /** Distinct resources Envoy's checker passed. */
  envoyChecked: number;
  envoyCalls: number;
}

export interface MeshFuzzFailure {
  /** The seed of the batch that failed: `fc.check(…, { seed, numRuns })` replays it. */
  readonly seed: number;
  /** The shrunk case, as fast-check prints it. */
  readonly counterexample: string;
  readonly failures: readonly string[];
}

export interface MeshFuzzResult {
  readonly stats: MeshFuzzStats;
  readonly failure?: MeshFuzzFailure;
}

class PropertyFailure extends Error {
  constructor(readonly failures: readonly string[]) {
    super(failures.join('\n'));
  }
}

function envoyErrors(results: readonly ValidationResult[], checks: readonly EnvoyCheck[]): string[] {
  return results.flatMap((r) =>
    r.errors.map(
      (e) => `Envoy's checker rejects ${r.typeUrl.split('/').pop()} "${r.name}" (${checks[r.index]!.proxy}): ${e}`,
    ),
  );
}

function failureOf(seed: number, details: fc.RunDetails<[MeshCase]>): MeshFuzzFailure | undefined {
  if (!details.failed) return undefined;
  const error = details.errorInstance;
  return {
    seed,
    counterexample: fc.stringify(details.counterexample),
    failures: error instanceof PropertyFailure ? error.failures : [String(error)],
  };
}

/** Replays a batch with Envoy's checker inside the property; fast-check shrinks the first failing case. */
async function replayWithEnvoy(seed: number, numRuns: number): Promise<MeshFuzzFailure | undefined> {
  const property = fc.asyncProperty(meshCaseArb, async (c) => {
    const result = checkMeshCase(c);
    const failures = [...result.failures];
    if (result.envoy.length > 0) {
      failures.push(...envoyErrors(await validateEnvoyResources(result.envoy.map((e) => e.bytes)), result.envoy));
    }
    if (failures.length > 0) throw new PropertyFailure(failures);
  });
  return failureOf(seed, await fc.check(property, { seed, numRuns }));
}

export async function runMeshFuzz(options: MeshFuzzOptions): Promise<MeshFuzzResult> {
  const batch = options.batch ?? 500;
  const stats: MeshFuzzStats = {
    runs: 0,
    acceptedObjects: 0,
    rejectedObjects: 0,
    invalidEdits: 0,
    envoyChecked: 0,
    envoyCalls: 0,
  };
  let passed = new Set<string>();
  for (let done = 0, i = 0; done < options.runs; done += batch, i++) {
    const numRuns = Math.min(batch, options.runs - done);
    const seed = (options.seed + i) | 0;
    const pending = new Map<string, EnvoyCheck>();
    const property = fc.property(meshCaseArb, (c) => {
      const result = checkMeshCase(c);
      if (result.failures.length > 0) throw new PropertyFailure(result.failures);
      stats.runs++;
      stats.acceptedObjects += result.accepted;
      stats.rejectedObjects += result.rejected;
      stats.invalidEdits += result.invalidEdits;
      for (const e of result.envoy) {
        const key = resourceKey(e.bytes);
        if (!passed.has(key)) pending.set(key, e);
      }
    });
    const failure = failureOf(seed, fc.check(property, { seed, numRuns }));
    if (failure) return { stats, failure };
    if (pending.size > 0) {
      const checks = [...pending.values()];
      stats.envoyCalls++;
      const errors = envoyErrors(await validateEnvoyResources(checks.map((c) => c.bytes)), checks);
      if (errors.length > 0) {
        const replayed = await replayWithEnvoy(seed, numRuns);
        return { stats, failure: replayed ?? { seed, counterexample: '(not reproduced in replay)', failures: errors } };
      }
      // Bounded memory on long runs: forget what was passed once the set is large (it is only a cache).
      if (passed.size > 1_000_000) passed = new Set();
      for (const key of pending.keys()) passed.add(key);
      stats.envoyChecked += checks.length;
    }
    options.progress?.(stats);
  }
  return { stats };
}
