// The CRDs on a real kube-apiserver (test/helpers/cluster.ts): the API server accepts the schemas (it checks
// structural rules and the CEL cost budget itself), stores valid resources, and refuses invalid ones with
// the same verdict as crds/validator.ts: every fixture whose schema or CEL layer has an error is refused,
// naming the path (and, for CEL rules, with our message); one with only Trellis-level errors (RE2,
// primes, …) is stored, as the webhook, not the schema, refuses those.
// Skipped with one line when the peers are not built (failed under CI=true).
import fs from 'node:fs';
import path from 'node:path';
import anyTest from 'ava';
import { parseAllDocuments, stringify } from 'yaml';
import { CRD_FILES, crdsDir } from '../../crds/generate.js';
import { isObject } from '../../crds/schema.js';
import { validateByLayer } from '../../crds/validator.js';
import { useCluster, type Cluster } from '../helpers/cluster.js';
import { ISTIO_RULES } from './istio-cases.js';
import { repoRoot } from '../helpers/peer-paths.js';
import { crdsEstablished } from '../helpers/crds-established.js';

const kube = useCluster(anyTest);
const fixtures = path.join(repoRoot, 'test/fixtures');

type Json = Record<string, unknown>;

const OUR_KINDS = new Set(['VirtualService', 'DestinationRule', 'PeerAuthentication', 'Sidecar']);

/**
 * The VirtualServices, DestinationRules and PeerAuthentications of a fixture file (List items included),
 * moved to `namespace`.
 */
function routingObjects(file: string, namespace: string): Json[] {
  const out: Json[] = [];
  for (const doc of parseAllDocuments(fs.readFileSync(file, 'utf8'))) {
    if (doc.errors.length > 0) continue;
    const value: unknown = doc.toJS();
    const items = isObject(value) && value.kind === 'List' && Array.isArray(value.items) ? value.items : [value];
    for (const item of items) {
      if (!isObject(item) || typeof item.kind !== 'string' || !OUR_KINDS.has(item.kind)) continue;
      out.push({ ...item, metadata: { ...(isObject(item.metadata) ? item.metadata : {}), namespace } });
    }
  }
  return out;
}

let crdsReady: Promise<void> | undefined;

/** Applies the CRDs once per cluster and waits until they are established. */
function installCrds(cluster: Cluster): Promise<void> {
  crdsReady ??= (async () => {
    for (const file of Object.values(CRD_FILES)) {
      await cluster.kubectl(['apply', '--server-side', '-f', '-'], {
        input: fs.readFileSync(path.join(crdsDir, file), 'utf8'),
      });
    }
    await crdsEstablished(cluster, [
      'virtualservices.networking.trellis.dev',
      'destinationrules.networking.trellis.dev',
      'peerauthentications.security.trellis.dev',
    ]);
  })();
  return crdsReady;
}

kube.serial('the CRDs are accepted (structural, within the CEL cost budget) and established', async (t, cluster) => {
  await installCrds(cluster);
  const { stdout } = await cluster.kubectl(['get', 'crd', '-o', 'jsonpath={.items[*].metadata.name}']);
  t.true(stdout.includes('virtualservices.networking.trellis.dev'));
  t.true(stdout.includes('destinationrules.networking.trellis.dev'));
  const { stdout: resources } = await cluster.kubectl([
    'api-resources',
    '--api-group=networking.trellis.dev',
    '-o',
    'wide',
  ]);
  t.regex(resources, /virtualservices\s+vs\s+networking\.trellis\.dev\/v1alpha1\s+true\s+VirtualService/);
  t.regex(resources, /destinationrules\s+dr\s+networking\.trellis\.dev\/v1alpha1\s+true\s+DestinationRule/);
  t.true(stdout.includes('peerauthentications.security.trellis.dev'));
  const { stdout: security } = await cluster.kubectl([
    'api-resources',
    '--api-group=security.trellis.dev',
    '-o',
    'wide',
  ]);
  t.regex(security, /peerauthentications\s+pa\s+security\.trellis\.dev\/v1alpha1\s+true\s+PeerAuthentication/);
});

kube.test(
  'the valid bookinfo resources are stored; short names, category, printer columns, status',
  async (t, cluster) => {
    await installCrds(cluster);
    const ns = await cluster.createNamespace('crds-valid');
    const objects = fs
      .readdirSync(path.join(fixtures, 'valid'))
      .sort()
      .flatMap((f) => routingObjects(path.join(fixtures, 'valid', f), ns));
    t.true(objects.length >= 10);
    await cluster.kubectl(['apply', '--server-side', '-f', '-'], {
      input: objects.map((o) => stringify(o)).join('---\n'),
    });

    const { stdout: names } = await cluster.kubectl(['get', 'vs,dr,pa', '-n', ns, '-o', 'name']);
    t.deepEqual(
      names.trim().split('\n').sort(),
      objects
        .map(
          (o) => `${String(o.kind).toLowerCase()}.${String(o.apiVersion).split('/')[0]}/${(o.metadata as Json).name}`,
        )
        .sort(),
    );
    t.true(objects.some((o) => o.kind === 'PeerAuthentication'));
    const { stdout: category } = await cluster.kubectl(['get', 'trellis', '-n', ns, '-o', 'name']);
    t.is(category.trim().split('\n').length, objects.length);

    // Stored as written (nothing pruned): the reviews VirtualService round-trips.
    const reviews = objects.find((o) => o.kind === 'VirtualService' && (o.metadata as Json).name === 'reviews');
    const { stdout: stored } = await cluster.kubectl(['get', 'vs', 'reviews', '-n', ns, '-o', 'json']);
    t.deepEqual((JSON.parse(stored) as Json).spec, reviews?.spec);

    // The status subresource and the Accepted column.
    await cluster.kubectl([
      'patch',
      'vs',
      'reviews',
      '-n',
      ns,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({
        status: {
          observedGeneration: 1,
          conditions: [
            { type: 'Accepted', status: 'True', reason: 'Valid', lastTransitionTime: '2026-01-01T00:00:00Z' },
          ],
        },
      }),
    ]);
    const { stdout: table } = await cluster.kubectl(['get', 'vs', 'reviews', '-n', ns]);
    t.regex(table, /^NAME\s+HOSTS\s+ACCEPTED\s+PROGRAMMED\s+AGE\n/);
    t.regex(table, /\nreviews\s+\["reviews"\]\s+True\s+/);
    const { stdout: drTable } = await cluster.kubectl(['get', 'dr', 'ratings', '-n', ns]);
    t.regex(drTable, /^NAME\s+HOST\s+ACCEPTED\s+PROGRAMMED\s+AGE\n/);
    t.regex(drTable, /\nratings\s+ratings\.bookinfo\.svc\.cluster\.local\s+/);
    const { stdout: paTable } = await cluster.kubectl(['get', 'pa', '-n', ns]);
    t.regex(paTable, /^NAME\s+MODE\s+ACCEPTED\s+PROGRAMMED\s+AGE\n/);
    t.regex(paTable, /\ndefault\s+STRICT\s+/);
    // portLevelMtls round-trips (string keys in JSON).
    const ratings = objects.find((o) => o.kind === 'PeerAuthentication' && (o.metadata as Json).name === 'ratings');
    const { stdout: storedPa } = await cluster.kubectl(['get', 'pa', 'ratings', '-n', ns, '-o', 'json']);
    t.deepEqual((JSON.parse(storedPa) as Json).spec, JSON.parse(JSON.stringify(ratings?.spec)));
  },
);

/**
 * The fields an API server error calls unknown, as validator paths: strict decoding says
 * `unknown field "spec.x"`, server-side apply `.spec.x: field not declared in schema`.
 */
function unknownFieldsNamed(output: string): string[] {
  const names = [
    ...[...output.matchAll(/unknown field "([^"]+)"/g)].map((m) => m[1] ?? ''),
    ...[...output.matchAll(/\.?([\w.[\]/-]+): field not declared in schema/g)].map((m) => m[1] ?? ''),
  ];
  return [...new Set(names.map((n) => n.replace(/^\./, '')))];
}

// Fixtures whose verdict depends on more than one object (the API server sees objects one by one) or on
// parsing and versions that never reach the schema.
const NOT_PER_OBJECT = new Set([
  'duplicate-resource.yaml',
  'yaml-duplicate-key.yaml',
  'subset-not-defined.yaml',
  'wrong-api-version.yaml',
]);

kube.test(
  'every invalid example gets the same verdict from the API server as from the validator',
  async (t, cluster) => {
    await installCrds(cluster);
    const ns = await cluster.createNamespace('crds-invalid');
    const files = fs.readdirSync(path.join(fixtures, 'invalid')).sort();
    let refused = 0;
    let trellisOnly = 0;
    for (const f of files) {
      if (NOT_PER_OBJECT.has(f)) continue;
      for (const o of routingObjects(path.join(fixtures, 'invalid', f), ns)) {
        const layers = validateByLayer(o);
        const schema = layers.schema.filter((i) => i.severity === 'error');
        const cel = layers.cel.filter((i) => i.severity === 'error');
        const r = await cluster.kubectl(['apply', '--server-side', '--dry-run=server', '-f', '-'], {
          input: stringify(o),
          allowFailure: true,
        });
        const output = `${r.stdout}${r.stderr}`;
        const what = `${f}: ${output.trim()}`;
        if (schema.length > 0 || cel.length > 0) {
          refused++;
          t.not(r.code, 0, `${f} should be refused`);
          // The API server skips CEL rules once the schema fails; when it runs them, our messages are its.
          for (const i of schema) {
            if (i.message !== 'unknown field') t.true(output.includes(i.path), `${what}\n  should name ${i.path}`);
          }
          // Unknown fields: the API server stops at the first it meets, in Go map order (so either of two).
          // It must name at least one, and only fields the validator calls unknown.
          const unknown = schema.filter((i) => i.message === 'unknown field').map((i) => i.path);
          const named = unknownFieldsNamed(output);
          if (unknown.length > 0) t.true(named.length > 0, `${what}\n  should name one of ${unknown.join(', ')}`);
          for (const n of named) t.true(unknown.includes(n), `${what}\n  names ${n}, which the validator accepts`);
          if (schema.length === 0) {
            for (const i of cel)
              t.true(
                output.includes(`${i.path}: Invalid value: `) && output.includes(i.message),
                `${what}\n  should say ${i.path}: ${i.message}`,
              );
          }
        } else {
          trellisOnly++;
          t.is(r.code, 0, `${f} has only Trellis-level errors and should pass the schema: ${output}`);
        }
      }
    }
    t.log(`${refused} refused by the schema or CEL, ${trellisOnly} left to the webhook`);
    t.true(refused >= 30);
    t.true(trellisOnly >= 4);
  },
);

kube.test('values at both sides of the schema bounds', async (t, cluster) => {
  await installCrds(cluster);
  const ns = await cluster.createNamespace('crds-bounds');
  const vs = (http: Json): Json => ({
    apiVersion: 'networking.trellis.dev/v1alpha1',
    kind: 'VirtualService',
    metadata: { name: 'bounds', namespace: ns },
    spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }], ...http }] },
  });
  const cases: [Json, boolean][] = [
    [{ timeout: '1ms' }, true],
    [{ timeout: '0.5ms' }, false],
    [{ timeout: '1.5s' }, true],
    [{ timeout: '0s' }, false],
    [{ timeout: '2562047h' }, true],
    [{ timeout: '2562048h' }, false], // beyond Go durations: CEL's duration() fails
    [{ fault: { abort: { httpStatus: 200 } } }, true],
    [{ fault: { abort: { httpStatus: 599 } } }, true],
    [{ fault: { abort: { httpStatus: 600 } } }, false],
    [{ fault: { delay: { fixedDelay: '1s', percentage: { value: 100 } } } }, true],
    [{ fault: { delay: { fixedDelay: '1s', percentage: { value: 100.1 } } } }, false],
    [{ fault: { delay: { fixedDelay: '1s', percentage: { value: 0.0001 } } } }, true],
    [{ route: [{ destination: { host: 'reviews', port: { number: 65535 } }, weight: 100 }] }, true],
    [{ route: [{ destination: { host: 'reviews', port: { number: 65536 } } }] }, false],
    [{ retries: { attempts: 0 } }, true],
    [{ retries: { attempts: -1 } }, false],
    [{ match: [{ headers: { 'x-user': {} } }] }, true],
    [{ match: [{ uri: {} }] }, false],
  ];
  for (const [http, ok] of cases) {
    const o = vs(http);
    const local = validateByLayer(o);
    t.is(local.schema.length + local.cel.length === 0, ok, `validator on ${JSON.stringify(http)}`);
    const r = await cluster.kubectl(['apply', '--server-side', '--dry-run=server', '-f', '-'], {
      input: stringify(o),
      allowFailure: true,
    });
    t.is(r.code === 0, ok, `API server on ${JSON.stringify(http)}: ${r.stderr}`);
  }
});

kube.test('PeerAuthentication: values at both sides of the schema and CEL bounds', async (t, cluster) => {
  await installCrds(cluster);
  const ns = await cluster.createNamespace('crds-pa-bounds');
  const pa = (spec: Json): Json => ({
    apiVersion: 'security.trellis.dev/v1alpha1',
    kind: 'PeerAuthentication',
    metadata: { name: 'bounds', namespace: ns },
    spec,
  });
  const selector = { matchLabels: { app: 'reviews' } };
  const cases: [Json, boolean][] = [
    [{}, true],
    [{ mtls: { mode: 'UNSET' } }, true],
    [{ mtls: { mode: 'STRICT' } }, true],
    [{ mtls: { mode: 'MESH_MUTUAL' } }, false],
    [{ selector, portLevelMtls: { '1': { mode: 'DISABLE' } } }, true],
    [{ selector, portLevelMtls: { '65535': { mode: 'DISABLE' } } }, true],
    [{ selector, portLevelMtls: { '65536': { mode: 'DISABLE' } } }, false],
    [{ selector, portLevelMtls: { '0': { mode: 'DISABLE' } } }, false],
    [{ selector, portLevelMtls: { '080': { mode: 'DISABLE' } } }, false],
    [{ selector, portLevelMtls: { http: { mode: 'DISABLE' } } }, false],
    [{ portLevelMtls: { '8080': { mode: 'DISABLE' } } }, false],
    [{ selector: {}, portLevelMtls: { '8080': { mode: 'DISABLE' } } }, false],
    [{ selector: { matchLabels: {} }, portLevelMtls: { '8080': { mode: 'DISABLE' } } }, false],
    [{ selector: { matchLabels: { 'bad key': 'x' } } }, false],
    [{ selector: { matchLabels: { app: 'bad value' } } }, false],
  ];
  for (const [spec, ok] of cases) {
    const o = pa(spec);
    const local = validateByLayer(o);
    const localErrors = [...local.schema, ...local.cel].filter((i) => i.severity === 'error');
    t.is(localErrors.length === 0, ok, `validator on ${JSON.stringify(spec)}`);
    const r = await cluster.kubectl(['apply', '--server-side', '--dry-run=server', '-f', '-'], {
      input: stringify(o),
      allowFailure: true,
    });
    t.is(r.code === 0, ok, `API server on ${JSON.stringify(spec)}: ${r.stderr}`);
    // The API server prints our CEL messages.
    for (const i of local.cel) t.true(r.stderr.includes(i.message), `${JSON.stringify(spec)}: ${r.stderr}`);
  }
});

kube.test("Istio's validation rules: the API server agrees with the validator's schema and CEL", async (t, cluster) => {
  await installCrds(cluster);
  const ns = await cluster.createNamespace('crds-istio');
  let refused = 0;
  let stored = 0;
  for (const rule of ISTIO_RULES) {
    for (const c of rule.cases) {
      const o = { ...c.object, metadata: { ...(c.object.metadata as Json), namespace: ns } };
      const local = validateByLayer(o);
      const schemaOrCel = [...local.schema, ...local.cel].filter((i) => i.severity === 'error');
      const what = `${rule.name}: ${JSON.stringify(c.object.spec)}`;
      const r = await cluster.kubectl(['apply', '--server-side', '--dry-run=server', '-f', '-'], {
        input: stringify(o),
        allowFailure: true,
      });
      // Refused by the API server exactly when the schema or CEL refuses; the rest is the webhook's.
      t.is(r.code === 0, schemaOrCel.length === 0, `${what}: ${r.stderr}`);
      if (r.code === 0) stored++;
      else refused++;
      if (local.schema.length === 0)
        for (const i of local.cel) t.true(r.stderr.includes(i.message), `${what}: ${r.stderr}`);
      else for (const i of local.schema) t.true(r.stderr.includes(i.path), `${what}: should name ${i.path}`);
    }
  }
  t.log(`${refused} refused, ${stored} stored`);
  t.true(refused >= 8 && stored >= 20);
});
