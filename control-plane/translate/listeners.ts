// LDS (envoy-translation.md §3, grpc-js-xds.md §2–§3): what each proxy type listens on. Envoy sidecars get
// capture listeners and per-port outbound listeners (listeners-sidecar.ts); proxyless gRPC applications get
// API listeners for the names they dial and server listeners for what they serve (listeners-grpc.ts).
import type { Listener } from '../envoy/gen/envoy/config/listener/v3/listener_pb.js';
import type { TranslateContext } from './context.js';
import { grpcListeners } from './listeners-grpc.js';
import { sidecarListeners } from './listeners-sidecar.js';

/** LDS for a proxy, in a fixed order. `notes` collects what was left out and why. */
export function buildListeners(ctx: TranslateContext, notes: string[] = []): Listener[] {
  return ctx.proxy.proxyType === 'grpc' ? grpcListeners(ctx) : sidecarListeners(ctx, notes);
}
