// The debouncer on a manual clock (lib/clock.ts): quiet time and the cap of a burst, in exact steps and
// without waiting (issue 16: code that waits on time takes a clock it can be given).
import test from 'ava';
import { Debouncer } from '../../control-plane/xds/debounce.js';
import { ManualClock } from '../helpers/manual-clock.js';

function setup(quietMs: number, maxMs: number): { clock: ManualClock; debouncer: Debouncer; fires: () => number } {
  const clock = new ManualClock();
  let fires = 0;
  const debouncer = new Debouncer({ quietMs, maxMs }, () => fires++, clock);
  return { clock, debouncer, fires: () => fires };
}

test('a burst fires once, quietMs after its last change', (t) => {
  const { clock, debouncer, fires } = setup(100, 10_000);
  debouncer.trigger();
  clock.advance(60);
  debouncer.trigger();
  clock.advance(99);
  t.is(fires(), 0, 'still within the quiet time of the second change');
  clock.advance(1);
  t.is(fires(), 1);
  clock.advance(1_000);
  t.is(fires(), 1, 'nothing more without a change');
});

test('a steady trickle of changes still fires at maxMs after the first', (t) => {
  const { clock, debouncer, fires } = setup(100, 1_000);
  for (let elapsed = 0; elapsed < 990; elapsed += 50) {
    debouncer.trigger();
    clock.advance(50);
  }
  t.is(fires(), 1, 'fired at 1,000 ms although changes never paused for 100 ms');
});

test('stop cancels a pending fire; flush fires at once', (t) => {
  const { clock, debouncer, fires } = setup(100, 1_000);
  debouncer.trigger();
  debouncer.flush();
  t.is(fires(), 1);
  debouncer.trigger();
  debouncer.stop();
  clock.advance(5_000);
  t.is(fires(), 1);
  t.deepEqual(clock.pending(), []);
});

test('a change reported late counts its quiet time from when it was seen', (t) => {
  const { clock, debouncer, fires } = setup(100, 1_000);
  t.is(debouncer.trigger(60), 40, 'seen 60 ms ago (the model was built since): 40 ms to wait');
  clock.advance(39);
  t.is(fires(), 0, 'the quiet time has 1 ms to go');
  clock.advance(1);
  t.is(fires(), 1, 'fired 40 ms after the report: 100 ms after the change was seen');

  t.is(debouncer.trigger(250), 0, 'seen longer ago than the quiet time: no wait at all');
  clock.advance(0);
  t.is(fires(), 2);

  debouncer.trigger(30);
  clock.advance(50);
  debouncer.trigger(); // a later change seen now restarts the whole quiet time
  clock.advance(99);
  t.is(fires(), 2);
  clock.advance(1);
  t.is(fires(), 3);
});

test('the cap of a burst counts from when its first change was seen', (t) => {
  const { clock, debouncer, fires } = setup(100, 300);
  debouncer.trigger(80); // 20 ms of quiet time to go
  for (let i = 0; i < 14; i++) {
    clock.advance(15);
    debouncer.trigger(); // each change restarts the quiet time
  }
  t.is(fires(), 0, '210 ms after the report, 290 ms after the first change was seen');
  clock.advance(9);
  t.is(fires(), 0);
  clock.advance(1);
  t.is(fires(), 1, 'fired 300 ms after the first change was seen, though the changes never paused');
});
