// Secure by default (design.md §5.8), against a real kube-apiserver: `trellis control-plane --kubeconfig`
// with the CA opens no plaintext xDS port unless `--xds-port` asks for one, and even then the CA is not
// served on it: a CA call there (with a valid ServiceAccount token) is refused with FAILED_PRECONDITION and
// a message that says why, while the same call on the TLS port gets a certificate. Skipped with one line
// when the peers are not built (failed under CI=true).
import anyTest from 'ava';
import * as grpc from '@grpc/grpc-js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { installObjects } from '../../deploy/manifest.js';
import { listeningSockets, useCluster, type Cluster } from '../helpers/cluster.js';
import { startTrellis, type LogLine, type TrellisProcess } from '../helpers/process.js';
import { CaClient, grpcError, makeCsr, tlsCaClient } from '../ca/ca-helpers.js';
import { installCrds } from './kube-helpers.js';
import { waitFor } from '../helpers/wait.js';

const kube = useCluster(anyTest);

/** `trellis control-plane --kubeconfig … --state-dir …` (the CA on) on free ports, plus `extra`. */
async function startKubeControlPlane(
  t: { teardown(fn: () => Promise<void> | void): void },
  cluster: Cluster,
  extra: readonly string[] = [],
): Promise<{ proc: TrellisProcess; listening: LogLine }> {
  await installCrds(cluster);
  await cluster.kubectl(['apply', '-f', '-'], {
    input: 'apiVersion: v1\nkind: Namespace\nmetadata: { name: trellis-system }\n',
  });
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-plaintext-'));
  const proc = startTrellis([
    'control-plane',
    '--kubeconfig',
    cluster.kubeconfigPath,
    '--state-dir',
    stateDir,
    '--secure-port',
    '0',
    '--monitoring-port',
    '0',
    '--webhook-port',
    '0',
    ...extra,
  ]);
  t.teardown(async () => {
    await proc.stop();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });
  const listening = await proc.waitForLog((l) => l.msg === 'control plane listening', 60_000);
  return { proc, listening };
}

function tcpListeners(proc: TrellisProcess): number[] {
  return [
    ...new Set(
      listeningSockets(proc.child.pid!)
        .filter((s) => s.protocol.startsWith('tcp'))
        .map((s) => s.port),
    ),
  ].sort((a, b) => a - b);
}

anyTest('the install runs Kubernetes mode without --xds-port: the plaintext port stays closed', (t) => {
  const deployment = installObjects().find((o) => o.kind === 'Deployment') as
    { spec: { template: { spec: { containers: { name: string; args?: string[] }[] } } } } | undefined;
  const containers = deployment?.spec.template.spec.containers ?? [];
  t.true(containers.length > 0, 'the install has a control-plane Deployment');
  for (const c of containers) {
    t.true(c.args?.includes('--kube'), `${c.name} runs in Kubernetes mode`);
    t.false(
      (c.args ?? []).some((a) => a.startsWith('--xds-port')),
      `${c.name} opens the plaintext port: ${(c.args ?? []).join(' ')}`,
    );
  }
});

kube.serial('Kubernetes mode: the plaintext xDS port is closed unless --xds-port asks for it', async (t, cluster) => {
  const { proc, listening } = await startKubeControlPlane(t, cluster);
  t.is(listening.xdsPort, undefined, 'no plaintext port in the log line');
  const secure = Number(listening.secureXdsPort);
  const monitoring = Number(listening.monitoringPort);
  t.true(secure > 0 && monitoring > 0);
  // What the process listens on (Linux /proc): the TLS port, the monitoring port and the webhook port
  // when the webhooks are served, nothing else.
  const webhook = proc.logs.find((l) => l.msg === 'admission webhooks listening');
  const served = [secure, monitoring, ...(webhook ? [Number(webhook.port)] : [])];
  t.deepEqual(
    tcpListeners(proc),
    served.sort((a, b) => a - b),
  );
  t.falsy(proc.logs.find((l) => String(l.msg).startsWith('plaintext xDS port open')));
});

kube.serial(
  'Kubernetes mode with --xds-port: xDS opens there, but a CA call on it is refused with the reason',
  async (t, cluster) => {
    const { proc, listening } = await startKubeControlPlane(t, cluster, ['--xds-port', '0']);
    const plaintext = Number(listening.xdsPort);
    const secure = Number(listening.secureXdsPort);
    t.true(plaintext > 0, 'the port asked for is open');
    t.true(tcpListeners(proc).includes(plaintext));
    t.truthy(proc.logs.find((l) => String(l.msg).startsWith('plaintext xDS port open in Kubernetes mode')));

    // A workload with a valid TokenRequest token (audience trellis-ca) and a CSR for its own identity.
    const ns = await cluster.createNamespace('plaintext-ca');
    const tr = await cluster.kubeConfig.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
      name: 'default',
      namespace: ns,
      body: { spec: { audiences: ['trellis-ca'], expirationSeconds: 600 } },
    });
    const token = tr.status?.token;
    if (!token) return t.fail('TokenRequest returned no token');
    const csr = await makeCsr(`spiffe://cluster.local/ns/${ns}/sa/default`);

    const onPlaintext = new CaClient(`127.0.0.1:${plaintext}`);
    t.teardown(() => onPlaintext.close());
    const err = await grpcError(onPlaintext.createCertificate(csr, { token }));
    t.is(err.code, grpc.status.FAILED_PRECONDITION);
    t.is(
      err.details,
      `the CA is served only over TLS on port ${secure} in Kubernetes mode, never on the plaintext xDS port ` +
        '(a token sent here would cross the network in clear text)',
    );
    // The audit line comes on the process's stdout, which may arrive after the gRPC answer.
    const audit = await waitFor(
      'the refusal in the audit log',
      () => proc.logs.find((l) => l.msg === 'ca: request refused' && l.decision === 'plaintext'),
      20_000,
    ).catch(() => undefined);
    t.truthy(audit, 'the refusal is in the audit log');

    // The same request over TLS is served: the refusal is about the port, not the caller.
    const { stdout: rootB64 } = await cluster.kubectl([
      'get',
      'secret',
      '-n',
      'trellis-system',
      'trellis-ca',
      '-o',
      'jsonpath={.data.root-cert\\.pem}',
    ]);
    const onTls = tlsCaClient(`127.0.0.1:${secure}`, Buffer.from(rootB64, 'base64').toString('utf8'));
    t.teardown(() => onTls.close());
    const chain = await onTls.createCertificate(csr, { token });
    t.true(chain.length >= 2);

    const metrics = await (await fetch(`http://127.0.0.1:${Number(listening.monitoringPort)}/metrics`)).text();
    t.regex(metrics, /trellis_ca_requests_total\{result="plaintext"\} 1\b/);
  },
);
