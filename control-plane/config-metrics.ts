// Metrics of the control plane as a whole, registered in its registry (`/metrics`):
// - `trellis_build_info{version, node_version, mode} 1`: what runs (version: package.json's, the images' tag);
// - `trellis_config_objects{kind, state}`: VirtualServices, DestinationRules, PeerAuthentications and
//   AuthorizationPolicies (and any
//   other kind the model judges) by state: `accepted` (Accepted or AcceptedWithWarnings), `invalid`
//   (kept out of the model, or its last accepted version kept), `conflicted` (no effect: an older object
//   wins). Read from the current snapshot's statuses at scrape time (nothing is counted between scrapes);
//   every kind of the four and every state is present, 0 when there is none.
import { Gauge, type Registry } from 'prom-client';
import { DEFAULT_TAG } from '../injector/images.js';
import type { MeshSnapshot, StatusReason } from './model/snapshot.js';

export type ControlPlaneMode = 'kubernetes' | 'local' | 'static';

const STATE_OF: Readonly<Record<StatusReason, ConfigState>> = {
  Accepted: 'accepted',
  AcceptedWithWarnings: 'accepted',
  Invalid: 'invalid',
  Conflicted: 'conflicted',
};

export type ConfigState = 'accepted' | 'invalid' | 'conflicted';
export const CONFIG_STATES: readonly ConfigState[] = ['accepted', 'invalid', 'conflicted'];
const KINDS = [
  'VirtualService',
  'DestinationRule',
  'PeerAuthentication',
  'AuthorizationPolicy',
  'Sidecar',
  'ServiceEntry',
] as const;

/** `trellis_build_info` = 1 with the version, the Node.js version and the mode as labels. */
export function registerBuildInfo(
  registry: Registry,
  mode: ControlPlaneMode,
): Gauge<'version' | 'node_version' | 'mode'> {
  const gauge = new Gauge({
    name: 'trellis_build_info',
    help: 'Always 1; the labels say what runs: version (package.json, the images tag), node_version, mode (kubernetes, local, static).',
    labelNames: ['version', 'node_version', 'mode'] as const,
    registers: [registry],
  });
  gauge.set({ version: DEFAULT_TAG, node_version: process.version, mode }, 1);
  return gauge;
}

/** Counts of `snapshot`'s judged objects by kind and state (every kind of the four and every state present). */
export function configObjectCounts(snapshot: MeshSnapshot): Map<string, Map<ConfigState, number>> {
  const counts = new Map<string, Map<ConfigState, number>>();
  const row = (kind: string): Map<ConfigState, number> => {
    let r = counts.get(kind);
    if (!r) counts.set(kind, (r = new Map(CONFIG_STATES.map((s) => [s, 0]))));
    return r;
  };
  for (const kind of KINDS) row(kind);
  for (const status of snapshot.statuses) {
    const r = row(status.kind);
    const state = STATE_OF[status.reason];
    r.set(state, r.get(state)! + 1);
  }
  return counts;
}

/** `trellis_config_objects{kind, state}`, computed from `mesh.current()` at each scrape. */
export function registerConfigObjects(
  registry: Registry,
  mesh: { current(): MeshSnapshot; ready(): boolean },
): Gauge<'kind' | 'state'> {
  return new Gauge({
    name: 'trellis_config_objects',
    help: 'Routing and security objects by kind and state: accepted (in the model), invalid (refused; an earlier accepted version may stay in effect), conflicted (no effect: an older object wins).',
    labelNames: ['kind', 'state'] as const,
    registers: [registry],
    collect() {
      this.reset();
      if (!mesh.ready()) return;
      for (const [kind, states] of configObjectCounts(mesh.current())) {
        for (const [state, n] of states) this.set({ kind, state }, n);
      }
    },
  });
}
