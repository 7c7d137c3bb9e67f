// The VirtualService route fields of issue 15 end to end: `trellis control-plane --config-dir` (a real
// process) and real @grpc/grpc-js-xds clients and xDS-enabled servers. A root VirtualService delegates the
// Echo service's path to a delegate (no hosts); the proxyless client follows the delegate's routes, and an
// edit of the delegate alone moves live traffic. The same root carries what grpc-js cannot take —
// mirrors, a directResponse, a redirect with prefixRewrite/derivePort, a retry backoff — and the client
// ACKs everything: the fixed-answer routes are left out for it and mirrors are not sent (its v1 server sees
// only the calls routed to it).
import test from 'ava';
import { register } from '@grpc/grpc-js-xds';
import {
  assertNoNacks,
  deployService,
  destinationRuleManifest,
  tally,
  virtualServiceManifest,
  useMeshControlPlane,
  type Manifest,
} from '../helpers/mesh-e2e.js';
import { waitFor } from '../helpers/wait.js';

register();

const NS = 'fields';
const SVC = 'reviews';
const ECHO_PREFIX = '/trellis.demo.Echo/';

const mesh = useMeshControlPlane(test);

const subsets = (): Manifest =>
  destinationRuleManifest(SVC, NS, {
    host: SVC,
    subsets: [
      { name: 'v1', labels: { version: 'v1' } },
      { name: 'v2', labels: { version: 'v2' } },
    ],
  });

/** The root: fixed answers first (dropped for proxyless), then the Echo path to the delegate, else v1. */
const root = (): Manifest =>
  virtualServiceManifest(SVC, NS, {
    hosts: [SVC],
    http: [
      {
        name: 'maintenance',
        match: [{ headers: { 'x-maintenance': { exact: 'on' } } }],
        directResponse: { status: 503, body: { string: 'down' } },
      },
      {
        name: 'moved',
        match: [{ uri: { prefix: '/old.Echo/' } }],
        redirect: { prefixRewrite: ECHO_PREFIX, derivePort: 'FROM_REQUEST_PORT' },
      },
      {
        name: 'echo',
        match: [{ uri: { prefix: ECHO_PREFIX } }],
        delegate: { name: 'reviews-echo' },
        // Inherited by every delegate route: copies of every call to v1 (Envoy would send them), a backoff.
        mirrors: [{ destination: { host: SVC, subset: 'v1' } }, { destination: { host: SVC, subset: 'v2' } }],
        retries: { attempts: 2, retryOn: 'unavailable', backoff: '50ms', retryIgnorePreviousHosts: false },
      },
      { name: 'rest', route: [{ destination: { host: SVC, subset: 'v1' } }] },
    ],
  });

/** The delegate (no hosts): beta callers to v1, everyone else to `otherwise`. */
const delegate = (otherwise: 'v1' | 'v2'): Manifest =>
  virtualServiceManifest('reviews-echo', NS, {
    http: [
      {
        name: 'beta',
        match: [{ headers: { 'x-stage': { exact: 'beta' } } }],
        route: [{ destination: { host: SVC, subset: 'v1' } }],
      },
      { name: 'main', route: [{ destination: { host: SVC, subset: otherwise } }] },
    ],
  });

test('a proxyless client follows a delegated route; mirrors, directResponse and redirect cause no NACK', async (t) => {
  const svc = await deployService({
    dir: mesh.dir,
    controlPlane: mesh.controlPlane,
    service: SVC,
    namespace: NS,
    backends: [
      { pod: `${SVC}-v1`, labels: { version: 'v1' } },
      { pod: `${SVC}-v2`, labels: { version: 'v2' } },
    ],
    routing: [subsets(), root(), delegate('v2')],
  });
  t.teardown(() => svc.close());
  const client = await svc.client();
  const v1 = svc.servers.get(`${SVC}-v1`)!;

  // Without delegation the root's last route would send these to v1: the delegate's `main` sends them to v2.
  const plain = await client.calls(60, { concurrency: 10 });
  t.deepEqual(tally(plain), { [`${SVC}-v2`]: 60 });
  const beta = await client.calls(30, { concurrency: 10, metadata: { 'x-stage': 'beta' } });
  t.deepEqual(tally(beta), { [`${SVC}-v1`]: 30 });
  // grpc-js does not mirror: v1 saw the 30 beta calls and no copy of the 60 calls v2 answered.
  t.is(v1.served(), 30);
  // The directResponse route is not in the proxyless config (grpc-js takes only forwarding routes): the
  // call goes on to the delegated route instead of failing.
  const maintenance = await client.calls(10, { concurrency: 5, metadata: { 'x-maintenance': 'on' } });
  t.deepEqual(tally(maintenance), { [`${SVC}-v2`]: 10 });

  // Edit only the delegate: the root's merged routes change, and the running client follows.
  await svc.write([`${SVC}-v1`, `${SVC}-v2`], [subsets(), root(), delegate('v1')]);
  const moved = await waitFor(
    'calls to move to v1 after the delegate edit',
    async () => {
      const window = await client.calls(20, { concurrency: 10 });
      return tally(window)[`${SVC}-v1`] === 20 ? window : undefined;
    },
    20_000,
  );
  t.is(moved.length, 20);
  await assertNoNacks(t, mesh.cp.monitoringPort, svc.owns);
});
