// `trellis proxy-status` against a real control plane (`--static-resources`, a process) and a real
// grpc-js-xds client: every type the client subscribed is SYNCED with the version the control plane sent;
// after a Cluster grpc-js-xds refuses (lb_policy MAGLEV), CDS is NACKED with the client's own error.
import test from 'ava';
import { register } from '@grpc/grpc-js-xds';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EchoClient, startEchoServer, xdsBootstrap, xdsChannelOptions } from '../../examples/demo/echo.js';
import { fetchProxies } from '../../control-plane/debug-cli/debug-proxies.js';
import { statusRows, type ProxyStatusRow } from '../../control-plane/debug-cli/proxy-status.js';
import { assertServedResourcesValid, writeResourcesFile } from '../helpers/control-plane.js';
import { debugProxies } from '../helpers/debug.js';
import { eventually, startControlPlaneProcess } from '../helpers/process.js';
import { clientResources, TARGET, trellis } from './_debug-cli.js';

register();

const NODE = 'status-client.default';

test('proxy-status: SYNCED with the versions sent, then NACKED with the reason grpc-js-xds gave', async (t) => {
  const server = await startEchoServer('server-a');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-proxy-status-'));
  const file = path.join(dir, 'resources.yaml');
  await assertServedResourcesValid(clientResources(server.port));
  await writeResourcesFile(file, clientResources(server.port));
  const cp = await startControlPlaneProcess(['--static-resources', file, '--debounce-after', '20ms']);
  const client = new EchoClient(
    `xds:///${TARGET}`,
    undefined,
    xdsChannelOptions(xdsBootstrap(`127.0.0.1:${cp.xdsPort}`, NODE)),
  );
  t.teardown(async () => {
    client.close();
    await cp.stop();
    await server.close();
    await fs.rm(dir, { recursive: true, force: true });
  });
  const url = `http://127.0.0.1:${cp.monitoringPort}`;
  t.is((await client.echo('hello')).server, 'server-a');

  const row = async (): Promise<ProxyStatusRow | undefined> =>
    statusRows(await fetchProxies(url)).find((r) => r.proxy === NODE);
  // A call succeeding means the client has its config; its last ACK may still be on the way.
  const synced = async (): Promise<boolean> => {
    const r = await row();
    return r !== undefined && (['CDS', 'LDS', 'EDS', 'RDS'] as const).every((x) => r.types[x].state === 'SYNCED');
  };
  await eventually(synced, 10_000, 'CDS, LDS, EDS and RDS SYNCED');

  // The real CLI process, -o json: the versions are the ones /debug/proxies says were sent and ACKed.
  const json = await trellis(['proxy-status', '--control-plane', url, '-o', 'json']);
  t.is(json.code, 0, json.stderr);
  const rows = JSON.parse(json.stdout) as ProxyStatusRow[];
  const mine = rows.find((r) => r.proxy === NODE);
  t.truthy(mine, json.stdout);
  const stream = (await debugProxies(cp.monitoringPort)).find((p) => p.node?.id === NODE)!;
  for (const type of ['CDS', 'LDS', 'EDS', 'RDS'] as const) {
    const sent = stream.types.find((x) => x.type === type)!;
    t.is(mine!.types[type].state, 'SYNCED', type);
    t.is(mine!.types[type].version, sent.sentVersion, type);
    t.is(mine!.types[type].ackedVersion, sent.sentVersion, type);
    t.not(sent.sentVersion, '', type);
  }
  t.is(mine!.types.SDS.state, 'NOT SENT');
  t.is(mine!.proxyType, 'grpc');
  t.is(mine!.configHash, stream.configHash!);

  // The default output: a table whose row for the client says SYNCED with the short CDS version.
  const table = await trellis(['proxy-status', '--control-plane', url]);
  t.is(table.code, 0, table.stderr);
  const lines = table.stdout.split('\n');
  t.regex(lines[0]!, /^PROXY\s+TYPE\s+CDS\s+LDS\s+EDS\s+RDS\s+SDS\s+VERSION\s+LAST CHANGE$/);
  const line = lines.find((l) => l.startsWith(`${NODE} `));
  t.truthy(line, table.stdout);
  t.true(line!.includes(`SYNCED (${mine!.types.CDS.version.slice(0, 8)})`), line);
  t.true(line!.includes('NOT SENT'), line);

  // A Cluster grpc-js-xds refuses: an lb_policy it does not implement. The client NACKs CDS and keeps
  // its last accepted version; proxy-status says NACKED with the client's message.
  const ackedCds = mine!.types.CDS.version;
  await writeResourcesFile(file, clientResources(server.port, { lbPolicy: 'MAGLEV' }));
  await eventually(async () => (await row())?.types.CDS.state === 'NACKED', 10_000, 'CDS NACKED');
  const nacked = (await row())!;
  t.regex(nacked.types.CDS.error ?? '', /MAGLEV/);
  t.is(nacked.types.CDS.ackedVersion, ackedCds, 'the client keeps the version it ACKed');
  t.not(nacked.types.CDS.version, ackedCds, 'the rejected version is the one sent');
  for (const type of ['LDS', 'EDS', 'RDS'] as const) t.is(nacked.types[type].state, 'SYNCED', type);

  const after = await trellis(['proxy-status', '--control-plane', url]);
  t.is(after.code, 0, after.stderr);
  t.log(after.stdout);
  const nackLine = after.stdout.split('\n').find((l) => l.startsWith(`${NODE} `));
  t.true(nackLine?.includes(`NACKED (${nacked.types.CDS.version.slice(0, 8)})`), after.stdout);
  const reason = after.stdout.split('\n').find((l) => l.startsWith(`${NODE} CDS NACKED: `));
  t.truthy(reason, after.stdout);
  t.regex(reason!, /MAGLEV/);

  // Calls still work on the config the client kept.
  t.is((await client.echo('still')).server, 'server-a');
});

test('proxy-status: an unreachable control plane is one line on stderr and exit code 1', async (t) => {
  const run = await trellis(['proxy-status', '--control-plane', 'http://127.0.0.1:1']);
  t.is(run.code, 1);
  t.is(run.stdout, '');
  t.regex(
    run.stderr,
    /^trellis proxy-status: cannot reach the control plane at http:\/\/127\.0\.0\.1:1\/debug\/proxies: /,
  );
});

test('proxy-status: a wrong -o is a usage error (exit 2)', async (t) => {
  const run = await trellis(['proxy-status', '-o', 'xml']);
  t.is(run.code, 2);
  t.regex(run.stderr, /xml/);
});
