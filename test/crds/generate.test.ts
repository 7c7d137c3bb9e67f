// The committed CRD manifests are exactly what crds/generate.ts produces from crds/schema.ts, and the
// schema follows the structural rules the API server enforces.
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { parse } from 'yaml';
import { COMPILED_FILES, CRD_FILES, crdsDir, renderCompiled, renderCrd } from '../../crds/generate.js';
import { compiledDir } from '../../crds/schema/compiled.js';
import { celCheck, schemaOf, type JSONSchemaProps, type CrdKind } from '../../crds/schema.js';

const kinds = Object.keys(CRD_FILES) as CrdKind[];

for (const kind of kinds) {
  test(`crds/${CRD_FILES[kind]} is up to date (npm run crds)`, (t) => {
    const committed = fs.readFileSync(path.join(crdsDir, CRD_FILES[kind]), 'utf8');
    t.is(committed, renderCrd(kind));
  });
}

test('the committed compiled schema validators are what crds/schema/compiled.ts generates (npm run crds)', (t) => {
  for (const kind of kinds) {
    const committed = fs.readFileSync(path.join(compiledDir, COMPILED_FILES[kind]), 'utf8');
    t.true(committed === renderCompiled(kind), `${COMPILED_FILES[kind]} is stale: run npm run crds`);
  }
});

test('rendering is deterministic', (t) => {
  for (const kind of kinds) t.is(renderCrd(kind), renderCrd(kind));
});

function walk(node: JSONSchemaProps, at: string, visit: (node: JSONSchemaProps, at: string) => void): void {
  visit(node, at);
  for (const [k, v] of Object.entries(node.properties ?? {})) walk(v, `${at}.${k}`, visit);
  if (node.items) walk(node.items, `${at}[]`, visit);
  if (node.additionalProperties) walk(node.additionalProperties, `${at}{}`, visit);
}

test('the schemas are structural and bounded, and every CEL rule compiles (or has its TypeScript twin)', (t) => {
  for (const kind of kinds) {
    let rules = 0;
    walk(schemaOf(kind), kind, (node, at) => {
      if (at === `${kind}.metadata`) return;
      t.truthy(node.type, `${at} has a type`);
      t.false(
        node.properties !== undefined && node.additionalProperties !== undefined,
        `${at}: properties and additionalProperties`,
      );
      if (node.type === 'array') t.truthy(node.maxItems, `${at} has maxItems`);
      if (node.additionalProperties) t.truthy(node.maxProperties, `${at} has maxProperties`);
      if (
        node.type === 'string' &&
        !node.enum &&
        node.format !== 'date-time' &&
        at !== `${kind}.apiVersion` &&
        at !== `${kind}.kind`
      )
        t.truthy(node.maxLength, `${at} has maxLength`);
      for (const r of node['x-kubernetes-validations'] ?? []) {
        rules++;
        t.notThrows(() => celCheck(r), `${at}: ${r.rule}`);
        t.true(r.message.length > 0);
      }
    });
    // PeerAuthentication is small: its label keys, its port keys, portLevelMtls only with a selector.
    // AuthorizationPolicy: its label keys, values or notValues.
    // Sidecar: its label keys, a workloadSelector with at least one label (egress hosts: the validator).
    const least = kind === 'PeerAuthentication' ? 3 : kind === 'AuthorizationPolicy' || kind === 'Sidecar' ? 2 : 10;
    t.true(rules >= least, `${kind}: ${rules} CEL rules`);
  }
});

test('the manifests name the group, version, short names, status subresource and printer columns', (t) => {
  const vs = parse(fs.readFileSync(path.join(crdsDir, 'virtualservice.yaml'), 'utf8'));
  const dr = parse(fs.readFileSync(path.join(crdsDir, 'destinationrule.yaml'), 'utf8'));
  t.is(vs.metadata.name, 'virtualservices.networking.trellis.dev');
  t.is(dr.metadata.name, 'destinationrules.networking.trellis.dev');
  t.deepEqual(vs.spec.names.shortNames, ['vs']);
  t.deepEqual(dr.spec.names.shortNames, ['dr']);
  for (const crd of [vs, dr]) {
    const v = crd.spec.versions[0];
    t.is(v.name, 'v1alpha1');
    t.true(v.served && v.storage);
    t.deepEqual(v.subresources, { status: {} });
    t.deepEqual(
      v.additionalPrinterColumns.map((c: { name: string }) => c.name),
      [crd === vs ? 'Hosts' : 'Host', 'Accepted', 'Programmed', 'Age'],
    );
    t.deepEqual(crd.spec.names.categories, ['trellis', 'trellis-networking']);
  }
});

test('the PeerAuthentication manifest: security.trellis.dev, pa, Mode column, category trellis-security', (t) => {
  const pa = parse(fs.readFileSync(path.join(crdsDir, 'peerauthentication.yaml'), 'utf8'));
  t.is(pa.metadata.name, 'peerauthentications.security.trellis.dev');
  t.is(pa.spec.group, 'security.trellis.dev');
  t.is(pa.spec.scope, 'Namespaced');
  t.deepEqual(pa.spec.names.shortNames, ['pa']);
  t.is(pa.spec.names.plural, 'peerauthentications');
  t.deepEqual(pa.spec.names.categories, ['trellis', 'trellis-security']);
  const v = pa.spec.versions[0];
  t.is(v.name, 'v1alpha1');
  t.deepEqual(v.subresources, { status: {} });
  t.deepEqual(
    v.additionalPrinterColumns.map((c: { name: string; jsonPath: string }) => `${c.name} ${c.jsonPath}`),
    [
      'Mode .spec.mtls.mode',
      'Accepted .status.conditions[?(@.type=="Accepted")].status',
      'Programmed .status.conditions[?(@.type=="Programmed")].status',
      'Age .metadata.creationTimestamp',
    ],
  );
  t.deepEqual(v.schema.openAPIV3Schema.properties.spec.properties.mtls.properties.mode.enum, [
    'UNSET',
    'DISABLE',
    'PERMISSIVE',
    'STRICT',
  ]);
});
