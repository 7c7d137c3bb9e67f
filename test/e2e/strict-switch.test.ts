// PERMISSIVE → STRICT (and back) on a running namespace, end to end and proxyless, as a user does it to a
// live mesh: `trellis control-plane` (local mode, CA), one `trellis agent` per workload, a real
// @grpc/grpc-js-xds XdsServer and real XdsChannelCredentials clients on the agents' bootstraps, calls
// flowing the whole time. The client's cluster (transport socket added) and the server's Listener (mTLS
// chain) reach two different agents, so in a cluster they switch at different moments. Each order is forced
// here by stopping one agent (SIGSTOP) until the other side has visibly switched:
//   - servers first: the client still dials plaintext and is refused ("Failed to connect") until its
//     cluster arrives; it must then dial mTLS at once, not after its connection backoff;
//   - clients first: the client dials mTLS into a plaintext server ("wrong version number") until the
//     server's Listener arrives; it must then get through;
//   - both at once, with a warm channel and with a channel whose first call races the switch.
// Every time: the calls end up on mutual TLS with both SPIFFE IDs verified, and going back to PERMISSIVE
// ends up on plaintext. Timing goals are logged, and each wait has a generous deadline (a shared machine).
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { register, XdsChannelCredentials, XdsServer, XdsServerCredentials } from '@grpc/grpc-js-xds';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { uriSans } from '../../certs/index.js';
import { echoService, type EchoReply, type EchoRequest } from '../../examples/demo/echo.js';
import { backendManifests, fqdn, freePorts, MeshDir, namespaceManifest, serviceManifest } from '../helpers/mesh-e2e.js';
import { localControlPlaneArgs, startLocalGrpcAgent, startTrellis, type TrellisProcess } from '../helpers/process.js';
import { waitFor, within } from '../helpers/wait.js';

register();

const NS = 'shop';
const BOOTSTRAP_OPTION = 'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config';
const EchoClient = grpc.makeGenericClientConstructor(echoService, 'Echo');
const CLIENT_ID = `spiffe://cluster.local/ns/${NS}/sa/reviews`;
const SERVER_ID = `spiffe://cluster.local/ns/${NS}/sa/ratings`;
/** Deadline of one wait for the mesh to converge (generous: the machine is shared). */
const CONVERGE_MS = 60_000;

interface Agent {
  readonly proc: TrellisProcess;
  readonly bootstrap: string;
}

type Result =
  | { readonly ok: true; readonly clientId: string; readonly serverId: string }
  | { readonly ok: false; readonly code: grpc.status; readonly details: string };

let tmp: string;
let mesh: MeshDir;
let cp: TrellisProcess | undefined;
let securePort: number;
let serverPort: number;
let serverAgent: Agent;
let clientAgent: Agent;
let server: XdsServer;
let warm: grpc.Client;
let plainProbe: grpc.Client;
let channels = 0;

async function startAgent(name: string, serviceAccount: string, token: string): Promise<Agent> {
  const { proc, bootstrapPath } = await startLocalGrpcAgent({
    securePort,
    workDir: tmp,
    token,
    namespace: NS,
    serviceAccount,
    podName: name,
    labels: `app=${serviceAccount}`,
  });
  return { proc, bootstrap: await fs.readFile(bootstrapPath, 'utf8') };
}

/** A new channel to the server with an XdsClient of its own (a node id of its own on the client agent). */
function newClient(): grpc.Client {
  const bootstrap = JSON.parse(clientAgent.bootstrap) as { node: { id: string } };
  bootstrap.node.id = `${bootstrap.node.id}-${++channels}`;
  return new EchoClient(
    `xds:///${fqdn('ratings', NS)}:8080`,
    new XdsChannelCredentials(grpc.credentials.createInsecure()),
    { [BOOTSTRAP_OPTION]: JSON.stringify(bootstrap) },
  );
}

function call(client: grpc.Client, deadlineMs = 3_000): Promise<Result> {
  return new Promise((resolve) => {
    const surface = client.makeUnaryRequest(
      echoService.Echo.path,
      echoService.Echo.requestSerialize,
      echoService.Echo.responseDeserialize,
      { message: 'hi' },
      new grpc.Metadata(),
      { deadline: Date.now() + deadlineMs },
      (err, reply) => {
        if (err || !reply) {
          resolve({ ok: false, code: err?.code ?? grpc.status.UNKNOWN, details: err?.details ?? 'no reply' });
          return;
        }
        resolve({
          ok: true,
          clientId: reply.message ?? '',
          serverId: uriSans(surface.getAuthContext()?.sslPeerCertificate).join(','),
        });
      },
    );
  });
}

/** The part of a grpc-js error that says why the connection failed (after the LB policies' prefixes). */
const lastError = (details: string): string => details.replace(/^.*Last error: /s, '').slice(0, 120);

const isMtls = (r: Result): boolean => r.ok && r.clientId === CLIENT_ID && r.serverId === SERVER_ID;
const isPlaintext = (r: Result): boolean => r.ok && r.clientId === '' && r.serverId === '';

/** Calls until `n` calls in a row satisfy `accept`; the time it took. Failures on the way are counted. */
async function untilCalls(
  what: string,
  client: grpc.Client,
  accept: (r: Result) => boolean,
  failures: Map<string, number>,
  n = 5,
): Promise<number> {
  const started = Date.now();
  let inARow = 0;
  await waitFor(
    what,
    async () => {
      const r = await call(client);
      if (!r.ok) failures.set(lastError(r.details), (failures.get(lastError(r.details)) ?? 0) + 1);
      inARow = accept(r) ? inARow + 1 : 0;
      return inARow >= n;
    },
    CONVERGE_MS,
  );
  return Date.now() - started;
}

/** Calls in the background until stopped (load during a switch); returns every result. */
function background(client: grpc.Client): { stop: () => Promise<Result[]> } {
  const results: Result[] = [];
  let running = true;
  const loop = (async () => {
    while (running) results.push(await call(client));
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return results;
    },
  };
}

async function setMode(mode: 'STRICT' | 'PERMISSIVE'): Promise<void> {
  if (mode === 'PERMISSIVE') return mesh.remove('mtls');
  await mesh.write('mtls', [
    {
      apiVersion: 'security.trellis.dev/v1alpha1',
      kind: 'PeerAuthentication',
      metadata: { name: 'default', namespace: NS },
      spec: { mtls: { mode: 'STRICT' } },
    },
  ]);
}

/** The server's Listener as the server applies it: a plaintext client (not through xDS) gets through, or not. */
async function serverIsPlaintext(): Promise<boolean> {
  return (await call(plainProbe, 1_000)).ok;
}

/** Back to PERMISSIVE with every side plaintext (the state each test starts from). */
async function permissiveEverywhere(): Promise<void> {
  await setMode('PERMISSIVE');
  await waitFor('the server to serve plaintext', serverIsPlaintext, CONVERGE_MS);
  await untilCalls('the warm client on plaintext', warm, isPlaintext, new Map());
}

const stopped = (agent: Agent): void => void agent.proc.child.kill('SIGSTOP');
const resumed = (agent: Agent): void => void agent.proc.child.kill('SIGCONT');

test.before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-strict-switch-'));
  mesh = await MeshDir.create();
  const [echoPort, xdsPort, secure, monitoring] = await freePorts(4);
  serverPort = echoPort!;
  securePort = secure!;
  await fs.writeFile(
    path.join(tmp, 'tokens.yaml'),
    YAML.stringify([
      { token: 'token-of-the-ratings-server-0123', namespace: NS, serviceAccount: 'ratings' },
      { token: 'token-of-the-reviews-client-0123', namespace: NS, serviceAccount: 'reviews' },
    ]),
  );
  await mesh.write('ns', [namespaceManifest(NS)]);
  await mesh.write('ratings', [
    serviceManifest('ratings', NS),
    ...backendManifests('ratings', NS, { pod: 'ratings-0', port: serverPort }),
  ]);
  cp = startTrellis(
    localControlPlaneArgs({
      configDir: mesh.dir,
      workDir: tmp,
      xdsPort: xdsPort!,
      securePort,
      monitoringPort: monitoring!,
    }),
  );
  await cp.waitForLog((l) => l.msg === 'control plane listening', 30_000);
  [serverAgent, clientAgent] = await Promise.all([
    startAgent('ratings-0', 'ratings', 'token-of-the-ratings-server-0123'),
    startAgent('reviews-0', 'reviews', 'token-of-the-reviews-client-0123'),
  ]);
  server = new XdsServer({ [BOOTSTRAP_OPTION]: serverAgent.bootstrap, drainGraceTimeMs: 2_000 } as grpc.ServerOptions);
  server.addService(echoService, {
    Echo: (c: grpc.ServerUnaryCall<EchoRequest, EchoReply>, callback: grpc.sendUnaryData<EchoReply>) =>
      callback(null, { message: uriSans(c.getAuthContext()?.sslPeerCertificate).join(','), server: 'ratings-0' }),
  });
  await within(
    'the xDS server to serve',
    new Promise<void>((resolve, reject) =>
      server.bindAsync(
        `127.0.0.1:${serverPort}`,
        new XdsServerCredentials(grpc.ServerCredentials.createInsecure()),
        (err) => (err ? reject(err) : resolve()),
      ),
    ),
    30_000,
  );
  plainProbe = new EchoClient(`127.0.0.1:${serverPort}`, grpc.credentials.createInsecure());
  warm = newClient();
  await untilCalls('a first plaintext call', warm, isPlaintext, new Map());
});

test.after.always(async () => {
  warm?.close();
  plainProbe?.close();
  server?.forceShutdown();
  for (const agent of [serverAgent, clientAgent]) if (agent) resumed(agent);
  await Promise.all([serverAgent?.proc.stop(), clientAgent?.proc.stop(), cp?.stop()]);
  await mesh?.cleanup();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

test.serial(
  'both sides at once: a warm channel and a new one end up on mTLS; PERMISSIVE brings plaintext back',
  async (t) => {
    const load = background(warm);
    const fresh = newClient();
    const failures = new Map<string, number>();
    await setMode('STRICT');
    const [warmMs, freshMs] = await Promise.all([
      untilCalls('the warm channel on mTLS', warm, isMtls, failures),
      untilCalls('a channel whose first call races the switch on mTLS', fresh, isMtls, failures),
    ]);
    const during = await load.stop();
    t.log(`STRICT: warm channel ${warmMs} ms, new channel ${freshMs} ms; failures ${JSON.stringify([...failures])}`);
    t.true(during.length > 0);
    t.true(isMtls(await call(fresh)));
    fresh.close();
    await permissiveEverywhere();
    t.true(isPlaintext(await call(warm)));
  },
);

test.serial(
  'servers first: a client refused while it still dials plaintext switches to mTLS when its cluster arrives',
  async (t) => {
    const failures = new Map<string, number>();
    stopped(clientAgent);
    try {
      await setMode('STRICT');
      await waitFor('the server to refuse plaintext', async () => !(await serverIsPlaintext()), CONVERGE_MS);
      // The client, its cluster still plaintext, is refused: its connection attempts fail and back off.
      const refused = await waitFor(
        'the plaintext client to be refused',
        async () => {
          const r = await call(warm, 1_000);
          return !r.ok ? r : undefined;
        },
        CONVERGE_MS,
      );
      t.log(`refused while plaintext: ${grpc.status[refused.code]} ${lastError(refused.details)}`);
    } finally {
      resumed(clientAgent);
    }
    const ms = await untilCalls('the client on mTLS once its cluster arrived', warm, isMtls, failures);
    t.log(`client agent resumed → mTLS in ${ms} ms; failures ${JSON.stringify([...failures])}`);
    await permissiveEverywhere();
    t.pass();
  },
);

test.serial(
  'clients first: a client whose mTLS handshakes fail against a plaintext server gets through once it switches',
  async (t) => {
    const failures = new Map<string, number>();
    stopped(serverAgent);
    let tlsFailure: Result | undefined;
    try {
      await setMode('STRICT');
      // The client dials mTLS, the server still speaks plaintext: the handshakes fail.
      tlsFailure = await waitFor(
        'the client to dial mTLS into the plaintext server',
        async () => {
          const r = await call(warm, 1_000);
          return !r.ok && /ssl|tls|wrong version/i.test(r.details) ? r : undefined;
        },
        CONVERGE_MS,
      );
      t.true(await serverIsPlaintext(), 'the server has not switched yet');
    } finally {
      resumed(serverAgent);
    }
    t.log(`handshakes failed meanwhile: ${tlsFailure && !tlsFailure.ok ? lastError(tlsFailure.details) : ''}`);
    const ms = await untilCalls('the client on mTLS once the server switched', warm, isMtls, failures);
    t.log(`server agent resumed → mTLS in ${ms} ms; failures ${JSON.stringify([...failures])}`);
    await permissiveEverywhere();
    t.pass();
  },
);
