// `startAgent` in Envoy mode with real parts only: a control plane in-process (CA in local mode, its TLS
// xDS port, a small mesh from a config dir), the agent getting its certificate from it, and real clients
// on the agent's sockets and ports: the Envoy bootstrap checked by Envoy's own validation, SDS over the
// Unix socket (a rotation pushed on the open stream), ADS through the local xDS proxy (bound by the
// control plane to the agent's certificate; another identity refused), /healthz/ready and /metrics,
// readiness before the first certificate and after it expired, and close().
import anyTest, { type TestFn } from 'ava';
import * as grpc from '@grpc/grpc-js';
import { fromJson, type JsonObject, type MessageInitShape } from '@bufbuild/protobuf';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Counter, Registry } from 'prom-client';
import type { RunningControlPlane } from '../../control-plane/control-plane.js';
import { BootstrapSchema } from '../../control-plane/envoy/gen/envoy/config/bootstrap/v3/bootstrap_pb.js';
import type { Node } from '../../control-plane/envoy/gen/envoy/config/core/v3/base_pb.js';
import type { Secret } from '../../control-plane/envoy/gen/envoy/extensions/transport_sockets/tls/v3/secret_pb.js';
import { DiscoveryRequestSchema } from '../../control-plane/envoy/gen/envoy/service/discovery/v3/discovery_pb.js';
import { registry as protoRegistry, TypeUrl, typeUrlOf } from '../../control-plane/envoy/protos.js';
import { SDS_CLUSTER } from '../../control-plane/translate/cluster-names.js';
import { ENVOY_BOOTSTRAP, SDS_SOCKET, startAgent, XDS_SOCKET, type RunningAgent } from '../../sidecar/agent.js';
import { XDS_CLUSTER } from '../../sidecar/bootstrap-envoy.js';
import { HealthServer } from '../../sidecar/health.js';
import type { ProxyNodeOptions } from '../../sidecar/proxy-node.js';
import { deltaNamesOf, RawAdsClient, type DeltaStream } from '../helpers/ads-client.js';
import { captureLogs, makeTempDir, startCaControlPlane, type CaControlPlane } from '../helpers/ca-control-plane.js';
import { debugProxies } from '../helpers/debug.js';
import { envoyValidateAvailable, validateEnvoyJson } from '../helpers/envoy-validate.js';
import { backendManifests, freePorts, MeshDir, namespaceManifest, serviceManifest } from '../helpers/mesh-e2e.js';
import { waitFor, within } from '../helpers/wait.js';
import { inline, sdsSotw, secrets, TOKEN_CART } from './helpers.js';

const CART_ID = 'spiffe://cluster.local/ns/shop/sa/cart';
const ECHO_CLUSTER = 'outbound|8080||echo.shop.svc.cluster.local';
/** Short enough that the shared agent renews every 2–2.5 s (renewal at 40–50 % of the lifetime). */
const TTL_SECONDS = 5;

const CART: ProxyNodeOptions = {
  pod: 'cart-0',
  namespace: 'shop',
  serviceAccount: 'cart',
  labels: { app: 'cart' },
  instanceIps: ['127.0.0.1'],
};

interface Ctx {
  dir: string;
  mesh: MeshDir;
  cp: RunningControlPlane;
  rootPem: string;
  cartToken: string;
  agent: RunningAgent;
  lines: Record<string, unknown>[];
}
const test = anyTest as TestFn<Ctx>;

/** A control plane with the CA (local mode, in `dir`) and the TLS port, serving the mesh in `mesh`. */
function controlPlane(t: Pick<Ctx, 'dir' | 'mesh'>, secureXdsPort = 0): Promise<CaControlPlane> {
  return startCaControlPlane({
    tokens: [{ token: TOKEN_CART, namespace: 'shop', serviceAccount: 'cart' }],
    dir: t.dir,
    logLevel: 'silent',
    configDir: t.mesh.dir,
    secureXdsPort,
    debounceQuietMs: 10,
  });
}

test.before(async (t) => {
  const dir = makeTempDir('trellis-agent-');
  const mesh = await MeshDir.create();
  await mesh.write('ns', [namespaceManifest('shop'), namespaceManifest('trellis-system')]);
  // The echo backend is never called: it is there so the control plane has clusters to serve.
  await mesh.write('echo', [
    serviceManifest('echo', 'shop'),
    ...backendManifests('echo', 'shop', { pod: 'echo-0', port: 18080 }),
  ]);
  const env = await controlPlane({ dir, mesh });
  const cp = env.cp;
  const rootPem = fs.readFileSync(path.join(env.stateDir, 'root-cert.pem'), 'utf8');
  const cartToken = env.tokenFile('cart.token', TOKEN_CART);
  const { logger, lines } = captureLogs('debug');
  const agent = await startAgent({
    proxyType: 'envoy',
    controlPlane: `127.0.0.1:${cp.secureXdsPort!}`,
    rootCertPem: rootPem,
    tokenFile: cartToken,
    node: CART,
    outputDir: path.join(dir, 'cart-0'),
    ttlSeconds: TTL_SECONDS,
    healthHost: '127.0.0.1',
    healthPort: 0,
    logger,
  });
  t.context = { dir, mesh, cp, rootPem, cartToken, agent, lines };
});

test.after.always(async (t) => {
  await t.context.agent?.close();
  await t.context.cp?.close();
  await t.context.mesh?.cleanup();
  if (t.context.dir) fs.rmSync(t.context.dir, { recursive: true, force: true });
  // Every agent, server and client is closed: nothing but stdio and AVA's own pipe keeps the process up
  // (no TCP socket or server, no timer; a Unix socket is a PipeWrap, like stdio, so not told apart here).
  const leftovers = (): string[] =>
    process.getActiveResourcesInfo().filter((r) => /^TCP|^Timeout$|^Immediate$/.test(r));
  const clean = await waitFor('no TCP handles or timers left', () => leftovers().length === 0, 5_000).catch(
    () => false,
  );
  t.true(clean, `still active: ${leftovers().join(', ')}`);
});

// ---------------------------------------------------------------------------------------------------
// Helpers

async function get(port: number, pathname: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${pathname}`);
  return { status: res.status, body: await res.text() };
}

/** The first certificate of a PEM chain. */
function leafOf(chainPem: string): crypto.X509Certificate {
  const first = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(chainPem);
  if (!first) throw new Error('no certificate in the chain');
  return new crypto.X509Certificate(first[0]);
}

/** The leaf and key of Secret `default`, and the trusted CA of `ROOTCA`, when present. */
function tlsOf(byName: Map<string, Secret>): { leaf?: crypto.X509Certificate; keyPem?: string; rootPem?: string } {
  const out: { leaf?: crypto.X509Certificate; keyPem?: string; rootPem?: string } = {};
  const workload = byName.get('default')?.type;
  if (workload?.case === 'tlsCertificate') {
    out.leaf = leafOf(inline(workload.value.certificateChain));
    out.keyPem = inline(workload.value.privateKey);
  }
  const root = byName.get('ROOTCA')?.type;
  if (root?.case === 'validationContext') out.rootPem = inline(root.value.trustedCa);
  return out;
}

/** The node the agent's Envoy bootstrap announces (what Envoy would send on its first ADS request). */
function bootstrapNodeOf(agent: RunningAgent): Node {
  const json = JSON.parse(fs.readFileSync(agent.paths.bootstrap, 'utf8')) as JsonObject;
  const node = fromJson(BootstrapSchema, json, { registry: protoRegistry }).node;
  if (!node) throw new Error('the bootstrap has no node');
  return node;
}

/** A delta CDS stream through the agent's xDS socket, subscribed to every cluster. */
function adsThroughAgent(
  t: { teardown: (fn: () => void) => void },
  agent: RunningAgent,
  node: MessageInitShape<typeof DiscoveryRequestSchema>['node'],
): DeltaStream {
  const ads = new RawAdsClient(`unix://${agent.paths.xdsSocket}`);
  const stream = ads.delta();
  t.teardown(() => {
    stream.close();
    ads.close();
  });
  stream.send({ node, typeUrl: TypeUrl.Cluster, resourceNamesSubscribe: ['*'] });
  return stream;
}

function installedSerials(lines: readonly Record<string, unknown>[]): string[] {
  return lines.filter((l) => l.msg === 'certificate installed').map((l) => String(l.serial));
}

// ---------------------------------------------------------------------------------------------------
// The Envoy bootstrap

test('the Envoy bootstrap in outputDir passes Envoy’s validation and names the agent’s xDS and SDS sockets', async (t) => {
  const { agent } = t.context;
  const { outputDir } = agent.paths;
  t.is(agent.paths.bootstrap, path.join(outputDir, ENVOY_BOOTSTRAP));
  t.is(agent.paths.xdsSocket, path.join(outputDir, XDS_SOCKET));
  t.is(agent.paths.sdsSocket, path.join(outputDir, SDS_SOCKET));
  t.is(agent.paths.certDir, undefined, 'no certificate files in Envoy mode');
  t.true(fs.statSync(agent.paths.xdsSocket).isSocket());
  t.true(fs.statSync(agent.paths.sdsSocket!).isSocket());
  t.is(fs.statSync(agent.paths.sdsSocket!).mode & 0o777, 0o600, 'the SDS socket (private keys) is the agent’s only');
  t.false(fs.existsSync(path.join(outputDir, 'key.pem')), 'the key is never written to disk in Envoy mode');

  const json = JSON.parse(fs.readFileSync(agent.paths.bootstrap, 'utf8')) as JsonObject;
  if (envoyValidateAvailable()) {
    const [result] = await validateEnvoyJson([{ '@type': typeUrlOf('envoy.config.bootstrap.v3.Bootstrap'), ...json }]);
    t.deepEqual(result!.errors, []);
  } else if (process.env.CI === 'true') {
    t.fail('envoy-validate is not built (npm run peers); CI must not skip it');
  } else {
    t.log('Envoy validation skipped: run `npm run peers`');
  }

  const b = fromJson(BootstrapSchema, json, { registry: protoRegistry });
  t.is(b.node?.id, 'cart-0.shop');
  t.like(b.node?.metadata, {
    NAMESPACE: 'shop',
    SERVICE_ACCOUNT: 'cart',
    PROXY_TYPE: 'envoy',
    TRUST_DOMAIN: 'cluster.local',
    INSTANCE_IPS: '127.0.0.1',
  });
  const pipes = new Map(
    b.staticResources!.clusters.map((c) => {
      const id = c.loadAssignment?.endpoints[0]?.lbEndpoints[0]?.hostIdentifier;
      const address = id?.case === 'endpoint' ? id.value.address?.address : undefined;
      return [c.name, address?.case === 'pipe' ? address.value.path : undefined];
    }),
  );
  t.is(pipes.get(XDS_CLUSTER), agent.paths.xdsSocket);
  t.is(pipes.get(SDS_CLUSTER), agent.paths.sdsSocket);
  const ads = b.dynamicResources!.adsConfig!.grpcServices[0]!.targetSpecifier;
  t.true(ads.case === 'envoyGrpc' && ads.value.clusterName === XDS_CLUSTER);
});

// ---------------------------------------------------------------------------------------------------
// SDS

test('SDS on the agent’s socket: `default` is the workload certificate chained to the root, `ROOTCA` the root; a rotation is pushed on the open stream', async (t) => {
  const { agent, rootPem, lines } = t.context;
  const root = new crypto.X509Certificate(rootPem);
  const client = new grpc.Client(`unix://${agent.paths.sdsSocket!}`, grpc.credentials.createInsecure());
  const sds = sdsSotw(client);
  t.teardown(() => {
    sds.close();
    client.close();
  });
  const check = (served: ReturnType<typeof tlsOf>, what: string): crypto.X509Certificate => {
    const { leaf, keyPem } = served;
    if (!leaf || !keyPem || served.rootPem === undefined) throw new Error(`${what}: default or ROOTCA missing`);
    t.is(leaf.subjectAltName, `URI:${CART_ID}`, what);
    t.true(leaf.checkIssued(root), `${what}: issued by the control plane's root`);
    t.true(leaf.verify(root.publicKey), `${what}: signed by the control plane's root`);
    t.deepEqual(
      crypto.createPublicKey(keyPem).export({ type: 'spki', format: 'der' }),
      leaf.publicKey.export({ type: 'spki', format: 'der' }),
      `${what}: the private key is the certificate's`,
    );
    const lifetimeMs = new Date(leaf.validTo).getTime() - Date.now();
    t.true(lifetimeMs > 0 && lifetimeMs <= TTL_SECONDS * 1000, `${what}: the requested lifetime (${lifetimeMs} ms)`);
    t.deepEqual(new crypto.X509Certificate(served.rootPem).raw, root.raw, `${what}: ROOTCA is the mesh root`);
    t.true(
      installedSerials(lines).includes(leaf.serialNumber.toLowerCase()),
      `${what}: a certificate the agent installed`,
    );
    return leaf;
  };

  sds.send({ node: { id: 'cart-0.shop' }, typeUrl: TypeUrl.Secret, resourceNames: ['default', 'ROOTCA'] });
  const r1 = await sds.next('the first secrets', 5_000);
  t.is(r1.typeUrl, TypeUrl.Secret);
  const first = check(tlsOf(secrets(r1)), 'first');
  sds.send({
    typeUrl: TypeUrl.Secret,
    resourceNames: ['default', 'ROOTCA'],
    versionInfo: r1.versionInfo,
    responseNonce: r1.nonce,
  });
  // No request of ours: the agent renews (at 40–50 % of the 5 s lifetime) and pushes.
  const r2 = await sds.next('the rotated certificate', (TTL_SECONDS + 5) * 1000);
  t.not(r2.versionInfo, r1.versionInfo);
  // The root did not change: the push carries `default` alone (a SotW response carries what the client
  // lacks), and the client's secrets are r1's updated by r2's, as Envoy applies them.
  t.deepEqual([...secrets(r2).keys()], ['default']);
  const second = check(tlsOf(new Map([...secrets(r1), ...secrets(r2)])), 'rotated');
  t.not(second.serialNumber, first.serialNumber);
});

test('every certificate is installed exactly once, the first one included', async (t) => {
  const { lines } = t.context;
  await waitFor('a renewal', () => installedSerials(lines).length >= 2, (TTL_SECONDS + 5) * 1000);
  const serials = installedSerials(lines);
  t.deepEqual(serials, [...new Set(serials)]);
  const first = lines.find((l) => l.msg === 'certificates: got the first certificate');
  t.is(first?.serial, serials[0]);
});

// ---------------------------------------------------------------------------------------------------
// The local xDS proxy

test('ADS through the agent’s xDS socket: config arrives, and the control plane binds the stream to the agent’s SPIFFE ID over TLS', async (t) => {
  const { agent, cp } = t.context;
  const stream = adsThroughAgent(t, agent, bootstrapNodeOf(agent));
  const response = await stream.next(10_000);
  t.true(deltaNamesOf(response).includes(ECHO_CLUSTER), deltaNamesOf(response).join(', '));

  const bound = await waitFor('the stream on the control plane', () =>
    cp.ads.status().find((s) => s.node?.id === 'cart-0.shop'),
  );
  t.like(bound, { protocol: 'delta', transport: 'tls', identity: CART_ID });
  t.like(bound.node, { namespace: 'shop', serviceAccount: 'cart', proxyType: 'envoy' });
  const debug = (await debugProxies(cp.monitoringPort)).find((s) => s.node?.id === 'cart-0.shop');
  t.like(debug, { transport: 'tls', identity: CART_ID });
  t.true(agent.notReadyReason() === undefined);
});

test('a node claiming another service account through the agent is refused with PERMISSION_DENIED', async (t) => {
  const { agent, cp } = t.context;
  const stream = adsThroughAgent(t, agent, {
    id: 'teller-0.shop',
    cluster: 'teller.shop',
    metadata: { NAMESPACE: 'shop', SERVICE_ACCOUNT: 'teller', PROXY_TYPE: 'envoy' },
  });
  const end = await within('the refusal', stream.ended, 10_000);
  t.is(end.code, grpc.status.PERMISSION_DENIED, `${grpc.status[end.code]}: ${end.details}`);
  t.regex(end.details, /SERVICE_ACCOUNT is "teller" but the client certificate says "cart"/);
  t.is(stream.inbox.pending, 0, 'no config for the impostor');
  t.false(cp.ads.status().some((s) => s.node?.id === 'teller-0.shop'));
});

// ---------------------------------------------------------------------------------------------------
// Health

test('/healthz/ready answers 200 once started; /metrics has the certificate expiry and the xDS proxy metrics', async (t) => {
  const { agent } = t.context;
  const ready = await waitFor(
    '/healthz/ready to answer 200',
    async () => {
      const r = await get(agent.healthPort, '/healthz/ready');
      return r.status === 200 ? r : undefined;
    },
    10_000,
  );
  t.is(ready.body, 'ready\n');

  const metrics = await get(agent.healthPort, '/metrics');
  t.is(metrics.status, 200);
  const expiry = /^trellis_agent_certificate_expiry_seconds (\S+)$/m.exec(metrics.body);
  t.truthy(expiry, metrics.body);
  const expiryMs = Number(expiry![1]) * 1000;
  t.true(
    expiryMs > Date.now() - 1_000 && expiryMs <= Date.now() + TTL_SECONDS * 1000,
    `expiry ${new Date(expiryMs).toISOString()}`,
  );
  t.regex(metrics.body, /^trellis_agent_certificate_issued_total\{via="token"\} \d+$/m);
  t.regex(metrics.body, /^trellis_agent_xds_proxy_upstream_ready 1$/m);
  for (const name of [
    'trellis_agent_xds_proxy_open_streams',
    'trellis_agent_xds_proxy_streams_total',
    'trellis_agent_xds_proxy_messages_total',
  ]) {
    t.regex(metrics.body, new RegExp(`^# TYPE ${name} `, 'm'));
  }
  t.is((await get(agent.healthPort, '/nothing-here')).status, 404);
});

test('HealthServer: 503 with the reason, 200 when ready, 500 when the check throws; /metrics of its registry', async (t) => {
  let state: string | Error | undefined = 'the xDS proxy has not reached the control plane yet';
  const registry = new Registry();
  new Counter({ name: 'test_things_total', help: 'things', registers: [registry] }).inc(3);
  const { logger, lines } = captureLogs('debug');
  const health = new HealthServer({
    notReadyReason: () => {
      if (state instanceof Error) throw state;
      return state;
    },
    registry,
    logger,
  });
  const port = await health.listen('127.0.0.1', 0);
  t.teardown(() => health.close());

  t.deepEqual(await get(port, '/healthz/ready'), {
    status: 503,
    body: 'not ready: the xDS proxy has not reached the control plane yet\n',
  });
  state = undefined;
  t.deepEqual(await get(port, '/healthz/ready'), { status: 200, body: 'ready\n' });
  state = new Error('the check broke');
  t.is((await get(port, '/healthz/ready')).status, 500);
  t.truthy(lines.find((l) => l.msg === 'health request failed'));
  const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
  t.is(metrics.headers.get('content-type'), registry.contentType);
  t.regex(await metrics.text(), /^test_things_total 3$/m);
  // A port in use is an error of listen(), not a crash.
  const other = new HealthServer({ notReadyReason: () => undefined, registry, logger });
  await t.throwsAsync(other.listen('127.0.0.1', port), { code: 'EADDRINUSE' });
  await other.close();
});

test('not ready before the first certificate (control plane not there yet), ready once it comes, not ready once the certificate expired with the control plane gone', async (t) => {
  const [healthPort, cpPort] = await freePorts(2);
  const { logger, lines } = captureLogs('debug');
  const starting = startAgent({
    proxyType: 'envoy',
    controlPlane: `127.0.0.1:${cpPort!}`,
    rootCertPem: t.context.rootPem,
    tokenFile: t.context.cartToken,
    node: { ...CART, pod: 'cart-9' },
    outputDir: path.join(t.context.dir, 'cart-9'),
    ttlSeconds: 2,
    healthHost: '127.0.0.1',
    healthPort: healthPort!,
    logger,
  });
  let late: CaControlPlane | undefined;
  t.teardown(async () => {
    await late?.close();
  });
  let before: { status: number; body: string };
  try {
    before = await waitFor(
      '/healthz/ready to answer before the first certificate',
      async () => {
        const r = await get(healthPort!, '/healthz/ready').catch(() => undefined);
        return r?.status === 503 ? r : undefined;
      },
      10_000,
    );
    await waitFor('a failed first attempt', () =>
      lines.some((l) => l.msg === 'certificates: could not get the first certificate'),
    );
  } finally {
    // Always: startAgent waits for its first certificate and cannot be cancelled.
    late = await controlPlane(t.context, cpPort);
  }
  t.is(before.body, 'not ready: no workload certificate yet\n');

  const agent = await within('the agent to start once the control plane is there', starting, 30_000);
  t.teardown(() => agent.close());
  await waitFor(
    '/healthz/ready to answer 200',
    async () => (await get(agent.healthPort, '/healthz/ready')).status === 200,
    10_000,
  );

  await late.close();
  late = undefined;
  const expired = await waitFor(
    '/healthz/ready to report the expired certificate',
    async () => {
      const r = await get(agent.healthPort, '/healthz/ready');
      return r.status === 503 ? r : undefined;
    },
    10_000,
  );
  t.regex(expired.body, /^not ready: the workload certificate expired at \d{4}-\d\d-\d\dT[\d:.]+Z\n$/);
  t.regex(agent.notReadyReason() ?? '', /^the workload certificate expired at /);
  t.true(lines.some((l) => String(l.msg).startsWith('certificates: renewal failed')));
});

// ---------------------------------------------------------------------------------------------------
// close()

test('close(): the streams end, the sockets and the health port go, nothing else in outputDir is removed; twice is fine', async (t) => {
  const { cp } = t.context;
  const outputDir = path.join(t.context.dir, 'cart-1');
  fs.mkdirSync(outputDir);
  fs.writeFileSync(path.join(outputDir, 'keep.txt'), 'not the agent’s\n');
  const { logger, lines } = captureLogs('debug');
  const agent = await startAgent({
    proxyType: 'envoy',
    controlPlane: `127.0.0.1:${cp.secureXdsPort!}`,
    rootCertPem: t.context.rootPem,
    tokenFile: t.context.cartToken,
    node: { ...CART, pod: 'cart-1' },
    outputDir,
    ttlSeconds: TTL_SECONDS,
    healthHost: '127.0.0.1',
    healthPort: 0,
    logger,
  });
  t.teardown(() => agent.close());
  const stream = adsThroughAgent(t, agent, bootstrapNodeOf(agent));
  await stream.next(10_000);
  await waitFor('the stream on the control plane', () => cp.ads.status().some((s) => s.node?.id === 'cart-1.shop'));

  await agent.close();
  const end = await within('the relayed stream to end', stream.ended);
  t.is(end.code, grpc.status.UNAVAILABLE, end.details);
  await waitFor(
    'the control plane to drop the stream',
    () => !cp.ads.status().some((s) => s.node?.id === 'cart-1.shop'),
  );
  t.false(fs.existsSync(agent.paths.xdsSocket), 'xds.sock removed');
  t.false(fs.existsSync(agent.paths.sdsSocket!), 'sds.sock removed');
  t.true(fs.existsSync(agent.paths.bootstrap), 'the bootstrap stays (Envoy reads it on a restart)');
  t.is(fs.readFileSync(path.join(outputDir, 'keep.txt'), 'utf8'), 'not the agent’s\n');
  await t.throwsAsync(get(agent.healthPort, '/healthz/ready'));
  await t.notThrowsAsync(agent.close());
  t.is(lines.filter((l) => l.msg === 'agent stopped').length, 1);
});

test('gRPC mode: a failed install (the certificate files) is logged and the next certificate is installed', async (t) => {
  const { cp } = t.context;
  const outputDir = path.join(t.context.dir, 'grpc-0');
  const { logger, lines } = captureLogs('debug');
  const agent = await startAgent({
    proxyType: 'grpc',
    controlPlane: `127.0.0.1:${cp.secureXdsPort!}`,
    rootCertPem: t.context.rootPem,
    tokenFile: t.context.cartToken,
    node: { ...CART, pod: 'grpc-0' },
    outputDir,
    ttlSeconds: 2,
    healthHost: '127.0.0.1',
    healthPort: 0,
    logger,
  });
  t.teardown(() => agent.close());
  t.is(agent.paths.certDir, outputDir);
  const dataLink = path.join(outputDir, '..data');
  t.true(fs.lstatSync(dataLink).isSymbolicLink());
  // A regular file where the `..data` symlink must be (renamed over it in one step): the next write fails.
  const blocker = path.join(t.context.dir, 'blocker');
  fs.writeFileSync(blocker, 'in the way\n');
  fs.renameSync(blocker, dataLink);
  const failure = await waitFor(
    'a failed install',
    () => lines.find((l) => l.msg === 'installing the certificate failed'),
    10_000,
  );
  fs.rmSync(dataLink);
  const after = lines.indexOf(failure);
  await waitFor(
    'an install after the failure',
    () => lines.slice(after).some((l) => l.msg === 'certificate installed'),
    10_000,
  );
  const leaf = new crypto.X509Certificate(fs.readFileSync(path.join(outputDir, 'cert.pem')));
  t.true(installedSerials(lines.slice(after)).includes(leaf.serialNumber.toLowerCase()));
  t.is(leaf.subjectAltName, `URI:${CART_ID}`);
});

test('with --envoy-binary that does not exist: SDS and the xDS proxy run, /healthz/ready says Envoy could not be started', async (t) => {
  const { cp, rootPem, cartToken, dir } = t.context;
  const agent = await startAgent({
    proxyType: 'envoy',
    controlPlane: `127.0.0.1:${cp.secureXdsPort!}`,
    rootCertPem: rootPem,
    tokenFile: cartToken,
    node: { ...CART, pod: 'cart-envoy' },
    outputDir: path.join(dir, 'cart-envoy'),
    ttlSeconds: TTL_SECONDS,
    healthHost: '127.0.0.1',
    healthPort: 0,
    envoyBinary: path.join(dir, 'no-such-envoy'),
    logger: captureLogs('silent').logger,
  });
  try {
    const notReady = await waitFor(
      '/healthz/ready to name the missing Envoy',
      async () => {
        const r = await get(agent.healthPort, '/healthz/ready');
        return /envoy could not be started/.test(r.body) ? r : undefined;
      },
      10_000,
    );
    t.is(notReady.status, 503);
    t.regex(notReady.body, /no-such-envoy: ENOENT/);
    t.true(fs.existsSync(agent.paths.sdsSocket!), 'SDS is served');
    t.true(fs.existsSync(agent.paths.bootstrap), 'the bootstrap is written');
  } finally {
    await agent.close();
  }
});
