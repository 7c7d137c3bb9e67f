// The pure parts of the status writer and of KubeSource's backoff (test/kube/ runs them on a real API server).
import test from 'ava';
import { backoffDelay } from '../../control-plane/sources/kube-source.js';
import { nextStatus, statusIsCurrent } from '../../control-plane/sources/status-writer.js';
import type { Condition } from '../../crds/types.js';

const wanted: Condition = {
  type: 'Accepted',
  status: 'True',
  reason: 'Accepted',
  message: 'accepted',
  observedGeneration: 2,
};
const now = new Date('2026-11-26T08:00:00.123Z');

test('statusIsCurrent compares everything but lastTransitionTime, and status.observedGeneration', (t) => {
  const have = { ...wanted, lastTransitionTime: '2020-01-01T00:00:00Z' };
  t.true(statusIsCurrent({ observedGeneration: 2, conditions: [have] }, wanted, 2));
  t.false(statusIsCurrent({ observedGeneration: 1, conditions: [have] }, wanted, 2));
  t.false(statusIsCurrent({ observedGeneration: 2, conditions: [{ ...have, message: 'other' }] }, wanted, 2));
  t.false(statusIsCurrent({ observedGeneration: 2, conditions: [{ ...have, observedGeneration: 1 }] }, wanted, 2));
  t.false(statusIsCurrent({}, wanted, 2));
});

test('nextStatus keeps lastTransitionTime unless the status flips, and keeps other conditions', (t) => {
  const other: Condition = { type: 'Ready', status: 'True' };
  const same = nextStatus(
    { conditions: [other, { ...wanted, message: 'old', lastTransitionTime: '2020-01-01T00:00:00Z' }] },
    wanted,
    2,
    now,
  );
  t.deepEqual(same, {
    observedGeneration: 2,
    conditions: [other, { ...wanted, lastTransitionTime: '2020-01-01T00:00:00Z' }],
  });
  const flipped = nextStatus(
    { conditions: [{ ...wanted, status: 'False', lastTransitionTime: '2020-01-01T00:00:00Z' }] },
    wanted,
    2,
    now,
  );
  t.is(flipped.conditions?.[0]?.lastTransitionTime, '2026-11-26T08:00:00Z');
  t.is(nextStatus({}, wanted, 2, now).conditions?.[0]?.lastTransitionTime, '2026-11-26T08:00:00Z');
});

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
});
