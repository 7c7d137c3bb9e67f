// Traffic routing end to end: `trellis control-plane --config-dir` (a real process) translates the YAML
// this test writes, and real @grpc/grpc-js-xds clients and xDS-enabled servers (A36) follow it:
// a weighted split and a live edit of the weights, header-based routing to a subset, endpoints added
// and removed, fault injection (abort and delay). No client is restarted, and nobody NACKs.
import test from 'ava';
import { register } from '@grpc/grpc-js-xds';
import {
  assertNoNacks,
  deployService,
  destinationRuleManifest,
  share,
  startLateServer,
  tally,
  virtualServiceManifest,
  type DeployedService,
  useMeshControlPlane,
} from '../helpers/mesh-e2e.js';
import { startTrellis } from '../helpers/process.js';

register();

const NS = 'routing';

const mesh = useMeshControlPlane(test);

function subsets(service: string): ReturnType<typeof destinationRuleManifest> {
  return destinationRuleManifest(service, NS, {
    host: service,
    subsets: [
      { name: 'v1', labels: { version: 'v1' } },
      { name: 'v2', labels: { version: 'v2' } },
    ],
  });
}

function split(service: string, v1: number, v2: number): ReturnType<typeof virtualServiceManifest> {
  return virtualServiceManifest(service, NS, {
    hosts: [service],
    http: [
      {
        route: [
          { destination: { host: service, subset: 'v1' }, weight: v1 },
          { destination: { host: service, subset: 'v2' }, weight: v2 },
        ],
      },
    ],
  });
}

async function deployTwoVersions(service: string, routing: ReturnType<typeof split>[]): Promise<DeployedService> {
  return deployService({
    dir: mesh.dir,
    controlPlane: mesh.controlPlane,
    service,
    namespace: NS,
    backends: [
      { pod: `${service}-v1`, labels: { version: 'v1' } },
      { pod: `${service}-v2`, labels: { version: 'v2' } },
    ],
    routing,
  });
}

// ±4 points over 2,000 calls: a weighted random pick at 80/20 has a standard deviation of 0.9 points, so the
// bound is 4.5 of them (±3 was 3.4, about one run in 1,300 per check); a wrong split (50/50, 20/80) is still
// far outside it.
test('an 80/20 split lands within ±4 points over 2,000 calls, and a weight edit moves live traffic within 2 s', async (t) => {
  const svc = await deployTwoVersions('split', [subsets('split'), split('split', 80, 20)]);
  t.teardown(() => svc.close());
  const client = await svc.client();

  const before = await client.calls(2_000, { concurrency: 20 });
  const v1 = share(before, 'split-v1');
  t.log(`80/20: ${JSON.stringify(tally(before))} → v1 ${v1.toFixed(1)}%`);
  t.true(Math.abs(v1 - 80) <= 4, `v1 got ${v1.toFixed(1)}%, expected 80 ± 4`);
  t.true(before.every((r) => r.ok));

  // Flip to 20/80 and watch the calls of a running client move.
  const editedAt = performance.now();
  await svc.write(['split-v1', 'split-v2'], [subsets('split'), split('split', 20, 80)]);
  let movedMs: number | undefined;
  while (performance.now() - editedAt < 10_000) {
    const window = await client.calls(50, { concurrency: 10 });
    // Under 80/20, 50 calls with ≥ 33 on v2 has probability < 1e-12: this is the new split.
    if (share(window, 'split-v2') >= 66) {
      movedMs = performance.now() - editedAt;
      break;
    }
  }
  t.log(`traffic moved ${movedMs?.toFixed(0)} ms after the edit`);
  t.truthy(movedMs, 'traffic did not move within 10 s');
  t.true(movedMs! <= 2_000, `traffic moved after ${movedMs?.toFixed(0)} ms, more than 2 s`);

  const after = await client.calls(2_000, { concurrency: 20 });
  const v2 = share(after, 'split-v2');
  t.log(`20/80: ${JSON.stringify(tally(after))} → v2 ${v2.toFixed(1)}%`);
  t.true(Math.abs(v2 - 80) <= 4, `v2 got ${v2.toFixed(1)}%, expected 80 ± 4`);
  await assertNoNacks(t, mesh.cp.monitoringPort, svc.owns);
});

test('a gRPC metadata header routes to subset v2; without it calls go to v1', async (t) => {
  const svc = await deployTwoVersions('header', [
    subsets('header'),
    virtualServiceManifest('header', NS, {
      hosts: ['header'],
      http: [
        {
          name: 'jason',
          match: [{ headers: { 'end-user': { exact: 'jason' } } }],
          route: [{ destination: { host: 'header', subset: 'v2' } }],
        },
        { name: 'default', route: [{ destination: { host: 'header', subset: 'v1' } }] },
      ],
    }),
  ]);
  t.teardown(() => svc.close());
  const client = await svc.client();

  const plain = await client.calls(100, { concurrency: 10 });
  const jason = await client.calls(100, { concurrency: 10, metadata: { 'end-user': 'jason' } });
  const other = await client.calls(100, { concurrency: 10, metadata: { 'end-user': 'alice' } });
  t.deepEqual(tally(plain), { 'header-v1': 100 });
  t.deepEqual(tally(jason), { 'header-v2': 100 });
  t.deepEqual(tally(other), { 'header-v1': 100 });
  await assertNoNacks(t, mesh.cp.monitoringPort, svc.owns);
});

test('endpoints added to and removed from the YAML: traffic follows without a client restart', async (t) => {
  const svc = await deployService({
    dir: mesh.dir,
    controlPlane: mesh.controlPlane,
    service: 'scale',
    namespace: NS,
    backends: [{ pod: 'scale-a' }, { pod: 'scale-b' }, { pod: 'scale-c' }],
    initiallyAbsent: ['scale-b', 'scale-c'],
  });
  t.teardown(() => svc.close());
  const client = await svc.client();
  t.deepEqual(tally(await client.calls(30)), { 'scale-a': 30 });

  // Add b and c: their servers start serving once the mesh lists them, and the client spreads over all three.
  const late = [startLateServer(svc, mesh.controlPlane, 'scale-b'), startLateServer(svc, mesh.controlPlane, 'scale-c')];
  const addedAt = performance.now();
  await svc.write(['scale-a', 'scale-b', 'scale-c']);
  await Promise.all(late);
  const seen = new Set<string>();
  while (seen.size < 3 && performance.now() - addedAt < 10_000) {
    for (const r of await client.calls(30, { concurrency: 5 })) if (r.ok) seen.add(r.server);
  }
  t.log(`all three backends answered ${(performance.now() - addedAt).toFixed(0)} ms after the edit`);
  t.deepEqual([...seen].sort(), ['scale-a', 'scale-b', 'scale-c']);

  // Remove a and b: every call goes to c, and none fails on the way (the endpoints leave EDS first).
  const removedAt = performance.now();
  await svc.write(['scale-c']);
  let onlyC = false;
  while (!onlyC && performance.now() - removedAt < 10_000) {
    const window = await client.calls(30, { concurrency: 5 });
    onlyC = window.every((r) => r.ok && r.server === 'scale-c');
  }
  t.log(`only scale-c answered ${(performance.now() - removedAt).toFixed(0)} ms after the edit`);
  t.true(onlyC, 'calls still reach removed endpoints after 10 s');
  t.deepEqual(tally(await client.calls(50, { concurrency: 5 })), { 'scale-c': 50 });
  await assertNoNacks(t, mesh.cp.monitoringPort, (id) => id.startsWith('scale-client'));
});

test('fault injection: a 100% abort returns the configured status; a delay adds its latency', async (t) => {
  const svc = await deployService({
    dir: mesh.dir,
    controlPlane: mesh.controlPlane,
    service: 'fault',
    namespace: NS,
    backends: [{ pod: 'fault-v1' }],
  });
  t.teardown(() => svc.close());
  const client = await svc.client();
  const baseline = await client.calls(20);
  t.true(baseline.every((r) => r.ok));

  await svc.write(
    ['fault-v1'],
    [
      virtualServiceManifest('fault', NS, {
        hosts: ['fault'],
        http: [
          {
            fault: { abort: { grpcStatus: 'PERMISSION_DENIED', percentage: { value: 100 } } },
            route: [{ destination: { host: 'fault' } }],
          },
        ],
      }),
    ],
  );
  let aborted: Awaited<ReturnType<typeof client.call>> | undefined;
  const abortedAt = performance.now();
  while (performance.now() - abortedAt < 10_000) {
    aborted = await client.call();
    if (!aborted.ok) break;
  }
  t.false(aborted?.ok, 'no call was aborted within 10 s');
  const servedBefore = svc.servers.get('fault-v1')!.served();
  const aborts = await client.calls(50, { concurrency: 5 });
  t.deepEqual(tally(aborts), { '!PERMISSION_DENIED': 50 });
  t.is(svc.servers.get('fault-v1')!.served(), servedBefore, 'aborted calls must not reach the server');

  const delayMs = 300;
  await svc.write(
    ['fault-v1'],
    [
      virtualServiceManifest('fault', NS, {
        hosts: ['fault'],
        http: [
          {
            fault: { delay: { fixedDelay: `${delayMs}ms`, percentage: { value: 100 } } },
            route: [{ destination: { host: 'fault' } }],
          },
        ],
      }),
    ],
  );
  const delayedAt = performance.now();
  let delayed: Awaited<ReturnType<typeof client.call>> | undefined;
  while (performance.now() - delayedAt < 10_000) {
    delayed = await client.call();
    if (delayed.ok && delayed.ms >= delayMs) break;
  }
  t.true(delayed?.ok === true && delayed.ms >= delayMs, 'no delayed call within 10 s of the edit');
  const timed = await client.calls(10, { concurrency: 10 });
  const latencies = timed.map((r) => Math.round(r.ms));
  t.log(
    `with a ${delayMs} ms delay: ${latencies.join(', ')} ms; without: ${baseline.map((r) => Math.round(r.ms)).join(', ')} ms`,
  );
  t.true(timed.every((r) => r.ok));
  // Behaviour, not a timing: every call waits at least the delay (timers may fire a millisecond early), and
  // none waits seconds (a delay misread by a unit); a loaded machine adds latency, never removes it.
  t.true(
    timed.every((r) => r.ms >= delayMs - 5 && r.ms < delayMs + 5_000),
    `latencies ${latencies.join(', ')} ms, expected at least ${delayMs} ms and not seconds more`,
  );
  await assertNoNacks(t, mesh.cp.monitoringPort, svc.owns);
});

test('/readyz is 200 once the directory is read; --config-dir excludes --static-resources', async (t) => {
  t.is((await fetch(`http://127.0.0.1:${mesh.cp.monitoringPort}/readyz`)).status, 200);
  const both = startTrellis(['control-plane', '--config-dir', mesh.dir.dir, '--static-resources', 'x.yaml']);
  t.is(await both.exited, 2);
});
