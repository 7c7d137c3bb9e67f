// Real Jaeger v2 (all-in-one, memory storage) built from tools/peers/, next to the Kubernetes peers.
// Skipped (one line) when the peers are not built, failed under CI.
import crypto from 'node:crypto';
import anyTest from 'ava';
import { listeningSockets, processSockets, request, useCluster, type Cluster } from '../helpers/cluster.js';

const suite = useCluster(anyTest, { jaeger: true });

interface JaegerTrace {
  traceID: string;
  spans: { traceID: string; spanID: string; operationName: string; tags: { key: string; value: unknown }[] }[];
  processes: Record<string, { serviceName: string }>;
}

const stripZeros = (hex: string): string => hex.replace(/^0+/, '');

suite.test('an OTLP/HTTP span sent to Jaeger is read back through the query API', async (t, cluster) => {
  const jaeger = cluster.jaeger;
  if (!jaeger) return t.fail('cluster started without Jaeger');
  t.log(`warm start: ${JSON.stringify(cluster.timings)}`);
  const service = `trellis-peers-test-${crypto.randomBytes(3).toString('hex')}`;
  const traceId = crypto.randomBytes(16).toString('hex');
  const spanId = crypto.randomBytes(8).toString('hex');
  const start = BigInt(Date.now()) * 1_000_000n;
  const body = {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
        scopeSpans: [
          {
            scope: { name: 'trellis-test' },
            spans: [
              {
                traceId,
                spanId,
                name: 'peers-roundtrip',
                kind: 2,
                startTimeUnixNano: String(start),
                endTimeUnixNano: String(start + 5_000_000n),
                attributes: [{ key: 'trellis.test', value: { stringValue: 'yes' } }],
              },
            ],
          },
        ],
      },
    ],
  };
  const posted = await fetch(`${jaeger.otlpHttpUrl}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  t.is(posted.status, 200, await posted.text());

  // Jaeger batches before storing: poll the query API with a deadline.
  const url = `${jaeger.queryUrl}/api/traces?service=${encodeURIComponent(service)}&lookback=1h&limit=20`;
  const deadline = Date.now() + 30_000;
  let trace: JaegerTrace | undefined;
  for (let delay = 25; !trace; delay = Math.min(delay * 2, 500)) {
    const r = await request(url);
    if (r.status === 200) {
      const data = (JSON.parse(r.body) as { data: JaegerTrace[] | null }).data ?? [];
      trace = data.find((tr) => stripZeros(tr.traceID) === stripZeros(traceId));
    }
    if (trace) break;
    if (Date.now() > deadline) return t.fail(`trace ${traceId} not in Jaeger after 30 s (last: ${r.status} ${r.body})`);
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
  const span = trace.spans.find((s) => stripZeros(s.spanID) === stripZeros(spanId));
  t.is(span?.operationName, 'peers-roundtrip');
  t.true(span?.tags.some((tag) => tag.key === 'trellis.test' && tag.value === 'yes') ?? false);
  t.true(Object.values(trace.processes).some((p) => p.serviceName === service));

  const services = JSON.parse((await request(`${jaeger.queryUrl}/api/services`)).body) as { data: string[] };
  t.true(services.data.includes(service));
});

const isLoopback = (address: string): boolean =>
  address === '127.0.0.1' || address === '::ffff:127.0.0.1' || address === '::1';

function peerPids(cluster: Cluster): { name: string; pid: number }[] {
  const { etcd, apiserver, jaeger } = cluster.pids;
  return [
    { name: 'etcd', pid: etcd },
    { name: 'kube-apiserver', pid: apiserver },
    ...(jaeger ? [{ name: 'jaeger', pid: jaeger }] : []),
  ];
}

suite.test('every peer listens on 127.0.0.1 only and talks to loopback only', (t, cluster) => {
  if (process.platform !== 'linux') {
    t.pass('needs /proc');
    return;
  }
  const j = cluster.jaeger;
  if (!j) return t.fail('cluster started without Jaeger');
  for (const { name, pid } of peerPids(cluster)) {
    const sockets = processSockets(pid);
    const listening = listeningSockets(pid);
    t.log(`${name}: listens on ${listening.map((s) => `${s.protocol} ${s.address}:${s.port}`).join(', ')}`);
    t.true(listening.length > 0, `${name} has listeners`);
    for (const s of listening) t.true(isLoopback(s.address), `${name} listens on ${s.address}:${s.port}`);
    for (const s of sockets.filter((x) => x.state !== 'listen' && x.state !== 'bound')) {
      t.true(isLoopback(s.remote.address), `${name} has a ${s.state} socket to ${s.remote.address}:${s.remote.port}`);
    }
  }
  const ports = (pid: number): number[] => [...new Set(listeningSockets(pid).map((s) => s.port))].sort((a, b) => a - b);
  t.deepEqual(
    ports(j.pid),
    [j.otlpGrpcPort, j.otlpHttpPort, j.queryPort, j.queryGrpcPort, j.healthPort].sort((a, b) => a - b),
    'Jaeger opens exactly the configured ports',
  );
  t.deepEqual(ports(cluster.pids.apiserver), [Number(new URL(cluster.server).port)]);
});
