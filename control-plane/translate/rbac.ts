// AuthorizationPolicy → Envoy RBAC (envoy.config.rbac.v3.RBAC), as Istio builds it
// (pilot/pkg/security/authz/builder, model): one RBAC config per action for a workload, holding one Envoy
// policy per rule of every AuthorizationPolicy that applies to it (model/authorization-policy.ts), named
// `ns[<namespace>]-policy[<name>]-rule[<index>]` (the name `trellis authz check` reports).
//
// - DENY policies → an RBAC with action DENY, evaluated first; ALLOW → an RBAC with action ALLOW, present
//   as soon as one ALLOW policy applies (so an ALLOW policy without rules denies everything, and requests
//   no ALLOW rule matches are denied); AUDIT → action LOG (Envoy allows the request and sets the dynamic
//   metadata `envoy.common` `access_log_hint`, which the audit access log of the HCM filters on).
// - A rule: permissions = AND(OR(to[].operation), when-conditions on the destination); principals =
//   AND(OR(from[].source), when-conditions on the source); an absent part matches anything. Inside a
//   source or an operation the fields are ANDed, the values of one field ORed; `not…` fields are
//   NOT(OR(values)).
// - Values: `abc` exact, `abc*` prefix, `*abc` suffix, `*` any non-empty value. Principals are SPIFFE IDs
//   written without `spiffe://` and matched as the peer certificate's URI SAN (`authenticated.principal_name`);
//   namespaces are matched on the same URI SAN (`spiffe://<td>/ns/<namespace>/sa/<sa>`). Hosts are matched
//   on `:authority` ignoring case, with or without a `:port`.
// - TCP (the network RBAC filter): hosts, methods, paths and request.headers cannot be seen. As Istio, a
//   rule of an ALLOW or AUDIT policy that uses one of them is left out (it matches nothing: safer), and in a
//   DENY policy those fields are dropped from the rule (it denies more: safer).
// Pure and deterministic: policies in the snapshot's order, rules in spec order.
import { create } from '@bufbuild/protobuf';
import type {
  AuthorizationCondition,
  AuthorizationOperation,
  AuthorizationRule,
  AuthorizationSource,
} from '../../crds/types.js';
import {
  RBAC_Action,
  RBACSchema as RbacConfigSchema,
  type PermissionSchema,
  type PolicySchema,
  type PrincipalSchema,
  type RBAC as RbacConfig,
} from '../envoy/gen/envoy/config/rbac/v3/rbac_pb.js';
import type { StringMatcherSchema } from '../envoy/gen/envoy/type/matcher/v3/string_pb.js';
import type { HeaderMatcherSchema } from '../envoy/gen/envoy/config/route/v3/route_components_pb.js';
import type { CidrRangeSchema } from '../envoy/gen/envoy/config/core/v3/address_pb.js';
import { authorizationPoliciesFor } from '../model/authorization-policy.js';
import type { AcceptedAuthorizationPolicy, MeshSnapshot } from '../model/snapshot.js';
import type { InitOf } from './route-values.js';

type PermissionInit = InitOf<typeof PermissionSchema>;
type PrincipalInit = InitOf<typeof PrincipalSchema>;
type PolicyInit = InitOf<typeof PolicySchema>;
type StringMatcherInit = InitOf<typeof StringMatcherSchema>;
type HeaderMatcherInit = InitOf<typeof HeaderMatcherSchema>;
type CidrInit = InitOf<typeof CidrRangeSchema>;

/** Whether the RBAC guards HTTP requests (the HTTP filter) or TCP connections (the network filter). */
export type RbacTransport = 'http' | 'tcp';

/** The RBAC configs of one workload, by action; absent when no policy of that action applies. */
export interface WorkloadRbac {
  readonly deny?: RbacConfig;
  readonly allow?: RbacConfig;
  readonly audit?: RbacConfig;
}

/** The Envoy policy name of one rule of one AuthorizationPolicy. */
export function rbacPolicyName(namespace: string, name: string, rule: number): string {
  return `ns[${namespace}]-policy[${name}]-rule[${rule}]`;
}

/** The AuthorizationPolicy and rule an Envoy policy name stands for (the inverse of rbacPolicyName). */
export function parseRbacPolicyName(
  policy: string,
): { readonly namespace: string; readonly name: string; readonly rule: number } | undefined {
  const m = /^ns\[([^\]]*)\]-policy\[([^\]]*)\]-rule\[(\d+)\]$/.exec(policy);
  return m ? { namespace: m[1]!, name: m[2]!, rule: Number(m[3]) } : undefined;
}

// ---------------------------------------------------------------------------------------------------
// Values

const RE2_SPECIAL = /[\\^$.|?*+()[\]{}]/g;

function escapeRegex(s: string): string {
  return s.replace(RE2_SPECIAL, '\\$&');
}

/** `abc` exact, `abc*` prefix, `*abc` suffix, `*` any non-empty value; `prefix` is put before exact and prefix forms. */
function stringMatcher(value: string, options: { prefix?: string; ignoreCase?: boolean } = {}): StringMatcherInit {
  const before = options.prefix ?? '';
  const ignoreCase = options.ignoreCase ? { ignoreCase: true } : {};
  if (value === '*') return { matchPattern: { case: 'safeRegex', value: { regex: '.+' } } };
  if (value.startsWith('*')) return { matchPattern: { case: 'suffix', value: value.slice(1) }, ...ignoreCase };
  if (value.endsWith('*'))
    return { matchPattern: { case: 'prefix', value: before + value.slice(0, -1) }, ...ignoreCase };
  return { matchPattern: { case: 'exact', value: before + value }, ...ignoreCase };
}

function cidr(value: string): CidrInit {
  const [address, prefix] = value.split('/');
  const len = prefix !== undefined ? Number(prefix) : address!.includes(':') ? 128 : 32;
  return { addressPrefix: address!, prefixLen: len };
}

function principalName(matcher: StringMatcherInit): PrincipalInit {
  return { identifier: { case: 'authenticated', value: { principalName: matcher } } };
}

/** A peer identity (`cluster.local/ns/a/sa/b`) on the URI SAN `spiffe://cluster.local/ns/a/sa/b`. */
function principalId(value: string): PrincipalInit {
  return principalName(stringMatcher(value, { prefix: 'spiffe://' }));
}

/** A namespace of the peer identity, on the URI SAN `spiffe://<td>/ns/<namespace>/sa/<sa>`. */
function namespaceId(value: string): PrincipalInit {
  const ns =
    value === '*'
      ? '[^/]+'
      : value.startsWith('*')
        ? `[^/]*${escapeRegex(value.slice(1))}`
        : value.endsWith('*')
          ? `${escapeRegex(value.slice(0, -1))}[^/]*`
          : escapeRegex(value);
  return principalName({ matchPattern: { case: 'safeRegex', value: { regex: `spiffe://[^/]+/ns/${ns}/sa/[^/]+` } } });
}

function header(name: string, value: string, ignoreCase = false): HeaderMatcherInit {
  if (value === '*') return { name, headerMatchSpecifier: { case: 'presentMatch', value: true } };
  return { name, headerMatchSpecifier: { case: 'stringMatch', value: stringMatcher(value, { ignoreCase }) } };
}

// ---------------------------------------------------------------------------------------------------
// Permissions and principals

const anyPermission: PermissionInit = { rule: { case: 'any', value: true } };
const anyPrincipal: PrincipalInit = { identifier: { case: 'any', value: true } };

function orRules(rules: PermissionInit[]): PermissionInit {
  return rules.length === 1 ? rules[0]! : { rule: { case: 'orRules', value: { rules } } };
}

function andRules(rules: PermissionInit[]): PermissionInit {
  if (rules.length === 0) return anyPermission;
  return rules.length === 1 ? rules[0]! : { rule: { case: 'andRules', value: { rules } } };
}

function notRule(rule: PermissionInit): PermissionInit {
  return { rule: { case: 'notRule', value: rule } };
}

function orIds(ids: PrincipalInit[]): PrincipalInit {
  return ids.length === 1 ? ids[0]! : { identifier: { case: 'orIds', value: { ids } } };
}

function andIds(ids: PrincipalInit[]): PrincipalInit {
  if (ids.length === 0) return anyPrincipal;
  return ids.length === 1 ? ids[0]! : { identifier: { case: 'andIds', value: { ids } } };
}

function notId(id: PrincipalInit): PrincipalInit {
  return { identifier: { case: 'notId', value: id } };
}

/** `values` ORed, `notValues` as NOT(OR), both ANDed into `out`. */
function field<T>(
  out: T[],
  values: readonly string[] | undefined,
  notValues: readonly string[] | undefined,
  one: (v: string) => T,
  or: (xs: T[]) => T,
  not: (x: T) => T,
): void {
  if (values && values.length > 0) out.push(or(values.map(one)));
  if (notValues && notValues.length > 0) out.push(not(or(notValues.map(one))));
}

function hostPermission(host: string): PermissionInit {
  const exact: PermissionInit = { rule: { case: 'header', value: header(':authority', host, true) } };
  if (host === '*' || host.startsWith('*')) return exact;
  // `host` or `host:<port>`.
  const withPort: PermissionInit = {
    rule: { case: 'header', value: header(':authority', `${host.endsWith('*') ? host.slice(0, -1) : host}:*`, true) },
  };
  return host.endsWith('*') ? exact : orRules([exact, withPort]);
}

function operationPermission(op: AuthorizationOperation, transport: RbacTransport): PermissionInit {
  const rules: PermissionInit[] = [];
  if (transport === 'http') {
    field(rules, op.hosts, op.notHosts, hostPermission, orRules, notRule);
    field(
      rules,
      op.methods,
      op.notMethods,
      (m): PermissionInit => ({ rule: { case: 'header', value: header(':method', m) } }),
      orRules,
      notRule,
    );
    field(
      rules,
      op.paths,
      op.notPaths,
      (p): PermissionInit => ({
        rule: { case: 'urlPath', value: { rule: { case: 'path', value: stringMatcher(p) } } },
      }),
      orRules,
      notRule,
    );
  }
  field(
    rules,
    op.ports,
    op.notPorts,
    (p): PermissionInit => ({ rule: { case: 'destinationPort', value: Number(p) } }),
    orRules,
    notRule,
  );
  return andRules(rules);
}

function sourcePrincipal(source: AuthorizationSource): PrincipalInit {
  const ids: PrincipalInit[] = [];
  field(ids, source.principals, source.notPrincipals, principalId, orIds, notId);
  field(ids, source.namespaces, source.notNamespaces, namespaceId, orIds, notId);
  const direct = (v: string): PrincipalInit => ({ identifier: { case: 'directRemoteIp', value: cidr(v) } });
  const remote = (v: string): PrincipalInit => ({ identifier: { case: 'remoteIp', value: cidr(v) } });
  field(ids, source.ipBlocks, source.notIpBlocks, direct, orIds, notId);
  field(ids, source.remoteIpBlocks, source.notRemoteIpBlocks, remote, orIds, notId);
  return andIds(ids);
}

/** One `when` condition, on the permission side (destination) or the principal side (source, request). */
function condition(
  c: AuthorizationCondition,
  transport: RbacTransport,
): { permission?: PermissionInit; principal?: PrincipalInit } | undefined {
  const key = c.key;
  const headerName = /^request\.headers\[(.+)\]$/.exec(key)?.[1];
  const ids: PrincipalInit[] = [];
  const perms: PermissionInit[] = [];
  if (headerName !== undefined) {
    if (transport === 'tcp') return undefined;
    const one = (v: string): PrincipalInit => ({ identifier: { case: 'header', value: header(headerName, v) } });
    field(ids, c.values, c.notValues, one, orIds, notId);
  } else if (key === 'source.ip' || key === 'remote.ip') {
    const kind = key === 'source.ip' ? ('directRemoteIp' as const) : ('remoteIp' as const);
    field(
      ids,
      c.values,
      c.notValues,
      (v): PrincipalInit => ({ identifier: { case: kind, value: cidr(v) } }),
      orIds,
      notId,
    );
  } else if (key === 'source.namespace') {
    field(ids, c.values, c.notValues, namespaceId, orIds, notId);
  } else if (key === 'source.principal') {
    field(ids, c.values, c.notValues, principalId, orIds, notId);
  } else if (key === 'destination.ip') {
    field(
      perms,
      c.values,
      c.notValues,
      (v): PermissionInit => ({ rule: { case: 'destinationIp', value: cidr(v) } }),
      orRules,
      notRule,
    );
  } else if (key === 'destination.port') {
    const one = (v: string): PermissionInit => ({ rule: { case: 'destinationPort', value: Number(v) } });
    field(perms, c.values, c.notValues, one, orRules, notRule);
  } else if (key === 'connection.sni') {
    const one = (v: string): PermissionInit => ({ rule: { case: 'requestedServerName', value: stringMatcher(v) } });
    field(perms, c.values, c.notValues, one, orRules, notRule);
  }
  return {
    ...(perms.length > 0 ? { permission: andRules(perms) } : {}),
    ...(ids.length > 0 ? { principal: andIds(ids) } : {}),
  };
}

function usesHttpOnlyFields(rule: AuthorizationRule): boolean {
  const op = (o: AuthorizationOperation) =>
    [o.hosts, o.notHosts, o.methods, o.notMethods, o.paths, o.notPaths].some((v) => v !== undefined && v.length > 0);
  return (
    (rule.to ?? []).some((t) => op(t.operation)) || (rule.when ?? []).some((c) => c.key.startsWith('request.headers['))
  );
}

/** The Envoy policy of one rule. */
function rulePolicy(rule: AuthorizationRule, transport: RbacTransport): PolicyInit {
  const perms: PermissionInit[] = [];
  const ids: PrincipalInit[] = [];
  if (rule.to && rule.to.length > 0)
    perms.push(orRules(rule.to.map((t) => operationPermission(t.operation, transport))));
  if (rule.from && rule.from.length > 0) ids.push(orIds(rule.from.map((f) => sourcePrincipal(f.source))));
  for (const c of rule.when ?? []) {
    const part = condition(c, transport);
    if (part?.permission) perms.push(part.permission);
    if (part?.principal) ids.push(part.principal);
  }
  return { permissions: [andRules(perms)], principals: [andIds(ids)] };
}

function rbacConfig(
  action: RBAC_Action,
  policies: readonly AcceptedAuthorizationPolicy[],
  transport: RbacTransport,
): RbacConfig {
  const out: Record<string, PolicyInit> = {};
  for (const ap of policies) {
    ap.rules.forEach((rule, i) => {
      // TCP: an ALLOW or AUDIT rule that needs HTTP attributes matches nothing (left out); a DENY rule
      // loses those conditions (operationPermission and condition skip them) and denies more.
      if (transport === 'tcp' && action !== RBAC_Action.DENY && usesHttpOnlyFields(rule)) return;
      out[rbacPolicyName(ap.namespace, ap.name, i)] = rulePolicy(rule, transport);
    });
  }
  return create(RbacConfigSchema, { action, policies: out });
}

/**
 * The RBAC configs of a workload (its namespace and labels) for one transport. DENY and AUDIT appear when a
 * policy of theirs has a rule; ALLOW as soon as an ALLOW policy applies, rules or not.
 */
export function workloadRbac(
  snapshot: Pick<MeshSnapshot, 'authorizationPolicies' | 'rootNamespace'>,
  namespace: string,
  labels: Readonly<Record<string, string>>,
  transport: RbacTransport,
): WorkloadRbac {
  const policies = authorizationPoliciesFor(snapshot, namespace, labels);
  const of = (action: AcceptedAuthorizationPolicy['action']) => policies.filter((p) => p.action === action);
  const deny = of('DENY');
  const allow = of('ALLOW');
  const audit = of('AUDIT');
  return {
    ...(deny.some((p) => p.rules.length > 0) ? { deny: rbacConfig(RBAC_Action.DENY, deny, transport) } : {}),
    ...(allow.length > 0 ? { allow: rbacConfig(RBAC_Action.ALLOW, allow, transport) } : {}),
    ...(audit.some((p) => p.rules.length > 0) ? { audit: rbacConfig(RBAC_Action.LOG, audit, transport) } : {}),
  };
}
