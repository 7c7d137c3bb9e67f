// Conflicting VirtualServices (envoy-translation.md §2.8, README "Conflicting VirtualServices"). Sidecars do
// not merge VirtualServices: for each host and client namespace the oldest visible one wins. A younger one
// is warned about every older one that some namespace sees together with it, and loses the host where the
// older ones cover every namespace it is visible in. Pure.
import { coveredBy, overlaps } from '../../crds/rules/visibility.js';
import { qualifyHost } from './hosts.js';
import type { AcceptedVirtualService, StatusIssue } from './snapshot.js';

export interface VirtualServiceVerdicts {
  /** A warning on the younger VirtualService. */
  warn(vs: AcceptedVirtualService, issue: StatusIssue): void;
  /** The VirtualService has no effect on `host` in any namespace it is visible in. */
  lose(vs: AcceptedVirtualService, host: string): void;
}

/** The VirtualServices of each host, in precedence order (`virtualServices` is); conflicts go to `verdicts`. */
export function virtualServicesOfHosts(
  virtualServices: readonly AcceptedVirtualService[],
  domain: string,
  verdicts: VirtualServiceVerdicts,
): Map<string, AcceptedVirtualService[]> {
  const byHost = new Map<string, AcceptedVirtualService[]>();
  for (const vs of virtualServices) {
    for (const host of vs.hosts) {
      let list = byHost.get(host);
      if (!list) byHost.set(host, (list = []));
      list.push(vs);
    }
  }
  for (const [host, candidates] of byHost) {
    candidates.forEach((vs, i) => {
      const older = candidates.slice(0, i).filter((o) => overlaps(o.exportTo, vs.exportTo));
      const winner = older[0];
      if (!winner) return;
      const everywhere = coveredBy(
        vs.exportTo,
        older.map((o) => o.exportTo),
      );
      if (everywhere) verdicts.lose(vs, host);
      const written = (vs.resource.spec.hosts ?? []).findIndex((h) => qualifyHost(h, vs.namespace, domain) === host);
      verdicts.warn(vs, {
        severity: 'warning',
        path: `spec.hosts[${written}]`,
        message: `conflicts with older VirtualService ${winner.namespace}/${winner.name} for host ${host}${everywhere ? '' : ' in the namespaces that see both'}, which wins`,
      });
    });
  }
  return byHost;
}
