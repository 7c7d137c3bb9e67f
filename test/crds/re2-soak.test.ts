// Soak: the RE2 check in a long-lived process. re2-wasm runs in a fixed 16 MiB WebAssembly heap; before
// crds/re2.ts freed what it compiled, every regex was refused after about 5,200 route-sized checks. Here
// 100,000 validations go through the validator, and 100,000 regex checks through the webhook's /validate
// over HTTPS (1,000 AdmissionReviews of 100 regexes each). Most patterns repeat (the verdict cache answers);
// a share is unique so that compiling keeps happening far past the old breaking point. Every verdict must
// stay right to the end, and memory (the WebAssembly heap's top, the process RSS) must be as flat at the
// end as after the first 10%.
import https from 'node:https';
import { createRequire } from 'node:module';
import test from 'ava';
import { WebhookServer } from '../../control-plane/webhook/server.js';
import type { AdmissionReview } from '../../control-plane/webhook/validate.js';
import { RE2_CACHE_SIZE, re2CacheSize } from '../../crds/re2.js';
import { validateRoutingResource } from '../../crds/validator.js';
import { servingCertificate } from '../helpers/serving-certificate.js';

// re2-wasm's emscripten module: the same instance crds/re2.ts compiles in.
interface Re2Module {
  asm: { malloc(size: number): number; free(ptr: number): void };
}
const re2Module = createRequire(import.meta.url)('re2-wasm/build/wasm/re2.js') as Re2Module;

/** Where a fresh 64 KiB block lands in the WebAssembly heap: grows with every byte leaked there. */
function wasmHeapTop(): number {
  const ptr = re2Module.asm.malloc(64 * 1024);
  re2Module.asm.free(ptr);
  return ptr;
}

const MiB = 1024 * 1024;

const VALID = ['^/reviews/[0-9]+$', '(?<id>[a-f0-9]{8})', 'jason|mike', '^/v[12]/.*', '[[:alpha:]]+-\\d{2,4}'];
const INVALID: readonly [string, string][] = [
  ['(?=a)b', 'invalid perl operator: (?='],
  ['(a)\\1', 'invalid escape sequence: \\1'],
  ['a{1001}', 'invalid repetition size: {1001}'],
  ['(jason|mike', 'missing ): (jason|mike'],
];

interface Case {
  pattern: string;
  /** RE2's reason when invalid. */
  reason?: string;
}

/** The n-th pattern: 3 in 40 unique and valid, 1 in 40 unique and invalid, the rest from the fixed sets. */
function patternFor(n: number): Case {
  const k = n % 40;
  if (k < 3) return { pattern: `^/api/v[0-9]+/item-${n}/(a|b)+$` };
  if (k === 3) return { pattern: `^/api/item-${n}/(a|b`, reason: `missing ): ^/api/item-${n}/(a|b` };
  if (k % 3 === 0) {
    const [pattern, reason] = INVALID[n % INVALID.length] as [string, string];
    return { pattern, reason };
  }
  return { pattern: VALID[n % VALID.length] as string };
}

const virtualService = (http: unknown[]) => ({
  apiVersion: 'networking.trellis.dev/v1alpha1',
  kind: 'VirtualService',
  metadata: { name: 'reviews', namespace: 'shop' },
  spec: { hosts: ['reviews'], http },
});

interface Sample {
  wasmTop: number;
  rss: number;
}
const sample = (): Sample => ({ wasmTop: wasmHeapTop(), rss: process.memoryUsage().rss });

function assertFlat(t: import('ava').ExecutionContext, at10: Sample, at100: Sample, what: string): void {
  t.log(
    `${what}: wasm heap top ${(at10.wasmTop / MiB).toFixed(2)} → ${(at100.wasmTop / MiB).toFixed(2)} MiB, ` +
      `RSS ${(at10.rss / MiB).toFixed(0)} → ${(at100.rss / MiB).toFixed(0)} MiB`,
  );
  t.true(at100.wasmTop - at10.wasmTop < MiB, `${what}: the WebAssembly heap grew by more than 1 MiB`);
  t.true(at100.rss - at10.rss < 96 * MiB, `${what}: RSS grew by more than 96 MiB`);
  t.true(re2CacheSize() <= RE2_CACHE_SIZE, `${what}: the verdict cache holds ${re2CacheSize()} patterns`);
}

test.serial('100,000 validations with regexes through the validator stay right with flat memory', (t) => {
  const total = 100_000;
  const wrong: string[] = [];
  let at10: Sample | undefined;
  for (let n = 0; n < total; n++) {
    if (n === total / 10) at10 = sample();
    const { pattern, reason } = patternFor(n);
    const result = validateRoutingResource(
      virtualService([{ match: [{ uri: { regex: pattern } }], route: [{ destination: { host: 'reviews' } }] }]),
    );
    const errors = result.issues.filter((i) => i.severity === 'error').map((i) => `${i.path}: ${i.message}`);
    const expected = reason === undefined ? [] : [`spec.http[0].match[0].uri.regex: must be an RE2 regex (${reason})`];
    if (errors.join('\n') !== expected.join('\n') && wrong.length < 5) {
      wrong.push(`#${n} ${pattern}: got [${errors.join('; ')}], want [${expected.join('; ')}]`);
    }
  }
  t.deepEqual(wrong, []);
  assertFlat(t, at10 as Sample, sample(), 'validator');
});

function post(agent: https.Agent, port: number, ca: string, body: unknown): Promise<AdmissionReview> {
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: '/validate',
        method: 'POST',
        agent,
        ca,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode !== 200) reject(new Error(`/validate answered ${res.statusCode}`));
          else resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as AdmissionReview);
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

test.serial('100,000 regex checks through the webhook over HTTPS stay right with flat memory', async (t) => {
  const { certPem, keyPem } = await servingCertificate();
  const server = new WebhookServer({ cert: certPem, key: keyPem });
  const port = await server.listen('127.0.0.1', 0);
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(async () => {
    agent.destroy();
    await server.close();
  });

  const requests = 1_000;
  const perRequest = 100; // 4 routes of 25 matches
  const wrong: string[] = [];
  let at10: Sample | undefined;
  for (let r = 0; r < requests; r++) {
    if (r === requests / 10) at10 = sample();
    const expected: string[] = [];
    const http = [];
    for (let route = 0; route < 4; route++) {
      const match = [];
      for (let m = 0; m < 25; m++) {
        const n = 200_000 + r * perRequest + route * 25 + m; // patterns of the first test are not reused
        // Every other request is all valid (allowed); the others carry their share of invalid ones.
        const c =
          r % 2 === 0 ? { pattern: n % 40 < 3 ? patternFor(n).pattern : (VALID[n % 5] as string) } : patternFor(n);
        match.push({ uri: { regex: c.pattern } });
        if (c.reason !== undefined) {
          expected.push(
            `VirtualService shop/reviews: spec.http[${route}].match[${m}].uri.regex: must be an RE2 regex (${c.reason})`,
          );
        }
      }
      http.push({ match, route: [{ destination: { host: 'reviews' } }] });
    }
    const review = await post(agent, port, certPem, {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: { uid: `u${r}`, operation: 'CREATE', namespace: 'shop', object: virtualService(http) },
    });
    const response = review.response;
    const got = response?.allowed === true ? [] : (response?.status?.message ?? '<no message>').split('\n');
    if (response?.uid !== `u${r}` || got.join('\n') !== expected.join('\n')) {
      if (wrong.length < 3) wrong.push(`request ${r}: got ${JSON.stringify(response)}, want [${expected.join('; ')}]`);
    }
  }
  t.deepEqual(wrong, []);
  assertFlat(t, at10 as Sample, sample(), 'webhook');
});
