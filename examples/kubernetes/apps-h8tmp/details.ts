// details: the workload of the example that runs with the Envoy template. It is a plain gRPC server (no
// xDS bootstrap in its container): Envoy beside it terminates mutual TLS, so `caller` is '' here. In this
// repository's local cluster the Envoy binary is absent, so the pod is injected but never Ready.
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../../control-plane/logger.js';
import { detailsService, type DetailsReply, type DetailsRequest } from './api.js';
import { callerIdentity, serve, type MeshMode, type RunningServer } from './mesh.js';

export interface DetailsOptions {
  readonly mode: MeshMode;
  readonly host: string;
  readonly port: number;
  readonly pod: string;
  readonly version: string;
  readonly logger: Logger;
}

export function startDetails(options: DetailsOptions): Promise<RunningServer> {
  return serve(
    options.mode,
    options.host,
    options.port,
    detailsService,
    {
      GetDetails: (
        call: grpc.ServerUnaryCall<DetailsRequest, DetailsReply>,
        callback: grpc.sendUnaryData<DetailsReply>,
      ) =>
        callback(null, {
          pod: options.pod,
          version: options.version,
          caller: callerIdentity(call),
          pages: 100 + ((call.request.product ?? '').length % 400),
        }),
    },
    options.logger,
  );
}
