// re2-wasm (about 8 MiB of RSS) is loaded by the first regex the validator checks, not by importing it:
// a control plane whose mesh has no regex, and static mode, never hold it (issue 14, idle RSS).
// Its own file: ava runs each file in a fresh worker, so no other test has loaded it yet.
import test from 'ava';
import { re2Loaded } from '../../crds/re2.js';
import { validateRoutingResource } from '../../crds/validator.js';

const virtualService = (match: Record<string, unknown>) => ({
  apiVersion: 'networking.trellis.dev/v1alpha1',
  kind: 'VirtualService',
  metadata: { name: 'reviews', namespace: 'shop' },
  spec: { hosts: ['reviews'], http: [{ match: [{ uri: match }], route: [{ destination: { host: 'reviews' } }] }] },
});

test('validation without a regex leaves re2-wasm unloaded; the first regex loads it and is judged by RE2', (t) => {
  t.false(re2Loaded(), 'importing the validator does not load re2-wasm');
  const errors = (r: ReturnType<typeof validateRoutingResource>) => r.issues.filter((i) => i.severity === 'error');
  const plain = validateRoutingResource(virtualService({ prefix: '/api' }));
  t.deepEqual(errors(plain), []);
  t.false(re2Loaded(), 'a prefix match needs no RE2');
  const good = validateRoutingResource(virtualService({ regex: '^/api/v[0-9]+$' }));
  t.deepEqual(errors(good), []);
  t.true(re2Loaded());
  const bad = validateRoutingResource(virtualService({ regex: 'a(b' }));
  t.true(
    errors(bad).some((e) => e.path.endsWith('uri.regex') && e.message.includes('missing )')),
    `a pattern RE2 refuses is an error on its field: ${JSON.stringify(bad.issues)}`,
  );
});
