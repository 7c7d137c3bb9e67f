// The mesh directory `xds-mesh` serves through `--config-dir` (FileSource), as a user would write it: one
// file per Service (`svc-NNNN.yaml`: the Service, its Pods, its EndpointSlice, a VirtualService and a
// DestinationRule) in 10 namespaces, plus `namespaces.yaml`. Every file is written atomically (temporary
// file + rename), as the README asks, so a change is one rename.
import fs from 'node:fs';
import path from 'node:path';

export const MESH_PORT = 8080;
export const TARGET_PORT = 50051;
export const NAMESPACE_COUNT = 10;

export interface MeshShape {
  readonly services: number;
  /** Endpoints (Pods) per Service. */
  readonly endpoints: number;
}

/** What one Service file holds; the benchmark changes these between writes. */
export interface ServiceState {
  /** Pod-template hash: a rollout changes it (new Pod names and IPs). */
  readonly revision: number;
  /** Replaces the address of endpoint 0 (an endpoint change). */
  readonly firstAddress?: string | undefined;
  /** Weight of subset v1 in the VirtualService (v2 gets the rest). */
  readonly v1Weight: number;
  /**
   * Pods of the workload that are starting: each listed in the EndpointSlice not ready (as the EndpointSlice
   * controller lists a Pod once it has an IP), with a Pod object like endpoint 0's.
   */
  readonly starting?: readonly { readonly pod: string; readonly ip: string }[];
}

export const initialState: ServiceState = { revision: 0, v1Weight: 90 };

export function serviceName(i: number): string {
  return `svc-${String(i).padStart(4, '0')}`;
}

export function namespaceOf(i: number): string {
  return `ns-${i % NAMESPACE_COUNT}`;
}

export function serviceFqdn(i: number): string {
  return `${serviceName(i)}.${namespaceOf(i)}.svc.cluster.local`;
}

export function outboundCluster(i: number, subset = ''): string {
  return `outbound|${MESH_PORT}|${subset}|${serviceFqdn(i)}`;
}

export function podName(i: number, revision: number, j: number): string {
  return `${serviceName(i)}-r${revision}-${j}`;
}

/** Pod j of Service i at a revision: 10.<rev>.<i/256>.<i%256 …> — unique per (i, revision, j). */
export function podIp(i: number, revision: number, j: number): string {
  return `10.${(revision * 4 + (i >> 8)) & 255}.${i & 255}.${j + 1}`;
}

export function podLabels(i: number, revision: number, j: number, endpoints: number): Record<string, string> {
  return {
    app: serviceName(i),
    version: j < Math.ceil(endpoints * 0.8) ? 'v1' : 'v2',
    'pod-template-hash': `r${revision}`,
    'trellis.dev/tlsMode': 'mesh',
  };
}

function serviceYaml(i: number, shape: MeshShape, state: ServiceState): string {
  const name = serviceName(i);
  const ns = namespaceOf(i);
  const docs: unknown[] = [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: ns, labels: { app: name } },
      spec: {
        clusterIP: `10.96.${i >> 8}.${i & 255}`,
        selector: { app: name },
        ports: [{ name: 'grpc', port: MESH_PORT, targetPort: TARGET_PORT }],
      },
    },
  ];
  const endpoints: unknown[] = [];
  /** A Pod of the workload (labels of its Pod `j`) and its endpoint at `address`. */
  const addPod = (pod: string, j: number, address: string, ready: boolean): void => {
    docs.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: pod, namespace: ns, labels: podLabels(i, state.revision, j, shape.endpoints) },
      spec: { serviceAccountName: name, containers: [{ name: 'app' }] },
    });
    endpoints.push({
      addresses: [address],
      conditions: { ready },
      targetRef: { kind: 'Pod', namespace: ns, name: pod },
    });
  };
  for (let j = 0; j < shape.endpoints; j++) {
    const address = j === 0 && state.firstAddress ? state.firstAddress : podIp(i, state.revision, j);
    addPod(podName(i, state.revision, j), j, address, true);
  }
  for (const { pod, ip } of state.starting ?? []) addPod(pod, 0, ip, false);
  docs.push({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${name}-1`, namespace: ns, labels: { 'kubernetes.io/service-name': name } },
    addressType: 'IPv4',
    ports: [{ name: 'grpc', port: TARGET_PORT, protocol: 'TCP' }],
    endpoints,
  });
  docs.push({
    apiVersion: 'networking.trellis.dev/v1alpha1',
    kind: 'VirtualService',
    metadata: { name, namespace: ns },
    spec: {
      hosts: [name],
      http: [
        {
          route: [
            { destination: { host: name, subset: 'v1' }, weight: state.v1Weight },
            { destination: { host: name, subset: 'v2' }, weight: 100 - state.v1Weight },
          ],
          retries: { attempts: 3, perTryTimeout: '2s', retryOn: 'unavailable,cancelled' },
          timeout: '10s',
        },
      ],
    },
  });
  docs.push({
    apiVersion: 'networking.trellis.dev/v1alpha1',
    kind: 'DestinationRule',
    metadata: { name, namespace: ns },
    spec: {
      host: name,
      trafficPolicy: {
        connectionPool: { http: { http2MaxRequests: 1000 } },
        outlierDetection: { consecutive5xxErrors: 5, interval: '10s', baseEjectionTime: '30s' },
      },
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { version: 'v2' } },
      ],
    },
  });
  return docs.map((d) => JSON.stringify(d)).join('\n---\n') + '\n';
}

function writeAtomically(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

/** A mesh directory and the state of each Service file in it. */
export class MeshFixture {
  readonly states: ServiceState[];

  constructor(
    readonly dir: string,
    readonly shape: MeshShape,
  ) {
    this.states = Array.from({ length: shape.services }, () => initialState);
  }

  writeAll(): void {
    fs.mkdirSync(this.dir, { recursive: true });
    const namespaces = Array.from({ length: NAMESPACE_COUNT }, (_, n) =>
      JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `ns-${n}` } }),
    );
    writeAtomically(path.join(this.dir, 'namespaces.yaml'), namespaces.join('\n---\n') + '\n');
    for (let i = 0; i < this.shape.services; i++) this.write(i);
  }

  /** Changes Service i's state and rewrites its file (one rename). */
  update(i: number, change: Partial<ServiceState>): ServiceState {
    const next = { ...this.states[i]!, ...change };
    this.states[i] = next;
    this.write(i);
    return next;
  }

  private write(i: number): void {
    writeAtomically(path.join(this.dir, `${serviceName(i)}.yaml`), serviceYaml(i, this.shape, this.states[i]!));
  }
}
