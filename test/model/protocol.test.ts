import test from 'ava';
import { isHttp2Protocol, isHttpProtocol, selectProtocol } from '../../control-plane/model/protocol.js';

// [port name, appProtocol, transport, expected protocol, decided by]
const table: [string, string | undefined, string | undefined, string, string][] = [
  // The port name's prefix, before the first dash, case-insensitive.
  ['http', undefined, undefined, 'HTTP', 'portName'],
  ['http-web', undefined, undefined, 'HTTP', 'portName'],
  ['HTTP-Web', undefined, undefined, 'HTTP', 'portName'],
  ['http2', undefined, undefined, 'HTTP2', 'portName'],
  ['http2-api', undefined, undefined, 'HTTP2', 'portName'],
  ['grpc', undefined, undefined, 'GRPC', 'portName'],
  ['grpc-api', undefined, undefined, 'GRPC', 'portName'],
  ['grpc-web', undefined, undefined, 'GRPC-Web', 'portName'],
  ['grpc-web-ui', undefined, undefined, 'GRPC-Web', 'portName'],
  ['tcp', undefined, undefined, 'TCP', 'portName'],
  ['tcp-db', undefined, undefined, 'TCP', 'portName'],
  // Istio protocols that Trellis proxies as TCP.
  ['https', undefined, undefined, 'TCP', 'portName'],
  ['https-admin', undefined, undefined, 'TCP', 'portName'],
  ['tls-passthrough', undefined, undefined, 'TCP', 'portName'],
  ['mongo', undefined, undefined, 'TCP', 'portName'],
  ['redis-cache', undefined, undefined, 'TCP', 'portName'],
  ['mysql', undefined, undefined, 'TCP', 'portName'],
  // Unknown or no name: Istio would sniff; Trellis says TCP.
  ['', undefined, undefined, 'TCP', 'default'],
  ['web', undefined, undefined, 'TCP', 'default'],
  ['httpfoo', undefined, undefined, 'TCP', 'default'],
  ['metrics-http', undefined, undefined, 'TCP', 'default'],
  // appProtocol decides alone when set (even over the name).
  ['', 'http', undefined, 'HTTP', 'appProtocol'],
  ['tcp', 'grpc', undefined, 'GRPC', 'appProtocol'],
  ['http-web', 'tcp', undefined, 'TCP', 'appProtocol'],
  ['http-web', 'custom.example.com/proto', undefined, 'TCP', 'appProtocol'],
  ['', 'HTTP2', undefined, 'HTTP2', 'appProtocol'],
  ['', 'kubernetes.io/h2c', undefined, 'HTTP2', 'appProtocol'],
  ['', 'kubernetes.io/ws', undefined, 'HTTP', 'appProtocol'],
  ['', 'kubernetes.io/wss', undefined, 'TCP', 'appProtocol'],
  ['', 'grpc-web', undefined, 'GRPC-Web', 'appProtocol'],
  // A UDP port is UDP whatever its name.
  ['http', 'http', 'UDP', 'UDP', 'transport'],
  ['dns', undefined, 'udp', 'UDP', 'transport'],
  ['http', undefined, 'SCTP', 'HTTP', 'portName'],
];

for (const [name, appProtocol, transport, protocol, from] of table) {
  test(`port "${name}"${appProtocol ? ` appProtocol ${appProtocol}` : ''}${transport ? ` ${transport}` : ''} → ${protocol}`, (t) => {
    t.deepEqual(selectProtocol(name, appProtocol, transport), { protocol, from });
  });
}

test('HTTP family and HTTP/2 upstreams', (t) => {
  t.deepEqual(
    (['HTTP', 'HTTP2', 'GRPC', 'GRPC-Web', 'TCP', 'UDP'] as const).map((p) => [isHttpProtocol(p), isHttp2Protocol(p)]),
    [
      [true, false],
      [true, true],
      [true, true],
      [true, true],
      [false, false],
      [false, false],
    ],
  );
});
