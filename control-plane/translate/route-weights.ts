// Weights of a split (HTTP weighted_clusters, TCP weighted clusters), as Istio translates them: relative,
// passed through as written, zero weights left out by the caller. The one case Istio does not handle:
// Envoy refuses a split whose weights add up to more than 2^32-1 ("The sum of weights of all weighted
// clusters of route … exceeds 4294967295", weighted_cluster_specifier.cc), and gRPC clients (A28) refuse it
// too. Weights are int32 and a route has up to 32 destinations, so a sum can reach 32 × (2^31-1): such a
// split is scaled down in proportion, each weight staying at least 1.

export const UINT32_MAX = 4_294_967_295;

/** The weights to send for positive `weights`: unchanged when their sum fits in a uint32, else scaled. */
export function splitWeights(weights: readonly number[]): number[] {
  const sum = weights.reduce((a, w) => a + w, 0);
  if (sum <= UINT32_MAX) return [...weights];
  // Room for the `max(1, …)` of every weight, so the scaled sum stays within UINT32_MAX.
  const budget = UINT32_MAX - weights.length;
  return weights.map((w) => Math.max(1, Math.floor((w * budget) / sum)));
}
