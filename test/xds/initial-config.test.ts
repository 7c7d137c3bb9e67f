// trellis_xds_initial_config_seconds: from a stream's first request to its first ACK of each of CDS, EDS, LDS
// and RDS, observed once per stream, labelled by proxy type; a stream that never ACKs all four is not observed.
// Real gRPC streams against the xDS engine, with a clock the test moves.
import test from 'ava';
import { TypeUrl } from '../../control-plane/envoy/protos.js';
import type { Clock } from '../../control-plane/xds/clock.js';
import { testNode, type DeltaStream, type SotwStream } from '../helpers/ads-client.js';
import { apiListener, edsCluster, loadAssignment, routeConfig } from '../helpers/control-plane.js';
import { waitFor } from '../helpers/wait.js';
import { resourcesByType, startXdsEngine, type XdsEngine } from '../helpers/xds-engine.js';

/** A clock that moves only when the test sets it (ms). */
class SetClock implements Clock {
  ms = 1_000;
  now(): number {
    return this.ms;
  }
}

async function engineWith(clock: Clock, port = 9001): Promise<XdsEngine> {
  const resources = await resourcesByType([
    edsCluster('a'),
    loadAssignment('a', [port]),
    apiListener('l', 'r'),
    routeConfig('r', ['*'], { a: 100 }),
  ]);
  return startXdsEngine(resources, { ads: { clock } });
}

/** Count and sum of the histogram for one proxy type. */
async function observed(engine: XdsEngine, proxy: string): Promise<{ count: number; sum: number }> {
  const { values } = await engine.metrics.initialConfig.get();
  const of = (suffix: string): number =>
    values.find((v) => v.metricName === `trellis_xds_initial_config_seconds_${suffix}` && v.labels.proxy === proxy)
      ?.value ?? 0;
  return { count: of('count'), sum: of('sum') };
}

/** Sends a delta request and returns the response to it. */
async function deltaAsk(
  s: DeltaStream,
  request: Parameters<DeltaStream['send']>[0],
): Promise<Awaited<ReturnType<DeltaStream['next']>>> {
  s.send(request);
  return s.next();
}

test('an Envoy on delta is observed once, from its first request to its first ACK of the last of the four types', async (t) => {
  const clock = new SetClock();
  await using engine = await engineWith(clock);
  const s = engine.client().delta();
  // Envoy's order: clusters, their endpoints, listeners, the routes they name.
  const cds = await deltaAsk(s, { node: testNode('envoy-1.default'), typeUrl: TypeUrl.Cluster });
  clock.ms = 1_003;
  s.send({ typeUrl: TypeUrl.Cluster, responseNonce: cds.nonce });
  const cla = await deltaAsk(s, { typeUrl: TypeUrl.ClusterLoadAssignment, resourceNamesSubscribe: ['a'] });
  s.send({ typeUrl: TypeUrl.ClusterLoadAssignment, responseNonce: cla.nonce });
  clock.ms = 1_010;
  const lds = await deltaAsk(s, { typeUrl: TypeUrl.Listener });
  s.send({ typeUrl: TypeUrl.Listener, responseNonce: lds.nonce });
  const rds = await deltaAsk(s, { typeUrl: TypeUrl.RouteConfiguration, resourceNamesSubscribe: ['r'] });
  // The LDS ACK was read before the RDS request was answered: three of four ACKed, nothing observed yet.
  t.deepEqual(await observed(engine, 'envoy'), { count: 0, sum: 0 });
  clock.ms = 1_042;
  s.send({ typeUrl: TypeUrl.RouteConfiguration, responseNonce: rds.nonce });
  const seen = await waitFor('the initial config observed', async () => {
    const o = await observed(engine, 'envoy');
    return o.count > 0 && o;
  });
  t.is(seen.count, 1);
  t.true(Math.abs(seen.sum - 0.042) < 1e-9, `observed ${seen.sum} s, expected 0.042`);

  // A later change and its ACKs do not observe the stream again.
  clock.ms = 5_000;
  await engine.change(
    await resourcesByType([
      edsCluster('a'),
      loadAssignment('a', [9002]),
      apiListener('l', 'r'),
      routeConfig('r', ['*'], { a: 100 }),
    ]),
  );
  const pushed = await s.next();
  t.is(pushed.typeUrl, TypeUrl.ClusterLoadAssignment);
  s.send({ typeUrl: TypeUrl.ClusterLoadAssignment, responseNonce: pushed.nonce });
  // A request answered after that ACK (a name that does not exist is reported removed) proves it was read.
  const missing = await deltaAsk(s, { typeUrl: TypeUrl.RouteConfiguration, resourceNamesSubscribe: ['missing'] });
  t.deepEqual(missing.removedResources, ['missing']);
  t.deepEqual(await observed(engine, 'envoy'), seen);
});

test('a stream that NACKs one of the four types is not observed; a proxyless gRPC client on SotW is, as grpc', async (t) => {
  const clock = new SetClock();
  await using engine = await engineWith(clock);

  // An Envoy that rejects the endpoints: three types ACKed, never the fourth.
  const nacking = engine.client().delta();
  const cds = await deltaAsk(nacking, { node: testNode('nacking.default'), typeUrl: TypeUrl.Cluster });
  nacking.send({ typeUrl: TypeUrl.Cluster, responseNonce: cds.nonce });
  const cla = await deltaAsk(nacking, { typeUrl: TypeUrl.ClusterLoadAssignment, resourceNamesSubscribe: ['a'] });
  nacking.send({
    typeUrl: TypeUrl.ClusterLoadAssignment,
    responseNonce: cla.nonce,
    errorDetail: { code: 3, message: 'rejected by test' },
  });
  const lds = await deltaAsk(nacking, { typeUrl: TypeUrl.Listener });
  nacking.send({ typeUrl: TypeUrl.Listener, responseNonce: lds.nonce });
  const rds = await deltaAsk(nacking, { typeUrl: TypeUrl.RouteConfiguration, resourceNamesSubscribe: ['r'] });
  nacking.send({ typeUrl: TypeUrl.RouteConfiguration, responseNonce: rds.nonce });
  // Answered after every message before it was read.
  const missing = await deltaAsk(nacking, {
    typeUrl: TypeUrl.RouteConfiguration,
    resourceNamesSubscribe: ['missing'],
  });
  t.deepEqual(missing.removedResources, ['missing']);
  t.deepEqual(await observed(engine, 'envoy'), { count: 0, sum: 0 });

  const ask = async (s: SotwStream, request: Parameters<SotwStream['send']>[0]) => {
    s.send(request);
    return s.next();
  };
  // grpc-js's order: listeners, routes, clusters, endpoints.
  const grpc = engine.client().sotw();
  const l = await ask(grpc, { node: testNode('grpc-1.default', { PROXY_TYPE: 'grpc' }), typeUrl: TypeUrl.Listener });
  grpc.send({ typeUrl: TypeUrl.Listener, versionInfo: l.versionInfo, responseNonce: l.nonce });
  const r = await ask(grpc, { typeUrl: TypeUrl.RouteConfiguration, resourceNames: ['r'] });
  grpc.send({
    typeUrl: TypeUrl.RouteConfiguration,
    resourceNames: ['r'],
    versionInfo: r.versionInfo,
    responseNonce: r.nonce,
  });
  const c = await ask(grpc, { typeUrl: TypeUrl.Cluster });
  grpc.send({ typeUrl: TypeUrl.Cluster, versionInfo: c.versionInfo, responseNonce: c.nonce });
  const e = await ask(grpc, { typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ['a'] });
  clock.ms = 1_250;
  grpc.send({
    typeUrl: TypeUrl.ClusterLoadAssignment,
    resourceNames: ['a'],
    versionInfo: e.versionInfo,
    responseNonce: e.nonce,
  });

  const seen = await waitFor('the gRPC client observed', async () => {
    const o = await observed(engine, 'grpc');
    return o.count > 0 && o;
  });
  t.deepEqual(seen, { count: 1, sum: 0.25 });
});
