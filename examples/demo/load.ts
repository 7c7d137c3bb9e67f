// The demo's load loop: batches of calls through the frontend's plain HTTP admin port
// (`GET /call?n=…&concurrency=…&records=1`, examples/kubernetes/apps/frontend.ts), paced to a rate, each
// call's record turned into hops (frontend → reviews, reviews → ratings) for the stats. The loop itself has
// no mesh identity: the frontend is the client of the mesh, with its agent's certificate.
import { sleep, systemClock, type Clock } from '../../lib/clock.js';
import type { DemoStats, Hop } from './stats.js';

/** One call of a `/call?records=1` answer (examples/kubernetes/apps/load.ts). */
export interface CallRecord {
  readonly ok: boolean;
  readonly ms: number;
  /** A failed frontend → reviews call: the gRPC status name and message, and the retries its route made. */
  readonly code?: string;
  readonly details?: string;
  readonly retries?: number;
  /** An answer: who answered, who it saw calling, which attempt it was. */
  readonly version?: string;
  readonly pod?: string;
  readonly caller?: string;
  readonly attempt?: number;
  /** reviews → ratings: the rating, or why there is none (reviews answers without stars), and its latency. */
  readonly rating?: {
    readonly pod: string;
    readonly version: string;
    readonly caller: string;
    readonly attempt: number;
  };
  readonly ratingError?: { readonly code: string; readonly details: string; readonly retries?: number };
  readonly ratingMs?: number;
}

/** The hops of one call: frontend → reviews always, reviews → ratings when reviews answered. */
export function hopsOf(record: CallRecord): Hop[] {
  if (!record.ok) {
    return [
      {
        service: 'reviews',
        subset: '',
        ok: false,
        code: record.code ?? 'UNKNOWN',
        ms: record.ms,
        retries: record.retries ?? 0,
      },
    ];
  }
  const hops: Hop[] = [
    {
      service: 'reviews',
      subset: record.version ?? '',
      ok: true,
      code: '',
      ms: record.ms,
      retries: Math.max(0, (record.attempt ?? 1) - 1),
      server: record.pod,
      peer: record.caller ?? '',
    },
  ];
  if (record.rating) {
    hops.push({
      service: 'ratings',
      subset: record.rating.version,
      ok: true,
      code: '',
      ms: record.ratingMs,
      retries: Math.max(0, record.rating.attempt - 1),
      server: record.rating.pod,
      peer: record.rating.caller,
    });
  } else if (record.ratingError) {
    hops.push({
      service: 'ratings',
      subset: '',
      ok: false,
      code: record.ratingError.code,
      ms: record.ratingMs,
      retries: record.ratingError.retries ?? 0,
    });
  }
  return hops;
}

export interface LoadLoopOptions {
  /** The frontend's admin base URL, `http://127.0.0.1:<port>`. */
  readonly admin: string;
  readonly stats: DemoStats;
  /** Calls per `/call` request, and how many at a time. */
  readonly batch: number;
  readonly concurrency: number;
  /** Calls per second at most (0: as fast as they complete). */
  readonly rate: number;
  /** Deadline of each call. */
  readonly deadlineMs?: number;
  /** How long to wait for the first call to succeed (the mesh converging). */
  readonly readyTimeoutMs?: number;
  /** Stops waiting for the first call. */
  readonly signal?: AbortSignal;
  readonly clock?: Clock;
}

export interface LoadLoop {
  stop(): Promise<void>;
}

/** The frontend answered, without per-call records: no use waiting. */
class NoRecords extends Error {}

interface CallAnswer {
  readonly records?: readonly CallRecord[];
}

async function call(admin: string, query: Record<string, string | number>, signal: AbortSignal): Promise<CallRecord[]> {
  const url = new URL('/call', admin);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, String(v));
  const res = await fetch(url, { signal });
  if (!res.ok) throw new Error(`${url.pathname}: HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
  const body = (await res.json()) as CallAnswer;
  if (!Array.isArray(body.records)) throw new NoRecords(`${url.href}: the answer has no records (an older frontend?)`);
  return [...body.records];
}

/**
 * Waits until one call goes all the way through (agents have certificates, every client and server has its
 * xDS config), then loops until stopped. Rejects if no call succeeds within `readyTimeoutMs`.
 */
export async function runLoadLoop(options: LoadLoopOptions): Promise<LoadLoop> {
  const clock = options.clock ?? systemClock;
  const abort = new AbortController();
  const deadlineMs = options.deadlineMs ?? 5_000;
  const readyBy = clock.now() + (options.readyTimeoutMs ?? 120_000);
  let last: string;
  for (;;) {
    if (options.signal?.aborted) throw new Error('stopped while waiting for the first call');
    try {
      const [first] = await call(options.admin, { n: 1, deadlineMs, records: 1 }, abort.signal);
      if (first?.ok) break;
      last = `${first?.code ?? '?'}: ${first?.details ?? ''}`;
    } catch (err) {
      if (err instanceof NoRecords) throw err;
      last = (err as Error).message;
    }
    if (clock.now() > readyBy) throw new Error(`no call through the mesh succeeded in time; the last: ${last}`);
    await sleep(clock, 250, options.signal);
  }

  const loop = (async () => {
    while (!abort.signal.aborted) {
      const started = clock.now();
      try {
        const records = await call(
          options.admin,
          { n: options.batch, concurrency: options.concurrency, deadlineMs, records: 1 },
          abort.signal,
        );
        options.stats.add(records.flatMap(hopsOf));
      } catch (err) {
        if (abort.signal.aborted) break;
        options.stats.loadErrors++;
        options.stats.lastLoadError = (err as Error).message;
        await sleep(clock, 500, abort.signal);
      }
      if (options.rate > 0) {
        await sleep(clock, started + (1000 * options.batch) / options.rate - clock.now(), abort.signal);
      }
    }
  })();
  return {
    stop: async () => {
      abort.abort();
      await loop;
    },
  };
}
