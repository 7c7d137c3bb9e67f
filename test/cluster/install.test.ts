// The mesh installed in a real single-node cluster (tools/cluster) and pods injected by its webhook, as a
// user meets it: `kubectl apply -f deploy/install.yaml`, a labelled namespace, pods that come up with their
// sidecar; then the same control plane installed with the real helm. One cluster for the file; the tests
// run in order (the helm test replaces the kubectl install at the end).
import fs from 'node:fs';
import path from 'node:path';
import anyTest from 'ava';
import { X509Certificate } from 'node:crypto';
import { peerBinary } from '../helpers/peer-paths.js';
import { useLocalCluster, type TestCluster } from '../helpers/local-cluster.js';
import { imageRef } from '../../injector/images.js';
import { repoRoot } from '../../deploy/images/build.js';

const suite = useLocalCluster(anyTest);

const AGENT_IMAGE = imageRef('agent');
const PROXY_IMAGE = imageRef('proxy');
const NODE = '/usr/local/bin/node';
const INJECT = { 'trellis.dev/inject': 'enabled' };
const HTTP_SERVER = "require('http').createServer((q,s)=>s.end('ok')).listen(8080)";
const MIN = 60_000;

interface ContainerStatus {
  name: string;
  ready: boolean;
  started?: boolean;
  restartCount: number;
  state: { running?: object; waiting?: { reason?: string }; terminated?: { exitCode: number; reason?: string } };
}

interface PodJson {
  metadata: { name: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  spec: {
    containers: { name: string; image: string }[];
    initContainers?: { name: string; restartPolicy?: string; image: string }[];
  };
  status: {
    phase: string;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
    containerStatuses?: ContainerStatus[];
    initContainerStatuses?: ContainerStatus[];
  };
}

/** A pod running a tiny HTTP server from the agent image (Node is in it), with `annotations`. */
function appPod(name: string, annotations: Record<string, string> = {}, labels: Record<string, string> = {}): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, annotations, labels: { app: name, ...labels } },
    spec: {
      // UID 1337 so that the application may read the agent's key.pem (sidecar/README.md).
      securityContext: { runAsUser: 1337, runAsGroup: 1337 },
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'app',
          image: AGENT_IMAGE,
          imagePullPolicy: 'Never',
          command: [NODE, '-e', HTTP_SERVER],
          readinessProbe: { httpGet: { port: 8080, path: '/' }, periodSeconds: 1 },
        },
      ],
    },
  });
}

async function pod(cluster: TestCluster, ns: string, name: string): Promise<PodJson> {
  return cluster.getJson<PodJson>(['pod', name, '-n', ns]);
}

async function waitPod(
  cluster: TestCluster,
  ns: string,
  name: string,
  condition: string,
  timeout = '240s',
): Promise<void> {
  const r = await cluster.kubectl(['wait', '-n', ns, `--for=${condition}`, `pod/${name}`, `--timeout=${timeout}`], {
    allowFailure: true,
    timeoutMs: 300_000,
  });
  if (r.code !== 0) throw new Error(`pod ${ns}/${name} not ${condition}: ${r.stderr}\n${await cluster.diagnose(ns)}`);
}

/** The control plane is installed and its webhook injects: what every injection test below needs. */
let installed = false;

/**
 * The webhook is called with failurePolicy Fail: pods can be created only while a trellisd endpoint is
 * ready. Waits for that (it is at once, unless the control plane restarted), and says so when it was not.
 */
async function controlPlaneReady(
  t: { log: (s: string) => void; fail: (s: string) => void },
  cluster: TestCluster,
): Promise<void> {
  const r = await cluster.kubectl(
    ['rollout', 'status', 'deployment/trellisd', '-n', 'trellis-system', '--timeout=240s'],
    {
      allowFailure: true,
      timeoutMs: 260_000,
    },
  );
  if (r.code !== 0) t.fail(`trellisd is not ready: ${r.stderr}\n${await cluster.diagnose('trellis-system')}`);
  const restarts = await cluster.kubectl([
    'get',
    'pods',
    '-n',
    'trellis-system',
    '-o',
    'jsonpath={range .items[*]}{.metadata.name}={.status.containerStatuses[0].restartCount} {end}',
  ]);
  if (/=[1-9]/.test(restarts.stdout)) t.log(`trellisd restarts: ${restarts.stdout.trim()}`);
}

suite.serial(
  'kubectl apply -f deploy/install.yaml: the control plane Deployment becomes Ready and its webhooks answer',
  async (t, cluster) => {
    t.timeout(10 * MIN);
    const started = Date.now();
    await cluster.kubectl(['apply', '--server-side', '-f', path.join(repoRoot, 'deploy/install.yaml')], {
      timeoutMs: 120_000,
    });
    const rollout = await cluster.kubectl(
      ['rollout', 'status', 'deployment/trellisd', '-n', 'trellis-system', '--timeout=300s'],
      { allowFailure: true, timeoutMs: 320_000 },
    );
    if (rollout.code !== 0)
      t.fail(`trellisd not rolled out: ${rollout.stderr}\n${await cluster.diagnose('trellis-system')}`);
    const deploy = await cluster.getJson<{ status: { readyReplicas?: number; replicas?: number } }>([
      'deployment',
      'trellisd',
      '-n',
      'trellis-system',
    ]);
    t.is(deploy.status.readyReplicas, deploy.status.replicas);
    t.log(
      `trellisd ${deploy.status.readyReplicas}/${deploy.status.replicas} Ready ${((Date.now() - started) / 1000).toFixed(1)} s after apply`,
    );

    // The mutating webhook answers: a server-side dry run of a pod in a labelled namespace comes back injected.
    const ns = await cluster.createNamespace('webhook', INJECT);
    const dry = await cluster.kubectl(['create', '--dry-run=server', '-n', ns, '-o', 'json', '-f', '-'], {
      input: appPod('dry'),
    });
    const injected = JSON.parse(dry.stdout) as PodJson;
    t.truthy(injected.metadata.annotations?.['trellis.dev/status'], 'the dry-run pod carries trellis.dev/status');

    // The validating webhook answers: a VirtualService the CRD schema accepts but Trellis refuses (a regex
    // RE2 cannot compile) is denied by validation.trellis.dev.
    const vs = {
      apiVersion: 'networking.trellis.dev/v1alpha1',
      kind: 'VirtualService',
      metadata: { name: 'bad-regex', namespace: ns },
      spec: {
        hosts: ['reviews'],
        http: [{ match: [{ uri: { regex: '(?<=a)b' } }], route: [{ destination: { host: 'reviews' } }] }],
      },
    };
    const denied = await cluster.kubectl(['apply', '--dry-run=server', '-f', '-'], {
      input: JSON.stringify(vs),
      allowFailure: true,
    });
    t.not(denied.code, 0);
    t.regex(denied.stderr, /admission webhook "validation\.trellis\.dev" denied the request/);
    installed = true;
  },
);

suite.serial(
  'in a labelled namespace a gRPC-template pod comes up injected and Ready (2/2), its agent holding an SVID for its ServiceAccount',
  async (t, cluster) => {
    t.timeout(8 * MIN);
    if (!installed) return t.fail('the install test failed');
    await controlPlaneReady(t, cluster);
    const ns = await cluster.createNamespace('grpc', INJECT);
    await cluster.apply(appPod('grpc-app', { 'trellis.dev/template': 'grpc' }), ns);
    await waitPod(cluster, ns, 'grpc-app', 'condition=Ready');
    const p = await pod(cluster, ns, 'grpc-app');
    const proxy = p.spec.initContainers?.find((c) => c.name === 'trellis-proxy');
    t.is(proxy?.restartPolicy, 'Always', 'trellis-proxy is a native sidecar');
    t.is(proxy?.image, AGENT_IMAGE);
    const statuses = [...(p.status.initContainerStatuses ?? []), ...(p.status.containerStatuses ?? [])];
    const ready = statuses.filter((s) => s.ready);
    t.deepEqual(
      ready.map((s) => s.name).sort(),
      ['app', 'trellis-proxy'],
      `2/2 ready: ${JSON.stringify(statuses.map((s) => [s.name, s.ready]))}`,
    );
    // The application reads the agent's certificate (UID 1337): its SPIFFE ID names this pod's ServiceAccount.
    const cert = await cluster.kubectl([
      'exec',
      '-n',
      ns,
      'grpc-app',
      '-c',
      'app',
      '--',
      NODE,
      '-e',
      "process.stdout.write(require('fs').readFileSync('/var/run/trellis/cert.pem'))",
    ]);
    const x509 = new X509Certificate(cert.stdout);
    t.regex(x509.subjectAltName ?? '', new RegExp(`URI:spiffe://[^/]+/ns/${ns}/sa/default`));
    const bootstrap = await cluster.kubectl([
      'exec',
      '-n',
      ns,
      'grpc-app',
      '-c',
      'app',
      '--',
      NODE,
      '-e',
      'process.stdout.write(process.env.GRPC_XDS_BOOTSTRAP)',
    ]);
    t.is(bootstrap.stdout, '/var/run/trellis/grpc-bootstrap.json');
  },
);

suite.serial('a pod in an unlabelled namespace is untouched', async (t, cluster) => {
  t.timeout(5 * MIN);
  if (!installed) return t.fail('the install test failed');
  await controlPlaneReady(t, cluster);
  const ns = await cluster.createNamespace('plain');
  await cluster.apply(appPod('plain-app'), ns);
  await waitPod(cluster, ns, 'plain-app', 'condition=Ready');
  const p = await pod(cluster, ns, 'plain-app');
  t.deepEqual(
    p.spec.containers.map((c) => c.name),
    ['app'],
  );
  t.is(p.spec.initContainers, undefined);
  t.is(p.metadata.annotations?.['trellis.dev/status'], undefined);
});

suite.serial(
  'the opt-out annotation trellis.dev/inject: "false" is honoured in a labelled namespace',
  async (t, cluster) => {
    t.timeout(5 * MIN);
    if (!installed) return t.fail('the install test failed');
    await controlPlaneReady(t, cluster);
    const ns = await cluster.createNamespace('optout', INJECT);
    await cluster.apply(appPod('opted-out', { 'trellis.dev/inject': 'false' }), ns);
    await waitPod(cluster, ns, 'opted-out', 'condition=Ready');
    const p = await pod(cluster, ns, 'opted-out');
    t.deepEqual(
      p.spec.containers.map((c) => c.name),
      ['app'],
    );
    t.is(p.spec.initContainers, undefined);
    t.is(p.metadata.annotations?.['trellis.dev/status'], undefined);
  },
);

suite.serial('a Job with a native sidecar (gRPC template) completes', async (t, cluster) => {
  t.timeout(8 * MIN);
  if (!installed) return t.fail('the install test failed');
  await controlPlaneReady(t, cluster);
  const ns = await cluster.createNamespace('job', INJECT);
  const job = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'once' },
    spec: {
      backoffLimit: 0,
      template: {
        metadata: { annotations: { 'trellis.dev/template': 'grpc' } },
        spec: {
          restartPolicy: 'Never',
          securityContext: { runAsUser: 1337, runAsGroup: 1337 },
          containers: [
            {
              name: 'work',
              image: AGENT_IMAGE,
              imagePullPolicy: 'Never',
              command: [NODE, '-e', "require('fs').statSync('/var/run/trellis/cert.pem'); console.log('done')"],
            },
          ],
        },
      },
    },
  };
  await cluster.apply(JSON.stringify(job), ns);
  const r = await cluster.kubectl(['wait', '-n', ns, '--for=condition=Complete', 'job/once', '--timeout=240s'], {
    allowFailure: true,
    timeoutMs: 300_000,
  });
  if (r.code !== 0) t.fail(`the Job did not complete: ${r.stderr}\n${await cluster.diagnose(ns)}`);
  const pods = await cluster.getJson<{ items: PodJson[] }>(['pods', '-n', ns, '-l', 'job-name=once']);
  const p = pods.items[0];
  t.truthy(p);
  t.is(p?.spec.initContainers?.find((c) => c.name === 'trellis-proxy')?.restartPolicy, 'Always');
  t.is(p?.status.phase, 'Succeeded');
  const logs = await cluster.kubectl(['logs', '-n', ns, p?.metadata.name ?? '', '-c', 'work']);
  t.is(logs.stdout.trim(), 'done');
});

/** A node one-liner that asks the agent's SDS socket for `default` and prints what it answers. */
const SDS_PROBE = `
const grpc = require('/app/node_modules/@grpc/grpc-js');
const fld = (f, v) => { const b = Buffer.from(v); return Buffer.concat([Buffer.from([f << 3 | 2, b.length]), b]); };
const e = process.env;
const node = fld(1, 'sidecar~' + e.INSTANCE_IP + '~' + e.POD_NAME + '.' + e.POD_NAMESPACE + '~' + e.POD_NAMESPACE + '.svc.cluster.local');
const req = Buffer.concat([fld(2, node), fld(3, 'default'), fld(4, 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret')]);
const id = (x) => x;
const client = new grpc.Client('unix:///var/run/trellis/sds.sock', grpc.credentials.createInsecure());
const call = client.makeBidiStreamRequest('/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets', id, id);
const timer = setTimeout(() => { console.log('TIMEOUT'); process.exit(2); }, 20000);
call.on('data', (res) => {
  const text = res.toString('latin1');
  console.log(JSON.stringify({ bytes: res.length, default: text.includes('default'), pem: text.includes('-----BEGIN CERTIFICATE-----') }));
  clearTimeout(timer); process.exit(0);
});
call.on('error', (e) => { console.log('ERROR ' + e.message); process.exit(1); });
call.write(req);
`;

suite.serial(
  'an Envoy-template pod: init rules in its netns, SDS served, only the absent Envoy keeps it from Ready',
  async (t, cluster) => {
    t.timeout(8 * MIN);
    if (!installed) return t.fail('the install test failed');
    await controlPlaneReady(t, cluster);
    const ns = await cluster.createNamespace('envoy', INJECT);
    await cluster.apply(appPod('envoy-app'), ns);
    // trellis-init has run and trellis-proxy (the agent) runs; its `started` stays false (the startup probe
    // waits for Envoy).
    await waitPod(cluster, ns, 'envoy-app', `jsonpath={.status.initContainerStatuses[1].state.running.startedAt}`);
    const p = await pod(cluster, ns, 'envoy-app');
    const init = p.status.initContainerStatuses?.find((s) => s.name === 'trellis-init');
    t.is(init?.state.terminated?.exitCode, 0, `trellis-init: ${JSON.stringify(init?.state)}`);
    t.is(p.spec.initContainers?.find((c) => c.name === 'trellis-proxy')?.image, PROXY_IMAGE);

    // The capture rules are in the pod's network namespace: iptables-save from an ephemeral container (root,
    // NET_ADMIN: reading the ruleset needs both; trellis-proxy runs as 1337 without capabilities).
    const profile = path.join(cluster.dir, 'debug-netadmin.json');
    fs.writeFileSync(
      profile,
      JSON.stringify({
        securityContext: { runAsUser: 0, runAsNonRoot: false, capabilities: { add: ['NET_ADMIN', 'NET_RAW'] } },
      }),
    );
    await cluster.kubectl([
      'debug',
      '-n',
      ns,
      'envoy-app',
      `--image=${PROXY_IMAGE}`,
      '--image-pull-policy=Never',
      '--container=rules',
      '--profile=general',
      `--custom=${profile}`,
      '--attach=false',
      '--',
      '/usr/sbin/iptables-save',
    ]);
    await waitPod(
      cluster,
      ns,
      'envoy-app',
      `jsonpath={.status.ephemeralContainerStatuses[0].state.terminated.reason}=Completed`,
    );
    const rules = (await cluster.kubectl(['logs', '-n', ns, 'envoy-app', '-c', 'rules'])).stdout;
    t.regex(rules, /-A OUTPUT .*-j TRELLIS_OUTPUT|TRELLIS/, `iptables-save:\n${rules}`);
    t.regex(rules, /--uid-owner 1337/);
    t.regex(rules, /REDIRECT --to-ports 15001/);

    // The agent's readiness reason: once it has its certificate and reached the control plane (it serves
    // SDS from then on), the only reason left is Envoy. Polled with a deadline: the certificate request
    // takes a while on a busy machine.
    const readiness = async (): Promise<string> =>
      (
        await cluster.kubectl(
          [
            'exec',
            '-n',
            ns,
            'envoy-app',
            '-c',
            'trellis-proxy',
            '--',
            NODE,
            '-e',
            "require('http').get('http://127.0.0.1:15021/healthz/ready',r=>{let b='';r.on('data',d=>b+=d);r.on('end',()=>console.log(r.statusCode+' '+b.trim()))})",
          ],
          { allowFailure: true },
        )
      ).stdout.trim();
    let reason = await readiness();
    for (const deadline = Date.now() + 180_000; !/envoy/i.test(reason) && Date.now() < deadline;) {
      await new Promise((r) => setTimeout(r, 1000));
      reason = await readiness();
    }
    t.log(`readiness: ${reason}`);
    t.regex(reason, /^503 not ready: envoy could not be started: .*ENOENT/);
    const after = await pod(cluster, ns, 'envoy-app');
    t.is(after.status.conditions?.find((c) => c.type === 'Ready')?.status, 'False');

    // The agent serves SDS on its socket (as the agent's user, who alone may open it).
    const sds = await cluster.kubectl(
      ['exec', '-n', ns, 'envoy-app', '-c', 'trellis-proxy', '--', NODE, '-e', SDS_PROBE],
      {
        allowFailure: true,
      },
    );
    t.is(sds.code, 0, `SDS probe: ${sds.stdout}${sds.stderr}`);
    const answer = JSON.parse(sds.stdout.trim()) as { default: boolean; pem: boolean };
    t.true(answer.default && answer.pem, `SDS answered with the workload certificate: ${sds.stdout}`);

    // Everything else runs: the agent's container is running; the application waits for its sidecar's startup.
    const proxyStatus = after.status.initContainerStatuses?.find((s) => s.name === 'trellis-proxy');
    t.truthy(proxyStatus?.state.running, `trellis-proxy: ${JSON.stringify(proxyStatus?.state)}`);
    t.log(`app container: ${JSON.stringify(after.status.containerStatuses?.[0]?.state)}`);
  },
);

suite.serial(
  'helm install (deploy/helm/trellis, the real helm): the control plane becomes Ready and its webhook answers',
  async (t, cluster) => {
    t.timeout(12 * MIN);
    const helm = peerBinary('helm');
    if (!helm) return t.fail('the helm peer is not built (npm run peers -- helm)');
    // Replace the kubectl install (cluster-scoped objects would collide).
    await cluster.kubectl(
      ['delete', '--ignore-not-found', '--wait=true', '-f', path.join(repoRoot, 'deploy/install.yaml')],
      {
        timeoutMs: 300_000,
        allowFailure: true,
      },
    );
    const { run } = await import('../../tools/cluster/exec.js');
    const env = [
      'env',
      `KUBECONFIG=${cluster.kubeconfigPath}`,
      `HOME=${cluster.dir}`,
      `HELM_CACHE_HOME=${cluster.dir}/helm/cache`,
      `HELM_CONFIG_HOME=${cluster.dir}/helm/config`,
      `HELM_DATA_HOME=${cluster.dir}/helm/data`,
    ];
    const started = Date.now();
    const install = await run(
      env[0] as string,
      [
        ...env.slice(1),
        helm,
        'install',
        'trellis',
        path.join(repoRoot, 'deploy/helm/trellis'),
        '--namespace',
        'trellis-system',
        '--create-namespace',
        '--wait',
        '--timeout',
        '5m',
      ],
      { allowFailure: true, timeoutMs: 330_000 },
    );
    if (install.code !== 0)
      t.fail(`helm install: ${install.stderr}${install.stdout}\n${await cluster.diagnose('trellis-system')}`);
    const deploy = await cluster.getJson<{ status: { readyReplicas?: number; replicas?: number } }>([
      'deployment',
      'trellisd',
      '-n',
      'trellis-system',
    ]);
    t.true((deploy.status.readyReplicas ?? 0) >= 1);
    t.is(deploy.status.readyReplicas, deploy.status.replicas);
    t.log(`helm install --wait: ${((Date.now() - started) / 1000).toFixed(1)} s, ${deploy.status.readyReplicas} ready`);
    const ns = await cluster.createNamespace('helm', INJECT);
    const dry = await cluster.kubectl(['create', '--dry-run=server', '-n', ns, '-o', 'json', '-f', '-'], {
      input: appPod('dry'),
    });
    t.truthy((JSON.parse(dry.stdout) as PodJson).metadata.annotations?.['trellis.dev/status']);
    const uninstall = await run(
      env[0] as string,
      [...env.slice(1), helm, 'uninstall', 'trellis', '--namespace', 'trellis-system', '--wait'],
      {
        allowFailure: true,
        timeoutMs: 300_000,
      },
    );
    t.is(uninstall.code, 0, uninstall.stderr);
  },
);
