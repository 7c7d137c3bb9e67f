// Time as the xDS engine reads it for durations and rates: the `now()` of the project's Clock
// (lib/clock.ts), on a monotonic clock by default. Code that measures time takes one, so tests can give
// their own; code that waits (the debouncer) takes the whole lib/clock.ts Clock, timers included.
import type { Clock as ProjectClock } from '../../lib/clock.js';

export type Clock = Pick<ProjectClock, 'now'>;

export const systemClock: Clock = { now: () => performance.now() };
