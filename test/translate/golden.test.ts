// Golden files of the translator (issue 5): each `test/golden/<scenario>/input.yaml` is a mesh as a
// FileSource reads it (Namespace, Services, Pods, EndpointSlices, VirtualServices, DestinationRules) plus
// one `kind: GoldenScenario` document naming the mesh config; the test builds the snapshot the same way
// (parseManifests + buildSnapshot with the CRD validator), generates the config of an Envoy sidecar and
// of a proxyless gRPC application for the `frontend-0` Pod, and compares it with `envoy.json` and
// `grpc.json`: proto3 JSON with `@type`, resources by type in push order (CDS, EDS, LDS, RDS), each list in
// the translator's order. Every resource must also pass Envoy's own validation (tools/peers/envoy-validate).
//
//   UPDATE_GOLDEN=1 npx ava test/translate/golden.test.ts     # rewrite the goldens, then review the diff
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import * as prettier from 'prettier';
import YAML from 'yaml';
import { formatIssue, validateRoutingResource } from '../../crds/validator.js';
import {
  anyToJson,
  encodeAny,
  packAny,
  shortTypeName,
  TypeUrl,
  type Message,
} from '../../control-plane/envoy/protos.js';
import { buildSnapshot } from '../../control-plane/model/build-snapshot.js';
import { parseManifests } from '../../control-plane/sources/manifests.js';
import type { MeshConfig } from '../../control-plane/translate/context.js';
import { generateResources } from '../../control-plane/translate/generator.js';
import { parseMeshConfig } from '../../control-plane/translate/mesh-config.js';
import type { ProxyInfo, ProxyType } from '../../control-plane/xds/node.js';
import { EnvoyValidateUnavailableError, validateEnvoyResources } from '../helpers/envoy-validate.js';
import { repoRoot } from '../helpers/peer-paths.js';

const goldenDir = path.join(repoRoot, 'test', 'golden');
const update = process.env.UPDATE_GOLDEN === '1';
const TYPE_ORDER = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration];

interface Scenario {
  readonly mesh: MeshConfig;
  readonly proxy: (type: ProxyType) => ProxyInfo;
}

/** The GoldenScenario document: `mesh` (the --mesh-config fields) and optional `proxy` overrides. */
function readScenario(text: string, file: string): Scenario {
  const doc = YAML.parseAllDocuments(text)
    .map((d) => d.toJS() as unknown)
    .find(
      (d): d is Record<string, unknown> =>
        typeof d === 'object' && d !== null && 'kind' in d && d.kind === 'GoldenScenario',
    );
  const mesh = parseMeshConfig(doc?.mesh ?? {}, `${file}: GoldenScenario.mesh`);
  const overrides = (doc?.proxy ?? {}) as Partial<Omit<ProxyInfo, 'proxyType'>>;
  return {
    mesh,
    proxy: (proxyType) => ({
      id: 'frontend-0.shop',
      cluster: 'frontend.shop',
      namespace: 'shop',
      serviceAccount: 'frontend',
      labels: { app: 'frontend', 'trellis.dev/tlsMode': 'mesh' },
      instanceIps: ['10.0.1.10'],
      trustDomain: mesh.trustDomain,
      locality: { region: '', zone: 'zone-a', subZone: '' },
      userAgent: '',
      ...overrides,
      proxyType,
    }),
  };
}

function toGoldenJson(resources: ReadonlyMap<string, readonly Message[]>): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const typeUrl of [...TYPE_ORDER, ...[...resources.keys()].filter((t) => !TYPE_ORDER.includes(t)).sort()]) {
    const list = resources.get(typeUrl);
    if (list) out[shortTypeName(typeUrl)] = list.map((m) => anyToJson(packAny(m)));
  }
  return out;
}

let validatorNoted = false;

const scenarios = fs
  .readdirSync(goldenDir, { withFileTypes: true })
  .filter((e) => e.isDirectory() && fs.existsSync(path.join(goldenDir, e.name, 'input.yaml')))
  .map((e) => e.name)
  .sort();

test('every scenario the issue lists has a golden directory', (t) => {
  for (const name of [
    'canary-90-10',
    'header-match-subset',
    'retries',
    'timeouts',
    'fault',
    'mirror',
    'connection-pool-outlier',
    'consistent-hash',
    'mtls-strict',
    'mtls-permissive',
    'tcp-split',
  ]) {
    t.true(scenarios.includes(name), `test/golden/${name}/input.yaml is missing`);
  }
});

for (const name of scenarios) {
  test(`golden: ${name}`, async (t) => {
    const dir = path.join(goldenDir, name);
    const file = path.join(dir, 'input.yaml');
    const text = fs.readFileSync(file, 'utf8');
    const scenario = readScenario(text, `test/golden/${name}/input.yaml`);
    const parsed = parseManifests(text, `${name}/input.yaml`);
    t.true(parsed.ok, `${name}/input.yaml does not parse`);
    const snapshot = buildSnapshot(parsed.objects, { validate: validateRoutingResource, formatIssue });
    // The input must be valid: a golden of a half-rejected mesh would pin the wrong thing.
    const problems = snapshot.problems.filter((p) => p.severity !== 'info').map((p) => p.message);
    t.deepEqual(problems, [], 'the scenario has problems');
    t.true(
      snapshot.statuses.every((s) => s.reason === 'Accepted'),
      snapshot.statuses.map((s) => `${s.kind} ${s.name}: ${s.message}`).join('; '),
    );

    const encoded: Uint8Array[] = [];
    for (const proxyType of ['envoy', 'grpc'] as const) {
      const resources = generateResources({ snapshot, proxy: scenario.proxy(proxyType), mesh: scenario.mesh });
      // Deterministic: a second generation gives byte-identical resources.
      const again = generateResources({ snapshot, proxy: scenario.proxy(proxyType), mesh: scenario.mesh });
      const golden = toGoldenJson(resources);
      t.deepEqual(toGoldenJson(again), golden, `${proxyType}: a second generation differs`);
      for (const list of resources.values()) for (const m of list) encoded.push(encodeAny(packAny(m)));

      const goldenFile = path.join(dir, `${proxyType}.json`);
      // Written as Prettier formats it, so `npm run lint` (prettier --check) passes on the goldens.
      const textOut = await prettier.format(JSON.stringify(golden, null, 2), {
        ...(await prettier.resolveConfig(goldenFile)),
        filepath: goldenFile,
      });
      if (update || !fs.existsSync(goldenFile)) {
        fs.writeFileSync(goldenFile, textOut);
        t.log(`wrote test/golden/${name}/${proxyType}.json`);
      } else {
        t.deepEqual(
          golden,
          JSON.parse(fs.readFileSync(goldenFile, 'utf8')) as unknown,
          `${proxyType} config differs from test/golden/${name}/${proxyType}.json (UPDATE_GOLDEN=1 rewrites it; review the diff)`,
        );
      }
    }

    // Envoy's own validation of every resource, for both proxy types.
    try {
      const results = await validateEnvoyResources(encoded);
      const bad = results.filter((r) => r.errors.length > 0);
      t.deepEqual(
        bad.map((r) => `${r.typeUrl} "${r.name}": ${r.errors.join('; ')}`),
        [],
        'resources fail Envoy validation',
      );
    } catch (err) {
      if (!(err instanceof EnvoyValidateUnavailableError) || process.env.CI === 'true') throw err;
      if (!validatorNoted) t.log(`Envoy validation skipped: ${err.message}`);
      validatorNoted = true;
    }
  });
}
