// Coalesces bursts of changes into one push, as istiod does (PILOT_DEBOUNCE_AFTER 100 ms,
// PILOT_DEBOUNCE_MAX 10 s): fire once the changes have been quiet for `quietMs`, but never later than
// `maxMs` after the first change of the burst, so a steady trickle of changes cannot starve pushes.
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

  /** Records a change. */
  trigger(): void {
    if (this.stopped) return;
    const now = this.clock.now();
    this.firstAt ??= now;
    this.clock.clearTimeout(this.timer);
    const untilMax = this.firstAt + this.options.maxMs - now;
    const delay = Math.max(0, Math.min(this.options.quietMs, untilMax));
    this.timer = this.clock.setTimeout(() => this.flush(), delay);
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
