// Convergence time: from a config change to the last answer (ACK or NACK) of the proxies that change was
// pushed to, observed into `trellis_xds_convergence_seconds`.
//
// - The change starts at the first source event of a debounced burst (changed()); the push cycle that
//   follows carries it (cycleStarted()).
// - The proxies it waits for are those the cycle handed a new config and that were then left with a
//   response awaiting its answer (answers.ts `pending`). A proxy whose new config needed no response (only
//   types it does not subscribe to changed) is not waited for; a cycle that leaves nobody waiting observes
//   nothing.
// - The round ends when the last of them has answered every response (a NACK is an answer: the proxy has
//   decided) or has disconnected; the time is observed then. A proxy that is pushed again before answering
//   settles both rounds at once.
// - At most `maxRounds` (64) rounds are open; beyond that the oldest is dropped unobserved and counted in
//   `trellis_xds_convergence_abandoned_total` (proxies that never answer cannot grow memory).
import { Counter, Histogram, type Registry } from 'prom-client';
import { isAnswering } from './answers.js';
import type { Clock } from './clock.js';

export interface ConvergenceMetrics {
  readonly seconds: Histogram;
  readonly abandoned: Counter;
}

const byRegistry = new WeakMap<Registry, ConvergenceMetrics>();

/** The convergence metrics in `registry` (created once per registry). */
export function convergenceMetrics(registry: Registry): ConvergenceMetrics {
  let metrics = byRegistry.get(registry);
  if (!metrics) {
    metrics = {
      seconds: new Histogram({
        name: 'trellis_xds_convergence_seconds',
        help: 'Time from a config change (the first source event of a debounced burst) to the last ACK or NACK of the proxies the change was pushed to.',
        buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
        registers: [registry],
      }),
      abandoned: new Counter({
        name: 'trellis_xds_convergence_abandoned_total',
        help: 'Config changes whose convergence was never observed: more rounds were open than tracked (proxies that do not answer).',
        registers: [registry],
      }),
    };
    byRegistry.set(registry, metrics);
  }
  return metrics;
}

/** One change being pushed: when it started and the streams that have not answered yet. */
export interface ConvergenceRound {
  readonly startedAt: number;
  readonly waiting: Set<object>;
}

/** A stream is settled when it awaits no answer; streams that cannot tell count as settled. */
function settled(consumer: object): boolean {
  return !isAnswering(consumer) || !consumer.awaitsAnswer();
}

export class ConvergenceTracker {
  private changeAt: number | undefined;
  private readonly open: ConvergenceRound[] = [];

  constructor(
    private readonly metrics: ConvergenceMetrics,
    private readonly clock: Clock,
    private readonly maxRounds = 64,
  ) {}

  /** A source event: the first of a burst starts the clock. */
  changed(): void {
    this.changeAt ??= this.clock.now();
  }

  /** A push cycle starts: it carries the changes so far; undefined when it carries none (a direct pushAll). */
  cycleStarted(): ConvergenceRound | undefined {
    const at = this.changeAt;
    this.changeAt = undefined;
    return at === undefined ? undefined : { startedAt: at, waiting: new Set() };
  }

  /** The cycle handed `consumer` a new config. */
  pushed(round: ConvergenceRound | undefined, consumer: object): void {
    if (round && !settled(consumer)) round.waiting.add(consumer);
  }

  /** The cycle ended: the round stays open until its streams answer. */
  cycleEnded(round: ConvergenceRound | undefined): void {
    if (!round || round.waiting.size === 0) return;
    // A stream may have answered while the cycle yielded.
    for (const consumer of [...round.waiting]) if (settled(consumer)) round.waiting.delete(consumer);
    if (round.waiting.size === 0) {
      this.observe(round);
      return;
    }
    this.open.push(round);
    while (this.open.length > this.maxRounds) {
      this.open.shift();
      this.metrics.abandoned.inc();
    }
  }

  /** `consumer` answered a response (ACK or NACK). */
  answered(consumer: object): void {
    if (this.open.length === 0 || !settled(consumer)) return;
    this.drop(consumer);
  }

  /** `consumer` went away: no round waits for it any more. */
  detached(consumer: object): void {
    this.drop(consumer);
  }

  /** Rounds still waiting (tests). */
  get openRounds(): number {
    return this.open.length;
  }

  private drop(consumer: object): void {
    for (let i = 0; i < this.open.length;) {
      const round = this.open[i]!;
      if (round.waiting.delete(consumer) && round.waiting.size === 0) {
        this.open.splice(i, 1);
        this.observe(round);
      } else i++;
    }
  }

  private observe(round: ConvergenceRound): void {
    this.metrics.seconds.observe(Math.max(0, this.clock.now() - round.startedAt) / 1000);
  }
}
