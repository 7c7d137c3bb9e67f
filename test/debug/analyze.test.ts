// `trellis analyze` against a real kube-apiserver (no controllers, no kubelet: Pods stay Pending, which is
// all analyze needs). A namespace whose Pods are created first and which is labelled for injection
// afterwards: before the label there is no sidecar finding; after it, the Deployment's Pods (through their
// ReplicaSet) are one NoSidecar finding with `kubectl rollout restart deployment/…`, a bare Pod one with a
// replace, an opted-out Pod an InjectionSkipped note. A Pod injected by an older injector (another image
// tag) is OutdatedSidecar; one injected by today's injector is not. A VirtualService for a host with no
// Service, a PeerAuthentication selecting no Pod and a subset without endpoints are found with the model's
// own rules; a subset whose Pod has an EndpointSlice is not.
import anyTest from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import type { AnalyzeResult } from '../../control-plane/debug-cli/analyze.js';
import { injectPod } from '../../injector/inject.js';
import type { Pod } from '../../injector/types.js';
import { useCluster, type Cluster } from '../helpers/cluster.js';
import { apply, installCrds } from '../kube/kube-helpers.js';
import { trellis } from './_debug-cli.js';

const kube = useCluster(anyTest);

function podManifest(name: string, labels: Record<string, string>, extra: Record<string, unknown> = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels, ...extra },
    spec: { containers: [{ name: 'app', image: 'registry.example/app:1', ports: [{ containerPort: 8080 }] }] },
  } as Pod;
}

/** A pod template: the Pod's metadata and spec. */
function template(labels: Record<string, string>): Record<string, unknown> {
  const { metadata, spec } = podManifest('unused', labels);
  return { metadata: { labels: metadata!.labels }, spec };
}

function injected(pod: Pod, namespace: string, tag?: string): Pod {
  const result = injectPod(pod, { name: namespace }, { image: tag ? { tag } : {}, kubernetesMinor: 34 });
  if (result.outcome !== 'injected') throw new Error(`not injected: ${JSON.stringify(result)}`);
  return result.pod;
}

async function uidOf(cluster: Cluster, ns: string, resource: string): Promise<string> {
  return (await cluster.kubectl(['get', resource, '-n', ns, '-o', 'jsonpath={.metadata.uid}'])).stdout.trim();
}

async function analyze(cluster: Cluster, ns: string): Promise<AnalyzeResult> {
  const run = await trellis(['analyze', '--kubeconfig', cluster.kubeconfigPath, '-n', ns, '-o', 'json']);
  if (run.code !== 0) throw new Error(`trellis analyze exited ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as AnalyzeResult;
}

kube.test(
  'analyze: a namespace labelled after its pods were created, outdated sidecars, routing that matches nothing',
  async (t, cluster) => {
    await installCrds(cluster);
    const ns = await cluster.createNamespace('analyze');
    const docs: unknown[] = [];

    // A Deployment whose Pod came through a ReplicaSet (no controller runs here: the test writes all three).
    await apply(
      cluster,
      ns,
      YAML.stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'shop' },
        spec: {
          selector: { matchLabels: { app: 'shop' } },
          template: template({ app: 'shop', version: 'v1' }),
        },
      }),
    );
    const deploymentUid = await uidOf(cluster, ns, 'deployment/shop');
    await apply(
      cluster,
      ns,
      YAML.stringify({
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        metadata: {
          name: 'shop-5d8f',
          labels: { app: 'shop' },
          ownerReferences: [
            { apiVersion: 'apps/v1', kind: 'Deployment', name: 'shop', uid: deploymentUid, controller: true },
          ],
        },
        spec: { selector: { matchLabels: { app: 'shop' } }, template: template({ app: 'shop', version: 'v1' }) },
      }),
    );
    const rsUid = await uidOf(cluster, ns, 'replicaset/shop-5d8f');
    const owned = {
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'shop-5d8f', uid: rsUid, controller: true }],
    };
    docs.push(
      podManifest('shop-5d8f-a', { app: 'shop', version: 'v1' }, owned),
      podManifest('shop-5d8f-b', { app: 'shop', version: 'v1' }, owned),
      podManifest('lonely', { app: 'lonely' }),
      podManifest('optout', { app: 'optout' }, { annotations: { 'trellis.dev/inject': 'false' } }),
      injected(podManifest('old-sidecar', { app: 'old' }), ns, '0.0.1'),
      injected(podManifest('new-sidecar', { app: 'new' }), ns),
      // The shop Service, and an EndpointSlice for one of its Pods (the endpoint controller does not run here).
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'shop' },
        spec: { selector: { app: 'shop' }, ports: [{ name: 'http', port: 8080 }] },
      },
      {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: 'shop-1', labels: { 'kubernetes.io/service-name': 'shop' } },
        addressType: 'IPv4',
        ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
        endpoints: [{ addresses: ['10.1.0.7'], targetRef: { kind: 'Pod', namespace: ns, name: 'shop-5d8f-a' } }],
      },
      {
        apiVersion: 'networking.trellis.dev/v1alpha1',
        kind: 'DestinationRule',
        metadata: { name: 'shop' },
        spec: {
          host: 'shop',
          subsets: [
            { name: 'v1', labels: { version: 'v1' } },
            { name: 'v3', labels: { version: 'v3' } },
          ],
        },
      },
      {
        apiVersion: 'networking.trellis.dev/v1alpha1',
        kind: 'VirtualService',
        metadata: { name: 'ghost' },
        spec: { hosts: ['ghost'], http: [{ route: [{ destination: { host: 'ghost' } }] }] },
      },
      {
        apiVersion: 'security.trellis.dev/v1alpha1',
        kind: 'PeerAuthentication',
        metadata: { name: 'payments' },
        spec: { selector: { matchLabels: { app: 'payments' } }, mtls: { mode: 'STRICT' } },
      },
    );
    await apply(cluster, ns, docs.map((d) => YAML.stringify(d)).join('---\n'));

    // Before the label: no Pod is expected to have a sidecar; the old injection is still found.
    const before = await analyze(cluster, ns);
    t.deepEqual(
      before.findings.map((f) => f.code).filter((c) => c === 'NoSidecar' || c === 'InjectionSkipped'),
      [],
    );

    await cluster.kubectl(['label', 'namespace', ns, 'trellis.dev/inject=enabled']);
    const after = await analyze(cluster, ns);
    t.log(after.findings.map((f) => `${f.severity} ${f.code} ${f.object}: ${f.message} | ${f.fix}`).join('\n'));
    const summary = after.findings.map((f) => [f.severity, f.code, f.object, f.fix]);
    t.deepEqual(summary, [
      ['warning', 'NoSidecar', 'deployment/shop', `kubectl rollout restart deployment/shop -n ${ns}`],
      [
        'warning',
        'SubsetWithoutEndpoints',
        'destinationrule/shop',
        `kubectl edit destinationrule/shop -n ${ns} (or label the Pods: kubectl get pods -n ${ns} --show-labels)`,
      ],
      [
        'warning',
        'SelectorMatchesNoPod',
        'peerauthentication/payments',
        `kubectl edit peerauthentication/payments -n ${ns} (or label the Pods: kubectl get pods -n ${ns} --show-labels)`,
      ],
      [
        'warning',
        'NoSidecar',
        'pod/lonely',
        `kubectl get pod lonely -n ${ns} -o yaml > lonely.yaml && kubectl replace --force -f lonely.yaml`,
      ],
      [
        'warning',
        'OutdatedSidecar',
        'pod/old-sidecar',
        `kubectl delete pod old-sidecar -n ${ns}, then create it again from its manifest (kubectl apply -f …)`,
      ],
      ['warning', 'HostWithoutService', 'virtualservice/ghost', `kubectl edit virtualservice/ghost -n ${ns}`],
      [
        'info',
        'InjectionSkipped',
        'pod/optout',
        `remove trellis.dev/inject from the pod template, then kubectl get pod optout -n ${ns} -o yaml > optout.yaml && kubectl replace --force -f optout.yaml`,
      ],
    ]);
    const byObject = new Map(after.findings.map((f) => [`${f.code} ${f.object}`, f.message]));
    t.regex(
      byObject.get('NoSidecar deployment/shop')!,
      /^Pods shop-5d8f-a, shop-5d8f-b run without a sidecar in namespace/,
    );
    t.regex(
      byObject.get('OutdatedSidecar pod/old-sidecar')!,
      /^runs a sidecar older than the injector's template: sidecar image ghcr\.io\/trellis-mesh\/trellis\/proxy:0\.0\.1, the injector now injects ghcr\.io\/trellis-mesh\/trellis\/proxy:\d/,
    );
    t.regex(
      byObject.get('SubsetWithoutEndpoints destinationrule/shop')!,
      /^subset v3 \(version=v3\) of shop\.\S+ has no endpoints/,
    );
    t.regex(byObject.get('HostWithoutService virtualservice/ghost')!, /^matches nothing: no Service for ghost\./);

    // The same as text, and the fix for the Deployment is a command kubectl takes.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-analyze-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const text = await trellis(['analyze', '--kubeconfig', cluster.kubeconfigPath, '-n', ns]);
    t.is(text.code, 0, text.stderr);
    t.log(text.stdout);
    t.regex(
      text.stdout,
      new RegExp(
        `^Warning \\[NoSidecar\\] \\(deployment/shop\\.${ns}\\) Pods shop-5d8f-a, shop-5d8f-b run without a sidecar`,
        'm',
      ),
    );
    t.regex(text.stdout, new RegExp(`^  fix: kubectl rollout restart deployment/shop -n ${ns}$`, 'm'));
    t.regex(text.stdout, /^6 warnings, 1 info\.$/m);
    const restart = await cluster.kubectl(['rollout', 'restart', 'deployment/shop', '-n', ns]);
    t.regex(restart.stdout, /deployment\.apps\/shop restarted/);
  },
);
