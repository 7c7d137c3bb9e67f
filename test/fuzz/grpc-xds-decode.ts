// What a proxyless gRPC client says about the resources it is sent: @grpc/grpc-js-xds's own resource
// types (`xds-resource-type/*`, the code its XdsClient runs on every resource of a response to decide ACK or
// NACK), on the very bytes an xDS server sends. All four types a proxyless client subscribes to; the HTTP
// filters (router, fault injection, RBAC) are registered as the client registers them when it is loaded.
import { createRequire } from 'node:module';
import { encodeMessage, packAny, type Message } from '../../control-plane/envoy/protos.js';
import { GRPC_IDENTITY_PROVIDER, GRPC_ROOT_PROVIDER } from '../../control-plane/translate/cluster-names.js';

interface DecodeResult {
  readonly name: string;
  readonly error?: string;
}
interface ResourceType {
  decode(context: unknown, resource: { type_url: string; value: Buffer }): DecodeResult;
}
interface ResourceTypeClass {
  get(): ResourceType;
}

const require = createRequire(import.meta.url);
const XDS = '@grpc/grpc-js-xds/build/src';
// Loading the package registers its HTTP filters, LB policies and resolver, as an application's import does.
(require('@grpc/grpc-js-xds') as { register(): void }).register();

function resourceType(file: string, exported: string): ResourceTypeClass {
  return (require(`${XDS}/xds-resource-type/${file}`) as Record<string, ResourceTypeClass>)[exported]!;
}

const TYPES: Readonly<Record<string, ResourceTypeClass>> = {
  'envoy.config.cluster.v3.Cluster': resourceType('cluster-resource-type.js', 'ClusterResourceType'),
  'envoy.config.endpoint.v3.ClusterLoadAssignment': resourceType('endpoint-resource-type.js', 'EndpointResourceType'),
  'envoy.config.listener.v3.Listener': resourceType('listener-resource-type.js', 'ListenerResourceType'),
  'envoy.config.route.v3.RouteConfiguration': resourceType(
    'route-config-resource-type.js',
    'RouteConfigurationResourceType',
  ),
};

/** The bootstrap the agent writes for a proxyless application declares these certificate providers. */
const CONTEXT = {
  server: { serverUri: '127.0.0.1:15010', channelCreds: [], serverFeatures: [] },
  bootstrap: {
    certificateProviders: {
      [GRPC_IDENTITY_PROVIDER]: { pluginName: 'file_watcher', config: {} },
      [GRPC_ROOT_PROVIDER]: { pluginName: 'file_watcher', config: {} },
    },
  },
};

/**
 * The NACK reasons grpc-js-xds would give for `messages` (any of the four types); [] when it accepts all.
 * A decoder that throws is a NACK too (the client catches it and rejects the resource), reported as such.
 */
export function grpcXdsRejections(messages: readonly Message[]): string[] {
  return messages.flatMap((m) => {
    const type = TYPES[m.$typeName];
    if (!type) return [`${m.$typeName}: not a type a proxyless client subscribes to`];
    const any = packAny(m);
    try {
      const result = type.get().decode(CONTEXT, { type_url: any.typeUrl, value: Buffer.from(encodeMessage(m)) });
      return result.error ? [`${m.$typeName} ${result.name}: ${result.error}`] : [];
    } catch (e) {
      return [`${m.$typeName}: the decoder threw: ${(e as Error).message}`];
    }
  });
}
