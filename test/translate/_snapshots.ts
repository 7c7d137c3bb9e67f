// Shared by the translator tests: mesh snapshots from object builders (the real model and validator),
// proxies of both types, contexts, and Envoy's own validation of every emitted resource.
//
// Stable API (other translator tests import it): snapshotOf, envoyProxy, grpcProxy, contextFor,
// assertEnvoyResourcesValid, toJson, encodeAll, AGENT_SDS_JSON; the object builders of
// test/model/_objects.ts are re-exported.
import type { ExecutionContext } from 'ava';
import { buildSnapshot } from '../../control-plane/model/build-snapshot.js';
import type { MeshObject } from '../../control-plane/model/objects.js';
import type { MeshSnapshot } from '../../control-plane/model/snapshot.js';
import { defaultMeshConfig, type MeshConfig, type TranslateContext } from '../../control-plane/translate/context.js';
import type { ProxyInfo } from '../../control-plane/xds/node.js';
import { encodeAny, messageToJson, packAny, type Message } from '../../control-plane/envoy/protos.js';
import { formatIssue, validateRoutingResource } from '../../crds/validator.js';
import { envoyValidateAvailable, validateEnvoyResources } from '../helpers/envoy-validate.js';

export * from '../model/_objects.js';

/** A snapshot of `objects`, built as the sources build it (invalid routing objects are kept out). */
export function snapshotOf(objects: readonly MeshObject[]): MeshSnapshot {
  return buildSnapshot(objects, { validate: validateRoutingResource, formatIssue });
}

function proxyOf(proxyType: ProxyInfo['proxyType'], namespace: string, extra: Partial<ProxyInfo>): ProxyInfo {
  return {
    id: `client-0.${namespace}`,
    cluster: '',
    namespace,
    serviceAccount: 'client',
    labels: {},
    instanceIps: [],
    proxyType,
    trustDomain: 'cluster.local',
    locality: { region: '', zone: '', subZone: '' },
    userAgent: '',
    ...extra,
  };
}

/** An Envoy sidecar in `namespace` (node id `client-0.<namespace>`, no instances unless given). */
export function envoyProxy(namespace = 'default', extra: Partial<ProxyInfo> = {}): ProxyInfo {
  return proxyOf('envoy', namespace, extra);
}

/** A proxyless gRPC client in `namespace`. */
export function grpcProxy(namespace = 'default', extra: Partial<ProxyInfo> = {}): ProxyInfo {
  return proxyOf('grpc', namespace, extra);
}

export function contextFor(snapshot: MeshSnapshot, proxy: ProxyInfo, mesh: Partial<MeshConfig> = {}): TranslateContext {
  return { snapshot, proxy, mesh: { ...defaultMeshConfig, ...mesh } };
}

/** Proto3 JSON of a message, as a plain object for deepEqual / like. */
export function toJson(message: Message): Record<string, unknown> {
  return messageToJson(message) as Record<string, unknown>;
}

/** The Any bytes an xDS server would send for each message. */
export function encodeAll(messages: readonly Message[]): Uint8Array[] {
  return messages.map((m) => encodeAny(packAny(m)));
}

/**
 * Runs Envoy's own validation (PGV rules, nested Anys) on every message and asserts that none has an
 * error. Fails when the checker is not built (`npm run peers`): these tests must never pass unchecked.
 */
export async function assertEnvoyResourcesValid(t: ExecutionContext, messages: readonly Message[]): Promise<void> {
  if (!envoyValidateAvailable()) {
    t.fail('envoy-validate is not built: run `npm run peers`');
    return;
  }
  const results = await validateEnvoyResources(encodeAll(messages));
  const errors = results.flatMap((r) => r.errors.map((e) => `${r.name}: ${e}`));
  t.deepEqual(errors, [], 'Envoy validation errors');
}

/** The config source of the agent's SDS (cluster `sds-grpc` in every sidecar's bootstrap), as proto3 JSON. */
export const AGENT_SDS_JSON = {
  apiConfigSource: {
    apiType: 'GRPC',
    grpcServices: [{ envoyGrpc: { clusterName: 'sds-grpc' } }],
    setNodeOnFirstMessageOnly: true,
    transportApiVersion: 'V3',
  },
  initialFetchTimeout: '0s',
  resourceApiVersion: 'V3',
};
