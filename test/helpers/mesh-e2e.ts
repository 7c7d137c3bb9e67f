// End-to-end traffic tests against `trellis control-plane --config-dir`: a mesh directory the test writes
// (Namespace, Service, Pods, EndpointSlices, VirtualService, DestinationRule as Kubernetes YAML),
// xDS-enabled gRPC echo servers (A36 XdsServer, one bootstrap each) whose behaviour a test can change
// (fail a share of calls with UNAVAILABLE, sleep, always fail), and proxyless gRPC clients on xds:///
// targets (one XdsClient each). Everything binds 127.0.0.1.
import * as grpc from '@grpc/grpc-js';
import { XdsServer, XdsServerCredentials } from '@grpc/grpc-js-xds';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import type { ExecutionContext, TestFn } from 'ava';
import { startControlPlaneProcess, type TrellisProcess } from './process.js';
import { echoService, type EchoReply, type EchoRequest } from '../../examples/demo/echo.js';
import { freePorts } from '../../examples/demo/workloads.js';
import { debugProxies } from './debug.js';
import { within } from './wait.js';

// ---------------------------------------------------------------------------------------------------
// Ports

/** `n` distinct free ports on 127.0.0.1 (an XdsServer needs its port before it binds: its LDS name holds it). */
export { freePorts };

// ---------------------------------------------------------------------------------------------------
// The mesh directory

export type Manifest = Record<string, unknown>;

/** A temporary `--config-dir`; each `write` replaces one file atomically (temp file + rename). */
export class MeshDir {
  private constructor(readonly dir: string) {}

  static async create(): Promise<MeshDir> {
    return new MeshDir(await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-mesh-e2e-')));
  }

  async write(name: string, docs: readonly Manifest[]): Promise<void> {
    const file = path.join(this.dir, `${name}.yaml`);
    const tmp = path.join(this.dir, `.${name}.${process.pid}.tmp`);
    await fs.writeFile(tmp, docs.map((d) => YAML.stringify(d)).join('---\n'));
    await fs.rename(tmp, file);
  }

  async remove(name: string): Promise<void> {
    await fs.rm(path.join(this.dir, `${name}.yaml`), { force: true });
  }

  async cleanup(): Promise<void> {
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}

export interface MeshControlPlane {
  /** `trellis control-plane --config-dir <dir> --debounce-after 20ms`, a real process. */
  cp: TrellisProcess & { xdsPort: number; monitoringPort: number };
  dir: MeshDir;
  /** Its plaintext xDS address, `127.0.0.1:<port>`. */
  controlPlane: string;
}

/**
 * Registers a test file's before/after hooks: a temporary mesh directory and a control plane on it.
 * The returned object's fields are set once the before hook has run.
 */
export function useMeshControlPlane(test: TestFn): MeshControlPlane {
  const mesh = {} as MeshControlPlane;
  test.before(async () => {
    mesh.dir = await MeshDir.create();
    mesh.cp = await startControlPlaneProcess(['--config-dir', mesh.dir.dir, '--debounce-after', '20ms']);
    mesh.controlPlane = `127.0.0.1:${mesh.cp.xdsPort}`;
  });
  test.after.always(async () => {
    await mesh.cp?.stop();
    await mesh.dir?.cleanup();
  });
  return mesh;
}

export const DOMAIN = 'svc.cluster.local';

export function fqdn(service: string, namespace: string): string {
  return `${service}.${namespace}.${DOMAIN}`;
}

export function namespaceManifest(name: string): Manifest {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name } };
}

/** A Service with one gRPC port (`name: grpc`, so the model calls it GRPC) whose target port is the named container port. */
export function serviceManifest(name: string, namespace: string, port = 8080): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, labels: { app: name } },
    spec: { selector: { app: name }, ports: [{ name: 'grpc', port, targetPort: 'grpc' }] },
  };
}

export interface Backend {
  /** The Pod name; the EndpointSlice is named after it. */
  readonly pod: string;
  readonly port: number;
  readonly labels?: Readonly<Record<string, string>>;
  readonly ready?: boolean;
}

/**
 * A Pod and its EndpointSlice for one backend. Every backend listens on its own 127.0.0.1 port, and an
 * EndpointSlice's ports apply to all its endpoints, so each backend gets a slice of its own (as the
 * endpoint controller does for Pods that resolve a named target port to different numbers).
 */
export function backendManifests(service: string, namespace: string, backend: Backend): Manifest[] {
  return [
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: backend.pod, namespace, labels: { app: service, ...backend.labels } },
      spec: {
        serviceAccountName: service,
        containers: [{ name: 'app', image: 'echo', ports: [{ name: 'grpc', containerPort: backend.port }] }],
      },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: backend.pod, namespace, labels: { 'kubernetes.io/service-name': service } },
      addressType: 'IPv4',
      ports: [{ name: 'grpc', port: backend.port, protocol: 'TCP' }],
      endpoints: [
        {
          addresses: ['127.0.0.1'],
          conditions: { ready: backend.ready ?? true },
          targetRef: { kind: 'Pod', namespace, name: backend.pod },
        },
      ],
    },
  ];
}

export function virtualServiceManifest(name: string, namespace: string, spec: Record<string, unknown>): Manifest {
  return { apiVersion: 'networking.trellis.dev/v1alpha1', kind: 'VirtualService', metadata: { name, namespace }, spec };
}

export function destinationRuleManifest(name: string, namespace: string, spec: Record<string, unknown>): Manifest {
  return {
    apiVersion: 'networking.trellis.dev/v1alpha1',
    kind: 'DestinationRule',
    metadata: { name, namespace },
    spec,
  };
}

// ---------------------------------------------------------------------------------------------------
// Bootstraps

export interface NodeOptions {
  readonly namespace: string;
  readonly metadata?: Readonly<Record<string, unknown>>;
  /** `node.locality` (default region and zone `local`). */
  readonly locality?: { readonly region?: string; readonly zone?: string; readonly sub_zone?: string };
}

/** A grpc-js-xds bootstrap (grpc-js-xds.md §1): PROXY_TYPE grpc, NAMESPACE, a locality (required). */
export function bootstrap(controlPlane: string, nodeId: string, node: NodeOptions, server = false): string {
  return JSON.stringify({
    xds_servers: [{ server_uri: controlPlane, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: {
      id: nodeId,
      locality: node.locality ?? { region: 'local', zone: 'local' },
      metadata: { PROXY_TYPE: 'grpc', NAMESPACE: node.namespace, ...node.metadata },
    },
    ...(server ? { server_listener_resource_name_template: 'grpc/server?xds.resource.listening_address=%s' } : {}),
  });
}

const BOOTSTRAP_OPTION = 'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config';

// ---------------------------------------------------------------------------------------------------
// xDS-enabled echo servers

/** What a server does with a call. */
export type Behavior =
  | { readonly kind: 'ok' }
  /** Fails every `every`-th call with UNAVAILABLE (every: 2 is 50%: fail, ok, fail, ok, …). */
  | { readonly kind: 'fail-every'; readonly every: number }
  /** Fails every call with this status. */
  | { readonly kind: 'fail'; readonly code: grpc.status }
  /** Answers after `ms`. */
  | { readonly kind: 'sleep'; readonly ms: number };

export interface XdsEchoServer {
  readonly name: string;
  readonly port: number;
  readonly nodeId: string;
  /** Calls that reached the handler (answered or failed). */
  served(): number;
  /** Calls in the handler right now. */
  inFlight(): number;
  setBehavior(behavior: Behavior): void;
  close(): Promise<void>;
}

/**
 * An XdsServer (A36) on 127.0.0.1:`port` with insecure fallback credentials and its own bootstrap
 * (INSTANCE_IPS 127.0.0.1). Resolves once it serves, which needs its server Listener from the control
 * plane: so the mesh must already list this port.
 */
export async function startXdsEchoServer(options: {
  readonly name: string;
  readonly port: number;
  readonly controlPlane: string;
  readonly namespace: string;
  readonly behavior?: Behavior;
  readonly timeoutMs?: number;
}): Promise<XdsEchoServer> {
  const nodeId = `${options.name}.${options.namespace}`;
  const server = new XdsServer({
    [BOOTSTRAP_OPTION]: bootstrap(
      options.controlPlane,
      nodeId,
      { namespace: options.namespace, metadata: { INSTANCE_IPS: '127.0.0.1' } },
      true,
    ),
    drainGraceTimeMs: 1_000,
  } as grpc.ServerOptions);
  let behavior: Behavior = options.behavior ?? { kind: 'ok' };
  let served = 0;
  let inFlight = 0;
  const timers = new Set<NodeJS.Timeout>();
  server.addService(echoService, {
    Echo: (call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, callback: grpc.sendUnaryData<EchoReply>) => {
      served++;
      const reply = { message: call.request.message, server: options.name };
      switch (behavior.kind) {
        case 'ok':
          callback(null, reply);
          return;
        case 'fail-every':
          if (served % behavior.every === 1 % behavior.every) {
            callback({ code: grpc.status.UNAVAILABLE, details: `${options.name}: injected failure` });
          } else {
            callback(null, reply);
          }
          return;
        case 'fail':
          callback({ code: behavior.code, details: `${options.name}: always fails` });
          return;
        case 'sleep': {
          inFlight++;
          const timer = setTimeout(() => {
            timers.delete(timer);
            inFlight--;
            callback(null, reply);
          }, behavior.ms);
          timers.add(timer);
          return;
        }
      }
    },
  });
  const address = `127.0.0.1:${options.port}`;
  await within(
    `xDS server ${options.name} on ${address} to serve (its server Listener from the control plane)`,
    new Promise<void>((resolve, reject) =>
      server.bindAsync(address, new XdsServerCredentials(grpc.ServerCredentials.createInsecure()), (err) =>
        err ? reject(err) : resolve(),
      ),
    ),
    options.timeoutMs ?? 20_000,
  );
  return {
    name: options.name,
    port: options.port,
    nodeId,
    served: () => served,
    inFlight: () => inFlight,
    setBehavior: (b) => {
      behavior = b;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        server.forceShutdown();
        resolve();
      }),
  };
}

// ---------------------------------------------------------------------------------------------------
// Proxyless clients

export type CallResult =
  | { readonly ok: true; readonly server: string; readonly ms: number }
  | { readonly ok: false; readonly code: grpc.status; readonly details: string; readonly ms: number };

const EchoClientConstructor = grpc.makeGenericClientConstructor(echoService, 'Echo');

/** A grpc-js channel on `xds:///<host>:<port>` with its own XdsClient (node id `nodeId`). */
export class XdsEchoClient {
  private readonly client: grpc.Client;

  constructor(
    readonly target: string,
    controlPlane: string,
    readonly nodeId: string,
    node: NodeOptions,
  ) {
    this.client = new EchoClientConstructor(`xds:///${target}`, grpc.credentials.createInsecure(), {
      [BOOTSTRAP_OPTION]: bootstrap(controlPlane, nodeId, node),
    });
  }

  /** One call; never rejects: the result says what happened and how long it took. */
  call(options: { metadata?: Readonly<Record<string, string>>; deadlineMs?: number; message?: string } = {}) {
    const metadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(options.metadata ?? {})) metadata.set(k, v);
    const started = performance.now();
    return new Promise<CallResult>((resolve) => {
      this.client.makeUnaryRequest(
        echoService.Echo.path,
        echoService.Echo.requestSerialize,
        echoService.Echo.responseDeserialize,
        { message: options.message ?? 'hi' },
        metadata,
        { deadline: Date.now() + (options.deadlineMs ?? 5_000) },
        (err, reply) => {
          const ms = performance.now() - started;
          // A call that fails inside the client (fault abort, circuit breaker) completes in microtasks
          // alone; resolving on a macrotask lets a polling loop of such calls yield to I/O (the xDS stream).
          setImmediate(() =>
            resolve(
              err
                ? { ok: false, code: err.code ?? grpc.status.UNKNOWN, details: err.details ?? '', ms }
                : { ok: true, server: reply?.server ?? '', ms },
            ),
          );
        },
      );
    });
  }

  /** `n` calls, `concurrency` at a time; results in call order. */
  async calls(
    n: number,
    options: Parameters<XdsEchoClient['call']>[0] & { concurrency?: number } = {},
  ): Promise<CallResult[]> {
    const results: CallResult[] = new Array<CallResult>(n);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < n) {
        const i = next++;
        results[i] = await this.call(options);
      }
    };
    await Promise.all(Array.from({ length: Math.min(n, options.concurrency ?? 1) }, worker));
    return results;
  }

  /** Resolves once a call succeeds (the client has its whole config), or rejects at the deadline. */
  async ready(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: CallResult | undefined;
    while (Date.now() < deadline) {
      last = await this.call({ deadlineMs: Math.max(100, Math.min(2_000, deadline - Date.now())) });
      if (last.ok) return;
    }
    throw new Error(
      `${this.nodeId}: no successful call to ${this.target} within ${timeoutMs} ms; last: ${JSON.stringify(last)}`,
    );
  }

  close(): void {
    this.client.close();
  }
}

/** Successful calls by server name, and failures by status code name. */
export function tally(results: readonly CallResult[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of results) {
    const key = r.ok ? r.server : `!${grpc.status[r.code]}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

/**
 * Every connected proxy whose node id passes `filter` has NACKed nothing (`/debug/proxies` lastNack on
 * every type) and ACKed the last version sent.
 */
export async function assertNoNacks(
  t: ExecutionContext,
  monitoringPort: number,
  filter: (id: string) => boolean = () => true,
): Promise<void> {
  const proxies = (await debugProxies(monitoringPort)).filter((p) => p.node && filter(p.node.id));
  t.true(proxies.length > 0, 'no proxy to check for NACKs');
  for (const proxy of proxies) {
    for (const type of proxy.types) {
      t.is(type.lastNack, undefined, `${proxy.node?.id} NACKed ${type.type}: ${JSON.stringify(type.lastNack)}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// One service of a test: its manifests, its servers, a client

export interface BackendSpec {
  /** The Pod name, also the server's name (the reply says which backend answered) and its node id prefix. */
  readonly pod: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly behavior?: Behavior;
}

export interface DeployedService {
  readonly service: string;
  readonly namespace: string;
  /** `<fqdn>:<port>`, the client target without `xds:///`. */
  readonly target: string;
  readonly servers: ReadonlyMap<string, XdsEchoServer>;
  readonly ports: ReadonlyMap<string, number>;
  /** Rewrites the service's file: the Service, the given backends, and the routing resources. */
  write(backends: readonly string[], routing?: readonly Manifest[]): Promise<void>;
  client(name?: string): Promise<XdsEchoClient>;
  /** Node ids of this service's servers and clients. */
  owns(id: string): boolean;
  close(): Promise<void>;
}

/**
 * Writes `<service>.yaml` (Namespace, Service, one Pod + EndpointSlice per backend, routing) into the
 * mesh directory, then starts one XdsServer per backend (each waits for its server Listener).
 */
export async function deployService(options: {
  readonly dir: MeshDir;
  readonly controlPlane: string;
  readonly service: string;
  readonly namespace: string;
  readonly backends: readonly BackendSpec[];
  readonly routing?: readonly Manifest[];
  /** Pods left out of the first write (added later with `write`). */
  readonly initiallyAbsent?: readonly string[];
}): Promise<DeployedService> {
  const { dir, controlPlane, service, namespace } = options;
  const portList = await freePorts(options.backends.length);
  const ports = new Map(options.backends.map((b, i) => [b.pod, portList[i]!]));
  const specs = new Map(options.backends.map((b) => [b.pod, b]));
  const clients: XdsEchoClient[] = [];
  const write = async (backends: readonly string[], routing: readonly Manifest[] = []): Promise<void> => {
    await dir.write(service, [
      namespaceManifest(namespace),
      serviceManifest(service, namespace),
      ...backends.flatMap((pod) =>
        backendManifests(service, namespace, { pod, port: ports.get(pod)!, labels: specs.get(pod)?.labels }),
      ),
      ...routing,
    ]);
  };
  const absent = new Set(options.initiallyAbsent ?? []);
  await write(
    options.backends.map((b) => b.pod).filter((p) => !absent.has(p)),
    options.routing,
  );
  const servers = new Map<string, XdsEchoServer>();
  await Promise.all(
    options.backends
      .filter((b) => !absent.has(b.pod))
      .map(async (b) => {
        const server = await startXdsEchoServer({
          name: b.pod,
          port: ports.get(b.pod)!,
          controlPlane,
          namespace,
          behavior: b.behavior,
        });
        servers.set(b.pod, server);
      }),
  );
  return {
    service,
    namespace,
    target: `${fqdn(service, namespace)}:8080`,
    servers,
    ports,
    write,
    async client(name = 'client') {
      const client = new XdsEchoClient(
        `${fqdn(service, namespace)}:8080`,
        controlPlane,
        `${service}-${name}.${namespace}`,
        { namespace },
      );
      clients.push(client);
      await client.ready();
      return client;
    },
    owns: (id) => id.startsWith(`${service}-`),
    async close() {
      for (const c of clients) c.close();
      await Promise.all([...servers.values()].map((s) => s.close()));
    },
  };
}

/** Starts a server that is not in the mesh yet: it serves once the mesh lists its port. */
export function startLateServer(
  deployed: DeployedService,
  controlPlane: string,
  pod: string,
  behavior?: Behavior,
): Promise<XdsEchoServer> {
  const port = deployed.ports.get(pod);
  if (port === undefined) throw new Error(`no port for ${pod}`);
  return startXdsEchoServer({ name: pod, port, controlPlane, namespace: deployed.namespace, behavior }).then(
    (server) => {
      (deployed.servers as Map<string, XdsEchoServer>).set(pod, server);
      return server;
    },
  );
}

export function share(results: readonly CallResult[], server: string): number {
  return (100 * results.filter((r) => r.ok && r.server === server).length) / results.length;
}
