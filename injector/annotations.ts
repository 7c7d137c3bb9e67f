// Every label and annotation the injector reads or writes (injector/README.md lists them with examples).
// The selection names are the shared ones of api/names.ts.
export { INJECT_ANNOTATION, INJECT_LABEL, TEMPLATE_ANNOTATION } from '../api/names.js';
/** Namespace label value that turns injection on. */
export const INJECT_ENABLED = 'enabled';
/** Written by the injector: JSON naming what was added; its presence means "already injected". */
export const STATUS_ANNOTATION = 'trellis.dev/status';
/** Written by the injector on the pod. */
export const TLS_MODE_LABEL = 'trellis.dev/tlsMode';
export const TLS_MODE_MESH = 'mesh';

/** Sidecar resources (Kubernetes quantities). */
export const RESOURCE_ANNOTATIONS = {
  cpuRequest: 'trellis.dev/proxyCPU',
  memoryRequest: 'trellis.dev/proxyMemory',
  cpuLimit: 'trellis.dev/proxyCPULimit',
  memoryLimit: 'trellis.dev/proxyMemoryLimit',
} as const;

/** Traffic capture (Envoy template); the names of Istio's `traffic.sidecar.istio.io/*`. */
export const CAPTURE_ANNOTATIONS = {
  includeInboundPorts: 'trellis.dev/includeInboundPorts',
  excludeInboundPorts: 'trellis.dev/excludeInboundPorts',
  includeOutboundIpRanges: 'trellis.dev/includeOutboundIPRanges',
  excludeOutboundIpRanges: 'trellis.dev/excludeOutboundIPRanges',
  includeOutboundPorts: 'trellis.dev/includeOutboundPorts',
  excludeOutboundPorts: 'trellis.dev/excludeOutboundPorts',
} as const;

/** Namespaces never injected. */
export const NEVER_INJECTED_NAMESPACES: readonly string[] = ['kube-system', 'kube-public', 'trellis-system'];
