// The CA service through real gRPC on a real control plane (local mode: --state-dir + --tokens-file):
// a CSR made here like the agent makes it, the bearer token in the metadata, the audit log and metrics.
import anyTest, { type TestFn } from 'ava';
import * as grpc from '@grpc/grpc-js';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RunningControlPlane } from '../../control-plane/control-plane.js';
import { x509 } from '../../certs/x509.js';
import { startCaControlPlane, type CaControlPlane, type LogLine } from '../helpers/ca-control-plane.js';
import { startControlPlaneProcess } from '../helpers/process.js';
import { CaClient, grpcError, makeCsr } from './ca-helpers.js';

interface Ctx {
  env: CaControlPlane;
  cp: RunningControlPlane;
  client: CaClient;
  logs: LogLine[];
  dir: string;
}
const test = anyTest as TestFn<Ctx>;

const TOKEN_A = 'token-for-shop-cart-0123456789';
const TOKEN_B = 'token-for-bank-teller-0123456789';

test.before(async (t) => {
  const env = await startCaControlPlane({
    prefix: 'trellis-ca-service-',
    tokens: [
      { token: TOKEN_A, namespace: 'shop', serviceAccount: 'cart' },
      { token: TOKEN_B, namespace: 'bank', serviceAccount: 'teller' },
    ],
  });
  const { cp, logs, dir } = env;
  t.context = { env, cp, client: new CaClient(`127.0.0.1:${cp.xdsPort}`), logs, dir };
});

test.after.always(async (t) => {
  t.context.client?.close();
  await t.context.env?.cleanup();
});

test.serial('a good token gets a chain (leaf, root last) whose leaf SAN is exactly its identity', async (t) => {
  const { client, cp } = t.context;
  const chain = await client.createCertificate(await makeCsr('spiffe://cluster.local/ns/shop/sa/cart'), {
    token: TOKEN_A,
    validitySeconds: 3600,
  });
  t.is(chain.length, 2);
  const [leaf, root] = chain.map((p) => new crypto.X509Certificate(p)) as [
    crypto.X509Certificate,
    crypto.X509Certificate,
  ];
  t.is(leaf.subjectAltName, 'URI:spiffe://cluster.local/ns/shop/sa/cart');
  t.true(leaf.verify(root.publicKey));
  t.true(root.ca);
  t.is(chain[1], cp.ca!.authority.trustBundle());
  const lifetime = (new Date(leaf.validTo).getTime() - Date.now()) / 1000;
  t.true(lifetime > 3590 && lifetime <= 3600, `lifetime ${lifetime}`);
  // The same root is on disk (local mode, --state-dir).
  t.is(fs.readFileSync(path.join(t.context.dir, 'state', 'root-cert.pem'), 'utf8'), chain[1]!);

  const audit = t.context.logs.find((l) => l.decision === 'issued' && l.serial === leaf.serialNumber.toLowerCase());
  t.truthy(audit, 'an audit line for the issued certificate');
  t.like(audit, {
    audit: true,
    caller: 'shop/cart',
    via: 'tokens-file',
    spiffeId: 'spiffe://cluster.local/ns/shop/sa/cart',
  });
  t.is(audit?.notAfter, new Date(leaf.validTo).toISOString());
});

test.serial('validity is clamped to 7 days', async (t) => {
  const chain = await t.context.client.createCertificate(await makeCsr('spiffe://cluster.local/ns/shop/sa/cart'), {
    token: TOKEN_A,
    validitySeconds: 365 * 86400,
  });
  const leaf = new x509.X509Certificate(chain[0]!);
  const lifetime = (leaf.notAfter.getTime() - Date.now()) / 1000;
  t.true(lifetime > 7 * 86400 - 10 && lifetime <= 7 * 86400, `lifetime ${lifetime}`);
});

test.serial('no token → UNAUTHENTICATED; an unknown token → UNAUTHENTICATED', async (t) => {
  const csr = await makeCsr('spiffe://cluster.local/ns/shop/sa/cart');
  const none = await grpcError(t.context.client.createCertificate(csr));
  t.is(none.code, grpc.status.UNAUTHENTICATED);
  t.regex(none.details, /no "authorization: Bearer <token>" metadata/);
  const bad = await grpcError(t.context.client.createCertificate(csr, { token: 'not-a-token-at-all-xxxxxxxx' }));
  t.is(bad.code, grpc.status.UNAUTHENTICATED);
  t.regex(bad.details, /unknown token/);
  t.truthy(t.context.logs.find((l) => l.decision === 'unauthenticated' && l.reason === 'unknown token'));
});

test.serial('a token for ns bank asking for ns shop’s identity → PERMISSION_DENIED with the reason', async (t) => {
  const csr = await makeCsr('spiffe://cluster.local/ns/shop/sa/cart');
  const err = await grpcError(t.context.client.createCertificate(csr, { token: TOKEN_B }));
  t.is(err.code, grpc.status.PERMISSION_DENIED);
  t.is(
    err.details,
    'foreign-san: the CSR asks for spiffe://cluster.local/ns/shop/sa/cart but the caller is spiffe://cluster.local/ns/bank/sa/teller',
  );
  const line = t.context.logs.find((l) => l.decision === 'denied');
  t.like(line, {
    caller: 'bank/teller',
    spiffeId: 'spiffe://cluster.local/ns/bank/sa/teller',
    code: 'PERMISSION_DENIED',
  });
});

test.serial(
  'CA requests, extra SANs and bad signatures → PERMISSION_DENIED; an empty CSR → INVALID_ARGUMENT',
  async (t) => {
    const uri = 'spiffe://cluster.local/ns/shop/sa/cart';
    const cases: [Promise<string>, grpc.status, RegExp][] = [
      [makeCsr(uri, { ca: true }), grpc.status.PERMISSION_DENIED, /^ca-request:/],
      [
        makeCsr(undefined, {
          sans: [
            { type: 'url', value: uri },
            { type: 'dns', value: 'x' },
          ],
        }),
        grpc.status.PERMISSION_DENIED,
        /^extra-san:/,
      ],
      [makeCsr(uri, { badSignature: true }), grpc.status.PERMISSION_DENIED, /^bad-signature:/],
      [Promise.resolve(''), grpc.status.INVALID_ARGUMENT, /csr is empty/],
    ];
    for (const [csr, code, details] of cases) {
      const err = await grpcError(t.context.client.createCertificate(await csr, { token: TOKEN_A }));
      t.is(err.code, code);
      t.regex(err.details, details);
    }
  },
);

test.serial('metrics count every decision and time the signing', async (t) => {
  const res = await fetch(`http://127.0.0.1:${t.context.cp.monitoringPort}/metrics`);
  const text = await res.text();
  const count = (result: string): number =>
    Number(new RegExp(`^trellis_ca_requests_total\\{result="${result}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
  t.is(count('issued'), 2);
  t.is(count('unauthenticated'), 2);
  t.is(count('denied'), 4);
  t.is(count('invalid'), 1);
  t.regex(text, /^trellis_ca_sign_duration_seconds_count 6$/m);
  const rootNotAfter = t.context.cp.ca!.authority.material.root.notAfter.getTime() / 1000;
  t.regex(
    text,
    new RegExp(`^trellis_ca_certificate_expiry_timestamp_seconds\\{certificate="root"\\} ${rootNotAfter}$`, 'm'),
  );
});

test('`trellis control-plane --config-dir D --state-dir S --tokens-file T` is a complete CA on its xDS port', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-ca-cli-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'mesh'));
  fs.writeFileSync(
    path.join(dir, 'tokens.json'),
    JSON.stringify([{ token: TOKEN_A, namespace: 'shop', serviceAccount: 'cart' }]),
  );
  const args = [
    '--config-dir',
    path.join(dir, 'mesh'),
    '--state-dir',
    path.join(dir, 'state'),
    '--tokens-file',
    path.join(dir, 'tokens.json'),
  ];
  const proc = await startControlPlaneProcess(args);
  let client: CaClient | undefined;
  try {
    client = new CaClient(`127.0.0.1:${proc.xdsPort}`);
    const chain = await client.createCertificate(await makeCsr('spiffe://cluster.local/ns/shop/sa/cart'), {
      token: TOKEN_A,
    });
    t.is(new crypto.X509Certificate(chain[0]!).subjectAltName, 'URI:spiffe://cluster.local/ns/shop/sa/cart');
    t.is(fs.statSync(path.join(dir, 'state', 'root-key.pem')).mode & 0o777, 0o600);
    t.truthy(proc.logs.find((l) => l.msg === 'ca: created a new root CA'));
  } finally {
    client?.close();
    await proc.stop();
  }
  // A restart reuses the root.
  const again = await startControlPlaneProcess(args);
  try {
    t.truthy(again.logs.find((l) => l.msg === 'ca: loaded'));
  } finally {
    await again.stop();
  }
});
