// The control plane's life: as a real process (health, readiness, metrics, SIGTERM), connection aging,
// static resources that go bad, and the per-proxy debug view.
import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { Cluster } from '../../control-plane/envoy/gen/envoy/config/cluster/v3/cluster_pb.js';
import { TypeUrl } from '../../control-plane/envoy/protos.js';
import { createLogger } from '../../control-plane/logger.js';
import { RawAdsClient, deltaNamesOf, deltaVersionsOf, namesOf, resourcesOf, testNode } from '../helpers/ads-client.js';
import { edsCluster, writeFileAtomically, writeResourcesFile, type JsonResource } from '../helpers/control-plane.js';
import { debugProxies } from '../helpers/debug.js';
import { startControlPlaneProcess, type LogLine } from '../helpers/process.js';
import { waitFor, within } from '../helpers/wait.js';
import { adsEnv, twoClusterConfig } from '../helpers/ads-env.js';

const base = twoClusterConfig;

const setup = adsEnv;

/** A logger whose JSON lines land in `lines`. */
function capturingLogger() {
  const lines: LogLine[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const text of chunk.toString().split('\n')) if (text !== '') lines.push(JSON.parse(text) as LogLine);
      callback();
    },
  });
  return { lines, logger: createLogger({ level: 'info', destination }) };
}

test('trellis control-plane as a process: health, readiness, metrics; SIGTERM ends streams with OK and exits 0', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-proc-'));
  const file = path.join(dir, 'resources.json');
  await writeResourcesFile(file, base);
  const proc = await startControlPlaneProcess(['--static-resources', file]);
  const client = new RawAdsClient(`127.0.0.1:${proc.xdsPort}`);
  t.teardown(async () => {
    client.close();
    if (proc.child.exitCode === null) proc.child.kill('SIGKILL');
    await fs.rm(dir, { recursive: true, force: true });
  });
  t.true(proc.xdsPort > 0 && proc.monitoringPort > 0);

  const get = (pathname: string): Promise<Response> => fetch(`http://127.0.0.1:${proc.monitoringPort}${pathname}`);
  t.is((await get('/healthz')).status, 200);
  t.is((await get('/readyz')).status, 200);

  const s = client.sotw();
  s.send({ node: testNode('p1.default'), typeUrl: TypeUrl.Cluster });
  const cds = await s.next();
  t.deepEqual(namesOf(cds), ['a', 'b']);
  s.send({ typeUrl: TypeUrl.Cluster, versionInfo: cds.versionInfo, responseNonce: cds.nonce });
  s.send({ typeUrl: TypeUrl.Listener });
  const lds = await s.next();
  s.send({
    typeUrl: TypeUrl.Listener,
    responseNonce: lds.nonce,
    errorDetail: { code: 3, message: 'rejected by test' },
  });

  const metrics = await waitFor('the ACK and the NACK in /metrics', async () => {
    const text = await (await get('/metrics')).text();
    return (
      /trellis_xds_acks_total\{type="CDS"\} 1/.test(text) &&
      /trellis_xds_nacks_total\{type="LDS"\} 1/.test(text) &&
      text
    );
  });
  t.regex(metrics, /trellis_xds_connected_proxies\{protocol="sotw"\} 1/);
  t.regex(metrics, /trellis_xds_pushes_total\{type="CDS"\} 1/);
  t.regex(metrics, /trellis_xds_push_duration_seconds_count\{type="CDS"\} 1/);
  t.regex(metrics, /trellis_xds_push_duration_seconds_bucket\{le="[^"]+",type="CDS"\}/);
  t.regex(metrics, /^trellis_process_cpu_seconds_total/m);

  // Exit code 0 means the graceful close finished (cli.ts exits 0 only once close() has resolved).
  proc.child.kill('SIGTERM');
  const end = await within('the stream status after SIGTERM', s.ended, 20_000);
  t.is(end.code, grpc.status.OK);
  t.is(await within('the exit after SIGTERM', proc.exited, 20_000), 0);
});

/** Resolves when the channel leaves `state`. */
function leaves(
  channel: ReturnType<grpc.Client['getChannel']>,
  state: grpc.connectivityState,
  timeoutMs: number,
): Promise<grpc.connectivityState> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const watch = (): void => {
      const now = channel.getConnectivityState(false);
      if (now !== state) {
        resolve(now);
        return;
      }
      channel.watchConnectivityState(now, deadline, (err) => {
        if (err) reject(new Error(`the channel stayed ${grpc.connectivityState[state]} for ${timeoutMs} ms`));
        else watch();
      });
    };
    watch();
  });
}

test('max connection age: the connection gets a GOAWAY, its stream ends, a new stream reconnects and gets config', async (t) => {
  await using env = await setup(base, { maxConnectionAgeMs: 300, maxConnectionAgeGraceMs: 2_000 });
  const channel = env.client.client.getChannel();
  const s1 = env.client.sotw();
  let s1Ended = false;
  void s1.ended.then(() => (s1Ended = true));
  s1.send({ node: testNode('p1.default'), typeUrl: TypeUrl.Cluster });
  const first = await s1.next();
  const [before] = await debugProxies(env.cp.monitoringPort);
  t.truthy(before);

  // The GOAWAY: grpc-js takes a connection that received one out of READY at once, while its open stream
  // lives on until the server's grace period ends.
  t.not(await leaves(channel, grpc.connectivityState.READY, 5_000), grpc.connectivityState.SHUTDOWN);
  t.false(s1Ended, 'the stream was still open when the GOAWAY arrived');
  const end = await s1.ended;
  t.true([grpc.status.OK, grpc.status.UNAVAILABLE].includes(end.code), `ended with ${grpc.status[end.code]}`);

  // The same client opens a new stream: a new connection, the same config.
  const s2 = env.client.sotw();
  s2.send({ node: testNode('p1.default'), typeUrl: TypeUrl.Cluster });
  const second = await s2.next();
  t.deepEqual(namesOf(second), namesOf(first));
  t.is(second.versionInfo, first.versionInfo);
  const after = (await debugProxies(env.cp.monitoringPort)).at(-1);
  t.is(after?.node?.id, 'p1.default');
  t.not(after?.stream, before!.stream);
  t.not(after?.peer, before!.peer);
});

test('a bad resource hurts only itself and keeps its last good version; an unparsable file keeps the last good content', async (t) => {
  const logs = capturingLogger();
  await using env = await setup(base, { logger: logs.logger });
  const s = env.client.delta();
  s.send({ node: testNode('p1.default'), typeUrl: TypeUrl.Cluster });
  const initial = await s.next();
  t.deepEqual(deltaNamesOf(initial), ['a', 'b']);

  // a changes; b turns bad (it had a good version); c is new and bad; d is new and good.
  await env.cp.write([
    edsCluster('a', { connectTimeout: '2s' }),
    edsCluster('b', { connectTimeout: 'abc' }),
    edsCluster('c', { connectTimeout: 'xyz' }),
    edsCluster('d'),
    ...base.slice(2),
  ]);
  const update = await s.next();
  // b is neither changed nor removed, c never appears.
  t.deepEqual(deltaNamesOf(update), ['a', 'd']);
  t.deepEqual(update.removedResources, []);
  const rejected = await waitFor('two rejections in the log', () => {
    const errors = logs.lines.filter((l) => l.msg === 'static resource rejected').map((l) => String(l.error));
    return errors.length >= 2 && errors;
  });
  t.is(rejected.length, 2);
  t.regex(rejected[0]!, /resources\.json: resources\[1\] \(envoy\.config\.cluster\.v3\.Cluster "b"\): .*"abc"/);
  t.regex(rejected[1]!, /resources\.json: resources\[2\] \(envoy\.config\.cluster\.v3\.Cluster "c"\): .*"xyz"/);

  // A new proxy gets b in its last good version.
  const check = env.client.sotw();
  check.send({ node: testNode('p2.default'), typeUrl: TypeUrl.Cluster });
  const full = resourcesOf(await check.next());
  t.deepEqual([...full.keys()], ['a', 'b', 'd']);
  t.is((full.get('b') as Cluster).connectTimeout?.seconds, 1n);
  t.is((full.get('a') as Cluster).connectTimeout?.seconds, 2n);

  // A file that no longer parses: reported, and the last good content stays (a new proxy gets it).
  await writeFileAtomically(env.cp.file, 'resources: [\n  - {"@type": broken\n');
  await waitFor('the parse error in the log', () =>
    logs.lines.some((l) => l.msg === 'static resources not reloaded; keeping the last good content'),
  );
  const late = env.client.delta();
  late.send({ node: testNode('p3.default'), typeUrl: TypeUrl.Cluster });
  const kept = await late.next();
  t.deepEqual(deltaNamesOf(kept), ['a', 'b', 'd']);
  t.is(deltaVersionsOf(kept).b, deltaVersionsOf(initial).b);

  // The next good file is taken again.
  await env.cp.write(base);
  const restored = await s.next();
  t.deepEqual(deltaNamesOf(restored), ['a']);
  t.deepEqual(restored.removedResources, ['d']);
});

test('a client that half-closes its stream gets status OK and is no longer listed', async (t) => {
  await using env = await setup();
  const s = env.client.delta();
  s.send({ node: testNode('p1.default'), typeUrl: TypeUrl.Cluster });
  await s.next();
  const other = env.client.sotw();
  other.send({ node: testNode('p2.default'), typeUrl: TypeUrl.Cluster });
  await other.next();
  s.halfClose();
  const end = await within('the status after the half-close', s.ended);
  t.is(end.code, grpc.status.OK);
  await waitFor('p1 to leave /debug/proxies', async () => {
    const ids = (await debugProxies(env.cp.monitoringPort)).map((p) => p.node?.id);
    return JSON.stringify(ids) === '["p2.default"]';
  });
  t.regex(await (await env.cp.monitoring('/metrics')).text(), /trellis_xds_connected_proxies\{protocol="delta"\} 0/);
});

test('/debug/config shows the resources of a proxy as proto3 JSON', async (t) => {
  await using env = await setup();
  const s = env.client.delta();
  s.send({ node: testNode('p1.default'), typeUrl: TypeUrl.Cluster });
  const cds = await s.next();

  const res = await env.cp.monitoring('/debug/config?proxy=p1.default');
  t.is(res.status, 200);
  const body = (await res.json()) as {
    proxy: string;
    hash: string;
    config: Record<string, { version: string; resources: { version: string; resource: JsonResource }[] }>;
  };
  t.is(body.proxy, 'p1.default');
  t.is(typeof body.hash, 'string');
  t.deepEqual(Object.keys(body.config).sort(), ['CDS', 'EDS', 'LDS', 'RDS']);
  // Exactly what the file says, in proto3 JSON with its @type, and the version the proxy was sent.
  const byKey = (list: readonly JsonResource[]): Record<string, JsonResource> =>
    Object.fromEntries(list.map((r) => [`${r['@type']} ${String(r.name ?? r.clusterName)}`, r]));
  const served = Object.values(body.config).flatMap((set) => set.resources.map((r) => r.resource));
  t.deepEqual(byKey(served), byKey(base));
  const a = body.config.CDS!.resources.find((r) => r.resource.name === 'a');
  t.is(a?.version, deltaVersionsOf(cds).a);

  t.is((await env.cp.monitoring('/debug/config?proxy=nobody')).status, 404);
});
