// The PeerAuthentication rules of crds/validator.ts (schema, CEL twins, beyond), both sides of each boundary.
import test from 'ava';
import { SECURITY_API_VERSION } from '../../crds/types.js';
import { formatIssue, isMeshResource, isRoutingResource, validateRoutingResource } from '../../crds/validator.js';

type Json = Record<string, unknown>;

const pa = (spec: Json, metadata: Json = { name: 'default', namespace: 'shop' }): Json => ({
  apiVersion: SECURITY_API_VERSION,
  kind: 'PeerAuthentication',
  metadata,
  spec,
});

const lines = (obj: unknown, severity: 'error' | 'warning'): string[] =>
  validateRoutingResource(obj)
    .issues.filter((i) => i.severity === severity)
    .map((i) => `${i.path}: ${i.message}`);
const errors = (obj: unknown) => lines(obj, 'error');
const warnings = (obj: unknown) => lines(obj, 'warning');

test('valid policies: empty spec, each mode, selector, port-level with a selector', (t) => {
  for (const spec of [
    {},
    { mtls: {} },
    ...['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'].map((mode) => ({ mtls: { mode } })),
    { selector: { matchLabels: { app: 'reviews', 'app.kubernetes.io/version': 'v1' } }, mtls: { mode: 'STRICT' } },
    { selector: { matchLabels: { app: 'reviews' } }, portLevelMtls: { '8080': { mode: 'DISABLE' }, '1': {} } },
    { selector: { matchLabels: { app: 'reviews' } }, portLevelMtls: { '65535': { mode: 'PERMISSIVE' } } },
  ]) {
    const r = validateRoutingResource(pa(spec));
    t.deepEqual(r.issues, [], JSON.stringify(spec));
    t.is(r.kind, 'PeerAuthentication');
    t.deepEqual(r.resource, pa(spec));
  }
});

test('apiVersion: security.trellis.dev/v1alpha1 only; isMeshResource knows the kind', (t) => {
  t.deepEqual(errors({ ...pa({}), apiVersion: 'security.istio.io/v1' }), [
    'apiVersion: must be security.trellis.dev/v1alpha1',
  ]);
  t.deepEqual(errors({ ...pa({}), apiVersion: 'networking.trellis.dev/v1alpha1' }), [
    'apiVersion: must be security.trellis.dev/v1alpha1',
  ]);
  t.true(isMeshResource(pa({})));
  t.false(isRoutingResource(pa({})));
  t.false(isMeshResource({ ...pa({}), apiVersion: 'security.istio.io/v1' }));
});

test('mode is one of UNSET, DISABLE, PERMISSIVE, STRICT (schema), at every level', (t) => {
  t.deepEqual(errors(pa({ mtls: { mode: 'ISTIO_MUTUAL' } })), [
    'spec.mtls.mode: must be one of: UNSET, DISABLE, PERMISSIVE, STRICT',
  ]);
  t.deepEqual(errors(pa({ mtls: { mode: 'strict' } })), [
    'spec.mtls.mode: must be one of: UNSET, DISABLE, PERMISSIVE, STRICT',
  ]);
  t.deepEqual(errors(pa({ selector: { matchLabels: { app: 'a' } }, portLevelMtls: { '8080': { mode: 'OFF' } } })), [
    'spec.portLevelMtls[8080].mode: must be one of: UNSET, DISABLE, PERMISSIVE, STRICT',
  ]);
});

test('unknown fields are errors (Istio fields Trellis does not implement included)', (t) => {
  t.deepEqual(errors(pa({ mtls: { mode: 'STRICT', enabled: true } })), ['spec.mtls.enabled: unknown field']);
  t.deepEqual(errors(pa({ selector: { matchExpressions: [] } })), ['spec.selector.matchExpressions: unknown field']);
  t.deepEqual(errors(pa({ targetRefs: [] })), ['spec.targetRefs: unknown field']);
});

test('portLevelMtls needs a selector with matchLabels (CEL), as in Istio', (t) => {
  const ports = { '8080': { mode: 'DISABLE' } };
  const message = 'spec.portLevelMtls: requires a selector with matchLabels';
  t.deepEqual(errors(pa({ portLevelMtls: ports })), [message]);
  t.deepEqual(errors(pa({ selector: {}, portLevelMtls: ports })), [message]);
  t.deepEqual(errors(pa({ selector: { matchLabels: {} }, portLevelMtls: ports })), [message]);
  // Istio: if present, portLevelMtls has at least one port.
  t.deepEqual(errors(pa({ portLevelMtls: {} })), ['spec.portLevelMtls: must not be empty', message]);
  t.deepEqual(errors(pa({ selector: { matchLabels: { app: 'a' } }, portLevelMtls: ports })), []);
});

test('portLevelMtls keys are port numbers 1-65535 (CEL)', (t) => {
  const sel = { matchLabels: { app: 'a' } };
  for (const key of ['0', '65536', '99999', '080', 'http', '-1', '8080a']) {
    t.deepEqual(
      errors(pa({ selector: sel, portLevelMtls: { [key]: { mode: 'STRICT' } } })),
      ['spec.portLevelMtls: keys must be port numbers 1-65535'],
      key,
    );
  }
  t.deepEqual(errors(pa({ selector: sel, portLevelMtls: { '9080': { mode: 'STRICT' } } })), []);
});

test('selector labels: keys and values as Kubernetes labels', (t) => {
  t.deepEqual(errors(pa({ selector: { matchLabels: { 'bad key': 'a' } } })), [
    'spec.selector.matchLabels: keys must be Kubernetes label names',
  ]);
  t.deepEqual(errors(pa({ selector: { matchLabels: { app: 'a b' } } })), [
    'spec.selector.matchLabels[app]: must be a label value (letters, digits, -, _ and ., alphanumeric at both ends)',
  ]);
  t.deepEqual(errors(pa({ selector: { matchLabels: { ['x'.repeat(64)]: 'a' } } })), [
    `spec.selector.matchLabels[${'x'.repeat(64)}]: label name must be at most 63 characters`,
  ]);
});

test('an empty selector is a warning: the policy is the namespace one', (t) => {
  t.deepEqual(warnings(pa({ selector: {}, mtls: { mode: 'STRICT' } })), [
    'spec.selector: selects no labels, so the policy applies to the whole namespace',
  ]);
  t.deepEqual(warnings(pa({ selector: { matchLabels: {} } })), [
    'spec.selector: selects no labels, so the policy applies to the whole namespace',
  ]);
  t.truthy(validateRoutingResource(pa({ selector: {} })).resource);
});

test('messages name the object and the field, as trellis validate prints them', (t) => {
  const r = validateRoutingResource(pa({ portLevelMtls: { '8080': {} } }, { name: 'strict', namespace: 'shop' }));
  t.deepEqual(
    r.issues.map((i) => formatIssue(r, i, { file: 'mtls.yaml', document: 1 })),
    ['mtls.yaml#2: PeerAuthentication shop/strict: spec.portLevelMtls: requires a selector with matchLabels'],
  );
});
