// A small proxyless gRPC service for test/e2e/tracing-jaeger.test.ts, run as its own process
// (`node --import tsx test/e2e/_traced-grpc-app.ts`), instrumented with @opentelemetry/instrumentation-grpc
// and exporting to the OTLP/gRPC endpoint in OTEL_EXPORTER_OTLP_ENDPOINT (Jaeger):
//   ROLE=server: an A36 XdsServer on 127.0.0.1:PORT serving Echo; with DOWNSTREAM (`<fqdn>:<port>`) each
//                call first calls Echo there (xds:///), so a trace runs client → server → downstream;
//   ROLE=client: calls Echo on xds:///TARGET until one call succeeds, then CALLS more, prints the result
//                and exits after the SDK has exported its spans.
// Every xDS client has its own bootstrap (node id NODE_ID, namespace NAMESPACE, control plane CONTROL_PLANE).
// The instrumentation patches @grpc/grpc-js when it is loaded through require (require-in-the-middle), so
// the SDK starts first and gRPC is then loaded with require, never with an ES import.
import { createRequire } from 'node:module';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { GrpcInstrumentation } from '@opentelemetry/instrumentation-grpc';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type * as GrpcModule from '@grpc/grpc-js';
import type * as XdsModule from '@grpc/grpc-js-xds';

const env = process.env;
const need = (name: string): string => {
  const value = env[name];
  if (!value) throw new Error(`${name} must be set`);
  return value;
};

const sdk = new NodeSDK({
  serviceName: need('SERVICE_NAME'),
  traceExporter: new OTLPTraceExporter(),
  instrumentations: [
    new GrpcInstrumentation({
      ignoreGrpcMethods: ['StreamAggregatedResources', 'DeltaAggregatedResources', 'StreamLoadStats'],
    }),
  ],
});
sdk.start();
const require = createRequire(import.meta.url);
const grpc = require('@grpc/grpc-js') as typeof GrpcModule;
const xds = require('@grpc/grpc-js-xds') as typeof XdsModule;
xds.register(); // the xds: resolver and the HTTP filters (router, RBAC), for the XdsServer too

interface EchoMessage {
  readonly message: string;
  readonly path: readonly string[];
}
const json = {
  serialize: (value: EchoMessage): Buffer => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer): EchoMessage => JSON.parse(bytes.toString('utf8')) as EchoMessage,
};
const echoService = {
  Echo: {
    path: '/trellis.test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
} satisfies GrpcModule.ServiceDefinition;
const EchoClient = grpc.makeGenericClientConstructor(echoService, 'Echo');
const BOOTSTRAP_OPTION = 'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config';

function bootstrap(nodeId: string, server: boolean): string {
  return JSON.stringify({
    xds_servers: [
      { server_uri: need('CONTROL_PLANE'), channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] },
    ],
    node: {
      id: nodeId,
      locality: { region: 'local', zone: 'local' },
      metadata: { PROXY_TYPE: 'grpc', NAMESPACE: need('NAMESPACE'), INSTANCE_IPS: '127.0.0.1' },
    },
    ...(server ? { server_listener_resource_name_template: 'grpc/server?xds.resource.listening_address=%s' } : {}),
  });
}

type Client = InstanceType<typeof EchoClient>;

function client(target: string, nodeId: string): Client {
  return new EchoClient(`xds:///${target}`, grpc.credentials.createInsecure(), {
    [BOOTSTRAP_OPTION]: bootstrap(nodeId, false),
  });
}

function call(c: Client, request: EchoMessage, deadlineMs = 5_000): Promise<EchoMessage> {
  return new Promise((resolve, reject) => {
    c.makeUnaryRequest(
      echoService.Echo.path,
      json.serialize,
      json.deserialize,
      request,
      new grpc.Metadata(),
      { deadline: Date.now() + deadlineMs },
      (err: GrpcModule.ServiceError | null, reply?: EchoMessage) => (err ? reject(err) : resolve(reply!)),
    );
  });
}

const say = (line: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(line)}\n`);
};

async function runServer(): Promise<void> {
  const name = need('SERVICE_NAME');
  const downstream = env.DOWNSTREAM ? client(env.DOWNSTREAM, `${need('NODE_ID')}-client`) : undefined;
  const server = new xds.XdsServer({
    [BOOTSTRAP_OPTION]: bootstrap(need('NODE_ID'), true),
  } as GrpcModule.ServerOptions);
  server.addService(echoService, {
    Echo: (
      call_: GrpcModule.ServerUnaryCall<EchoMessage, EchoMessage>,
      done: GrpcModule.sendUnaryData<EchoMessage>,
    ) => {
      const request = { message: call_.request.message, path: [...call_.request.path, name] };
      if (!downstream) return done(null, request);
      call(downstream, request).then(
        (reply) => done(null, reply),
        (err: GrpcModule.ServiceError) => done({ code: err.code, details: `${name}: ${err.details}` }),
      );
    },
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(
      `127.0.0.1:${need('PORT')}`,
      new xds.XdsServerCredentials(grpc.ServerCredentials.createInsecure()),
      (err) => (err ? reject(err) : resolve()),
    ),
  );
  say({ msg: 'listening', nodeId: need('NODE_ID') });
  process.once('SIGTERM', () => {
    server.forceShutdown();
    downstream?.close();
    void sdk.shutdown().finally(() => process.exit(0));
  });
}

async function runClient(): Promise<void> {
  const c = client(need('TARGET'), need('NODE_ID'));
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await call(c, { message: 'ready?', path: [] }, 2_000);
      break;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
  }
  const replies: EchoMessage[] = [];
  for (let i = 0; i < Number(env.CALLS ?? '3'); i++) replies.push(await call(c, { message: `call ${i}`, path: [] }));
  c.close();
  await sdk.shutdown();
  say({ msg: 'done', replies });
  process.exit(0);
}

(need('ROLE') === 'client' ? runClient() : runServer()).catch((err: unknown) => {
  process.stderr.write(`${String((err as Error).stack ?? err)}\n`);
  process.exit(1);
});
