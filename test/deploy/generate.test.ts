// deploy/install.yaml and the chart are generated (deploy/generate.ts): the committed files must be what the
// generator makes, `trellis install` prints the same, and the RBAC is least privilege (no wildcards).
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { CHART_DIR, deployDir, generatedFiles, INSTALL_FILE } from '../../deploy/generate.js';
import { installObjects, type ManifestObject } from '../../deploy/manifest.js';
import { runInstall } from '../../deploy/install-command.js';
import { renderCrd, CRD_FILES, crdsDir } from '../../crds/generate.js';
import type { CrdKind } from '../../crds/schema.js';
import { repoRoot } from '../helpers/peer-paths.js';

function run(opts: Parameters<typeof runInstall>[0]): { code: number; stdout: string; stderr: string } {
  let stdout = '';
  let stderr = '';
  const code = runInstall(opts, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
  });
  return { code, stdout, stderr };
}

function objectsOf(text: string): ManifestObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as ManifestObject | null)
    .filter((o): o is ManifestObject => o !== null);
}

function find(objects: readonly ManifestObject[], kind: string, name: string): Record<string, unknown> {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name}`);
  return o as unknown as Record<string, unknown>;
}

test('the committed deploy/install.yaml and chart are what deploy/generate.ts makes (run npm run deploy)', (t) => {
  const files = generatedFiles();
  for (const [name, text] of files) {
    t.is(fs.readFileSync(path.join(deployDir, name), 'utf8'), text, `deploy/${name} is stale: run npm run deploy`);
  }
  const chart = path.join(deployDir, CHART_DIR);
  const onDisk = fs
    .readdirSync(chart, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(deployDir, path.join(e.parentPath, e.name)))
    .sort();
  t.deepEqual(onDisk, [...files.keys()].filter((f) => f !== INSTALL_FILE).sort());
});

test('install.yaml holds the CRDs exactly as crds/*.yaml', (t) => {
  const objects = objectsOf(fs.readFileSync(path.join(deployDir, INSTALL_FILE), 'utf8'));
  for (const kind of Object.keys(CRD_FILES) as CrdKind[]) {
    const file = fs.readFileSync(path.join(crdsDir, CRD_FILES[kind]), 'utf8');
    t.is(file, renderCrd(kind));
    const crd = objectsOf(file)[0]!;
    t.deepEqual(
      find(objects, 'CustomResourceDefinition', crd.metadata.name),
      crd as unknown as Record<string, unknown>,
    );
  }
});

test('`trellis install` with no options prints deploy/install.yaml', (t) => {
  const out = run({});
  t.is(out.code, 0);
  t.is(out.stdout, fs.readFileSync(path.join(deployDir, INSTALL_FILE), 'utf8'));
});

test('`trellis install` as a process prints deploy/install.yaml; a bad option exits 2', async (t) => {
  const run = promisify(execFile);
  const args = ['--import', 'tsx', 'control-plane/main.ts', 'install'];
  const out = await run(process.execPath, args, { cwd: repoRoot, maxBuffer: 64 * 1024 * 1024 });
  t.is(out.stdout, fs.readFileSync(path.join(deployDir, INSTALL_FILE), 'utf8'));
  const bad = await run(process.execPath, [...args, '--replicas', '0'], { cwd: repoRoot }).catch((err: unknown) => err);
  t.is((bad as { code?: number }).code, 2);
  t.regex((bad as { stderr?: string }).stderr ?? '', /--replicas <n>.*"0" is not a positive integer/);
});

test('`trellis install` options: image tag, registry, replicas, mesh config', (t) => {
  const dir = fs.mkdtempSync(path.join(fs.realpathSync('/tmp'), 'trellis-install-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const mesh = path.join(dir, 'mesh.yaml');
  fs.writeFileSync(mesh, 'trustDomain: example.org\nmtlsMode: STRICT\n');
  const out = run({ imageTag: 'dev-1', registry: 'localhost:5000', replicas: 3, meshConfig: mesh });
  t.is(out.code, 0, out.stderr);
  const objects = objectsOf(out.stdout);
  const deployment = find(objects, 'Deployment', 'trellisd') as {
    spec: { replicas: number; template: { spec: { containers: { image: string; args: string[] }[] } } };
  };
  t.is(deployment.spec.replicas, 3);
  t.is(deployment.spec.template.spec.containers[0]!.image, 'localhost:5000/trellis/control-plane:dev-1');
  t.true(deployment.spec.template.spec.containers[0]!.args.includes('--mesh-config=/etc/trellis/mesh/mesh.yaml'));
  const cm = find(objects, 'ConfigMap', 'trellis-mesh-config') as { data: Record<string, string> };
  t.is(cm.data['mesh.yaml'], 'trustDomain: example.org\nmtlsMode: STRICT\n');
  t.is(run({ registry: '' }).stdout.match(/image: trellis\/control-plane:/g)?.length, 1);
});

test('`trellis install` refuses a bad mesh config (naming the file and field) and a bad tag, exit 2', (t) => {
  const dir = fs.mkdtempSync(path.join(fs.realpathSync('/tmp'), 'trellis-install-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const mesh = path.join(dir, 'mesh.yaml');
  fs.writeFileSync(mesh, 'mtlsMode: SOMETIMES\n');
  const bad = run({ meshConfig: mesh });
  t.is(bad.code, 2);
  t.is(bad.stdout, '');
  t.regex(bad.stderr, /mesh\.yaml.*mtlsMode/);
  const missing = run({ meshConfig: path.join(dir, 'nope.yaml') });
  t.is(missing.code, 2);
  t.regex(missing.stderr, /nope\.yaml/);
  const tag = run({ imageTag: 'a b' });
  t.is(tag.code, 2);
  t.regex(tag.stderr, /--image-tag "a b"/);
});

test('RBAC: no wildcard verbs, resources or groups; webhook configurations only by name; Secrets read-only cluster-wide', (t) => {
  const objects = installObjects();
  const roles = objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role');
  t.is(roles.length, 2);
  for (const role of roles) {
    for (const rule of (role as unknown as { rules: Record<string, string[]>[] }).rules) {
      for (const field of ['apiGroups', 'resources', 'verbs', 'resourceNames']) {
        t.false(
          (rule[field] ?? []).some((v) => v.includes('*')),
          `${role.kind} ${JSON.stringify(rule)}: ${field}`,
        );
      }
      if ((rule.resources ?? []).some((r) => r.endsWith('webhookconfigurations'))) t.is(rule.resourceNames?.length, 1);
      if ((rule.resources ?? []).includes('secrets')) {
        // Cluster-wide, Secrets are only read (DestinationRule credentialName, served over SDS); in
        // trellis-system the CA's own Secret is created, and read by name.
        if (role.kind === 'ClusterRole') t.deepEqual(rule.verbs, ['get', 'list', 'watch']);
        else if (!(rule.verbs ?? []).every((v) => v === 'create')) t.deepEqual(rule.resourceNames, ['trellis-ca']);
      }
    }
  }
  t.is((find(objects, 'Role', 'trellisd') as { metadata: { namespace: string } }).metadata.namespace, 'trellis-system');
});

test('Service: 15012, 15017 and 15014, never the plaintext 15010; webhooks Fail, no side effects, 10 s', (t) => {
  const objects = installObjects();
  const svc = find(objects, 'Service', 'trellisd') as { spec: { ports: { port: number; name: string }[] } };
  t.deepEqual(
    svc.spec.ports.map((p) => p.port),
    [15012, 15017, 15014],
  );
  const text = JSON.stringify(objects.filter((o) => o.kind !== 'CustomResourceDefinition'));
  t.false(text.includes('15010'));
  for (const [kind, name, path_] of [
    ['MutatingWebhookConfiguration', 'trellis-sidecar-injector', '/inject'],
    ['ValidatingWebhookConfiguration', 'trellis-validator', '/validate'],
  ] as const) {
    const config = find(objects, kind, name) as { webhooks: Record<string, unknown>[] };
    for (const hook of config.webhooks) {
      t.is(hook.failurePolicy, 'Fail');
      t.is(hook.sideEffects, 'None');
      t.is(hook.timeoutSeconds, 10);
      t.deepEqual(hook.clientConfig, {
        service: { name: 'trellisd', namespace: 'trellis-system', path: path_, port: 15017 },
      });
    }
  }
  const injector = find(objects, 'MutatingWebhookConfiguration', 'trellis-sidecar-injector') as {
    webhooks: { namespaceSelector: { matchExpressions: { key: string; values: string[] }[] } }[];
  };
  t.is(injector.webhooks.length, 2);
  for (const hook of injector.webhooks) {
    const excluded = hook.namespaceSelector.matchExpressions.find((e) => e.key === 'kubernetes.io/metadata.name');
    t.deepEqual(excluded?.values, ['kube-public', 'kube-system', 'trellis-system']);
  }
});
