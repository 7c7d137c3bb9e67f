// `/debug/config_dump?proxy=ID`: what one proxy was sent, in the shape of Envoy's admin `/config_dump`
// (`envoy.admin.v3` ClustersConfigDump, ListenersConfigDump, RoutesConfigDump, EndpointsConfigDump and
// SecretsConfigDump in proto3 JSON), with each resource's version, when its type was last sent, and the
// proxy's answer (client_status ACKED / NACKED / UNKNOWN, and error_state with the NACK's message).
// Secrets keep their name and public certificates only: no private key or other secret value is ever
// written (design.md §5.2).
import type { JsonValue } from '@bufbuild/protobuf';
import { anyToJson, decodeAny, messageToJson, shortTypeName, TypeUrl, unpackAny } from './envoy/protos.js';
import type { EncodedResource, EncodedSet } from './xds/resource-cache.js';
import type { ProxyConfig } from './xds/push-controller.js';
import type { TypeStatus } from './xds/type-state.js';

const ADMIN = 'type.googleapis.com/envoy.admin.v3.';

type JsonObject = { [key: string]: JsonValue };

/** The proxy's answer to the latest response of a type, as Envoy's admin API names it. */
interface Answer {
  readonly clientStatus: 'ACKED' | 'NACKED' | 'UNKNOWN';
  readonly errorState?: JsonObject;
}

function answerOf(status: TypeStatus): Answer {
  const nack = status.lastNack;
  if (nack && nack.nonce === status.sentNonce) {
    return {
      clientStatus: 'NACKED',
      errorState: { lastUpdateAttempt: nack.at, details: nack.message, versionInfo: status.sentVersion },
    };
  }
  const ackedAfterSend =
    status.ackedAt !== undefined &&
    status.sentAt !== undefined &&
    Date.parse(status.ackedAt) >= Date.parse(status.sentAt);
  if (status.ackedVersion === status.sentVersion && ackedAfterSend) return { clientStatus: 'ACKED' };
  return { clientStatus: 'UNKNOWN' };
}

/** The resources of `set` the proxy subscribed to, by name. */
function sentResources(set: EncodedSet | undefined, status: TypeStatus): EncodedResource[] {
  if (!set) return [];
  const names = status.subscription === '*' ? undefined : new Set(status.subscription);
  return [...set.byName.values()]
    .filter((r) => names === undefined || names.has(r.name))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** A Secret's name and public certificates (chain, trusted CA); every other field is left out. */
export function publicSecret(resource: EncodedResource): JsonObject {
  const json = messageToJson(unpackAny(decodeAny(resource.any))) as JsonObject;
  const out: JsonObject = { '@type': TypeUrl.Secret, name: json.name ?? resource.name };
  const tls = json.tlsCertificate as JsonObject | undefined;
  if (tls?.certificateChain !== undefined) out.tlsCertificate = { certificateChain: tls.certificateChain };
  const validation = json.validationContext as JsonObject | undefined;
  if (validation?.trustedCa !== undefined) out.validationContext = { trustedCa: validation.trustedCa };
  return out;
}

function withAnswer(entry: JsonObject, answer: Answer): JsonObject {
  return {
    ...entry,
    clientStatus: answer.clientStatus,
    ...(answer.errorState ? { errorState: answer.errorState } : {}),
  };
}

/** The admin-shaped dump of one type, or undefined when the type was never sent. */
function dumpType(typeUrl: string, set: EncodedSet | undefined, status: TypeStatus): JsonObject | undefined {
  if (status.sentNonce === '') return undefined;
  const answer = answerOf(status);
  const lastUpdated = status.sentAt ?? null;
  const resources = sentResources(set, status);
  const common = (r: EncodedResource): JsonObject => ({ versionInfo: r.version, lastUpdated });
  switch (typeUrl) {
    case TypeUrl.Cluster:
      return {
        '@type': `${ADMIN}ClustersConfigDump`,
        versionInfo: status.sentVersion,
        dynamicActiveClusters: resources.map((r) =>
          withAnswer({ ...common(r), cluster: anyToJson(decodeAny(r.any)) }, answer),
        ),
      };
    case TypeUrl.Listener:
      return {
        '@type': `${ADMIN}ListenersConfigDump`,
        versionInfo: status.sentVersion,
        dynamicListeners: resources.map((r) =>
          withAnswer({ name: r.name, activeState: { ...common(r), listener: anyToJson(decodeAny(r.any)) } }, answer),
        ),
      };
    case TypeUrl.RouteConfiguration:
      return {
        '@type': `${ADMIN}RoutesConfigDump`,
        dynamicRouteConfigs: resources.map((r) =>
          withAnswer({ ...common(r), routeConfig: anyToJson(decodeAny(r.any)) }, answer),
        ),
      };
    case TypeUrl.ClusterLoadAssignment:
      return {
        '@type': `${ADMIN}EndpointsConfigDump`,
        dynamicEndpointConfigs: resources.map((r) =>
          withAnswer({ ...common(r), endpointConfig: anyToJson(decodeAny(r.any)) }, answer),
        ),
      };
    case TypeUrl.Secret:
      return {
        '@type': `${ADMIN}SecretsConfigDump`,
        dynamicActiveSecrets: resources.map((r) =>
          withAnswer({ name: r.name, ...common(r), secret: publicSecret(r) }, answer),
        ),
      };
    default:
      return undefined;
  }
}

const DUMP_ORDER: readonly string[] = [
  TypeUrl.Cluster,
  TypeUrl.Listener,
  TypeUrl.RouteConfiguration,
  TypeUrl.ClusterLoadAssignment,
  TypeUrl.Secret,
];

/**
 * `{"configs": [...]}` for one proxy: clusters, listeners, routes, endpoints, secrets (Envoy's order), each
 * present when that type was sent. `types` is the stream's per-type status (StreamStatus.types).
 */
export function configDump(config: ProxyConfig | undefined, types: readonly TypeStatus[]): { configs: JsonObject[] } {
  const configs: JsonObject[] = [];
  for (const typeUrl of DUMP_ORDER) {
    const status = types.find((t) => t.type === shortTypeName(typeUrl));
    if (!status) continue;
    const dump = dumpType(typeUrl, config?.sets.get(typeUrl), status);
    if (dump) configs.push(dump);
  }
  return { configs };
}
