// Waits until CustomResourceDefinitions are Established. `kubectl wait --for condition=established crd --all`
// fails at once, instead of waiting, when it reads a CRD the API server has not given conditions yet
// (".status.conditions accessor error: <nil>"); CI hit that right after an apply.
import type { Cluster } from './cluster.js';
import { waitFor } from './wait.js';

interface Crd {
  readonly metadata?: { readonly name?: string };
  readonly status?: { readonly conditions?: readonly { readonly type?: string; readonly status?: string }[] };
}

/** Resolves once every CRD in the cluster (or those named) has Established=True; rejects after `timeoutMs`. */
export async function crdsEstablished(
  cluster: Cluster,
  names: readonly string[] = [],
  timeoutMs = 60_000,
): Promise<void> {
  let pending: string[] = [];
  try {
    await waitFor(
      'CRDs Established',
      async () => {
        const { code, stdout } = await cluster.kubectl(['get', 'crd', ...names, '-o', 'json'], { allowFailure: true });
        if (code !== 0) return false;
        // One name gives the CRD itself; none or several give a List.
        const parsed = JSON.parse(stdout) as Crd & { readonly items?: readonly Crd[] };
        const items = names.length === 1 ? [parsed] : (parsed.items ?? []);
        pending = items
          .filter((i) => !(i.status?.conditions ?? []).some((c) => c.type === 'Established' && c.status === 'True'))
          .map((i) => i.metadata?.name ?? '?');
        return pending.length === 0;
      },
      timeoutMs,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; not Established: ${pending.join(', ')}`, { cause: err });
  }
}
