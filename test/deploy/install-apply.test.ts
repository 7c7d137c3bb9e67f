// deploy/install.yaml against the real kube-apiserver: a server-side dry run of every object is accepted
// (schemas, CRDs, RBAC, webhook configurations). The Deployment's image is never pulled (no kubelet).
import anyTest from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { deployDir, INSTALL_FILE } from '../../deploy/generate.js';
import { installObjects } from '../../deploy/manifest.js';
import { useCluster } from '../helpers/cluster.js';

const kube = useCluster(anyTest);

kube.test('kubectl apply --dry-run=server -f deploy/install.yaml is accepted, every object', async (t, cluster) => {
  // Namespaced objects need their namespace to exist (a dry-run creates nothing).
  await cluster.kubectl(['create', 'namespace', 'trellis-system']);
  const file = path.join(deployDir, INSTALL_FILE);
  const res = await cluster.kubectl(['apply', '--dry-run=server', '-f', file], { allowFailure: true });
  t.is(res.code, 0, res.stderr);
  const lines = res.stdout.trim().split('\n');
  const objects = installObjects();
  t.is(lines.length, objects.length, res.stdout);
  for (const o of objects) {
    const group = o.apiVersion.includes('/') ? o.apiVersion.slice(0, o.apiVersion.indexOf('/')) : '';
    const resource = `${o.kind.toLowerCase()}${group ? `.${group}` : ''}/${o.metadata.name}`;
    t.true(
      lines.some((l) => l.startsWith(`${resource} `) && l.endsWith('(server dry run)')),
      `${resource} in:\n${res.stdout}`,
    );
  }
  // The server-side dry run really ran the admission chain: a broken copy is refused, naming the field.
  const broken = fs.readFileSync(file, 'utf8').replace('failurePolicy: Fail', 'failurePolicy: Sometimes');
  const refused = await cluster.kubectl(['apply', '--dry-run=server', '-f', '-'], {
    input: broken,
    allowFailure: true,
  });
  t.not(refused.code, 0);
  t.regex(refused.stderr, /failurePolicy/);
});
