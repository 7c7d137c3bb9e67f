// PeerAuthentication rules shared by the validator's cross-checks (crds/cross-checks.ts) and the model
// (control-plane/model/peer-authentication.ts): what a valid spec keeps, whether a selector selects a
// workload, and the conflicts between several policies at one level (README "PeerAuthentication" of the
// model). Pure; imports nothing outside crds/.
import type { PeerAuthenticationSpec, PeerMtlsMode } from '../types.js';

/** A Pod as the conflict check sees it. */
export interface PodLabels {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** What the model keeps of a valid spec. */
export interface PeerFields {
  /** `spec.selector.matchLabels`, keys sorted; absent when there is none or it is empty. */
  readonly selector?: Readonly<Record<string, string>>;
  /** `spec.mtls.mode`; UNSET when not written. */
  readonly mode: PeerMtlsMode;
  /** `spec.portLevelMtls`, sorted by port. */
  readonly portLevel: readonly { readonly port: number; readonly mode: PeerMtlsMode }[];
}

/** A policy as the conflict check sees it (the model's accepted PeerAuthentication is one). */
export interface PeerPolicy extends PeerFields {
  readonly namespace: string;
  readonly name: string;
}

/** A namespace/name reference. */
interface PolicyRef {
  readonly namespace: string;
  readonly name: string;
}

export function peerFields(spec: PeerAuthenticationSpec): PeerFields {
  const labels = spec.selector?.matchLabels ?? {};
  const keys = Object.keys(labels).sort();
  const portLevel = Object.entries(spec.portLevelMtls ?? {})
    .map(([port, m]) => ({ port: Number(port), mode: m.mode ?? 'UNSET' }))
    .sort((a, b) => a.port - b.port);
  return {
    ...(keys.length > 0 ? { selector: Object.fromEntries(keys.map((k) => [k, labels[k]!])) } : {}),
    mode: spec.mtls?.mode ?? 'UNSET',
    portLevel,
  };
}

/** The selector's labels are all among `labels`. */
export function selects(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

function refText(r: PolicyRef): string {
  return `${r.namespace}/${r.name}`;
}

function sameSelector(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
}

/** A younger policy that an older one overrides, in part (a warning) or entirely (conflicted). */
export interface PeerConflict {
  readonly policy: PolicyRef;
  readonly path: string;
  readonly message: string;
  /** The policy has no effect at all: Accepted=False, reason Conflicted. */
  readonly conflicted: boolean;
}

/**
 * Several policies at one level; `accepted` is in precedence order (oldest first). Without a selector:
 * the oldest of the namespace applies, the others have no effect (conflicted). With a selector: a policy
 * with the same labels as an older one has no effect (conflicted); one that selects some Pod an older one
 * also selects is warned (the older one wins for that Pod), with the Pods the model knows.
 */
export function peerAuthenticationConflicts(
  accepted: readonly PeerPolicy[],
  pods: readonly PodLabels[],
  rootNamespace: string,
): PeerConflict[] {
  const out: PeerConflict[] = [];
  const byNamespace = new Map<string, PeerPolicy[]>();
  for (const pa of accepted) {
    let list = byNamespace.get(pa.namespace);
    if (!list) byNamespace.set(pa.namespace, (list = []));
    list.push(pa);
  }
  const podsByNamespace = new Map<string, PodLabels[]>();
  for (const pod of pods) {
    let list = podsByNamespace.get(pod.namespace);
    if (!list) podsByNamespace.set(pod.namespace, (list = []));
    list.push(pod);
  }
  for (const [namespace, list] of byNamespace) {
    const level = namespace === rootNamespace ? 'the mesh' : `namespace ${namespace}`;
    const namespaceWide = list.filter((pa) => !pa.selector);
    for (const pa of namespaceWide.slice(1)) {
      out.push({
        policy: pa,
        path: '',
        message: `conflicts with the older PeerAuthentication ${refText(namespaceWide[0]!)}, which is the policy of ${level} (only the oldest without a selector applies)`,
        conflicted: true,
      });
    }
    const withSelector = list.filter((pa) => pa.selector);
    const namespacePods = [...(podsByNamespace.get(namespace) ?? [])].sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    withSelector.forEach((pa, i) => {
      const older = withSelector.slice(0, i);
      const twin = older.find((o) => sameSelector(o.selector!, pa.selector!));
      if (twin) {
        out.push({
          policy: pa,
          path: 'spec.selector',
          message: `selects the same workloads as the older PeerAuthentication ${refText(twin)}, which wins`,
          conflicted: true,
        });
        return;
      }
      // For each Pod it selects, the oldest policy selecting it wins.
      const lost = new Map<PeerPolicy, string[]>();
      for (const pod of namespacePods) {
        if (!selects(pa.selector!, pod.labels)) continue;
        const winner = older.find((o) => selects(o.selector!, pod.labels));
        if (!winner) continue;
        let names = lost.get(winner);
        if (!names) lost.set(winner, (names = []));
        names.push(pod.name);
      }
      for (const [winner, names] of lost) {
        const more = names.length > 1 ? ` (and ${names.length - 1} more)` : '';
        out.push({
          policy: pa,
          path: 'spec.selector',
          message: `Pod ${namespace}/${names[0]!}${more} is also selected by the older PeerAuthentication ${refText(winner)}, which wins there`,
          conflicted: false,
        });
      }
    });
  }
  return out;
}
