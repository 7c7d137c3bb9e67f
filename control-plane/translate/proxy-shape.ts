// What translation reads of a proxy, as keys (translate/README.md "Shared config"). Two proxies with equal
// keys get the same generated parts from one snapshot, so the generator (generator.ts) shares the message
// objects and the resource cache encodes them once.
//
// - `outbound`: the proxy type, its namespace (visibility, DestinationRule lookup, short host names), the
//   labels some VirtualService selects sources on (`sourceLabels`), and for an Envoy sidecar with tracing on
//   the service name its spans carry, and its scope's key (scope.ts: which Services a Sidecar or automatic
//   scoping leaves it, and the outbound traffic policy). Not its node id, IPs, service account or other
//   labels: nothing outbound reads them but the scope, and proxies with one scope share its key.
// - `inbound`: for an Envoy sidecar, the Service ports its Pod serves by target port (inbound-ports.ts) and
//   the labels PeerAuthentication selectors read; for a proxyless application, the (IP, port) pairs its
//   server listeners are named by, and the same labels. Pods of one workload serve the same ports, so they
//   share this too, except proxyless servers (their listener names carry the IP). Both also carry the
//   content hashes of the AuthorizationPolicies that apply to the workload (its namespace and all its
//   labels): a policy change rebuilds the inbound parts of the workloads it selects (before or after) and
//   no others, and workloads under the same policies share them.
import { tracingServiceName } from './tracing.js';
import type { SnapshotKeys } from '../model/parts.js';
import type { TranslateContext } from './context.js';
import { inboundPorts } from './inbound-ports.js';
import { frozenContentHash } from '../model/canonical.js';
import { authorizationPoliciesFor } from '../model/authorization-policy.js';
import { serverBindings } from './listeners-grpc.js';
import { proxyScope } from './scope.js';
import { localityShape } from './locality.js';
import type { AcceptedDestinationRule } from '../model/snapshot.js';

export interface ProxyShape {
  readonly outbound: string;
  readonly inbound: string;
  /**
   * What the outbound ClusterLoadAssignments read of the proxy beyond `outbound`: its locality and the
   * labels a failoverPriority names, when some DestinationRule makes EDS depend on them (locality.ts); ''
   * otherwise, so proxies in every locality share them.
   */
  readonly endpoints: string;
}

const selectorKeyMemo = new WeakMap<readonly AcceptedDestinationRule[], readonly string[]>();

/** The label keys DestinationRule workload selectors read, sorted (memoized per snapshot list). */
function destinationRuleSelectorKeys(rules: readonly AcceptedDestinationRule[]): readonly string[] {
  let keys = selectorKeyMemo.get(rules);
  if (!keys) {
    const set = new Set(rules.flatMap((r) => Object.keys(r.spec.workloadSelector?.matchLabels ?? {})));
    selectorKeyMemo.set(rules, (keys = [...set].sort()));
  }
  return keys;
}

/** The labels among `keys`, as sorted pairs. */
function pick(labels: Readonly<Record<string, string>>, keys: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (const key of keys) {
    const value = labels[key];
    if (value !== undefined) out.push([key, value]);
  }
  return out;
}

export function proxyShape(
  ctx: TranslateContext,
  keys: Pick<SnapshotKeys, 'sourceLabelKeys' | 'selectorLabelKeys'>,
): ProxyShape {
  const { proxy, mesh } = ctx;
  const envoy = proxy.proxyType === 'envoy';
  const tracing = envoy && mesh.tracing.collector ? tracingServiceName(proxy) : '';
  const outbound = JSON.stringify([
    proxy.proxyType,
    proxy.namespace,
    pick(proxy.labels, keys.sourceLabelKeys),
    tracing,
    proxyScope(ctx).key,
    pick(proxy.labels, destinationRuleSelectorKeys(ctx.snapshot.destinationRules)),
  ]);
  const selected = pick(proxy.labels, keys.selectorLabelKeys);
  const authz = authorizationPoliciesFor(ctx.snapshot, proxy.namespace, proxy.labels).map(frozenContentHash);
  const inbound = envoy
    ? JSON.stringify([
        selected,
        tracing,
        inboundPorts(ctx).map(([targetPort, { service, port }]) => [targetPort, service.fqdn, port.port]),
        authz,
      ])
    : JSON.stringify([selected, serverBindings(ctx), authz]);
  return { outbound, inbound, endpoints: localityShape(ctx.snapshot, proxy) };
}
