// Helpers of the route and listener tests: the real grpc-js-xds decoders (what a proxyless client NACKs),
// lookups into translated resources, and a small mesh used by several tests.
import type { ExecutionContext } from 'ava';
import * as xds from '@grpc/grpc-js-xds';
import { ListenerResourceType } from '@grpc/grpc-js-xds/build/src/xds-resource-type/listener-resource-type.js';
import { RouteConfigurationResourceType } from '@grpc/grpc-js-xds/build/src/xds-resource-type/route-config-resource-type.js';
import type { XdsDecodeContext } from '@grpc/grpc-js-xds/build/src/xds-resource-type/xds-resource-type.js';
import type { Listener } from '../../control-plane/envoy/gen/envoy/config/listener/v3/listener_pb.js';
import type { RouteConfiguration } from '../../control-plane/envoy/gen/envoy/config/route/v3/route_pb.js';
import { packAny, type Message } from '../../control-plane/envoy/protos.js';
import { GRPC_IDENTITY_PROVIDER, GRPC_ROOT_PROVIDER } from '../../control-plane/translate/cluster-names.js';
import { toJson } from './_snapshots.js';

// Registers grpc-js-xds's HTTP filters (fault, router, RBAC) as a real client process does.
xds.register();

/** The decode context of a client whose bootstrap has the certificate providers the agent writes. */
const decodeContext = {
  server: {},
  bootstrap: { certificateProviders: { [GRPC_IDENTITY_PROVIDER]: {}, [GRPC_ROOT_PROVIDER]: {} } },
} as unknown as XdsDecodeContext;

/** grpc-js-xds's verdict on one resource: undefined when it would ACK, else its NACK message. */
export function grpcNack(message: Message): string | undefined {
  const any = packAny(message);
  const raw = { type_url: any.typeUrl, value: Buffer.from(any.value) };
  const type =
    message.$typeName === 'envoy.config.listener.v3.Listener'
      ? ListenerResourceType.get()
      : RouteConfigurationResourceType.get();
  return type.decode(decodeContext, raw).error;
}

/** Asserts that a proxyless gRPC client (grpc-js-xds 1.14) accepts every listener and route configuration. */
export function assertGrpcAccepts(t: ExecutionContext, messages: readonly Message[]): void {
  const nacks = messages.flatMap((m) => {
    const error = grpcNack(m);
    return error === undefined ? [] : [error];
  });
  t.deepEqual(nacks, [], 'grpc-js-xds NACKs');
}

export type Json = Record<string, unknown>;

/** Proto3 JSON of the route configuration named `name`. */
export function routeConfigJson(configs: readonly RouteConfiguration[], name: string): Json {
  const config = configs.find((c) => c.name === name);
  if (!config) throw new Error(`no route configuration ${name} among ${configs.map((c) => c.name).join(', ')}`);
  return toJson(config);
}

/** Proto3 JSON of the virtual host named `name` in `configs`. */
export function vhostJson(configs: readonly RouteConfiguration[], port: number, name: string): Json {
  const vhosts = routeConfigJson(configs, String(port)).virtualHosts as Json[];
  const vhost = vhosts.find((v) => v.name === name);
  if (!vhost) throw new Error(`no virtual host ${name} in ${port}: ${vhosts.map((v) => String(v.name)).join(', ')}`);
  return vhost;
}

/** The routes of a virtual host as proto3 JSON. */
export function routesJson(configs: readonly RouteConfiguration[], port: number, name: string): Json[] {
  return (vhostJson(configs, port, name).routes as Json[] | undefined) ?? [];
}

export function listenerJson(listeners: readonly Listener[], name: string): Json {
  const listener = listeners.find((l) => l.name === name);
  if (!listener) throw new Error(`no listener ${name} among ${listeners.map((l) => l.name).join(', ')}`);
  return toJson(listener);
}

/** Reads a path of keys and indexes from proto3 JSON (throws naming the path when absent). */
export function at(json: unknown, ...path: (string | number)[]): unknown {
  let here: unknown = json;
  for (const key of path) {
    if (typeof here !== 'object' || here === null || !(key in here))
      throw new Error(`no ${path.join('.')} (stopped at ${key})`);
    here = (here as Record<string | number, unknown>)[key];
  }
  return here;
}
