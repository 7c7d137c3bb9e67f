// SPIFFE IDs of workloads: spiffe://<trust-domain>/ns/<namespace>/sa/<service-account> (design.md §3).

export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

export interface WorkloadIdentity {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

// Trust domain: lowercase letters, digits, '.', '-', '_' (SPIFFE ID spec §2.1). Namespace and service
// account: Kubernetes DNS-1123 names (subdomain for a ServiceAccount), which are valid path segments.
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SEGMENT = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/;

export function spiffeId(identity: WorkloadIdentity): string {
  const { trustDomain, namespace, serviceAccount } = identity;
  if (!TRUST_DOMAIN.test(trustDomain)) throw new Error(`invalid trust domain "${trustDomain}"`);
  if (!SEGMENT.test(namespace)) throw new Error(`invalid namespace "${namespace}"`);
  if (!SEGMENT.test(serviceAccount)) throw new Error(`invalid service account "${serviceAccount}"`);
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

/** The identity in a workload SPIFFE ID, or undefined when `id` is not of that form. */
export function parseSpiffeId(id: string): WorkloadIdentity | undefined {
  const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(id);
  if (!m || !TRUST_DOMAIN.test(m[1]!) || !SEGMENT.test(m[2]!) || !SEGMENT.test(m[3]!)) return undefined;
  return { trustDomain: m[1]!, namespace: m[2]!, serviceAccount: m[3]! };
}
