// The TLS port (15012) through real TLS and real gRPC: the control plane's own SVID (trellisd), verified
// by its SPIFFE ID and rotated at half its lifetime; the CA service there, where a workload with no
// certificate proves itself with a token and one with a certificate renews with it alone.
import anyTest, { type TestFn } from 'ava';
import * as grpc from '@grpc/grpc-js';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { RunningControlPlane } from '../../control-plane/control-plane.js';
import { startCaControlPlane, type CaControlPlane, type LogLine } from '../helpers/ca-control-plane.js';
import { startControlPlaneProcess, startTrellis } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';
import {
  CaClient,
  CONTROL_PLANE_ID as SERVER_ID,
  foreignAuthority,
  grpcError,
  handshakeCertificate,
  obtainCert,
  signedBy,
  tlsCaClient,
  workloadCsr,
  type WorkloadCert,
} from './ca-helpers.js';

interface Ctx {
  env: CaControlPlane;
  cp: RunningControlPlane;
  logs: LogLine[];
  dir: string;
  tokensFile: string;
  root: string;
  clients: CaClient[];
}
const test = anyTest as TestFn<Ctx>;

const CLIENT_ID = 'spiffe://cluster.local/ns/default/sa/client';
const OTHER_ID = 'spiffe://cluster.local/ns/other/sa/worker';
const TOKEN_CLIENT = 'token-for-default-client-0123456789';
const TOKEN_OTHER = 'token-for-other-worker-0123456789';
const TOKENS = [
  { token: TOKEN_CLIENT, namespace: 'default', serviceAccount: 'client' },
  { token: TOKEN_OTHER, namespace: 'other', serviceAccount: 'worker' },
];

test.before(async (t) => {
  const env = await startCaControlPlane({ prefix: 'trellis-secure-port-', tokens: TOKENS });
  const { cp, logs, dir, tokensFile } = env;
  t.context = { env, cp, logs, dir, tokensFile, root: cp.ca!.authority.trustBundle(), clients: [] };
});

test.after.always(async (t) => {
  for (const c of t.context.clients ?? []) c.close();
  await t.context.env?.cleanup();
});

/** A CA client on the TLS port, presenting `cert` when given. */
function tlsClient(t: { context: Ctx }, cert?: WorkloadCert, serverId = SERVER_ID): CaClient {
  const { cp, root } = t.context;
  const client = tlsCaClient(`127.0.0.1:${cp.secureXdsPort}`, root, cert, serverId);
  t.context.clients.push(client);
  return client;
}

function leafOf(chain: readonly string[]): crypto.X509Certificate {
  return new crypto.X509Certificate(chain[0]!);
}

test('the TLS port is a second port that presents the trellisd SVID, chained to the trust bundle', async (t) => {
  const { cp, root } = t.context;
  t.true(typeof cp.secureXdsPort === 'number' && cp.secureXdsPort > 0);
  t.not(cp.secureXdsPort, cp.xdsPort);
  const peer = await handshakeCertificate(cp.secureXdsPort!, root, SERVER_ID);
  t.is(peer.subjectaltname, `URI:${SERVER_ID}`);
  const leaf = new crypto.X509Certificate(peer.raw);
  t.true(leaf.verify(new crypto.X509Certificate(root).publicKey));
  t.is(leaf.serialNumber.toLowerCase(), cp.ca!.serving.current.serial);
  // Default lifetime 24 h.
  const lifetime = (new Date(leaf.validTo).getTime() - Date.now()) / 1000;
  t.true(lifetime > 24 * 3600 - 120 && lifetime <= 24 * 3600, `lifetime ${lifetime}`);
  const metrics = await cp.metrics.registry.metrics();
  t.regex(
    metrics,
    new RegExp(
      `^trellis_ca_certificate_expiry_timestamp_seconds\\{certificate="serving"\\} ${new Date(leaf.validTo).getTime() / 1000}$`,
      'm',
    ),
  );
  t.truthy(t.context.logs.find((l) => l.msg === 'control plane listening' && l.secureXdsPort === cp.secureXdsPort));
});

test('a client expecting another SPIFFE ID refuses the control plane (no host-name check)', async (t) => {
  const client = tlsClient(t, undefined, 'spiffe://cluster.local/ns/trellis-system/sa/impostor');
  const { csr } = await workloadCsr(CLIENT_ID);
  const err = await grpcError(client.createCertificate(csr, { token: TOKEN_CLIENT }));
  t.is(err.code, grpc.status.UNAVAILABLE);
  t.regex(
    err.details,
    /the server presented spiffe:\/\/cluster\.local\/ns\/trellis-system\/sa\/trellisd, expected spiffe:\/\/cluster\.local\/ns\/trellis-system\/sa\/impostor/,
  );
});

test('a workload without a certificate gets one with its token over TLS', async (t) => {
  const chain = (await obtainCert(tlsClient(t), CLIENT_ID, { token: TOKEN_CLIENT })).chain;
  t.is(leafOf(chain).subjectAltName, `URI:${CLIENT_ID}`);
  t.is(chain[chain.length - 1], t.context.root);
});

test('no token and no client certificate on the TLS port → UNAUTHENTICATED', async (t) => {
  const { csr } = await workloadCsr(CLIENT_ID);
  const err = await grpcError(tlsClient(t).createCertificate(csr));
  t.is(err.code, grpc.status.UNAUTHENTICATED);
  t.is(err.details, 'no "authorization: Bearer <token>" metadata and no verified client certificate');
});

test('renewal with only the client certificate: a new certificate for the same SPIFFE ID', async (t) => {
  const first = await obtainCert(tlsClient(t), CLIENT_ID, { token: TOKEN_CLIENT, validitySeconds: 3600 });
  const renewed = await obtainCert(tlsClient(t, first), CLIENT_ID, { validitySeconds: 7200 });
  const [a, b] = [leafOf(first.chain), leafOf(renewed.chain)];
  t.is(b.subjectAltName, `URI:${CLIENT_ID}`);
  t.not(b.serialNumber, a.serialNumber);
  t.not(
    b.publicKey.export({ format: 'der', type: 'spki' }).toString('hex'),
    a.publicKey.export({ format: 'der', type: 'spki' }).toString('hex'),
  );
  t.true(new Date(b.validTo) > new Date(a.validTo));
  const audit = await waitFor('the audit line of the renewal', () =>
    t.context.logs.find((l) => l.decision === 'issued' && l.serial === b.serialNumber.toLowerCase()),
  );
  t.like(audit, { caller: 'default/client', via: 'certificate', spiffeId: CLIENT_ID });
  // The renewed certificate renews in turn.
  const again = await obtainCert(tlsClient(t, renewed), CLIENT_ID);
  t.is(leafOf(again.chain).subjectAltName, `URI:${CLIENT_ID}`);
});

test('renewal by certificate asking for another SPIFFE ID → PERMISSION_DENIED', async (t) => {
  const cert = await obtainCert(tlsClient(t), CLIENT_ID, { token: TOKEN_CLIENT });
  const { csr } = await workloadCsr(OTHER_ID);
  const err = await grpcError(tlsClient(t, cert).createCertificate(csr));
  t.is(err.code, grpc.status.PERMISSION_DENIED);
  t.is(err.details, `foreign-san: the CSR asks for ${OTHER_ID} but the caller is ${CLIENT_ID}`);
  t.truthy(
    t.context.logs.find((l) => l.decision === 'denied' && l.via === 'certificate' && l.caller === 'default/client'),
  );
});

test('a bearer token wins over the client certificate', async (t) => {
  const cert = await obtainCert(tlsClient(t), CLIENT_ID, { token: TOKEN_CLIENT });
  const withOther = tlsClient(t, cert);
  const chain = (await obtainCert(withOther, OTHER_ID, { token: TOKEN_OTHER })).chain;
  t.is(leafOf(chain).subjectAltName, `URI:${OTHER_ID}`);
  const serial = leafOf(chain).serialNumber.toLowerCase();
  t.like(
    t.context.logs.find((l) => l.decision === 'issued' && l.serial === serial),
    { caller: 'other/worker', via: 'tokens-file' },
  );
  // …and a bad token is not rescued by the certificate.
  const { csr } = await workloadCsr(CLIENT_ID);
  const err = await grpcError(withOther.createCertificate(csr, { token: 'not-a-token-at-all-xxxxxxxx' }));
  t.is(err.code, grpc.status.UNAUTHENTICATED);
  t.is(err.details, 'unknown token');
});

test('expired certificates, certificates of another CA or trust domain do not renew', async (t) => {
  const authority = t.context.cp.ca!.authority;
  const identity = { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'client' };
  const expired = await signedBy(authority, identity, { ttlSeconds: 60, now: new Date(Date.now() - 3600_000) });
  t.true(new Date(leafOf(expired.chain).validTo).getTime() < Date.now());
  const foreign = await signedBy(await foreignAuthority(), identity);
  const { csr } = await workloadCsr(CLIENT_ID);
  for (const cert of [expired, foreign]) {
    const err = await grpcError(tlsClient(t, cert).createCertificate(csr));
    t.is(err.code, grpc.status.UNAUTHENTICATED);
    t.is(err.details, 'no "authorization: Bearer <token>" metadata and no verified client certificate');
  }
  // Signed by our CA, but for another trust domain: verified, yet no identity here.
  const elsewhere = await signedBy(authority, { ...identity, trustDomain: 'elsewhere.example' });
  const err = await grpcError(tlsClient(t, elsewhere).createCertificate(csr));
  t.is(err.code, grpc.status.UNAUTHENTICATED);
  t.is(
    err.details,
    "the client certificate's SPIFFE ID spiffe://elsewhere.example/ns/default/sa/client is not in trust domain cluster.local",
  );
});

test('the plaintext port still needs a token (no certificate can arrive there)', async (t) => {
  const client = new CaClient(`127.0.0.1:${t.context.cp.xdsPort}`);
  t.context.clients.push(client);
  const { csr } = await workloadCsr(CLIENT_ID);
  const err = await grpcError(client.createCertificate(csr));
  t.is(err.code, grpc.status.UNAUTHENTICATED);
  const chain = await client.createCertificate(csr, { token: TOKEN_CLIENT });
  t.is(leafOf(chain).subjectAltName, `URI:${CLIENT_ID}`);
});

test('the serving certificate rotates at half its lifetime: a new handshake sees a new serial', async (t) => {
  const env = await startCaControlPlane({
    prefix: 'trellis-secure-port-rotation-',
    tokens: TOKENS,
    logLevel: 'silent',
    ca: { servingTtlSeconds: 4 },
  });
  t.teardown(() => env.cleanup());
  const { cp } = env;
  const root = cp.ca!.authority.trustBundle();
  const first = await handshakeCertificate(cp.secureXdsPort!, root, SERVER_ID);
  const lifetime = (new Date(first.valid_to).getTime() - Date.now()) / 1000;
  t.true(lifetime <= 4, `lifetime ${lifetime}`);
  const next = await waitFor(
    'a handshake with a renewed serving certificate',
    async () => {
      const peer = await handshakeCertificate(cp.secureXdsPort!, root, SERVER_ID);
      return peer.serialNumber !== first.serialNumber && peer;
    },
    10_000,
  );
  t.is(next.subjectaltname, `URI:${SERVER_ID}`);
  t.true(new Date(next.valid_to) > new Date(first.valid_to));
  // The renewed identity serves the CA too.
  const client = tlsCaClient(`127.0.0.1:${cp.secureXdsPort}`, root);
  t.teardown(() => client.close());
  const chain = (await obtainCert(client, CLIENT_ID, { token: TOKEN_CLIENT })).chain;
  t.is(leafOf(chain).subjectAltName, `URI:${CLIENT_ID}`);
});

test('`trellis control-plane --secure-port 0` serves TLS with the CA; --secure-port without the CA is an error', async (t) => {
  const proc = await startControlPlaneProcess([
    '--state-dir',
    path.join(t.context.dir, 'state-cli'),
    '--tokens-file',
    t.context.tokensFile,
    '--secure-port',
    '0',
  ]);
  try {
    const line = await proc.waitForLog((l) => l.msg === 'control plane listening');
    const port = Number(line.secureXdsPort);
    t.true(port > 0 && port !== 15012 && port !== proc.xdsPort);
    const root = fs.readFileSync(path.join(t.context.dir, 'state-cli', 'root-cert.pem'), 'utf8');
    const peer = await handshakeCertificate(port, root, SERVER_ID);
    t.is(peer.subjectaltname, `URI:${SERVER_ID}`);
  } finally {
    await proc.stop();
  }
  const bad = startTrellis(['control-plane', '--xds-port', '0', '--monitoring-port', '0', '--secure-port', '0']);
  t.is(await bad.exited, 2);
  await bad.stop();
});
