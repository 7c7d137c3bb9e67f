// examples/kubernetes/: the manifests a user applies. Every routing example passes `trellis validate`
// against the app's Services (with the subsets it needs); every Deployment is injected with the template
// it asks for; every image is the examples image `npm run images` builds; the walkthrough names the same
// image and is valid bash.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import YAML from 'yaml';
import { runValidate } from '../../crds/validate-command.js';
import { buildRef } from '../../deploy/images/build.js';
import { DEFAULT_REGISTRY, DEFAULT_TAG } from '../../injector/images.js';
import { injectDocument } from '../../injector/inject-run.js';
import { repoRoot } from '../helpers/peer-paths.js';

const dir = path.join(repoRoot, 'examples', 'kubernetes');
const app = path.join(dir, 'app');
const routing = path.join(dir, 'routing');
const EXAMPLES_IMAGE = buildRef('examples', { tag: DEFAULT_TAG, registry: DEFAULT_REGISTRY });

function documents(file: string): Record<string, unknown>[] {
  return YAML.parseAllDocuments(fs.readFileSync(file, 'utf8')).map((d) => d.toJS() as Record<string, unknown>);
}

async function validate(paths: readonly string[]): Promise<{ status: number; out: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (out += d.toString()));
  const status = await runValidate(paths, { stdin: new PassThrough(), stdout, stderr, progressAfterMs: 60_000 });
  return { status, out };
}

const needsSubsets = new Set(['canary-80-20.yaml', 'canary-50-50.yaml', 'header-routing.yaml']);

for (const file of fs.readdirSync(routing).filter((f) => f.endsWith('.yaml'))) {
  test(`routing/${file} passes trellis validate with the app's Services`, async (t) => {
    const paths = [path.join(routing, file), app];
    if (needsSubsets.has(file)) paths.push(path.join(routing, 'reviews-subsets.yaml'));
    const { status, out } = await validate(paths);
    t.is(status, 0, out);
    t.regex(out, / 0 errors, 0 warnings/);
  });
}

test('no manifest of app/ or routing/ names a namespace (kubectl apply -n chooses it)', (t) => {
  for (const folder of [app, routing]) {
    for (const file of fs.readdirSync(folder).filter((f) => f.endsWith('.yaml'))) {
      for (const doc of documents(path.join(folder, file))) {
        t.is((doc.metadata as { namespace?: string }).namespace, undefined, `${file} ${String(doc.kind)}`);
      }
    }
  }
  const [ns] = documents(path.join(dir, 'namespace.yaml'));
  t.deepEqual((ns!.metadata as { labels: unknown }).labels, { 'trellis.dev/inject': 'enabled' });
});

test('every Deployment is injected with its template, runs the examples image, and has a ServiceAccount', (t) => {
  const accounts = new Set(
    documents(path.join(app, 'serviceaccounts.yaml')).map((d) => (d.metadata as { name: string }).name),
  );
  const templates: Record<string, string> = {};
  for (const file of fs.readdirSync(app).filter((f) => f.endsWith('.yaml'))) {
    for (const doc of documents(path.join(app, file)).filter((d) => d.kind === 'Deployment')) {
      const name = (doc.metadata as { name: string }).name;
      const spec = (doc.spec as { template: { spec: { serviceAccountName: string; containers: { image: string }[] } } })
        .template.spec;
      t.true(accounts.has(spec.serviceAccountName), `${name}: ServiceAccount ${spec.serviceAccountName}`);
      t.is(spec.containers[0]!.image, EXAMPLES_IMAGE, name);
      const result = injectDocument(doc, {
        kubernetesMinor: 34,
        meshConfig: { trustDomain: 'cluster.local', mtlsMode: 'STRICT' },
      });
      if ('error' in result) {
        t.fail(`${name}: ${result.error}`);
        continue;
      }
      t.true(result.injected, name);
      const injected = result.object as { spec: { template: { metadata: { annotations: Record<string, string> } } } };
      templates[name] = (
        JSON.parse(injected.spec.template.metadata.annotations['trellis.dev/status']!) as {
          template: string;
        }
      ).template;
    }
  }
  t.deepEqual(templates, {
    details: 'envoy',
    frontend: 'grpc',
    ratings: 'grpc',
    'reviews-v1': 'grpc',
    'reviews-v2': 'grpc',
    'reviews-v3': 'grpc',
  });
});

test('walkthrough.sh is valid bash and names the examples image', (t) => {
  const script = path.join(dir, 'walkthrough.sh');
  execFileSync('bash', ['-n', script]);
  t.true(fs.readFileSync(script, 'utf8').includes(`DEFAULT_IMAGE="${EXAMPLES_IMAGE}"`));
  t.true((fs.statSync(script).mode & 0o111) !== 0, 'executable');
});
