// The Go load generator's mesh mode (tools/peers/xds-load --mesh, driven by bench/mesh-load.ts), which the
// xds-mesh benchmark measures with, against the real control plane on a mesh directory: distinct sidecars
// and proxyless clients converge, and a round ends only when every stream has ACKed what it waits for (the
// moved endpoint, a new RouteConfiguration); a round whose change never comes ends incomplete.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { TypeUrl } from '../../control-plane/envoy/protos.js';
import { goPeer } from '../../bench/go-peers.js';
import { GoMeshFleet } from '../../bench/mesh-load.js';
import { proxylessNode, sidecarNode } from '../../bench/mesh-sim.js';
import { MeshFixture, outboundCluster } from '../../bench/mesh-fixture.js';
import { startControlPlaneProcess } from '../helpers/process.js';

const binary = goPeer('xds-load');
const TIMEOUT_MS = 60_000;
const title = 'the Go mesh clients converge as distinct pods and end a round when every stream ACKed the change';

const sidecar = (w: number, j: number) => sidecarNode(w, j, 3);
const proxyless = (k: number) => proxylessNode(k);

if (!binary && process.env.CI !== 'true') {
  test.skip(`${title} [not built: npm run peers -- xds-load]`, () => undefined);
} else {
  test(title, async (t) => {
    t.timeout(4 * TIMEOUT_MS);
    if (!binary) return t.fail('the Go peer xds-load is not built (npm run peers); CI must not skip');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-xds-load-mesh-'));
    const fixture = new MeshFixture(dir, { services: 20, endpoints: 3 });
    fixture.writeAll();
    const cp = await startControlPlaneProcess(['--config-dir', dir, '--debounce-after', '20ms']);
    const fleet = new GoMeshFleet(binary, `127.0.0.1:${cp.xdsPort}`, 2);
    try {
      const nodes = [sidecar(0, 0), sidecar(0, 1), sidecar(1, 0), sidecar(2, 2), proxyless(0), proxyless(3)];
      const converged = await fleet.connect(nodes, TIMEOUT_MS);
      t.is(converged.length, nodes.length);
      t.true(
        converged.every((ms) => Number.isFinite(ms) && ms >= 0),
        'every stream has its whole config ACKed',
      );
      const counts = await fleet.typeCounts();
      for (const type of [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration])
        t.true((counts.get(type) ?? 0) >= nodes.length, `every stream got ${type}`);

      // An endpoint moves: every stream must ACK the assignment with the new first address.
      const moved = { kind: 'eds' as const, targets: new Map([[outboundCluster(5), '1.0.0.5']]) };
      const endpoint = await fleet.startRound(moved, TIMEOUT_MS);
      fixture.update(5, { firstAddress: '1.0.0.5' });
      const endpointDone = await endpoint.done;
      t.true(endpointDone.complete);
      t.is(endpointDone.ackedMs.length, nodes.length);
      t.true(endpointDone.ackedMs.every((ms) => Number.isFinite(ms) && ms >= 0));

      // A VirtualService changes: every stream must ACK a RouteConfiguration.
      const routes = await fleet.startRound({ kind: 'type', typeUrl: TypeUrl.RouteConfiguration }, TIMEOUT_MS);
      fixture.update(7, { v1Weight: 60 });
      t.true((await routes.done).complete);

      // A change that never comes: the round ends at its timeout, incomplete, every stream missing.
      const never = { kind: 'eds' as const, targets: new Map([[outboundCluster(6), '1.0.0.99']]) };
      const missed = await (await fleet.startRound(never, 2_000)).done;
      t.false(missed.complete);
      t.true(missed.ackedMs.every((ms) => Number.isNaN(ms)));

      // A pod that connects later converges too, and takes part in the next round.
      const [late] = await fleet.connect([sidecar(3, 1)], TIMEOUT_MS);
      t.true(Number.isFinite(late));
      const again = await fleet.startRound(
        { kind: 'eds', targets: new Map([[outboundCluster(5), '1.0.1.5']]) },
        TIMEOUT_MS,
      );
      fixture.update(5, { firstAddress: '1.0.1.5' });
      const againDone = await again.done;
      t.true(againDone.complete);
      t.is(againDone.ackedMs.length, nodes.length + 1);
      t.true((await fleet.totalBytes()) > 0);
      t.deepEqual(fleet.errors, []);
    } finally {
      await fleet.close();
      await cp.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
