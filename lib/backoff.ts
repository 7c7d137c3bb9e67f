// The one backoff formula (issue 16): exponential with full-range jitter in the upper half, capped.
// Retry n (0-based) waits a delay drawn in [d/2, d], d = min(max, initial · 2^n). Used by every loop
// that retries in the control plane (Kubernetes list/watch, status writes, the root-cert publisher) and
// offered to the agent. A leaf: no imports.

export interface BackoffPolicy {
  /** The ceiling of the first delay; 500 ms. */
  readonly initialMs?: number;
  /** The largest delay; 30 s. */
  readonly maxMs?: number;
}

export const DEFAULT_BACKOFF: Required<BackoffPolicy> = { initialMs: 500, maxMs: 30_000 };

/** Delay before retry number `attempt` (0-based): d = min(max, initial · 2^attempt), drawn in [d/2, d]. */
export function backoffDelay(attempt: number, policy: BackoffPolicy = {}, random: () => number = Math.random): number {
  const initial = policy.initialMs ?? DEFAULT_BACKOFF.initialMs;
  const max = policy.maxMs ?? DEFAULT_BACKOFF.maxMs;
  if (!(initial >= 0) || !(max >= 0))
    throw new RangeError(`backoff: initialMs and maxMs must be >= 0 (got ${initial}, ${max})`);
  const d = Math.min(max, initial * 2 ** Math.min(Math.max(0, attempt), 30));
  return Math.round(d / 2 + (random() * d) / 2);
}

/**
 * The attempt counter of one retrying thing: `next()` gives the delay of the next retry and counts it,
 * `reset()` after a success starts over at the initial delay.
 */
export class Backoff {
  private count = 0;

  constructor(
    private readonly policy: BackoffPolicy = {},
    private readonly random: () => number = Math.random,
  ) {}

  /** Failures since the last reset. */
  get attempts(): number {
    return this.count;
  }

  /** The delay before the next retry; counts one more failure. */
  next(): number {
    const delay = backoffDelay(this.count, this.policy, this.random);
    this.count += 1;
    return delay;
  }

  reset(): void {
    this.count = 0;
  }
}
