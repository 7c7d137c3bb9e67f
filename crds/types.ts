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

/** FROM_PROTOCOL_DEFAULT: the scheme's default port (80, 443); FROM_REQUEST_PORT: the port of the request. */
export type RedirectPortSelection = 'FROM_PROTOCOL_DEFAULT' | 'FROM_REQUEST_PORT';

export interface HTTPRedirect {
  /** Replaces the whole path. Exclusive with prefixRewrite. */
  uri?: string;
  /** Replaces the matched uri prefix (Istio 1.31); every match of the route must match the uri by prefix. */
  prefixRewrite?: string;
  authority?: string;
  /** Exclusive with derivePort. */
  port?: number;
  derivePort?: RedirectPortSelection;
  scheme?: string;
  /** 301 (default), 302, 303, 307 or 308. */
  redirectCode?: number;
}

/** Exactly one of string and bytes (base64, as proto3 JSON writes bytes). */
export interface HTTPBody {
  string?: string;
  bytes?: string;
}

/** A fixed answer instead of forwarding. */
export interface HTTPDirectResponse {
  /** 200 to 599. */
  status: number;
  body?: HTTPBody;
}

/** A root VirtualService's route hands its requests to the routes of a VirtualService without hosts. */
export interface Delegate {
  name: string;
  /** Default: the root's namespace. */
  namespace?: string;
}

/** One of several mirrors of a route. */
export interface HTTPMirrorPolicy {
  destination: Destination;
  /** Share of the requests mirrored (default 100). */
  percentage?: Percent;
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
  /** Retry on a host not tried yet (default true). */
  retryIgnorePreviousHosts?: boolean;
  /** Base interval of the exponential backoff between retries (Envoy's default 25ms). */
  backoff?: string;
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
  /** One of route, redirect, directResponse and delegate (a root route may add directResponse to delegate). */
  route?: HTTPRouteDestination[];
  redirect?: HTTPRedirect;
  directResponse?: HTTPDirectResponse;
  /** Only in a VirtualService with hosts, and only to one without. */
  delegate?: Delegate;
  rewrite?: HTTPRewrite;
  timeout?: string;
  retries?: HTTPRetry;
  fault?: HTTPFaultInjection;
  mirror?: Destination;
  mirrorPercentage?: Percent;
  /** Exclusive with mirror. */
  mirrors?: HTTPMirrorPolicy[];
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

/** Istio's TLSMatchAttributes: `sniHosts` is required; the rest as in L4MatchAttributes. */
export interface TLSMatchAttributes {
  /** SNI names the route applies to (exact or `*.`-prefixed); each must match one of the VirtualService's hosts. */
  sniHosts: string[];
  destinationSubnets?: string[];
  port?: number;
  sourceLabels?: Record<string, string>;
  sourceNamespace?: string;
}

/** A route for TLS connections that are not terminated (passed through by SNI). */
export interface TLSRoute {
  match: TLSMatchAttributes[];
  route?: RouteDestination[];
}

export interface VirtualServiceSpec {
  /** Absent: a delegate, used only through a root VirtualService's `delegate` (http routes only). */
  hosts?: string[];
  /** Accepted and ignored (Trellis has no gateways yet); `mesh` is the implied default. */
  gateways?: string[];
  http?: HTTPRoute[];
  tls?: TLSRoute[];
  tcp?: TCPRoute[];
  /** `*` (default: every namespace) or `.` (this namespace only), or namespace names. */
  exportTo?: string[];
}

// ---------------------------------------------------------------------------------------------------
// DestinationRule

export type SimpleLB = 'UNSPECIFIED' | 'LEAST_CONN' | 'RANDOM' | 'PASSTHROUGH' | 'ROUND_ROBIN' | 'LEAST_REQUEST';

/** An attribute of a generated cookie (`SameSite=Strict`, `Secure`): a name and an optional value. */
export interface HTTPCookieAttribute {
  name: string;
  value?: string;
}

export interface HTTPCookie {
  name: string;
  path?: string;
  ttl?: string;
  /** Attributes of the cookie Envoy generates when the request has none. */
  attributes?: HTTPCookieAttribute[];
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

/** Traffic from localities matching `from` goes to the localities matching the keys of `to`, by weight. */
export interface LocalityDistribute {
  /** `region/zone/subzone`, each segment may be `*` (terminal wildcards). */
  from: string;
  /** Locality pattern → weight (the weights of one `from` sum to 100). */
  to: Record<string, number>;
}

/** When the endpoints of region `from` are unhealthy, traffic goes to region `to` (and no other region). */
export interface LocalityFailover {
  from: string;
  to: string;
}

/** Istio's LocalityLoadBalancerSetting: at most one of distribute, failover (with or without failoverPriority). */
export interface LocalityLoadBalancerSetting {
  distribute?: LocalityDistribute[];
  failover?: LocalityFailover[];
  /** Label keys (`key`) or pairs (`key=value`) that order endpoints into priorities. */
  failoverPriority?: string[];
  /** false turns locality load balancing off for this rule (the mesh default is on, as in Istio). */
  enabled?: boolean;
}

/** At most one of simple and consistentHash (a loadBalancer may hold only warmup or localityLbSetting). */
export interface LoadBalancerSettings {
  simple?: SimpleLB;
  consistentHash?: ConsistentHashLB;
  localityLbSetting?: LocalityLoadBalancerSetting;
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
  /** DEFAULT (the mesh's: no upgrade), DO_NOT_UPGRADE or UPGRADE (speak HTTP/2 to an HTTP/1.1 port). */
  h2UpgradePolicy?: H2UpgradePolicy;
  /** Speak to the destination the protocol the client spoke (HTTP/1.1 or HTTP/2); h2UpgradePolicy is then ignored. */
  useClientProtocol?: boolean;
  maxConcurrentStreams?: number;
  /** HTTP/2 PING keepalive of upstream connections. */
  http2KeepAlive?: Http2KeepAlive;
}

export type H2UpgradePolicy = 'DEFAULT' | 'DO_NOT_UPGRADE' | 'UPGRADE';

/** Both fields are required. */
export interface Http2KeepAlive {
  interval: string;
  timeout: string;
}

export interface ConnectionPoolSettings {
  tcp?: TCPSettings;
  http?: HTTPSettings;
}

export interface OutlierDetection {
  /** Count locally originated failures (connect errors, timeouts, resets) apart from the answers' status codes. */
  splitExternalLocalOriginErrors?: boolean;
  /** With splitExternalLocalOriginErrors: local-origin failures in a row before ejection (Envoy's default 5). */
  consecutiveLocalOriginFailures?: number;
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
  /** SIMPLE/MUTUAL: a PEM file of trusted CAs on the proxy's file system; system roots when unset. */
  caCertificates?: string;
  /** MUTUAL: PEM client certificate chain file (with privateKey; or credentialName). */
  clientCertificate?: string;
  /** MUTUAL: PEM private key file of clientCertificate. */
  privateKey?: string;
  /** SIMPLE/MUTUAL: a Secret in the client proxy's own namespace, served over SDS as `kubernetes://<name>`. */
  credentialName?: string;
  /** SIMPLE/MUTUAL: a PEM certificate revocation list file. */
  caCrl?: string;
  sni?: string;
  subjectAltNames?: string[];
  /** SIMPLE/MUTUAL: do not verify the server's certificate (nor its SANs). */
  insecureSkipVerify?: boolean;
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
  /** Apply the rule only to the proxies of its own namespace whose Pod labels match (Istio: outbound only). */
  workloadSelector?: WorkloadSelector;
}

// ---------------------------------------------------------------------------------------------------
// ServiceEntry (`networking.trellis.dev/v1alpha1`, Istio's `networking.istio.io/v1` ServiceEntry)

/** Istio's port protocols; HTTP, HTTP2, GRPC get routes, the rest is TCP (TLS and HTTPS by SNI). */
export type ServiceEntryProtocol = 'HTTP' | 'HTTPS' | 'GRPC' | 'HTTP2' | 'MONGO' | 'TCP' | 'TLS';

export interface ServiceEntryPort {
  number: number;
  /** Default TCP. */
  protocol?: ServiceEntryProtocol;
  name: string;
  /** The port on the endpoints (default: number); an endpoint's `ports` entry wins. */
  targetPort?: number;
}

/** NONE: the caller's destination address as is; STATIC: the endpoints' IPs; DNS: resolved by the proxy. */
export type ServiceEntryResolution = 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN';
export type ServiceEntryLocation = 'MESH_EXTERNAL' | 'MESH_INTERNAL';

export interface WorkloadEntry {
  /** An IP (STATIC, NONE) or a host name (DNS). */
  address: string;
  /** Port name → the endpoint's port for it. */
  ports?: Record<string, number>;
  labels?: Record<string, string>;
  /** Relative weight (default 1). */
  weight?: number;
  /** `region/zone/subzone`. */
  locality?: string;
  network?: string;
  serviceAccount?: string;
}

export interface ServiceEntrySpec {
  hosts: string[];
  /** Virtual IPs (or CIDR blocks) of the service: the addresses outbound TCP listeners are made for. */
  addresses?: string[];
  ports?: ServiceEntryPort[];
  /** Default MESH_EXTERNAL. */
  location?: ServiceEntryLocation;
  /** Default NONE. */
  resolution?: ServiceEntryResolution;
  endpoints?: WorkloadEntry[];
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

export interface ServiceEntry {
  apiVersion: typeof API_VERSION;
  kind: 'ServiceEntry';
  metadata: ObjectMeta;
  spec: ServiceEntrySpec;
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
// ---------------------------------------------------------------------------------------------------
// Sidecar (`networking.trellis.dev/v1alpha1`, Istio's `networking.istio.io/v1` Sidecar): the services a
// proxy's config holds. `ingress`, `inboundConnectionPool`, `egress[].captureMode` and
// `outboundTrafficPolicy.egressProxy` are Istio fields Trellis does not implement (the validator names them).

export interface SidecarPort {
  number: number;
  protocol?: string;
  name?: string;
}

export interface IstioEgressListener {
  /** Accepted and validated; the scope is per Service (every port of a matched Service is in it). */
  port?: SidecarPort;
  /** Accepted and validated; Trellis emits no per-port egress listener to bind. */
  bind?: string;
  /** `namespace/dnsName`: namespace `*`, `.` (the Sidecar's), `~` (none) or a name; dnsName `*`, `*.suffix` or an FQDN. */
  hosts: string[];
}

export interface SidecarWorkloadSelector {
  /** The labels a Pod must all have (at least one). */
  labels: Record<string, string>;
}

export interface SidecarOutboundTrafficPolicy {
  /** Default: the mesh config's `outboundTrafficPolicy`. */
  mode?: 'ALLOW_ANY' | 'REGISTRY_ONLY';
}

export interface SidecarSpec {
  /** Absent: the namespace's default (in the root namespace: the mesh's). */
  workloadSelector?: SidecarWorkloadSelector;
  egress?: IstioEgressListener[];
  outboundTrafficPolicy?: SidecarOutboundTrafficPolicy;
}

export interface Sidecar {
  apiVersion: typeof API_VERSION;
  kind: 'Sidecar';
  metadata: ObjectMeta;
  spec: SidecarSpec;
}

export type MeshResource = RoutingResource | PeerAuthentication | AuthorizationPolicy | ServiceEntry | Sidecar;
