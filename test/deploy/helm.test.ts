// The Helm chart deploy/helm/trellis/ with the real helm (v4.3.2, built by `npm run peers -- helm`):
// `helm lint` passes, and `helm template` renders the objects of deploy/install.yaml with the default
// values (all but the Namespace, which Helm leaves to `helm install --create-namespace`), and the objects
// `trellis install` prints with the same settings when values are set. Skipped with one line when helm
// is not built (failed under CI=true).
import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { CHART_DIR, deployDir, INSTALL_FILE } from '../../deploy/generate.js';
import { installObjects, type InstallOptions, type ManifestObject } from '../../deploy/manifest.js';
import { peerBinary } from '../helpers/peer-paths.js';

const run = promisify(execFile);
const chart = path.join(deployDir, CHART_DIR);

function helmBinary(t: ExecutionContext): string | undefined {
  const helm = peerBinary('helm');
  if (helm) return helm;
  const message = 'helm is not built: run `npm run peers -- helm` (tools/peers/helm)';
  if (process.env.CI === 'true') t.fail(message);
  else {
    t.log(`skipped: ${message}`);
    t.pass();
  }
  return undefined;
}

function objectsOf(text: string): ManifestObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as ManifestObject | null)
    .filter((o): o is ManifestObject => o !== null);
}

/** Objects sorted by kind and name, so two renderings compare whatever their order. */
function sorted(objects: readonly ManifestObject[]): ManifestObject[] {
  const key = (o: ManifestObject): string => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
  return [...objects].sort((a, b) => key(a).localeCompare(key(b)));
}

async function template(helm: string, args: readonly string[] = []): Promise<ManifestObject[]> {
  const out = await run(
    helm,
    ['template', 'trellis', chart, '--include-crds', '--namespace', 'trellis-system', ...args],
    {
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  return objectsOf(out.stdout);
}

test('helm lint deploy/helm/trellis passes', async (t) => {
  const helm = helmBinary(t);
  if (!helm) return;
  const version = await run(helm, ['version', '--short']);
  t.regex(version.stdout, /^v4\.3\.2/);
  const out = await run(helm, ['lint', chart, '--strict']);
  t.regex(out.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
});

test('helm template with the default values renders the objects of deploy/install.yaml (but the Namespace)', async (t) => {
  const helm = helmBinary(t);
  if (!helm) return;
  const rendered = await template(helm);
  const install = objectsOf(fs.readFileSync(path.join(deployDir, INSTALL_FILE), 'utf8'));
  t.deepEqual(
    install.filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name),
    ['trellis-system'],
  );
  t.deepEqual(sorted(rendered), sorted(install.filter((o) => o.kind !== 'Namespace')));
});

test('helm template with values set renders what `trellis install` prints with the same options', async (t) => {
  const helm = helmBinary(t);
  if (!helm) return;
  const rendered = await template(helm, [
    '--set',
    'replicas=3',
    '--set',
    'image.tag=dev-1',
    '--set',
    'image.registry=localhost:5000',
    '--set',
    'image.pullPolicy=Never',
    '--set-json',
    'meshConfig={"mtlsMode":"STRICT","trustDomain":"example.org"}',
  ]);
  const options: InstallOptions = {
    replicas: 3,
    imageTag: 'dev-1',
    registry: 'localhost:5000',
    imagePullPolicy: 'Never',
    meshConfig: 'mtlsMode: STRICT\ntrustDomain: example.org\n',
  };
  t.deepEqual(sorted(rendered), sorted(installObjects(options).filter((o) => o.kind !== 'Namespace')));
  const noRegistry = await template(helm, ['--set', 'image.registry=']);
  const deployment = noRegistry.find((o) => o.kind === 'Deployment') as unknown as {
    spec: { template: { spec: { containers: { image: string }[] } } };
  };
  t.regex(deployment.spec.template.spec.containers[0]!.image, /^trellis\/control-plane:/);
});
