// What every translator module reads: the mesh snapshot, the proxy it generates for, and the mesh-wide
// settings. Translation is pure (design.md §1): the same context gives byte-identical resources.
//
// One module per Envoy resource type (style-anchors.md):
//   clusters.ts   buildClusters(ctx): Cluster[]                          (CDS)
//   endpoints.ts  buildLoadAssignments(ctx, clusters): ClusterLoadAssignment[]  (EDS)
//   routes.ts     buildRouteConfigurations(ctx): RouteConfiguration[]   (RDS)
//   listeners.ts  buildListeners(ctx): Listener[]                        (LDS)
//   generator.ts  meshGenerator: Generator<MeshSnapshot>, composing them per proxy type.
// Names follow design.md §3 (`cluster-names.ts`).
import type { MeshSnapshot } from '../model/snapshot.js';
import type { ProxyInfo } from '../xds/node.js';

/**
 * The mesh-wide default of inbound mutual TLS: what a workload gets when no PeerAuthentication decides (the
 * last level of model/peer-authentication.ts, which the translator asks with this as the fallback).
 */
export type MtlsMode = 'PERMISSIVE' | 'STRICT';

/** Where Envoy sends spans: OpenTelemetry over OTLP/gRPC (Jaeger :4317), or Zipkin JSON over HTTP (:9411). */
export type TracingProvider = 'opentelemetry' | 'zipkin';

/** A tag Envoy adds to every span (Istio's Telemetry `customTags`): a literal, an env variable, a request header. */
export type CustomTag =
  | { readonly literal: { readonly value: string } }
  | { readonly environment: { readonly name: string; readonly defaultValue?: string } }
  | { readonly header: { readonly name: string; readonly defaultValue?: string } };

export interface TracingConfig {
  /** `opentelemetry` (default) or `zipkin`. */
  readonly provider?: TracingProvider;
  /** Percentage of requests traced, 0..100; Istio's default is 1. */
  readonly samplingPercent: number;
  /** The collector as `host:port` (OTLP/gRPC, or Zipkin's HTTP port); tracing is off when unset. */
  readonly collector?: string;
  /** Tags on every span, by tag name. */
  readonly customTags?: Readonly<Record<string, CustomTag>>;
}

/** Mesh-wide settings (`--mesh-config FILE`, YAML); every field has the default noted. */
export interface MeshConfig {
  /** `cluster.local`. */
  readonly trustDomain: string;
  /** `PERMISSIVE`; PeerAuthentications override it (mesh, namespace, workload). */
  readonly mtlsMode: MtlsMode;
  /** Outbound `connect_timeout` when no DestinationRule sets one: `10s`. */
  readonly connectTimeout: string;
  /** `ALLOW_ANY`: traffic to unknown destinations passes through; `REGISTRY_ONLY`: it gets 502. */
  readonly outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  readonly tracing: TracingConfig;
  /** Envoy access logs to stdout: off. */
  readonly accessLog: boolean;
  /**
   * `explicit` (default): a proxy's config holds every visible Service unless a Sidecar narrows it;
   * `automatic`: also narrowed to the Services whose servers' ALLOW AuthorizationPolicies name the proxy
   * (model/sidecar-scope.ts, README "Sidecar").
   */
  readonly scoping?: 'explicit' | 'automatic';
}

export const defaultMeshConfig: MeshConfig = {
  trustDomain: 'cluster.local',
  mtlsMode: 'PERMISSIVE',
  connectTimeout: '10s',
  outboundTrafficPolicy: 'ALLOW_ANY',
  tracing: { samplingPercent: 1 },
  accessLog: false,
};

export interface TranslateContext {
  readonly snapshot: MeshSnapshot;
  readonly proxy: ProxyInfo;
  readonly mesh: MeshConfig;
}

/** The SPIFFE identity of a service account (design.md §3). */
export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}
