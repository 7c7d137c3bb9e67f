// kill -9 of `trellis control-plane` (static mode, a real process) under 50 connected ADS streams per
// protocol, then a restart on the same port (bench/restart-scenario.ts; `npm run bench -- restart` runs it
// with 1,000 streams and reports the times). Fail static (design.md §5.4): every stream ends UNAVAILABLE,
// every proxy still holds its config, and after the restart every proxy is sent the very same config again.
import test from 'ava';
import { runRestart } from '../../bench/restart-scenario.js';

for (const protocol of ['sotw', 'delta'] as const) {
  test(`${protocol}: kill -9 under 50 streams: UNAVAILABLE, config kept, all resync to the same hash`, async (t) => {
    t.timeout(300_000);
    const r = await runRestart({
      protocol,
      streams: 50,
      connections: 5,
      clusters: 20,
      endpoints: 2,
      timeoutMs: 120_000,
      reconnectBackoffMs: { initial: 200, max: 2_000 },
    });
    t.deepEqual(r.errors, []);
    // Before: one config, held by every stream (static mode: every proxy gets the same resources).
    t.is(Object.keys(r.hashesBefore).length, 1);
    t.deepEqual(r.endCodes, { UNAVAILABLE: 50 });
    t.is(r.keptConfig, 50, 'a proxy lost config when its stream ended');
    t.is(r.sameHash, 50, 'a proxy holds other config after the resync');
    t.deepEqual(r.hashesAfter, r.hashesBefore);
    t.is(r.endedAgain, 0);
    t.log(
      `resync: last stream ${Math.max(...r.resyncMs).toFixed(0)} ms after the restarted process listened; ` +
        `kill → last resync ${r.killToLastResyncMs.toFixed(0)} ms`,
    );
  });
}
