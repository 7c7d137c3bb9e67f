// `trellis authz check`: would this caller's request to this Service be allowed, and which policy decides?
// Answered from the RBAC filters in the inbound listeners each destination workload has: the ones its
// connected proxy was sent (the very bytes it runs), or for a workload with no connected proxy the ones
// the translator generates for it now (its Pod's namespace, labels and address). The CRDs are never read
// here: what is evaluated is the translated config (translate/rbac.ts), with the filters in the proxy's
// order (DENY, then ALLOW, then AUDIT), as Envoy and grpc-js run them. Pure.
import { qualifyHost } from '../../crds/rules/hosts.js';
import type { RBAC as RbacConfig } from '../envoy/gen/envoy/config/rbac/v3/rbac_pb.js';
import type { Filter } from '../envoy/gen/envoy/config/listener/v3/listener_components_pb.js';
import type { Listener as ListenerResource } from '../envoy/gen/envoy/config/listener/v3/listener_pb.js';
import type { HttpConnectionManager } from '../envoy/gen/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb.js';
import type { RBAC as HttpRbac } from '../envoy/gen/envoy/extensions/filters/http/rbac/v3/rbac_pb.js';
import type { RBAC as NetworkRbac } from '../envoy/gen/envoy/extensions/filters/network/rbac/v3/rbac_pb.js';
import { typeNameOf, unpackAny, type Any } from '../envoy/protos.js';
import { isHttpProtocol } from '../model/protocol.js';
import type { MeshEndpoint, MeshService, MeshServicePort, MeshSnapshot } from '../model/snapshot.js';
import { grpcServerListenerName } from '../translate/cluster-names.js';
import type { MeshConfig } from '../translate/context.js';
import { buildListeners } from '../translate/listeners.js';
import { VIRTUAL_INBOUND_LISTENER } from '../translate/listeners-sidecar.js';
import { parseRbacPolicyName } from '../translate/rbac.js';
import { sidecarProxyInfo, type ProxyInfo, type ProxyType } from '../xds/node.js';
import { actionName, evaluateRbac, type RbacRequest } from './evaluate.js';

export interface AuthzQuery {
  /** The caller's SPIFFE ID (`spiffe://cluster.local/ns/a/sa/b`); absent: a plaintext caller. */
  readonly from?: string;
  /** `name`, `name.namespace`, `name.namespace.svc[.domain]`, optionally `:port` (a Service port). */
  readonly to: string;
  /** The namespace short names in `to` are in; `default`. */
  readonly namespace?: string;
  /** The request path; a gRPC method is `/package.Service/Method`. */
  readonly path?: string;
  /** The HTTP method; POST when a path is given (every gRPC call is a POST). */
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly sourceIp?: string;
}

export class AuthzCheckError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'AuthzCheckError';
  }
}

export interface RbacStage {
  readonly action: 'DENY' | 'ALLOW' | 'LOG';
  readonly rules: RbacConfig;
}

/** The Envoy policy that decided, and the AuthorizationPolicy it was translated from. */
export interface Decider {
  readonly action: 'DENY' | 'ALLOW';
  readonly policy: string;
  readonly authorizationPolicy?: { readonly namespace: string; readonly name: string; readonly rule: number };
}

export interface WorkloadVerdict {
  /** `namespace/pod`, or the address when the endpoint names no Pod. */
  readonly workload: string;
  readonly address: string;
  readonly targetPort: number;
  readonly proxy: { readonly id: string; readonly type: ProxyType; readonly config: 'sent' | 'generated' };
  readonly transport: 'http' | 'tcp';
  readonly verdict: 'ALLOW' | 'DENY';
  /** The policy that decided; absent when no policy applies (allowed) or no ALLOW policy matched (denied). */
  readonly decidedBy?: Decider;
  readonly reason: string;
  /** The AUDIT (LOG) policies that matched: the request is logged. */
  readonly audited: readonly string[];
  /** Every Envoy policy in the workload's RBAC filters, by action. */
  readonly policies: Readonly<Record<'DENY' | 'ALLOW' | 'LOG', readonly string[]>>;
  /** Attributes a matcher read and the query did not give (taken as not matching). */
  readonly assumed: readonly string[];
}

export interface AuthzAnswer {
  readonly from: string;
  readonly service: string;
  readonly port: number;
  readonly path?: string;
  readonly verdict: 'ALLOW' | 'DENY' | 'MIXED';
  readonly workloads: readonly WorkloadVerdict[];
}

/** A connected proxy and the listeners it was sent. */
export interface SentConfig {
  readonly proxy: ProxyInfo;
  readonly listeners: readonly ListenerResource[];
}

export interface CheckInputs {
  readonly snapshot: MeshSnapshot;
  readonly mesh: MeshConfig;
  /** The connected proxy with this node id and what it was sent, if there is one. */
  readonly sent: (proxyId: string) => SentConfig | undefined;
}

const HCM_TYPE = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const HTTP_RBAC_TYPE = 'envoy.extensions.filters.http.rbac.v3.RBAC';
const NETWORK_RBAC_TYPE = 'envoy.extensions.filters.network.rbac.v3.RBAC';

function typedConfig(f: { configType: { case: string | undefined; value?: unknown } }): Any | undefined {
  return f.configType.case === 'typedConfig' ? (f.configType.value as Any) : undefined;
}

/** The RBAC stages of one chain's filters, in order: network RBAC filters, or the HTTP ones inside the HCM. */
export function rbacStagesOfFilters(filters: readonly Filter[]): { transport: 'http' | 'tcp'; stages: RbacStage[] } {
  const stages: RbacStage[] = [];
  for (const f of filters) {
    const any = typedConfig(f);
    if (!any) continue;
    const type = typeNameOf(any.typeUrl);
    if (type === NETWORK_RBAC_TYPE) {
      const rules = (unpackAny(any) as NetworkRbac).rules;
      if (rules) stages.push({ action: actionName(rules.action), rules });
    } else if (type === HCM_TYPE) {
      const hcm = unpackAny(any) as HttpConnectionManager;
      for (const hf of hcm.httpFilters) {
        const inner = typedConfig(hf);
        if (!inner || typeNameOf(inner.typeUrl) !== HTTP_RBAC_TYPE) continue;
        const rules = (unpackAny(inner) as HttpRbac).rules;
        if (rules) stages.push({ action: actionName(rules.action), rules });
      }
      return { transport: 'http', stages };
    }
  }
  return { transport: 'tcp', stages };
}

/**
 * The filters that handle a connection to `targetPort` (the chain Envoy or grpc-js would pick): for a
 * sidecar the virtualInbound chain of that destination port (the mTLS one when the caller has a
 * certificate), else the passthrough chains; for a proxyless server its server listener's only chain.
 */
export function inboundFilters(
  listeners: readonly ListenerResource[],
  type: ProxyType,
  address: string,
  targetPort: number,
  mtls: boolean,
): readonly Filter[] | undefined {
  if (type === 'grpc') {
    const l = listeners.find((x) => x.name === grpcServerListenerName(address, targetPort));
    return l?.filterChains[0]?.filters;
  }
  const inbound = listeners.find((x) => x.name === VIRTUAL_INBOUND_LISTENER);
  if (!inbound) return undefined;
  const forPort = inbound.filterChains.filter((c) => c.filterChainMatch?.destinationPort === targetPort);
  const tls = forPort.find((c) => c.filterChainMatch?.transportProtocol !== 'raw_buffer');
  const plain = forPort.find((c) => c.filterChainMatch?.transportProtocol === 'raw_buffer');
  const chain = mtls ? (tls ?? plain) : (plain ?? tls);
  if (chain) return chain.filters;
  const passthrough = mtls
    ? inbound.filterChains.find((c) => c.name === 'virtualInbound-passthrough-mtls')
    : inbound.defaultFilterChain;
  return passthrough?.filters;
}

/** Runs the stages as the proxy does: DENY first, then ALLOW, then AUDIT (LOG never refuses). */
export function decide(
  stages: readonly RbacStage[],
  request: RbacRequest,
): Pick<WorkloadVerdict, 'verdict' | 'decidedBy' | 'reason' | 'audited' | 'assumed'> {
  const assumed = new Set<string>();
  const audited: string[] = [];
  let denied: Pick<WorkloadVerdict, 'verdict' | 'decidedBy' | 'reason'> | undefined;
  let allowedBy: Decider | undefined;
  for (const stage of stages) {
    if (denied) break;
    const outcome = evaluateRbac(stage.rules, request, assumed);
    if (stage.action === 'LOG') {
      if (outcome.policy) audited.push(outcome.policy);
    } else if (stage.action === 'DENY' && outcome.policy) {
      denied = { verdict: 'DENY', decidedBy: decider('DENY', outcome.policy), reason: `denied by ${outcome.policy}` };
    } else if (stage.action === 'ALLOW') {
      if (outcome.policy) allowedBy = decider('ALLOW', outcome.policy);
      else
        denied = {
          verdict: 'DENY',
          reason: 'no ALLOW policy matches, and ALLOW policies apply to the workload (so everything else is denied)',
        };
    }
  }
  const result =
    denied ??
    (allowedBy
      ? { verdict: 'ALLOW' as const, decidedBy: allowedBy, reason: `allowed by ${allowedBy.policy}` }
      : {
          verdict: 'ALLOW' as const,
          reason: stages.some((s) => s.action === 'DENY')
            ? 'no DENY policy matches, and no ALLOW policy applies to the workload'
            : 'no AuthorizationPolicy applies to the workload',
        });
  return { ...result, audited, assumed: [...assumed].sort() };
}

function decider(action: 'DENY' | 'ALLOW', policy: string): Decider {
  const ap = parseRbacPolicyName(policy);
  return { action, policy, ...(ap ? { authorizationPolicy: ap } : {}) };
}

function parseTo(query: AuthzQuery, snapshot: MeshSnapshot): { service: MeshService; port: MeshServicePort } {
  const m = /^(.*?)(?::(\d+))?$/.exec(query.to.trim());
  const host = qualifyHost(m?.[1] ?? '', query.namespace ?? 'default', snapshot.domain);
  const service = snapshot.index.servicesByFqdn.get(host);
  if (!service) throw new AuthzCheckError(404, `no Service ${host} in the mesh (--to ${query.to})`);
  const wanted = m?.[2] !== undefined ? Number(m[2]) : undefined;
  const candidates = service.ports.filter((p) => p.transport === 'TCP');
  const port =
    wanted !== undefined
      ? candidates.find((p) => p.port === wanted)
      : candidates.length === 1
        ? candidates[0]
        : query.path !== undefined
          ? candidates.find((p) => isHttpProtocol(p.protocol))
          : undefined;
  if (!port) {
    const ports = candidates.map((p) => p.port).join(', ');
    throw new AuthzCheckError(
      400,
      wanted !== undefined
        ? `Service ${host} has no TCP port ${wanted} (ports: ${ports})`
        : `Service ${host} has several ports (${ports}): name one, --to ${query.to}:PORT`,
    );
  }
  return { service, port };
}

function generatedListeners(inputs: CheckInputs, endpoint: MeshEndpoint, namespace: string): ListenerResource[] {
  const proxy = sidecarProxyInfo({
    id: endpoint.pod ? `${endpoint.pod.name}.${endpoint.pod.namespace}` : endpoint.address,
    namespace,
    serviceAccount: endpoint.serviceAccount,
    labels: endpoint.labels,
    instanceIps: [endpoint.address],
    trustDomain: inputs.mesh.trustDomain,
    locality: endpoint.locality,
  });
  return buildListeners({ snapshot: inputs.snapshot, proxy, mesh: inputs.mesh });
}

/** The verdict for every endpoint of the Service port (each workload has its own policies). */
export function checkAuthz(inputs: CheckInputs, query: AuthzQuery): AuthzAnswer {
  const { service, port } = parseTo(query, inputs.snapshot);
  const request: RbacRequest = {
    ...(query.from ? { principal: query.from } : {}),
    ...(query.path !== undefined ? { path: query.path, method: query.method ?? 'POST' } : {}),
    ...(query.path === undefined && query.method !== undefined ? { method: query.method } : {}),
    authority: `${service.fqdn}:${port.port}`,
    headers: Object.fromEntries(Object.entries(query.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
    ...(query.sourceIp ? { sourceIp: query.sourceIp } : {}),
    destinationPort: 0,
  };
  const seen = new Set<string>();
  const workloads: WorkloadVerdict[] = [];
  for (const endpoint of port.endpoints) {
    const key = `${endpoint.address}|${endpoint.port}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const namespace = endpoint.pod?.namespace ?? service.namespace;
    const proxyId = endpoint.pod ? `${endpoint.pod.name}.${endpoint.pod.namespace}` : endpoint.address;
    const sent = inputs.sent(proxyId);
    const type: ProxyType = sent?.proxy.proxyType ?? 'envoy';
    const listeners = sent ? sent.listeners : generatedListeners(inputs, endpoint, namespace);
    const filters = inboundFilters(listeners, type, endpoint.address, endpoint.port, query.from !== undefined) ?? [];
    const { transport, stages } = rbacStagesOfFilters(filters);
    const req: RbacRequest =
      transport === 'http'
        ? { ...request, destinationPort: endpoint.port, destinationIp: endpoint.address }
        : {
            ...(request.principal !== undefined ? { principal: request.principal } : {}),
            ...(request.sourceIp !== undefined ? { sourceIp: request.sourceIp } : {}),
            destinationPort: endpoint.port,
            destinationIp: endpoint.address,
          };
    const policies = { DENY: [] as string[], ALLOW: [] as string[], LOG: [] as string[] };
    for (const s of stages) policies[s.action].push(...Object.keys(s.rules.policies).sort());
    workloads.push({
      workload: endpoint.pod ? `${endpoint.pod.namespace}/${endpoint.pod.name}` : endpoint.address,
      address: endpoint.address,
      targetPort: endpoint.port,
      proxy: { id: proxyId, type, config: sent ? 'sent' : 'generated' },
      transport,
      ...decide(stages, req),
      policies,
    });
  }
  if (workloads.length === 0)
    throw new AuthzCheckError(404, `Service ${service.fqdn} port ${port.port} has no endpoints: no workload to ask`);
  const verdicts = new Set(workloads.map((w) => w.verdict));
  return {
    from: query.from ?? '(plaintext, no identity)',
    service: service.fqdn,
    port: port.port,
    ...(query.path !== undefined ? { path: query.path } : {}),
    verdict: verdicts.size === 1 ? [...verdicts][0]! : 'MIXED',
    workloads,
  };
}
