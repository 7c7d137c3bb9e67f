// The agent's SDS server through a real gRPC client on its Unix socket: subscriptions, both secrets,
// ACK/NACK and stale nonces, a rotation pushed to every stream, the delta protocol, the socket's mode,
// the served Secrets checked by Envoy's own validation, the single type, and the engine's metrics.
import anyTest, { type TestFn } from 'ava';
import * as grpc from '@grpc/grpc-js';
import { create } from '@bufbuild/protobuf';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { SecretSchema } from '../../control-plane/envoy/gen/envoy/extensions/transport_sockets/tls/v3/secret_pb.js';
import { DiscoveryRequestSchema } from '../../control-plane/envoy/gen/envoy/service/discovery/v3/discovery_pb.js';
import { TypeUrl } from '../../control-plane/envoy/protos.js';
import { Registry } from 'prom-client';
import { rootSecret, SdsServer, sdsServiceDefinition, workloadSecret } from '../../sidecar/sds-server.js';
import { anyBytes, assertEnvoyValid } from '../helpers/envoy-validate.js';
import { waitFor, within } from '../helpers/wait.js';
import { makeTempDir } from '../helpers/ca-control-plane.js';
import { inline, issue, localCa, sdsDelta, sdsSotw, secrets, startSds, stopSds, type SdsFixture } from './helpers.js';

type Ctx = SdsFixture;
const test = anyTest.serial as TestFn<Ctx>;

const node = { id: 'cart-0.shop', metadata: { PROXY_TYPE: 'envoy' } };

test.before(async (t) => {
  t.context = await startSds('trellis-sds-');
});

test.after.always((t) => stopSds(t.context));

test('the socket is 0600; a stale socket file is replaced; a non-socket is refused', async (t) => {
  t.is(fs.statSync(t.context.socket).mode & 0o777, 0o600);
  t.true(fs.statSync(t.context.socket).isSocket());
  const plain = path.join(t.context.dir, 'not-a-socket');
  fs.writeFileSync(plain, 'x');
  await t.throwsAsync(new SdsServer({ socketPath: plain }).listen(), { message: /exists and is not a socket/ });
});

test('served Secrets pass Envoy’s validation', async (t) => {
  const c = t.context.certs[0]!;
  await assertEnvoyValid(t, [anyBytes(SecretSchema, workloadSecret(c)), anyBytes(SecretSchema, rootSecret(c))]);
});

test('SotW: waits for a certificate, then sends the subscribed secrets; ACK; rotation pushed; NACK; stale', async (t) => {
  const { server, client, certs } = t.context;
  const s = sdsSotw(client);
  t.teardown(() => s.close());
  s.send({ node, typeUrl: TypeUrl.Secret, resourceNames: ['default', 'ROOTCA'] });
  // No certificate yet: nothing is sent (Envoy waits; its initial_fetch_timeout is 0).
  await waitFor('the stream to register', () => server.status().some((x) => x.nodeId === 'cart-0.shop'));
  t.is(s.pending(), 0);
  server.update(certs[0]!);
  const r1 = await s.next('the first secrets');
  t.is(r1.typeUrl, TypeUrl.Secret);
  t.not(r1.nonce, '');
  t.is(r1.controlPlane?.identifier, 'trellis-agent');
  const got = secrets(r1);
  t.deepEqual([...got.keys()], ['ROOTCA', 'default']);
  const tls = got.get('default')!.type;
  t.is(tls.case, 'tlsCertificate');
  if (tls.case === 'tlsCertificate') {
    t.is(inline(tls.value.certificateChain), certs[0]!.certChainPem);
    t.is(inline(tls.value.privateKey), certs[0]!.privateKeyPem);
  }
  const root = got.get('ROOTCA')!.type;
  t.is(root.case, 'validationContext');
  if (root.case === 'validationContext') t.is(inline(root.value.trustedCa), certs[0]!.trustBundlePem);

  s.send({
    typeUrl: TypeUrl.Secret,
    resourceNames: ['default', 'ROOTCA'],
    versionInfo: r1.versionInfo,
    responseNonce: r1.nonce,
  });
  await waitFor('the ACK', () => server.status().find((x) => x.nodeId === 'cart-0.shop')?.acked === r1.versionInfo);

  server.update(certs[1]!);
  const r2 = await s.next('the pushed rotation');
  t.not(r2.versionInfo, r1.versionInfo);
  t.not(r2.nonce, r1.nonce);
  const rotated = secrets(r2).get('default')!.type;
  if (rotated.case === 'tlsCertificate') t.is(inline(rotated.value.privateKey), certs[1]!.privateKeyPem);
  else t.fail('default is not a tls_certificate');

  // A stale request (old nonce) is ignored, even if it says NACK.
  s.send({
    typeUrl: TypeUrl.Secret,
    resourceNames: ['default', 'ROOTCA'],
    versionInfo: r1.versionInfo,
    responseNonce: r1.nonce,
    errorDetail: { code: 3, message: 'stale complaint' },
  });
  // NACK of the latest: recorded, logged, nothing re-sent.
  s.send({
    typeUrl: TypeUrl.Secret,
    resourceNames: ['default', 'ROOTCA'],
    versionInfo: r1.versionInfo,
    responseNonce: r2.nonce,
    errorDetail: { code: 3, message: 'bad key' },
  });
  const status = await waitFor('the NACK', () => server.status().find((x) => x.nack?.message === 'bad key'));
  t.is(status.acked, r1.versionInfo);
  t.is(status.nack?.nonce, r2.nonce);
  // The engine's NACK line (control-plane/xds/xds-stream.ts), in the agent's `sds` component.
  t.truthy(t.context.lines.find((l) => l.component === 'sds' && /NACK/.test(String(l.msg)) && l.error === 'bad key'));
  t.falsy(t.context.lines.find((l) => l.error === 'stale complaint'));
  t.is(s.pending(), 0);
  t.is(status.responses, 2);
});

test('only subscribed names are sent; unknown names are logged, never served; a new subscription is answered', async (t) => {
  const { server, client, certs } = t.context;
  server.update(certs[0]!);
  const s = sdsSotw(client);
  t.teardown(() => s.close());
  s.send({ node: { id: 'only-root.shop' }, typeUrl: TypeUrl.Secret, resourceNames: ['ROOTCA', 'file-cert:/x'] });
  const r1 = await s.next();
  t.deepEqual([...secrets(r1).keys()], ['ROOTCA']);
  t.truthy(
    t.context.lines.find((l) => l.msg === 'sds: unknown secret requested; not served' && l.secret === 'file-cert:/x'),
  );
  // The workload certificate rotates but ROOTCA did not change: nothing to send.
  server.update(certs[1]!);
  s.send({
    typeUrl: TypeUrl.Secret,
    resourceNames: ['ROOTCA', 'default'],
    versionInfo: r1.versionInfo,
    responseNonce: r1.nonce,
  });
  const r2 = await s.next('the answer to the new subscription');
  // Secrets are not a full-state type: a SotW response carries what the client lacks (the xDS engine's
  // rule for RDS, EDS and SDS), so the ROOTCA it holds is not sent again.
  t.deepEqual([...secrets(r2).keys()], ['default']);
  const status = server.status().find((x) => x.nodeId === 'only-root.shop')!;
  t.deepEqual(status.subscribed, ['ROOTCA', 'default']);
});

test('a rotation is pushed to every open stream (Envoy opens one per secret)', async (t) => {
  const { server, client, certs } = t.context;
  server.update(certs[0]!);
  const a = sdsSotw(client);
  const b = sdsSotw(client);
  t.teardown(() => {
    a.close();
    b.close();
  });
  a.send({ node: { id: 'a.shop' }, typeUrl: TypeUrl.Secret, resourceNames: ['default'] });
  b.send({ node: { id: 'b.shop' }, typeUrl: TypeUrl.Secret, resourceNames: ['ROOTCA'] });
  const [ra, rb] = [await a.next(), await b.next()];
  a.send({ typeUrl: TypeUrl.Secret, resourceNames: ['default'], versionInfo: ra.versionInfo, responseNonce: ra.nonce });
  b.send({ typeUrl: TypeUrl.Secret, resourceNames: ['ROOTCA'], versionInfo: rb.versionInfo, responseNonce: rb.nonce });
  // A new root as well: both secrets change.
  const other = await issue(await localCa());
  server.update(other);
  const [pa, pb] = [await a.next('push to a'), await b.next('push to b')];
  const ta = secrets(pa).get('default')!.type;
  const tb = secrets(pb).get('ROOTCA')!.type;
  t.true(ta.case === 'tlsCertificate' && inline(ta.value.certificateChain) === other.certChainPem);
  t.true(tb.case === 'validationContext' && inline(tb.value.trustedCa) === other.trustBundlePem);
});

test('delta: subscribe, initial versions, only what changed, unsubscribe', async (t) => {
  const { server, client, certs } = t.context;
  server.update(certs[0]!);
  const s = sdsDelta(client);
  t.teardown(() => s.close());
  // The client already has ROOTCA at the current version (a reconnect): only default is sent.
  const rootVersion = crypto.createHash('sha256').update(certs[0]!.trustBundlePem).digest('hex').slice(0, 16);
  s.send({
    node: { id: 'delta.shop' },
    typeUrl: TypeUrl.Secret,
    resourceNamesSubscribe: ['default', 'ROOTCA'],
    initialResourceVersions: { ROOTCA: rootVersion },
  });
  const r1 = await s.next();
  t.deepEqual(
    r1.resources.map((r) => [r.name, r.version]),
    [['default', certs[0]!.serial]],
  );
  s.send({ typeUrl: TypeUrl.Secret, responseNonce: r1.nonce });
  await waitFor(
    'the delta ACK',
    () => server.status().find((x) => x.nodeId === 'delta.shop')?.acked === r1.systemVersionInfo,
  );
  // Same root, new leaf: only default.
  server.update(certs[1]!);
  const r2 = await s.next('the delta push');
  t.deepEqual(
    r2.resources.map((r) => r.name),
    ['default'],
  );
  t.is(r2.resources[0]!.version, certs[1]!.serial);
  const pushed = secrets(r2).get('default')!.type;
  t.true(pushed.case === 'tlsCertificate' && inline(pushed.value.privateKey) === certs[1]!.privateKeyPem);
  // Unsubscribed names get nothing on the next rotation.
  s.send({ typeUrl: TypeUrl.Secret, responseNonce: r2.nonce, resourceNamesUnsubscribe: ['default'] });
  await waitFor(
    'the unsubscribe',
    () => server.status().find((x) => x.nodeId === 'delta.shop')?.subscribed.length === 1,
  );
  server.update(certs[2]!);
  await waitFor('the update to be processed', () => server.current() === certs[2]);
  t.is(s.pending(), 0);
});

test('a request may leave type_url empty; another type ends the stream with INVALID_ARGUMENT', async (t) => {
  const { server, client, certs } = t.context;
  server.update(certs[0]!);
  const s = sdsSotw(client);
  t.teardown(() => s.close());
  s.send({ node: { id: 'untyped.shop' }, resourceNames: ['default'] });
  const r = await s.next('the answer to an untyped request');
  t.is(r.typeUrl, TypeUrl.Secret);
  t.deepEqual([...secrets(r).keys()], ['default']);

  const method = sdsServiceDefinition.StreamSecrets;
  const call = client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize);
  const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  call.on('error', () => undefined);
  call.on('data', () => undefined);
  call.write(create(DiscoveryRequestSchema, { node: { id: 'wrong.shop' }, typeUrl: TypeUrl.Cluster }));
  const ended = await within('the refusal', status, 5_000);
  t.is(ended.code, grpc.status.INVALID_ARGUMENT);
  t.regex(ended.details, /type_url .*Cluster is not served here/);
});

test('the engine’s metrics, as trellis_agent_sds_*, in the registry given', async (t) => {
  const dir = makeTempDir('trellis-sds-metrics-');
  const registry = new Registry();
  const server = new SdsServer({ socketPath: path.join(dir, 'sds.sock'), registry });
  t.teardown(async () => {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  await server.listen();
  server.update(t.context.certs[0]!);
  const client = new grpc.Client(`unix://${path.join(dir, 'sds.sock')}`, grpc.credentials.createInsecure());
  t.teardown(() => client.close());
  const s = sdsSotw(client);
  t.teardown(() => s.close());
  s.send({ node: { id: 'metrics.shop' }, typeUrl: TypeUrl.Secret, resourceNames: ['default', 'ROOTCA'] });
  const r = await s.next();
  s.send({
    typeUrl: TypeUrl.Secret,
    resourceNames: ['default', 'ROOTCA'],
    versionInfo: r.versionInfo,
    responseNonce: r.nonce,
  });
  await waitFor('the ACK', () => server.status().some((x) => x.acked === r.versionInfo));
  const text = await registry.metrics();
  t.regex(text, /^trellis_agent_sds_pushes_total\{type="SDS"\} 1$/m);
  t.regex(text, /^trellis_agent_sds_acks_total\{type="SDS"\} 1$/m);
  t.regex(text, /^trellis_agent_sds_connected_proxies\{protocol="sotw"\} 1$/m);
  t.notRegex(text, /trellis_xds_/);
});
