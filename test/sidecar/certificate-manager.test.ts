// The certificate manager against a real control plane's CA: the first certificate (retried until the CA
// is there), renewal at 40–50 % of the lifetime counted from receipt (not from the backdated notBefore),
// a new key every time, the old certificate kept while the CA is away, renewal resuming when it returns,
// metrics and logs. When renewals happen is checked on a manual clock (test/helpers/manual-clock.ts), exactly
// and in milliseconds, against the real CA; the retry tests use generous real bounds.
import anyTest, { type TestFn } from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { Registry } from 'prom-client';
import { createCsr, createRootCa, generateWorkloadKey, spiffeId } from '../../certs/index.js';
import { CaClient, type CertificateIssuer } from '../../sidecar/ca-client.js';
import {
  assemble,
  CertificateManager,
  CertificateRejected,
  renewalTime,
  RENEW_MAX_FRACTION,
  RENEW_MIN_FRACTION,
  type CertificateManagerOptions,
  type WorkloadCertificate,
} from '../../sidecar/certificate-manager.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { waitFor, within } from '../helpers/wait.js';
import {
  captureLogs,
  makeTempDir as makeTempDirRaw,
  startCaControlPlane as startCa,
  type CaControlPlane,
} from '../helpers/ca-control-plane.js';
import { CA_TOKENS, freePort, issue, localCa, SHOP_CART, TOKEN_CART } from './helpers.js';

interface Ctx {
  env: CaControlPlane;
  cleanups: (() => Promise<void> | void)[];
}
const test = anyTest as TestFn<Ctx>;

const CART_ID = spiffeId(SHOP_CART);

test.before(async (t) => {
  t.context = { env: await startCaControlPlane(), cleanups: [] };
});

test.after.always(async (t) => {
  for (const c of (t.context.cleanups ?? []).reverse()) await c();
  await t.context.env?.cleanup();
});

/** The control plane with the CA (shop/cart and bank/teller), in `dir` when given (a restart on the same CA). */
function startCaControlPlane(options: { xdsPort?: number; dir?: string } = {}): Promise<CaControlPlane> {
  return startCa({ tokens: CA_TOKENS, prefix: 'trellis-sidecar-', logLevel: 'silent', ...options });
}

function manager(
  t: { context: Ctx },
  port: number,
  tokenFile: string,
  options: Partial<CertificateManagerOptions> = {},
): CertificateManager {
  const client = new CaClient({
    address: `127.0.0.1:${port}`,
    transport: { kind: 'plaintext' },
    tokenFile,
    deadlineMs: 2_000,
  });
  const m = new CertificateManager({ issuer: client, identity: SHOP_CART, ...options });
  t.context.cleanups.push(async () => {
    await m.stop();
    client.close();
  });
  return m;
}

function makeTempDir(this: void, prefix: string): string {
  const dir = makeTempDirRaw(prefix);
  cleanupDirs.push(dir);
  return dir;
}
const cleanupDirs: string[] = [];
test.after.always(() => {
  for (const dir of cleanupDirs) fs.rmSync(dir, { recursive: true, force: true });
});

function publicKeyOf(pem: string): string {
  return crypto.createPublicKey(pem).export({ type: 'spki', format: 'der' }).toString('base64');
}

test('assemble: the root goes to the bundle, extra roots are added once, the chain keeps the rest', async (t) => {
  const ca = await localCa();
  const cert = await issue(ca);
  t.is(cert.certChainPem.match(/BEGIN CERTIFICATE/g)?.length, 1);
  t.is(cert.trustBundlePem, ca.trustBundle());
  t.is(cert.spiffeId, CART_ID);
  t.regex(cert.serial, /^[0-9a-f]+$/);
  t.true(cert.notBefore < cert.receivedAt && cert.receivedAt < cert.notAfter);

  const other = await createRootCa({ commonName: 'Other Root' });
  // The CA's own root again (with other line breaks) counts once; another root is appended.
  const rewrapped = ca.trustBundle().replace(/\n/g, '\r\n');
  const chain = [cert.certChainPem, ca.trustBundle()];
  const both = assemble(chain, cert.privateKeyPem, CART_ID, rewrapped + other.certPem, new Date());
  t.is(both.trustBundlePem.match(/BEGIN CERTIFICATE/g)?.length, 2);
  t.true(both.trustBundlePem.startsWith(ca.trustBundle().trim()));

  t.throws(() => assemble(chain, cert.privateKeyPem, 'spiffe://cluster.local/ns/x/sa/y', undefined, new Date()), {
    instanceOf: CertificateRejected,
    message:
      /is for URI:spiffe:\/\/cluster\.local\/ns\/shop\/sa\/cart, expected URI:spiffe:\/\/cluster\.local\/ns\/x\/sa\/y/,
  });
  const otherKey = (await issue(ca)).privateKeyPem;
  t.throws(() => assemble(chain, otherKey, CART_ID, undefined, new Date()), {
    instanceOf: CertificateRejected,
    message: /public key/,
  });
  t.throws(() => assemble([cert.certChainPem], cert.privateKeyPem, CART_ID, undefined, new Date()), {
    instanceOf: CertificateRejected,
    message: /no trust bundle/,
  });
  // A leaf-only answer is fine when the roots are configured.
  t.is(
    assemble([cert.certChainPem], cert.privateKeyPem, CART_ID, ca.trustBundle(), new Date()).trustBundlePem,
    ca.trustBundle(),
  );
});

test('renewalTime counts from receipt, not from the backdated notBefore', (t) => {
  const receivedAt = new Date('2026-01-01T00:05:00Z');
  const cert = { receivedAt, notAfter: new Date(receivedAt.getTime() + 60_000) };
  t.is(renewalTime(cert, 0.5).getTime() - receivedAt.getTime(), 30_000);
  t.is(renewalTime(cert, 0.4).getTime() - receivedAt.getTime(), 24_000);
});

/** The next certificate the manager hands out. */
function nextRotation(m: CertificateManager): Promise<WorkloadCertificate> {
  return within('a renewal', new Promise<WorkloadCertificate>((resolve) => m.once('rotated', resolve)), 10_000);
}

/**
 * Starts `m` on `clock` (its first request is a timer due at once) and returns the first certificate. The
 * clock starts at the real time, so the real CA's certificates are current on it.
 */
async function startOn(clock: ManualClock, m: CertificateManager): Promise<WorkloadCertificate> {
  const first = m.start();
  clock.advance(0);
  return first;
}

/**
 * The one pending timer of the manager (its renewal): checks it falls at 40–50 % of `c`'s lifetime from
 * receipt, that nothing happens a millisecond before it, then fires it and returns the renewed certificate.
 */
async function renewOnTime(
  t: import('ava').ExecutionContext<Ctx>,
  clock: ManualClock,
  m: CertificateManager,
  c: WorkloadCertificate,
): Promise<WorkloadCertificate> {
  const pending = clock.pending();
  t.is(pending.length, 1, `one timer (the renewal), not ${pending.length}`);
  const delay = pending[0]!;
  const lifetime = c.notAfter.getTime() - c.receivedAt.getTime();
  t.true(
    delay >= RENEW_MIN_FRACTION * lifetime - 1 && delay <= RENEW_MAX_FRACTION * lifetime + 1,
    `renewal ${delay} ms after receipt; lifetime ${lifetime} ms`,
  );
  clock.advance(delay - 1);
  t.is(m.current(), c, 'not renewed a millisecond early');
  const next = nextRotation(m);
  clock.advance(1);
  const renewed = await next;
  t.is(renewed.receivedAt.getTime() - c.receivedAt.getTime(), delay, 'received when the timer fired');
  return renewed;
}

test('a short TTL: renewed at 40–50 % of the lifetime, a new key and serial each time; metrics', async (t) => {
  const { env } = t.context;
  const registry = new Registry();
  const clock = new ManualClock(Date.now());
  const m = manager(t, env.cp.xdsPort!, env.tokenFile('short-ttl-token', TOKEN_CART), {
    ttlSeconds: 4,
    registry,
    clock,
  });
  t.false(m.ready());
  const first = await startOn(clock, m);
  t.true(m.ready());
  t.is(m.current(), first);
  t.is(first.spiffeId, CART_ID);
  t.is(first.trustBundlePem, env.cp.ca!.authority.trustBundle());
  t.is(publicKeyOf(first.certChainPem), publicKeyOf(first.privateKeyPem));
  const rotations = [first];
  for (let i = 1; i < 3; i++) {
    const prev = rotations[i - 1]!;
    const next = await renewOnTime(t, clock, m, prev);
    rotations.push(next);
    t.true(next.notBefore.getTime() < next.receivedAt.getTime() - 4 * 60_000, 'notBefore is backdated by the CA');
    t.not(next.serial, prev.serial);
    t.not(publicKeyOf(next.privateKeyPem), publicKeyOf(prev.privateKeyPem), 'a new key per renewal');
    t.is(publicKeyOf(next.certChainPem), publicKeyOf(next.privateKeyPem));
  }
  const metrics = await registry.getMetricsAsJSON();
  const issued = metrics.find((x) => x.name === 'trellis_agent_certificate_issued_total');
  t.is(issued?.values.find((v) => v.labels.via === 'token')?.value, 3);
  const expiry = metrics.find((x) => x.name === 'trellis_agent_certificate_expiry_seconds');
  t.is(expiry?.values[0]?.value, m.current()!.notAfter.getTime() / 1000);
  const nextAttempt = metrics.find((x) => x.name === 'trellis_agent_certificate_next_attempt_seconds');
  t.is(nextAttempt?.values[0]?.value, (clock.now() + clock.pending()[0]!) / 1000);
});

test("keyRotation 'per-process': one key for every renewal, new certificates and serials", async (t) => {
  const { env } = t.context;
  const m = manager(t, env.cp.xdsPort!, env.tokenFile('per-process-token', TOKEN_CART), {
    ttlSeconds: 2,
    keyRotation: 'per-process',
  });
  const rotations: WorkloadCertificate[] = [];
  m.on('rotated', (c) => rotations.push(c));
  await m.start();
  await waitFor('three certificates', () => rotations.length >= 3, 15_000);
  const key = publicKeyOf(rotations[0]!.privateKeyPem);
  t.is(new Set(rotations.map((c) => c.serial)).size, rotations.length);
  for (const c of rotations) {
    t.is(publicKeyOf(c.privateKeyPem), key, 'the same key');
    t.is(publicKeyOf(c.certChainPem), key, 'every certificate is for it');
  }
});

test('a 60 s TTL renews 24–30 s after receipt, not after half of notBefore..notAfter (~3 min)', async (t) => {
  const { env } = t.context;
  const clock = new ManualClock(Date.now());
  const m = manager(t, env.cp.xdsPort!, env.tokenFile('ttl-60-token', TOKEN_CART), { ttlSeconds: 60, clock });
  const first = await startOn(clock, m);
  t.true(first.notAfter.getTime() - first.notBefore.getTime() > 6 * 60_000 - 2_000, 'notBefore is 5 min back');
  // The clock stood still while the CA signed: the lifetime from receipt is 60 s, give or take that call.
  const lifetime = first.notAfter.getTime() - first.receivedAt.getTime();
  t.true(lifetime > 58_000 && lifetime < 62_000, `lifetime ${lifetime}`);
  const next = await renewOnTime(t, clock, m, first);
  const after = next.receivedAt.getTime() - first.receivedAt.getTime();
  t.true(after >= 0.4 * lifetime - 1 && after <= 0.5 * lifetime + 1, `renewed ${after} ms after receipt`);
  t.true(after < (first.notAfter.getTime() - first.notBefore.getTime()) / 3, 'not half of notBefore..notAfter');
});

test('the first certificate is retried with backoff until the CA is there', async (t) => {
  const port = await freePort();
  const dir = makeTempDir('trellis-sidecar-late-');
  const { logger, lines } = captureLogs('debug');
  const tokenFile = `${dir}/token`;
  fs.writeFileSync(tokenFile, TOKEN_CART);
  const m = manager(t, port, tokenFile, { backoff: { initialMs: 100, maxMs: 400 }, logger });
  const started = m.start();
  await waitFor(
    'two failed attempts',
    () => lines.filter((l) => l.msg === 'certificates: could not get the first certificate').length >= 2,
    10_000,
  );
  t.false(m.ready());
  const env = await startCaControlPlane({ xdsPort: port, dir });
  t.context.cleanups.push(() => env.close());
  const first = await started;
  t.is(first.spiffeId, CART_ID);
  const failures = lines.filter((l) => l.msg === 'certificates: could not get the first certificate');
  t.true(failures.every((l) => typeof l.retryInMs === 'number' && l.retryInMs <= 400 && l.code === 14));
});

test('while the CA is away the old certificate is kept until it expires; renewal resumes when it returns', async (t) => {
  const dir = makeTempDir('trellis-sidecar-away-');
  let env = await startCaControlPlane({ dir });
  const port = env.cp.xdsPort!;
  const { logger, lines } = captureLogs('debug');
  const registry = new Registry();
  const m = manager(t, port, env.tokenFile('away-token', TOKEN_CART), {
    ttlSeconds: 5,
    backoff: { initialMs: 200, maxMs: 1_000 },
    logger,
    registry,
  });
  t.context.cleanups.push(() => env.close());
  const first = await m.start();
  await env.close();

  const served = 'certificates: renewal failed; the current certificate is still served';
  await waitFor('a failed renewal', () => lines.some((l) => l.msg === served), 10_000);
  t.is(m.current(), first, 'the old certificate is still current');
  t.true(m.ready());
  await waitFor('expiry', () => !m.ready(), 10_000);
  t.is(m.current(), first);
  await waitFor('a failure logged after expiry', () =>
    lines.some((l) => l.msg === 'certificates: renewal failed and the current certificate has EXPIRED'),
  );
  // No retry was scheduled past the expiry of the certificate in use, and the delays grew.
  const failures = lines.filter((l) => l.msg === served);
  for (const l of failures) {
    const notAfter = Date.parse(String(l.servingNotAfter));
    t.true(Number(l.time) + Number(l.retryInMs) <= notAfter + 5, `retry in ${String(l.retryInMs)} ms`);
  }
  t.true(failures.length >= 3);
  t.true(Number(failures[2]!.retryInMs) > Number(failures[0]!.retryInMs) || Number(failures[2]!.retryInMs) >= 800);

  env = await startCaControlPlane({ xdsPort: port, dir });
  const renewed = await within(
    'renewal after the CA returned',
    new Promise<WorkloadCertificate>((resolve) => m.once('rotated', resolve)),
    10_000,
  );
  t.true(m.ready());
  t.not(renewed.serial, first.serial);
  t.is(renewed.trustBundlePem, first.trustBundlePem, 'the same CA (state dir) after the restart');
  const metrics = await registry.getMetricsAsJSON();
  const failed = metrics.find((x) => x.name === 'trellis_agent_certificate_failures_total');
  t.true((failed?.values.find((v) => v.labels.code === '14')?.value ?? 0) >= 3);
});

test('stop() before the first certificate rejects start()', async (t) => {
  const port = await freePort();
  const dir = makeTempDir('trellis-sidecar-stop-');
  fs.writeFileSync(`${dir}/token`, TOKEN_CART);
  const m = manager(t, port, `${dir}/token`, { backoff: { initialMs: 50, maxMs: 100 } });
  const started = m.start();
  await m.stop();
  await t.throwsAsync(started, { message: /stopped before it got a certificate/ });
  t.throws(() => m.start(), { message: /already started/ });
});

test('an answer for another identity is rejected, counted and retried; a throwing listener does not stop renewal', async (t) => {
  const ca = await localCa();
  let calls = 0;
  // An issuer that signs with a real CA: the first answer is for the wrong identity.
  const issuer: CertificateIssuer = {
    async createCertificate({ csr }) {
      calls++;
      const identity = calls === 1 ? { ...SHOP_CART, serviceAccount: 'someone-else' } : SHOP_CART;
      const csrFor = calls === 1 ? await createCsr(await generateWorkloadKey(), spiffeId(identity)) : csr;
      const issued = await ca.sign({ csr: csrFor, identity, ttlSeconds: 2 });
      return { chain: issued.chain, via: 'token' };
    },
  };
  const registry = new Registry();
  const { logger, lines } = captureLogs('debug');
  const m = new CertificateManager({ issuer, identity: SHOP_CART, registry, logger, backoff: { initialMs: 50 } });
  t.teardown(() => m.stop());
  let rotations = 0;
  m.on('rotated', () => {
    rotations++;
    throw new Error('listener bug');
  });
  const first = await m.start();
  t.is(first.spiffeId, CART_ID);
  await waitFor('a renewal after the throwing listener', () => rotations >= 2, 5_000);
  t.truthy(lines.find((l) => l.msg === 'certificates: a rotated listener threw' && l.err === 'listener bug'));
  t.truthy(
    lines.find(
      (l) =>
        typeof l.err === 'string' && /is for URI:spiffe:\/\/cluster\.local\/ns\/shop\/sa\/someone-else/.test(l.err),
    ),
  );
  const failed = (await registry.getMetricsAsJSON()).find((x) => x.name === 'trellis_agent_certificate_failures_total');
  t.is(failed?.values.find((v) => v.labels.code === 'rejected')?.value, 1);
});
