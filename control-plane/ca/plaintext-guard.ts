// The CA is never served on the plaintext xDS port (15010) outside local mode (design.md §5.8): a
// ServiceAccount token sent there would cross the pod network in clear text. In Kubernetes mode the port is
// off unless asked for (`--xds-port`); when it is open, this interceptor on it answers every call of
// trellis.ca.v1.CertificateService with FAILED_PRECONDITION before the call is read, so the CA never sees
// the token. The refusal is logged and counted in trellis_ca_requests_total{result="plaintext"}.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../logger.js';
import type { CaMetrics } from './metrics.js';
import { CA_SERVICE_NAME } from './service.js';

/** The gRPC message of the refusal (FAILED_PRECONDITION). */
export function plaintextCaRefusal(securePort: number): string {
  return (
    `the CA is served only over TLS on port ${securePort} in Kubernetes mode, never on the plaintext xDS port ` +
    '(a token sent here would cross the network in clear text)'
  );
}

export interface PlaintextGuardOptions {
  /** The TLS port the refusal points callers to. */
  readonly securePort: number;
  readonly logger: Logger;
  readonly metrics?: CaMetrics;
}

/** A server interceptor for the plaintext port: CA calls are refused, every other call passes untouched. */
export function refuseCaOnPlaintext(options: PlaintextGuardOptions): grpc.ServerInterceptor {
  const prefix = `/${CA_SERVICE_NAME}/`;
  const details = plaintextCaRefusal(options.securePort);
  const audit = options.logger.child({ component: 'ca', audit: true });
  return (method, call) => {
    if (!method.path.startsWith(prefix)) return new grpc.ServerInterceptingCall(call);
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: () => {
            options.metrics?.requests.inc({ result: 'plaintext' });
            audit.warn(
              { decision: 'plaintext', code: 'FAILED_PRECONDITION', reason: details, peer: call.getPeer() },
              'ca: request refused',
            );
            call.sendStatus({ code: grpc.status.FAILED_PRECONDITION, details });
          },
        }),
    });
  };
}
