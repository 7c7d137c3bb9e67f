// The action of a VirtualService HTTP route (envoy-translation.md §2.4–§2.7): forward to one cluster or a
// weighted split, with timeout, retries, mirroring, rewrites and the DestinationRule's hash policy; or a
// redirect or a direct response (Envoy sidecars only).
import type { HTTPDirectResponse, HTTPRedirect, HTTPRoute, HTTPRouteDestination } from '../../crds/types.js';
import {
  RedirectAction_RedirectResponseCode,
  type DirectResponseActionSchema,
  type RedirectActionSchema,
  type RouteActionSchema,
  type WeightedCluster_ClusterWeightSchema,
} from '../envoy/gen/envoy/config/route/v3/route_components_pb.js';
import type { TranslateContext } from './context.js';
import { destinationCluster, hashPolicies, type HashPolicyInit } from './route-destination.js';
import { retryPolicy } from './route-retry.js';
import {
  authorityOf,
  duration,
  headersToAdd,
  headersToRemove,
  HUNDRED_PERCENT,
  isPositive,
  millionths,
  ZERO_DURATION,
  type InitOf,
} from './route-values.js';
import { splitWeights } from './route-weights.js';

export type RouteActionInit = InitOf<typeof RouteActionSchema>;
export type RedirectActionInit = InitOf<typeof RedirectActionSchema>;
export type DirectResponseActionInit = InitOf<typeof DirectResponseActionSchema>;
type ClusterWeightInit = InitOf<typeof WeightedCluster_ClusterWeightSchema>;

export interface ActionOptions {
  /** The route configuration's port (destinations without a port and a multi-port Service use it). */
  readonly port: number;
  readonly proxyless: boolean;
  /** Where the reasons for leaving something out go. */
  readonly notes: string[];
  /** `<namespace>/<name> http[i]`, for notes. */
  readonly where: string;
}

/**
 * Timeout: unset (or 0s) → `timeout: 0s`, disabled, where Envoy's default would be 15 s (Istio). Set → the
 * route timeout, plus `max_stream_duration` with the same value for both the stream and a client's
 * grpc-timeout header: that is what bounds gRPC calls (grpc-js reads only max_stream_duration, A31) and
 * streaming calls through Envoy.
 */
export function timeouts(value: string | undefined): Pick<RouteActionInit, 'timeout' | 'maxStreamDuration'> {
  const d = duration(value);
  if (!isPositive(d)) return { timeout: ZERO_DURATION };
  return { timeout: d, maxStreamDuration: { maxStreamDuration: d, grpcTimeoutHeaderMax: d } };
}

/** Hash policies of every destination, first occurrence kept (Istio appends them per destination). */
function uniqueHashPolicies(
  ctx: TranslateContext,
  destinations: readonly HTTPRouteDestination[],
  port: number,
): HashPolicyInit[] {
  const seen = new Set<string>();
  const out: HashPolicyInit[] = [];
  for (const d of destinations) {
    for (const h of hashPolicies(ctx, d.destination, port)) {
      const key = JSON.stringify(h, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(h);
    }
  }
  return out;
}

function clusterWeight(ctx: TranslateContext, d: HTTPRouteDestination, port: number): ClusterWeightInit {
  const authority = authorityOf(d.headers?.request);
  return {
    name: destinationCluster(ctx, d.destination, port),
    weight: d.weight ?? 0,
    requestHeadersToAdd: headersToAdd(d.headers?.request),
    requestHeadersToRemove: headersToRemove(d.headers?.request),
    responseHeadersToAdd: headersToAdd(d.headers?.response),
    responseHeadersToRemove: headersToRemove(d.headers?.response),
    ...(authority !== undefined ? { hostRewriteSpecifier: { case: 'hostRewriteLiteral', value: authority } } : {}),
  };
}

/**
 * `route.cluster` for one destination; `weighted_clusters` for several, zero weights dropped, relative
 * weights as written (scaled only past 2^32-1, route-weights.ts) and no `total_weight` (deprecated; older
 * Envoy demanded a sum of 100). Undefined when every weight is zero:
 * Envoy and grpc-js both reject an empty or zero-sum split.
 */
function clusterSpecifier(
  ctx: TranslateContext,
  destinations: readonly HTTPRouteDestination[],
  port: number,
): RouteActionInit['clusterSpecifier'] | undefined {
  if (destinations.length === 1)
    return { case: 'cluster', value: destinationCluster(ctx, destinations[0]!.destination, port) };
  const kept = destinations.filter((d) => (d.weight ?? 0) > 0);
  const weights = splitWeights(kept.map((d) => d.weight ?? 0));
  const clusters = kept.map((d, i) => ({ ...clusterWeight(ctx, d, port), weight: weights[i] }));
  if (clusters.length === 0) return undefined;
  return { case: 'weightedClusters', value: { clusters } };
}

/**
 * `mirror` (with `mirrorPercentage`) and each of `mirrors` (with its `percentage`), in that order (a delegate
 * route may inherit one and set the other). Istio: no percentage → all requests; an explicit 0 → no mirror.
 * grpc-js does not mirror, so proxyless gets none (a note says so).
 */
function mirrorPolicies(
  ctx: TranslateContext,
  http: HTTPRoute,
  options: ActionOptions,
): RouteActionInit['requestMirrorPolicies'] {
  const mirrors = [
    ...(http.mirror ? [{ destination: http.mirror, percentage: http.mirrorPercentage }] : []),
    ...(http.mirrors ?? []),
  ];
  if (mirrors.length === 0) return [];
  if (options.proxyless) {
    options.notes.push(`${options.where}: proxyless gRPC does not mirror; mirror and mirrors are ignored for it`);
    return [];
  }
  return mirrors
    .filter((m) => m.percentage === undefined || m.percentage.value > 0)
    .map((m) => ({
      cluster: destinationCluster(ctx, m.destination, options.port),
      runtimeFraction: { defaultValue: m.percentage === undefined ? HUNDRED_PERCENT : millionths(m.percentage.value) },
      traceSampled: false,
    }));
}

function rewrites(http: HTTPRoute, single: HTTPRouteDestination | undefined): Partial<RouteActionInit> {
  const out: Partial<RouteActionInit> = {};
  if (http.rewrite?.uri !== undefined) out.prefixRewrite = http.rewrite.uri;
  if (http.rewrite?.uriRegexRewrite) {
    out.regexRewrite = {
      pattern: { regex: http.rewrite.uriRegexRewrite.match },
      substitution: http.rewrite.uriRegexRewrite.rewrite,
    };
  }
  // The validator allows the authority to be rewritten in one place only; a single destination's own
  // `:authority`/`host` header is route-level too.
  const authority =
    http.rewrite?.authority ?? authorityOf(http.headers?.request) ?? authorityOf(single?.headers?.request);
  if (authority !== undefined) out.hostRewriteSpecifier = { case: 'hostRewriteLiteral', value: authority };
  return out;
}

/** The forwarding action of a VirtualService HTTP route, or undefined when it cannot forward anywhere. */
export function forwardAction(
  ctx: TranslateContext,
  http: HTTPRoute,
  options: ActionOptions,
): RouteActionInit | undefined {
  const destinations = http.route ?? [];
  const clusterSpec = destinations.length === 0 ? undefined : clusterSpecifier(ctx, destinations, options.port);
  if (!clusterSpec) {
    options.notes.push(`${options.where}: no destination with a weight above 0; route left out`);
    return undefined;
  }
  const hashPolicy = uniqueHashPolicies(ctx, destinations, options.port);
  const retry = retryPolicy(http.retries, { proxyless: options.proxyless, consistentHash: hashPolicy.length > 0 });
  if (http.retries && http.retries.attempts > 0 && !retry) {
    options.notes.push(
      `${options.where}: retryOn has no condition gRPC retries on; no retry policy for proxyless gRPC`,
    );
  }
  return {
    clusterSpecifier: clusterSpec,
    ...timeouts(http.timeout),
    ...(retry ? { retryPolicy: retry } : {}),
    requestMirrorPolicies: mirrorPolicies(ctx, http, options),
    hashPolicy,
    ...rewrites(http, destinations.length === 1 ? destinations[0] : undefined),
  };
}

/** The route of a Service without a VirtualService: its cluster, no timeout, default retries (Istio). */
export function defaultForwardAction(
  ctx: TranslateContext,
  fqdn: string,
  port: number,
  proxyless: boolean,
): RouteActionInit {
  const destination = { host: fqdn, port: { number: port } };
  const hashPolicy = hashPolicies(ctx, destination, port);
  const retry = retryPolicy(undefined, { proxyless, consistentHash: hashPolicy.length > 0 });
  return {
    clusterSpecifier: { case: 'cluster', value: destinationCluster(ctx, destination, port) },
    timeout: ZERO_DURATION,
    ...(retry ? { retryPolicy: retry } : {}),
    hashPolicy,
  };
}

const REDIRECT_CODES: Readonly<Record<number, RedirectAction_RedirectResponseCode>> = {
  301: RedirectAction_RedirectResponseCode.MOVED_PERMANENTLY,
  302: RedirectAction_RedirectResponseCode.FOUND,
  303: RedirectAction_RedirectResponseCode.SEE_OTHER,
  307: RedirectAction_RedirectResponseCode.TEMPORARY_REDIRECT,
  308: RedirectAction_RedirectResponseCode.PERMANENT_REDIRECT,
};

/**
 * A VirtualService redirect (default 301, as in Istio). `prefixRewrite` replaces the matched prefix.
 * `derivePort: FROM_REQUEST_PORT` writes the route configuration's port (Envoy cannot read the request's;
 * a route configuration serves one port, as in Istio); `FROM_PROTOCOL_DEFAULT` writes none, so Envoy uses
 * the scheme's default port.
 */
export function redirectAction(redirect: HTTPRedirect, port: number): RedirectActionInit {
  const portRedirect = redirect.port ?? (redirect.derivePort === 'FROM_REQUEST_PORT' ? port : undefined);
  return {
    ...(redirect.uri !== undefined ? { pathRewriteSpecifier: { case: 'pathRedirect', value: redirect.uri } } : {}),
    ...(redirect.prefixRewrite !== undefined
      ? { pathRewriteSpecifier: { case: 'prefixRewrite', value: redirect.prefixRewrite } }
      : {}),
    ...(redirect.authority !== undefined ? { hostRedirect: redirect.authority } : {}),
    ...(portRedirect !== undefined ? { portRedirect } : {}),
    ...(redirect.scheme !== undefined
      ? { schemeRewriteSpecifier: { case: 'schemeRedirect', value: redirect.scheme } }
      : {}),
    responseCode: REDIRECT_CODES[redirect.redirectCode ?? 301] ?? RedirectAction_RedirectResponseCode.MOVED_PERMANENTLY,
  };
}

/** A VirtualService direct response: the status, and the body inline (text or bytes) when there is one. */
export function directResponseAction(direct: HTTPDirectResponse): DirectResponseActionInit {
  const body = direct.body;
  return {
    status: direct.status,
    ...(body?.string !== undefined ? { body: { specifier: { case: 'inlineString', value: body.string } } } : {}),
    ...(body?.bytes !== undefined
      ? { body: { specifier: { case: 'inlineBytes', value: new Uint8Array(Buffer.from(body.bytes, 'base64')) } } }
      : {}),
  };
}
