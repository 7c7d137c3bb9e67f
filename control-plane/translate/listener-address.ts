// Socket addresses and listener-filter helpers shared by the sidecar and proxyless listener builders.
import { create } from '@bufbuild/protobuf';
import type { AddressSchema } from '../envoy/gen/envoy/config/core/v3/address_pb.js';
import type { ListenerFilterSchema } from '../envoy/gen/envoy/config/listener/v3/listener_components_pb.js';
import { HttpInspectorSchema } from '../envoy/gen/envoy/extensions/filters/listener/http_inspector/v3/http_inspector_pb.js';
import { OriginalDstSchema } from '../envoy/gen/envoy/extensions/filters/listener/original_dst/v3/original_dst_pb.js';
import { TlsInspectorSchema } from '../envoy/gen/envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector_pb.js';
import { packAny } from '../envoy/protos.js';
import type { InitOf } from './route-values.js';

export type AddressInit = InitOf<typeof AddressSchema>;
type ListenerFilterInit = InitOf<typeof ListenerFilterSchema>;

export function socketAddress(address: string, port: number): AddressInit {
  return { address: { case: 'socketAddress', value: { address, portSpecifier: { case: 'portValue', value: port } } } };
}

/** Restores the pre-iptables destination, so inbound chains can match on the application's port. */
export function originalDstFilter(): ListenerFilterInit {
  return {
    name: 'envoy.filters.listener.original_dst',
    configType: { case: 'typedConfig', value: packAny(create(OriginalDstSchema)) },
  };
}

/** Detects TLS and reads SNI/ALPN, so chains can tell mesh mTLS (`istio` ALPN) from plaintext and app TLS. */
export function tlsInspectorFilter(): ListenerFilterInit {
  return {
    name: 'envoy.filters.listener.tls_inspector',
    configType: { case: 'typedConfig', value: packAny(create(TlsInspectorSchema)) },
  };
}

/** Detects plaintext HTTP/1.1 and h2c (sets the application protocol the HTTP chains match). */
export function httpInspectorFilter(): ListenerFilterInit {
  return {
    name: 'envoy.filters.listener.http_inspector',
    configType: { case: 'typedConfig', value: packAny(create(HttpInspectorSchema)) },
  };
}
