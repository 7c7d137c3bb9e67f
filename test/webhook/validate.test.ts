// The admission handler without a cluster (test/kube/webhook.test.ts runs it behind a real API server).
import test from 'ava';
import {
  parseAdmissionReview,
  validateAdmission,
  type AdmissionRequest,
} from '../../control-plane/webhook/validate.js';

const vs = (spec: Record<string, unknown>, metadata: Record<string, unknown> = { name: 'reviews' }) => ({
  apiVersion: 'networking.trellis.dev/v1alpha1',
  kind: 'VirtualService',
  metadata,
  spec,
});
const badRegex = {
  hosts: ['reviews'],
  http: [{ match: [{ uri: { regex: '(?=a)' } }], route: [{ destination: { host: 'reviews' } }] }],
};

const req = (r: Partial<AdmissionRequest>): AdmissionRequest => ({
  uid: 'u',
  operation: 'CREATE',
  namespace: 'shop',
  ...r,
});

test('errors refuse with every line as trellis validate prints it, in the request namespace', (t) => {
  const review = validateAdmission(req({ object: vs(badRegex) }));
  t.deepEqual(review, {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: {
      uid: 'u',
      allowed: false,
      status: {
        code: 422,
        reason: 'Invalid',
        message:
          'VirtualService shop/reviews: spec.http[0].match[0].uri.regex: must be an RE2 regex (invalid perl operator: (?=)',
      },
    },
  });
});

test('warnings are passed on without the "warning: " prefix; the object is allowed', (t) => {
  const spec = {
    hosts: ['reviews'],
    http: [
      {
        route: [
          { destination: { host: 'reviews', subset: 'a' }, weight: 30 },
          { destination: { host: 'reviews', subset: 'b' } },
        ],
      },
    ],
  };
  t.deepEqual(validateAdmission(req({ operation: 'UPDATE', object: vs(spec) })).response, {
    uid: 'u',
    allowed: true,
    warnings: [
      'VirtualService shop/reviews: spec.http[0].route[1]: has no weight, so it gets no traffic (the weight of several destinations defaults to 0)',
    ],
  });
});

test('DELETE, CONNECT, subresources and objects being deleted are allowed unjudged', (t) => {
  for (const r of [
    req({ operation: 'DELETE', object: undefined, oldObject: vs(badRegex) }),
    req({ operation: 'CONNECT' }),
    req({ operation: 'UPDATE', subResource: 'status', object: vs(badRegex) }),
    req({ operation: 'UPDATE', object: vs(badRegex, { name: 'reviews', deletionTimestamp: '2026-01-01T00:00:00Z' }) }),
  ]) {
    t.deepEqual(validateAdmission(r).response, { uid: 'u', allowed: true });
  }
});

test('parseAdmissionReview wants an AdmissionReview v1 with a uid', (t) => {
  t.truthy(
    parseAdmissionReview({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'x' } }).request,
  );
  t.regex(
    parseAdmissionReview({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview' }).error ?? '',
    /admission\.k8s\.io\/v1/,
  );
  t.regex(
    parseAdmissionReview({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: {} }).error ?? '',
    /uid/,
  );
  t.is(parseAdmissionReview([]).error, 'not a JSON object');
});

const pa = (spec: Record<string, unknown>) => ({
  apiVersion: 'security.trellis.dev/v1alpha1',
  kind: 'PeerAuthentication',
  metadata: { name: 'default' },
  spec,
});

test('PeerAuthentication: judged like the routing kinds, in the request namespace', (t) => {
  t.deepEqual(validateAdmission(req({ object: pa({ portLevelMtls: { '8080': { mode: 'DISABLE' } } }) })).response, {
    uid: 'u',
    allowed: false,
    status: {
      code: 422,
      reason: 'Invalid',
      message: 'PeerAuthentication shop/default: spec.portLevelMtls: requires a selector with matchLabels',
    },
  });
  t.deepEqual(validateAdmission(req({ operation: 'UPDATE', object: pa({ mtls: { mode: 'STRICT' } }) })).response, {
    uid: 'u',
    allowed: true,
  });
  t.deepEqual(validateAdmission(req({ object: pa({ selector: {}, mtls: { mode: 'DISABLE' } }) })).response, {
    uid: 'u',
    allowed: true,
    warnings: [
      'PeerAuthentication shop/default: spec.selector: selects no labels, so the policy applies to the whole namespace',
    ],
  });
  // Istio's group is not ours: refused as the wrong apiVersion (the registration would not send it here).
  t.false(validateAdmission(req({ object: { ...pa({}), apiVersion: 'security.istio.io/v1' } })).response!.allowed);
});
