// How an example app meets the mesh. With a gRPC xDS bootstrap (GRPC_XDS_BOOTSTRAP, which the gRPC
// template's injector sets, or GRPC_XDS_BOOTSTRAP_CONFIG) the app is proxyless: clients dial
// `xds:///<name>:<port>` with XdsChannelCredentials, servers are A36 XdsServers that take their Listener
// (plaintext or mutual TLS, as the PeerAuthentications say) from the control plane. Without one it is a
// plain gRPC app (the Envoy template, or no mesh at all): `dns:///<name>:<port>`, plaintext. The fallback
// credentials of the xDS wrappers are plaintext, used when the control plane sends no TLS.
import * as grpc from '@grpc/grpc-js';
import { register, XdsChannelCredentials, XdsServer, XdsServerCredentials } from '@grpc/grpc-js-xds';
import { loadXxhashApi } from '@grpc/grpc-js-xds/build/src/xxhash.js';
import { uriSans } from '../../../certs/certificate-provider.js';
import type { Logger } from '../../../control-plane/logger.js';

export type MeshMode = 'xds' | 'plain';

/** `xds` when the environment holds a gRPC xDS bootstrap, else `plain`. */
export function meshMode(env: NodeJS.ProcessEnv = process.env): MeshMode {
  return env.GRPC_XDS_BOOTSTRAP || env.GRPC_XDS_BOOTSTRAP_CONFIG ? 'xds' : 'plain';
}

let registered = false;

function ensureXds(): void {
  if (registered) return;
  register();
  registered = true;
}

/**
 * Readies the app for the mesh before it creates any channel: in xds mode, registers grpc-js-xds and loads
 * its hashing (xxhash, WebAssembly) at once.
 *
 * Why load the hashing first: grpc-js-xds 1.14.1's resolver applies each xDS update after
 * `await loadXxhashApi()` (build/src/resolver-xds.js `handleXdsConfig`), and until the first load has
 * finished every call starts a load of its own (build/src/xxhash.js). Two updates that reach a channel
 * before then (its first config, and a change pushed right after, such as the TLS a namespace going
 * STRICT adds to a cluster) can finish loading in the other order, and the older config is applied last.
 * The channel then keeps dialling with it until the next update: in the local cluster, one reviews pod
 * dialled ratings in plaintext for the whole six minutes of `test/cluster/traffic.test.ts`'s STRICT test,
 * in about one run in six, its ACKed cluster carrying TLS. Loaded once before any channel resolves, every
 * update awaits an already loaded API and is applied in order.
 */
export async function prepareMesh(mode: MeshMode): Promise<void> {
  if (mode !== 'xds') return;
  ensureXds();
  await loadXxhashApi();
}

/**
 * The channel target for `name` (`reviews:9080`, `reviews.shop.svc.cluster.local:9080`): with the scheme of
 * the mode, unless `name` already has one (`xds:///…`, `dns:///…`, `unix:…`), which is kept as it is.
 */
export function targetFor(name: string, mode: MeshMode): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(name) && !/^[^:/]+:\d+$/.test(name)) return name;
  return mode === 'xds' ? `xds:///${name}` : `dns:///${name}`;
}

export function channelCredentials(mode: MeshMode): grpc.ChannelCredentials {
  if (mode === 'plain') return grpc.credentials.createInsecure();
  ensureXds();
  return new XdsChannelCredentials(grpc.credentials.createInsecure());
}

/** The caller's SPIFFE ID from the client certificate of a server call; '' without one (plaintext). */
export function callerIdentity(call: grpc.ServerUnaryCall<unknown, unknown>): string {
  return uriSans(call.getAuthContext()?.sslPeerCertificate).join(',');
}

/** The server's SPIFFE ID from its certificate, as a client call saw it; '' in plaintext. */
export function serverIdentity(call: grpc.ClientUnaryCall): string {
  return uriSans(call.getAuthContext()?.sslPeerCertificate ?? undefined).join(',');
}

/** 1 for a first attempt; n + 1 when grpc-js's retry sent `grpc-previous-rpc-attempts: n` (gRFC A6). */
export function attemptOf(call: grpc.ServerUnaryCall<unknown, unknown>): number {
  const previous = Number(call.metadata.get('grpc-previous-rpc-attempts')[0] ?? 0);
  return Number.isFinite(previous) && previous > 0 ? previous + 1 : 1;
}

export interface RunningServer {
  readonly address: string;
  close(): Promise<void>;
}

/**
 * Serves `service` on `host:port`. In xds mode `host` must be the IP the control plane knows for this
 * workload (its INSTANCE_IPS: the pod IP, 127.0.0.1 locally), because the server's Listener is named after
 * the bound address and must carry the same one; it resolves once the Listener has arrived and the port
 * serves. A plain server resolves once bound.
 */
export async function serve(
  mode: MeshMode,
  host: string,
  port: number,
  service: grpc.ServiceDefinition,
  implementation: grpc.UntypedServiceImplementation,
  logger: Logger,
): Promise<RunningServer> {
  const address = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  let server: grpc.Server;
  let credentials: grpc.ServerCredentials;
  if (mode === 'xds') {
    ensureXds();
    const xds = new XdsServer({ drainGraceTimeMs: 5_000 });
    xds.addServingStateListener(address, (status) => {
      if (status.code !== grpc.status.OK) {
        logger.warn({ address, code: grpc.status[status.code], details: status.details }, 'not serving');
      }
    });
    logger.info({ address }, 'waiting for this server Listener from the control plane');
    server = xds;
    credentials = new XdsServerCredentials(grpc.ServerCredentials.createInsecure());
  } else {
    server = new grpc.Server();
    credentials = grpc.ServerCredentials.createInsecure();
  }
  server.addService(service, implementation);
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(address, credentials, (err) => (err ? reject(err) : resolve())),
  );
  // An XdsServer calls back only once its Listener has arrived and the port serves.
  logger.info({ address, mode }, 'serving');
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.forceShutdown(), 2_000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}

export type UnaryResult<Res> =
  | { readonly ok: true; readonly reply: Res; readonly server: string }
  | {
      readonly ok: false;
      readonly code: grpc.status;
      readonly details: string;
      /** Retries before the failure: grpc-previous-rpc-attempts of the status metadata (0 without retry). */
      readonly retries: number;
    };

/** One unary call that never rejects: the reply and the server's identity, or the status. */
export function unary<Req, Res>(
  client: grpc.Client,
  method: grpc.MethodDefinition<Req, Res>,
  request: Req,
  options: { readonly deadline: grpc.Deadline; readonly metadata?: grpc.Metadata },
): Promise<UnaryResult<Res>> {
  return new Promise((resolve) => {
    const call = client.makeUnaryRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      request,
      options.metadata ?? new grpc.Metadata(),
      { deadline: options.deadline },
      (err, reply) => {
        if (err || reply === undefined) {
          const previous = Number(err?.metadata?.get('grpc-previous-rpc-attempts')[0] ?? 0);
          resolve({
            ok: false,
            code: err?.code ?? grpc.status.UNKNOWN,
            details: err?.details ?? 'no reply',
            retries: Number.isFinite(previous) ? previous : 0,
          });
        } else {
          resolve({ ok: true, reply, server: serverIdentity(call) });
        }
      },
    );
  });
}
