// The routes of one virtual host (one Service port): a VirtualService's `http[]` in order, each `match[]`
// entry its own Envoy route sharing the action (envoy-translation.md §2.3, §2.8), or Istio's default route
// when no VirtualService routes the Service.
import type { HTTPMatchRequest, HTTPRoute } from '../../crds/types.js';
import type { RouteSchema } from '../envoy/gen/envoy/config/route/v3/route_components_pb.js';
import type { AcceptedVirtualService } from '../model/snapshot.js';
import type { TranslateContext } from './context.js';
import {
  defaultForwardAction,
  directResponseAction,
  forwardAction,
  redirectAction,
  type ActionOptions,
} from './route-action.js';
import { perFilterConfig } from './route-filter-config.js';
import { catchAllPrefix, isCatchAllMatch, matchApplies, translateMatch, type RouteMatchInit } from './route-match.js';
import { headersToAdd, headersToRemove, type InitOf } from './route-values.js';

export type RouteInit = InitOf<typeof RouteSchema>;

export interface RouteOptions {
  readonly port: number;
  readonly proxyless: boolean;
  readonly notes: string[];
}

/** Istio's route name: `<http.name>.<match.name>` when the match is named, else the route's name. */
function routeName(http: HTTPRoute, match: HTTPMatchRequest | undefined): string {
  const name = http.name ?? '';
  if (match?.name) return name === '' ? match.name : `${name}.${match.name}`;
  return name;
}

/** The matches of an `http[]` entry that apply to this proxy and port; [undefined] for "no match". */
function applicableMatches(http: HTTPRoute, ctx: TranslateContext, port: number): (HTTPMatchRequest | undefined)[] {
  if (!http.match || http.match.length === 0) return [undefined];
  return http.match.filter((m) => matchApplies(m, ctx.proxy, port));
}

/** Everything a route has besides match and action: header operations and per-filter configs. */
function routeExtras(http: HTTPRoute, options: RouteOptions): Partial<RouteInit> {
  // A single destination's header operations are route-level (Istio), several go on each ClusterWeight.
  const single = http.route?.length === 1 ? http.route[0]!.headers : undefined;
  return {
    requestHeadersToAdd: [...headersToAdd(http.headers?.request), ...headersToAdd(single?.request)],
    requestHeadersToRemove: [
      ...new Set([...headersToRemove(http.headers?.request), ...headersToRemove(single?.request)]),
    ].sort(),
    responseHeadersToAdd: [...headersToAdd(http.headers?.response), ...headersToAdd(single?.response)],
    responseHeadersToRemove: [
      ...new Set([...headersToRemove(http.headers?.response), ...headersToRemove(single?.response)]),
    ].sort(),
    typedPerFilterConfig: perFilterConfig(http.fault, http.corsPolicy, { proxyless: options.proxyless }),
  };
}

/**
 * The action of an `http[]` entry, or undefined when the proxy cannot take it. Istio's order: a redirect,
 * else a direct response, else forwarding (a merged delegate route may carry more than one).
 */
function httpAction(ctx: TranslateContext, http: HTTPRoute, options: ActionOptions): RouteInit['action'] | undefined {
  if (http.redirect || http.directResponse) {
    // grpc-js accepts only `route` actions on clients (any other action would NACK the whole route table).
    if (options.proxyless) {
      const what = http.redirect ? 'redirect' : 'directResponse';
      options.notes.push(`${options.where}: ${what} is not supported by proxyless gRPC; route left out`);
      return undefined;
    }
    if (http.redirect) return { case: 'redirect', value: redirectAction(http.redirect, options.port) };
    if (http.directResponse) return { case: 'directResponse', value: directResponseAction(http.directResponse) };
  }
  const action = forwardAction(ctx, http, options);
  return action ? { case: 'route', value: action } : undefined;
}

/**
 * The routes of a VirtualService for one port, in `http[]` then `match[]` order. Routes after the first
 * one that matches every request are dropped (they could never match; Envoy is first-match).
 */
export function virtualServiceRoutes(
  ctx: TranslateContext,
  vs: AcceptedVirtualService,
  options: RouteOptions,
): RouteInit[] {
  const routes: RouteInit[] = [];
  const http = vs.spec.http ?? [];
  for (let i = 0; i < http.length; i++) {
    const entry = http[i]!;
    const matches = applicableMatches(entry, ctx, options.port);
    if (matches.length === 0) continue;
    const where = `VirtualService ${vs.namespace}/${vs.name} http[${i}]`;
    const action = httpAction(ctx, entry, { ...options, where });
    if (!action) continue;
    const extras = routeExtras(entry, options);
    for (const m of matches) {
      const match: RouteMatchInit = translateMatch(m, options.proxyless);
      const name = routeName(entry, m);
      routes.push({ ...(name !== '' ? { name } : {}), match, action, ...extras });
      if (isCatchAllMatch(match)) return routes;
    }
  }
  return routes;
}

/** Istio's `BuildDefaultHTTPOutboundRoute`: everything to the Service's cluster, default retries, no timeout. */
export function defaultRoute(ctx: TranslateContext, fqdn: string, options: RouteOptions): RouteInit {
  return {
    name: 'default',
    match: { pathSpecifier: { case: 'prefix', value: catchAllPrefix(options.proxyless) }, caseSensitive: true },
    action: { case: 'route', value: defaultForwardAction(ctx, fqdn, options.port, options.proxyless) },
  };
}
