// The protocol tests' common setup: an in-process control plane serving a small static config, and a raw
// ADS client connected to it; `await using` closes both.
import type { ControlPlaneOptions } from '../../control-plane/control-plane.js';
import { RawAdsClient } from './ads-client.js';
import {
  apiListener,
  edsCluster,
  loadAssignment,
  routeConfig,
  startTestControlPlane,
  type JsonResource,
  type TestControlPlane,
} from './control-plane.js';

/** Two EDS clusters with one endpoint each, an API listener and its route configuration. */
export const twoClusterConfig: readonly JsonResource[] = [
  edsCluster('a'),
  edsCluster('b'),
  loadAssignment('a', [9001]),
  loadAssignment('b', [9002]),
  apiListener('echo:8080', 'r1'),
  routeConfig('r1', ['echo:8080', 'echo'], { a: 1 }),
];

export interface AdsEnv extends AsyncDisposable {
  readonly cp: TestControlPlane;
  readonly client: RawAdsClient;
}

export async function adsEnv(
  resources: readonly JsonResource[] = twoClusterConfig,
  options: Partial<ControlPlaneOptions> & { envoyValidation?: boolean } = {},
): Promise<AdsEnv> {
  const cp = await startTestControlPlane(resources, options);
  const client = new RawAdsClient(cp.target);
  return {
    cp,
    client,
    async [Symbol.asyncDispose]() {
      client.close();
      await cp.close();
    },
  };
}
