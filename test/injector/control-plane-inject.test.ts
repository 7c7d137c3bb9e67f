// The control plane serves /inject beside /validate on its webhook port: in local mode with a mesh whose
// PeerAuthentication makes a namespace STRICT, a Pod there gets its HTTP probes rewritten (the mTLS mode
// comes from the mesh model), a Pod elsewhere keeps them; trellis_injections_total and the latency
// histogram are on /metrics.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { startControlPlane } from '../../control-plane/control-plane.js';
import { silentLogger } from '../../control-plane/logger.js';
import type { Operation } from '../../injector/patch.js';
import { applyPodPatch } from '../../injector/patch.js';
import type { Pod } from '../../injector/types.js';
import { request } from '../helpers/cluster.js';
import { probesPod } from './pods.js';

test('/inject on the control plane: probe rewriting follows the mesh PeerAuthentications; metrics', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-cp-inject-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const certFile = path.join(dir, 'tls.crt');
  const keyFile = path.join(dir, 'tls.key');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1'].concat([
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ]),
    { stdio: 'ignore' },
  );
  const mesh = path.join(dir, 'mesh');
  fs.mkdirSync(mesh);
  fs.writeFileSync(
    path.join(mesh, 'strict.yaml'),
    'apiVersion: security.trellis.dev/v1alpha1\nkind: PeerAuthentication\nmetadata: { name: default, namespace: secure }\nspec: { mtls: { mode: STRICT } }\n',
  );
  const cp = await startControlPlane({
    logger: silentLogger,
    xdsPort: 0,
    monitoringPort: 0,
    configDir: mesh,
    webhook: { port: 0, certFile, keyFile },
  });
  t.teardown(() => cp.close());
  const ca = fs.readFileSync(certFile, 'utf8');

  const inject = async (namespace: string): Promise<Pod> => {
    const r = await request(`https://127.0.0.1:${cp.webhookPort!}/inject`, {
      method: 'POST',
      ca,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: `u-${namespace}`,
          kind: { group: '', version: 'v1', kind: 'Pod' },
          namespace,
          operation: 'CREATE',
          object: probesPod(),
        },
      }),
    });
    t.is(r.status, 200, r.body);
    const response = (
      JSON.parse(r.body) as { response: { uid: string; allowed: boolean; patchType: string; patch: string } }
    ).response;
    t.is(response.uid, `u-${namespace}`);
    t.true(response.allowed);
    t.is(response.patchType, 'JSONPatch');
    return applyPodPatch(
      probesPod(),
      JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as Operation[],
    );
  };
  const strict = await inject('secure');
  t.is(strict.spec!.containers[0]!.readinessProbe!.httpGet!.path, '/app-health/app/readyz');
  const permissive = await inject('open');
  t.deepEqual(permissive.spec!.containers, probesPod().spec!.containers);

  const metrics = await request(`http://127.0.0.1:${cp.monitoringPort}/metrics`);
  t.regex(metrics.body, /trellis_injections_total\{result="injected"\} 2/);
  t.regex(metrics.body, /trellis_injection_duration_seconds_count\{result="injected"\} 2/);
});
