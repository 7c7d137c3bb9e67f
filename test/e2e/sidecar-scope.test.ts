// Sidecar scoping end to end: `trellis control-plane --config-dir` (a real process) and real
// @grpc/grpc-js-xds clients. A workload Sidecar (`role: scoped`) lets its proxies see only alpha: such a
// client calls alpha, cannot resolve beta (its Listener is not in its config, so every call fails), while an
// unscoped client of the same namespace calls beta; adding beta to the Sidecar's egress lets the very same
// running client call it. Nobody NACKs. With mesh config `scoping: automatic` (a control plane of its own), a
// client gets the Services whose AuthorizationPolicies name its service account, and only those.
import test from 'ava';
import { register } from '@grpc/grpc-js-xds';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  assertNoNacks,
  deployService,
  fqdn,
  MeshDir,
  tally,
  useMeshControlPlane,
  XdsEchoClient,
  type Manifest,
} from '../helpers/mesh-e2e.js';
import { startControlPlaneProcess } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';
import { fetchDescription, renderDescription } from '../../control-plane/debug-cli/describe.js';

register();

const NS = 'scoped';

const mesh = useMeshControlPlane(test);

function sidecar(hosts: string[]): Manifest {
  return {
    apiVersion: 'networking.trellis.dev/v1alpha1',
    kind: 'Sidecar',
    metadata: { name: 'scoped-clients', namespace: NS },
    spec: { workloadSelector: { labels: { role: 'scoped' } }, egress: [{ hosts }] },
  };
}

test('a scoped proxyless client gets only its egress hosts: alpha resolves, beta does not until the Sidecar names it', async (t) => {
  const alpha = await deployService({
    dir: mesh.dir,
    controlPlane: mesh.controlPlane,
    service: 'alpha',
    namespace: NS,
    backends: [{ pod: 'alpha-0' }],
  });
  t.teardown(() => alpha.close());
  const beta = await deployService({
    dir: mesh.dir,
    controlPlane: mesh.controlPlane,
    service: 'beta',
    namespace: NS,
    backends: [{ pod: 'beta-0' }],
  });
  t.teardown(() => beta.close());
  await mesh.dir.write('sidecar', [sidecar([`./${fqdn('alpha', NS)}`])]);

  const clients: XdsEchoClient[] = [];
  t.teardown(() => clients.forEach((c) => c.close()));
  const client = (service: string, id: string, labels?: Record<string, string>): XdsEchoClient => {
    const c = new XdsEchoClient(`${fqdn(service, NS)}:8080`, mesh.controlPlane, `${id}.${NS}`, {
      namespace: NS,
      ...(labels ? { metadata: { LABELS: labels } } : {}),
    });
    clients.push(c);
    return c;
  };

  // Beta itself is healthy: an unscoped client of the namespace calls it.
  const open = client('beta', 'scope-open');
  await open.ready(30_000);
  t.deepEqual(tally(await open.calls(10)), { 'beta-0': 10 });

  // The scoped client reaches alpha.
  const toAlpha = client('alpha', 'scope-a', { role: 'scoped' });
  await toAlpha.ready(30_000);
  t.deepEqual(tally(await toAlpha.calls(10)), { 'alpha-0': 10 });

  // `trellis describe pod` says what the scoped proxy gets and why (the proxy's labels; no Pod object).
  const described = await fetchDescription(`http://127.0.0.1:${mesh.cp.monitoringPort}`, 'pod', `scope-a.${NS}`);
  t.like(described.scope, { level: 'workload', all: false, sidecar: { kind: 'Sidecar', name: 'scoped-clients' } });
  t.deepEqual(described.scope?.services, [
    { fqdn: fqdn('alpha', NS), reasons: [`Sidecar ${NS}/scoped-clients egress ./${fqdn('alpha', NS)}`] },
  ]);
  t.regex(
    renderDescription(described, Date.now()),
    /Scope: 1 Service\(s\); Sidecar scoped\/scoped-clients \(workload\)/,
  );

  // ...and cannot resolve beta: no Listener, no route, no cluster for it in its config.
  const toBeta = client('beta', 'scope-b', { role: 'scoped' });
  const refused = await toBeta.calls(5, { deadlineMs: 3_000 });
  t.log(
    `scoped client → beta: ${JSON.stringify(tally(refused))}; ${refused.map((r) => (r.ok ? '' : r.details)).find(Boolean)}`,
  );
  t.true(
    refused.every((r) => !r.ok),
    'a scoped client called a host outside its Sidecar',
  );

  // Widen the Sidecar: the same running client now calls beta.
  await mesh.dir.write('sidecar', [sidecar([`./${fqdn('alpha', NS)}`, `./${fqdn('beta', NS)}`])]);
  const ok = await waitFor(
    'the scoped client to call beta after the Sidecar named it',
    async () => {
      const r = await toBeta.call({ deadlineMs: 2_000 });
      return r.ok ? r : undefined;
    },
    60_000,
  );
  t.is(ok.ok && ok.server, 'beta-0');
  t.deepEqual(tally(await toAlpha.calls(5)), { 'alpha-0': 5 }, 'alpha still works for the scoped client');
  await assertNoNacks(
    t,
    mesh.cp.monitoringPort,
    (id) => id.startsWith('scope-') || id.startsWith('alpha-') || id.startsWith('beta-'),
  );
});

function allowFrom(service: string, namespace: string, serviceAccount: string): Manifest {
  return {
    apiVersion: 'security.trellis.dev/v1alpha1',
    kind: 'AuthorizationPolicy',
    metadata: { name: `${service}-callers`, namespace },
    spec: {
      selector: { matchLabels: { app: service } },
      rules: [{ from: [{ source: { principals: [`cluster.local/ns/${namespace}/sa/${serviceAccount}`] } }] }],
    },
  };
}

test('scoping: automatic: a client resolves the Services whose ALLOW policies name its service account, and no other', async (t) => {
  const ns = 'auto';
  const dir = await MeshDir.create();
  const configFile = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-scope-')), 'mesh.yaml');
  await fs.writeFile(configFile, 'scoping: automatic\n');
  const cp = await startControlPlaneProcess([
    '--config-dir',
    dir.dir,
    '--mesh-config',
    configFile,
    '--debounce-after',
    '20ms',
  ]);
  t.teardown(async () => {
    await cp.stop();
    await dir.cleanup();
    await fs.rm(path.dirname(configFile), { recursive: true, force: true });
  });
  const controlPlane = `127.0.0.1:${cp.xdsPort}`;
  const deploy = (service: string) =>
    deployService({ dir, controlPlane, service, namespace: ns, backends: [{ pod: `${service}-0` }] });
  const gamma = await deploy('gamma');
  t.teardown(() => gamma.close());
  const delta = await deploy('delta');
  t.teardown(() => delta.close());
  await dir.write('policies', [allowFrom('gamma', ns, 'caller'), allowFrom('delta', ns, 'other')]);

  const clients: XdsEchoClient[] = [];
  t.teardown(() => clients.forEach((c) => c.close()));
  const client = (service: string, id: string, serviceAccount: string): XdsEchoClient => {
    const c = new XdsEchoClient(`${fqdn(service, ns)}:8080`, controlPlane, `${id}.${ns}`, {
      namespace: ns,
      metadata: { SERVICE_ACCOUNT: serviceAccount },
    });
    clients.push(c);
    return c;
  };
  const callerToGamma = client('gamma', 'auto-caller-g', 'caller');
  await callerToGamma.ready(30_000);
  t.deepEqual(tally(await callerToGamma.calls(5)), { 'gamma-0': 5 });
  const otherToDelta = client('delta', 'auto-other-d', 'other');
  await otherToDelta.ready(30_000);
  t.deepEqual(tally(await otherToDelta.calls(5)), { 'delta-0': 5 });

  // caller is not named by delta's policy: delta is not in its config.
  const callerToDelta = client('delta', 'auto-caller-d', 'caller');
  const refused = await callerToDelta.calls(3, { deadlineMs: 3_000 });
  t.true(
    refused.every((r) => !r.ok),
    `caller resolved delta: ${JSON.stringify(tally(refused))}`,
  );

  // describe says why caller has gamma.
  const described = await fetchDescription(`http://127.0.0.1:${cp.monitoringPort}`, 'pod', `auto-caller-g.${ns}`);
  t.like(described.scope, { scoping: 'automatic', all: false, level: 'none' });
  t.deepEqual(described.scope?.services, [
    { fqdn: fqdn('gamma', ns), reasons: [`AuthorizationPolicy ${ns}/gamma-callers allows ${ns}/sa/caller`] },
  ]);
  await assertNoNacks(t, cp.monitoringPort, (id) => id.startsWith('auto-'));
});
