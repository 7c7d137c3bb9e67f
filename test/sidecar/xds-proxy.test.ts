// The agent's local xDS proxy with real parts only: grpc-js-xds clients (bootstrap server_uri on the
// proxy's Unix socket) and raw delta ADS clients talk through the proxy to a real control plane
// (startTestControlPlane, static resources) and make RPCs to real echo gRPC servers. The upstream is
// plaintext or mutual TLS (a CA from certs/, the control plane's AdsServer bound to an extra TLS port).
import test, { type ExecutionContext } from 'ava';
import * as grpc from '@grpc/grpc-js';
import { register } from '@grpc/grpc-js-xds';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  CertificateAuthority,
  MemoryCertificateProvider,
  checkServerSpiffeId,
  type TlsMaterial,
} from '../../certs/index.js';
import { TypeUrl } from '../../control-plane/envoy/protos.js';
import {
  EchoClient,
  startEchoServer,
  xdsBootstrap,
  xdsChannelOptions,
  type EchoServer,
} from '../../examples/demo/echo.js';
import { XdsProxy, type XdsProxyOptions } from '../../sidecar/xds-proxy.js';
import { RawAdsClient, deltaNamesOf, testNode, type DeltaStream, type StreamEnd } from '../helpers/ads-client.js';
import {
  apiListener,
  edsCluster,
  loadAssignment,
  routeConfig,
  startTestControlPlane,
  type JsonResource,
  type TestControlPlane,
} from '../helpers/control-plane.js';
import { freePorts } from '../helpers/mesh-e2e.js';
import { waitFor, within } from '../helpers/wait.js';
import { CONTROL_PLANE_ID, signedBy } from '../ca/ca-helpers.js';
import { localCa } from './helpers.js';

register();

const host = 'echo.default.svc.cluster.local';
const target = `${host}:8080`;
/** What the clients' node metadata claims: the identity of the pod's certificate (design.md §5.1). */
const CLIENT_METADATA = { NAMESPACE: 'default', SERVICE_ACCOUNT: 'echo-client' };
/** Short reconnect backoff on the proxy's channel, so a restarted control plane is found quickly. */
const FAST_RECONNECT: grpc.ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 1_000,
};

/** LDS → RDS → CDS → EDS for `target`, routed to `cluster`; one EDS endpoint per entry of `ports`. */
function config(cluster: string, ports: Readonly<Record<string, number>>): JsonResource[] {
  return [
    apiListener(target, '8080'),
    routeConfig('8080', [target, host], { [`outbound|8080||${cluster}`]: 1 }),
    ...Object.keys(ports).map((c) => edsCluster(`outbound|8080||${c}`)),
    ...Object.entries(ports).map(([c, port]) => loadAssignment(`outbound|8080||${c}`, [port])),
  ];
}

interface Env {
  readonly a: EchoServer;
  readonly b: EchoServer;
  readonly ports: Readonly<Record<string, number>>;
  readonly dir: string;
  readonly socketPath: string;
}

async function env(t: ExecutionContext): Promise<Env> {
  const a = await startEchoServer('server-a');
  const b = await startEchoServer('server-b');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-xds-proxy-'));
  t.teardown(async () => {
    await Promise.all([a.close(), b.close()]);
    await fs.rm(dir, { recursive: true, force: true });
  });
  return { a, b, ports: { a: a.port, b: b.port }, dir, socketPath: path.join(dir, 'xds.sock') };
}

async function startProxy(t: ExecutionContext, options: XdsProxyOptions): Promise<XdsProxy> {
  const proxy = new XdsProxy(options);
  t.teardown(() => proxy.close());
  await proxy.start();
  return proxy;
}

/** A grpc-js channel on xds:///target whose own XdsClient reaches the control plane through the proxy socket. */
function xdsClient(t: ExecutionContext, socketPath: string, nodeId: string): EchoClient {
  const client = new EchoClient(
    `xds:///${target}`,
    undefined,
    xdsChannelOptions(xdsBootstrap(`unix://${socketPath}`, nodeId, CLIENT_METADATA)),
  );
  t.teardown(() => client.close());
  return client;
}

/** Polls RPCs until one is answered by `server` (a config change has taken effect). */
async function reaches(client: EchoClient, server: string, timeoutMs = 15_000): Promise<void> {
  await waitFor(
    `calls to reach ${server}`,
    async () => {
      try {
        return (await client.echo('poll', 1_000)).server === server;
      } catch {
        return false;
      }
    },
    timeoutMs,
  );
}

/** The control plane's streams from these node ids. */
function streamsOf(cp: TestControlPlane, ...nodeIds: string[]) {
  return cp.ads.status().filter((s) => s.node !== undefined && nodeIds.includes(s.node.id));
}

/** A delta ADS stream (through whatever `client` points at) subscribed to every cluster. */
function deltaClusters(client: RawAdsClient, nodeId: string): DeltaStream {
  const stream = client.delta();
  stream.send({ node: testNode(nodeId), typeUrl: TypeUrl.Cluster, resourceNamesSubscribe: ['*'] });
  return stream;
}

async function svid(ca: CertificateAuthority, namespace: string, serviceAccount: string): Promise<TlsMaterial> {
  const { chain, keyPem } = await signedBy(ca, { trustDomain: 'cluster.local', namespace, serviceAccount });
  return { certChainPem: chain.join(''), privateKeyPem: keyPem, trustBundlePem: ca.trustBundle() };
}

test('plaintext upstream: a grpc-js-xds client gets its config through the proxy and follows changes', async (t) => {
  const e = await env(t);
  const cp = await startTestControlPlane(config('a', e.ports));
  t.teardown(() => cp.close());
  const proxy = await startProxy(t, {
    listen: { socketPath: e.socketPath },
    upstream: { target: cp.target, credentials: grpc.credentials.createInsecure() },
  });
  await proxy.whenReady(5_000);
  t.true(proxy.ready());

  const client = xdsClient(t, e.socketPath, 'client-1.default');
  for (let i = 0; i < 3; i++) t.is((await client.echo(`hello ${i}`)).server, 'server-a');

  // The control plane saw the client's own node (the first request relayed as is) and every type ACKed.
  const [seen] = streamsOf(cp, 'client-1.default');
  t.truthy(seen);
  t.is(seen!.node!.proxyType, 'grpc');
  t.deepEqual(seen!.types.map((x) => x.type).sort(), ['CDS', 'EDS', 'LDS', 'RDS']);
  for (const type of seen!.types) {
    t.is(type.lastNack, undefined, `${type.type} NACKed`);
    t.is(type.ackedVersion, type.sentVersion, `${type.type} ACKed the last version sent`);
  }
  const status = proxy.status();
  t.is(status.openStreams, 1);
  t.is(status.upstreamState, 'READY');
  t.is(status.streams[0]!.protocol, 'sotw');
  t.is(status.streams[0]!.nodeId, 'client-1.default');
  t.true(status.requestsRelayed >= 8, `requests relayed: ${status.requestsRelayed}`); // 4 subscriptions + 4 ACKs
  t.true(status.responsesRelayed >= 4, `responses relayed: ${status.responsesRelayed}`);

  await cp.write(config('b', e.ports));
  await reaches(client, 'server-b');
});

test('delta ADS is relayed byte for byte; cancels reach the control plane; closing the proxy ends streams', async (t) => {
  const e = await env(t);
  const cp = await startTestControlPlane(config('a', e.ports));
  t.teardown(() => cp.close());
  const proxy = await startProxy(t, {
    listen: { socketPath: e.socketPath, port: 0 },
    upstream: { target: cp.target, credentials: grpc.credentials.createInsecure() },
  });
  const viaSocket = new RawAdsClient(`unix://${e.socketPath}`);
  const direct = new RawAdsClient(cp.target);
  t.teardown(() => {
    viaSocket.close();
    direct.close();
  });

  const proxied = deltaClusters(viaSocket, 'sidecar-1.default');
  const reference = deltaClusters(direct, 'sidecar-2.default');
  const [got, want] = await Promise.all([proxied.next(), reference.next()]);
  t.deepEqual(deltaNamesOf(got).sort(), ['outbound|8080||a', 'outbound|8080||b']);
  t.deepEqual(deltaNamesOf(got), deltaNamesOf(want));
  for (const [i, r] of got.resources.entries()) {
    const w = want.resources[i]!;
    t.is(r.version, w.version);
    t.true(Buffer.from(r.resource!.value).equals(Buffer.from(w.resource!.value)), `${r.name} differs`);
  }
  t.is(proxy.status().streams[0]!.protocol, 'delta');
  t.is(proxy.status().streams[0]!.nodeId, 'sidecar-1.default');

  // A change is pushed through the proxy on the open stream.
  proxied.send({ typeUrl: TypeUrl.Cluster, responseNonce: got.nonce });
  await cp.write(config('a', { a: e.a.port }));
  const removal = await proxied.next();
  t.deepEqual(removal.removedResources, ['outbound|8080||b']);

  // Cancelling the downstream stream cancels the upstream one.
  t.is(streamsOf(cp, 'sidecar-1.default').length, 1);
  proxied.close();
  await waitFor(
    'the control plane to drop the cancelled stream',
    () => streamsOf(cp, 'sidecar-1.default').length === 0,
  );
  await waitFor('the proxy to drop the cancelled stream', () => proxy.status().openStreams === 0);

  // The TCP listener relays too; closing the proxy ends its streams with UNAVAILABLE.
  const viaTcp = new RawAdsClient(`127.0.0.1:${proxy.address().port}`);
  t.teardown(() => viaTcp.close());
  const open = deltaClusters(viaTcp, 'sidecar-3.default');
  await open.next();
  await proxy.close();
  const end = await within('the stream to end when the proxy closes', open.ended);
  t.is(end.code, grpc.status.UNAVAILABLE);
  await waitFor('the control plane to drop the stream', () => streamsOf(cp, 'sidecar-3.default').length === 0);
});

test('an unreachable upstream fails streams with UNAVAILABLE: at once with upstreamHoldMs 0, else when the hold ends', async (t) => {
  const e = await env(t);
  const [closedPort] = await freePorts(1);
  const held = await startProxy(t, {
    listen: { socketPath: path.join(e.dir, 'held.sock') },
    upstream: {
      target: `127.0.0.1:${closedPort}`,
      credentials: grpc.credentials.createInsecure(),
      channelOptions: FAST_RECONNECT,
    },
    upstreamHoldMs: 300,
  });
  const heldRaw = new RawAdsClient(`unix://${path.join(e.dir, 'held.sock')}`);
  t.teardown(() => heldRaw.close());
  const heldEnd = await within('the held stream to fail', deltaClusters(heldRaw, 'sidecar-2.default').ended, 10_000);
  t.is(heldEnd.code, grpc.status.UNAVAILABLE);
  t.regex(heldEnd.details, /control plane was unreachable for 300 ms/);
  t.is(held.status().openStreams, 0);

  const proxy = await startProxy(t, {
    upstreamHoldMs: 0,
    listen: { socketPath: e.socketPath },
    upstream: {
      target: `127.0.0.1:${closedPort}`,
      credentials: grpc.credentials.createInsecure(),
      channelOptions: FAST_RECONNECT,
    },
  });
  const raw = new RawAdsClient(`unix://${e.socketPath}`);
  t.teardown(() => raw.close());
  const end = await within('an UNAVAILABLE status', deltaClusters(raw, 'sidecar-1.default').ended, 5_000);
  t.is(end.code, grpc.status.UNAVAILABLE);
  t.false(proxy.ready());
  t.is(proxy.status().openStreams, 0);
  await t.throwsAsync(proxy.whenReady(300), { message: /not ready after 300 ms/ });
});

test('mutual TLS upstream: streams share one connection; a rotated certificate is used by the next connection', async (t) => {
  const e = await env(t);
  const cp = await startTestControlPlane(config('a', e.ports));
  t.teardown(() => cp.close());
  const ca1 = await localCa();
  const server = new MemoryCertificateProvider(await svid(ca1, 'trellis-system', 'trellisd'));
  const tlsPort = await cp.ads.listen('127.0.0.1', 0, server.serverCredentials(true));
  const workload = new MemoryCertificateProvider(await svid(ca1, 'default', 'echo-client'));
  const proxy = await startProxy(t, {
    listen: { socketPath: e.socketPath },
    upstream: {
      target: `127.0.0.1:${tlsPort}`,
      credentials: workload.channelCredentials(CONTROL_PLANE_ID),
      channelOptions: FAST_RECONNECT,
    },
  });
  await proxy.whenReady(5_000);

  const one = xdsClient(t, e.socketPath, 'client-1.default');
  const two = xdsClient(t, e.socketPath, 'client-2.default');
  t.is((await one.echo('one')).server, 'server-a');
  t.is((await two.echo('two')).server, 'server-a');

  // Two downstream streams, two upstream streams, one TCP connection (the same client address:port).
  t.is(proxy.status().openStreams, 2);
  const before = streamsOf(cp, 'client-1.default', 'client-2.default');
  t.is(before.length, 2);
  t.is(before[0]!.peer, before[1]!.peer);
  t.regex(before[0]!.peer, /^127\.0\.0\.1:\d+$/);

  // A client without a certificate is refused by the TLS port: its proxy fails streams with UNAVAILABLE.
  const anonymousSocket = path.join(e.dir, 'anonymous.sock');
  await startProxy(t, {
    upstreamHoldMs: 0,
    listen: { socketPath: anonymousSocket },
    upstream: {
      target: `127.0.0.1:${tlsPort}`,
      credentials: grpc.credentials.createSsl(Buffer.from(ca1.trustBundle()), null, null, {
        checkServerIdentity: checkServerSpiffeId(CONTROL_PLANE_ID),
      }),
    },
  });
  const anonymous = new RawAdsClient(`unix://${anonymousSocket}`);
  t.teardown(() => anonymous.close());
  const refused: StreamEnd = await within('a refusal', deltaClusters(anonymous, 'sidecar-9.default').ended, 10_000);
  t.is(refused.code, grpc.status.UNAVAILABLE);
  t.regex(refused.details, /certificate required/);

  // Rotation: the workload gets a certificate from a new CA and the control plane now trusts only that CA.
  const ca2 = await localCa();
  const rotated = await svid(ca2, 'default', 'echo-client');
  workload.update({ ...rotated, trustBundlePem: ca1.trustBundle() }); // the server's certificate is still from ca1
  server.update({ ...server.current()!, trustBundlePem: ca2.trustBundle() });

  // The established connection keeps running: a change still reaches both clients on the old streams.
  await cp.write(config('b', e.ports));
  await Promise.all([reaches(one, 'server-b'), reaches(two, 'server-b')]);
  t.deepEqual(
    streamsOf(cp, 'client-1.default', 'client-2.default').map((s) => s.peer),
    [before[0]!.peer, before[1]!.peer],
  );

  // The control plane drops the connection; the next handshake must present the new certificate, since
  // the old one no longer verifies. Both clients resync over one new connection.
  cp.ads.server.drain(`127.0.0.1:${tlsPort}`, 0);
  const after = await waitFor(
    'both clients to resync over a new connection',
    () => {
      const streams = streamsOf(cp, 'client-1.default', 'client-2.default');
      return streams.length === 2 && streams.every((s) => s.peer !== before[0]!.peer) ? streams : undefined;
    },
    30_000,
  );
  t.is(after[0]!.peer, after[1]!.peer);
  await cp.write(config('a', e.ports));
  await Promise.all([reaches(one, 'server-a'), reaches(two, 'server-a')]);
});

test('a crashed control plane: streams end with UNAVAILABLE, clients serve from cache, then resync to the restarted one', async (t) => {
  const e = await env(t);
  let cp = await startTestControlPlane(config('a', e.ports));
  const port = cp.xdsPort;
  t.teardown(() => cp.close());
  const proxy = await startProxy(t, {
    upstreamHoldMs: 0,
    listen: { socketPath: e.socketPath },
    upstream: { target: cp.target, credentials: grpc.credentials.createInsecure(), channelOptions: FAST_RECONNECT },
  });
  const client = xdsClient(t, e.socketPath, 'client-1.default');
  t.is((await client.echo('before')).server, 'server-a');
  const raw = new RawAdsClient(`unix://${e.socketPath}`);
  t.teardown(() => raw.close());
  const delta = deltaClusters(raw, 'sidecar-1.default');
  await delta.next();

  // The control plane's process dies (its connections drop without a status).
  cp.ads.server.forceShutdown();
  const end = await within('the delta stream to end', delta.ended);
  t.is(end.code, grpc.status.UNAVAILABLE, end.details);
  await cp.close();

  // With upstreamHoldMs 0, new streams fail at once; the xDS client keeps its cached config and RPCs keep working.
  const whileDown = await within('a stream opened while down to fail', deltaClusters(raw, 'sidecar-2.default').ended);
  t.is(whileDown.code, grpc.status.UNAVAILABLE);
  for (let i = 0; i < 3; i++) t.is((await client.echo(`cached ${i}`)).server, 'server-a');
  t.is(proxy.status().openStreams, 0);

  // Restarted on the same port with another route: the client reconnects through the proxy and follows it.
  cp = await startTestControlPlane(config('b', e.ports), { xdsPort: port });
  await reaches(client, 'server-b', 30_000);
  t.is(streamsOf(cp, 'client-1.default').length, 1);
  t.is(proxy.status().openStreams, 1);
});

test('a control plane restarting: a stream opened while it is down is held, then carried to it (the client never backs off)', async (t) => {
  const e = await env(t);
  let cp = await startTestControlPlane(config('a', e.ports));
  const port = cp.xdsPort;
  t.teardown(() => cp.close());
  const proxy = await startProxy(t, {
    listen: { socketPath: e.socketPath },
    upstream: { target: cp.target, credentials: grpc.credentials.createInsecure(), channelOptions: FAST_RECONNECT },
  });
  const raw = new RawAdsClient(`unix://${e.socketPath}`);
  t.teardown(() => raw.close());
  const first = deltaClusters(raw, 'sidecar-1.default');
  await first.next();
  cp.ads.server.forceShutdown();
  t.is((await within('the stream to end with the control plane', first.ended)).code, grpc.status.UNAVAILABLE);
  await cp.close();
  await waitFor('the upstream channel to leave READY', () => proxy.status().upstreamState !== 'READY', 10_000);

  // Opened while the control plane is down (as a client reopens right after its stream ended): held open.
  const held = deltaClusters(raw, 'sidecar-2.default');
  let ended = false;
  void held.ended.then(() => (ended = true));
  await waitFor('the held stream to be relayed', () => proxy.status().openStreams === 1, 10_000);
  cp = await startTestControlPlane(config('b', e.ports), { xdsPort: port });
  const response = await within('the held stream to reach the restarted control plane', held.next(), 30_000);
  t.true(response.resources.length > 0);
  t.false(ended);
  t.is(streamsOf(cp, 'sidecar-2.default').length, 1);
});

test('a control plane that shuts down gracefully ends relayed streams with its own status (OK)', async (t) => {
  const e = await env(t);
  const cp = await startTestControlPlane(config('a', e.ports));
  t.teardown(() => cp.close());
  await startProxy(t, {
    listen: { socketPath: e.socketPath },
    upstream: { target: cp.target, credentials: grpc.credentials.createInsecure() },
  });
  const raw = new RawAdsClient(`unix://${e.socketPath}`);
  t.teardown(() => raw.close());
  const delta = deltaClusters(raw, 'sidecar-1.default');
  await delta.next();
  await cp.close();
  const end = await within('the delta stream to end', delta.ended);
  t.is(end.code, grpc.status.OK);
});
