// VirtualService `match` entries → Envoy RouteMatch (envoy-translation.md §2.3, Istio `TranslateRouteMatch`).
// `port`, `sourceLabels` and `sourceNamespace` are not Envoy matchers: they are decided here, at
// generation time, against the proxy and the route configuration's port; a match that does not apply is
// left out (and an `http[]` entry whose matches all fail contributes no route).
import type { HTTPMatchRequest, StringMatch } from '../../crds/types.js';
import type {
  HeaderMatcherSchema,
  QueryParameterMatcherSchema,
  RouteMatchSchema,
} from '../envoy/gen/envoy/config/route/v3/route_components_pb.js';
import type { ProxyInfo } from '../xds/node.js';
import { stringMatcher, type InitOf } from './route-values.js';

export type RouteMatchInit = InitOf<typeof RouteMatchSchema>;
type HeaderMatcherInit = InitOf<typeof HeaderMatcherSchema>;
type QueryParameterMatcherInit = InitOf<typeof QueryParameterMatcherSchema>;

/**
 * The path prefix that matches every request. gRPC paths always start with `/`, and gRPC's own examples
 * (and Istio's proxyless config) use the empty prefix; Envoy sidecars get Istio's `/`.
 */
export function catchAllPrefix(proxyless: boolean): string {
  return proxyless ? '' : '/';
}

/** True when the match is decided in favour of this proxy and port (Istio evaluates these at generation). */
export function matchApplies(match: HTTPMatchRequest, proxy: ProxyInfo, port: number): boolean {
  if (match.port !== undefined && match.port !== port) return false;
  if (match.sourceNamespace !== undefined && match.sourceNamespace !== proxy.namespace) return false;
  for (const [key, value] of Object.entries(match.sourceLabels ?? {})) {
    if (proxy.labels[key] !== value) return false;
  }
  return true;
}

function byName<T extends { name?: string }>(a: T, b: T): number {
  const x = a.name ?? '';
  const y = b.name ?? '';
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * One header matcher. `{}` means "present" (the CRD, as Istio), and so does an empty prefix or regex,
 * which Envoy's StringMatcher would refuse (PGV min_len 1). `withoutHeaders` inverts. An inverted value
 * match also treats a missing header as empty, so "without x: exact a" holds when x is absent; an inverted
 * presence match must not (Envoy would then count the missing header as present and never match).
 */
function headerMatcher(name: string, m: StringMatch, invert: boolean): HeaderMatcherInit {
  const matcher = stringMatcher(m);
  if (matcher === undefined) {
    return {
      name,
      headerMatchSpecifier: { case: 'presentMatch', value: true },
      ...(invert ? { invertMatch: true } : {}),
    };
  }
  const base: HeaderMatcherInit = invert ? { name, invertMatch: true, treatMissingHeaderAsEmpty: true } : { name };
  return { ...base, headerMatchSpecifier: { case: 'stringMatch', value: matcher } };
}

function headerMatchers(match: HTTPMatchRequest): HeaderMatcherInit[] {
  const out: HeaderMatcherInit[] = [];
  for (const [name, m] of Object.entries(match.headers ?? {})) out.push(headerMatcher(name, m, false));
  // method, authority and scheme are pseudo-headers to Envoy (and to gRPC's header matching).
  if (match.method) out.push(headerMatcher(':method', match.method, false));
  if (match.authority) out.push(headerMatcher(':authority', match.authority, false));
  if (match.scheme) out.push(headerMatcher(':scheme', match.scheme, false));
  for (const [name, m] of Object.entries(match.withoutHeaders ?? {})) out.push(headerMatcher(name, m, true));
  return out.sort(byName);
}

function queryMatchers(match: HTTPMatchRequest): QueryParameterMatcherInit[] {
  const out: QueryParameterMatcherInit[] = [];
  for (const [name, m] of Object.entries(match.queryParams ?? {})) {
    const matcher = stringMatcher(m);
    out.push(
      matcher === undefined
        ? { name, queryParameterMatchSpecifier: { case: 'presentMatch', value: true } }
        : { name, queryParameterMatchSpecifier: { case: 'stringMatch', value: matcher } },
    );
  }
  return out.sort(byName);
}

function pathSpecifier(uri: StringMatch | undefined, proxyless: boolean): RouteMatchInit['pathSpecifier'] {
  if (uri?.exact !== undefined) return { case: 'path', value: uri.exact };
  if (uri?.prefix !== undefined)
    return { case: 'prefix', value: uri.prefix === '/' ? catchAllPrefix(proxyless) : uri.prefix };
  if (uri?.regex !== undefined && uri.regex !== '') return { case: 'safeRegex', value: { regex: uri.regex } };
  return { case: 'prefix', value: catchAllPrefix(proxyless) };
}

/** The Envoy RouteMatch of one VirtualService match entry (undefined: no match at all, every request). */
export function translateMatch(match: HTTPMatchRequest | undefined, proxyless: boolean): RouteMatchInit {
  if (match === undefined)
    return { pathSpecifier: { case: 'prefix', value: catchAllPrefix(proxyless) }, caseSensitive: true };
  return {
    pathSpecifier: pathSpecifier(match.uri, proxyless),
    // Istio always writes case_sensitive; false only with ignoreUriCase (gRPC applies it to the path only).
    caseSensitive: match.ignoreUriCase !== true,
    headers: headerMatchers(match),
    queryParameters: queryMatchers(match),
  };
}

/**
 * True when a translated match takes every request: prefix `/` (or ``) or regex `.*` with no header or
 * query matchers. Routes after it can never match, so they are dropped (envoy-translation.md §2.8).
 */
export function isCatchAllMatch(match: RouteMatchInit): boolean {
  if ((match.headers?.length ?? 0) > 0 || (match.queryParameters?.length ?? 0) > 0) return false;
  const spec = match.pathSpecifier;
  if (spec?.case === 'prefix') return spec.value === '/' || spec.value === '';
  if (spec?.case === 'safeRegex') return spec.value.regex === '.*';
  return false;
}
