// The state proxy-status gives one type, from what /debug/proxies says was sent, ACKed and NACKed.
import test from 'ava';
import type { TypeView } from '../../control-plane/debug-cli/debug-proxies.js';
import { typeSync } from '../../control-plane/debug-cli/proxy-status.js';

const base: TypeView = {
  type: 'CDS',
  sentVersion: 'v1',
  sentNonce: 'n1',
  sentAt: '2026-12-06T09:00:00.000Z',
  responses: 1,
  ackedVersion: 'v1',
  ackedAt: '2026-12-06T09:00:00.010Z',
  lastNack: undefined,
};

test('SYNCED: the version sent was ACKed after it was sent', (t) => {
  t.deepEqual(typeSync(base), {
    state: 'SYNCED',
    version: 'v1',
    ackedVersion: 'v1',
    lastChange: '2026-12-06T09:00:00.010Z',
  });
});

test('NOT SENT: no type state, or no response yet', (t) => {
  t.is(typeSync(undefined).state, 'NOT SENT');
  t.is(typeSync({ ...base, sentNonce: '', responses: 0, sentAt: undefined }).state, 'NOT SENT');
});

test('STALE: sent and not answered, also when it resends a version ACKed earlier', (t) => {
  t.is(typeSync({ ...base, sentVersion: 'v2', sentNonce: 'n2', sentAt: '2026-12-06T09:00:01.000Z' }).state, 'STALE');
  t.is(typeSync({ ...base, sentNonce: 'n3', sentAt: '2026-12-06T09:00:02.000Z' }).state, 'STALE');
  t.is(typeSync({ ...base, ackedVersion: '', ackedAt: undefined }).state, 'STALE');
});

test('NACKED: only a NACK of the latest response; the error and the rejected version are shown', (t) => {
  const nack = { version: 'v1', nonce: 'n2', message: 'bad cluster', at: '2026-12-06T09:00:01.010Z' };
  const nacked = typeSync({
    ...base,
    sentVersion: 'v2',
    sentNonce: 'n2',
    sentAt: '2026-12-06T09:00:01.000Z',
    lastNack: nack,
  });
  t.deepEqual(nacked, {
    state: 'NACKED',
    version: 'v2',
    ackedVersion: 'v1',
    error: 'bad cluster',
    lastChange: '2026-12-06T09:00:01.010Z',
  });
  // A later response was ACKed: the old NACK no longer counts.
  t.is(
    typeSync({
      ...base,
      sentVersion: 'v3',
      sentNonce: 'n3',
      sentAt: '2026-12-06T09:00:02.000Z',
      ackedVersion: 'v3',
      ackedAt: '2026-12-06T09:00:02.010Z',
      lastNack: nack,
    }).state,
    'SYNCED',
  );
});
