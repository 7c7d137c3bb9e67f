// An in-process control plane on 127.0.0.1 free ports, serving a static-resources file that the test edits.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  startControlPlane,
  type ControlPlaneOptions,
  type RunningControlPlane,
} from '../../control-plane/control-plane.js';
import { silentLogger } from '../../control-plane/logger.js';
import { encodeAny, packAny, TypeUrl } from '../../control-plane/envoy/protos.js';
import { groupByType, parseStaticResources } from '../../control-plane/static-resources.js';
import { EnvoyValidateUnavailableError, validateEnvoyResources } from './envoy-validate.js';

export type JsonResource = Record<string, unknown> & { '@type': string };

export interface TestControlPlane extends RunningControlPlane {
  readonly file: string;
  readonly target: string;
  /** `127.0.0.1:<secureXdsPort>`, the TLS port, when the control plane has a CA (`ca` option). */
  readonly secureTarget: string | undefined;
  /** Replaces the file's resources atomically (write + rename) and waits for the push cycle it causes. */
  write(resources: readonly JsonResource[]): Promise<void>;
  /** GET on the monitoring port. */
  monitoring(pathname: string): Promise<Response>;
}

export async function writeResourcesFile(file: string, resources: readonly JsonResource[]): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, JSON.stringify({ resources }, null, 2));
  await fs.rename(tmp, file);
}

let unavailableNoted = false;

/**
 * Checks what a control plane serves for these resources (the same parsing, grouping and encoding as
 * the server) against Envoy's own validation (tools/peers/envoy-validate): every resource used in tests
 * must be one Envoy accepts. Throws listing each violation. Without the checker: throws in CI, else notes
 * once that `npm run peers` enables the check.
 */
export async function assertServedResourcesValid(resources: readonly JsonResource[]): Promise<void> {
  const { resources: parsed } = parseStaticResources(JSON.stringify({ resources }), 'test', new Map());
  const encoded = [...groupByType(parsed).values()].flat().map((m) => encodeAny(packAny(m)));
  let results;
  try {
    results = await validateEnvoyResources(encoded);
  } catch (err) {
    if (!(err instanceof EnvoyValidateUnavailableError) || process.env.CI === 'true') throw err;
    if (!unavailableNoted) console.log(`Envoy validation of served resources skipped: ${err.message}`);
    unavailableNoted = true;
    return;
  }
  const bad = results.filter((r) => r.errors.length > 0);
  if (bad.length > 0) {
    throw new Error(
      `resources used in this test fail Envoy's validation:\n${bad.map((r) => `  ${r.typeUrl} "${r.name}":\n    ${r.errors.join('\n    ')}`).join('\n')}`,
    );
  }
}

export async function startTestControlPlane(
  resources: readonly JsonResource[],
  options: Partial<ControlPlaneOptions> & { envoyValidation?: boolean } = {},
): Promise<TestControlPlane> {
  const { envoyValidation = true, ...cpOptions } = options;
  if (envoyValidation) await assertServedResourcesValid(resources);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-cp-'));
  const file = path.join(dir, 'resources.json');
  await writeResourcesFile(file, resources);
  const cp = await startControlPlane({
    logger: silentLogger,
    xdsPort: 0,
    monitoringPort: 0,
    staticResources: file,
    debounceQuietMs: 10,
    debounceMaxMs: 1_000,
    ...cpOptions,
  });
  return {
    ...cp,
    file,
    target: `127.0.0.1:${cp.xdsPort}`,
    secureTarget: cp.secureXdsPort === undefined ? undefined : `127.0.0.1:${cp.secureXdsPort}`,
    async write(next) {
      if (envoyValidation) await assertServedResourcesValid(next);
      const pushed = new Promise<void>((resolve) => cp.controller.once('pushed', () => resolve()));
      await writeResourcesFile(file, next);
      await pushed;
    },
    monitoring: (pathname) => fetch(`http://127.0.0.1:${cp.monitoringPort}${pathname}`),
    async close() {
      await cp.close();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

// Resource builders in proto3 JSON, as a user would write them in a static-resources file.

export function edsCluster(name: string, extra: Record<string, unknown> = {}): JsonResource {
  return {
    '@type': TypeUrl.Cluster,
    name,
    type: 'EDS',
    connectTimeout: '1s',
    edsClusterConfig: { edsConfig: { ads: {}, resourceApiVersion: 'V3' } },
    ...extra,
  };
}

export function loadAssignment(clusterName: string, ports: readonly number[], host = '127.0.0.1'): JsonResource {
  return {
    '@type': TypeUrl.ClusterLoadAssignment,
    clusterName,
    endpoints: [
      {
        locality: { region: 'r1', zone: 'z1' },
        loadBalancingWeight: 1,
        lbEndpoints: ports.map((port) => ({
          endpoint: { address: { socketAddress: { address: host, portValue: port } } },
        })),
      },
    ],
  };
}

/** An API listener for a proxyless gRPC client (HCM with RDS over ADS and the router). */
export function apiListener(name: string, routeConfigName: string): JsonResource {
  return {
    '@type': TypeUrl.Listener,
    name,
    apiListener: {
      apiListener: {
        '@type':
          'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
        statPrefix: name,
        rds: { routeConfigName, configSource: { ads: {}, resourceApiVersion: 'V3' } },
        httpFilters: [
          {
            name: 'envoy.filters.http.router',
            typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
          },
        ],
      },
    },
  };
}

/** A route configuration with one virtual host sending everything to weighted clusters. */
export function routeConfig(
  name: string,
  domains: readonly string[],
  clusters: Readonly<Record<string, number>>,
): JsonResource {
  const entries = Object.entries(clusters);
  const route =
    entries.length === 1
      ? { cluster: entries[0]![0] }
      : { weightedClusters: { clusters: entries.map(([cluster, weight]) => ({ name: cluster, weight })) } };
  return {
    '@type': TypeUrl.RouteConfiguration,
    name,
    virtualHosts: [{ name: `${name}-vh`, domains, routes: [{ match: { prefix: '' }, route }] }],
  };
}

/** Replaces `file` with `text` atomically (write + rename), for content that is not a resource list. */
export async function writeFileAtomically(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, text);
  await fs.rename(tmp, file);
}
