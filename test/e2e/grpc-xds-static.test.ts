// The real xDS client: a grpc-js channel on an xds:/// target (with @grpc/grpc-js-xds) reaches a grpc-js
// server through resources served by `trellis control-plane --static-resources`, and an edit of the file
// moves live calls to another server without restarting anything.
import test from 'ava';
import { register } from '@grpc/grpc-js-xds';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EchoClient, startEchoServer, xdsBootstrap, xdsChannelOptions } from '../../examples/demo/echo.js';
import {
  apiListener,
  assertServedResourcesValid,
  edsCluster,
  loadAssignment,
  routeConfig,
  writeResourcesFile,
  type JsonResource,
} from '../helpers/control-plane.js';
import { eventually, startControlPlaneProcess } from '../helpers/process.js';

register();

const host = 'echo.default.svc.cluster.local';
const target = `${host}:8080`;

function config(cluster: string, ports: Readonly<Record<string, number>>): JsonResource[] {
  return [
    apiListener(target, '8080'),
    routeConfig('8080', [target, host], { [`outbound|8080||${cluster}`]: 1 }),
    ...Object.keys(ports).map((c) => edsCluster(`outbound|8080||${c}`)),
    ...Object.entries(ports).map(([c, port]) => loadAssignment(`outbound|8080||${c}`, [port])),
  ];
}

test('a grpc-js xDS client follows live edits of --static-resources', async (t) => {
  const a = await startEchoServer('server-a');
  const b = await startEchoServer('server-b');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-e2e-'));
  const file = path.join(dir, 'resources.yaml');
  await assertServedResourcesValid(config('a', { a: a.port, b: b.port }));
  await writeResourcesFile(file, config('a', { a: a.port, b: b.port }));
  const cp = await startControlPlaneProcess(['--static-resources', file, '--debounce-after', '20ms']);
  const client = new EchoClient(
    `xds:///${target}`,
    undefined,
    xdsChannelOptions(xdsBootstrap(`127.0.0.1:${cp.xdsPort}`, 'client-1.default')),
  );
  t.teardown(async () => {
    client.close();
    await cp.stop();
    await Promise.all([a.close(), b.close()]);
    await fs.rm(dir, { recursive: true, force: true });
  });

  for (let i = 0; i < 5; i++) t.is((await client.echo(`hello ${i}`)).server, 'server-a');

  // Route to cluster b: calls move to server-b within a generous bound, with no restart.
  const editedAt = Date.now();
  await writeResourcesFile(file, config('b', { a: a.port, b: b.port }));
  await eventually(async () => (await client.echo('moving')).server === 'server-b', 10_000, 'calls reach server-b');
  t.log(`calls moved to server-b ${Date.now() - editedAt} ms after the edit`);
  for (let i = 0; i < 5; i++) t.is((await client.echo(`after ${i}`)).server, 'server-b');

  // Moving the endpoint (EDS) of the routed cluster works the same way.
  await writeResourcesFile(file, config('b', { a: a.port, b: a.port }));
  await eventually(
    async () => (await client.echo('endpoint')).server === 'server-a',
    10_000,
    'calls reach server-a again',
  );

  // The client's subscriptions were all ACKed (seen by the control plane).
  const proxies = (await (await fetch(`http://127.0.0.1:${cp.monitoringPort}/debug/proxies`)).json()) as Array<{
    node: { id: string; proxyType: string };
    types: Array<{ type: string; ackedVersion: string; sentVersion: string; lastNack?: unknown }>;
  }>;
  const proxy = proxies.find((p) => p.node.id === 'client-1.default');
  t.truthy(proxy);
  t.is(proxy!.node.proxyType, 'grpc');
  t.deepEqual(
    proxy!.types.map((x) => x.type),
    ['CDS', 'EDS', 'LDS', 'RDS'],
  );
  for (const type of proxy!.types) {
    t.is(type.lastNack, undefined, `${type.type} was NACKed`);
    t.is(type.ackedVersion, type.sentVersion, `${type.type} ACKed the last version sent`);
  }
});
