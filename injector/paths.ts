// Names, paths and ports the templates use, and that the agent's defaults (sidecar/cli.ts) match. Ports,
// the proxy UID and the control plane's name are the shared ones of api/names.ts.
import { CONTROL_PLANE_SERVER_NAME, Ports } from '../api/names.js';

export { AGENT_NODE_OPTIONS, PROXY_UID } from '../api/names.js';
export const PROXY_CONTAINER = 'trellis-proxy';
export const INIT_CONTAINER = 'trellis-init';

export const DATA_VOLUME = 'trellis-data';
export const TOKEN_VOLUME = 'trellis-token';
export const ROOT_CERT_VOLUME = 'trellis-ca-root-cert';
/** Every name the injector adds; a pod that already uses one cannot be injected. */
export const RESERVED_CONTAINERS: readonly string[] = [PROXY_CONTAINER, INIT_CONTAINER];
export const RESERVED_VOLUMES: readonly string[] = [DATA_VOLUME, TOKEN_VOLUME, ROOT_CERT_VOLUME];

/** The agent's `--output-dir`: sockets, certificate files, bootstraps. An in-memory emptyDir. */
export const OUTPUT_DIR = '/var/run/trellis';
/** ConfigMap `trellis-ca-root-cert` (key root-cert.pem), kept in every namespace by the control plane. */
export const ROOT_CERT_CONFIGMAP = 'trellis-ca-root-cert';
export const ROOT_CERT_DIR = '/var/run/trellis/root-cert';
export const ROOT_CERT_FILE = `${ROOT_CERT_DIR}/root-cert.pem`;
/** The projected ServiceAccount token, audience trellis-ca. */
export const TOKEN_DIR = '/var/run/secrets/tokens';
export const TOKEN_FILE = `${TOKEN_DIR}/trellis-ca`;
export const TOKEN_AUDIENCE = 'trellis-ca';
export const TOKEN_EXPIRATION_SECONDS = 43_200;
/** What a proxyless application points GRPC_XDS_BOOTSTRAP at (sidecar/agent.ts GRPC_BOOTSTRAP). */
export const GRPC_BOOTSTRAP_FILE = `${OUTPUT_DIR}/grpc-bootstrap.json`;

export const HEALTH_PORT: number = Ports.agentHealth;
export const ENVOY_PROMETHEUS_PORT: number = Ports.envoyStats;
/** Ports of the sidecar an application container must not declare (15020: Istio's agent port, kept free). */
export const SIDECAR_PORTS: readonly number[] = [
  Ports.envoyAdmin,
  Ports.outboundCapture,
  Ports.inboundCapture,
  15020,
  Ports.agentHealth,
  Ports.envoyStats,
];
/** What the agents dial: the control plane's Service, TLS port. */
export const DEFAULT_CONTROL_PLANE = `${CONTROL_PLANE_SERVER_NAME}:${Ports.xdsTls}`;
/** `/app-health/<container>/<readyz|livez|startupz>` on the health port (sidecar/app-probes.ts). */
export const APP_PROBES_ENV = 'TRELLIS_APP_PROBES';
export const APP_HEALTH_PREFIX = '/app-health/';
