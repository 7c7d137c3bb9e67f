// `trellis control-plane --kubeconfig …` as a real process against a real kube-apiserver: /readyz turns
// 200 after the first full sync, the statuses of routing resources are written, xDS serves the cluster's
// Services, and `--webhook-cert/--webhook-key` serve /validate over HTTPS. Skipped with one line when the
// peers are not built (failed under CI=true).
import anyTest from 'ava';
import { useCluster, request } from '../helpers/cluster.js';
import { namesOf, RawAdsClient, testNode } from '../helpers/ads-client.js';
import { eventually, startControlPlaneProcess } from '../helpers/process.js';
import { accepted, apply, getRouting, installCrds } from './kube-helpers.js';

const kube = useCluster(anyTest);

const CDS = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';

kube.test(
  'trellis control-plane --kubeconfig: ready after sync, status written, xDS and /validate served',
  async (t, cluster) => {
    await installCrds(cluster);
    const ns = await cluster.createNamespace('cli');
    await apply(
      cluster,
      ns,
      `apiVersion: v1
kind: Service
metadata: { name: shop }
spec: { ports: [{ name: http, port: 8080 }] }
---
apiVersion: networking.trellis.dev/v1alpha1
kind: VirtualService
metadata: { name: shop }
spec:
  hosts: [shop]
  http: [{ timeout: 2s, route: [{ destination: { host: shop } }] }]
`,
    );
    const cert = await cluster.issueServingCert();
    const cp = await startControlPlaneProcess([
      '--kubeconfig',
      cluster.kubeconfigPath,
      '--webhook-cert',
      cert.certFile,
      '--webhook-key',
      cert.keyFile,
      '--webhook-port',
      '0',
      '--debounce-after',
      '20ms',
    ]);
    t.teardown(() => cp.stop());
    const monitoring = `http://127.0.0.1:${cp.monitoringPort}`;
    await eventually(async () => (await fetch(`${monitoring}/readyz`)).status === 200, 30_000, '/readyz 200');
    t.truthy(cp.logs.find((l) => l.msg === 'kubernetes: first full sync of every kind; ready'));

    // The status of the VirtualService, written by the process.
    await eventually(
      async () => accepted(await getRouting(cluster, ns, 'vs', 'shop'))?.status === 'True',
      30_000,
      'Accepted=True on the VirtualService',
    );

    // xDS: the Service is a cluster for a proxy of the namespace.
    const client = new RawAdsClient(`127.0.0.1:${cp.xdsPort}`);
    t.teardown(() => client.close());
    const stream = client.sotw();
    stream.send({ node: testNode(`app-1.${ns}`, { NAMESPACE: ns }), typeUrl: CDS });
    const response = await stream.next(15_000);
    t.true(namesOf(response).includes(`outbound|8080||shop.${ns}.svc.cluster.local`), namesOf(response).join(' '));
    stream.close();

    // /validate over HTTPS on the webhook port.
    const webhookLine = await cp.waitForLog((l) => l.msg === 'admission webhooks listening');
    const review = await request(`https://127.0.0.1:${Number(webhookLine.port)}/validate`, {
      method: 'POST',
      ca: cert.caPem,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: 'u-2',
          operation: 'CREATE',
          namespace: ns,
          name: 'bad',
          object: {
            apiVersion: 'networking.trellis.dev/v1alpha1',
            kind: 'VirtualService',
            metadata: { name: 'bad' },
            spec: {
              hosts: ['shop'],
              http: [{ match: [{ uri: { regex: '(?=x)' } }], route: [{ destination: { host: 'shop' } }] }],
            },
          },
        },
      }),
    });
    t.is(review.status, 200);
    t.like(JSON.parse(review.body), {
      response: {
        uid: 'u-2',
        allowed: false,
        status: {
          code: 422,
          message: `VirtualService ${ns}/bad: spec.http[0].match[0].uri.regex: must be an RE2 regex (invalid perl operator: (?=)`,
        },
      },
    });
  },
);
