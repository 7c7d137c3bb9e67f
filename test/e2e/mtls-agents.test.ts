// Mutual TLS end to end, proxyless gRPC through agents: `trellis control-plane` (a real process, CA +
// xDS on its TLS port) and two `trellis agent` processes (one per workload: key, CSR, certificate
// files, gRPC bootstrap, local xDS proxy over mTLS to the control plane). A real @grpc/grpc-js-xds
// server and client use the agents' bootstraps and certificate files, with a mesh-wide STRICT
// PeerAuthentication. Shown: SPIFFE identities verified both ways; a plaintext client and a client of
// another CA refused; certificates with a 1-minute TTL rotating under continuous calls with no failed
// call; the control plane (and so the CA) stopped past a renewal point → calls keep working, and
// renewal resumes when it returns.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { register, XdsChannelCredentials, XdsServer, XdsServerCredentials } from '@grpc/grpc-js-xds';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import {
  CertificateAuthority,
  createCsr,
  createRootCa,
  generateWorkloadKey,
  loadRootCa,
  uriSans,
} from '../../certs/index.js';
import { echoService, type EchoReply, type EchoRequest } from '../../examples/demo/echo.js';
import { backendManifests, fqdn, freePorts, MeshDir, namespaceManifest, serviceManifest } from '../helpers/mesh-e2e.js';
import {
  localControlPlaneArgs,
  startLocalGrpcAgent,
  startTrellis,
  type LogLine,
  type TrellisProcess,
} from '../helpers/process.js';
import { waitFor, within } from '../helpers/wait.js';

register();

const NS = 'shop';
const TTL = '60s';
const BOOTSTRAP_OPTION = 'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config';
const EchoClientConstructor = grpc.makeGenericClientConstructor(echoService, 'Echo');

interface Agent {
  readonly proc: TrellisProcess;
  readonly dir: string;
  readonly bootstrap: string;
  /** Serials of the certificates this agent has installed, in order. */
  serials(): string[];
}

interface Observed {
  /** The client's SPIFFE ID and certificate serial as the server saw them. */
  readonly clientId: string;
  readonly clientSerial: string;
  /** The server's SPIFFE ID and serial as the client saw them. */
  readonly serverId: string;
  readonly serverSerial: string;
}

let tmp: string;
let mesh: MeshDir;
let cp: TrellisProcess | undefined;
let cpArgs: string[];
let securePort: number;
let serverAgent: Agent;
let clientAgent: Agent;
let server: XdsServer;
let serverPort: number;
let client: grpc.Client;

function startControlPlane(): Promise<TrellisProcess> {
  const proc = startTrellis(cpArgs);
  return proc.waitForLog((l) => l.msg === 'control plane listening', 30_000).then(() => proc);
}

async function startAgent(name: string, serviceAccount: string, token: string, labels: string): Promise<Agent> {
  const {
    proc,
    outputDir: dir,
    bootstrapPath,
  } = await startLocalGrpcAgent({
    securePort,
    workDir: tmp,
    token,
    namespace: NS,
    serviceAccount,
    podName: name,
    labels,
    extraArgs: ['--ttl', TTL],
  });
  return {
    proc,
    dir,
    bootstrap: await fs.readFile(bootstrapPath, 'utf8'),
    serials: () => proc.logs.filter((l: LogLine) => l.msg === 'certificate installed').map((l) => String(l.serial)),
  };
}

test.before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-mtls-e2e-'));
  mesh = await MeshDir.create();
  const [echoPort, xdsPort, secure, monitoring] = await freePorts(4);
  serverPort = echoPort!;
  securePort = secure!;
  await fs.writeFile(
    path.join(tmp, 'tokens.yaml'),
    YAML.stringify([
      { token: 'token-of-echo-server-0123456789', namespace: NS, serviceAccount: 'echo' },
      { token: 'token-of-the-client-0123456789', namespace: NS, serviceAccount: 'frontend' },
    ]),
  );
  await mesh.write('ns', [namespaceManifest(NS), namespaceManifest('trellis-system')]);
  await mesh.write('echo', [
    serviceManifest('echo', NS),
    ...backendManifests('echo', NS, { pod: 'echo-0', port: serverPort }),
  ]);
  await mesh.write('mtls', [
    {
      apiVersion: 'security.trellis.dev/v1alpha1',
      kind: 'PeerAuthentication',
      metadata: { name: 'default', namespace: 'trellis-system' },
      spec: { mtls: { mode: 'STRICT' } },
    },
  ]);
  cpArgs = localControlPlaneArgs({
    configDir: mesh.dir,
    workDir: tmp,
    xdsPort: xdsPort!,
    securePort,
    monitoringPort: monitoring!,
  });
  cp = await startControlPlane();
  [serverAgent, clientAgent] = await Promise.all([
    startAgent('echo-0', 'echo', 'token-of-echo-server-0123456789', 'app=echo'),
    startAgent('frontend-0', 'frontend', 'token-of-the-client-0123456789', 'app=frontend'),
  ]);

  // The echo server: an A36 XdsServer whose Listener (STRICT → mTLS from the certificate providers)
  // comes from the control plane through its agent. Connections live at most 3 s, so the client
  // handshakes again and again and every rotated certificate gets used.
  server = new XdsServer({
    [BOOTSTRAP_OPTION]: serverAgent.bootstrap,
    drainGraceTimeMs: 1_000,
    'grpc.max_connection_age_ms': 3_000,
    'grpc.max_connection_age_grace_ms': 5_000,
  } as grpc.ServerOptions);
  server.addService(echoService, {
    Echo: (call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, callback: grpc.sendUnaryData<EchoReply>) => {
      const peer = call.getAuthContext()?.sslPeerCertificate;
      callback(null, {
        message: JSON.stringify({ clientId: uriSans(peer).join(','), clientSerial: peer?.serialNumber ?? '' }),
        server: 'echo-0',
      });
    },
  });
  await within(
    'the xDS echo server to serve',
    new Promise<void>((resolve, reject) =>
      server.bindAsync(
        `127.0.0.1:${serverPort}`,
        new XdsServerCredentials(grpc.ServerCredentials.createInsecure()),
        (err) => (err ? reject(err) : resolve()),
      ),
    ),
    30_000,
  );
  client = new EchoClientConstructor(
    `xds:///${fqdn('echo', NS)}:8080`,
    new XdsChannelCredentials(grpc.credentials.createInsecure()),
    { [BOOTSTRAP_OPTION]: clientAgent.bootstrap },
  );
});

test.after.always(async () => {
  client?.close();
  server?.forceShutdown();
  await Promise.all([serverAgent?.proc.stop(), clientAgent?.proc.stop(), cp?.stop()]);
  await mesh?.cleanup();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

type Result = { ok: true; observed: Observed } | { ok: false; code: grpc.status; details: string };

function call(c: grpc.Client = client, deadlineMs = 5_000): Promise<Result> {
  return new Promise((resolve) => {
    const surface = c.makeUnaryRequest(
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
        const seen = JSON.parse(reply.message) as { clientId: string; clientSerial: string };
        const serverCert = surface.getAuthContext()?.sslPeerCertificate;
        resolve({
          ok: true,
          observed: {
            ...seen,
            serverId: uriSans(serverCert).join(','),
            serverSerial: serverCert?.serialNumber ?? '',
          },
        });
      },
    );
  });
}

/** Calls one after another until `until()` holds; returns every result (each also given to `seen`). */
async function callContinuously(
  until: () => boolean,
  limitMs: number,
  seen: (r: Result) => void = () => undefined,
): Promise<Result[]> {
  const results: Result[] = [];
  const deadline = Date.now() + limitMs;
  while (!until()) {
    if (Date.now() > deadline) throw new Error(`condition not reached within ${limitMs} ms (${results.length} calls)`);
    const r = await call();
    results.push(r);
    seen(r);
    await new Promise((resolve) => setTimeout(resolve, 20)); // pacing between calls, not synchronisation
  }
  return results;
}

function failures(results: readonly Result[]): string[] {
  return results
    .filter((r): r is Extract<Result, { ok: false }> => !r.ok)
    .map((r) => `${grpc.status[r.code]}: ${r.details}`);
}

test.serial('STRICT mTLS: both sides see the other SPIFFE identity, verified by the mesh root', async (t) => {
  const first = await waitFor(
    'a first successful call',
    async () => {
      const r = await call();
      return r.ok ? r : undefined;
    },
    30_000,
  );
  t.is(first.observed.clientId, `spiffe://cluster.local/ns/${NS}/sa/frontend`);
  t.is(first.observed.serverId, `spiffe://cluster.local/ns/${NS}/sa/echo`);
  // The certificate files the client used are the agent's, signed by the control plane's root.
  const root = new X509Certificate(await fs.readFile(path.join(tmp, 'state', 'root-cert.pem')));
  const leaf = new X509Certificate(await fs.readFile(path.join(clientAgent.dir, 'cert.pem')));
  t.true(leaf.verify(root.publicKey));
  t.is(leaf.subjectAltName, `URI:spiffe://cluster.local/ns/${NS}/sa/frontend`);
});

test.serial('a plaintext client is refused by the STRICT server', async (t) => {
  const plain = new EchoClientConstructor(`127.0.0.1:${serverPort}`, grpc.credentials.createInsecure());
  const r = await call(plain, 3_000);
  plain.close();
  t.false(r.ok);
  if (!r.ok) t.is(r.code, grpc.status.UNAVAILABLE, r.details);
});

test.serial('a client with a certificate of another CA is refused', async (t) => {
  // It trusts the mesh root (so it accepts the server) but presents a certificate of a root of its own.
  const foreignRoot = await createRootCa({ commonName: 'someone else' });
  const foreignCa = CertificateAuthority.create(
    await loadRootCa(foreignRoot.certPem, foreignRoot.keyPem),
    'cluster.local',
  );
  const key = await generateWorkloadKey();
  const id = `spiffe://cluster.local/ns/${NS}/sa/frontend`;
  const issued = await foreignCa.sign({
    csr: await createCsr(key, id),
    identity: { trustDomain: 'cluster.local', namespace: NS, serviceAccount: 'frontend' },
  });
  const meshRoot = await fs.readFile(path.join(tmp, 'state', 'root-cert.pem'));
  const foreign = new EchoClientConstructor(
    `127.0.0.1:${serverPort}`,
    grpc.credentials.createSsl(
      meshRoot,
      Buffer.from(key.privateKeyPem),
      Buffer.from(issued.chain.slice(0, -1).join('')),
      { checkServerIdentity: () => undefined },
    ),
    { 'grpc.ssl_target_name_override': 'echo.shop.svc.cluster.local' }, // no IP address as SNI
  );
  const r = await call(foreign, 3_000);
  foreign.close();
  t.false(r.ok);
  if (!r.ok) t.is(r.code, grpc.status.UNAVAILABLE, r.details);
  // The control: the same kind of client with the mesh certificate the client agent holds gets through.
  const own = new EchoClientConstructor(
    `127.0.0.1:${serverPort}`,
    grpc.credentials.createSsl(
      meshRoot,
      await fs.readFile(path.join(clientAgent.dir, 'key.pem')),
      await fs.readFile(path.join(clientAgent.dir, 'cert.pem')),
      { checkServerIdentity: () => undefined },
    ),
    { 'grpc.ssl_target_name_override': 'echo.shop.svc.cluster.local' },
  );
  const control = await call(own, 5_000);
  own.close();
  t.true(control.ok, control.ok ? '' : control.details);
});

test.serial('1-minute certificates rotate under continuous calls with no failed call', async (t) => {
  const clientStart = clientAgent.serials().length;
  const serverStart = serverAgent.serials().length;
  const seenClient = new Set<string>();
  const seenServer = new Set<string>();
  const record = (r: Result): void => {
    if (!r.ok) return;
    seenClient.add(r.observed.clientSerial);
    seenServer.add(r.observed.serverSerial);
  };
  // Two rotations of each agent (more than one TTL: a certificate that did not rotate would expire), and
  // the calls must have used at least three certificates of each side.
  const results = await callContinuously(
    () =>
      clientAgent.serials().length >= clientStart + 2 &&
      serverAgent.serials().length >= serverStart + 2 &&
      seenClient.size >= 3 &&
      seenServer.size >= 3,
    150_000,
    record,
  );
  t.deepEqual(failures(results), []);
  t.true(results.length > 100, `${results.length} calls`);
  t.log(`${results.length} calls; ${seenClient.size} client and ${seenServer.size} server certificates used`);
});

function renewalFailures(agent: Agent): number {
  return agent.proc.logs.filter((l) => String(l.msg).startsWith('certificates: renewal failed')).length;
}

test.serial('the CA away past a renewal point: calls keep working, renewal resumes when it returns', async (t) => {
  // Start right after a rotation of both agents, so the outage fits in the certificates' lifetime.
  const c0 = clientAgent.serials().length;
  const s0 = serverAgent.serials().length;
  const results = await callContinuously(
    () => clientAgent.serials().length > c0 && serverAgent.serials().length > s0,
    60_000,
  );
  await cp!.stop();
  cp = undefined;
  const c1 = clientAgent.serials().length;
  const s1 = serverAgent.serials().length;
  const f0 = renewalFailures(clientAgent);
  const g0 = renewalFailures(serverAgent);
  // The control plane stays away until both agents have tried to renew and failed.
  results.push(
    ...(await callContinuously(() => renewalFailures(clientAgent) > f0 && renewalFailures(serverAgent) > g0, 45_000)),
  );
  t.is(clientAgent.serials().length, c1, 'no certificate while the CA is away');
  cp = await startControlPlane();
  results.push(
    ...(await callContinuously(() => clientAgent.serials().length > c1 && serverAgent.serials().length > s1, 45_000)),
  );
  t.deepEqual(failures(results), []);
  t.log(`${results.length} calls across the outage`);
});
