// What the proxyless gRPC client itself says about our resources: @grpc/grpc-js-xds's own CDS and EDS
// resource validators (the code that decides ACK or NACK, grpc-js-xds.md §2), run on the bytes we send.
// Internal modules of the pinned version (1.14.1); the bootstrap it validates against declares the
// certificate provider instances the agent writes (cluster-names.ts).
import { createRequire } from 'node:module';
import { packAny, encodeMessage, type Message } from '../../control-plane/envoy/protos.js';
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
const types: Record<string, ResourceTypeClass> = {
  'envoy.config.cluster.v3.Cluster': (
    require('@grpc/grpc-js-xds/build/src/xds-resource-type/cluster-resource-type.js') as {
      ClusterResourceType: ResourceTypeClass;
    }
  ).ClusterResourceType,
  'envoy.config.endpoint.v3.ClusterLoadAssignment': (
    require('@grpc/grpc-js-xds/build/src/xds-resource-type/endpoint-resource-type.js') as {
      EndpointResourceType: ResourceTypeClass;
    }
  ).EndpointResourceType,
};

const context = {
  server: { serverUri: 'localhost:15010', channelCreds: [], serverFeatures: [] },
  bootstrap: {
    certificateProviders: {
      [GRPC_IDENTITY_PROVIDER]: { pluginName: 'file_watcher', config: {} },
      [GRPC_ROOT_PROVIDER]: { pluginName: 'file_watcher', config: {} },
    },
  },
};

/** The NACK messages grpc-js-xds would send for `messages` (Clusters and ClusterLoadAssignments); [] when it ACKs all. */
export function grpcXdsErrors(messages: readonly Message[]): string[] {
  return messages.flatMap((m) => {
    const type = types[m.$typeName];
    if (!type) return [`${m.$typeName}: not a type this helper checks`];
    const any = packAny(m);
    const result = type.get().decode(context, { type_url: any.typeUrl, value: Buffer.from(encodeMessage(m)) });
    return result.error ? [`${result.name}: ${result.error}`] : [];
  });
}
