// A grpc-js-xds A36 server for test/interop/grpc-go.test.ts, run as its own process so that it can run inside
// a network namespace of the test (`nsenter --net=... node --import tsx test/interop/_grpc-js-xds-server.ts`):
// `XdsServer.bindAsync(ADDR)` with xDS server credentials (insecure fallback), the bootstrap from
// GRPC_XDS_BOOTSTRAP. It serves the demo Echo (examples/demo/echo.ts) and answers with NAME and the caller's
// SPIFFE ID, as the grpc-go-xds server does, so a grpc-go client can call it. Prints one JSON line
// `{"event":"serving"}` once bindAsync's callback fires (grpc-js calls it only once it serves).
import * as grpc from '@grpc/grpc-js';
import { register, XdsServer, XdsServerCredentials } from '@grpc/grpc-js-xds';
import { uriSans } from '../../certs/index.js';
import { echoService, type EchoReply, type EchoRequest } from '../../examples/demo/echo.js';

const address = process.env.ADDR;
const name = process.env.NAME ?? 'grpc-js';
if (!address) throw new Error('ADDR must be set');
register();

const server = new XdsServer({ drainGraceTimeMs: 1_000 } as grpc.ServerOptions);
server.addService(echoService, {
  Echo: (call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, callback: grpc.sendUnaryData<EchoReply>) => {
    const peer = uriSans(call.getAuthContext()?.sslPeerCertificate).find((u) => u.startsWith('spiffe://')) ?? '';
    callback(null, { message: call.request.message, server: name, version: 'grpc-js', peer } as EchoReply);
  },
});
server.bindAsync(address, new XdsServerCredentials(grpc.ServerCredentials.createInsecure()), (err) => {
  process.stdout.write(
    `${JSON.stringify(err ? { event: 'fatal', error: err.message } : { event: 'serving', mode: 'SERVING', addr: address })}\n`,
  );
});
