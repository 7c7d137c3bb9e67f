// The demo's workloads come from the Pods in its YAML (examples/demo/workloads.yaml): each Pod is one
// `trellis agent` and one app process, as a kubelet would run it. The demo then plays the EndpointSlice
// controller: every Pod listens on a free 127.0.0.1 port picked at start, so the demo writes one
// EndpointSlice per Pod with that port into the run's own directory, beside the watched config. Pods are
// read once, at start; Services, VirtualServices, DestinationRules and PeerAuthentications are read by the
// control plane itself, live.
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import YAML from 'yaml';

export interface Workload {
  /** The Pod name; the agent's node id is `<pod>.<namespace>`. */
  readonly pod: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly labels: Readonly<Record<string, string>>;
  /** The `app` label: which example program runs, and the Service it serves. */
  readonly app: string;
  /** The `version` label (the DestinationRule subsets select on it); "" without one. */
  readonly version: string;
  /** The first container's `args`: the example app's command line (`[reviews]`, `[ratings, --fail-every, 4]`). */
  readonly args: readonly string[];
  /** The first container's `env` (plain `value`s only). */
  readonly env: Readonly<Record<string, string>>;
  /** The Services whose selector matches the Pod. */
  readonly services: readonly string[];
  /** The name of the first container port (the Service's targetPort), "grpc" when unnamed. */
  readonly portName: string;
}

export interface PlacedWorkload extends Workload {
  /** The app's gRPC port on 127.0.0.1. */
  readonly port: number;
  /** The app's plain HTTP admin port (the frontend's `/call`), 0 for the others. */
  readonly adminPort: number;
  /** The agent's /healthz/ready and /metrics port. */
  readonly healthPort: number;
  /** The ServiceAccount token the agent shows the CA (local mode: the control plane's --tokens-file). */
  readonly token: string;
}

interface KubeObject {
  kind?: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  spec?: {
    serviceAccountName?: string;
    selector?: Record<string, string>;
    containers?: { args?: unknown[]; env?: { name: string; value?: string }[]; ports?: { name?: string }[] }[];
  };
}

async function yamlFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of (await fs.readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await yamlFiles(full)));
    else if (/\.ya?ml$/.test(entry.name)) out.push(full);
  }
  return out;
}

/** Every Kubernetes object of the YAML files under `dir`. */
async function readObjects(dir: string): Promise<KubeObject[]> {
  const objects: KubeObject[] = [];
  for (const file of await yamlFiles(dir)) {
    for (const doc of YAML.parseAllDocuments(await fs.readFile(file, 'utf8'))) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]!.message}`);
      const value = doc.toJS() as unknown;
      if (typeof value === 'object' && value !== null) objects.push(value as KubeObject);
    }
  }
  return objects;
}

/** The Pods of the demo's config, with the Services that select them. */
export async function readWorkloads(configDir: string): Promise<Workload[]> {
  const objects = await readObjects(configDir);
  const services = objects.filter((o) => o.kind === 'Service');
  const workloads: Workload[] = [];
  for (const pod of objects.filter((o) => o.kind === 'Pod')) {
    const name = pod.metadata?.name;
    if (!name) throw new Error('a Pod without metadata.name in the demo config');
    const namespace = pod.metadata?.namespace ?? 'default';
    const labels = pod.metadata?.labels ?? {};
    const app = labels.app;
    if (!app) throw new Error(`Pod ${namespace}/${name}: metadata.labels.app is required (it names the program)`);
    const container = pod.spec?.containers?.[0];
    const env = Object.fromEntries(
      (container?.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, String(e.value)]),
    );
    workloads.push({
      pod: name,
      namespace,
      serviceAccount: pod.spec?.serviceAccountName ?? 'default',
      labels,
      app,
      version: labels.version ?? '',
      args: (container?.args ?? [app]).map(String),
      env,
      services: services
        .filter(
          (s) =>
            (s.metadata?.namespace ?? 'default') === namespace &&
            s.spec?.selector &&
            Object.entries(s.spec.selector).every(([k, v]) => labels[k] === v),
        )
        .map((s) => s.metadata!.name!),
      portName: container?.ports?.[0]?.name ?? 'grpc',
    });
  }
  return workloads;
}

/** `n` distinct free ports on 127.0.0.1 (held together, so no two are the same). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

/** Ports and a token for every workload, and `extra` more free ports (all distinct). */
export async function placeWorkloads(
  workloads: readonly Workload[],
  hasAdmin: (w: Workload) => boolean,
  extra = 0,
): Promise<{ workloads: PlacedWorkload[]; extra: number[] }> {
  const ports = await freePorts(workloads.length * 3 + extra);
  const placed = workloads.map((w, i): PlacedWorkload => ({
    ...w,
    port: ports[3 * i]!,
    adminPort: hasAdmin(w) ? ports[3 * i + 1]! : 0,
    healthPort: ports[3 * i + 2]!,
    token: `demo-${w.namespace}-${w.serviceAccount}-${crypto.randomBytes(12).toString('hex')}`,
  }));
  return { workloads: placed, extra: ports.slice(workloads.length * 3) };
}

/** What the EndpointSlice controller would write: one slice per Pod and Service, with the Pod's port. */
export function endpointSlices(workloads: readonly PlacedWorkload[]): string {
  const docs = workloads.flatMap((w) =>
    w.services.map((service) => ({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: `${service}-${w.pod}`,
        namespace: w.namespace,
        labels: { 'kubernetes.io/service-name': service },
      },
      addressType: 'IPv4',
      ports: [{ name: w.portName, port: w.port, protocol: 'TCP' }],
      endpoints: [
        {
          addresses: ['127.0.0.1'],
          conditions: { ready: true, serving: true, terminating: false },
          targetRef: { kind: 'Pod', namespace: w.namespace, name: w.pod },
        },
      ],
    })),
  );
  return (
    '# Written by the demo (examples/demo/workloads.ts) at start: the port each Pod got on 127.0.0.1.\n' +
    docs.map((d) => YAML.stringify(d)).join('---\n')
  );
}

/** The control plane's --tokens-file (local mode's stand-in for TokenReview). */
export function tokensFile(workloads: readonly PlacedWorkload[]): string {
  return YAML.stringify(
    workloads.map((w) => ({ token: w.token, namespace: w.namespace, serviceAccount: w.serviceAccount })),
  );
}
