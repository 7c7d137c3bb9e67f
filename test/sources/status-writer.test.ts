// The pure parts of the status writer (test/kube/ runs it on a real API server; the backoff is test/lib/).
import test from 'ava';
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
