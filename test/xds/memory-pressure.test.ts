// Under memory pressure the control plane slows down and says so instead of dying: a push cycle pauses
// before generating more configs, new streams are refused with UNAVAILABLE, and both resume when the heap
// shrinks. The heap reading is injected: no real exhaustion in a test.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { TypeUrl } from '../../control-plane/envoy/protos.js';
import { silentLogger } from '../../control-plane/logger.js';
import { MemoryPressure, type HeapReading } from '../../control-plane/xds/memory-pressure.js';
import { endpointPortsOf, resourcesOf, testNode } from '../helpers/ads-client.js';
import { edsCluster, loadAssignment } from '../helpers/control-plane.js';
import { counterTotal, resourcesByType, startXdsEngine } from '../helpers/xds-engine.js';
import { XdsMetrics } from '../../control-plane/metrics.js';

const MiB = 1024 * 1024;

test('MemoryPressure: enters above the threshold, leaves below it minus the hysteresis; metric follows', (t) => {
  const metrics = new XdsMetrics();
  let reading: HeapReading = { used: 50 * MiB, limit: 100 * MiB };
  const pressure = new MemoryPressure({ metrics, logger: silentLogger, threshold: 0.8, read: () => reading });
  const changes: boolean[] = [];
  pressure.on('change', (high) => changes.push(high));
  t.false(pressure.check());
  reading = { used: 85 * MiB, limit: 100 * MiB };
  t.true(pressure.check());
  reading = { used: 78 * MiB, limit: 100 * MiB };
  t.true(pressure.check(), 'still under pressure within the hysteresis');
  reading = { used: 70 * MiB, limit: 100 * MiB };
  t.false(pressure.check());
  t.deepEqual(changes, [true, false]);
  t.regex(pressure.describe(), /heap 70 of 100 MiB, threshold 80%/);
});

test('under pressure: pushes pause and new streams get UNAVAILABLE; both resume when the heap shrinks', async (t) => {
  let reading: HeapReading = { used: 10 * MiB, limit: 100 * MiB };
  const initial = await resourcesByType([edsCluster('a'), loadAssignment('a', [9001])]);
  const metrics = new XdsMetrics();
  const pressure = new MemoryPressure({ metrics, logger: silentLogger, read: () => reading });
  await using engine = await startXdsEngine(initial, {
    ads: { memoryPressure: pressure },
    controller: { memoryPressure: pressure },
  });

  const connected = engine.client().sotw();
  connected.send({ node: testNode('p1.default'), typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ['a'] });
  const first = await connected.next();
  connected.send({
    typeUrl: first.typeUrl,
    resourceNames: ['a'],
    versionInfo: first.versionInfo,
    responseNonce: first.nonce,
  });

  reading = { used: 95 * MiB, limit: 100 * MiB };
  t.true(pressure.check());
  t.is(await metrics.memoryPressure.get().then((g) => g.values[0]?.value), 1);

  // A change: the cycle pauses before generating the proxy's config.
  const paused = new Promise<{ remaining: number }>((resolve) => engine.controller.once('paused', resolve));
  const pushed = engine.change(await resourcesByType([edsCluster('a'), loadAssignment('a', [9002])]));
  t.is((await paused).remaining, 1);

  // A new stream is refused with UNAVAILABLE and a message that says why.
  const refused = engine.client().sotw();
  refused.send({ node: testNode('p2.default'), typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ['a'] });
  const end = await refused.ended;
  t.is(end.code, grpc.status.UNAVAILABLE);
  t.regex(end.details, /memory pressure \(heap 95 of 100 MiB, threshold 85%\); retry later/);
  t.is(await counterTotal(engine.metrics.shedStreams), 1);

  // The heap shrinks: the paused cycle goes on and the connected proxy gets the change.
  reading = { used: 40 * MiB, limit: 100 * MiB };
  t.false(pressure.check());
  await pushed;
  const res = await connected.next();
  t.deepEqual(endpointPortsOf(resourcesOf(res).get('a')!), [9002]);

  const again = engine.client().sotw();
  again.send({ node: testNode('p3.default'), typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ['a'] });
  t.deepEqual(endpointPortsOf(resourcesOf(await again.next()).get('a')!), [9002], 'new streams are served again');
});
