// Well-known names and ports that the control plane, the agent and the injector must agree on (design.md §3,
// §4). A leaf: no imports, so any process can take these without loading anything else.

/** The control plane's namespace, ServiceAccount and Service (Deployment `trellisd`). */
export const CONTROL_PLANE_NAMESPACE = 'trellis-system';
export const CONTROL_PLANE_SERVICE_ACCOUNT = 'trellisd';
export const CONTROL_PLANE_SERVICE = 'trellisd';

/** The TLS server name (SNI) agents send to the control plane: its Service's cluster DNS name. */
export const CONTROL_PLANE_SERVER_NAME = `${CONTROL_PLANE_SERVICE}.${CONTROL_PLANE_NAMESPACE}.svc`;

/** The SPIFFE ID of the control plane's serving certificate: `spiffe://<td>/ns/trellis-system/sa/trellisd`. */
export function controlPlaneSpiffeId(trustDomain: string): string {
  return `spiffe://${trustDomain}/ns/${CONTROL_PLANE_NAMESPACE}/sa/${CONTROL_PLANE_SERVICE_ACCOUNT}`;
}

/** Ports (design.md §4). */
export const Ports = {
  /** Control plane: xDS and CA, plaintext, local mode only. */
  xdsPlaintext: 15010,
  /** Control plane: xDS and CA over TLS. */
  xdsTls: 15012,
  /** Control plane: /metrics, /debug/*, /healthz, /readyz. */
  monitoring: 15014,
  /** Control plane: admission webhooks. */
  webhook: 15017,
  /** Envoy: admin, 127.0.0.1 only. */
  envoyAdmin: 15000,
  /** Envoy: outbound capture. */
  outboundCapture: 15001,
  /** Envoy: inbound capture. */
  inboundCapture: 15006,
  /** Agent: /healthz/ready and /metrics. */
  agentHealth: 15021,
  /** Envoy: Prometheus stats. */
  envoyStats: 15090,
} as const;

/** The UID the proxy runs as; traffic capture leaves its connections alone. */
export const PROXY_UID = 1337;

/** SDS secret names the agent serves and every cluster and listener refers to. */
export const SDS_WORKLOAD_SECRET = 'default';
export const SDS_ROOT_SECRET = 'ROOTCA';

/**
 * SDS names of certificates the agent reads from files in the proxy's container (Istio's names): a
 * DestinationRule's `clientCertificate` and `privateKey` are `file-cert:<certificate>~<key>`, its
 * `caCertificates` `file-root:<ca>`. The agent serves them from the files and sends them again when a file
 * changes, so a rotated certificate reaches Envoy without a config change.
 */
export const SDS_FILE_CERTIFICATE_PREFIX = 'file-cert:';
export const SDS_FILE_ROOT_PREFIX = 'file-root:';

/** The SDS name of a client certificate and its key read from files. */
export function fileCertificateSecretName(certificate: string, key: string): string {
  return `${SDS_FILE_CERTIFICATE_PREFIX}${certificate}~${key}`;
}

/** The SDS name of a trust bundle read from a file. */
export function fileRootSecretName(ca: string): string {
  return `${SDS_FILE_ROOT_PREFIX}${ca}`;
}

/** What a file secret's name names; undefined for any other name. */
export type FileSecretName =
  | { readonly kind: 'certificate'; readonly certificate: string; readonly key: string }
  | { readonly kind: 'root'; readonly ca: string };

export function parseFileSecretName(name: string): FileSecretName | undefined {
  if (name.startsWith(SDS_FILE_ROOT_PREFIX)) {
    const ca = name.slice(SDS_FILE_ROOT_PREFIX.length);
    return ca === '' ? undefined : { kind: 'root', ca };
  }
  if (name.startsWith(SDS_FILE_CERTIFICATE_PREFIX)) {
    const rest = name.slice(SDS_FILE_CERTIFICATE_PREFIX.length);
    const at = rest.lastIndexOf('~');
    if (at <= 0 || at === rest.length - 1) return undefined;
    return { kind: 'certificate', certificate: rest.slice(0, at), key: rest.slice(at + 1) };
  }
  return undefined;
}

/** Certificate provider instance names in the gRPC bootstrap the agent writes (proxyless mTLS). */
export const GRPC_IDENTITY_PROVIDER = 'default';
export const GRPC_ROOT_PROVIDER = 'ROOTCA';

/** The static cluster in the Envoy bootstrap that reaches the agent's SDS server. */
export const SDS_CLUSTER = 'sds-grpc';

/**
 * Namespace label: `enabled` injects the namespace's pods. On a pod, the label (or else the annotation of
 * the same name) is the pod's own choice: `true` opts in, `false` opts out.
 */
export const INJECT_LABEL = 'trellis.dev/inject';
/** Pod annotation, read when the pod has no `trellis.dev/inject` label: `true` opts in, `false` opts out. */
export const INJECT_ANNOTATION = 'trellis.dev/inject';
/** Pod annotation: the injection template, `envoy` (the default) or `grpc` (proxyless). */
export const TEMPLATE_ANNOTATION = 'trellis.dev/template';

/**
 * NODE_OPTIONS for the agent's container: a 1 MiB young-generation semi-space (the agent allocates little;
 * Node's default 16 MiB semi-spaces fill with garbage before a scavenge) and a 64 MiB old-generation cap (its
 * heap holds ≈ 10 MiB; relayed messages are Buffers outside it). `npm run bench -- agent` measures them.
 */
export const AGENT_NODE_OPTIONS = '--max-semi-space-size=1 --max-old-space-size=64';
