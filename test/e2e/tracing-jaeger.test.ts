// Tracing end to end with the real Jaeger (tools/peers/jaeger, v1.75.0 = v2.12.0): three proxyless gRPC
// services instrumented with @opentelemetry/instrumentation-grpc (_traced-grpc-app.ts: client → middle →
// backend, each its own process, routed by the control plane over xDS), and `trellis control-plane`
// exporting its own spans (lib/tracing.ts) because its --mesh-config names Jaeger's OTLP/gRPC receiver as the
// tracing collector (sampling 100%). Through Jaeger's query API the test finds
//   - one trace holding the client's call, middle's server span, middle's call to backend and backend's
//     server span, each the child of the one before (W3C traceparent in the gRPC metadata);
//   - for a VirtualService the test writes, the control plane's trace mesh.change → xds.push →
//     xds.push.proxy → xds.response for the proxy whose routes it changes, the response ending with an ACK
//     event (grpc-js-xds took it).
import anyTest, { type TestFn } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import readline from 'node:readline';
import { startJaeger, peersStatus, type Jaeger } from '../helpers/cluster.js';
import {
  backendManifests,
  freePorts,
  fqdn,
  MeshDir,
  namespaceManifest,
  serviceManifest,
  virtualServiceManifest,
} from '../helpers/mesh-e2e.js';
import { repoRoot } from '../helpers/peer-paths.js';
import { startControlPlaneProcess, startTrellis, type TrellisProcess } from '../helpers/process.js';
import { waitFor, within } from '../helpers/wait.js';

interface JaegerSpan {
  readonly traceID: string;
  readonly spanID: string;
  readonly operationName: string;
  readonly processID: string;
  readonly startTime: number;
  readonly references?: readonly { readonly refType: string; readonly spanID: string }[];
  readonly tags: readonly { readonly key: string; readonly value: unknown }[];
  readonly logs: readonly { readonly fields: readonly { readonly key: string; readonly value: unknown }[] }[];
}
interface JaegerTrace {
  readonly traceID: string;
  readonly spans: readonly JaegerSpan[];
  readonly processes: Readonly<Record<string, { readonly serviceName: string }>>;
}

const status = peersStatus({ jaeger: true });
const test = (status.ok ? anyTest.serial : anyTest.skip) as TestFn;
if (!status.ok) {
  if (process.env.CI === 'true') anyTest('Jaeger peer built', (t) => t.fail(status.message));
  else console.log(status.message);
}

const NS = 'shop';
const AGENT_TOKEN = 'token-of-middle-0-0123456789abcdef';
const apps: ChildProcess[] = [];
let jaeger: Jaeger | undefined;
let cp: (TrellisProcess & { xdsPort: number }) | undefined;
let dir: MeshDir | undefined;
let agent: TrellisProcess | undefined;

anyTest.after.always(async () => {
  for (const app of apps) if (app.exitCode === null) app.kill('SIGKILL');
  await cp?.stop();
  await jaeger?.stop();
  await agent?.stop();
  if (dir) await fs.rm(`${dir.dir}.state`, { recursive: true, force: true });
  await dir?.cleanup();
});

/** Starts _traced-grpc-app.ts; resolves with its first stdout JSON line (`listening` or `done`). */
function startApp(env: Record<string, string>): Promise<Record<string, unknown>> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/e2e/_traced-grpc-app.ts'], {
    cwd: repoRoot,
    env: { ...process.env, ...env, OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${jaeger!.otlpGrpcPort}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  apps.push(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const first = new Promise<Record<string, unknown>>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).once('line', (line) => {
      try {
        resolve(JSON.parse(line) as Record<string, unknown>);
      } catch {
        reject(new Error(`${env.SERVICE_NAME}: not JSON: ${line}`));
      }
    });
    child.once('exit', (code) => reject(new Error(`${env.SERVICE_NAME} exited with ${code}: ${stderr.slice(-3000)}`)));
  });
  return within(`${env.SERVICE_NAME} to start (stderr so far below)`, first, 90_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${stderr.slice(-3000)}`);
  });
}

async function traces(service: string, extra = ''): Promise<JaegerTrace[]> {
  const url = `${jaeger!.queryUrl}/api/traces?service=${encodeURIComponent(service)}&lookback=1h&limit=200${extra}`;
  const response = await fetch(url);
  if (!response.ok) return [];
  return ((await response.json()) as { data: JaegerTrace[] | null }).data ?? [];
}

const tag = (span: JaegerSpan, key: string): unknown => span.tags.find((t) => t.key === key)?.value;
const parentOf = (span: JaegerSpan): string | undefined =>
  span.references?.find((r) => r.refType === 'CHILD_OF')?.spanID;
const serviceOf = (trace: JaegerTrace, span: JaegerSpan): string => trace.processes[span.processID]?.serviceName ?? '';
const events = (span: JaegerSpan): string[] =>
  span.logs.flatMap((l) => l.fields.filter((f) => f.key === 'event').map((f) => String(f.value)));

test('one trace runs client → middle → backend, and the control plane traces the push of a change to its ACK', async (t) => {
  t.timeout(240_000);
  jaeger = await startJaeger();
  dir = await MeshDir.create();
  const meshConfig = `${dir.dir}.mesh-config.yaml`;
  await fs.writeFile(meshConfig, `tracing:\n  collector: 127.0.0.1:${jaeger.otlpGrpcPort}\n  samplingPercent: 100\n`);
  const [middlePort, backendPort] = await freePorts(2);
  const write = async (routing: readonly Record<string, unknown>[] = []): Promise<void> => {
    await dir!.write('mesh', [
      namespaceManifest(NS),
      serviceManifest('middle', NS),
      ...backendManifests('middle', NS, { pod: 'middle-0', port: middlePort! }),
      serviceManifest('backend', NS),
      ...backendManifests('backend', NS, { pod: 'backend-0', port: backendPort! }),
      ...routing,
    ]);
  };
  await write();
  t.log(`Jaeger ready in ${jaeger.readyMs} ms`);
  // With its CA (local mode: --state-dir, --tokens-file), for the agent's test below.
  await fs.writeFile(
    `${dir.dir}.tokens.yaml`,
    `- { token: ${AGENT_TOKEN}, namespace: ${NS}, serviceAccount: middle }\n`,
  );
  cp = await startControlPlaneProcess([
    '--config-dir',
    dir.dir,
    '--mesh-config',
    meshConfig,
    '--debounce-after',
    '20ms',
    '--state-dir',
    `${dir.dir}.state`,
    '--tokens-file',
    `${dir.dir}.tokens.yaml`,
  ]);
  await cp.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('control-plane tracing on'));
  const controlPlane = `127.0.0.1:${cp.xdsPort}`;
  const common = { CONTROL_PLANE: controlPlane, NAMESPACE: NS };

  await Promise.all([
    startApp({
      ...common,
      ROLE: 'server',
      SERVICE_NAME: 'backend',
      NODE_ID: 'backend-0.shop',
      PORT: String(backendPort),
    }),
    startApp({
      ...common,
      ROLE: 'server',
      SERVICE_NAME: 'middle',
      NODE_ID: 'middle-0.shop',
      PORT: String(middlePort),
      DOWNSTREAM: `${fqdn('backend', NS)}:8080`,
    }),
  ]);
  t.log('backend and middle serve');
  const done = await startApp({
    ...common,
    ROLE: 'client',
    SERVICE_NAME: 'client',
    NODE_ID: 'client-0.shop',
    TARGET: `${fqdn('middle', NS)}:8080`,
    CALLS: '3',
  });
  t.deepEqual(
    (done.replies as { path: string[] }[]).map((r) => r.path),
    [
      ['middle', 'backend'],
      ['middle', 'backend'],
      ['middle', 'backend'],
    ],
  );

  // One trace: client (CLIENT) → middle (SERVER) → middle (CLIENT) → backend (SERVER).
  const chain = await waitFor(
    'a trace with spans of client, middle and backend in Jaeger',
    async () => {
      for (const trace of await traces('client')) {
        const byId = new Map(trace.spans.map((s) => [s.spanID, s]));
        const backendServer = trace.spans.find(
          (s) => serviceOf(trace, s) === 'backend' && tag(s, 'span.kind') === 'server',
        );
        if (!backendServer) continue;
        const path: JaegerSpan[] = [backendServer];
        for (let p = parentOf(backendServer); p !== undefined; p = parentOf(byId.get(p)!)) {
          const parent = byId.get(p);
          if (!parent) break;
          path.unshift(parent);
        }
        if (path.length === 4) return { trace, path };
      }
      return undefined;
    },
    60_000,
  );
  t.deepEqual(
    chain.path.map((s) => `${serviceOf(chain.trace, s)}:${String(tag(s, 'span.kind'))}:${s.operationName}`),
    [
      'client:client:grpc.trellis.test.Echo/Echo',
      'middle:server:grpc.trellis.test.Echo/Echo',
      'middle:client:grpc.trellis.test.Echo/Echo',
      'backend:server:grpc.trellis.test.Echo/Echo',
    ],
  );

  t.log(`trace ${chain.trace.traceID}: client → middle → backend`);
  // A change the control plane pushes: a VirtualService for backend changes the routes of middle's client.
  const before = Date.now() * 1000;
  await write([
    virtualServiceManifest('backend', NS, {
      hosts: ['backend'],
      http: [{ timeout: '7s', route: [{ destination: { host: 'backend' } }] }],
    }),
  ]);
  let seen: JaegerTrace[] = [];
  const push = await waitFor(
    'the control plane’s trace of the VirtualService push, acknowledged by middle’s client',
    async () => {
      seen = await traces('trellisd', '&operation=mesh.change');
      for (const trace of seen) {
        const change = trace.spans.find((s) => s.operationName === 'mesh.change' && s.startTime >= before);
        if (!change || tag(change, 'trellis.mesh.virtual_services') !== 1) continue;
        const response = trace.spans.find(
          (s) =>
            s.operationName === 'xds.response' &&
            tag(s, 'trellis.proxy.id') === 'middle-0.shop-client' &&
            events(s).includes('ACK'),
        );
        if (response) return { trace, change, response };
      }
      return undefined;
    },
    60_000,
  ).catch((err: Error) => {
    const summary = seen.map((tr) =>
      tr.spans
        .map(
          (s) =>
            `${s.operationName}${s.startTime >= before ? '' : '(old)'}[${String(tag(s, 'trellis.proxy.id') ?? '')} ${events(s).join(',')}]`,
        )
        .join(' '),
    );
    throw new Error(`${err.message}; trellisd traces: ${JSON.stringify(summary, null, 1)}`);
  });
  const byId = new Map(push.trace.spans.map((s) => [s.spanID, s]));
  const lineage: string[] = [];
  for (let s: JaegerSpan | undefined = push.response; s; s = byId.get(parentOf(s) ?? ''))
    lineage.unshift(s.operationName);
  t.deepEqual(lineage, ['mesh.change', 'xds.push', 'xds.push.proxy', 'xds.response']);
  t.is(tag(push.response, 'trellis.xds.type'), 'RDS');
  t.true(Number(tag(push.response, 'trellis.xds.bytes')) > 0);
  t.truthy(tag(push.response, 'trellis.xds.version'));
  const proxySpan = byId.get(parentOf(push.response)!)!;
  t.is(tag(proxySpan, 'trellis.proxy.type'), 'grpc');
  // Whether its config was generated ahead, during the debounce (then the span covers only the sending).
  t.is(typeof tag(proxySpan, 'trellis.xds.prepared'), 'boolean');
  // The proxies whose config the VirtualService changed (middle's client: its routes to backend).
  const pushed = push.trace.spans
    .filter((s) => s.operationName === 'xds.push.proxy')
    .map((s) => String(tag(s, 'trellis.proxy.id')));
  t.log(`pushed to: ${pushed.sort().join(', ')}`);
  t.true(pushed.includes('middle-0.shop-client'));
});

test('the agent’s certificate request and the CA’s signing are one trace (trellis-agent → trellisd)', async (t) => {
  t.timeout(180_000);
  if (!cp || !jaeger || !dir) return t.fail('the control plane of the first test is not running');
  const listening = await cp.waitForLog((l) => l.msg === 'control plane listening');
  const securePort = Number(listening.secureXdsPort);
  t.true(securePort > 0);
  await fs.writeFile(`${dir.dir}.agent-token`, AGENT_TOKEN);
  // The agent's own tracing comes from OTEL_* alone (startTrellis passes this process's environment).
  const otel = {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${jaeger.otlpGrpcPort}`,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
  };
  const saved = { ...process.env };
  Object.assign(process.env, otel);
  try {
    agent = startTrellis([
      'agent',
      '--proxy-type',
      'grpc',
      '--control-plane',
      `127.0.0.1:${securePort}`,
      '--root-cert',
      `${dir.dir}.state/root-cert.pem`,
      '--token-file',
      `${dir.dir}.agent-token`,
      '--namespace',
      NS,
      '--service-account',
      'middle',
      '--pod-name',
      'middle-1',
      '--instance-ips',
      '127.0.0.1',
      '--output-dir',
      `${dir.dir}.state/agent`,
      '--health-host',
      '127.0.0.1',
      '--health-port',
      '0',
    ]);
  } finally {
    for (const key of Object.keys(otel)) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
  }
  await agent.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('agent tracing on'), 60_000);
  await agent.waitForLog((l) => l.msg === 'agent started', 60_000);
  // The SDK exports in batches (every 5 s) while the agent runs.

  const found = await waitFor(
    'a trace holding the agent’s agent.certificate_request and the CA’s ca.sign',
    async () => {
      for (const trace of await traces('trellis-agent', '&operation=agent.certificate_request')) {
        const request = trace.spans.find((s) => s.operationName === 'agent.certificate_request');
        const sign = trace.spans.find((s) => s.operationName === 'ca.sign');
        if (request && sign) return { trace, request, sign };
      }
      return undefined;
    },
    60_000,
  ).catch(async (err: Error) => {
    const services = await (await fetch(`${jaeger!.queryUrl}/api/services`)).text();
    const signs = (await traces('trellisd', '&operation=ca.sign')).length;
    throw new Error(
      `${err.message}; Jaeger services: ${services}; trellisd traces with ca.sign: ${signs}; agent log tail: ${JSON.stringify(agent?.logs.slice(-5))}`,
    );
  });
  t.is(serviceOf(found.trace, found.request), 'trellis-agent');
  t.is(serviceOf(found.trace, found.sign), 'trellisd');
  t.is(parentOf(found.sign), found.request.spanID, 'ca.sign is the child of the agent’s request');
  t.is(tag(found.sign, 'trellis.ca.decision'), 'issued');
  t.is(tag(found.sign, 'trellis.ca.identity'), `spiffe://cluster.local/ns/${NS}/sa/middle`);
  t.is(tag(found.request, 'trellis.ca.via'), 'token');
  t.is(await agent.stop(), 0, 'the agent stops cleanly (its tracing shut down)');
});
