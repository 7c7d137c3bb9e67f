// AbsentListeners: a subscribed Listener the proxy's config lacks is logged once per stream and name; other
// types and present names are not.
import test from 'ava';
import { create } from '@bufbuild/protobuf';
import { Writable } from 'node:stream';
import { ListenerSchema } from '../../control-plane/envoy/gen/envoy/config/listener/v3/listener_pb.js';
import { ClusterSchema } from '../../control-plane/envoy/gen/envoy/config/cluster/v3/cluster_pb.js';
import { TypeUrl } from '../../control-plane/envoy/protos.js';
import { createLogger } from '../../control-plane/logger.js';
import { AbsentListeners } from '../../control-plane/xds/absent-listeners.js';
import { ResourceCache } from '../../control-plane/xds/resource-cache.js';

function capture(): { log: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { log: createLogger({ destination, level: 'info' }), lines };
}

const SERVER = 'grpc/server?xds.resource.listening_address=';

test('a subscribed Listener missing from the config is warned about once per stream and name', (t) => {
  const cache = new ResourceCache();
  const set = cache.encodeSet(TypeUrl.Listener, [create(ListenerSchema, { name: `${SERVER}10.0.0.1:8080` })]);
  const { log, lines } = capture();
  const stream = new AbsentListeners();
  const names = new Set([`${SERVER}10.0.0.1:8080`, `${SERVER}10.0.0.1:9999`]);
  stream.check(log, 'echo-0.shop', names, set);
  stream.check(log, 'echo-0.shop', names, set);
  t.deepEqual(
    lines.map((l) => [l.level, l.proxy, l.name]),
    [[40, 'echo-0.shop', `${SERVER}10.0.0.1:9999`]],
  );
  // Another stream warns again; a name added later is warned about when it is missing.
  new AbsentListeners().check(log, 'echo-1.shop', names, set);
  stream.check(log, 'echo-0.shop', new Set([...names, 'other.shop:80']), set);
  t.deepEqual(
    lines.slice(1).map((l) => [l.proxy, l.name]),
    [
      ['echo-1.shop', `${SERVER}10.0.0.1:9999`],
      ['echo-0.shop', 'other.shop:80'],
    ],
  );
});

test('other types, wildcard-only subscriptions and present names are not warned about', (t) => {
  const cache = new ResourceCache();
  const clusters = cache.encodeSet(TypeUrl.Cluster, [create(ClusterSchema, { name: 'a' })]);
  const listeners = cache.encodeSet(TypeUrl.Listener, [create(ListenerSchema, { name: 'a' })]);
  const { log, lines } = capture();
  const stream = new AbsentListeners();
  stream.check(log, 'p', new Set(['b']), clusters);
  stream.check(log, 'p', new Set(), listeners);
  stream.check(log, 'p', new Set(['a']), listeners);
  t.deepEqual(lines, []);
});
