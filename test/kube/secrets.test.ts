// KubeSource and Secrets (DestinationRule tls.credentialName) against a real kube-apiserver: the Secret
// informer lists Secrets with Istio's field selector (no Helm releases, tokens or image pull secrets), keeps
// only their TLS keys (no annotations: last-applied-configuration repeats the whole Secret), and the model
// holds only the Secrets a DestinationRule names. A key rotation reaches the snapshot; a deletion removes it.
import anyTest from 'ava';
import { useCluster } from '../helpers/cluster.js';
import { makeRootAndIntermediate } from '../ca/ca-helpers.js';
import { apply, installCrds, nextSnapshot, startKubeSource } from './kube-helpers.js';

const kube = useCluster(anyTest);

const b64 = (s: string): string => Buffer.from(s).toString('base64');

kube.test('Secrets: filtered by type, reduced to TLS keys, only referenced ones in the model', async (t, cluster) => {
  await installCrds(cluster);
  const ns = await cluster.createNamespace('secrets');
  const pems = await makeRootAndIntermediate({ name: 'Egress' });
  const next = await makeRootAndIntermediate({ name: 'Rotated' });
  const secret = (name: string, type: string, key: string, extra = ''): string => `
apiVersion: v1
kind: Secret
metadata: { name: ${name}, annotations: { note: kept-out } }
type: ${type}
data:
  tls.crt: ${b64(pems.caCertPem)}
  tls.key: ${b64(key)}
  ca.crt: ${b64(pems.rootCertPem)}
  password: ${b64('hunter2')}${extra}
`;
  await apply(
    cluster,
    ns,
    `
apiVersion: networking.trellis.dev/v1alpha1
kind: DestinationRule
metadata: { name: egress }
spec:
  host: api.example.com
  trafficPolicy: { tls: { mode: MUTUAL, credentialName: egress } }
---
${secret('egress', 'kubernetes.io/tls', pems.caKeyPem)}
---
${secret('unreferenced', 'Opaque', pems.caKeyPem)}
---
${secret('helm-release', 'helm.sh/release.v1', pems.caKeyPem)}
`,
  );
  const source = await startKubeSource(cluster);
  t.teardown(() => source.stop());

  const kept = await nextSnapshot(source, `Secret ${ns}/egress in the model`, (s) =>
    s.index.secrets.get(ns)?.get('egress'),
  );
  t.is(kept.certificateChain, pems.caCertPem);
  t.is(kept.privateKey?.reveal(), pems.caKeyPem);
  t.is(kept.caCertificate, pems.rootCertPem);
  t.deepEqual(
    source
      .current()
      .secrets.filter((s) => s.namespace === ns)
      .map((s) => s.name),
    ['egress'],
    'only the Secret a DestinationRule names',
  );

  const live = source.live('Secret', ns, 'egress') as unknown as {
    metadata: Record<string, unknown>;
    data: Record<string, string>;
  };
  t.deepEqual(Object.keys(live.data).sort(), ['ca.crt', 'tls.crt', 'tls.key'], 'no other data key is held');
  t.false('annotations' in live.metadata);
  t.truthy(source.live('Secret', ns, 'unreferenced'), 'an Opaque Secret is watched (it may be named later)');
  t.is(source.live('Secret', ns, 'helm-release'), undefined, 'Helm releases are never listed');

  // A key rotation reaches the snapshot; the deletion removes the Secret.
  const before = source.current().hash;
  await apply(cluster, ns, secret('egress', 'kubernetes.io/tls', next.caKeyPem));
  await nextSnapshot(
    source,
    'the rotated key',
    (s) => s.index.secrets.get(ns)?.get('egress')?.privateKey?.reveal() === next.caKeyPem,
  );
  t.not(source.current().hash, before);
  await cluster.kubectl(['delete', 'secret', 'egress', '-n', ns]);
  await nextSnapshot(source, 'the deletion', (s) => !s.index.secrets.get(ns)?.has('egress'));
  t.pass();
});
