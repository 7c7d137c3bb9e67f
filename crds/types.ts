// TypeScript types of the routing resources, `networking.trellis.dev/v1alpha1` VirtualService and
// DestinationRule, and of the mutual-TLS policy `security.trellis.dev/v1alpha1` PeerAuthentication. Field
// names and shapes follow Istio's `networking.istio.io/v1` and `security.istio.io/v1` APIs (their proto3
// JSON: durations are strings such as "1.5s", 32-bit integers are numbers, enums are their names, map keys
// are strings), restricted to the fields Trellis implements. The CRD schemas (crds/*.yaml), the validator and the translator all
// read these types; nothing here is optional that Istio requires.

export const GROUP = 'networking.trellis.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
/** The group of the security policies, PeerAuthentication and AuthorizationPolicy (Istio's `security.istio.io`). */
export const SECURITY_GROUP = 'security.trellis.dev';
export const SECURITY_API_VERSION = `${SECURITY_GROUP}/${VERSION}`;

/** The metadata the mesh reads; a Kubernetes object has more. */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  /** RFC 3339; decides which of two conflicting VirtualServices wins (the older). */
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

// ---------------------------------------------------------------------------------------------------
// VirtualService

/** Exactly one of the three. `regex` is RE2 syntax, matched against the whole value. */
export interface StringMatch {
  exact?: string;
  prefix?: string;
  regex?: string;
}

export interface HTTPMatchRequest {
  name?: string;
  uri?: StringMatch;
  scheme?: StringMatch;
  method?: StringMatch;
  authority?: StringMatch;
  /** Header names are lower case. */
  /** An empty StringMatch (`{}`) here, in queryParams and in withoutHeaders matches when the header or parameter is present. */
  headers?: Record<string, StringMatch>;
  port?: number;
  sourceLabels?: Record<string, string>;
  queryParams?: Record<string, StringMatch>;
  ignoreUriCase?: boolean;
  withoutHeaders?: Record<string, StringMatch>;
  sourceNamespace?: string;
}

export interface PortSelector {
  number?: number;
}

export interface Destination {
  /** A short name (`reviews`), `name.namespace`, `name.namespace.svc` or an FQDN. */
  host: string;
  subset?: string;
  port?: PortSelector;
}

export interface HeaderOperations {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

export interface Headers {
  request?: HeaderOperations;
  response?: HeaderOperations;
}

export interface HTTPRouteDestination {
  destination: Destination;
  /** Relative weight; when a route has several destinations their weights are summed (Istio: 0..100 each). */
  weight?: number;
  headers?: Headers;
}

export interface HTTPRedirect {
  uri?: string;
  authority?: string;
  port?: number;
  scheme?: string;
  /** 301 (default), 302, 303, 307 or 308. */
  redirectCode?: number;
}

export interface RegexRewrite {
  match: string;
  rewrite: string;
}

export interface HTTPRewrite {
  uri?: string;
  authority?: string;
  uriRegexRewrite?: RegexRewrite;
}

export interface HTTPRetry {
  /** 0 disables retries. */
  attempts: number;
  perTryTimeout?: string;
  /** Envoy retry conditions and gRPC status names, comma separated, or HTTP status codes. */
  retryOn?: string;
  retryRemoteLocalities?: boolean;
}

/** A percentage in [0, 100]. */
export interface Percent {
  value: number;
}

export interface HTTPFaultInjectionDelay {
  percentage?: Percent;
  fixedDelay: string;
}

export interface HTTPFaultInjectionAbort {
  percentage?: Percent;
  /** Exactly one of httpStatus and grpcStatus. */
  httpStatus?: number;
  /** A gRPC status name such as "UNAVAILABLE". */
  grpcStatus?: string;
}

export interface HTTPFaultInjection {
  delay?: HTTPFaultInjectionDelay;
  abort?: HTTPFaultInjectionAbort;
}

export interface CorsPolicy {
  allowOrigins?: StringMatch[];
  allowMethods?: string[];
  allowHeaders?: string[];
  exposeHeaders?: string[];
  maxAge?: string;
  allowCredentials?: boolean;
}

export interface HTTPRoute {
  name?: string;
  match?: HTTPMatchRequest[];
  /** Exclusive with redirect. */
  route?: HTTPRouteDestination[];
  redirect?: HTTPRedirect;
  rewrite?: HTTPRewrite;
  timeout?: string;
  retries?: HTTPRetry;
  fault?: HTTPFaultInjection;
  mirror?: Destination;
  mirrorPercentage?: Percent;
  corsPolicy?: CorsPolicy;
  headers?: Headers;
}

export interface L4MatchAttributes {
  destinationSubnets?: string[];
  port?: number;
  sourceLabels?: Record<string, string>;
  sourceNamespace?: string;
}

export interface RouteDestination {
  destination: Destination;
  weight?: number;
}

export interface TCPRoute {
  match?: L4MatchAttributes[];
  route?: RouteDestination[];
}

export interface VirtualServiceSpec {
  hosts?: string[];
  /** Accepted and ignored (Trellis has no gateways yet); `mesh` is the implied default. */
  gateways?: string[];
  http?: HTTPRoute[];
  tcp?: TCPRoute[];
  /** `*` (default: every namespace) or `.` (this namespace only), or namespace names. */
  exportTo?: string[];
}

// ---------------------------------------------------------------------------------------------------
// DestinationRule

export type SimpleLB = 'UNSPECIFIED' | 'LEAST_CONN' | 'RANDOM' | 'PASSTHROUGH' | 'ROUND_ROBIN' | 'LEAST_REQUEST';

export interface HTTPCookie {
  name: string;
  path?: string;
  ttl?: string;
}

export interface RingHash {
  minimumRingSize?: number;
}

export interface MagLev {
  tableSize?: number;
}

/** Exactly one hash key (httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName), at most one of ringHash and maglev. */
export interface ConsistentHashLB {
  httpHeaderName?: string;
  httpCookie?: HTTPCookie;
  useSourceIp?: boolean;
  httpQueryParameterName?: string;
  ringHash?: RingHash;
  maglev?: MagLev;
}

export interface WarmupConfiguration {
  duration: string;
  minimumPercent?: number;
  aggression?: number;
}

/** Exactly one of simple and consistentHash. */
export interface LoadBalancerSettings {
  simple?: SimpleLB;
  consistentHash?: ConsistentHashLB;
  warmup?: WarmupConfiguration;
}

export interface TcpKeepalive {
  probes?: number;
  time?: string;
  interval?: string;
}

export interface TCPSettings {
  maxConnections?: number;
  connectTimeout?: string;
  tcpKeepalive?: TcpKeepalive;
  maxConnectionDuration?: string;
  idleTimeout?: string;
}

export interface HTTPSettings {
  http1MaxPendingRequests?: number;
  http2MaxRequests?: number;
  maxRequestsPerConnection?: number;
  maxRetries?: number;
  idleTimeout?: string;
  maxConcurrentStreams?: number;
}

export interface ConnectionPoolSettings {
  tcp?: TCPSettings;
  http?: HTTPSettings;
}

export interface OutlierDetection {
  consecutive5xxErrors?: number;
  consecutiveGatewayErrors?: number;
  interval?: string;
  baseEjectionTime?: string;
  maxEjectionPercent?: number;
  minHealthPercent?: number;
}

/** ISTIO_MUTUAL is accepted as an alias of MESH_MUTUAL. */
export type TLSMode = 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'MESH_MUTUAL' | 'ISTIO_MUTUAL';

export interface ClientTLSSettings {
  mode: TLSMode;
  sni?: string;
  subjectAltNames?: string[];
}

export interface PortTrafficPolicy {
  port?: PortSelector;
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetection;
  tls?: ClientTLSSettings;
}

export interface TrafficPolicy {
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetection;
  tls?: ClientTLSSettings;
  portLevelSettings?: PortTrafficPolicy[];
}

export interface Subset {
  name: string;
  labels?: Record<string, string>;
  trafficPolicy?: TrafficPolicy;
}

export interface DestinationRuleSpec {
  host: string;
  trafficPolicy?: TrafficPolicy;
  subsets?: Subset[];
  exportTo?: string[];
}

// ---------------------------------------------------------------------------------------------------
// PeerAuthentication (`security.trellis.dev/v1alpha1`, Istio's `security.istio.io/v1` PeerAuthentication)

/** Inbound mutual TLS of a workload. UNSET inherits from the level above (workload → namespace → mesh). */
export type PeerMtlsMode = 'UNSET' | 'DISABLE' | 'PERMISSIVE' | 'STRICT';

export interface PeerMutualTls {
  /** Default UNSET. */
  mode?: PeerMtlsMode;
}

export interface WorkloadSelector {
  /** The labels a Pod must all have; empty or absent selects the whole namespace. */
  matchLabels?: Record<string, string>;
}

export interface PeerAuthenticationSpec {
  /** Absent: the policy is the namespace's (or, in the root namespace, the mesh's). */
  selector?: WorkloadSelector;
  mtls?: PeerMutualTls;
  /** By container (target) port number, as a string key (JSON); only with a selector. */
  portLevelMtls?: Record<string, PeerMutualTls>;
}

// ---------------------------------------------------------------------------------------------------
// AuthorizationPolicy (`security.trellis.dev/v1alpha1`, Istio's `security.istio.io/v1` AuthorizationPolicy)
// Strings in principals, namespaces, hosts, methods and paths match exactly, or by prefix (`abc*`), suffix
// (`*abc`) or presence (`*`), as in Istio.

/** ALLOW, DENY or AUDIT (Istio's CUSTOM needs an external authorizer, which Trellis does not have). */
export type AuthorizationAction = 'ALLOW' | 'DENY' | 'AUDIT';

export interface AuthorizationSource {
  /** Peer identities (SPIFFE IDs without `spiffe://`): `cluster.local/ns/default/sa/reviews`. */
  principals?: string[];
  notPrincipals?: string[];
  /** Namespaces of the peer identity. */
  namespaces?: string[];
  notNamespaces?: string[];
  /** The peer's address (the connection's source): IPs or CIDR blocks. */
  ipBlocks?: string[];
  notIpBlocks?: string[];
  /** The original client address (X-Forwarded-For, as Envoy computes it): IPs or CIDR blocks. */
  remoteIpBlocks?: string[];
  notRemoteIpBlocks?: string[];
}

export interface AuthorizationOperation {
  /** The request's host (`:authority`), case-insensitive. HTTP only. */
  hosts?: string[];
  notHosts?: string[];
  /** Destination (container) ports, as strings. */
  ports?: string[];
  notPorts?: string[];
  /** HTTP methods; every gRPC call is POST. HTTP only. */
  methods?: string[];
  notMethods?: string[];
  /** Request paths; a gRPC method is `/package.Service/Method`. HTTP only. */
  paths?: string[];
  notPaths?: string[];
}

export interface AuthorizationCondition {
  /** `request.headers[<name>]`, `source.ip`, `remote.ip`, `source.namespace`, `source.principal`, `destination.ip`, `destination.port`, `connection.sni`. */
  key: string;
  values?: string[];
  notValues?: string[];
}

export interface AuthorizationRule {
  from?: { source: AuthorizationSource }[];
  to?: { operation: AuthorizationOperation }[];
  when?: AuthorizationCondition[];
}

export interface AuthorizationPolicySpec {
  /** Absent: every workload of the namespace (in the root namespace: of the mesh). */
  selector?: WorkloadSelector;
  /** Default ALLOW. */
  action?: AuthorizationAction;
  /** Absent or empty: ALLOW matches nothing (denies every request), DENY and AUDIT match nothing. */
  rules?: AuthorizationRule[];
}

// ---------------------------------------------------------------------------------------------------
// Objects and status

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  observedGeneration?: number;
}

export interface RoutingStatus {
  conditions?: Condition[];
  observedGeneration?: number;
}

export interface VirtualService {
  apiVersion: typeof API_VERSION;
  kind: 'VirtualService';
  metadata: ObjectMeta;
  spec: VirtualServiceSpec;
  status?: RoutingStatus;
}

export interface DestinationRule {
  apiVersion: typeof API_VERSION;
  kind: 'DestinationRule';
  metadata: ObjectMeta;
  spec: DestinationRuleSpec;
  status?: RoutingStatus;
}

export type RoutingResource = VirtualService | DestinationRule;

export interface PeerAuthentication {
  apiVersion: typeof SECURITY_API_VERSION;
  kind: 'PeerAuthentication';
  metadata: ObjectMeta;
  spec: PeerAuthenticationSpec;
  status?: RoutingStatus;
}

export interface AuthorizationPolicy {
  apiVersion: typeof SECURITY_API_VERSION;
  kind: 'AuthorizationPolicy';
  metadata: ObjectMeta;
  spec: AuthorizationPolicySpec;
  status?: RoutingStatus;
}

/** Every kind of crds/: what the validator, the webhook and the mesh model judge. */
export type MeshResource = RoutingResource | PeerAuthentication | AuthorizationPolicy;
