// Shutting a grpc-js server down: let open calls finish, but never wait longer than `graceMs` before
// cutting them (a long-lived xDS or SDS stream would otherwise hold the shutdown forever).
import type * as grpc from '@grpc/grpc-js';

export function shutdownServer(server: grpc.Server, graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
