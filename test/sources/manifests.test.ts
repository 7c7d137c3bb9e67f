import test from 'ava';
import { parseManifests } from '../../control-plane/sources/manifests.js';

test('multi-document YAML: every mesh kind, namespace defaulted, other kinds skipped with a note', (t) => {
  const text = `
apiVersion: v1
kind: Namespace
metadata: { name: shop }
---
apiVersion: v1
kind: Service
metadata: { name: cart }
spec: { ports: [{ port: 80 }] }
---
# only a comment
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: cart }
---
apiVersion: networking.trellis.dev/v1alpha1
kind: VirtualService
metadata: { name: cart, namespace: shop }
spec: { hosts: [cart] }
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: { name: knative }
---
kind: Pod
apiVersion: v1
metadata: {}
`;
  const parsed = parseManifests(text, 'shop.yaml');
  t.true(parsed.ok);
  t.deepEqual(
    parsed.objects.map((o) => [o.kind, o.namespace, o.name, o.origin.document]),
    [
      // 0-based, as crds/validator.ts's Origin; messages count from 1.
      ['Namespace', '', 'shop', 0],
      ['Service', 'default', 'cart', 1],
      ['VirtualService', 'shop', 'cart', 4],
    ],
  );
  // The defaulted namespace is written into the object too.
  t.is((parsed.objects[1]!.object as { metadata: { namespace: string } }).metadata.namespace, 'default');
  t.deepEqual(
    parsed.problems.map((p) => [p.severity, p.message]),
    [
      ['info', 'shop.yaml#4: skipped a document of kind Deployment (not read by the mesh)'],
      ['info', 'shop.yaml#6: skipped a Service of apiVersion "serving.knative.dev/v1" (the mesh reads Service v1)'],
      ['error', 'shop.yaml#7: Pod: metadata.name: required; skipped'],
    ],
  );
});

test('a List, and a JSON array', (t) => {
  const list = parseManifests(
    'apiVersion: v1\nkind: List\nitems:\n  - { apiVersion: v1, kind: Namespace, metadata: { name: a } }\n  - { apiVersion: v1, kind: Namespace, metadata: { name: b } }\n',
    'list.yaml',
  );
  t.deepEqual(
    list.objects.map((o) => o.name),
    ['a', 'b'],
  );
  const json = parseManifests(
    JSON.stringify([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'c' } }]),
    'ns.json',
  );
  t.deepEqual(
    json.objects.map((o) => [o.name, o.origin]),
    [['c', { file: 'ns.json', document: 0 }]],
  );
});

test('YAML that does not parse: not ok, the document named', (t) => {
  const parsed = parseManifests(
    'apiVersion: v1\nkind: Namespace\nmetadata: { name: a }\n---\napiVersion: v1\nkind: Service\nmetadata: { name: [b\n',
    'broken.yaml',
  );
  t.false(parsed.ok);
  t.deepEqual(parsed.objects, []);
  t.true(parsed.problems.length > 0);
  t.is(
    parsed.problems[0]!.message,
    'broken.yaml#2: does not parse: Flow sequence in block collection must be sufficiently indented and end with a ] at line 8, column 1',
  );
  t.deepEqual(parsed.problems[0]!.origin, { file: 'broken.yaml', document: 1 });
});

test('an empty file is no objects', (t) => {
  t.deepEqual(parseManifests('', 'empty.yaml'), { ok: true, objects: [], problems: [] });
  t.deepEqual(parseManifests('---\n---\n', 'empty.yaml'), { ok: true, objects: [], problems: [] });
});

test('PeerAuthentication is a mesh kind: read with its namespace (defaulted), judged later by the validator', (t) => {
  const parsed = parseManifests(
    `apiVersion: security.trellis.dev/v1alpha1
kind: PeerAuthentication
metadata: { name: default, namespace: trellis-system }
spec: { mtls: { mode: STRICT } }
---
apiVersion: security.trellis.dev/v1alpha1
kind: PeerAuthentication
metadata: { name: web }
spec: { selector: { matchLabels: { app: web } }, portLevelMtls: { 8080: { mode: DISABLE } } }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: istio, namespace: shop }
spec: {}
`,
    'mtls.yaml',
  );
  t.true(parsed.ok);
  t.deepEqual(
    parsed.objects.map((o) => [o.kind, o.namespace, o.name]),
    [
      ['PeerAuthentication', 'trellis-system', 'default'],
      ['PeerAuthentication', 'default', 'web'],
      // Any apiVersion is read, as for the routing kinds: the validator reports a wrong one.
      ['PeerAuthentication', 'shop', 'istio'],
    ],
  );
  // YAML's numeric map key reaches the model as the string JSON would carry.
  t.deepEqual((parsed.objects[1]!.object as { spec: { portLevelMtls: Record<string, unknown> } }).spec.portLevelMtls, {
    '8080': { mode: 'DISABLE' },
  });
  t.deepEqual(parsed.problems, []);
});
