// The /inject handler as the control plane serves it: the mesh config, the workload's mTLS from the
// current mesh snapshot (PeerAuthentications, in local and Kubernetes mode), and the API server's minor
// version (read once at start in Kubernetes mode, for native sidecars).
import type { KubeConfig } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import type { Logger } from '../control-plane/logger.js';
import { workloadMtls } from '../control-plane/model/peer-authentication.js';
import type { MeshSnapshot } from '../control-plane/model/snapshot.js';
import type { MeshConfig } from '../control-plane/translate/context.js';
import type { AdmissionHandler } from '../control-plane/webhook/server.js';
import { createInjectHandler } from './admission.js';
import type { ImageOptions } from './images.js';

export interface ControlPlaneInjectorOptions {
  readonly logger: Logger;
  readonly registry: Registry;
  readonly meshConfig?: MeshConfig;
  /** The mesh source, when the control plane has one (its snapshots carry the PeerAuthentications). */
  readonly mesh?: { current(): MeshSnapshot };
  readonly kubeConfig?: KubeConfig;
  /** What injected agents dial; default trellisd.trellis-system.svc:15012. */
  readonly controlPlane?: string;
  readonly image?: ImageOptions;
}

/** Parses VersionInfo.minor ("34", "34+"). */
export function parseMinor(minor: string): number | undefined {
  const match = /^([0-9]+)/.exec(minor);
  return match ? Number(match[1]) : undefined;
}

export function controlPlaneInjectHandler(options: ControlPlaneInjectorOptions): AdmissionHandler {
  let minor: number | undefined;
  const kubeConfig = options.kubeConfig;
  if (kubeConfig) {
    // The Kubernetes client is loaded only in Kubernetes mode.
    import('@kubernetes/client-node')
      .then(({ VersionApi }) => kubeConfig.makeApiClient(VersionApi).getCode())
      .then(
        (info) => {
          minor = parseMinor(info.minor);
          options.logger.info({ major: info.major, minor: info.minor }, 'injector: API server version');
        },
        (err: unknown) =>
          options.logger.warn(
            { err: (err as Error).message },
            'injector: API server version unknown; native sidecars assumed',
          ),
      );
  }
  const fallback = options.meshConfig?.mtlsMode ?? 'PERMISSIVE';
  return createInjectHandler({
    logger: options.logger,
    registry: options.registry,
    meshConfig: options.meshConfig,
    controlPlane: options.controlPlane,
    image: options.image,
    kubernetesMinor: () => minor,
    mtlsFor: options.mesh
      ? (namespace, labels) => workloadMtls(options.mesh!.current(), namespace, labels, fallback)
      : undefined,
  });
}
