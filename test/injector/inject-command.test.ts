// `trellis inject` as a real process: multi-document YAML in, injected YAML out; other kinds and skipped
// pods unchanged; the same pod as the /inject webhook; errors as `Kind ns/name: field: message`, exit 1.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import YAML from 'yaml';
import { createInjectHandler, type MutatingAdmissionResponse } from '../../injector/admission.js';
import { applyPodPatch, type Operation } from '../../injector/patch.js';
import type { Pod } from '../../injector/types.js';
import { repoRoot } from '../helpers/peer-paths.js';
import { IMAGE, probesPod } from './pods.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function trellis(args: readonly string[], input = ''): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'control-plane/main.ts', ...args], {
      cwd: repoRoot,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

const template = (app: string) => ({
  metadata: { labels: { app } },
  spec: { containers: [{ name: app, image: `${app}:1` }] },
});

const workloads = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'trellis.dev/inject': 'enabled' } } },
  { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop' }, spec: { ports: [{ port: 80 }] } },
  {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'shop' },
    spec: { template: template('web') },
  },
  {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: 'db', namespace: 'shop' },
    spec: { template: template('db') },
  },
  {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: 'agent', namespace: 'shop' },
    spec: { template: template('agent') },
  },
  {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name: 'rs', namespace: 'shop' },
    spec: { template: template('rs') },
  },
  {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'migrate', namespace: 'shop' },
    spec: { template: { ...template('migrate'), spec: { ...template('migrate').spec, restartPolicy: 'Never' } } },
  },
  {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name: 'nightly', namespace: 'shop' },
    spec: { schedule: '0 3 * * *', jobTemplate: { spec: { template: template('nightly') } } },
  },
  {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'skip', namespace: 'shop', annotations: { 'trellis.dev/inject': 'false' } },
    spec: { containers: [{ name: 'skip', image: 'skip:1' }] },
  },
  { ...probesPod(), metadata: { ...probesPod().metadata, namespace: 'shop' } },
];

function podAt(doc: Record<string, unknown>): Pod {
  const kind = doc.kind as string;
  const spec = doc.spec as Record<string, Record<string, unknown>>;
  if (kind === 'Pod') return doc as Pod;
  if (kind === 'CronJob') return (spec.jobTemplate!.spec as Record<string, unknown>).template as Pod;
  return spec.template as Pod;
}

test('multi-document YAML: every pod template injected, the rest unchanged; the Pod equals the webhook result', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-inject-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const meshConfig = path.join(dir, 'mesh.yaml');
  fs.writeFileSync(meshConfig, 'trustDomain: example.org\nmtlsMode: STRICT\n');
  const file = path.join(dir, 'in.yaml');
  const input = `# the shop\n${workloads.map((w) => YAML.stringify(w)).join('---\n')}`;
  fs.writeFileSync(file, input);
  const run = await trellis([
    'inject',
    '-f',
    file,
    '--mesh-config',
    meshConfig,
    '--image-tag',
    IMAGE.tag,
    '--image-registry',
    IMAGE.registry,
    '--control-plane',
    'cp.example:15012',
  ]);
  t.is(run.code, 0, run.stderr);
  const docs = YAML.parseAllDocuments(run.stdout).map((d) => d.toJS() as Record<string, unknown>);
  t.is(docs.length, workloads.length);
  t.deepEqual(docs.slice(0, 2), workloads.slice(0, 2), 'Namespace and Service pass through');
  for (const doc of docs.slice(2, 8)) {
    const pod = podAt(doc);
    t.deepEqual(
      pod.spec!.initContainers!.map((c) => c.name),
      ['trellis-init', 'trellis-proxy'],
      `${String(doc.kind)}`,
    );
    const args = pod.spec!.initContainers![1]!.args as string[];
    t.is(args[args.indexOf('--control-plane') + 1], 'cp.example:15012');
    t.is(args[args.indexOf('--trust-domain') + 1], 'example.org');
    t.is(pod.spec!.initContainers![1]!.image, 'registry.test/trellis/proxy:v-test');
  }
  t.deepEqual(docs[8], workloads[8], 'the opted-out pod is unchanged');

  // The same pod as the webhook, with the same mesh settings.
  const handler = createInjectHandler({
    image: IMAGE,
    controlPlane: 'cp.example:15012',
    meshConfig: { trustDomain: 'example.org', mtlsMode: 'STRICT' },
  });
  const original = workloads[9] as Pod;
  const response = handler({
    uid: 'u',
    kind: { group: '', version: 'v1', kind: 'Pod' },
    namespace: 'shop',
    operation: 'CREATE',
    object: original,
  }).response as MutatingAdmissionResponse;
  const patch = JSON.parse(Buffer.from(response.patch!, 'base64').toString('utf8')) as Operation[];
  t.deepEqual(docs[9], applyPodPatch(original, patch));
  t.is(podAt(docs[9]!).spec!.containers[0]!.readinessProbe!.httpGet!.path, '/app-health/app/readyz');
});

test('stdin, --template grpc, --kubernetes-version 1.28; errors are listed and nothing is written', async (t) => {
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'g', namespace: 'x' }, spec: template('g').spec };
  const grpc = await trellis(
    ['inject', '-f', '-', '--template', 'grpc', '--kubernetes-version', '1.28'],
    YAML.stringify(pod),
  );
  t.is(grpc.code, 0, grpc.stderr);
  const out = YAML.parse(grpc.stdout) as Pod;
  t.deepEqual(
    out.spec!.containers.map((c) => c.name),
    ['trellis-proxy', 'g'],
  );
  t.is(out.spec!.initContainers, undefined);
  t.is(out.spec!.containers[1]!.env![0]!.name, 'GRPC_XDS_BOOTSTRAP');

  const bad = [
    { ...pod, metadata: { name: 'a', namespace: 'x', annotations: { 'trellis.dev/template': 'mesh' } } },
    {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'j' },
      spec: { template: { spec: { containers: [{ name: 'j', ports: [{ containerPort: 15090 }] }] } } },
    },
    pod,
  ];
  const refused = await trellis(['inject', '-f', '-'], bad.map((d) => YAML.stringify(d)).join('---\n'));
  t.is(refused.code, 1);
  t.is(refused.stdout, '');
  t.deepEqual(refused.stderr.trim().split('\n'), [
    'Pod x/a: metadata.annotations[trellis.dev/template]: must be envoy or grpc, not "mesh"',
    'Job default/j: spec.template.spec.containers[0].ports[0].containerPort: 15090 is a port of the sidecar (15000, 15001, 15006, 15020, 15021, 15090)',
  ]);
  const unreadable = await trellis(['inject', '-f', '/nonexistent/x.yaml']);
  t.is(unreadable.code, 2);
  t.regex(unreadable.stderr, /^error: \/nonexistent\/x\.yaml: cannot read: /);
});
