// The AuthorizationPolicy rules of crds/validator.ts (schema, CEL, beyond), named for Istio's rules
// (istio/istio pkg/config/validation ValidateAuthorizationPolicy) and for what Trellis does not implement.
import test from 'ava';
import { SECURITY_API_VERSION } from '../../crds/types.js';
import { formatIssue, isMeshResource, validateRoutingResource } from '../../crds/validator.js';

type Json = Record<string, unknown>;

const ap = (spec: Json, metadata: Json = { name: 'callers', namespace: 'shop' }): Json => ({
  apiVersion: SECURITY_API_VERSION,
  kind: 'AuthorizationPolicy',
  metadata,
  spec,
});

const lines = (obj: unknown, severity: 'error' | 'warning'): string[] =>
  validateRoutingResource(obj)
    .issues.filter((i) => i.severity === severity)
    .map((i) => `${i.path}: ${i.message}`);
const errors = (obj: unknown) => lines(obj, 'error');
const warnings = (obj: unknown) => lines(obj, 'warning');
const rule = (r: Json) => ap({ rules: [r] });

test('valid policies: every field Trellis implements, every action, rules: [{}]', (t) => {
  for (const spec of [
    { rules: [{}] },
    { action: 'DENY', rules: [{ from: [{ source: { notNamespaces: ['shop'] } }] }] },
    { action: 'AUDIT', rules: [{ to: [{ operation: { methods: ['POST'] } }] }] },
    {
      selector: { matchLabels: { app: 'reviews' } },
      action: 'ALLOW',
      rules: [
        {
          from: [
            {
              source: {
                principals: ['cluster.local/ns/shop/sa/frontend', 'cluster.local/ns/ops/*', '*'],
                notPrincipals: ['*/sa/untrusted'],
                namespaces: ['shop'],
                notNamespaces: ['kube-*'],
                ipBlocks: ['10.0.0.0/8', '192.168.1.1'],
                notIpBlocks: ['10.9.0.0/16'],
                remoteIpBlocks: ['2001:db8::/32'],
                notRemoteIpBlocks: ['2001:db8::1'],
              },
            },
          ],
          to: [
            {
              operation: {
                hosts: ['reviews.shop.svc.cluster.local', '*.example.com'],
                notHosts: ['admin.example.com'],
                ports: ['9080'],
                notPorts: ['15000'],
                methods: ['GET', 'POST'],
                notMethods: ['DELETE'],
                paths: ['/reviews.Reviews/Get', '/api/*'],
                notPaths: ['*.php'],
              },
            },
          ],
          when: [
            { key: 'request.headers[x-user]', values: ['alice'] },
            { key: 'source.ip', values: ['10.0.0.1'] },
            { key: 'remote.ip', notValues: ['10.0.0.0/24'] },
            { key: 'source.namespace', values: ['shop'] },
            { key: 'source.principal', values: ['cluster.local/ns/shop/sa/frontend'] },
            { key: 'destination.ip', values: ['10.1.0.0/16'] },
            { key: 'destination.port', values: ['9080', '65535'] },
            { key: 'connection.sni', values: ['reviews.example.com'] },
          ],
        },
      ],
    },
  ]) {
    const r = validateRoutingResource(ap(spec));
    t.deepEqual(r.issues, [], JSON.stringify(spec));
    t.is(r.kind, 'AuthorizationPolicy');
    t.deepEqual(r.resource, ap(spec));
  }
  t.true(isMeshResource(ap({})));
  t.false(isMeshResource({ ...ap({}), apiVersion: 'security.istio.io/v1' }));
});

test('apiVersion: security.trellis.dev/v1alpha1 only', (t) => {
  t.deepEqual(errors({ ...ap({}), apiVersion: 'security.istio.io/v1' }), [
    'apiVersion: must be security.trellis.dev/v1alpha1',
  ]);
});

test('action: ALLOW, DENY or AUDIT; CUSTOM and its provider are Istio features Trellis does not implement', (t) => {
  t.deepEqual(errors(ap({ action: 'CUSTOM', provider: { name: 'opa' } })), [
    'spec.action: must be one of: ALLOW, DENY, AUDIT',
    "spec.provider: is Istio's CUSTOM action (an external authorizer), which Trellis does not implement",
  ]);
  t.deepEqual(errors(ap({ action: 'allow' })), ['spec.action: must be one of: ALLOW, DENY, AUDIT']);
});

test('an empty spec of ALLOW denies all (a warning), of DENY and AUDIT matches nothing (a warning)', (t) => {
  t.deepEqual(errors(ap({})), []);
  t.deepEqual(warnings(ap({})), [
    'spec.rules: none: this ALLOW policy denies every request to the workloads it selects',
  ]);
  t.deepEqual(warnings(ap({ rules: [] })), [
    'spec.rules: none: this ALLOW policy denies every request to the workloads it selects',
  ]);
  t.deepEqual(warnings(ap({ action: 'DENY' })), ['spec.rules: none: this DENY policy matches no request']);
  t.deepEqual(warnings(ap({ action: 'AUDIT' })), ['spec.rules: none: this AUDIT policy matches no request']);
  t.deepEqual(warnings(ap({ rules: [{}] })), []);
});

test('Istio: `from` must not be empty, `from.source` must not be nil or empty', (t) => {
  t.deepEqual(errors(rule({ from: [] })), ['spec.rules[0].from: must not be empty']);
  t.deepEqual(errors(rule({ from: [{}] })), ['spec.rules[0].from[0].source: is required']);
  t.deepEqual(errors(rule({ from: [{ source: {} }] })), ['spec.rules[0].from[0].source: must set at least one field']);
});

test('Istio: `to` must not be empty, `to.operation` must not be nil or empty', (t) => {
  t.deepEqual(errors(rule({ to: [] })), ['spec.rules[0].to: must not be empty']);
  t.deepEqual(errors(rule({ to: [{}] })), ['spec.rules[0].to[0].operation: is required']);
  t.deepEqual(errors(rule({ to: [{ operation: {} }] })), [
    'spec.rules[0].to[0].operation: must set at least one field',
  ]);
});

test('Istio: empty values are not allowed, nor empty value lists', (t) => {
  t.deepEqual(errors(rule({ from: [{ source: { principals: [''] } }] })), [
    'spec.rules[0].from[0].source.principals[0]: must not be empty',
  ]);
  t.deepEqual(errors(rule({ to: [{ operation: { paths: [] } }] })), [
    'spec.rules[0].to[0].operation.paths: must not be empty',
  ]);
});

test('Istio: ipBlocks and IP conditions are IPs or CIDR blocks', (t) => {
  t.deepEqual(
    errors(rule({ from: [{ source: { ipBlocks: ['10.0.0.0/33', 'not-an-ip'], remoteIpBlocks: ['::1/129'] } }] })),
    [
      'spec.rules[0].from[0].source.ipBlocks[0]: must be an IP address or CIDR block',
      'spec.rules[0].from[0].source.ipBlocks[1]: must be an IP address or CIDR block',
      'spec.rules[0].from[0].source.remoteIpBlocks[0]: must be an IP address or CIDR block',
    ],
  );
  t.deepEqual(errors(rule({ when: [{ key: 'source.ip', values: ['10.0.0.256'] }] })), [
    'spec.rules[0].when[0].values[0]: must be an IP address or CIDR block',
  ]);
});

test('Istio: ports and destination.port values are port numbers 1-65535', (t) => {
  t.deepEqual(errors(rule({ to: [{ operation: { ports: ['0', '65536', '8080'], notPorts: ['http'] } }] })), [
    'spec.rules[0].to[0].operation.notPorts[0]: must be a port number 1-65535',
    'spec.rules[0].to[0].operation.ports[0]: must be a port number 1-65535',
    'spec.rules[0].to[0].operation.ports[1]: must be a port number 1-65535',
  ]);
  t.deepEqual(errors(rule({ when: [{ key: 'destination.port', values: ['99999'], notValues: ['x'] }] })), [
    'spec.rules[0].when[0].notValues[0]: must be a port number 1-65535',
    'spec.rules[0].when[0].values[0]: must be a port number 1-65535',
  ]);
});

test('Istio: a condition needs a key and values or notValues; unknown attributes are refused', (t) => {
  t.deepEqual(errors(rule({ when: [{ key: 'source.ip' }] })), ['spec.rules[0].when[0]: must set values or notValues']);
  t.deepEqual(errors(rule({ when: [{ values: ['a'] }] })), ['spec.rules[0].when[0].key: is required']);
  t.deepEqual(errors(rule({ when: [{ key: 'source.user', values: ['a'] }] })), [
    'spec.rules[0].when[0].key: unknown or unsupported attribute source.user; Trellis supports request.headers[<name>], source.ip, remote.ip, source.namespace, source.principal, destination.ip, destination.port, connection.sni',
  ]);
  t.deepEqual(errors(rule({ when: [{ key: 'request.headers[]', values: ['a'] }] })), [
    'spec.rules[0].when[0].key: must be request.headers[<name>] with a header name between the brackets',
  ]);
});

test('not implemented (Istio-only): request.auth.* conditions and requestPrincipals need JWT authentication', (t) => {
  t.deepEqual(errors(rule({ when: [{ key: 'request.auth.claims[iss]', values: ['x'] }] })), [
    "spec.rules[0].when[0].key: request.auth.claims[iss] needs request authentication (JWT, Istio's RequestAuthentication), which Trellis does not implement",
  ]);
  t.deepEqual(errors(rule({ from: [{ source: { requestPrincipals: ['*'] } }] })), [
    "spec.rules[0].from[0].source.requestPrincipals: needs request authentication (JWT, Istio's RequestAuthentication), which Trellis does not implement",
  ]);
});

test('not implemented (Istio-only): targetRef(s), serviceAccounts; other unknown fields', (t) => {
  t.deepEqual(errors(ap({ targetRefs: [{ kind: 'Service', name: 'reviews' }], rules: [{}] })), [
    'spec.targetRefs: attaches a policy to a gateway or Service (Istio), which Trellis does not implement; use selector',
  ]);
  t.deepEqual(errors(rule({ from: [{ source: { serviceAccounts: ['shop/frontend'] } }] })), [
    'spec.rules[0].from[0].source.serviceAccounts: is not implemented by Trellis; write principals: [<trust domain>/ns/<namespace>/sa/<name>]',
  ]);
  t.deepEqual(errors(rule({ to: [{ operation: { paths: ['/a'], verbs: ['x'] } }] })), [
    'spec.rules[0].to[0].operation.verbs: unknown field',
  ]);
});

test('a * inside a value is matched literally (a warning), as in Istio', (t) => {
  t.deepEqual(warnings(rule({ to: [{ operation: { paths: ['/api/*/items'] } }] })), [
    'spec.rules[0].to[0].operation.paths[0]: a * inside a value is matched literally (only a leading or trailing * is a wildcard)',
  ]);
});

test('an empty selector is a warning: the policy is the namespace one; labels are Kubernetes labels', (t) => {
  t.deepEqual(warnings(ap({ selector: {}, rules: [{}] })), [
    'spec.selector: selects no labels, so the policy applies to the whole namespace',
  ]);
  t.deepEqual(errors(ap({ selector: { matchLabels: { 'app!': 'x' } }, rules: [{}] })), [
    'spec.selector.matchLabels: keys must be Kubernetes label names',
  ]);
});

test('messages name the object and the field, as trellis validate prints them', (t) => {
  const r = validateRoutingResource(rule({ from: [] }), { file: 'ap.yaml', document: 1 });
  t.deepEqual(
    r.issues.map((i) => formatIssue(r, i, { file: 'ap.yaml', document: 1 })),
    ['ap.yaml#2: AuthorizationPolicy shop/callers: spec.rules[0].from: must not be empty'],
  );
});
