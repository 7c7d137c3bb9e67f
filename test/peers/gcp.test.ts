// The go-control-plane baseline of `npm run bench -- xds-compare` kept honest: the go-control-plane peer
// (SnapshotCache and LinearCache; and the SnapshotCache reading the file's binary form, as the new-Pod
// baseline of `xds-mesh` writes it) and `trellis control-plane --static-resources` serve the same file, the Go
// load generator (tools/peers/xds-load) opens 5 Envoy-like ADS streams against each, and every stream of every
// server must hold the same resources, byte for byte, before and after a one-endpoint change.
// Skipped (one line) when the Go peers are not built, failed under CI.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { Fixture, ROUTE_NAME } from '../../bench/fixture.js';
import { goPeer, isEvent, startGcp, startLoad, type GoEvent, type GoProcess } from '../../bench/go-peers.js';
import { binaryResource } from '../../bench/mesh-baseline.js';
import type { JsonValue } from '@bufbuild/protobuf';
import { startControlPlaneProcess } from '../helpers/process.js';

const gcpBinary = goPeer('gcp');
const loadBinary = goPeer('xds-load');
const built = gcpBinary !== undefined && loadBinary !== undefined;
const STREAMS = 5;
const CHANGED = 3;
const PORT = 20_001;
const TIMEOUT_MS = 60_000;

type Held = Record<string, Record<string, string>>;
type ServerKind = 'trellis' | 'gcp-snapshot' | 'gcp-linear' | 'gcp-binary';

/** The file as `kind` reads it: gcp-binary gets each resource as {typeUrl, binary} (bench/mesh-baseline.ts). */
function fileText(kind: ServerKind, text: string): string {
  if (kind !== 'gcp-binary') return text;
  const { resources } = JSON.parse(text) as { resources: JsonValue[] };
  return JSON.stringify({
    resources: resources.map((r) => {
      const { typeUrl, binary } = binaryResource(r);
      return { typeUrl, binary };
    }),
  });
}

interface Served {
  readonly kind: ServerKind;
  readonly file: string;
  readonly xdsPort: number;
  stop(): Promise<unknown>;
}

async function serve(kind: ServerKind, dir: string, text: string): Promise<Served> {
  const file = path.join(dir, `${kind}.json`);
  fs.writeFileSync(file, fileText(kind, text));
  if (kind === 'trellis') {
    const cp = await startControlPlaneProcess(['--static-resources', file, '--debounce-after', '0ms']);
    return { kind, file, xdsPort: cp.xdsPort, stop: () => cp.stop() };
  }
  const { server, xdsPort } = await startGcp(gcpBinary!, file, kind === 'gcp-linear' ? 'linear' : 'snapshot');
  return { kind, file, xdsPort, stop: () => server.stop() };
}

async function held(load: GoProcess): Promise<Held[]> {
  const since = load.events.length;
  load.command('held');
  return (await load.waitFor(isEvent('held'), TIMEOUT_MS, since)).streams;
}

const withChanged = (e: GoEvent): e is Extract<GoEvent, { event: 'changed' }> => e.event === 'changed';

for (const protocol of ['delta', 'sotw'] as const) {
  const title = `go-control-plane and trellis serve the same resources to the Go load generator (${protocol})`;
  if (!built && process.env.CI !== 'true') {
    test.skip(`${title} [not built: npm run peers -- gcp xds-load]`, () => undefined);
    continue;
  }
  test(title, async (t) => {
    t.timeout(4 * TIMEOUT_MS);
    if (!built) return t.fail('the Go peers gcp and xds-load are not built (npm run peers); CI must not skip');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-gcp-test-'));
    const fixture = new Fixture({ clusters: 20, endpoints: 2 });
    const target = fixture.clusterNames[CHANGED]!;
    const servers: Served[] = [];
    const loads: GoProcess[] = [];
    try {
      for (const kind of ['trellis', 'gcp-snapshot', 'gcp-linear', 'gcp-binary'] as const)
        servers.push(await serve(kind, dir, fixture.text()));
      for (const s of servers) {
        const load = startLoad(loadBinary!, {
          target: `127.0.0.1:${s.xdsPort}`,
          protocol,
          streams: STREAMS,
          connections: 2,
          routes: [ROUTE_NAME],
          record: true,
        });
        loads.push(load);
      }
      for (const load of loads) await load.waitFor(isEvent('converged'), TIMEOUT_MS);

      const before = await Promise.all(loads.map(held));
      const reference = before[0]![0]!;
      t.deepEqual(Object.keys(reference).sort(), [
        'type.googleapis.com/envoy.config.cluster.v3.Cluster',
        'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
        'type.googleapis.com/envoy.config.listener.v3.Listener',
        'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
      ]);
      t.deepEqual(
        Object.keys(reference['type.googleapis.com/envoy.config.cluster.v3.Cluster']!).sort(),
        [...fixture.clusterNames].sort(),
      );
      before.forEach((streams, i) =>
        streams.forEach((h, j) => t.deepEqual(h, reference, `${servers[i]!.kind} stream ${j} before the change`)),
      );

      // One endpoint moves to another port: each server's file is replaced atomically.
      fixture.setPort(CHANGED, PORT);
      const text = fixture.text();
      for (const [i, load] of loads.entries()) {
        const since = load.events.length;
        load.command(`watch 1 ${target} ${PORT}`);
        await load.waitFor(isEvent('watching'), TIMEOUT_MS, since);
        fs.writeFileSync(`${servers[i]!.file}.tmp`, fileText(servers[i]!.kind, text));
        fs.renameSync(`${servers[i]!.file}.tmp`, servers[i]!.file);
      }
      for (const [i, load] of loads.entries()) {
        const changed = await load.waitFor(withChanged, TIMEOUT_MS);
        t.true(changed.complete, `${servers[i]!.kind}: every stream ACKed the change`);
        t.true(
          changed.ackedAt.every((v) => typeof v === 'number'),
          `${servers[i]!.kind}: ack times`,
        );
      }
      const after = await Promise.all(loads.map(held));
      const changedRef = after[0]![0]!;
      const cla = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
      t.not(changedRef[cla]![target], reference[cla]![target], 'the changed ClusterLoadAssignment has new bytes');
      for (const type of Object.keys(reference))
        for (const name of Object.keys(reference[type]!))
          if (name !== target) t.is(changedRef[type]![name], reference[type]![name], `${type} ${name} unchanged`);
      after.forEach((streams, i) =>
        streams.forEach((h, j) => t.deepEqual(h, changedRef, `${servers[i]!.kind} stream ${j} after the change`)),
      );
      for (const load of loads) t.deepEqual(load.errors, []);
    } finally {
      await Promise.all(loads.map((l) => l.stop()));
      await Promise.all(servers.map((s) => s.stop()));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
