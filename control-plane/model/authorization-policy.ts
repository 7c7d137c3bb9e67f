// AuthorizationPolicy: who may call a workload (Istio's security/v1 AuthorizationPolicy). Pure.
// routing.ts validates and accepts the objects (so the last accepted version and the status work as for
// the other kinds); this file reads what was accepted:
//
// - `authorizationFields`: the parts of an accepted spec the model keeps (selector, action, rules);
// - `authorizationPoliciesFor`: the policies that apply to a workload, by its namespace and labels.
//
// Which policies apply (Istio's pilot/pkg/model/authorization.go): every policy of the root namespace
// without a selector (mesh-wide), every policy of the root namespace whose selector matches the workload's
// labels (in any namespace), every policy of the workload's namespace without a selector, and every policy
// of its namespace whose selector matches. Unlike PeerAuthentication, all of them apply together: there is
// no precedence and no conflict between AuthorizationPolicies. How they combine (DENY before ALLOW, ALLOW
// denies what it does not match once one exists) is the translator's (translate/rbac.ts).
import type { AuthorizationPolicySpec } from '../../crds/types.js';
import { selects } from '../../crds/rules/peer-authentication.js';
import type { AcceptedAuthorizationPolicy, MeshSnapshot } from './snapshot.js';

/** What the model keeps of a valid spec. */
export function authorizationFields(
  spec: AuthorizationPolicySpec,
): Pick<AcceptedAuthorizationPolicy, 'selector' | 'action' | 'rules'> {
  const labels = spec.selector?.matchLabels ?? {};
  const keys = Object.keys(labels).sort();
  return {
    ...(keys.length > 0 ? { selector: Object.fromEntries(keys.map((k) => [k, labels[k]!])) } : {}),
    action: spec.action ?? 'ALLOW',
    rules: spec.rules ?? [],
  };
}

/** The AuthorizationPolicies that apply to a workload, in the snapshot's order (precedence: oldest first). */
export function authorizationPoliciesFor(
  snapshot: Pick<MeshSnapshot, 'authorizationPolicies' | 'rootNamespace'>,
  namespace: string,
  labels: Readonly<Record<string, string>>,
): AcceptedAuthorizationPolicy[] {
  return snapshot.authorizationPolicies.filter(
    (ap) =>
      (ap.namespace === namespace || ap.namespace === snapshot.rootNamespace) &&
      (!ap.selector || selects(ap.selector, labels)),
  );
}
