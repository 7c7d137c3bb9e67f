// xDS authentication on the TLS port (design.md §5.1), through real TLS and real gRPC: a stream is bound
// to the SPIFFE ID of its verified client certificate; the node may not claim another namespace, service
// account or trust domain; no (valid) certificate, no stream. The plaintext port is unchanged.
import anyTest, { type TestFn } from 'ava';
import * as grpc from '@grpc/grpc-js';
import { TypeUrl } from '../../control-plane/envoy/protos.js';
import type { StreamStatus } from '../../control-plane/xds/xds-stream.js';
import { deltaNamesOf, namesOf, RawAdsClient, testNode, type SotwRequestInit } from '../helpers/ads-client.js';
import { twoClusterConfig } from '../helpers/ads-env.js';
import { startCaControlPlane, type CaControlPlane, type LogLine } from '../helpers/ca-control-plane.js';
import { startTestControlPlane, type TestControlPlane } from '../helpers/control-plane.js';
import { waitFor, within } from '../helpers/wait.js';
import {
  CONTROL_PLANE_ID as SERVER_ID,
  foreignAuthority,
  obtainCert,
  signedBy,
  tlsCaClient,
  tlsCredentials,
  TLS_CHANNEL_OPTIONS,
  type WorkloadCert,
} from '../ca/ca-helpers.js';

interface Ctx {
  env: CaControlPlane<TestControlPlane>;
  logs: LogLine[];
  root: string;
  /** ns default, sa client, issued over the TLS port with a token. */
  cert: WorkloadCert;
  clients: RawAdsClient[];
}
const test = anyTest as TestFn<Ctx>;

const CLIENT_ID = 'spiffe://cluster.local/ns/default/sa/client';
const TOKEN = 'token-for-default-client-0123456789';
const MATCHING = { NAMESPACE: 'default', SERVICE_ACCOUNT: 'client', TRUST_DOMAIN: 'cluster.local' };

test.before(async (t) => {
  const env = await startCaControlPlane({
    prefix: 'trellis-xds-authn-',
    tokens: [{ token: TOKEN, namespace: 'default', serviceAccount: 'client' }],
    start: (options) => startTestControlPlane(twoClusterConfig, options),
  });
  const root = env.cp.ca!.authority.trustBundle();
  const ca = tlsCaClient(env.cp.secureTarget!, root);
  const cert = await obtainCert(ca, CLIENT_ID, { token: TOKEN }).finally(() => ca.close());
  t.context = { env, logs: env.logs, root, cert, clients: [] };
});

test.after.always(async (t) => {
  for (const c of t.context.clients ?? []) c.close();
  await t.context.env?.cleanup();
});

/** An ADS client on the TLS port presenting `cert` (none: no client certificate). */
function tlsAds(t: { context: Ctx }, cert: WorkloadCert | undefined): RawAdsClient {
  const client = new RawAdsClient(
    t.context.env.cp.secureTarget!,
    tlsCredentials(t.context.root, SERVER_ID, cert),
    TLS_CHANNEL_OPTIONS,
  );
  t.context.clients.push(client);
  return client;
}

function node(id: string, metadata: Record<string, string>): SotwRequestInit['node'] {
  return { id, cluster: 'test', metadata: { PROXY_TYPE: 'envoy', ...metadata } };
}

async function proxyStatus(t: { context: Ctx }, id: string): Promise<StreamStatus> {
  return waitFor(`/debug/proxies to list ${id}`, async () => {
    const all = (await (await t.context.env.cp.monitoring('/debug/proxies')).json()) as StreamStatus[];
    return all.find((s) => s.node?.id === id);
  });
}

async function refusals(t: { context: Ctx }, reason: string): Promise<number> {
  const text = await (await t.context.env.cp.monitoring('/metrics')).text();
  const m = new RegExp(`^trellis_xds_authn_refusals_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

test.serial('SotW over TLS with the certificate and matching metadata is served and bound to it', async (t) => {
  const s = tlsAds(t, t.context.cert).sotw();
  s.send({ node: node('p1.default', MATCHING), typeUrl: TypeUrl.Cluster });
  const res = await s.next();
  t.deepEqual(namesOf(res), ['a', 'b']);
  const status = await proxyStatus(t, 'p1.default');
  t.is(status.transport, 'tls');
  t.is(status.identity, CLIENT_ID);
  t.like(status.node, { namespace: 'default', serviceAccount: 'client', trustDomain: 'cluster.local' });
  t.truthy(
    t.context.logs.find((l) => l.msg === 'proxy connected' && l.proxy === 'p1.default' && l.identity === CLIENT_ID),
  );
  s.close();
});

test.serial(
  'Delta over TLS without identity metadata: the certificate fills namespace and service account',
  async (t) => {
    const s = tlsAds(t, t.context.cert).delta();
    s.send({ node: node('p2.anything', {}), typeUrl: TypeUrl.Cluster, resourceNamesSubscribe: ['*'] });
    const res = await s.next();
    t.deepEqual(deltaNamesOf(res).sort(), ['a', 'b']);
    const status = await proxyStatus(t, 'p2.anything');
    t.is(status.protocol, 'delta');
    t.is(status.identity, CLIENT_ID);
    t.like(status.node, { namespace: 'default', serviceAccount: 'client', trustDomain: 'cluster.local' });
    s.close();
  },
);

test.serial('metadata claiming another namespace, service account or trust domain → PERMISSION_DENIED', async (t) => {
  const before = await refusals(t, 'metadata-mismatch');
  const client = tlsAds(t, t.context.cert);
  const cases = [
    {
      stream: client.sotw(),
      metadata: { ...MATCHING, NAMESPACE: 'kube-system' },
      details: `node.metadata.NAMESPACE is "kube-system" but the client certificate says "default" (${CLIENT_ID})`,
    },
    {
      stream: client.delta(),
      metadata: { SERVICE_ACCOUNT: 'admin' },
      details: `node.metadata.SERVICE_ACCOUNT is "admin" but the client certificate says "client" (${CLIENT_ID})`,
    },
    {
      stream: client.sotw(),
      metadata: { ...MATCHING, TRUST_DOMAIN: 'other.example' },
      details: `node.metadata.TRUST_DOMAIN is "other.example" but the client certificate says "cluster.local" (${CLIENT_ID})`,
    },
  ];
  for (const [i, c] of cases.entries()) {
    c.stream.send({ node: node(`liar${i}.kube-system`, c.metadata), typeUrl: TypeUrl.Cluster });
    const end = await within('the refusal', c.stream.ended);
    t.is(end.code, grpc.status.PERMISSION_DENIED, c.details);
    t.is(end.details, c.details);
  }
  t.is(await refusals(t, 'metadata-mismatch'), before + 3);
  t.truthy(
    t.context.logs.find(
      (l) => l.msg === 'xds: stream refused' && l.reason === 'metadata-mismatch' && l.code === 'PERMISSION_DENIED',
    ),
  );
  const all = (await (await t.context.env.cp.monitoring('/debug/proxies')).json()) as StreamStatus[];
  t.false(all.some((s) => s.node?.id.startsWith('liar')));
  // The connection itself is fine: a truthful stream on it is served.
  const ok = client.sotw();
  ok.send({ node: node('p3.default', MATCHING), typeUrl: TypeUrl.Cluster });
  t.deepEqual(namesOf(await ok.next()), ['a', 'b']);
  ok.close();
});

test.serial('no client certificate on the TLS port → UNAUTHENTICATED, SotW and Delta', async (t) => {
  const before = await refusals(t, 'no-certificate');
  const client = tlsAds(t, undefined);
  for (const stream of [client.sotw(), client.delta()]) {
    stream.send({ node: testNode('anon.default'), typeUrl: TypeUrl.Cluster });
    const end = await within('the refusal', stream.ended);
    t.is(end.code, grpc.status.UNAUTHENTICATED);
    t.is(
      end.details,
      'xDS on the TLS port needs a client certificate (an SVID) that verifies against the mesh trust bundle',
    );
  }
  t.is(await refusals(t, 'no-certificate'), before + 2);
  t.truthy(t.context.logs.find((l) => l.msg === 'xds: stream refused' && l.reason === 'no-certificate'));
});

test.serial('a certificate of another CA, an expired one, or one of another trust domain is refused', async (t) => {
  const authority = t.context.env.cp.ca!.authority;
  const identity = { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'client' };
  const foreign = await signedBy(await foreignAuthority(), identity);
  const expired = await signedBy(authority, identity, { ttlSeconds: 60, now: new Date(Date.now() - 3600_000) });
  for (const cert of [foreign, expired]) {
    const s = tlsAds(t, cert).sotw();
    s.send({ node: node('bad.default', MATCHING), typeUrl: TypeUrl.Cluster });
    const end = await within('the refusal', s.ended);
    t.is(end.code, grpc.status.UNAUTHENTICATED);
  }
  const elsewhere = await signedBy(authority, { ...identity, trustDomain: 'elsewhere.example' });
  const s = tlsAds(t, elsewhere).delta();
  s.send({ node: node('bad.default', {}), typeUrl: TypeUrl.Cluster });
  const end = await within('the refusal', s.ended);
  t.is(end.code, grpc.status.UNAUTHENTICATED);
  t.is(
    end.details,
    "the client certificate's SPIFFE ID spiffe://elsewhere.example/ns/default/sa/client is not in trust domain cluster.local",
  );
  t.true((await refusals(t, 'invalid-certificate')) >= 1);
});

test.serial('the plaintext port is unauthenticated as before: whatever the node says', async (t) => {
  const client = new RawAdsClient(t.context.env.cp.target);
  t.context.clients.push(client);
  const s = client.sotw();
  s.send({
    node: testNode('plain.kube-system', { NAMESPACE: 'kube-system', SERVICE_ACCOUNT: 'admin' }),
    typeUrl: TypeUrl.Cluster,
  });
  t.deepEqual(namesOf(await s.next()), ['a', 'b']);
  const status = await proxyStatus(t, 'plain.kube-system');
  t.is(status.transport, 'plaintext');
  t.is(status.identity, undefined);
  t.like(status.node, { namespace: 'kube-system', serviceAccount: 'admin' });
  s.close();
});
