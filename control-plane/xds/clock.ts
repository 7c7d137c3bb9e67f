// Time as the xDS engine reads it: milliseconds on a monotonic clock. Code that waits on time takes one,
// so tests can give their own.
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => performance.now() };
