// injectPod over representative pods: the injected pod equals its golden; the /inject handler's JSON
// Patch, applied with fast-json-patch to the original, gives the same pod; injecting again changes
// nothing; pods that must not be injected are not; bad input is an error naming the object and field.
//   UPDATE_GOLDEN=1 npx ava test/injector/inject.test.ts   # rewrite the goldens, then review the diff
import test, { type ExecutionContext } from 'ava';
import { Registry } from 'prom-client';
import { createInjectHandler, type MutatingAdmissionResponse } from '../../injector/admission.js';
import { injectPod, type InjectOptions, type NamespaceInfo } from '../../injector/inject.js';
import { injectDocument } from '../../injector/inject-run.js';
import { applyPodPatch, type Operation } from '../../injector/patch.js';
import type { Container, Pod } from '../../injector/types.js';
import { assertGoldenYaml, busyPod, IMAGE, LABELLED, manyEnvPod, probesPod, simplePod, UNLABELLED } from './pods.js';

function injected(t: ExecutionContext, pod: Pod, namespace: NamespaceInfo, options: InjectOptions = {}): Pod {
  const result = injectPod(pod, namespace, { image: IMAGE, ...options });
  if (result.outcome !== 'injected') throw new Error(`not injected: ${JSON.stringify(result)}`);
  t.pass();
  return result.pod;
}

/** What the webhook answers for `pod` in `namespace` (labels unknown to it, as in the API server). */
function review(pod: Pod, namespace: string, options: InjectOptions = {}): MutatingAdmissionResponse {
  const handler = createInjectHandler({
    image: IMAGE,
    ...options,
    kubernetesMinor: () => options.kubernetesMinor,
    mtlsFor: () => options.mtls,
  });
  const answer = handler({
    uid: 'uid-1',
    kind: { group: '', version: 'v1', kind: 'Pod' },
    resource: { group: '', version: 'v1', resource: 'pods' },
    namespace,
    operation: 'CREATE',
    object: pod,
  });
  return answer.response as MutatingAdmissionResponse;
}

function patchOf(response: MutatingAdmissionResponse): Operation[] {
  if (response.patchType !== 'JSONPatch' || !response.patch) throw new Error(`no patch: ${JSON.stringify(response)}`);
  return JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as Operation[];
}

/** Golden, webhook patch and idempotence for one injected case. */
function checkInjected(t: ExecutionContext, name: string, pod: Pod, options: InjectOptions = {}): Pod {
  const original = structuredClone(pod);
  const result = injected(t, pod, LABELLED, options);
  t.deepEqual(pod, original, 'the input is not modified');
  assertGoldenYaml(t, result, name);
  const response = review(pod, LABELLED.name, options);
  t.true(response.allowed);
  t.deepEqual(applyPodPatch(pod, patchOf(response)), result, 'the webhook patch gives the injected pod');
  const again = injectPod(result, LABELLED, { image: IMAGE, ...options });
  t.deepEqual(again, { outcome: 'skipped', reason: 'already injected' });
  const second = review(result, LABELLED.name, options);
  t.deepEqual(second, { uid: 'uid-1', allowed: true }, 'an injected pod gets no patch');
  return result;
}

test('envoy template, native sidecar: trellis-init, then trellis-proxy with restartPolicy Always', (t) => {
  const pod = checkInjected(t, 'simple-envoy', simplePod());
  const init = pod.spec!.initContainers!;
  t.deepEqual(
    init.map((c) => [c.name, c.restartPolicy]),
    [
      ['trellis-init', undefined],
      ['trellis-proxy', 'Always'],
    ],
  );
  t.deepEqual(init[0]!.securityContext, {
    runAsUser: 0,
    runAsGroup: 0,
    runAsNonRoot: false,
    allowPrivilegeEscalation: false,
    privileged: false,
    readOnlyRootFilesystem: false,
    capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
  });
  t.is(pod.metadata!.labels!['trellis.dev/tlsMode'], 'mesh');
  t.deepEqual(JSON.parse(pod.metadata!.annotations!['trellis.dev/status']!), {
    template: 'envoy',
    initContainers: ['trellis-init', 'trellis-proxy'],
    containers: [],
    volumes: ['trellis-data', 'trellis-ca-root-cert', 'trellis-token'],
  });
  t.is(init[1]!.image, 'registry.test/trellis/proxy:v-test');
});

test('before Kubernetes 1.29 the proxy is the first regular container', (t) => {
  const pod = checkInjected(t, 'simple-envoy-1.28', simplePod(), { kubernetesMinor: 28 });
  t.deepEqual(
    pod.spec!.containers.map((c) => c.name),
    ['trellis-proxy', 'web'],
  );
  t.deepEqual(
    pod.spec!.initContainers!.map((c) => c.name),
    ['trellis-init'],
  );
  t.is(pod.spec!.containers[0]!.restartPolicy, undefined);
  t.is(pod.spec!.containers[0]!.startupProbe, undefined);
});

test('several containers, user init containers and volumes, resource and capture annotations', (t) => {
  const pod = checkInjected(t, 'busy-envoy', busyPod());
  t.deepEqual(
    pod.spec!.initContainers!.map((c) => c.name),
    ['trellis-init', 'trellis-proxy', 'migrate'],
    'the proxy runs before the user init containers, so they have the network',
  );
  t.deepEqual(
    pod.spec!.volumes!.map((v) => v.name),
    ['cache', 'trellis-data', 'trellis-ca-root-cert', 'trellis-token'],
  );
  t.deepEqual(pod.spec!.initContainers![0]!.args, [
    '--apply',
    '--backend',
    'auto',
    '--exclude-inbound-ports=8081,9090',
    '--exclude-outbound-ip-ranges=10.96.0.0/12,169.254.169.254/32',
    '--exclude-outbound-ports=5432',
  ]);
  t.deepEqual(pod.spec!.initContainers![1]!.resources, {
    requests: { cpu: '250m', memory: '128Mi' },
    limits: { cpu: '2', memory: '512Mi' },
  });
  t.true((pod.spec!.initContainers![1]!.args as string[]).includes('app=busy,trellis.dev/tlsMode=mesh,version=v2'));
});

test('STRICT: HTTP probes go through the agent; the originals travel in TRELLIS_APP_PROBES', (t) => {
  const pod = checkInjected(t, 'probes-strict', probesPod(), { mtls: { mode: 'STRICT' } });
  const app = pod.spec!.containers[0]!;
  t.deepEqual(app.readinessProbe, {
    httpGet: { path: '/app-health/app/readyz', port: 15021, scheme: 'HTTP' },
    periodSeconds: 5,
  });
  t.deepEqual(app.livenessProbe, {
    httpGet: { path: '/app-health/app/livez', port: 15021, scheme: 'HTTP' },
    timeoutSeconds: 3,
  });
  t.deepEqual(app.startupProbe, { tcpSocket: { port: 8080 } }, 'non-HTTP probes are left alone');
  t.deepEqual(pod.spec!.containers[1]!.readinessProbe, probesPod().spec!.containers[1]!.readinessProbe);
  const env = pod.spec!.initContainers![1]!.env!.find((e) => e.name === 'TRELLIS_APP_PROBES');
  t.deepEqual(JSON.parse(env!.value!), {
    '/app-health/app/readyz': { port: 8080, path: '/ready', scheme: 'HTTP', timeoutSeconds: 1 },
    '/app-health/app/livez': {
      port: 8443,
      path: '/live',
      scheme: 'HTTPS',
      headers: [{ name: 'X-Probe', value: 'yes' }],
      timeoutSeconds: 3,
    },
  });
});

test('PERMISSIVE leaves probes alone; a port-level STRICT rewrites only that port', (t) => {
  const permissive = injected(t, probesPod(), LABELLED, {
    meshConfig: { trustDomain: 'cluster.local', mtlsMode: 'PERMISSIVE' },
  });
  t.deepEqual(permissive.spec!.containers, probesPod().spec!.containers);
  t.false(permissive.spec!.initContainers![1]!.env!.some((e) => e.name === 'TRELLIS_APP_PROBES'));
  const portLevel = injected(t, probesPod(), LABELLED, {
    mtls: { mode: 'PERMISSIVE', ports: new Map([[8443, 'STRICT']]) },
  });
  t.deepEqual(portLevel.spec!.containers[0]!.readinessProbe, probesPod().spec!.containers[0]!.readinessProbe);
  t.is(portLevel.spec!.containers[0]!.livenessProbe!.httpGet!.path, '/app-health/app/livez');
});

test('grpc template: the agent alone, GRPC_XDS_BOOTSTRAP and the shared in-memory volume in every app container', (t) => {
  const pod = busyPod();
  pod.metadata!.annotations!['trellis.dev/template'] = 'grpc';
  const result = checkInjected(t, 'busy-grpc', pod, { meshConfig: { trustDomain: 'example.org', mtlsMode: 'STRICT' } });
  t.deepEqual(
    result.spec!.initContainers!.map((c) => c.name),
    ['trellis-proxy', 'migrate'],
    'no iptables',
  );
  const proxy = result.spec!.initContainers![0]!;
  t.is(proxy.image, 'registry.test/trellis/agent:v-test');
  t.deepEqual((proxy.args as string[]).slice(0, 6), [
    '--proxy-type',
    'grpc',
    '--control-plane',
    'trellisd.trellis-system.svc:15012',
    '--trust-domain',
    'example.org',
  ]);
  for (const c of result.spec!.containers) {
    t.deepEqual(c.env!.at(-2), { name: 'GRPC_XDS_BOOTSTRAP', value: '/var/run/trellis/grpc-bootstrap.json' });
    t.deepEqual(c.env!.at(-1), { name: 'GRPC_XDS_EXPERIMENTAL_RBAC', value: 'true' });
    t.deepEqual(c.volumeMounts!.at(-1), { name: 'trellis-data', mountPath: '/var/run/trellis', readOnly: true });
  }
  t.deepEqual(
    result.spec!.volumes!.find((v) => v.name === 'trellis-data'),
    {
      name: 'trellis-data',
      emptyDir: { medium: 'Memory' },
    },
  );
});

test('a pod with 1,500 env variables: the patch leaves them alone', (t) => {
  const pod = manyEnvPod();
  const result = injected(t, pod, LABELLED);
  const patch = patchOf(review(pod, LABELLED.name));
  t.deepEqual(applyPodPatch(pod, patch), result);
  t.false(
    patch.some((op) => op.path.includes('/env/')),
    'no operation on the application env',
  );
  t.true(patch.length < 20, `${patch.length} operations`);
});

test('selection: opt-out, opt-in from an unlabelled namespace, hostNetwork, system namespaces', (t) => {
  const optOut = simplePod();
  optOut.metadata!.annotations = { 'trellis.dev/inject': 'false' };
  t.deepEqual(injectPod(optOut, LABELLED), {
    outcome: 'skipped',
    reason: 'opted out (metadata.annotations[trellis.dev/inject])',
  });
  t.deepEqual(review(optOut, LABELLED.name), { uid: 'uid-1', allowed: true });

  t.deepEqual(injectPod(simplePod(), UNLABELLED), {
    outcome: 'skipped',
    reason: 'namespace plain is not labelled trellis.dev/inject=enabled',
  });
  const optIn = simplePod();
  optIn.metadata!.annotations = { 'trellis.dev/inject': 'true' };
  t.is(injectPod(optIn, UNLABELLED).outcome, 'injected');
  const optInLabel = simplePod();
  optInLabel.metadata!.labels!['trellis.dev/inject'] = 'true';
  optInLabel.metadata!.annotations = { 'trellis.dev/inject': 'false' };
  t.is(injectPod(optInLabel, UNLABELLED).outcome, 'injected', 'the label wins over the annotation');

  const host = simplePod();
  host.spec!.hostNetwork = true;
  t.deepEqual(injectPod(host, LABELLED), { outcome: 'skipped', reason: 'hostNetwork pods are never injected' });
  for (const name of ['kube-system', 'trellis-system']) {
    t.deepEqual(injectPod(optIn, { name, labels: { 'trellis.dev/inject': 'enabled' } }), {
      outcome: 'skipped',
      reason: `namespace ${name} is never injected`,
    });
  }
  t.is(injectPod(simplePod(), { name: 'anywhere' }).outcome, 'injected', 'namespace labels unknown: the caller chose');
});

test('errors name the object and the field; the webhook refuses such pods with the same message', (t) => {
  const cases: [(pod: Pod) => void, string][] = [
    [
      (p) => (p.metadata!.annotations = { 'trellis.dev/template': 'linkerd' }),
      'Pod shop/web: metadata.annotations[trellis.dev/template]: must be envoy or grpc, not "linkerd"',
    ],
    [
      (p) => (p.metadata!.annotations = { 'trellis.dev/inject': 'yes' }),
      'Pod shop/web: metadata.annotations[trellis.dev/inject]: must be "true" or "false", not "yes"',
    ],
    [
      (p) => (p.metadata!.annotations = { 'trellis.dev/proxyMemory': '1 GB' }),
      'Pod shop/web: metadata.annotations[trellis.dev/proxyMemory]: must be a Kubernetes quantity such as 100m or 128Mi, not "1 GB"',
    ],
    [
      (p) => (p.metadata!.annotations = { 'trellis.dev/excludeOutboundIPRanges': '10.0.0.0/33' }),
      'Pod shop/web: metadata.annotations[trellis.dev/excludeOutboundIPRanges]: "10.0.0.0/33" is not an IPv4 address or CIDR such as 10.0.0.0/8',
    ],
    [
      (p) => (p.metadata!.annotations = { 'trellis.dev/includeInboundPorts': '80,http' }),
      'Pod shop/web: metadata.annotations[trellis.dev/includeInboundPorts]: "http" is not a port (1-65535); write a comma-separated list of ports or *',
    ],
    [
      (p) => p.spec!.containers[0]!.ports!.push({ containerPort: 15001 }),
      'Pod shop/web: spec.containers[0].ports[1].containerPort: 15001 is a port of the sidecar (15000, 15001, 15006, 15020, 15021, 15090)',
    ],
    [
      (p) => (p.spec!.volumes = [{ name: 'trellis-data', emptyDir: {} }]),
      'Pod shop/web: spec.volumes[0].name: "trellis-data" is the injector\'s',
    ],
    [
      (p) => (p.spec!.containers[0]!.readinessProbe = { httpGet: { path: '/', port: 'metrics' } }),
      'Pod shop/web: spec.containers[0].readinessProbe.httpGet.port: no port named "metrics" in container web',
    ],
    [(p) => (p.spec!.containers = []), 'Pod shop/web: spec.containers: must list at least one container'],
    [
      (p) => (p.spec!.containers = [7 as unknown as Container]),
      'Pod shop/web: spec.containers[0]: must be a container with a name',
    ],
  ];
  for (const [change, message] of cases) {
    const pod = simplePod();
    change(pod);
    const result = injectPod(pod, LABELLED, { mtls: { mode: 'STRICT' } });
    t.is(result.outcome === 'error' ? result.error.message : result.outcome, message);
    t.deepEqual(review(pod, LABELLED.name, { mtls: { mode: 'STRICT' } }), {
      uid: 'uid-1',
      allowed: false,
      status: { code: 422, reason: 'Invalid', message },
    });
  }
  const grpc = simplePod();
  grpc.metadata!.annotations = { 'trellis.dev/template': 'grpc' };
  grpc.spec!.containers[0]!.env = [{ name: 'GRPC_XDS_BOOTSTRAP', value: '/mine.json' }];
  const result = injectPod(grpc, LABELLED);
  t.is(
    result.outcome === 'error' ? result.error.message : result.outcome,
    'Pod shop/web: spec.containers[0].env[0]: GRPC_XDS_BOOTSTRAP is set by the grpc template; remove it from the container',
  );
});

test('the handler allows what is not a Pod CREATE, never throws, and counts every review', async (t) => {
  const registry = new Registry();
  const handler = createInjectHandler({ registry, image: IMAGE });
  const base = { uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, namespace: 'shop' };
  t.deepEqual(handler({ ...base, operation: 'UPDATE', object: simplePod() }).response, { uid: 'u', allowed: true });
  t.deepEqual(handler({ ...base, operation: 'CREATE', subResource: 'binding', object: {} }).response, {
    uid: 'u',
    allowed: true,
  });
  t.deepEqual(
    handler({ ...base, kind: { group: 'apps', version: 'v1', kind: 'Deployment' }, operation: 'CREATE', object: {} })
      .response,
    { uid: 'u', allowed: true },
  );
  // A pod the API server would never send (initContainers not a list) fails inside the injector: allowed.
  const broken = handler({
    ...base,
    operation: 'CREATE',
    object: { metadata: { name: 'x' }, spec: { containers: [{ name: 'x' }], initContainers: 5 } },
  });
  t.true(broken.response!.allowed);
  t.regex(broken.response!.warnings?.[0] ?? '', /^trellis: sidecar not injected: /);
  t.true(handler({ ...base, operation: 'CREATE', object: simplePod() }).response!.allowed);
  const text = await registry.metrics();
  t.regex(text, /trellis_injections_total\{result="skipped"\} 3/);
  t.regex(text, /trellis_injections_total\{result="error"\} 1/);
  t.regex(text, /trellis_injections_total\{result="injected"\} 1/);
  t.regex(text, /trellis_injection_duration_seconds_count\{result="injected"\} 1/);
});

test("a Job's pod (restartPolicy Never): the proxy is a native sidecar, so the Job can finish", (t) => {
  const job = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'migrate', namespace: 'shop' },
    spec: {
      backoffLimit: 0,
      template: {
        metadata: { labels: { app: 'migrate' } },
        spec: { restartPolicy: 'Never', containers: [{ name: 'migrate', image: 'migrate:1' }] },
      },
    },
  };
  const result = injectDocument(job, { image: IMAGE });
  if (!('object' in result)) throw new Error(result.error);
  t.true(result.injected);
  const pod = (result.object as typeof job).spec.template as Pod;
  t.is(pod.spec!.restartPolicy, 'Never');
  t.deepEqual(
    pod.spec!.initContainers!.map((c) => [c.name, c.restartPolicy]),
    [
      ['trellis-init', undefined],
      ['trellis-proxy', 'Always'],
    ],
  );
  t.deepEqual(
    pod.spec!.containers.map((c) => c.name),
    ['migrate'],
    'only the job container decides when the pod is done',
  );
  t.deepEqual(job.spec.template.spec.containers.length, 1, 'the input is not modified');
});
