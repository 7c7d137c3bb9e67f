// Coalesces bursts of changes into one push, as istiod does (PILOT_DEBOUNCE_AFTER 100 ms,
// PILOT_DEBOUNCE_MAX 10 s): fire once the changes have been quiet for `quietMs`, but never later than
// `maxMs` after the first change of the burst, so a steady trickle of changes cannot starve pushes.
// A change may be reported late (`trigger(elapsedMs)`): the source saw it `elapsedMs` ago and built the
// model since, so the quiet time already ran that long. istiod debounces the config events themselves and
// builds its push context after; this overlaps the build with the quiet time instead of adding it.
import { systemClock, type Clock, type ClockTimer } from '../../lib/clock.js';

export interface DebounceOptions {
  readonly quietMs: number;
  readonly maxMs: number;
}

export class Debouncer {
  private firstAt: number | undefined;
  private timer: ClockTimer | undefined;
  private stopped = false;

  constructor(
    private readonly options: DebounceOptions,
    private readonly fire: () => void,
    private readonly clock: Clock = systemClock,
  ) {}

  /**
   * Records a change, seen `elapsedMs` ago (default: now; counted up to the quiet time). Returns how long
   * the push now waits (ms; 0: at once).
   */
  trigger(elapsedMs = 0): number {
    if (this.stopped) return 0;
    const now = this.clock.now();
    const elapsed = Math.min(Math.max(0, elapsedMs), this.options.quietMs);
    this.firstAt ??= now - elapsed;
    this.clock.clearTimeout(this.timer);
    const untilMax = this.firstAt + this.options.maxMs - now;
    const delay = Math.max(0, Math.min(this.options.quietMs - elapsed, untilMax));
    this.timer = this.clock.setTimeout(() => this.flush(), delay);
    return delay;
  }

  /** Fires now if a change is pending. */
  flush(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.firstAt === undefined) return;
    this.firstAt = undefined;
    this.fire();
  }

  stop(): void {
    this.stopped = true;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
}
