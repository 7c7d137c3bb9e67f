// The clock that code which waits takes as a parameter (issue 16): the current time and one-shot timers.
// Production code uses `systemClock`; a test passes a clock it advances by hand, so backoff, batching and
// reconnects run in milliseconds and in a known order. A leaf: no imports, usable by the control plane
// and the agent alike.

/** A pending timer of a Clock, to cancel with clearTimeout. */
export interface ClockTimer {
  /** Lets the process exit while this timer is pending (Node's `unref`); a no-op where that means nothing. */
  unref(): void;
}

export interface Clock {
  /** Milliseconds since the epoch, as Date.now(). */
  now(): number;
  /** Runs `fn` once, `ms` from now (0 when negative). */
  setTimeout(fn: () => void, ms: number): ClockTimer;
  /** Cancels a timer of this clock; undefined or a timer that already ran is ignored. */
  clearTimeout(timer: ClockTimer | undefined): void;
}

/** Node's timers and Date.now(). */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, Math.max(0, ms)),
  clearTimeout: (timer) => {
    if (timer !== undefined) clearTimeout(timer as NodeJS.Timeout);
  },
};

/** Resolves after `ms` on `clock`, or at once when `signal` aborts (so a stopped loop does not wait). */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clock.clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = clock.setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
