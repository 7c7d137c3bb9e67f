// Evaluates Envoy RBAC configs (envoy.config.rbac.v3.RBAC, as translate/rbac.ts builds them and as a proxy
// received them) against one request, the way Envoy's RBAC filter and grpc-js's do: a policy matches when
// one of its permissions and one of its principals match; ALLOW allows when a policy matches, DENY denies
// when one matches, LOG allows and marks. Pure.
//
// A matcher that reads something the request does not say (no source IP given, a metadata matcher Trellis
// never emits) does not match, as in grpc-js; the attribute is reported in `unknown` so the answer can say
// what it assumed.
import type { HeaderMatcher } from '../envoy/gen/envoy/config/route/v3/route_components_pb.js';
import type { CidrRange } from '../envoy/gen/envoy/config/core/v3/address_pb.js';
import {
  RBAC_Action,
  type Permission,
  type Principal,
  type RBAC as RbacConfig,
} from '../envoy/gen/envoy/config/rbac/v3/rbac_pb.js';
import type { StringMatcher } from '../envoy/gen/envoy/type/matcher/v3/string_pb.js';
import net from 'node:net';

/** What the caller and the request look like to the proxy. */
export interface RbacRequest {
  /** The URI SAN of the peer certificate (`spiffe://…`); absent for a plaintext connection. */
  readonly principal?: string;
  /** The `:path` (a gRPC method: `/package.Service/Method`); absent for TCP. */
  readonly path?: string;
  /** The `:method`; gRPC calls are POST. */
  readonly method?: string;
  readonly authority?: string;
  /** Lower-case header names. */
  readonly headers?: Readonly<Record<string, string>>;
  readonly sourceIp?: string;
  readonly remoteIp?: string;
  readonly destinationIp?: string;
  readonly destinationPort: number;
  readonly sni?: string;
}

export interface RbacOutcome {
  /** The RBAC's action matched (ALLOW: allowed; DENY: denied; LOG: logged). */
  readonly matched: boolean;
  /** The first matching policy, by name (Envoy reports the first in name order). */
  readonly policy?: string;
}

class Evaluation {
  readonly unknown = new Set<string>();

  constructor(private readonly req: RbacRequest) {}

  string(m: StringMatcher | undefined, value: string | undefined, attribute: string): boolean {
    if (!m) return false;
    if (value === undefined) {
      this.unknown.add(attribute);
      return false;
    }
    const fold = (s: string) => (m.ignoreCase ? s.toLowerCase() : s);
    const v = fold(value);
    const p = m.matchPattern;
    switch (p.case) {
      case 'exact':
        return v === fold(p.value);
      case 'prefix':
        return v.startsWith(fold(p.value));
      case 'suffix':
        return v.endsWith(fold(p.value));
      case 'contains':
        return v.includes(fold(p.value));
      case 'safeRegex':
        return new RegExp(`^(?:${p.value.regex})$`).test(value);
      default:
        this.unknown.add(`${attribute} (matcher ${String(p.case)})`);
        return false;
    }
  }

  headerValue(name: string): string | undefined {
    switch (name) {
      case ':path':
        return this.req.path;
      case ':method':
        return this.req.method;
      case ':authority':
      case 'host':
        return this.req.authority;
      default:
        return this.req.headers?.[name.toLowerCase()];
    }
  }

  header(h: HeaderMatcher): boolean {
    const value = this.headerValue(h.name);
    let result: boolean;
    const spec = h.headerMatchSpecifier;
    switch (spec.case) {
      case 'presentMatch':
        result = (value !== undefined) === spec.value;
        break;
      case 'stringMatch':
        result = value !== undefined && this.string(spec.value, value, `header ${h.name}`);
        if (value === undefined && h.name.startsWith(':')) this.unknown.add(`header ${h.name}`);
        break;
      case 'exactMatch':
        result = value === spec.value;
        break;
      case 'prefixMatch':
        result = value !== undefined && value.startsWith(spec.value);
        break;
      case 'suffixMatch':
        result = value !== undefined && value.endsWith(spec.value);
        break;
      default:
        this.unknown.add(`header ${h.name} (matcher ${String(spec.case)})`);
        result = false;
    }
    return h.invertMatch ? !result : result;
  }

  cidr(range: CidrRange | undefined, ip: string | undefined, attribute: string): boolean {
    if (!range) return false;
    if (ip === undefined) {
      this.unknown.add(attribute);
      return false;
    }
    const family = net.isIP(range.addressPrefix) === 6 ? 'ipv6' : 'ipv4';
    if (net.isIP(ip) !== (family === 'ipv6' ? 6 : 4)) return false;
    const list = new net.BlockList();
    list.addSubnet(range.addressPrefix, range.prefixLen ?? (family === 'ipv6' ? 128 : 32), family);
    return list.check(ip, family);
  }

  permission(p: Permission): boolean {
    const r = p.rule;
    switch (r.case) {
      case 'any':
        return r.value;
      case 'andRules':
        return r.value.rules.every((x) => this.permission(x));
      case 'orRules':
        return r.value.rules.some((x) => this.permission(x));
      case 'notRule':
        return !this.permission(r.value);
      case 'header':
        return this.header(r.value);
      case 'urlPath':
        return r.value.rule.case === 'path' && this.string(r.value.rule.value, this.req.path?.split('?')[0], 'path');
      case 'destinationPort':
        return this.req.destinationPort === r.value;
      case 'destinationIp':
        return this.cidr(r.value, this.req.destinationIp, 'destination.ip');
      case 'requestedServerName':
        return this.string(r.value, this.req.sni, 'connection.sni');
      default:
        this.unknown.add(`permission ${String(r.case)}`);
        return false;
    }
  }

  principal(p: Principal): boolean {
    const id = p.identifier;
    switch (id.case) {
      case 'any':
        return id.value;
      case 'andIds':
        return id.value.ids.every((x) => this.principal(x));
      case 'orIds':
        return id.value.ids.some((x) => this.principal(x));
      case 'notId':
        return !this.principal(id.value);
      case 'authenticated': {
        const name = id.value.principalName;
        if (!name) return this.req.principal !== undefined;
        // No certificate: nothing to match (Envoy needs a TLS peer; grpc-js matches '' and our matchers never match '').
        return this.req.principal !== undefined && this.string(name, this.req.principal, 'source.principal');
      }
      case 'directRemoteIp':
      case 'sourceIp':
        return this.cidr(id.value, this.req.sourceIp, 'source.ip');
      case 'remoteIp':
        return this.cidr(id.value, this.req.remoteIp ?? this.req.sourceIp, 'remote.ip');
      case 'header':
        return this.header(id.value);
      case 'urlPath':
        return id.value.rule.case === 'path' && this.string(id.value.rule.value, this.req.path, 'path');
      default:
        this.unknown.add(`principal ${String(id.case)}`);
        return false;
    }
  }
}

/** Evaluates one RBAC config; `unknown` collects the attributes a matcher needed and the request lacked. */
export function evaluateRbac(rbac: RbacConfig, req: RbacRequest, unknown?: Set<string>): RbacOutcome {
  const e = new Evaluation(req);
  let policy: string | undefined;
  for (const name of Object.keys(rbac.policies).sort()) {
    const p = rbac.policies[name]!;
    if (p.permissions.some((x) => e.permission(x)) && p.principals.some((x) => e.principal(x))) {
      policy = name;
      break;
    }
  }
  for (const u of e.unknown) unknown?.add(u);
  return { matched: policy !== undefined, ...(policy !== undefined ? { policy } : {}) };
}

/** The action's name as Envoy's enum spells it. */
export function actionName(action: RBAC_Action): 'ALLOW' | 'DENY' | 'LOG' {
  return action === RBAC_Action.DENY ? 'DENY' : action === RBAC_Action.LOG ? 'LOG' : 'ALLOW';
}
