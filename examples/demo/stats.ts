// What the load loop saw, per service and subset: calls, failures, retries and latency. One call between
// two services is a Hop: the caller measured its latency and read its retries (grpc-js's
// `grpc-previous-rpc-attempts`), the server that answered said its version (the subset) and the SPIFFE ID
// of the caller as its TLS handshake proved it. Totals cover the whole run; the live view reads the last
// few seconds. Latencies go into a log-bucketed histogram (buckets 2% apart), so memory stays flat however
// long the demo runs and p50/p99 are within 2%.

export interface Hop {
  /** The called service (its `app`). */
  readonly service: string;
  /** The version of the server that answered; "" when the call failed before any answered. */
  readonly subset: string;
  readonly ok: boolean;
  /** The gRPC status name of a failure (UNAVAILABLE, …); "" when ok. */
  readonly code: string;
  /** The latency the caller measured; undefined when nobody measured it (a failure one hop further down). */
  readonly ms: number | undefined;
  /** Attempts after the first (the route's retry policy). */
  readonly retries: number;
  /** The Pod that answered, and the caller's identity it saw ("" for plaintext). */
  readonly server?: string;
  readonly peer?: string;
}

const BASE_MS = 0.01;
const GROWTH = Math.log(1.02);

export class Histogram {
  private readonly buckets = new Map<number, number>();
  private n = 0;

  record(ms: number): void {
    const index = Math.max(0, Math.floor(Math.log(Math.max(ms, BASE_MS) / BASE_MS) / GROWTH));
    this.buckets.set(index, (this.buckets.get(index) ?? 0) + 1);
    this.n++;
  }

  merge(other: Histogram): void {
    for (const [i, c] of other.buckets) this.buckets.set(i, (this.buckets.get(i) ?? 0) + c);
    this.n += other.n;
  }

  get count(): number {
    return this.n;
  }

  /** The q-quantile (0..1) in ms: the upper edge of its bucket; undefined when empty. */
  quantile(q: number): number | undefined {
    if (this.n === 0) return undefined;
    const rank = Math.max(1, Math.ceil(q * this.n));
    let seen = 0;
    for (const i of [...this.buckets.keys()].sort((a, b) => a - b)) {
      seen += this.buckets.get(i)!;
      if (seen >= rank) return BASE_MS * Math.exp((i + 1) * GROWTH);
    }
    return undefined;
  }
}

export class Aggregate {
  requests = 0;
  failures = 0;
  retries = 0;
  readonly latency = new Histogram();
  /** Failed calls by gRPC status name. */
  readonly codes = new Map<string, number>();
  /** Failed calls by the retries they had made: a call that failed with retries left was not retried. */
  readonly failedAfter = new Map<number, number>();

  add(hop: Hop): void {
    this.requests++;
    this.retries += hop.retries;
    if (hop.ms !== undefined) this.latency.record(hop.ms);
    if (!hop.ok) {
      this.failures++;
      this.codes.set(hop.code, (this.codes.get(hop.code) ?? 0) + 1);
      this.failedAfter.set(hop.retries, (this.failedAfter.get(hop.retries) ?? 0) + 1);
    }
  }

  merge(other: Aggregate): void {
    this.requests += other.requests;
    this.failures += other.failures;
    this.retries += other.retries;
    this.latency.merge(other.latency);
    for (const [c, n] of other.codes) this.codes.set(c, (this.codes.get(c) ?? 0) + n);
    for (const [r, n] of other.failedAfter) this.failedAfter.set(r, (this.failedAfter.get(r) ?? 0) + n);
  }
}

/** Aggregates per service and per service + subset. */
export class ServiceStats {
  readonly services = new Map<string, { all: Aggregate; subsets: Map<string, Aggregate> }>();

  add(hop: Hop): void {
    let entry = this.services.get(hop.service);
    if (!entry) this.services.set(hop.service, (entry = { all: new Aggregate(), subsets: new Map() }));
    entry.all.add(hop);
    let subset = entry.subsets.get(hop.subset);
    if (!subset) entry.subsets.set(hop.subset, (subset = new Aggregate()));
    subset.add(hop);
  }

  merge(other: ServiceStats): void {
    for (const [name, theirs] of other.services) {
      let entry = this.services.get(name);
      if (!entry) this.services.set(name, (entry = { all: new Aggregate(), subsets: new Map() }));
      entry.all.merge(theirs.all);
      for (const [subset, agg] of theirs.subsets) {
        let mine = entry.subsets.get(subset);
        if (!mine) entry.subsets.set(subset, (mine = new Aggregate()));
        mine.merge(agg);
      }
    }
  }
}

/** Everything the load loop saw: totals, per-second buckets for the live view, and the peers each server saw. */
export class DemoStats {
  readonly total = new ServiceStats();
  private readonly seconds = new Map<number, ServiceStats>();
  /** Per server Pod: caller identity → calls. */
  readonly peers = new Map<string, Map<string, number>>();
  /** Calls the load loop could not make at all (the frontend's admin port did not answer). */
  loadErrors = 0;
  lastLoadError = '';

  constructor(private readonly now: () => number = Date.now) {}

  add(hops: readonly Hop[]): void {
    const second = Math.floor(this.now() / 1000);
    let bucket = this.seconds.get(second);
    if (!bucket) {
      this.seconds.set(second, (bucket = new ServiceStats()));
      for (const s of this.seconds.keys()) if (s < second - 60) this.seconds.delete(s);
    }
    for (const hop of hops) {
      this.total.add(hop);
      bucket.add(hop);
      if (hop.server !== undefined) {
        let seen = this.peers.get(hop.server);
        if (!seen) this.peers.set(hop.server, (seen = new Map()));
        const peer = hop.peer ?? '';
        seen.set(peer, (seen.get(peer) ?? 0) + 1);
      }
    }
  }

  /** The last `seconds` whole seconds, plus the current one. */
  recent(seconds: number): ServiceStats {
    const now = Math.floor(this.now() / 1000);
    const out = new ServiceStats();
    for (const [s, stats] of this.seconds) if (s >= now - seconds) out.merge(stats);
    return out;
  }
}

export interface AggregateSummary {
  readonly requests: number;
  readonly failures: number;
  readonly retries: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  /** Failed calls by gRPC status name. */
  readonly failureCodes: Readonly<Record<string, number>>;
  /** Failed calls by how many retries they had made. */
  readonly failuresByRetries: Readonly<Record<string, number>>;
}

export interface SubsetSummary extends AggregateSummary {
  /** This subset's share of the service's answered calls, 0..1. */
  readonly share: number;
}

export interface ServiceSummary extends AggregateSummary {
  /** By the version of the server that answered; "" holds calls that failed before any server answered. */
  readonly subsets: Readonly<Record<string, SubsetSummary>>;
}

const round = (ms: number | undefined): number | null => (ms === undefined ? null : Math.round(ms * 100) / 100);

const byKey = <K extends string | number>(m: ReadonlyMap<K, number>): Record<string, number> =>
  Object.fromEntries([...m].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([k, n]) => [String(k), n]));

export function summarise(agg: Aggregate): AggregateSummary {
  return {
    requests: agg.requests,
    failures: agg.failures,
    retries: agg.retries,
    p50Ms: round(agg.latency.quantile(0.5)),
    p99Ms: round(agg.latency.quantile(0.99)),
    failureCodes: byKey(agg.codes),
    failuresByRetries: byKey(agg.failedAfter),
  };
}

export function summariseServices(stats: ServiceStats): Record<string, ServiceSummary> {
  const out: Record<string, ServiceSummary> = {};
  for (const [name, entry] of [...stats.services].sort((a, b) => a[0].localeCompare(b[0]))) {
    const answered = [...entry.subsets].filter(([s]) => s !== '').reduce((n, [, a]) => n + a.requests, 0);
    const subsets: Record<string, SubsetSummary> = {};
    for (const [subset, agg] of [...entry.subsets].sort((a, b) => a[0].localeCompare(b[0]))) {
      subsets[subset] = {
        ...summarise(agg),
        share: subset === '' || answered === 0 ? 0 : agg.requests / answered,
      };
    }
    out[name] = { ...summarise(entry.all), subsets };
  }
  return out;
}
