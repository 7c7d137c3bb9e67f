// DestinationRule load balancer, connection pool and outlier detection → Cluster fields, per proxy type
// (envoy-translation.md §1.3, §1.4; grpc-js-xds.md §2 "Cluster" for what proxyless gRPC accepts).
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { anyPack, DurationSchema, type Any, type Duration } from '@bufbuild/protobuf/wkt';
import { parseDurationNs } from '../../crds/duration.js';
import type { ConnectionPoolSettings, LoadBalancerSettings, OutlierDetection } from '../../crds/types.js';
import { CircuitBreakersSchema } from '../envoy/gen/envoy/config/cluster/v3/circuit_breaker_pb.js';
import { Cluster_LbPolicy, type Cluster, type ClusterSchema } from '../envoy/gen/envoy/config/cluster/v3/cluster_pb.js';
import { HttpProtocolOptionsSchema } from '../envoy/gen/envoy/extensions/upstreams/http/v3/http_protocol_options_pb.js';
import type { ProxyType } from '../xds/node.js';

/** Some fields of a Cluster, as `create(ClusterSchema, …)` takes them (spread several into one). */
export type ClusterInit = Exclude<MessageInitShape<typeof ClusterSchema>, Cluster>;

/** Istio's circuit breaker default: no limit (Envoy's own 1024/1024/1024/3 overflow under load). */
export const UNLIMITED = 4294967295;

/** The key Envoy looks up HTTP upstream options under in `typed_extension_protocol_options`. */
export const HTTP_PROTOCOL_OPTIONS_KEY = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

// Messages here may be shared between clusters (and proxies): they are never mutated after creation.
// Sharing is what keeps a full CDS build cheap: allocating and encoding messages dominates it.
const durations = new Map<string, Duration>();

/** A validated CRD duration (`1.5s`, `100ms`) as a protobuf Duration (shared: do not mutate). */
export function protoDuration(value: string): Duration {
  let duration = durations.get(value);
  if (!duration) {
    const ns = parseDurationNs(value) ?? 0n;
    duration = create(DurationSchema, { seconds: ns / 1_000_000_000n, nanos: Number(ns % 1_000_000_000n) });
    // Durations come from a few rules; the bound only guards against a pathological mesh.
    if (durations.size >= 4096) durations.clear();
    durations.set(value, duration);
  }
  return duration;
}

/** Whole seconds of a duration, at least 1: Envoy's keepalive options count seconds, and 0 is refused by the kernel. */
function keepaliveSeconds(value: string): number {
  const ns = parseDurationNs(value) ?? 0n;
  return Math.max(1, Number(ns / 1_000_000_000n));
}

// ---------------------------------------------------------------------------------------------------
// Load balancer

/**
 * Envoy: Istio's mapping, LEAST_REQUEST by default. Proxyless gRPC accepts only ROUND_ROBIN and RING_HASH
 * (grpc-js NACKs any other `lb_policy`), so every simple policy becomes ROUND_ROBIN and MAGLEV becomes
 * RING_HASH there. The hash key itself is the route's `hash_policy` (routes.ts).
 */
export function loadBalancerFields(lb: LoadBalancerSettings | undefined, proxyType: ProxyType): ClusterInit {
  const hash = lb?.consistentHash;
  if (hash) {
    if (hash.maglev && proxyType === 'envoy') {
      return {
        lbPolicy: Cluster_LbPolicy.MAGLEV,
        lbConfig: { case: 'maglevLbConfig', value: { tableSize: BigInt(hash.maglev.tableSize ?? 65537) } },
      };
    }
    // Istio's default ring: 1024 entries (also grpc-js's).
    const minimumRingSize = BigInt(hash.ringHash?.minimumRingSize || 1024);
    return { lbPolicy: Cluster_LbPolicy.RING_HASH, lbConfig: { case: 'ringHashLbConfig', value: { minimumRingSize } } };
  }
  if (proxyType === 'grpc') return { lbPolicy: Cluster_LbPolicy.ROUND_ROBIN };
  const simple = lb?.simple;
  if (simple === 'ROUND_ROBIN') {
    const slowStartConfig = slowStart(lb);
    return {
      lbPolicy: Cluster_LbPolicy.ROUND_ROBIN,
      ...(slowStartConfig ? { lbConfig: { case: 'roundRobinLbConfig', value: { slowStartConfig } } } : {}),
    };
  }
  if (simple === 'RANDOM') return { lbPolicy: Cluster_LbPolicy.RANDOM };
  // PASSTHROUGH is handled by the caller (ORIGINAL_DST); UNSPECIFIED, LEAST_CONN and LEAST_REQUEST land here.
  const slowStartConfig = slowStart(lb);
  return {
    lbPolicy: Cluster_LbPolicy.LEAST_REQUEST,
    ...(slowStartConfig ? { lbConfig: { case: 'leastRequestLbConfig', value: { slowStartConfig } } } : {}),
  };
}

function slowStart(lb: LoadBalancerSettings | undefined) {
  const warmup = lb?.warmup;
  if (!warmup) return undefined;
  return {
    slowStartWindow: protoDuration(warmup.duration),
    // Istio's defaults: linear ramp (aggression 1), starting at 10% of the traffic.
    aggression: { defaultValue: warmup.aggression ?? 1 },
    minWeightPercent: { value: warmup.minimumPercent ?? 10 },
  };
}

// ---------------------------------------------------------------------------------------------------
// Connection pool

/**
 * Thresholds are always sent: Istio replaces Envoy's defaults (1024 connections/requests, 3 retries,
 * which overflow with 503 UO during rollouts) with no limit. A zero in the rule means unset.
 * grpc-js reads only `max_requests`; the rest is harmless to it.
 */
export function circuitBreakerFields(pool: ConnectionPoolSettings | undefined): ClusterInit {
  const limited =
    pool?.tcp?.maxConnections ||
    pool?.http?.http1MaxPendingRequests ||
    pool?.http?.http2MaxRequests ||
    pool?.http?.maxRetries;
  if (!limited) return { circuitBreakers: UNLIMITED_CIRCUIT_BREAKERS };
  return {
    circuitBreakers: {
      thresholds: [
        {
          maxConnections: pool?.tcp?.maxConnections || UNLIMITED,
          maxPendingRequests: pool?.http?.http1MaxPendingRequests || UNLIMITED,
          maxRequests: pool?.http?.http2MaxRequests || UNLIMITED,
          maxRetries: pool?.http?.maxRetries || UNLIMITED,
          trackRemaining: false,
        },
      ],
    },
  };
}

const UNLIMITED_CIRCUIT_BREAKERS = create(CircuitBreakersSchema, {
  thresholds: [
    {
      maxConnections: UNLIMITED,
      maxPendingRequests: UNLIMITED,
      maxRequests: UNLIMITED,
      maxRetries: UNLIMITED,
      trackRemaining: false,
    },
  ],
});

export function connectTimeoutField(pool: ConnectionPoolSettings | undefined, meshDefault: string): ClusterInit {
  return { connectTimeout: protoDuration(pool?.tcp?.connectTimeout ?? meshDefault) };
}

/** Envoy only: grpc-js has no per-cluster socket options. */
export function tcpKeepaliveFields(pool: ConnectionPoolSettings | undefined): ClusterInit {
  const keepalive = pool?.tcp?.tcpKeepalive;
  if (!keepalive) return {};
  return {
    upstreamConnectionOptions: {
      tcpKeepalive: {
        ...(keepalive.probes ? { keepaliveProbes: keepalive.probes } : {}),
        ...(keepalive.time ? { keepaliveTime: keepaliveSeconds(keepalive.time) } : {}),
        ...(keepalive.interval ? { keepaliveInterval: keepaliveSeconds(keepalive.interval) } : {}),
      },
    },
  };
}

// Packed options by the settings they encode (bounded; shared across builds).
const httpOptions = new Map<string, Any>();

/**
 * The upstream protocol of an outbound HTTP cluster, as Istio chooses it: `useClientProtocol` keeps the
 * client's (Envoy's `use_downstream_protocol_config`, and h2UpgradePolicy is then ignored); an HTTP/1 port
 * with `h2UpgradePolicy: UPGRADE` is spoken to in HTTP/2; DEFAULT is the mesh's, which is Istio's default
 * DO_NOT_UPGRADE. Envoy only (proxyless gRPC always speaks HTTP/2).
 */
export type UpstreamProtocol = 'http1' | 'http2' | 'downstream';

export function upstreamProtocol(
  pool: ConnectionPoolSettings | undefined,
  http: boolean,
  http2: boolean,
  outbound: boolean,
): UpstreamProtocol {
  if (!http) return 'http1';
  if (outbound && pool?.http?.useClientProtocol === true) return 'downstream';
  if (http2 || (outbound && pool?.http?.h2UpgradePolicy === 'UPGRADE')) return 'http2';
  return 'http1';
}

/**
 * Envoy only, HTTP ports only: the upstream protocol (HTTP/2 for http2/grpc ports, which Envoy would
 * otherwise speak HTTP/1.1 to; see `upstreamProtocol` for outbound clusters) and the per-connection limits,
 * in the `HttpProtocolOptions` extension (the cluster-level `http2_protocol_options` is deprecated).
 * `upstream_protocol_options` is mandatory there, so an HTTP/1 port states HTTP/1 explicitly when it
 * needs the message at all. `tcp.idleTimeout` is the idle timeout when `http.idleTimeout` is unset, as in
 * Istio. `http2KeepAlive` becomes the HTTP/2 options' `connection_keepalive` (HTTP/2 only, as in Istio).
 */
export function httpProtocolOptionsFields(
  pool: ConnectionPoolSettings | undefined,
  http: boolean,
  http2: boolean,
  outbound = false,
): ClusterInit {
  if (!http) return {};
  const protocol = upstreamProtocol(pool, http, http2, outbound);
  const idle = pool?.http?.idleTimeout ?? pool?.tcp?.idleTimeout;
  const common = {
    ...(pool?.http?.maxRequestsPerConnection ? { maxRequestsPerConnection: pool.http.maxRequestsPerConnection } : {}),
    ...(idle !== undefined ? { idleTimeout: protoDuration(idle) } : {}),
    ...(pool?.tcp?.maxConnectionDuration
      ? { maxConnectionDuration: protoDuration(pool.tcp.maxConnectionDuration) }
      : {}),
  };
  const hasCommon = Object.keys(common).length > 0;
  if (protocol === 'http1' && !hasCommon) return {};
  const streams = pool?.http?.maxConcurrentStreams;
  const keepalive = pool?.http?.http2KeepAlive;
  const key = JSON.stringify([
    protocol,
    streams,
    pool?.http?.maxRequestsPerConnection,
    idle,
    pool?.tcp?.maxConnectionDuration,
    keepalive?.interval,
    keepalive?.timeout,
  ]);
  let packed = httpOptions.get(key);
  if (!packed) {
    const h2 = {
      ...(streams ? { maxConcurrentStreams: streams } : {}),
      ...(keepalive
        ? {
            connectionKeepalive: {
              interval: protoDuration(keepalive.interval),
              timeout: protoDuration(keepalive.timeout),
            },
          }
        : {}),
    };
    const options = create(HttpProtocolOptionsSchema, {
      ...(hasCommon ? { commonHttpProtocolOptions: common } : {}),
      upstreamProtocolOptions:
        protocol === 'downstream'
          ? { case: 'useDownstreamProtocolConfig', value: { httpProtocolOptions: {}, http2ProtocolOptions: h2 } }
          : {
              case: 'explicitHttpConfig',
              value: {
                protocolConfig:
                  protocol === 'http2'
                    ? { case: 'http2ProtocolOptions', value: h2 }
                    : { case: 'httpProtocolOptions', value: {} },
              },
            },
    });
    packed = anyPack(HttpProtocolOptionsSchema, options);
    if (httpOptions.size >= 4096) httpOptions.clear();
    httpOptions.set(key, packed);
  }
  return { typedExtensionProtocolOptions: { [HTTP_PROTOCOL_OPTIONS_KEY]: packed } };
}

// ---------------------------------------------------------------------------------------------------
// Outlier detection

/** Envoy's default of `consecutive_5xx` when the rule has an outlierDetection block without it. */
const ENVOY_DEFAULT_CONSECUTIVE_5XX = 5;

/**
 * Emitted only when the rule has the block. Success-rate ejection is always off (Istio; grpc-js turns it
 * on unless `enforcing_success_rate` is 0). A count of 0 disables that detector (enforcing 0).
 *
 * Envoy: Istio's mapping, and `common_lb_config.healthy_panic_threshold` = minHealthPercent (see
 * commonLbConfigFields). With `splitExternalLocalOriginErrors`, local-origin failures (connect errors,
 * timeouts, resets) are counted apart: `consecutiveLocalOriginFailures` (> 0) is enforced at 100%, and
 * local-origin success-rate ejection is off (Istio's applyOutlierDetection).
 *
 * Proxyless gRPC implements only success-rate and failure-percentage ejection (gRFC A50): the
 * consecutive-error counts are ignored there. So a count N becomes failure-percentage ejection: a host
 * that answered at least N calls in an interval and failed ≥ 85% of them (Envoy's and gRPC's default
 * threshold) is ejected, whatever the number of hosts (minimum_hosts 1, where gRPC's default of 5
 * would leave small services unprotected). grpc-js has no panic threshold and does not tell local-origin
 * failures apart (gRFC A50): neither is sent.
 */
export function outlierDetectionFields(od: OutlierDetection | undefined, proxyType: ProxyType): ClusterInit {
  if (!od) return {};
  const common = {
    enforcingSuccessRate: 0,
    ...(od.interval ? { interval: protoDuration(od.interval) } : {}),
    ...(od.baseEjectionTime ? { baseEjectionTime: protoDuration(od.baseEjectionTime) } : {}),
    ...(od.maxEjectionPercent ? { maxEjectionPercent: od.maxEjectionPercent } : {}),
  };
  if (proxyType === 'grpc') {
    const counts = [od.consecutive5xxErrors ?? ENVOY_DEFAULT_CONSECUTIVE_5XX, od.consecutiveGatewayErrors ?? 0].filter(
      (n) => n > 0,
    );
    if (counts.length === 0) return { outlierDetection: common };
    return {
      outlierDetection: {
        ...common,
        enforcingFailurePercentage: 100,
        failurePercentageThreshold: 85,
        failurePercentageMinimumHosts: 1,
        failurePercentageRequestVolume: Math.min(...counts),
      },
    };
  }
  const c5xx = od.consecutive5xxErrors;
  const gateway = od.consecutiveGatewayErrors;
  return {
    outlierDetection: {
      ...common,
      ...(c5xx !== undefined ? { consecutive5xx: c5xx, enforcingConsecutive5xx: c5xx > 0 ? 100 : 0 } : {}),
      ...(gateway !== undefined
        ? { consecutiveGatewayFailure: gateway, enforcingConsecutiveGatewayFailure: gateway > 0 ? 100 : 0 }
        : {}),
      ...(od.splitExternalLocalOriginErrors
        ? {
            splitExternalLocalOriginErrors: true,
            ...(od.consecutiveLocalOriginFailures
              ? {
                  consecutiveLocalOriginFailure: od.consecutiveLocalOriginFailures,
                  enforcingConsecutiveLocalOriginFailure: 100,
                }
              : {}),
            enforcingLocalOriginSuccessRate: 0,
          }
        : {}),
    },
  };
}

/**
 * Envoy only: `common_lb_config`. With outlier detection, `healthy_panic_threshold` = minHealthPercent,
 * written even when unset, so that 0 disables Envoy's panic mode (default 50%), as Istio does. With
 * locality load balancing acting on the cluster (a distribute, or failover: locality.ts
 * `localityWeighted`), `locality_weighted_lb_config`, so that Envoy honours the localities' weights (Istio).
 */
export function commonLbConfigFields(
  od: OutlierDetection | undefined,
  localityWeighted: boolean,
  proxyType: ProxyType,
): ClusterInit {
  if (proxyType !== 'envoy' || (!od && !localityWeighted)) return {};
  return {
    commonLbConfig: {
      ...(od ? { healthyPanicThreshold: { value: od.minHealthPercent ?? 0 } } : {}),
      ...(localityWeighted ? { localityConfigSpecifier: { case: 'localityWeightedLbConfig', value: {} } } : {}),
    },
  };
}
