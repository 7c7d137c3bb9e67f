// Mutated bytes of valid messages into the two parsers that read what a client sends:
//
// - the ADS request decoders: decodeSotwRequest (control-plane/xds/sotw-request.ts, SotW) must give exactly
//   what protobuf-es's fromBinary gives, the same message or an error where it errs; the delta stream's
//   deserializer (fromBinary of DeltaDiscoveryRequest) must return or throw an Error (grpc-js answers a
//   throwing deserializer with INTERNAL), never anything else;
// - the CSR parser checkCsr (certs/csr.ts) must resolve or reject with CsrRefusal, and nothing else. Half
//   of its cases mutate the CertificationRequestInfo and sign it again, so that the mutated extension
//   request gets past the signature and into the SAN parser.
//
// Neither may hang: every call is timed and one over HANG_MS fails the property (a bound no load reaches
// for inputs of a few KB; it is there to stop a loop, not to measure speed).
import { create, equals, fromBinary, toBinary } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { webcrypto } from 'node:crypto';
import { checkCsr, ecdsaRawToDer } from '../../certs/csr.js';
import { children, readTlv, seq, bitString, whole } from '../../certs/der.js';
import { CsrRefusal } from '../../certs/errors.js';
import { pemBlocks, toPem } from '../../certs/pem.js';
import { createCsr, generateWorkloadKey, type WorkloadKey } from '../../certs/request.js';
import { NodeSchema } from '../../control-plane/envoy/gen/envoy/config/core/v3/base_pb.js';
import {
  DeltaDiscoveryRequestSchema,
  DiscoveryRequestSchema,
} from '../../control-plane/envoy/gen/envoy/service/discovery/v3/discovery_pb.js';
import { TypeUrl } from '../../control-plane/envoy/protos.js';
import { decodeSotwRequest } from '../../control-plane/xds/sotw-request.js';

export const HANG_MS = 10_000;

// ---------------------------------------------------------------------------------------------------
// Mutations

type Mutation =
  | { readonly op: 'set'; readonly at: number; readonly byte: number }
  | { readonly op: 'flip'; readonly at: number; readonly bit: number }
  | { readonly op: 'insert'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly op: 'delete'; readonly at: number; readonly length: number }
  | { readonly op: 'truncate'; readonly at: number }
  | { readonly op: 'repeat'; readonly at: number; readonly length: number; readonly times: number };

/** Bytes that mean much to protobuf and DER: varint continuation, lengths at their limits, tags. */
const byteArb = fc.oneof(
  fc.integer({ min: 0, max: 255 }),
  fc.constantFrom(0x00, 0x01, 0x7f, 0x80, 0x81, 0x82, 0xff, 0x0a, 0x12, 0x30),
);

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), byte: byteArb }),
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({
    op: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 12 }),
  }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    op: fc.constant('repeat' as const),
    at: fc.nat(),
    length: fc.integer({ min: 1, max: 32 }),
    times: fc.integer({ min: 2, max: 64 }),
  }),
);

export const mutationsArb = fc.array(mutationArb, { minLength: 1, maxLength: 4 });

/** `base` with `mutations` applied in order (positions wrap around the current length). */
export function mutate(base: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let b = Buffer.from(base);
  for (const m of mutations) {
    const at = b.length === 0 ? 0 : m.at % (m.op === 'insert' ? b.length + 1 : b.length);
    switch (m.op) {
      case 'set':
        if (b.length > 0) b[at] = m.byte;
        break;
      case 'flip':
        if (b.length > 0) b[at] = b[at]! ^ (1 << m.bit);
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.length)]);
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'repeat': {
        const piece = b.subarray(at, at + m.length);
        b = Buffer.concat([b.subarray(0, at), ...Array<Buffer>(m.times).fill(piece), b.subarray(at)]);
        break;
      }
    }
  }
  return new Uint8Array(b);
}

function timed<T>(what: string, f: () => T): T {
  const t0 = performance.now();
  const result = f();
  const ms = performance.now() - t0;
  if (ms > HANG_MS) throw new Error(`${what} took ${ms.toFixed(0)} ms`);
  return result;
}

// ---------------------------------------------------------------------------------------------------
// ADS requests

const node = create(NodeSchema, {
  id: 'reviews-v1-0.default',
  cluster: 'reviews',
  metadata: {
    NAMESPACE: 'default',
    SERVICE_ACCOUNT: 'reviews',
    LABELS: { app: 'reviews', version: 'v1' },
    INSTANCE_IPS: '10.0.0.1',
    PROXY_TYPE: 'envoy',
    nested: { list: [1, 'two', true, null] },
  },
  locality: { region: 'r', zone: 'z' },
  userAgentName: 'envoy',
  userAgentVersionType: { case: 'userAgentVersion', value: '1.36.0' },
});

const names = [
  'outbound|9080||reviews.default.svc.cluster.local',
  'outbound|8080|v1|ratings.shop.svc.cluster.local',
  '9080',
];

export const SOTW_REQUESTS: readonly Uint8Array[] = [
  { node, typeUrl: TypeUrl.Cluster },
  { node, typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: names },
  { typeUrl: TypeUrl.ClusterLoadAssignment, versionInfo: 'v-1a2b', responseNonce: 'n-1', resourceNames: names },
  {
    typeUrl: TypeUrl.RouteConfiguration,
    versionInfo: 'v-1',
    responseNonce: 'n-2',
    resourceNames: ['9080'],
    errorDetail: {
      code: 3,
      message: 'rejected: ü',
      details: [{ typeUrl: 'type.googleapis.com/x.Y', value: new Uint8Array([1, 200]) }],
    },
  },
  {
    typeUrl: TypeUrl.Listener,
    versionInfo: 'v',
    responseNonce: 'n',
    resourceLocators: [{ name: 'l', dynamicParameters: { a: 'b' } }],
  },
].map((init) => toBinary(DiscoveryRequestSchema, create(DiscoveryRequestSchema, init)));

export const DELTA_REQUESTS: readonly Uint8Array[] = [
  { node, typeUrl: TypeUrl.Cluster, resourceNamesSubscribe: ['*'], initialResourceVersions: { a: 'v1', b: 'v2' } },
  {
    typeUrl: TypeUrl.ClusterLoadAssignment,
    resourceNamesSubscribe: names,
    resourceNamesUnsubscribe: ['old'],
    responseNonce: 'n-3',
  },
  { typeUrl: TypeUrl.Listener, responseNonce: 'n-4', errorDetail: { code: 13, message: 'bad' } },
].map((init) => toBinary(DeltaDiscoveryRequestSchema, create(DeltaDiscoveryRequestSchema, init)));

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

function outcome(f: () => unknown): Outcome {
  try {
    return { ok: true, value: f() };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Why the outcome of decodeSotwRequest on `bytes` is wrong, or undefined when it is right. */
export function sotwDecoderProblem(bytes: Uint8Array): string | undefined {
  const reference = outcome(() => fromBinary(DiscoveryRequestSchema, bytes));
  const ours = timed('decodeSotwRequest', () =>
    outcome(() => {
      const request = decodeSotwRequest(bytes);
      void request.resourceNames.length; // decoded on first read: that read must not throw either
      return request;
    }),
  );
  if (!ours.ok && !(ours.error instanceof Error)) return `threw a non-Error: ${String(ours.error)}`;
  if (reference.ok !== ours.ok) {
    return reference.ok
      ? `threw ${String((ours as { error: unknown }).error)} where fromBinary decodes`
      : `decoded where fromBinary throws ${String(reference.error)}`;
  }
  if (reference.ok && ours.ok) {
    const a = reference.value as ReturnType<typeof decodeSotwRequest>;
    const b = ours.value as ReturnType<typeof decodeSotwRequest>;
    if (!equals(DiscoveryRequestSchema, a, b)) return 'decoded a different message than fromBinary';
  }
  return undefined;
}

/** Why the delta deserializer's outcome on `bytes` is wrong (it threw a non-Error), or undefined. */
export function deltaDecoderProblem(bytes: Uint8Array): string | undefined {
  const result = timed('fromBinary(DeltaDiscoveryRequest)', () =>
    outcome(() => fromBinary(DeltaDiscoveryRequestSchema, bytes)),
  );
  if (!result.ok && !(result.error instanceof Error)) return `threw a non-Error: ${String(result.error)}`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------------
// CSRs

export interface CsrBase {
  readonly key: WorkloadKey;
  readonly der: Uint8Array;
}

/** Valid CSRs to mutate: ECDSA P-256 and RSA-2048, one SPIFFE URI SAN each. */
export async function csrBases(): Promise<CsrBase[]> {
  const out: CsrBase[] = [];
  for (const type of ['ec-p256', 'rsa-2048'] as const) {
    const key = await generateWorkloadKey(type);
    const pem = await createCsr(key, 'spiffe://cluster.local/ns/default/sa/reviews');
    out.push({ key, der: pemBlocks(pem)[0]!.der });
  }
  return out;
}

/** The CSR with its CertificationRequestInfo replaced by `info` and signed again with the CSR's key. */
async function resigned(base: CsrBase, info: Uint8Array): Promise<Uint8Array> {
  const der = Buffer.from(base.der);
  const [, alg] = children(der, readTlv(der, 0));
  const privateKey = base.key.keys.privateKey;
  const ec = privateKey.algorithm.name === 'ECDSA';
  const signature = new Uint8Array(
    await webcrypto.subtle.sign(
      ec ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'RSASSA-PKCS1-v1_5' },
      privateKey,
      info,
    ),
  );
  return seq(info, whole(der, alg!), bitString(ec ? ecdsaRawToDer(signature) : signature));
}

export interface CsrCase {
  readonly base: number;
  /** Mutate the CertificationRequestInfo and sign again, or mutate the whole DER. */
  readonly resign: boolean;
  readonly mutations: Mutation[];
}

export const csrCaseArb: fc.Arbitrary<CsrCase> = fc.record({
  base: fc.nat(1),
  resign: fc.boolean(),
  mutations: mutationsArb,
});

/** Why checkCsr's outcome on the case is wrong, or undefined when it resolved or refused with CsrRefusal. */
export async function csrProblem(bases: readonly CsrBase[], c: CsrCase): Promise<string | undefined> {
  const base = bases[c.base % bases.length]!;
  let der: Uint8Array;
  if (c.resign) {
    const full = Buffer.from(base.der);
    const [info] = children(full, readTlv(full, 0));
    der = await resigned(base, mutate(whole(full, info!), c.mutations));
  } else {
    der = mutate(base.der, c.mutations);
  }
  const t0 = performance.now();
  let problem: string | undefined;
  try {
    await checkCsr(toPem(der, 'CERTIFICATE REQUEST'));
  } catch (e) {
    if (!(e instanceof CsrRefusal))
      problem = `checkCsr threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`;
  }
  const ms = performance.now() - t0;
  return problem ?? (ms > HANG_MS ? `checkCsr took ${ms.toFixed(0)} ms` : undefined);
}

// ---------------------------------------------------------------------------------------------------
// The runner's loop

export interface BytesFuzzResult {
  readonly name: string;
  readonly runs: number;
  readonly ms: number;
  /** What the inputs did, e.g. "412 decoded, 588 refused". */
  readonly outcomes: string;
  /** The shrunk counterexample and why it fails. */
  readonly failure?: string;
}

function report<Ts extends unknown[]>(
  name: string,
  t0: number,
  outcomes: string,
  details: fc.RunDetails<Ts>,
): BytesFuzzResult {
  return {
    name,
    runs: details.numRuns,
    ms: performance.now() - t0,
    outcomes,
    ...(details.failed
      ? {
          failure: `${fc.stringify(details.counterexample)}: ${String((details.errorInstance as Error | undefined)?.message ?? details.errorInstance)}`,
        }
      : {}),
  };
}

export async function runBytesFuzz(options: {
  runs: number;
  seed: number;
  progress?: (name: string, done: number) => void;
}): Promise<BytesFuzzResult[]> {
  const { runs, seed } = options;
  const results: BytesFuzzResult[] = [];
  const every = Math.max(1, Math.floor(runs / 10));

  for (const [name, bases, problem, schema] of [
    ['ADS SotW request (decodeSotwRequest)', SOTW_REQUESTS, sotwDecoderProblem, DiscoveryRequestSchema],
    ['ADS delta request (fromBinary)', DELTA_REQUESTS, deltaDecoderProblem, DeltaDiscoveryRequestSchema],
  ] as const) {
    const t0 = performance.now();
    let done = 0;
    let decoded = 0;
    const details = fc.check(
      fc.property(fc.nat(bases.length - 1), mutationsArb, (i, mutations) => {
        const bytes = mutate(bases[i]!, mutations);
        const p = problem(bytes);
        if (p !== undefined) throw new Error(p);
        if (outcome(() => fromBinary(schema, bytes)).ok) decoded++;
        if (++done % every === 0) options.progress?.(name, done);
      }),
      { seed, numRuns: runs },
    );
    results.push(report(name, t0, `${decoded} decoded, ${done - decoded} refused`, details));
  }

  const bases = await csrBases();
  const t0 = performance.now();
  let done = 0;
  const details = await fc.check(
    fc.asyncProperty(csrCaseArb, async (c) => {
      const p = await csrProblem(bases, c);
      if (p !== undefined) throw new Error(p);
      if (++done % every === 0) options.progress?.('CSR', done);
    }),
    { seed, numRuns: runs },
  );
  results.push(report('CSR (checkCsr)', t0, `${done} checked`, details));
  return results;
}
