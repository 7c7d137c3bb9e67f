// The one backoff formula (lib/backoff.ts) and sleep() on a clock, with a manual clock: no real waiting.
import test from 'ava';
import { Backoff, backoffDelay } from '../../lib/backoff.js';
import { sleep } from '../../lib/clock.js';
import { ManualClock } from '../helpers/manual-clock.js';

test('backoffDelay doubles from 500 ms, is capped at 30 s and jittered within [d/2, d]', (t) => {
  t.is(
    backoffDelay(0, {}, () => 1),
    500,
  );
  t.is(
    backoffDelay(0, {}, () => 0),
    250,
  );
  t.is(
    backoffDelay(3, {}, () => 1),
    4000,
  );
  t.is(
    backoffDelay(20, {}, () => 1),
    30_000,
  );
  t.is(
    backoffDelay(20, {}, () => 0),
    15_000,
  );
  t.is(
    backoffDelay(2, { initialMs: 100, maxMs: 300 }, () => 1),
    300,
  );
  t.is(
    backoffDelay(1_000_000, {}, () => 1),
    30_000,
    'a huge attempt number neither overflows nor passes the cap',
  );
  t.throws(() => backoffDelay(0, { initialMs: -1 }), { message: /initialMs and maxMs must be >= 0/ });
});

test('Backoff counts attempts, grows to the cap, and starts over after reset()', (t) => {
  const b = new Backoff({ initialMs: 100, maxMs: 1000 }, () => 1);
  t.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()], [100, 200, 400, 800, 1000, 1000]);
  t.is(b.attempts, 6);
  b.reset();
  t.is(b.attempts, 0);
  t.is(b.next(), 100);
});

test('sleep() waits on the given clock and ends at once when aborted', async (t) => {
  const clock = new ManualClock();
  let done = false;
  const slept = sleep(clock, 500).then(() => (done = true));
  clock.advance(499);
  await Promise.resolve();
  t.false(done);
  clock.advance(1);
  await slept;
  t.true(done);

  const abort = new AbortController();
  const aborted = sleep(clock, 60_000, abort.signal);
  abort.abort();
  await aborted;
  t.deepEqual(clock.pending(), [], 'the aborted sleep left no timer behind');
});
