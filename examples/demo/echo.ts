// A tiny gRPC echo service for the demo mesh and the end-to-end tests: `trellis.demo.Echo/Echo` answers
// with the name of the server that handled the call. Messages are JSON, so no proto file is needed.
import * as grpc from '@grpc/grpc-js';

export interface EchoRequest {
  readonly message: string;
}

export interface EchoReply {
  readonly message: string;
  /** The name of the server instance that answered. */
  readonly server: string;
}

const json = {
  serialize: (value: unknown): Buffer => Buffer.from(JSON.stringify(value)),
  deserialize: <T>(bytes: Buffer): T => JSON.parse(bytes.toString('utf8')) as T,
};

export const echoService = {
  Echo: {
    path: '/trellis.demo.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: (b: Buffer) => json.deserialize<EchoRequest>(b),
    responseSerialize: json.serialize,
    responseDeserialize: (b: Buffer) => json.deserialize<EchoReply>(b),
  },
} satisfies grpc.ServiceDefinition;

export interface EchoServer {
  readonly name: string;
  readonly port: number;
  /** Calls served so far. */
  readonly served: () => number;
  close(): Promise<void>;
}

/** A plain gRPC echo server on `host:port` (0: a free port). */
export async function startEchoServer(name: string, host = '127.0.0.1', port = 0): Promise<EchoServer> {
  const server = new grpc.Server();
  let served = 0;
  server.addService(echoService, {
    Echo: (call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, callback: grpc.sendUnaryData<EchoReply>) => {
      served++;
      callback(null, { message: call.request.message, server: name });
    },
  });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    name,
    port: bound,
    served: () => served,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

const EchoClientConstructor = grpc.makeGenericClientConstructor(echoService, 'Echo');

export class EchoClient {
  private readonly client: grpc.Client;

  constructor(target: string, credentials = grpc.credentials.createInsecure(), options: grpc.ChannelOptions = {}) {
    this.client = new EchoClientConstructor(target, credentials, options);
  }

  echo(message: string, deadlineMs = 5_000): Promise<EchoReply> {
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        echoService.Echo.path,
        echoService.Echo.requestSerialize,
        echoService.Echo.responseDeserialize,
        { message },
        new grpc.Metadata(),
        { deadline: Date.now() + deadlineMs },
        (err, reply) => (err || !reply ? reject(err ?? new Error('no reply')) : resolve(reply)),
      );
    });
  }

  close(): void {
    this.client.close();
  }
}

/** A gRPC xDS bootstrap (grpc-js-xds, ../shared/reference/grpc-js-xds.md §1) pointing at a control plane. */
export function xdsBootstrap(controlPlane: string, nodeId: string, metadata: Record<string, string> = {}): string {
  return JSON.stringify({
    xds_servers: [{ server_uri: controlPlane, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: nodeId, locality: { region: 'local', zone: 'local' }, metadata: { PROXY_TYPE: 'grpc', ...metadata } },
  });
}

/** Channel options giving one channel its own XdsClient with this bootstrap (many nodes in one process). */
export function xdsChannelOptions(bootstrap: string): grpc.ChannelOptions {
  return { 'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': bootstrap };
}
