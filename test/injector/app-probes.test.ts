// Probes rewritten by the injector, served by the agent's health server (sidecar/health.ts +
// sidecar/app-probes.ts): the TRELLIS_APP_PROBES an injected pod carries is parsed by the agent, whose
// /app-health/... paths make the original request to a real application server on 127.0.0.1 and answer
// with its status; paths not in the map are 404 (no open proxy), an application that does not answer is 503.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { Registry } from 'prom-client';
import { silentLogger } from '../../control-plane/logger.js';
import { injectPod } from '../../injector/inject.js';
import { parseAppProbes } from '../../sidecar/app-probes.js';
import { HealthServer } from '../../sidecar/health.js';
import { request } from '../helpers/cluster.js';
import { LABELLED } from './pods.js';

interface Seen {
  path?: string;
  headers?: http.IncomingHttpHeaders;
}

async function appServer(t: { teardown(fn: () => unknown): void }, seen: Seen[]): Promise<number> {
  const server = http.createServer((req, res) => {
    seen.push({ path: req.url, headers: req.headers });
    if (req.url === '/hang') return; // never answers
    res.writeHead(req.url === '/ready' ? 200 : 500).end('app');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

test('the agent serves the probes the injector rewrote, and only those', async (t) => {
  const seen: Seen[] = [];
  const appPort = await appServer(t, seen);
  const pod = {
    metadata: { name: 'web', labels: { app: 'web' } },
    spec: {
      containers: [
        {
          name: 'web',
          ports: [{ containerPort: appPort, name: 'http' }],
          readinessProbe: { httpGet: { path: '/ready', port: 'http', httpHeaders: [{ name: 'X-Probe', value: 'r' }] } },
          livenessProbe: { httpGet: { path: '/broken', port: appPort }, timeoutSeconds: 2 },
          startupProbe: { httpGet: { path: '/hang', port: appPort }, timeoutSeconds: 1 },
        },
      ],
    },
  };
  const result = injectPod(pod, LABELLED, { mtls: { mode: 'STRICT' } });
  if (result.outcome !== 'injected') throw new Error(JSON.stringify(result));
  const env = result.pod.spec!.initContainers![1]!.env!.find((e) => e.name === 'TRELLIS_APP_PROBES')!;
  const probes = parseAppProbes(env.value);
  t.deepEqual([...probes.keys()], ['/app-health/web/readyz', '/app-health/web/livez', '/app-health/web/startupz']);

  const health = new HealthServer({
    notReadyReason: () => undefined,
    registry: new Registry(),
    logger: silentLogger,
    appProbes: probes,
  });
  const port = await health.listen('127.0.0.1', 0);
  t.teardown(() => health.close());
  const get = (path: string) => request(`http://127.0.0.1:${port}${path}`);

  const rewritten = result.pod.spec!.containers[0]!;
  const ready = await get(rewritten.readinessProbe!.httpGet!.path!);
  t.is(ready.status, 200);
  t.is(seen.at(-1)?.path, '/ready');
  t.is(seen.at(-1)?.headers?.['x-probe'], 'r', 'the probe headers are sent');
  t.is((await get('/app-health/web/livez')).status, 500, "the application's status is passed on");
  const hung = await get('/app-health/web/startupz');
  t.is(hung.status, 503);
  t.regex(hung.body, /no answer within 1s/);
  const before = seen.length;
  t.is((await get(`/app-health/web/other`)).status, 404);
  t.is((await get(`/app-health/x/readyz`)).status, 404);
  t.is(seen.length, before, 'unknown paths reach nothing');
  t.is((await get('/healthz/ready')).status, 200);
});

test('parseAppProbes names what is wrong', (t) => {
  t.is(parseAppProbes(undefined).size, 0);
  t.is(parseAppProbes('').size, 0);
  t.throws(() => parseAppProbes('[]'), { message: 'TRELLIS_APP_PROBES: must be a JSON object of path -> probe' });
  t.throws(() => parseAppProbes('{"/x": {}}'), {
    message: 'TRELLIS_APP_PROBES[/x]: the path must start with /app-health/',
  });
  t.throws(
    () => parseAppProbes('{"/app-health/a/readyz": {"port": 0, "path": "/", "scheme": "HTTP", "timeoutSeconds": 1}}'),
    {
      message: 'TRELLIS_APP_PROBES[/app-health/a/readyz].port: must be a port',
    },
  );
  t.throws(
    () => parseAppProbes('{"/app-health/a/readyz": {"port": 80, "path": "/", "scheme": "TCP", "timeoutSeconds": 1}}'),
    { message: 'TRELLIS_APP_PROBES[/app-health/a/readyz].scheme: must be HTTP or HTTPS' },
  );
});
