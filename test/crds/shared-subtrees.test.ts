// The compiled validators are generated from the schema with repeated subtrees moved into `definitions`
// (crds/schema/compiled.ts shareRepeatedSubtrees), which shrank their code by more than half. This shows
// the move changes no verdict: for every fixture, every Istio case and thousands of mutations of them, ajv
// compiled from the inline schema and from the shared one report the same errors at the same instancePaths.
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { Ajv, type ErrorObject } from 'ajv';
import { parseAllDocuments } from 'yaml';
import { shareRepeatedSubtrees, strictCopy } from '../../crds/schema/compiled.js';
import { schemaOf, type CrdKind } from '../../crds/schema.js';
import { CRD_FILES } from '../../crds/generate.js';
import { ISTIO_RULES } from './istio-cases.js';
import { repoRoot } from '../helpers/peer-paths.js';
import { prng } from '../helpers/prng.js';

const kinds = Object.keys(CRD_FILES) as CrdKind[];
const ajv = () => new Ajv({ allErrors: true, strict: true, validateFormats: false });

function verdict(validate: ((v: unknown) => boolean) & { errors?: ErrorObject[] | null }, value: unknown): string[] {
  validate(value);
  return (validate.errors ?? []).map((e) => `${e.instancePath} ${e.keyword} ${e.message ?? ''}`).sort();
}

const ODD_VALUES: unknown[] = [null, -1, 0, 4294967296, '', 'x', '1s', true, [], {}, [1], { a: 1 }];

/** `value` with one field somewhere replaced by an odd value, or removed. */
function mutate(value: unknown, next: () => number): unknown {
  if (Array.isArray(value)) {
    if (value.length === 0 || next() < 0.15) return ODD_VALUES[Math.floor(next() * ODD_VALUES.length)];
    const i = Math.floor(next() * value.length);
    return value.map((v, j) => (j === i ? mutate(v, next) : v));
  }
  if (value && typeof value === 'object') {
    const keys = Object.keys(value);
    if (keys.length === 0 || next() < 0.15) return ODD_VALUES[Math.floor(next() * ODD_VALUES.length)];
    const k = keys[Math.floor(next() * keys.length)]!;
    const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    if (next() < 0.1) delete copy[k];
    else copy[k] = mutate(copy[k], next);
    return copy;
  }
  return ODD_VALUES[Math.floor(next() * ODD_VALUES.length)];
}

/** ServiceEntries (test/fixtures has none): a STATIC one with endpoints, a DNS one with TLS ports. */
const SERVICE_ENTRIES = [
  {
    apiVersion: 'networking.trellis.dev/v1alpha1',
    kind: 'ServiceEntry',
    metadata: { name: 'legacy', namespace: 'shop' },
    spec: {
      hosts: ['legacy.internal'],
      addresses: ['10.9.0.0/24'],
      location: 'MESH_EXTERNAL',
      resolution: 'STATIC',
      ports: [{ number: 8080, name: 'grpc', protocol: 'GRPC', targetPort: 9090 }],
      endpoints: [
        { address: '10.9.0.1', labels: { version: 'v1' }, locality: 'us/east/a', weight: 3 },
        { address: '10.9.0.2', ports: { grpc: 9091 }, network: 'n1' },
      ],
      exportTo: ['.'],
    },
  },
  {
    apiVersion: 'networking.trellis.dev/v1alpha1',
    kind: 'ServiceEntry',
    metadata: { name: 'payments', namespace: 'shop' },
    spec: {
      hosts: ['api.payments.example.com', '*.payments.example.com'],
      resolution: 'DNS',
      ports: [
        { number: 443, name: 'tls', protocol: 'TLS' },
        { number: 80, name: 'http', protocol: 'HTTP' },
      ],
    },
  },
];

function samples(kind: CrdKind): unknown[] {
  const out: unknown[] = [];
  for (const dir of ['valid', 'invalid', 'warnings']) {
    const base = path.join(repoRoot, 'test/fixtures', dir);
    for (const f of fs.readdirSync(base)) {
      for (const doc of parseAllDocuments(fs.readFileSync(path.join(base, f), 'utf8'))) {
        const o = doc.toJS() as { kind?: string } | null;
        if (o?.kind === kind) out.push(o);
      }
    }
  }
  for (const rule of ISTIO_RULES) for (const c of rule.cases) if (c.object.kind === kind) out.push(c.object);
  if (kind === 'ServiceEntry') out.push(...SERVICE_ENTRIES);
  return out;
}

for (const kind of kinds) {
  test(`${kind}: the shared schema and the inline one give the same errors, fixtures and mutations`, (t) => {
    const inline = ajv().compile(strictCopy(schemaOf(kind)));
    const shared = ajv().compile(shareRepeatedSubtrees(strictCopy(schemaOf(kind))));
    const base = samples(kind);
    t.true(base.length > 0, `samples of ${kind}`);
    const next = prng(kind.length * 7919);
    let compared = 0;
    let refused = 0;
    for (const value of base) {
      let v: unknown = value;
      for (let round = 0; round < 200; round++) {
        const expected = verdict(inline, v);
        t.deepEqual(verdict(shared, v), expected, JSON.stringify(v));
        compared++;
        if (expected.length > 0) refused++;
        v = round % 4 === 3 ? value : mutate(v, next);
      }
    }
    t.true(refused > compared / 10, `mutations refused: ${refused} of ${compared}`);
  });
}

test('repeated subtrees become definitions; a schema without repeats is left as it is', (t) => {
  const leaf = { type: 'object', properties: { a: { type: 'string', maxLength: 253, pattern: '^[a-z]+$' } } };
  const padded = { ...leaf, properties: { ...leaf.properties, b: { type: 'string', enum: ['x'.repeat(100)] } } };
  const shared = shareRepeatedSubtrees({ type: 'object', properties: { one: padded, two: padded } });
  t.deepEqual(shared.properties, { one: { $ref: '#/definitions/s0' }, two: { $ref: '#/definitions/s0' } });
  // Inside a definition, a repeated subtree of its own is shared too (depth first: s1 after s0).
  t.deepEqual(shared.definitions, {
    s0: { ...padded, properties: { a: leaf.properties.a, b: { $ref: '#/definitions/s1' } } },
    s1: padded.properties.b,
  });
  const single = { type: 'object', properties: { one: padded } };
  t.deepEqual(shareRepeatedSubtrees(single), single);
});
