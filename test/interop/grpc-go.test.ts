// grpc-go interop: a second, independent real xDS client. Our grpc-go-xds peer (tools/peers/grpc-go-xds: grpc-go
// v1.85.0's xds:/// resolver, xDS credentials and xds.NewGRPCServer) runs end to end against
// `trellis control-plane --config-dir` (a real process, CA and xDS over TLS) through real `trellis agent`
// processes: each grpc-go process reads its agent's bootstrap (GRPC_XDS_BOOTSTRAP) and certificate files.
// The whole mesh is STRICT (a mesh-wide PeerAuthentication), so every call below is mutual TLS from the agents'
// files, and every reply says which SPIFFE IDs each side saw. Shown: routing and a weighted split, header
// match, timeouts, fault injection (abort and delay), retries, ring hash, outlier detection, a plaintext
// client refused, a grpc-js-xds client calling a grpc-go server, an AuthorizationPolicy enforced by grpc-go,
// servers bound to 0.0.0.0 and [::] (in a network namespace the test makes) serving, and the control plane's
// warning for a server Listener that matches nothing.
// No grpc-go client or server NACKs anything (its own CSDS view and the control plane's both say so).
import test, { type ExecutionContext } from 'ava';
import * as grpc from '@grpc/grpc-js';
import { register, XdsChannelCredentials } from '@grpc/grpc-js-xds';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import YAML from 'yaml';
import {
  assertNoNacks,
  backendManifests,
  destinationRuleManifest,
  freePorts,
  MeshDir,
  namespaceManifest,
  serviceManifest,
  virtualServiceManifest,
  type Manifest,
} from '../helpers/mesh-e2e.js';
import { EchoClient, type EchoReply } from '../../examples/demo/echo.js';
import { peerBinary, repoRoot } from '../helpers/peer-paths.js';
import { localControlPlaneArgs, startLocalGrpcAgent, startTrellis, type TrellisProcess } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';

register();

const BINARY = peerBinary('grpc-go-xds');
const NS = 'interop';
/** The service account every backend Pod runs as (the server agent's identity) and the client's. */
const SERVER_SA = 'echo';
const CLIENT_SA = 'frontend';
const SERVER_ID = `spiffe://cluster.local/ns/${NS}/sa/${SERVER_SA}`;
const CLIENT_ID = `spiffe://cluster.local/ns/${NS}/sa/${CLIENT_SA}`;
const TIMEOUT_MS = 60_000;

// ---------------------------------------------------------------------------------------------------
// The grpc-go-xds processes (JSON lines on stdout)

interface GoEvent {
  readonly event: string;
  readonly [key: string]: unknown;
}

interface CallOutcome {
  readonly ok: boolean;
  readonly server?: string;
  readonly code: string;
  readonly message?: string;
  readonly ms: number;
  readonly previousAttempts?: number;
  readonly serverId?: string;
  readonly clientId?: string;
}

interface ClientResult {
  readonly warmup: CallOutcome;
  readonly calls: readonly CallOutcome[];
  readonly byServer: Readonly<Record<string, number>>;
  readonly byCode: Readonly<Record<string, number>>;
  readonly retried: number;
  readonly latencyMs: Readonly<Record<'min' | 'p50' | 'p90' | 'max', number>>;
  readonly notAcked: readonly { type: string; name: string; status: string; error?: string }[];
}

class GoProcess {
  readonly events: GoEvent[] = [];
  readonly exited: Promise<number | null>;
  private stderr = '';
  private readonly waiters = new Set<() => void>();

  constructor(readonly child: ChildProcess) {
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        this.events.push(JSON.parse(line) as GoEvent);
      } catch {
        this.events.push({ event: 'text', text: line });
      }
      for (const w of [...this.waiters]) w();
    });
    child.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    void this.exited.then(() => {
      for (const w of [...this.waiters]) w();
    });
  }

  /** The first event from index `since` on that matches; rejects at the deadline or when the process exits. */
  waitFor(what: string, match: (e: GoEvent) => boolean, timeoutMs = TIMEOUT_MS, since = 0): Promise<GoEvent> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = this.events.slice(since).find(match);
        if (found) {
          done();
          resolve(found);
        } else if (this.child.exitCode !== null || this.child.signalCode !== null) {
          done();
          reject(new Error(`grpc-go-xds exited before ${what}; events ${JSON.stringify(this.events)}; ${this.stderr}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${what} within ${timeoutMs} ms; events ${JSON.stringify(this.events)}; ${this.stderr}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  command(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** argv run inside the network namespace of process `pid` (nsenter), or as is. */
function argv(args: readonly string[], netnsOf?: number): [string, string[]] {
  return netnsOf === undefined
    ? [BINARY!, [...args]]
    : ['nsenter', [`--net=/proc/${netnsOf}/ns/net`, '--', BINARY!, ...args]];
}

// ---------------------------------------------------------------------------------------------------
// The mesh: control plane, agents, manifests

interface Agent {
  readonly proc: TrellisProcess;
  /** The gRPC bootstrap file the agent wrote. */
  readonly bootstrap: string;
}

let tmp: string;
let mesh: MeshDir;
let cp: TrellisProcess & { monitoringPort: number };
let serverAgent: Agent;
let clientAgent: Agent;
const processes = new Set<GoProcess>();

async function startAgent(name: string, serviceAccount: string, token: string, securePort: number): Promise<Agent> {
  const { proc, bootstrapPath } = await startLocalGrpcAgent(
    { securePort, workDir: tmp, token, namespace: NS, serviceAccount, podName: name, labels: `app=${name}` },
    TIMEOUT_MS,
  );
  return { proc, bootstrap: bootstrapPath };
}

/** A backend's Pod and EndpointSlice (127.0.0.1:`port`), its Pod running as the server agent's account. */
function backend(service: string, pod: string, port: number, labels: Record<string, string> = {}): Manifest[] {
  return backendManifests(service, NS, { pod, port, labels }).map((m) =>
    m.kind === 'Pod' ? { ...m, spec: { ...(m.spec as Manifest), serviceAccountName: SERVER_SA } } : m,
  );
}

function subsets(service: string, extra: Record<string, unknown> = {}): Manifest {
  return destinationRuleManifest(service, NS, {
    host: service,
    subsets: [
      { name: 'v1', labels: { version: 'v1' } },
      { name: 'v2', labels: { version: 'v2' } },
    ],
    ...extra,
  });
}

const target = (service: string): string => `xds:///${service}.${NS}.svc.cluster.local:8080`;

/** A grpc-go xDS server `name` on `addr`, through the server agent; resolves once it serves. */
async function startServer(
  name: string,
  addr: string,
  options: { behavior?: string; version?: string; netnsOf?: number } = {},
): Promise<GoProcess> {
  const args = ['server', '--addr', addr, '--name', name, '--version', options.version ?? 'v1'];
  if (options.behavior) args.push('--behavior', options.behavior);
  const [cmd, a] = argv(args, options.netnsOf);
  const proc = new GoProcess(
    spawn(cmd, a, { env: { ...process.env, GRPC_XDS_BOOTSTRAP: serverAgent.bootstrap }, stdio: 'pipe' }),
  );
  processes.add(proc);
  await proc.waitFor(`${name} serving`, (e) => e.event === 'serving' && e.mode === 'SERVING');
  return proc;
}

/** One grpc-go client run through the client agent: a warm-up call, then the calls; its result. */
async function runClient(service: string, args: readonly string[] = [], netnsOf?: number): Promise<ClientResult> {
  const [cmd, a] = argv(['client', '--target', target(service), ...args], netnsOf);
  const proc = new GoProcess(
    spawn(cmd, a, { env: { ...process.env, GRPC_XDS_BOOTSTRAP: clientAgent.bootstrap }, stdio: 'pipe' }),
  );
  processes.add(proc);
  try {
    const result = await proc.waitFor(`the client's result (${service})`, (e) => e.event === 'result', 3 * TIMEOUT_MS);
    return result as unknown as ClientResult;
  } finally {
    await proc.stop();
    processes.delete(proc);
  }
}

/** The calls went over mutual TLS with the agents' identities, and grpc-go ACKed everything it holds. */
function assertMtlsAndAcked(t: ExecutionContext, result: ClientResult): void {
  t.deepEqual(result.notAcked, [], 'grpc-go holds resources it did not ACK');
  for (const call of [result.warmup, ...result.calls].filter((c) => c.ok)) {
    t.is(call.serverId, SERVER_ID, 'the server certificate the client saw');
    t.is(call.clientId, CLIENT_ID, 'the client certificate the server saw');
  }
}

async function writeService(name: string, docs: Manifest[]): Promise<void> {
  await mesh.write(name, [serviceManifest(name, NS), ...docs]);
}

async function stats(server: GoProcess): Promise<number> {
  const since = server.events.length;
  server.command('stats');
  return Number((await server.waitFor('stats', (e) => e.event === 'stats', TIMEOUT_MS, since)).served);
}

// ---------------------------------------------------------------------------------------------------

if (!BINARY && process.env.CI !== 'true') {
  test.skip('grpc-go interop [not built: npm run peers -- grpc-go-xds]', () => undefined);
} else {
  test.before(async () => {
    if (!BINARY) throw new Error('the grpc-go-xds peer is not built (npm run peers -- grpc-go-xds); CI must not skip');
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-grpc-go-'));
    mesh = await MeshDir.create();
    const [xdsPort, securePort, monitoringPort] = await freePorts(3);
    await fs.writeFile(
      path.join(tmp, 'tokens.yaml'),
      YAML.stringify([
        { token: 'token-of-the-echo-servers-0123', namespace: NS, serviceAccount: SERVER_SA },
        { token: 'token-of-the-go-client-012345', namespace: NS, serviceAccount: CLIENT_SA },
      ]),
    );
    await mesh.write('ns', [namespaceManifest(NS), namespaceManifest('trellis-system')]);
    await mesh.write('mtls', [
      {
        apiVersion: 'security.trellis.dev/v1alpha1',
        kind: 'PeerAuthentication',
        metadata: { name: 'default', namespace: 'trellis-system' },
        spec: { mtls: { mode: 'STRICT' } },
      },
    ]);
    const proc = startTrellis(
      localControlPlaneArgs({
        configDir: mesh.dir,
        workDir: tmp,
        xdsPort: xdsPort!,
        securePort: securePort!,
        monitoringPort: monitoringPort!,
      }),
    );
    await proc.waitForLog((l) => l.msg === 'control plane listening', TIMEOUT_MS);
    cp = Object.assign(proc, { monitoringPort: monitoringPort! });
    [serverAgent, clientAgent] = await Promise.all([
      startAgent('echo', SERVER_SA, 'token-of-the-echo-servers-0123', securePort!),
      startAgent('frontend', CLIENT_SA, 'token-of-the-go-client-012345', securePort!),
    ]);
  });

  test.after.always(async () => {
    await Promise.all([...processes].map((p) => p.stop()));
    await Promise.all([serverAgent?.proc.stop(), clientAgent?.proc.stop(), cp?.stop()]);
    await mesh?.cleanup();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  test.afterEach.always(async () => {
    // Servers of a finished test are stopped; the control plane and agents stay.
    await Promise.all([...processes].map((p) => p.stop()));
    processes.clear();
  });

  test.serial('routing and a weighted split (25/75 by subset), over mTLS with the agents’ identities', async (t) => {
    const [p1, p2] = await freePorts(2);
    await writeService('split', [
      ...backend('split', 'split-v1', p1!, { version: 'v1' }),
      ...backend('split', 'split-v2', p2!, { version: 'v2' }),
      subsets('split'),
      virtualServiceManifest('split', NS, {
        hosts: ['split'],
        http: [
          {
            route: [
              { destination: { host: 'split', subset: 'v1' }, weight: 25 },
              { destination: { host: 'split', subset: 'v2' }, weight: 75 },
            ],
          },
        ],
      }),
    ]);
    await Promise.all([
      startServer('split-v1', `127.0.0.1:${p1}`),
      startServer('split-v2', `127.0.0.1:${p2}`, { version: 'v2' }),
    ]);
    const result = await runClient('split', ['--n', '400', '--concurrency', '4']);
    t.log(`byServer ${JSON.stringify(result.byServer)}, latency ${JSON.stringify(result.latencyMs)}`);
    t.deepEqual(result.byCode, { OK: 400 });
    const v1 = (100 * (result.byServer['split-v1'] ?? 0)) / 400;
    // 400 calls at p = 0.25: the standard deviation of the share is 2.2 points; ±10 is > 4 sigma.
    t.true(v1 > 15 && v1 < 35, `split-v1 got ${v1}% (want 25%)`);
    assertMtlsAndAcked(t, result);
    await assertNoNacks(t, cp.monitoringPort, (id) => id.startsWith('echo.') || id.startsWith('frontend.'));
  });

  test.serial('header match: end-user: jason goes to v2, everyone else to v1', async (t) => {
    const [p1, p2] = await freePorts(2);
    await writeService('hdr', [
      ...backend('hdr', 'hdr-v1', p1!, { version: 'v1' }),
      ...backend('hdr', 'hdr-v2', p2!, { version: 'v2' }),
      subsets('hdr'),
      virtualServiceManifest('hdr', NS, {
        hosts: ['hdr'],
        http: [
          {
            match: [{ headers: { 'end-user': { exact: 'jason' } } }],
            route: [{ destination: { host: 'hdr', subset: 'v2' } }],
          },
          { route: [{ destination: { host: 'hdr', subset: 'v1' } }] },
        ],
      }),
    ]);
    await Promise.all([startServer('hdr-v1', `127.0.0.1:${p1}`), startServer('hdr-v2', `127.0.0.1:${p2}`)]);
    const jason = await runClient('hdr', ['--n', '30', '--metadata', 'end-user=jason']);
    const others = await runClient('hdr', ['--n', '30', '--metadata', 'end-user=bob']);
    t.deepEqual(jason.byServer, { 'hdr-v2': 30 });
    t.deepEqual(others.byServer, { 'hdr-v1': 30 });
    assertMtlsAndAcked(t, jason);
    assertMtlsAndAcked(t, others);
  });

  test.serial(
    'timeout: a 300 ms route timeout on a backend that answers after 30 s gives DEADLINE_EXCEEDED',
    async (t) => {
      const [p1] = await freePorts(1);
      await writeService('slow', [
        ...backend('slow', 'slow-v1', p1!),
        virtualServiceManifest('slow', NS, {
          hosts: ['slow'],
          http: [{ route: [{ destination: { host: 'slow' } }], timeout: '300ms', retries: { attempts: 0 } }],
        }),
      ]);
      const server = await startServer('slow-v1', `127.0.0.1:${p1}`);
      // Warm up with fast answers, then make every call slow. The client's own deadline (60 s) is far away:
      // a DEADLINE_EXCEEDED can only be the route's timeout.
      const fast = await runClient('slow', ['--n', '1']);
      t.deepEqual(fast.byCode, { OK: 1 });
      server.command('sleep 30000');
      await server.waitFor('the sleep behaviour', (e) => e.event === 'behavior');
      const before = await stats(server);
      const result = await runClient('slow', [
        '--n',
        '5',
        '--concurrency',
        '5',
        '--deadline',
        '60s',
        '--ready-timeout',
        '60s',
      ]);
      t.log(`latencies ${result.calls.map((c) => `${c.code} ${Math.round(c.ms)} ms`).join(', ')}`);
      t.deepEqual(result.byCode, { DeadlineExceeded: 5 });
      for (const c of result.calls) t.true(c.ms < 20_000, `${c.ms} ms: cut well before the backend's 30 s`);
      t.is((await stats(server)) - before, 6, 'the warm-up and the 5 calls reached the backend before they were cut');
      t.deepEqual(result.notAcked, []);
    },
  );

  test.serial(
    'fault injection: a 100% abort never reaches the server; a 100% delay beyond the deadline neither',
    async (t) => {
      const [p1] = await freePorts(1);
      const fault = (spec: Record<string, unknown>): Manifest[] => [
        ...backend('fault', 'fault-v1', p1!),
        virtualServiceManifest('fault', NS, {
          hosts: ['fault'],
          http: [{ fault: spec, route: [{ destination: { host: 'fault' } }] }],
        }),
      ];
      await writeService('fault', fault({ abort: { grpcStatus: 'PERMISSION_DENIED', percentage: { value: 100 } } }));
      const server = await startServer('fault-v1', `127.0.0.1:${p1}`);
      const aborted = await runClient('fault', ['--n', '20', '--concurrency', '4']);
      t.deepEqual(aborted.byCode, { PermissionDenied: 20 });
      t.is(aborted.warmup.code, 'PermissionDenied');
      t.is(await stats(server), 0, 'aborted calls must not reach the server');
      t.deepEqual(aborted.notAcked, []);

      await writeService('fault', fault({ delay: { fixedDelay: '10s', percentage: { value: 100 } } }));
      // The new VirtualService reaches the client agent before a new client subscribes: wait for the control
      // plane to push it (a fresh client then gets it at once).
      const delayed = await waitFor(
        'the delay fault to apply',
        async () => {
          const r = await runClient('fault', ['--n', '3', '--deadline', '500ms']);
          return r.warmup.code !== 'PermissionDenied' && r;
        },
        TIMEOUT_MS,
      );
      t.deepEqual(delayed.byCode, { DeadlineExceeded: 3 });
      t.is(await stats(server), 1, 'only the warm-up call (deadline 30 s > 10 s delay) reached the server');
      t.deepEqual(delayed.notAcked, []);
    },
  );

  test.serial(
    'retries: a backend failing every other call with UNAVAILABLE; attempts: 3 hides it, and the server sees the retries',
    async (t) => {
      const [p1] = await freePorts(1);
      await writeService('flaky', [
        ...backend('flaky', 'flaky-v1', p1!),
        virtualServiceManifest('flaky', NS, {
          hosts: ['flaky'],
          http: [{ route: [{ destination: { host: 'flaky' } }], retries: { attempts: 3, retryOn: 'unavailable' } }],
        }),
      ]);
      await startServer('flaky-v1', `127.0.0.1:${p1}`, { behavior: 'fail-every 2' });
      const result = await runClient('flaky', ['--n', '50']);
      t.log(`byCode ${JSON.stringify(result.byCode)}, retried ${result.retried}`);
      t.deepEqual(result.byCode, { OK: 50 });
      t.true(
        result.retried >= 20,
        `only ${result.retried} of 50 calls were answered on a retry (every other one fails)`,
      );
      assertMtlsAndAcked(t, result);
    },
  );

  test.serial('ring hash on a header: each user sticks to one backend, and the users spread', async (t) => {
    const ports = await freePorts(3);
    await writeService('ring', [
      ...ports.flatMap((p, i) => backend('ring', `ring-${i}`, p)),
      destinationRuleManifest('ring', NS, {
        host: 'ring',
        trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } },
      }),
    ]);
    await Promise.all(ports.map((p, i) => startServer(`ring-${i}`, `127.0.0.1:${p}`)));
    const seen = new Set<string>();
    // Ten users on three backends all on one: probability 3 × 3^-10 (the ring moves with the ports).
    for (const user of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy']) {
      const r = await runClient('ring', ['--n', '15', '--concurrency', '3', '--metadata', `x-user=${user}`]);
      t.is(Object.keys(r.byServer).length, 1, `${user} went to ${JSON.stringify(r.byServer)}`);
      t.is(r.byCode.OK, 15);
      seen.add(Object.keys(r.byServer)[0]!);
      t.deepEqual(r.notAcked, []);
    }
    t.true(seen.size >= 2, `ten users all hashed to ${[...seen].join()}`);
  });

  test.serial('outlier detection ejects the backend that keeps failing, and traffic moves to the others', async (t) => {
    const ports = await freePorts(3);
    await writeService('outlier', [
      ...ports.flatMap((p, i) => backend('outlier', `outlier-${i}`, p)),
      virtualServiceManifest('outlier', NS, {
        hosts: ['outlier'],
        http: [{ route: [{ destination: { host: 'outlier' } }], retries: { attempts: 0 } }],
      }),
      destinationRuleManifest('outlier', NS, {
        host: 'outlier',
        trafficPolicy: {
          outlierDetection: {
            consecutive5xxErrors: 3,
            interval: '1s',
            baseEjectionTime: '60s',
            maxEjectionPercent: 50,
          },
        },
      }),
    ]);
    const servers = await Promise.all(
      ports.map((p, i) => startServer(`outlier-${i}`, `127.0.0.1:${p}`, i === 2 ? { behavior: 'fail 14' } : {})),
    );
    // Calls spread over ≥ 8 s (the detector runs every second), in one channel.
    const result = await runClient('outlier', ['--n', '400', '--concurrency', '2', '--pace', '40ms']);
    const failures = result.calls.filter((c) => !c.ok).length;
    const tail = result.calls.slice(-100);
    t.log(
      `byServer ${JSON.stringify(result.byServer)}, failures ${failures}, tail ${JSON.stringify(tail.map((c) => c.server ?? c.code).filter((s, i, a) => a.indexOf(s) === i))}`,
    );
    t.true(failures > 0, 'the failing backend was never called');
    t.true(
      tail.every((c) => c.ok && c.server !== 'outlier-2'),
      'the last 100 calls still reached the failing backend',
    );
    t.true((await stats(servers[2]!)) > 0);
    t.deepEqual(result.notAcked, []);
  });

  test.serial(
    'a client without xDS credentials (plaintext) is refused by the STRICT servers; a grpc-js-xds client is served',
    async (t) => {
      const [p1] = await freePorts(1);
      await writeService('strict', [...backend('strict', 'strict-v1', p1!)]);
      const server = await startServer('strict-v1', `127.0.0.1:${p1}`);
      const ok = await runClient('strict', ['--n', '3']);
      t.deepEqual(ok.byCode, { OK: 3 });
      const before = await stats(server);
      const plain = await runClient('strict', [
        '--n',
        '3',
        '--xds-creds=false',
        '--ready-timeout',
        '3s',
        '--deadline',
        '2s',
      ]);
      t.false(plain.warmup.ok);
      t.is(plain.byCode.OK, undefined, `a plaintext call succeeded: ${JSON.stringify(plain.byCode)}`);
      t.is(await stats(server), before, 'no plaintext call reached the handler');

      // A grpc-js-xds client (the client agent's bootstrap and files) calls the grpc-go server over mTLS.
      const client = new EchoClient(target('strict'), new XdsChannelCredentials(grpc.credentials.createInsecure()), {
        'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': await fs.readFile(clientAgent.bootstrap, 'utf8'),
      });
      t.teardown(() => client.close());
      const reply = (await waitFor(
        'a grpc-js call to the grpc-go server',
        () => client.echo('from grpc-js', 5_000).catch(() => false as const),
        TIMEOUT_MS,
      )) as EchoReply & { peer?: string; version?: string };
      t.is(reply.server, 'strict-v1');
      t.is(reply.peer, CLIENT_ID, 'the grpc-go server saw the grpc-js client’s SPIFFE ID');
    },
  );

  const hasNetns =
    spawnSync('unshare', ['-n', 'true']).status === 0 && spawnSync('nsenter', ['--version']).status === 0;
  (hasNetns || process.env.CI === 'true' ? test.serial : test.serial.skip)(
    'grpc-go servers bound to 0.0.0.0:<port> and [::]:<port>, and a grpc-js server bound to 0.0.0.0:<port> (in a network namespace of the test), get their Listener and serve a grpc-go client',
    async (t) => {
      const [p1, p2, p3] = await freePorts(3);
      await writeService('wild', [
        ...backend('wild', 'wild-v4', p1!),
        ...backend('wild', 'wild-v6', p2!),
        ...backend('wild', 'wild-js', p3!),
      ]);
      // A network namespace with only loopback, held by its first server; the agents' Unix sockets reach in.
      const [cmd, a] = [
        'unshare',
        [
          '-n',
          '--',
          'sh',
          '-c',
          `ip link set lo up && exec "$0" "$@"`,
          BINARY!,
          'server',
          '--addr',
          `0.0.0.0:${p1}`,
          '--name',
          'wild-v4',
        ],
      ];
      const v4 = new GoProcess(
        spawn(cmd, a, { env: { ...process.env, GRPC_XDS_BOOTSTRAP: serverAgent.bootstrap }, stdio: 'pipe' }),
      );
      processes.add(v4);
      await v4.waitFor('wild-v4 listening', (e) => e.event === 'listening');
      const netns = v4.child.pid!;
      const v6 = await startServer('wild-v6', `[::]:${p2}`, { netnsOf: netns });
      t.is(v6.events.find((e) => e.event === 'listening')?.addr, `[::]:${p2}`);
      await v4.waitFor('wild-v4 serving', (e) => e.event === 'serving' && e.mode === 'SERVING');
      // grpc-js names its server Listener by the bind string too (grpc-js-xds.md §3 "Binding").
      const js = new GoProcess(
        spawn(
          'nsenter',
          [
            `--net=/proc/${netns}/ns/net`,
            '--',
            process.execPath,
            '--import',
            'tsx',
            'test/interop/_grpc-js-xds-server.ts',
          ],
          {
            cwd: repoRoot,
            env: { ...process.env, GRPC_XDS_BOOTSTRAP: serverAgent.bootstrap, ADDR: `0.0.0.0:${p3}`, NAME: 'wild-js' },
            stdio: 'pipe',
          },
        ),
      );
      processes.add(js);
      await js.waitFor('wild-js serving', (e) => e.event === 'serving');
      // Round robin picks only READY subchannels, and a new client's connection to the grpc-js server (a
      // Node process on a loaded machine) may still be handshaking: the calls are spread over ≥ 2 s, and a run
      // that missed a backend is repeated.
      const runs: Record<string, number>[] = [];
      const result = await waitFor(
        'every backend to answer one client run',
        async () => {
          const r = await runClient('wild', ['--n', '60', '--concurrency', '2', '--pace', '60ms'], netns);
          runs.push(r.byServer);
          t.is(r.byCode.OK, 60, JSON.stringify(r.byCode));
          return Object.keys(r.byServer).length === 3 && r;
        },
        TIMEOUT_MS,
      );
      t.log(`byServer per run ${JSON.stringify(runs)}`);
      t.deepEqual(Object.keys(result.byServer).sort(), ['wild-js', 'wild-v4', 'wild-v6']);
      assertMtlsAndAcked(t, result);
    },
  );

  test.serial(
    'AuthorizationPolicy: grpc-go enforces the RBAC filter of its server Listener (no flag, no NACK)',
    async (t) => {
      const [p1] = await freePorts(1);
      await writeService('authz', [...backend('authz', 'authz-v1', p1!)]);
      await startServer('authz-v1', `127.0.0.1:${p1}`);
      const allowed = await runClient('authz', ['--n', '3']);
      t.deepEqual(allowed.byCode, { OK: 3 });
      const policy = (principal: string): Manifest => ({
        apiVersion: 'security.trellis.dev/v1alpha1',
        kind: 'AuthorizationPolicy',
        metadata: { name: 'echo-callers', namespace: NS },
        spec: {
          selector: { matchLabels: { app: SERVER_SA } },
          rules: [{ from: [{ source: { principals: [principal] } }] }],
        },
      });
      t.teardown(() => mesh.remove('authz-policy'));
      // Only another service account may call: the client is refused by the server's RBAC filter.
      await mesh.write('authz-policy', [policy(`cluster.local/ns/${NS}/sa/someone-else`)]);
      const denied = await waitFor(
        'the policy to reach the server',
        async () => {
          const r = await runClient('authz', ['--n', '3']);
          return r.byCode.PermissionDenied === 3 && r;
        },
        TIMEOUT_MS,
      );
      t.deepEqual(denied.byCode, { PermissionDenied: 3 });
      t.log(`grpc-go refused: ${denied.calls[0]!.message}`);
      // The client's own service account may call.
      await mesh.write('authz-policy', [policy(`cluster.local/ns/${NS}/sa/${CLIENT_SA}`)]);
      const again = await waitFor(
        'the new policy to reach the server',
        async () => {
          const r = await runClient('authz', ['--n', '3']);
          return r.byCode.OK === 3 && r;
        },
        TIMEOUT_MS,
      );
      assertMtlsAndAcked(t, again);
      await assertNoNacks(t, cp.monitoringPort, (id) => id.startsWith('echo.'));
    },
  );

  test.serial(
    'a server on a port no Service endpoint has gets no Listener, and the control plane warns about it',
    async (t) => {
      const [stray] = await freePorts(1);
      const args = ['server', '--addr', `127.0.0.1:${stray}`, '--name', 'stray'];
      const proc = new GoProcess(
        spawn(BINARY!, args, { env: { ...process.env, GRPC_XDS_BOOTSTRAP: serverAgent.bootstrap }, stdio: 'pipe' }),
      );
      processes.add(proc);
      const name = `grpc/server?xds.resource.listening_address=127.0.0.1:${stray}`;
      const warning = await cp.waitForLog((l) => l.name === name && l.level === 40, TIMEOUT_MS);
      t.is(warning.proxy, 'echo.interop');
      // grpc-go's side of it: the Listener does not exist, so the server does not serve.
      const notServing = await proc.waitFor('NOT_SERVING', (e) => e.event === 'serving' && e.mode === 'NOT_SERVING');
      t.regex(String(notServing.error), /has been removed|does not exist|not found/);
      t.falsy(proc.events.find((e) => e.event === 'serving' && e.mode === 'SERVING'));
    },
  );
}
