// HTTP connection managers for every place Trellis puts one: sidecar outbound (RDS per port), sidecar
// inbound (inline route to the inbound cluster), proxyless gRPC API listeners (RDS) and proxyless gRPC
// server listeners (inline, non-forwarding). Field choices follow Istio (envoy-translation.md §3.4, §3.5).
import { create } from '@bufbuild/protobuf';
import { ApiVersion, type ConfigSourceSchema } from '../envoy/gen/envoy/config/core/v3/config_source_pb.js';
import type { AccessLogSchema } from '../envoy/gen/envoy/config/accesslog/v3/accesslog_pb.js';
import type { FilterSchema } from '../envoy/gen/envoy/config/listener/v3/listener_components_pb.js';
import { StdoutAccessLogSchema } from '../envoy/gen/envoy/extensions/access_loggers/stream/v3/stream_pb.js';
import { CorsSchema } from '../envoy/gen/envoy/extensions/filters/http/cors/v3/cors_pb.js';
import { HTTPFaultSchema } from '../envoy/gen/envoy/extensions/filters/http/fault/v3/fault_pb.js';
import { RouterSchema } from '../envoy/gen/envoy/extensions/filters/http/router/v3/router_pb.js';
import {
  HttpConnectionManager_CodecType,
  HttpConnectionManager_ForwardClientCertDetails,
  HttpConnectionManager_PathWithEscapedSlashesAction,
  HttpConnectionManagerSchema,
  type HttpConnectionManager,
  type HttpFilterSchema,
} from '../envoy/gen/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb.js';
import { packAny, type Message } from '../envoy/protos.js';
import { outboundRouteName } from './cluster-names.js';
import type { TranslateContext } from './context.js';
import type { WorkloadRbac } from './rbac.js';
import { auditAccessLog, rbacHttpFilters } from './rbac-filters.js';
import { grpcServerRouteConfig, sidecarInboundRouteConfig } from './route-inbound.js';
import { ZERO_DURATION, type InitOf } from './route-values.js';
import { hcmTracing } from './tracing.js';

export const HCM_FILTER = 'envoy.filters.network.http_connection_manager';
export const FAULT_FILTER = 'envoy.filters.http.fault';
export const CORS_FILTER = 'envoy.filters.http.cors';
export const ROUTER_FILTER = 'envoy.filters.http.router';
export const STDOUT_ACCESS_LOG = 'envoy.access_loggers.stdout';

type HttpFilterInit = InitOf<typeof HttpFilterSchema>;
type ConfigSourceInit = InitOf<typeof ConfigSourceSchema>;
export type AccessLogInit = InitOf<typeof AccessLogSchema>;
export type FilterInit = InitOf<typeof FilterSchema>;

function httpFilter(name: string, config: Message): HttpFilterInit {
  return { name, configType: { case: 'typedConfig', value: packAny(config) } };
}

/**
 * RDS over the ADS stream. `initial_fetch_timeout: 0s` (Istio): the listener waits for its routes rather
 * than serving with none after 15 s. grpc-js accepts only `ads{}`/`self{}` sources.
 */
export function adsConfigSource(proxyless: boolean): ConfigSourceInit {
  return {
    configSourceSpecifier: { case: 'ads', value: {} },
    resourceApiVersion: ApiVersion.V3,
    ...(proxyless ? {} : { initialFetchTimeout: ZERO_DURATION }),
  };
}

/**
 * Sidecar outbound filters, Istio's order (§3.5): fault → cors → router (last). The fault and CORS filters
 * are empty: they only exist so that the per-route `typed_per_filter_config` of a VirtualService's
 * fault and corsPolicy has a filter to configure.
 */
export function sidecarOutboundHttpFilters(): HttpFilterInit[] {
  return [
    httpFilter(FAULT_FILTER, create(HTTPFaultSchema)),
    httpFilter(CORS_FILTER, create(CorsSchema)),
    httpFilter(ROUTER_FILTER, create(RouterSchema)),
  ];
}

/** grpc-js client filters: fault (its only client filter besides the router), router last. No CORS: grpc-js NACKs unknown filters. */
export function grpcClientHttpFilters(): HttpFilterInit[] {
  return [httpFilter(FAULT_FILTER, create(HTTPFaultSchema)), httpFilter(ROUTER_FILTER, create(RouterSchema))];
}

/** Envoy access log to stdout in Envoy's default format, when the mesh turns access logs on. */
export function accessLogs(ctx: TranslateContext): AccessLogInit[] {
  if (!ctx.mesh.accessLog) return [];
  return [
    { name: STDOUT_ACCESS_LOG, configType: { case: 'typedConfig', value: packAny(create(StdoutAccessLogSchema)) } },
  ];
}

/** Fields every sidecar HCM shares (Istio's `buildHTTPConnectionManager`). */
function sidecarCommon(ctx: TranslateContext, statPrefix: string): InitOf<typeof HttpConnectionManagerSchema> {
  const tracing = hcmTracing(ctx.mesh.tracing, ctx.proxy);
  return {
    statPrefix,
    codecType: HttpConnectionManager_CodecType.AUTO,
    useRemoteAddress: false,
    normalizePath: true,
    mergeSlashes: false,
    pathWithEscapedSlashesAction: HttpConnectionManager_PathWithEscapedSlashesAction.KEEP_UNCHANGED,
    upgradeConfigs: [{ upgradeType: 'websocket' }],
    // Envoy's default 5 min stream idle timeout cuts long-lived gRPC streams; Istio disables it.
    streamIdleTimeout: ZERO_DURATION,
    accessLog: accessLogs(ctx),
    ...(tracing ? { tracing } : {}),
  };
}

/** Sidecar outbound HCM of a port: routes from RDS `"<port>"`. */
export function sidecarOutboundHcm(ctx: TranslateContext, port: number): HttpConnectionManager {
  return create(HttpConnectionManagerSchema, {
    ...sidecarCommon(ctx, `outbound_0.0.0.0_${port}`),
    routeSpecifier: {
      case: 'rds',
      value: { configSource: adsConfigSource(false), routeConfigName: outboundRouteName(port) },
    },
    httpFilters: sidecarOutboundHttpFilters(),
  });
}

/**
 * Sidecar inbound HCM of a target port. With mTLS the peer's identity is passed to the application in
 * `x-forwarded-client-cert` (Istio: APPEND_FORWARD with subject, URI and DNS SANs). The workload's
 * AuthorizationPolicies are RBAC filters before the router (rbac-filters.ts); an AUDIT policy adds the
 * audit access log when the mesh does not log every request already.
 */
export function sidecarInboundHcm(
  ctx: TranslateContext,
  targetPort: number,
  mtls: boolean,
  rbac: WorkloadRbac = {},
): HttpConnectionManager {
  const common = sidecarCommon(ctx, `inbound_0.0.0.0_${targetPort}`);
  return create(HttpConnectionManagerSchema, {
    ...common,
    ...(rbac.audit && !ctx.mesh.accessLog ? { accessLog: [auditAccessLog()] } : {}),
    routeSpecifier: { case: 'routeConfig', value: sidecarInboundRouteConfig(targetPort) },
    httpFilters: [...rbacHttpFilters(rbac, false), httpFilter(ROUTER_FILTER, create(RouterSchema))],
    ...(mtls
      ? {
          forwardClientCertDetails: HttpConnectionManager_ForwardClientCertDetails.APPEND_FORWARD,
          setCurrentClientCertDetails: { subject: true, uri: true, dns: true },
        }
      : {}),
  });
}

/**
 * Proxyless client HCM (the `api_listener` of `<host>:<port>`): RDS `"<port>"`, fault then router. One
 * message per port, shared by every API listener of the port.
 */
export function grpcApiListenerHcm(port: number): HttpConnectionManager {
  return create(HttpConnectionManagerSchema, {
    statPrefix: `outbound_0.0.0.0_${port}`,
    routeSpecifier: {
      case: 'rds',
      value: { configSource: adsConfigSource(true), routeConfigName: outboundRouteName(port) },
    },
    httpFilters: grpcClientHttpFilters(),
  });
}

/**
 * Proxyless server HCM (A36): inline non-forwarding route; the RBAC filters of the workload's
 * AuthorizationPolicies (DENY, ALLOW), then the router (grpc-js NACKs fault on servers).
 */
export function grpcServerHcm(targetPort: number, rbac: WorkloadRbac = {}): HttpConnectionManager {
  return create(HttpConnectionManagerSchema, {
    statPrefix: `inbound_0.0.0.0_${targetPort}`,
    routeSpecifier: { case: 'routeConfig', value: grpcServerRouteConfig(targetPort) },
    httpFilters: [...rbacHttpFilters(rbac, true), httpFilter(ROUTER_FILTER, create(RouterSchema))],
  });
}

/** The network filter that carries an HCM. */
export function hcmFilter(hcm: HttpConnectionManager): FilterInit {
  return { name: HCM_FILTER, configType: { case: 'typedConfig', value: packAny(hcm) } };
}
