// The injector: pod + namespace + mesh config + options -> the injected pod, a reason not to inject, or
// an InjectionError naming the object and the field. Pure and deterministic: the /inject webhook
// (admission.ts) and `trellis inject` (inject-run.ts) both call injectPod, so they give the same pod.
import type { MeshConfig } from '../control-plane/translate/context.js';
import { STATUS_ANNOTATION, TLS_MODE_LABEL, TLS_MODE_MESH } from './annotations.js';
import { imageRef, type ImageOptions } from './images.js';
import {
  DEFAULT_CONTROL_PLANE,
  GRPC_BOOTSTRAP_FILE,
  DATA_VOLUME,
  OUTPUT_DIR,
  RESERVED_CONTAINERS,
  RESERVED_VOLUMES,
  SIDECAR_PORTS,
} from './paths.js';
import { captureConfig, proxyResources, SettingError, templateOf, type TemplateName } from './pod-settings.js';
import { ProbeError, rewriteProbes, type MtlsMode } from './probes.js';
import { selectPod, type NamespaceInfo } from './selection.js';
import { initContainer, proxyContainer, sidecarVolumes } from './templates.js';
import { InjectionError, type Container, type ObjectRef, type Pod } from './types.js';

export type { NamespaceInfo } from './selection.js';

/** The inbound mutual TLS of the workload: its mode and port-level overrides (control-plane/model). */
export interface WorkloadMtls {
  readonly mode: MtlsMode;
  readonly ports?: ReadonlyMap<number, MtlsMode>;
}

export interface InjectOptions {
  /** trustDomain and mtlsMode are read; defaults cluster.local and PERMISSIVE. */
  readonly meshConfig?: Pick<MeshConfig, 'trustDomain' | 'mtlsMode'>;
  /** The workload's resolved mode (PeerAuthentications); default the mesh config's mtlsMode. */
  readonly mtls?: WorkloadMtls;
  /** xDS + CA address the agent dials; default trellisd.trellis-system.svc:15012. */
  readonly controlPlane?: string;
  readonly image?: ImageOptions;
  /** Minor version of the API server (1.<minor>); ≥ 29 gets native sidecars. Default 29. */
  readonly kubernetesMinor?: number;
  /** Template when the pod does not name one; default envoy. */
  readonly defaultTemplate?: TemplateName;
}

/** What the status annotation records. */
export interface InjectionStatus {
  readonly template: TemplateName;
  readonly initContainers: readonly string[];
  readonly containers: readonly string[];
  readonly volumes: readonly string[];
}

export type InjectResult =
  | { readonly outcome: 'injected'; readonly pod: Pod; readonly status: InjectionStatus }
  | { readonly outcome: 'skipped'; readonly reason: string }
  | { readonly outcome: 'error'; readonly error: InjectionError };

/** First minor version with native sidecars on by default (SidecarContainers beta). */
export const NATIVE_SIDECAR_MINOR = 29;

/**
 * Injects `pod` (never modified; the result is a copy). `ref` names the object in errors; by default
 * the Pod itself (`Pod <namespace>/<name or generateName>`).
 */
export function injectPod(
  pod: Pod,
  namespace: NamespaceInfo,
  options: InjectOptions = {},
  ref?: ObjectRef,
): InjectResult {
  const object: ObjectRef = ref ?? {
    kind: 'Pod',
    namespace: namespace.name,
    name: pod.metadata?.name ?? pod.metadata?.generateName ?? '',
    fieldPrefix: '',
  };
  const fail = (field: string, message: string): InjectResult => ({
    outcome: 'error',
    error: new InjectionError(object, field, message),
  });
  const selection = selectPod(pod, namespace);
  if (selection.inject === 'invalid') return fail(selection.field, selection.why);
  if (!selection.inject) return { outcome: 'skipped', reason: selection.why };
  if (typeof pod.spec !== 'object' || pod.spec === null) return fail('spec', 'is missing');
  if (!Array.isArray(pod.spec.containers) || pod.spec.containers.length === 0) {
    return fail('spec.containers', 'must list at least one container');
  }
  const notContainer = pod.spec.containers.findIndex(
    (c) => typeof c !== 'object' || c === null || typeof c.name !== 'string',
  );
  if (notContainer >= 0) return fail(`spec.containers[${notContainer}]`, 'must be a container with a name');
  try {
    return build(structuredClone(pod), options);
  } catch (err) {
    if (err instanceof SettingError || err instanceof ProbeError) return fail(err.field, err.message);
    throw err;
  }
}

function build(pod: Pod, options: InjectOptions): InjectResult {
  const spec = pod.spec!;
  const metadata = (pod.metadata ??= {});
  const annotations = metadata.annotations ?? {};
  checkReserved(pod);
  const template = templateOf(annotations, options.defaultTemplate ?? 'envoy');
  const resources = proxyResources(annotations);
  const mesh = {
    trustDomain: options.meshConfig?.trustDomain ?? 'cluster.local',
    mtlsMode: options.meshConfig?.mtlsMode ?? 'PERMISSIVE',
  };
  const mtls: WorkloadMtls = options.mtls ?? { mode: mesh.mtlsMode };
  const native = (options.kubernetesMinor ?? NATIVE_SIDECAR_MINOR) >= NATIVE_SIDECAR_MINOR;
  const labels = { ...(metadata.labels ?? {}), [TLS_MODE_LABEL]: TLS_MODE_MESH };

  const appProbes =
    template === 'envoy' ? rewriteProbes(spec.containers, (port) => mtls.ports?.get(port) ?? mtls.mode) : {};
  const image = imageRef(template === 'envoy' ? 'proxy' : 'agent', options.image);
  const proxy = proxyContainer({
    template,
    image,
    controlPlane: options.controlPlane ?? DEFAULT_CONTROL_PLANE,
    trustDomain: mesh.trustDomain,
    labels,
    resources,
    native,
    appProbes,
  });
  const added: Container[] = template === 'envoy' ? [initContainer(image, captureConfig(annotations))] : [];
  if (template === 'grpc') {
    spec.containers.forEach((container, index) => addBootstrap(container, index));
  }
  if (native) {
    spec.initContainers = [...added, proxy, ...(spec.initContainers ?? [])];
  } else {
    if (added.length > 0) spec.initContainers = [...added, ...(spec.initContainers ?? [])];
    spec.containers = [proxy, ...spec.containers];
  }
  const volumes = sidecarVolumes();
  spec.volumes = [...(spec.volumes ?? []), ...volumes];
  const status: InjectionStatus = {
    template,
    initContainers: [...added.map((c) => c.name), ...(native ? [proxy.name] : [])],
    containers: native ? [] : [proxy.name],
    volumes: volumes.map((v) => v.name),
  };
  metadata.labels = labels;
  metadata.annotations = { ...annotations, [STATUS_ANNOTATION]: JSON.stringify(status) };
  return { outcome: 'injected', pod, status };
}

/** grpc-js-xds's switch for the RBAC HTTP filter in server Listeners (AuthorizationPolicy). */
const GRPC_XDS_RBAC_ENV = 'GRPC_XDS_EXPERIMENTAL_RBAC';

/** The grpc template: GRPC_XDS_BOOTSTRAP and the agent's files (read-only) in an application container. */
function addBootstrap(container: Container, index: number): void {
  const env = container.env ?? [];
  const existing = env.findIndex((e) => e.name === 'GRPC_XDS_BOOTSTRAP');
  if (existing >= 0) {
    throw new SettingError(
      `spec.containers[${index}].env[${existing}]`,
      'GRPC_XDS_BOOTSTRAP is set by the grpc template; remove it from the container',
    );
  }
  const mounts = container.volumeMounts ?? [];
  const clash = mounts.findIndex((m) => m.mountPath === OUTPUT_DIR);
  if (clash >= 0) {
    throw new SettingError(
      `spec.containers[${index}].volumeMounts[${clash}].mountPath`,
      `${OUTPUT_DIR} is where the grpc template mounts the agent's files`,
    );
  }
  // grpc-js-xds (1.14) enforces an AuthorizationPolicy's RBAC filter only with this switch, and without it
  // NACKs the server Listener that carries one and serves unprotected: on by default, a value the
  // container sets itself is kept.
  const rbac = env.some((e) => e.name === GRPC_XDS_RBAC_ENV) ? [] : [{ name: GRPC_XDS_RBAC_ENV, value: 'true' }];
  container.env = [...env, { name: 'GRPC_XDS_BOOTSTRAP', value: GRPC_BOOTSTRAP_FILE }, ...rbac];
  container.volumeMounts = [...mounts, { name: DATA_VOLUME, mountPath: OUTPUT_DIR, readOnly: true }];
}

/** Names and ports the sidecar takes must be free. */
function checkReserved(pod: Pod): void {
  const spec = pod.spec!;
  for (const [list, key] of [
    [spec.initContainers, 'initContainers'],
    [spec.containers, 'containers'],
  ] as const) {
    (list ?? []).forEach((container, i) => {
      if (RESERVED_CONTAINERS.includes(container.name)) {
        throw new SettingError(`spec.${key}[${i}].name`, `${JSON.stringify(container.name)} is the injector's`);
      }
      (container.ports ?? []).forEach((port, j) => {
        if (SIDECAR_PORTS.includes(port.containerPort)) {
          throw new SettingError(
            `spec.${key}[${i}].ports[${j}].containerPort`,
            `${port.containerPort} is a port of the sidecar (${SIDECAR_PORTS.join(', ')})`,
          );
        }
      });
    });
  }
  (spec.volumes ?? []).forEach((volume, i) => {
    if (RESERVED_VOLUMES.includes(volume.name)) {
      throw new SettingError(`spec.volumes[${i}].name`, `${JSON.stringify(volume.name)} is the injector's`);
    }
  });
}
