// The agent's CA client against the real CA service of a real control plane: plaintext (local mode, the
// xDS port) and TLS (the secure port, 15012, whose certificate is the control plane's SVID), the token
// re-read on every call, typed errors, deadlines, and the certificate path: renewal over mutual TLS
// without a token, and a certificate the CA refuses → the token fallback.
import anyTest, { type TestFn } from 'ava';
import * as grpc from '@grpc/grpc-js';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createCsr, generateWorkloadKey, spiffeId } from '../../certs/index.js';
import { certificateServiceDefinition } from '../../control-plane/ca/service.js';
import { CaClient, CaClientError, defaultControlPlaneId, type CaClientOptions } from '../../sidecar/ca-client.js';
import { assemble, type WorkloadCertificate } from '../../sidecar/certificate-manager.js';
import { captureLogs, startCaControlPlane, type CaControlPlane } from '../helpers/ca-control-plane.js';
import { CA_TOKENS, issue, localCa, SHOP_CART, TOKEN_CART, TOKEN_TELLER } from './helpers.js';

interface Ctx {
  env: CaControlPlane;
  /** The control plane's TLS port (15012): its SVID is trellisd's; the CA there also takes certificates. */
  tlsPort: number;
  bundle: string;
  clients: CaClient[];
}
const test = anyTest as TestFn<Ctx>;

const CART_ID = spiffeId(SHOP_CART);

function bind(server: grpc.Server, creds: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', creds, (err, port) => (err ? reject(err) : resolve(port))),
  );
}

test.before(async (t) => {
  const env = await startCaControlPlane({ tokens: CA_TOKENS, prefix: 'trellis-sidecar-', logLevel: 'silent' });
  t.context = {
    env,
    tlsPort: env.cp.secureXdsPort!,
    bundle: env.cp.ca!.authority.trustBundle(),
    clients: [],
  };
});

test.after.always(async (t) => {
  for (const c of t.context.clients ?? []) c.close();
  await t.context.env?.cleanup();
});

function client(t: { context: Ctx }, options: CaClientOptions): CaClient {
  const c = new CaClient(options);
  t.context.clients.push(c);
  return c;
}

async function csrFor(id = CART_ID) {
  const key = await generateWorkloadKey();
  return { key, csr: await createCsr(key, id) };
}

async function rejection(p: Promise<unknown>): Promise<CaClientError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof CaClientError) return err;
    throw err;
  }
  throw new Error('the call succeeded');
}

test('plaintext + token file: a chain for the token’s identity, leaf first, root last', async (t) => {
  const { env } = t.context;
  const c = client(t, {
    address: `127.0.0.1:${env.cp.xdsPort}`,
    transport: { kind: 'plaintext' },
    tokenFile: env.tokenFile('plain-token', TOKEN_CART),
  });
  const { csr } = await csrFor();
  const { chain, via } = await c.createCertificate({ csr, validitySeconds: 120 });
  t.is(via, 'token');
  t.is(chain.length, 2);
  const leaf = new crypto.X509Certificate(chain[0]!);
  t.is(leaf.subjectAltName, `URI:${CART_ID}`);
  t.is(chain[1], env.cp.ca!.authority.trustBundle());
  const lifetime = (new Date(leaf.validTo).getTime() - Date.now()) / 1000;
  t.true(lifetime > 110 && lifetime <= 120, `lifetime ${lifetime}`);
});

test('the token file is re-read on every call (a rotated token takes effect at once)', async (t) => {
  const { env } = t.context;
  const file = env.tokenFile('rotating-token', TOKEN_CART);
  const c = client(t, { address: `127.0.0.1:${env.cp.xdsPort}`, transport: { kind: 'plaintext' }, tokenFile: file });
  t.is((await c.createCertificate({ csr: (await csrFor()).csr })).via, 'token');
  // The kubelet swaps the file: now it proves bank/teller, so the shop/cart CSR is refused …
  fs.writeFileSync(file, TOKEN_TELLER);
  const denied = await rejection(c.createCertificate({ csr: (await csrFor()).csr }));
  t.is(denied.code, grpc.status.PERMISSION_DENIED);
  t.regex(denied.details, /^foreign-san: .* but the caller is spiffe:\/\/cluster\.local\/ns\/bank\/sa\/teller$/);
  t.true(denied.refused);
  t.is(denied.via, 'token');
  // … and a token the CA does not know is UNAUTHENTICATED.
  fs.writeFileSync(file, 'not-a-known-token-0123456789\n');
  const unknown = await rejection(c.createCertificate({ csr: (await csrFor()).csr }));
  t.is(unknown.code, grpc.status.UNAUTHENTICATED);
  t.is(unknown.details, 'unknown token');
});

test('a missing or empty token file is FAILED_PRECONDITION, without a call', async (t) => {
  const { env } = t.context;
  const missing = client(t, {
    address: `127.0.0.1:${env.cp.xdsPort}`,
    transport: { kind: 'plaintext' },
    tokenFile: path.join(env.dir, 'no-such-token'),
  });
  const err = await rejection(missing.createCertificate({ csr: (await csrFor()).csr }));
  t.is(err.code, grpc.status.FAILED_PRECONDITION);
  t.regex(err.details, /cannot read the token file .*no-such-token: ENOENT/);
  const empty = client(t, {
    address: `127.0.0.1:${env.cp.xdsPort}`,
    transport: { kind: 'plaintext' },
    tokenFile: env.tokenFile('empty-token', ''),
  });
  t.is((await rejection(empty.createCertificate({ csr: (await csrFor()).csr }))).code, grpc.status.FAILED_PRECONDITION);
});

test('no token at all: the CA answers UNAUTHENTICATED and the error keeps the status', async (t) => {
  const c = client(t, { address: `127.0.0.1:${t.context.env.cp.xdsPort}`, transport: { kind: 'plaintext' } });
  const err = await rejection(c.createCertificate({ csr: (await csrFor()).csr }));
  t.is(err.code, grpc.status.UNAUTHENTICATED);
  t.regex(err.message, /^CA UNAUTHENTICATED \(token\): no "authorization: Bearer <token>" metadata/);
});

test('a CA that does not answer in time: DEADLINE_EXCEEDED; nobody listening: UNAVAILABLE', async (t) => {
  const silent = new grpc.Server();
  silent.addService(certificateServiceDefinition, { CreateCertificate: () => undefined });
  const port = await bind(silent, grpc.ServerCredentials.createInsecure());
  try {
    const slow = client(t, { address: `127.0.0.1:${port}`, transport: { kind: 'plaintext' }, deadlineMs: 300 });
    const started = Date.now();
    const err = await rejection(slow.createCertificate({ csr: (await csrFor()).csr }));
    t.is(err.code, grpc.status.DEADLINE_EXCEEDED);
    t.true(Date.now() - started < 5_000);
  } finally {
    silent.forceShutdown();
  }
  const gone = client(t, { address: `127.0.0.1:${port}`, transport: { kind: 'plaintext' }, deadlineMs: 2_000 });
  const err = await rejection(gone.createCertificate({ csr: (await csrFor()).csr }));
  t.true([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED].includes(err.code), grpc.status[err.code]);
});

test('TLS + token: the server is verified by its SPIFFE ID, not by host name', async (t) => {
  const { env, tlsPort, bundle } = t.context;
  t.is(defaultControlPlaneId(), 'spiffe://cluster.local/ns/trellis-system/sa/trellisd');
  const tokenFile = env.tokenFile('tls-token', TOKEN_CART);
  // 127.0.0.1 is not in the certificate at all; the URI SAN is what is checked.
  const c = client(t, {
    address: `127.0.0.1:${tlsPort}`,
    transport: { kind: 'tls', trustBundlePem: bundle },
    tokenFile,
  });
  const { chain, via } = await c.createCertificate({ csr: (await csrFor()).csr });
  t.is(via, 'token');
  t.is(new crypto.X509Certificate(chain[0]!).subjectAltName, `URI:${CART_ID}`);

  const wrongId = client(t, {
    address: `127.0.0.1:${tlsPort}`,
    transport: { kind: 'tls', trustBundlePem: bundle, controlPlaneId: 'spiffe://cluster.local/ns/evil/sa/mitm' },
    tokenFile,
    deadlineMs: 3_000,
  });
  const err = await rejection(wrongId.createCertificate({ csr: (await csrFor()).csr }));
  t.is(err.code, grpc.status.UNAVAILABLE);

  const otherRoots = localCa();
  const wrongRoot = client(t, {
    address: `127.0.0.1:${tlsPort}`,
    transport: { kind: 'tls', trustBundlePem: (await otherRoots).trustBundle() },
    tokenFile,
    deadlineMs: 3_000,
  });
  t.is((await rejection(wrongRoot.createCertificate({ csr: (await csrFor()).csr }))).code, grpc.status.UNAVAILABLE);
});

test('TLS + a current certificate the CA refuses (another root) → retried with the token', async (t) => {
  const { env, tlsPort, bundle } = t.context;
  const current = await issue(await localCa());
  const { logger, lines } = captureLogs('debug');
  const c = client(t, {
    address: `127.0.0.1:${tlsPort}`,
    transport: { kind: 'tls', trustBundlePem: bundle },
    tokenFile: env.tokenFile('fallback-token', TOKEN_CART),
    logger,
  });
  const { chain, via } = await c.createCertificate({ csr: (await csrFor()).csr, current });
  t.is(via, 'token');
  t.is(new crypto.X509Certificate(chain[0]!).subjectAltName, `URI:${CART_ID}`);
  t.like(
    lines.find((l) => l.msg === 'ca-client: the CA refused the current certificate; retrying with the token'),
    { code: 'UNAUTHENTICATED' },
  );
});

test('TLS + current certificate: renewal over mutual TLS with no token at all', async (t) => {
  const { env, tlsPort, bundle } = t.context;
  const tokenFile = env.tokenFile('first-token', TOKEN_CART);
  const first = client(t, {
    address: `127.0.0.1:${tlsPort}`,
    transport: { kind: 'tls', trustBundlePem: bundle },
    tokenFile,
  });
  const k0 = await csrFor();
  const initial = await first.createCertificate({ csr: k0.csr });
  t.is(initial.via, 'token');
  const current = assemble(initial.chain, k0.key.privateKeyPem, CART_ID, undefined, new Date());

  // No token file at all: only the certificate can prove anything.
  const c = client(t, {
    address: `127.0.0.1:${tlsPort}`,
    transport: { kind: 'tls', trustBundlePem: bundle },
    tokenFile: path.join(env.dir, 'no-token-here'),
  });
  const { key, csr } = await csrFor();
  const { chain, via } = await c.createCertificate({ csr, current });
  t.is(via, 'certificate');
  const renewed: WorkloadCertificate = assemble(chain, key.privateKeyPem, CART_ID, undefined, new Date());
  t.not(renewed.serial, current.serial);

  // The renewed certificate is presented next time (a new channel for the new certificate).
  const again = await c.createCertificate({ csr: (await csrFor()).csr, current: renewed });
  t.is(again.via, 'certificate');

  // A certificate for shop/cart cannot get another identity signed.
  const foreign = await rejection(
    c.createCertificate({ csr: (await csrFor('spiffe://cluster.local/ns/bank/sa/teller')).csr, current: renewed }),
  );
  t.is(
    foreign.code,
    grpc.status.FAILED_PRECONDITION,
    'refused (PERMISSION_DENIED), then the token path: no token file',
  );

  // An expired certificate is never presented: straight to the token path (here: no token file).
  const expired = { ...renewed, notAfter: new Date(Date.now() - 1000) };
  const err = await rejection(c.createCertificate({ csr: (await csrFor()).csr, current: expired }));
  t.is(err.code, grpc.status.FAILED_PRECONDITION);
});

test('a closed client refuses calls', async (t) => {
  const c = new CaClient({ address: `127.0.0.1:${t.context.env.cp.xdsPort}`, transport: { kind: 'plaintext' } });
  c.close();
  t.is((await rejection(c.createCertificate({ csr: (await csrFor()).csr }))).code, grpc.status.CANCELLED);
});
