// Resilience end to end: retries, timeouts, circuit breaking and outlier detection written as
// VirtualService / DestinationRule YAML, translated by `trellis control-plane --config-dir` (a real
// process) and enforced by real @grpc/grpc-js-xds clients against xDS-enabled servers (A36) that fail or
// sleep on command. Nobody NACKs.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import {
  assertNoNacks,
  deployService,
  destinationRuleManifest,
  tally,
  virtualServiceManifest,
  type CallResult,
  type XdsEchoClient,
  useMeshControlPlane,
} from '../helpers/mesh-e2e.js';
import { register } from '@grpc/grpc-js-xds';
import { waitFor } from '../helpers/wait.js';

register();

const NS = 'resilience';

const mesh = useMeshControlPlane(test);

/** Calls until `done(result)` holds for one call; returns that call, or undefined after `timeoutMs`. */
async function untilCall(
  client: XdsEchoClient,
  done: (r: CallResult) => boolean,
  timeoutMs = 10_000,
  options: Parameters<XdsEchoClient['call']>[0] = {},
): Promise<CallResult | undefined> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const r = await client.call(options);
    if (done(r)) return r;
  }
  return undefined;
}

function retries(attempts: number): ReturnType<typeof virtualServiceManifest> {
  return virtualServiceManifest('retry', NS, {
    hosts: ['retry'],
    http: [{ route: [{ destination: { host: 'retry' } }], retries: { attempts } }],
  });
}

test('retries: a backend failing 50% with UNAVAILABLE gives ≥ 99% success with attempts: 3; attempts: 0 lets failures through', async (t) => {
  const svc = await deployService({
    dir: mesh.dir,
    controlPlane: mesh.controlPlane,
    service: 'retry',
    namespace: NS,
    backends: [{ pod: 'retry-v1' }],
    routing: [retries(3)],
  });
  t.teardown(() => svc.close());
  const client = await svc.client();
  const server = svc.servers.get('retry-v1')!;
  server.setBehavior({ kind: 'fail-every', every: 2 }); // fail, ok, fail, ok, …: 50% of calls

  const servedBefore = server.served();
  const withRetries = await client.calls(200);
  const ok = withRetries.filter((r) => r.ok).length;
  t.log(
    `attempts: 3 → ${JSON.stringify(tally(withRetries))}; the server saw ${server.served() - servedBefore} attempts`,
  );
  t.true(ok / withRetries.length >= 0.99, `${ok} of ${withRetries.length} succeeded`);
  t.true(server.served() - servedBefore > withRetries.length, 'the server saw no retried attempt');

  await svc.write(['retry-v1'], [retries(0)]);
  const failed = await untilCall(client, (r) => !r.ok);
  t.truthy(failed, 'no failure reached the client within 10 s of attempts: 0');
  t.is(failed && !failed.ok ? failed.code : undefined, grpc.status.UNAVAILABLE);
  const without = await client.calls(200);
  const failures = without.filter((r) => !r.ok).length;
  t.log(`attempts: 0 → ${JSON.stringify(tally(without))}`);
  t.true(failures >= 80 && failures <= 120, `${failures} of 200 failed; expected about 100`);
  await assertNoNacks(t, mesh.cp.monitoringPort, svc.owns);
});

// Time is asserted as behaviour, with bounds that hold on a loaded machine: a call cut by a timeout ends
// no sooner than the timeout and far sooner than the backend would answer; refused calls end far sooner
// than the calls let through.

test('a 200 ms timeout on a backend that answers after 30 s gives DEADLINE_EXCEEDED, not before 200 ms and far before 30 s', async (t) => {
  const svc = await deployService({
    dir: mesh.dir,
    controlPlane: mesh.controlPlane,
    service: 'slow',
    namespace: NS,
    backends: [{ pod: 'slow-v1' }],
    routing: [
      virtualServiceManifest('slow', NS, {
        hosts: ['slow'],
        http: [{ route: [{ destination: { host: 'slow' } }], timeout: '200ms' }],
      }),
    ],
  });
  t.teardown(() => svc.close());
  const client = await svc.client();
  const server = svc.servers.get('slow-v1')!;
  server.setBehavior({ kind: 'sleep', ms: 30_000 }); // close() drops the pending answers

  // The client's own deadline (60 s) is far away: a DEADLINE_EXCEEDED can only be the route's timeout.
  const servedBefore = server.served();
  const results = await client.calls(5, { concurrency: 5, deadlineMs: 60_000 });
  t.log(`latencies: ${results.map((r) => `${r.ok ? 'OK' : grpc.status[r.code]} ${Math.round(r.ms)} ms`).join(', ')}`);
  t.is(server.served() - servedBefore, 5, 'every call reached the backend before it was cut');
  for (const r of results) {
    t.false(r.ok);
    if (!r.ok) t.is(r.code, grpc.status.DEADLINE_EXCEEDED);
    // Timers may fire a millisecond early; the call starts before the timeout's timer does.
    t.true(r.ms >= 195, `${Math.round(r.ms)} ms: ended before the 200 ms timeout`);
    t.true(r.ms < 10_000, `${Math.round(r.ms)} ms: not cut well before the backend's 30 s`);
  }
  await assertNoNacks(t, mesh.cp.monitoringPort, svc.owns);
});

test('circuit breaking: http2MaxRequests 5 and 20 concurrent slow calls: 5 go through, the other 15 fail fast', async (t) => {
  const svc = await deployService({
    dir: mesh.dir,
    controlPlane: mesh.controlPlane,
    service: 'breaker',
    namespace: NS,
    backends: [{ pod: 'breaker-v1' }],
    routing: [
      destinationRuleManifest('breaker', NS, {
        host: 'breaker',
        trafficPolicy: { connectionPool: { http: { http2MaxRequests: 5 } } },
      }),
    ],
  });
  t.teardown(() => svc.close());
  const client = await svc.client();
  const server = svc.servers.get('breaker-v1')!;
  server.setBehavior({ kind: 'sleep', ms: 30_000 }); // answers long after the test; close() drops them

  // 20 calls, each started once the one before is counted: in the server, or refused. grpc-js counts a
  // call against max_requests only once it has started, so calls started in one burst (timers that a
  // loaded event loop fires together) could all pass the check; one at a time, the outcome does not
  // depend on timing: the first 5 are in flight together and stay there, every later one is over the limit.
  const ended: CallResult[] = [];
  let maxInFlight = 0;
  for (let i = 0; i < 20; i++) {
    const call = client.call({ deadlineMs: 60_000 });
    void call.then((r) => ended.push(r));
    await waitFor(`call ${i + 1} to reach the server or be refused`, () => {
      maxInFlight = Math.max(maxInFlight, server.inFlight());
      return server.inFlight() + ended.length >= i + 1;
    });
  }
  t.log(
    `${server.inFlight()} in the server; refused: ${JSON.stringify(tally(ended))} after ${ended.map((r) => Math.round(r.ms)).join(', ')} ms`,
  );
  t.is(maxInFlight, 5, 'the breaker let through exactly http2MaxRequests calls');
  t.is(server.inFlight(), 5);
  t.is(ended.length, 15);
  for (const r of ended) {
    t.false(r.ok, 'a call finished that the backend holds for 30 s');
    if (!r.ok) t.is(r.code, grpc.status.UNAVAILABLE);
    t.true(r.ms < 5_000, `a refused call took ${Math.round(r.ms)} ms: not fast next to the backend's 30 s`);
  }
  await assertNoNacks(t, mesh.cp.monitoringPort, svc.owns);
});

test('outlier detection ejects a backend that keeps failing, and traffic moves to the healthy ones', async (t) => {
  const svc = await deployService({
    dir: mesh.dir,
    controlPlane: mesh.controlPlane,
    service: 'outlier',
    namespace: NS,
    backends: [{ pod: 'outlier-a' }, { pod: 'outlier-b' }, { pod: 'outlier-c' }],
    routing: [
      virtualServiceManifest('outlier', NS, {
        hosts: ['outlier'],
        // No retries: every call that reaches the bad backend fails at the client, so the test sees them stop.
        http: [{ route: [{ destination: { host: 'outlier' } }], retries: { attempts: 0 } }],
      }),
      destinationRuleManifest('outlier', NS, {
        host: 'outlier',
        trafficPolicy: {
          outlierDetection: {
            consecutive5xxErrors: 3,
            interval: '1s',
            baseEjectionTime: '60s',
            maxEjectionPercent: 50,
          },
        },
      }),
    ],
  });
  t.teardown(() => svc.close());
  const client = await svc.client();
  const bad = svc.servers.get('outlier-c')!;
  bad.setBehavior({ kind: 'fail', code: grpc.status.UNAVAILABLE });

  const started = performance.now();
  let ejectedAfter: number | undefined;
  let seenFailures = 0;
  while (performance.now() - started < 20_000) {
    const before = bad.served();
    const window = await client.calls(60, { concurrency: 3 });
    seenFailures += window.filter((r) => !r.ok).length;
    if (bad.served() === before && window.every((r) => r.ok)) {
      ejectedAfter = performance.now() - started;
      break;
    }
  }
  t.log(`${seenFailures} failed calls before the bad backend was ejected after ${ejectedAfter?.toFixed(0)} ms`);
  t.truthy(ejectedAfter, 'the failing backend still got traffic after 20 s');
  t.true(seenFailures > 0, 'the bad backend never got traffic, so nothing was ejected');
  const after = tally(await client.calls(60, { concurrency: 3 }));
  t.deepEqual(Object.keys(after).sort(), ['outlier-a', 'outlier-b']);
  await assertNoNacks(t, mesh.cp.monitoringPort, svc.owns);
});
