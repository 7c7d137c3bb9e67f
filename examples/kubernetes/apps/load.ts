// The frontend's load: `n` GetReviews calls, `concurrency` at a time, tallied into one JSON summary (what
// `GET /call` answers): successes per reviews version and per pod, failures per status code, the retries
// that preceded the successful answers, the identities every hop saw, and latency percentiles. A call
// whose reviews answered without a rating (ratings failed) is a success here, counted in ratingsFailures.
import * as grpc from '@grpc/grpc-js';
import { reviewsService, type RatingReply, type ReviewsReply } from './api.js';
import { unary } from './mesh.js';

export interface LoadOptions {
  readonly n: number;
  readonly concurrency: number;
  readonly deadlineMs: number;
  /** Sent as the `end-user` metadata (the header-routing example matches it); none when ''. */
  readonly user: string;
  readonly product: string;
  /** Also return `records`, one per call in order (the demo computes per-version percentiles from them). */
  readonly records?: boolean;
}

/** One call of a load, when asked for (`/call?records=1`). */
export type CallRecord =
  | {
      readonly ok: true;
      readonly ms: number;
      readonly version: string;
      readonly pod: string;
      readonly caller: string;
      readonly attempt: number;
      readonly rating?: RatingReply;
      readonly ratingError?: ReviewsReply['ratingError'];
      readonly ratingMs: number;
    }
  | {
      readonly ok: false;
      readonly ms: number;
      readonly code: string;
      readonly details: string;
      readonly retries: number;
    };

/** '' (no client certificate on that hop) is shown as this key. */
export const PLAINTEXT = '(plaintext)';

export interface LoadSummary {
  readonly calls: number;
  readonly ok: number;
  readonly failed: number;
  /** Successful calls per reviews version (`v1`, `v2`, `v3`). */
  readonly byVersion: Record<string, number>;
  /** Successful calls per reviews pod. */
  readonly byPod: Record<string, number>;
  /** Ratings answers per ratings pod. */
  readonly byRatingsPod: Record<string, number>;
  /** Failed calls (frontend → reviews) per gRPC status name (`UNAVAILABLE`, `DEADLINE_EXCEEDED`, …). */
  readonly failures: Record<string, number>;
  /** Up to 5 distinct failure messages. */
  readonly failureDetails: string[];
  /** Successful calls whose reviews → ratings call failed, per status name (reviews answered without stars). */
  readonly ratingsFailures: Record<string, number>;
  /** Up to 5 distinct messages of those ratings failures, each after the reviews pod that saw it (`pod: message`). */
  readonly ratingsFailureDetails: string[];
  /** Retries before the successful attempts: frontend → reviews plus reviews → ratings. */
  readonly retries: number;
  /** Successful calls that needed at least one retry on some hop. */
  readonly retriedCalls: number;
  /** Who each server saw calling (SPIFFE ID of the client certificate), and how often. */
  readonly callers: { readonly reviews: Record<string, number>; readonly ratings: Record<string, number> };
  /** The identity in each server's certificate, as its client saw it. */
  readonly servers: { readonly reviews: Record<string, number>; readonly ratings: Record<string, number> };
  readonly latencyMs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number };
  readonly durationMs: number;
  /** Only with `records: true`. */
  readonly records?: CallRecord[];
}

function bump(record: Record<string, number>, key: string): void {
  record[key === '' ? PLAINTEXT : key] = (record[key === '' ? PLAINTEXT : key] ?? 0) + 1;
}

/** Keeps up to 5 distinct messages. */
function note(list: string[], message: string): void {
  if (list.length < 5 && !list.includes(message)) list.push(message);
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round(sorted[i]! * 10) / 10;
}

export async function runLoad(client: grpc.Client, options: LoadOptions): Promise<LoadSummary> {
  const started = performance.now();
  const summary = {
    calls: options.n,
    ok: 0,
    failed: 0,
    byVersion: {} as Record<string, number>,
    byPod: {} as Record<string, number>,
    byRatingsPod: {} as Record<string, number>,
    failures: {} as Record<string, number>,
    failureDetails: [] as string[],
    ratingsFailures: {} as Record<string, number>,
    ratingsFailureDetails: [] as string[],
    retries: 0,
    retriedCalls: 0,
    callers: { reviews: {} as Record<string, number>, ratings: {} as Record<string, number> },
    servers: { reviews: {} as Record<string, number>, ratings: {} as Record<string, number> },
  };
  const latencies: number[] = [];
  const records: CallRecord[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < options.n) {
      next++;
      const metadata = new grpc.Metadata();
      if (options.user !== '') metadata.set('end-user', options.user);
      const t0 = performance.now();
      const r = await unary(
        client,
        reviewsService.GetReviews,
        { product: options.product },
        { deadline: Date.now() + options.deadlineMs, metadata },
      );
      const elapsed = performance.now() - t0;
      latencies.push(elapsed);
      const ms = Math.round(elapsed * 10) / 10;
      if (options.records) {
        records.push(
          r.ok
            ? {
                ok: true,
                ms,
                version: r.reply.version,
                pod: r.reply.pod,
                caller: r.reply.caller,
                attempt: r.reply.attempt,
                ...(r.reply.rating ? { rating: r.reply.rating } : {}),
                ...(r.reply.ratingError ? { ratingError: r.reply.ratingError } : {}),
                ratingMs: r.reply.ratingMs,
              }
            : { ok: false, ms, code: grpc.status[r.code] ?? String(r.code), details: r.details, retries: r.retries },
        );
      }
      if (!r.ok) {
        summary.failed++;
        bump(summary.failures, grpc.status[r.code] ?? String(r.code));
        note(summary.failureDetails, r.details);
        continue;
      }
      const reply = r.reply;
      summary.ok++;
      bump(summary.byVersion, reply.version);
      bump(summary.byPod, reply.pod);
      bump(summary.callers.reviews, reply.caller);
      bump(summary.servers.reviews, r.server);
      const retries = reply.attempt - 1 + (reply.rating ? reply.rating.attempt - 1 : 0);
      summary.retries += retries;
      if (retries > 0) summary.retriedCalls++;
      if (reply.rating) {
        bump(summary.byRatingsPod, reply.rating.pod);
        bump(summary.callers.ratings, reply.rating.caller);
        bump(summary.servers.ratings, reply.ratingsServer);
      } else {
        bump(summary.ratingsFailures, reply.ratingError?.code ?? 'UNKNOWN');
        note(summary.ratingsFailureDetails, `${reply.pod}: ${reply.ratingError?.details ?? ''}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.n, options.concurrency)) }, worker));
  latencies.sort((a, b) => a - b);
  return {
    ...summary,
    latencyMs: {
      p50: percentile(latencies, 50),
      p90: percentile(latencies, 90),
      p99: percentile(latencies, 99),
      max: percentile(latencies, 100),
    },
    durationMs: Math.round(performance.now() - started),
    ...(options.records ? { records } : {}),
  };
}
