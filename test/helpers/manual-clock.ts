// A Clock (lib/clock.ts) that moves only when the test says so: `advance(ms)` runs every timer that falls
// due, in time order, with now() at each timer's due time. Tests of backoff, batching and reconnects run
// in milliseconds and in a known order, without sleeping.
import type { Clock, ClockTimer } from '../../lib/clock.js';

interface Pending extends ClockTimer {
  readonly due: number;
  readonly seq: number;
  readonly fn: () => void;
  cancelled: boolean;
}

export class ManualClock implements Clock {
  private time: number;
  private seq = 0;
  private readonly timers = new Set<Pending>();

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): ClockTimer {
    const timer: Pending = {
      due: this.time + Math.max(0, ms),
      seq: this.seq++,
      fn,
      cancelled: false,
      unref: () => undefined,
    };
    this.timers.add(timer);
    return timer;
  }

  clearTimeout(timer: ClockTimer | undefined): void {
    if (!timer) return;
    (timer as Pending).cancelled = true;
    this.timers.delete(timer as Pending);
  }

  /** Delays of the pending timers from now, soonest first. */
  pending(): number[] {
    return [...this.timers].map((t) => t.due - this.time).sort((a, b) => a - b);
  }

  /** Moves time forward by `ms`, running the timers that fall due (also those they set within the span). */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const next = [...this.timers].filter((t) => t.due <= end).sort((a, b) => a.due - b.due || a.seq - b.seq)[0];
      if (!next) break;
      this.timers.delete(next);
      this.time = next.due;
      next.fn();
    }
    this.time = end;
  }
}
