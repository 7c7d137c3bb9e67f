// Builders of the objects the model reads, for the model and source tests.
import type { V1EndpointSlice, V1Namespace, V1Pod, V1Service } from '@kubernetes/client-node';
import type { DestinationRuleSpec, PeerAuthenticationSpec, VirtualServiceSpec } from '../../crds/types.js';
import { canonicalJson } from '../../control-plane/model/canonical.js';
import type { MeshObject, Origin } from '../../control-plane/model/objects.js';

export interface PortSpec {
  name?: string;
  port: number;
  targetPort?: number | string;
  protocol?: string;
  appProtocol?: string;
}

export function namespace(name: string, labels: Record<string, string> = {}): MeshObject {
  const object: V1Namespace = { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } };
  return { kind: 'Namespace', namespace: '', name, object, origin: {} };
}

export function service(
  ns: string,
  name: string,
  ports: PortSpec[],
  extra: { clusterIP?: string; annotations?: Record<string, string>; labels?: Record<string, string> } = {},
): MeshObject {
  const object: V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name,
      namespace: ns,
      ...(extra.annotations ? { annotations: extra.annotations } : {}),
      labels: extra.labels ?? { app: name },
    },
    spec: { selector: { app: name }, ...(extra.clusterIP ? { clusterIP: extra.clusterIP } : {}), ports },
  };
  return { kind: 'Service', namespace: ns, name, object, origin: {} };
}

export interface EndpointSpec {
  address: string;
  pod?: string;
  ready?: boolean;
  zone?: string;
}

export function slice(
  ns: string,
  name: string,
  serviceName: string | undefined,
  ports: { name?: string; port?: number; protocol?: string }[],
  endpoints: EndpointSpec[],
): MeshObject {
  const object: V1EndpointSlice = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: ns, labels: serviceName ? { 'kubernetes.io/service-name': serviceName } : {} },
    addressType: 'IPv4',
    ports,
    endpoints: endpoints.map((e) => ({
      addresses: [e.address],
      ...(e.ready !== undefined ? { conditions: { ready: e.ready } } : {}),
      ...(e.zone ? { zone: e.zone } : {}),
      ...(e.pod ? { targetRef: { kind: 'Pod', namespace: ns, name: e.pod } } : {}),
    })),
  };
  return { kind: 'EndpointSlice', namespace: ns, name, object, origin: {} };
}

export function pod(ns: string, name: string, labels: Record<string, string>, serviceAccountName?: string): MeshObject {
  const object: V1Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels },
    spec: { containers: [{ name: 'app' }], ...(serviceAccountName ? { serviceAccountName } : {}) },
  };
  return { kind: 'Pod', namespace: ns, name, object, origin: {} };
}

export function virtualService(
  ns: string,
  name: string,
  spec: VirtualServiceSpec,
  meta: { creationTimestamp?: string; generation?: number } = {},
  origin: Origin = {},
): MeshObject {
  return {
    kind: 'VirtualService',
    namespace: ns,
    name,
    object: {
      apiVersion: 'networking.trellis.dev/v1alpha1',
      kind: 'VirtualService',
      metadata: { name, namespace: ns, ...meta },
      spec,
    },
    origin,
  };
}

export function destinationRule(
  ns: string,
  name: string,
  spec: DestinationRuleSpec,
  meta: { creationTimestamp?: string; generation?: number } = {},
): MeshObject {
  return {
    kind: 'DestinationRule',
    namespace: ns,
    name,
    object: {
      apiVersion: 'networking.trellis.dev/v1alpha1',
      kind: 'DestinationRule',
      metadata: { name, namespace: ns, ...meta },
      spec,
    },
    origin: {},
  };
}

export function peerAuthentication(
  ns: string,
  name: string,
  spec: PeerAuthenticationSpec,
  meta: { creationTimestamp?: string; generation?: number } = {},
  origin: Origin = {},
): MeshObject {
  return {
    kind: 'PeerAuthentication',
    namespace: ns,
    name,
    object: {
      apiVersion: 'security.trellis.dev/v1alpha1',
      kind: 'PeerAuthentication',
      metadata: { name, namespace: ns, ...meta },
      spec,
    },
    origin,
  };
}

/** A Service `name` in `ns` with one port and one endpoint per version (pods labelled app/version). */
export function workload(
  ns: string,
  name: string,
  port: PortSpec,
  versions: { version: string; address: string; port: number; ready?: boolean }[],
): MeshObject[] {
  const out: MeshObject[] = [service(ns, name, [port])];
  for (const v of versions) {
    const podName = `${name}-${v.version}`;
    out.push(pod(ns, podName, { app: name, version: v.version, 'trellis.dev/tlsMode': 'mesh' }, `${name}-sa`));
    out.push(
      slice(
        ns,
        `${name}-${v.version}-slice`,
        name,
        [{ name: port.name, port: v.port }],
        [{ address: v.address, pod: podName, ...(v.ready !== undefined ? { ready: v.ready } : {}) }],
      ),
    );
  }
  return out;
}

/**
 * Hands objects over as a source does: an object equal to one handed over before (by canonical JSON) is
 * that very object (FileSource does not parse an unchanged file again; a store keeps an unchanged object),
 * so an incremental build can reuse what it built from it.
 */
export function stableObjects(): (objects: readonly MeshObject[]) => MeshObject[] {
  return stableByContent<MeshObject>();
}

/** Values equal by canonical JSON to one handed over before are that very value (as stableObjects). */
export function stableByContent<T>(): (values: readonly T[]) => T[] {
  const pool = new Map<string, T>();
  return (values) =>
    values.map((v) => {
      const key = canonicalJson(v);
      const known = pool.get(key);
      if (known !== undefined) return known;
      pool.set(key, v);
      return v;
    });
}
