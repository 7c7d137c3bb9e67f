// AuthorizationPolicy end to end, proxyless gRPC through agents under STRICT mutual TLS: `trellis
// control-plane` (a real process, CA + xDS on its TLS port), three `trellis agent` processes (the echo
// server's, an allowed caller's, a denied caller's), a real @grpc/grpc-js-xds XdsServer (with
// GRPC_XDS_EXPERIMENTAL_RBAC=true, test/helpers/grpc-rbac-env.ts) and XdsChannelCredentials clients using the agents'
// bootstraps and certificate files. Shown: with an ALLOW policy the allowed service account gets through, the
// other gets PERMISSION_DENIED from the server's RBAC filter, and a method the policy does not allow is
// refused while the allowed one passes; `trellis authz check` gives the same verdicts and names the policy;
// a DENY policy wins over the ALLOW; removing the policies opens the path again within seconds.
import '../helpers/grpc-rbac-env.js';
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { register, XdsChannelCredentials, XdsServer, XdsServerCredentials } from '@grpc/grpc-js-xds';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { uriSans } from '../../certs/index.js';
import { echoService, type EchoReply, type EchoRequest } from '../../examples/demo/echo.js';
import { backendManifests, fqdn, freePorts, MeshDir, namespaceManifest, serviceManifest } from '../helpers/mesh-e2e.js';
import { repoRoot } from '../helpers/peer-paths.js';
import { startTrellis, type TrellisProcess } from '../helpers/process.js';
import { waitFor, within } from '../helpers/wait.js';

register();

const NS = 'shop';
const BOOTSTRAP_OPTION = 'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config';
const ECHO = echoService.Echo.path;
const ADMIN = '/trellis.demo.Echo/Admin';
const FRONTEND_ID = `spiffe://cluster.local/ns/${NS}/sa/frontend`;
const INTRUDER_ID = `spiffe://cluster.local/ns/${NS}/sa/intruder`;

/** The echo service with a second method, so a policy can allow one and not the other. */
const echoWithAdmin = {
  ...echoService,
  Admin: { ...echoService.Echo, path: ADMIN },
} satisfies grpc.ServiceDefinition;
const Client = grpc.makeGenericClientConstructor(echoWithAdmin, 'Echo');

interface Agent {
  readonly proc: TrellisProcess;
  readonly bootstrap: string;
}

let tmp: string;
let mesh: MeshDir;
let cp: TrellisProcess;
let securePort: number;
let monitoringPort: number;
const agents: Agent[] = [];
let server: XdsServer;
let frontend: grpc.Client;
let intruder: grpc.Client;

async function startAgent(name: string, serviceAccount: string, token: string, labels: string): Promise<Agent> {
  const tokenFile = path.join(tmp, `${name}.token`);
  await fs.writeFile(tokenFile, token);
  const proc = startTrellis([
    'agent',
    ...['--proxy-type', 'grpc', '--control-plane', `127.0.0.1:${securePort}`],
    ...['--root-cert', path.join(tmp, 'state', 'root-cert.pem'), '--token-file', tokenFile],
    ...['--namespace', NS, '--service-account', serviceAccount, '--pod-name', name],
    ...['--instance-ips', '127.0.0.1', '--labels', labels, '--output-dir', path.join(tmp, `agent-${name}`)],
    ...['--health-host', '127.0.0.1', '--health-port', '0'],
  ]);
  const started = await proc.waitForLog((l) => l.msg === 'agent started', 60_000);
  const agent = { proc, bootstrap: await fs.readFile(String(started.bootstrap), 'utf8') };
  agents.push(agent);
  return agent;
}

test.before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-authz-e2e-'));
  mesh = await MeshDir.create();
  const [echoPort, xdsPort, secure, monitoring] = await freePorts(4);
  securePort = secure!;
  monitoringPort = monitoring!;
  await fs.writeFile(
    path.join(tmp, 'tokens.yaml'),
    YAML.stringify([
      { token: 'token-of-echo-server-0123456789', namespace: NS, serviceAccount: 'echo' },
      { token: 'token-of-the-frontend-012345678', namespace: NS, serviceAccount: 'frontend' },
      { token: 'token-of-the-intruder-012345678', namespace: NS, serviceAccount: 'intruder' },
    ]),
  );
  await mesh.write('ns', [namespaceManifest(NS), namespaceManifest('trellis-system')]);
  await mesh.write('echo', [
    serviceManifest('echo', NS),
    ...backendManifests('echo', NS, { pod: 'echo-0', port: echoPort! }),
  ]);
  await mesh.write('mtls', [
    {
      apiVersion: 'security.trellis.dev/v1alpha1',
      kind: 'PeerAuthentication',
      metadata: { name: 'default', namespace: 'trellis-system' },
      spec: { mtls: { mode: 'STRICT' } },
    },
  ]);
  cp = startTrellis([
    'control-plane',
    ...['--config-dir', mesh.dir, '--state-dir', path.join(tmp, 'state')],
    ...['--tokens-file', path.join(tmp, 'tokens.yaml'), '--xds-port', String(xdsPort)],
    ...['--secure-port', String(securePort), '--monitoring-port', String(monitoringPort)],
    ...['--debounce-after', '20ms'],
  ]);
  await cp.waitForLog((l) => l.msg === 'control plane listening', 60_000);
  const [serverAgent, frontendAgent, intruderAgent] = await Promise.all([
    startAgent('echo-0', 'echo', 'token-of-echo-server-0123456789', 'app=echo'),
    startAgent('frontend-0', 'frontend', 'token-of-the-frontend-012345678', 'app=frontend'),
    startAgent('intruder-0', 'intruder', 'token-of-the-intruder-012345678', 'app=intruder'),
  ]);

  server = new XdsServer({ [BOOTSTRAP_OPTION]: serverAgent!.bootstrap, drainGraceTimeMs: 1_000 } as grpc.ServerOptions);
  const reply =
    (method: string) => (call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, callback: grpc.sendUnaryData<EchoReply>) =>
      callback(null, {
        message: `${method} for ${uriSans(call.getAuthContext()?.sslPeerCertificate).join(',')}`,
        server: 'echo-0',
      });
  server.addService(echoWithAdmin, { Echo: reply('Echo'), Admin: reply('Admin') });
  await within(
    'the xDS echo server to serve',
    new Promise<void>((resolve, reject) =>
      server.bindAsync(
        `127.0.0.1:${echoPort}`,
        new XdsServerCredentials(grpc.ServerCredentials.createInsecure()),
        (err) => (err ? reject(err) : resolve()),
      ),
    ),
    60_000,
  );
  const client = (agent: Agent) =>
    new Client(`xds:///${fqdn('echo', NS)}:8080`, new XdsChannelCredentials(grpc.credentials.createInsecure()), {
      [BOOTSTRAP_OPTION]: agent.bootstrap,
    });
  frontend = client(frontendAgent!);
  intruder = client(intruderAgent!);
});

test.after.always(async () => {
  frontend?.close();
  intruder?.close();
  server?.forceShutdown();
  await Promise.all([...agents.map((a) => a.proc.stop()), cp?.stop()]);
  await mesh?.cleanup();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

type Result = { ok: true; message: string } | { ok: false; code: grpc.status; details: string };

function call(c: grpc.Client, method: string): Promise<Result> {
  return new Promise((resolve) => {
    c.makeUnaryRequest(
      method,
      echoService.Echo.requestSerialize,
      echoService.Echo.responseDeserialize,
      { message: 'hi' },
      new grpc.Metadata(),
      { deadline: Date.now() + 5_000 },
      (err, r) =>
        resolve(
          err || !r
            ? { ok: false, code: err?.code ?? grpc.status.UNKNOWN, details: err?.details ?? 'no reply' }
            : { ok: true, message: r.message },
        ),
    );
  });
}

const show = (r: Result) => (r.ok ? `OK ${r.message}` : `${grpc.status[r.code]}: ${r.details}`);
const denied = (r: Result) => !r.ok && r.code === grpc.status.PERMISSION_DENIED;

/** Polls `c` on `method` until the result satisfies `want` (the policy reached the server), or fails at the deadline. */
function until(
  what: string,
  c: grpc.Client,
  method: string,
  want: (r: Result) => boolean,
  ms = 60_000,
): Promise<Result> {
  return waitFor(
    what,
    async () => {
      const r = await call(c, method);
      return want(r) ? r : undefined;
    },
    ms,
  );
}

/** `trellis authz check … -o json` as a user runs it: its answer and exit code (0 allowed, 3 denied). */
async function authzCheck(from: string, method: string): Promise<{ code: number; answer: Record<string, unknown> }> {
  const args = ['--import', 'tsx', 'control-plane/main.ts', 'authz', 'check'];
  args.push('--control-plane', `http://127.0.0.1:${monitoringPort}`, '--from', from, '--to', `echo.${NS}`);
  args.push('--method', method, '-o', 'json');
  try {
    const { stdout } = await promisify(execFile)(process.execPath, args, { cwd: repoRoot });
    return { code: 0, answer: JSON.parse(stdout) as Record<string, unknown> };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number' || !e.stdout)
      throw new Error(`trellis authz check failed: ${e.stderr ?? String(err)}`, { cause: err });
    return { code: e.code, answer: JSON.parse(e.stdout) as Record<string, unknown> };
  }
}

const ALLOW_FRONTEND_ECHO = {
  apiVersion: 'security.trellis.dev/v1alpha1',
  kind: 'AuthorizationPolicy',
  metadata: { name: 'echo-callers', namespace: NS },
  spec: {
    selector: { matchLabels: { app: 'echo' } },
    action: 'ALLOW',
    rules: [
      {
        from: [{ source: { principals: [`cluster.local/ns/${NS}/sa/frontend`] } }],
        to: [{ operation: { paths: [ECHO] } }],
      },
    ],
  },
};

test.serial('without a policy, every mesh identity reaches every method (STRICT mTLS only)', async (t) => {
  const first = await until('the frontend to reach Echo', frontend, ECHO, (r) => r.ok);
  t.is(show(first), `OK Echo for ${FRONTEND_ID}`);
  t.is(show(await until('the intruder to reach Admin', intruder, ADMIN, (r) => r.ok)), `OK Admin for ${INTRUDER_ID}`);
  const check = await authzCheck(INTRUDER_ID, ADMIN);
  t.is(check.code, 0);
  t.is(check.answer.verdict, 'ALLOW');
});

test.serial(
  'an ALLOW policy: the allowed service account gets through, another gets PERMISSION_DENIED, and so does a method it does not allow',
  async (t) => {
    await mesh.write('authz', [ALLOW_FRONTEND_ECHO]);
    const refused = await until('the intruder to be refused', intruder, ECHO, denied);
    t.is(show(refused), 'PERMISSION_DENIED: Unauthorized RPC rejected');
    t.is(show(await call(frontend, ECHO)), `OK Echo for ${FRONTEND_ID}`);
    t.is(show(await call(frontend, ADMIN)), 'PERMISSION_DENIED: Unauthorized RPC rejected');
    t.true(denied(await call(intruder, ADMIN)));

    // trellis authz check, from the RBAC filter the server's proxyless Listener was sent.
    const allowed = await authzCheck(FRONTEND_ID, ECHO);
    t.is(allowed.code, 0);
    t.is(allowed.answer.verdict, 'ALLOW');
    const [w] = allowed.answer.workloads as Record<string, unknown>[];
    t.like(w, {
      workload: `${NS}/echo-0`,
      proxy: { id: 'echo-0.shop', type: 'grpc', config: 'sent' },
      verdict: 'ALLOW',
      decidedBy: {
        action: 'ALLOW',
        policy: `ns[${NS}]-policy[echo-callers]-rule[0]`,
        authorizationPolicy: { namespace: NS, name: 'echo-callers', rule: 0 },
      },
    });
    const other = await authzCheck(INTRUDER_ID, ECHO);
    t.is(other.code, 3);
    t.is(other.answer.verdict, 'DENY');
    t.regex(String((other.answer.workloads as Record<string, unknown>[])[0]!.reason), /no ALLOW policy matches/);
    t.is((await authzCheck(FRONTEND_ID, ADMIN)).answer.verdict, 'DENY');
  },
);

test.serial('a DENY policy is evaluated before the ALLOW: it refuses the allowed caller', async (t) => {
  await mesh.write('authz-deny', [
    {
      apiVersion: 'security.trellis.dev/v1alpha1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'no-frontend', namespace: NS },
      spec: { action: 'DENY', rules: [{ from: [{ source: { principals: [`cluster.local/ns/${NS}/sa/frontend`] } }] }] },
    },
  ]);
  t.is(
    show(await until('the frontend to be refused', frontend, ECHO, denied)),
    'PERMISSION_DENIED: Unauthorized RPC rejected',
  );
  const check = await authzCheck(FRONTEND_ID, ECHO);
  t.is(check.answer.verdict, 'DENY');
  t.like((check.answer.workloads as Record<string, unknown>[])[0], {
    decidedBy: { action: 'DENY', authorizationPolicy: { namespace: NS, name: 'no-frontend', rule: 0 } },
  });
  await mesh.remove('authz-deny');
  await until('the frontend to get through again', frontend, ECHO, (r) => r.ok);
  t.pass();
});

test.serial('removing the policy opens the path again within seconds', async (t) => {
  await mesh.remove('authz');
  const started = Date.now();
  const r = await until('the intruder to get through', intruder, ADMIN, (x) => x.ok, 30_000);
  t.is(show(r), `OK Admin for ${INTRUDER_ID}`);
  t.log(`open again ${Date.now() - started} ms after the policy file was removed`);
  t.is((await authzCheck(INTRUDER_ID, ADMIN)).answer.verdict, 'ALLOW');
  // No proxy NACKed anything: the RBAC filters were accepted by grpc-js every time.
  t.deepEqual(
    cp.logs.filter((l) => /NACK/i.test(String(l.msg))).map((l) => l.msg),
    [],
  );
});
