// lib/tracing.ts: when control-plane and agent tracing is on, that "off" loads nothing of OpenTelemetry, and
// the spans the CA service (ca.sign, with the agent's trace context as parent) and the admission webhooks
// (admission: verdict, injected or not) make through the narrow interface. The push spans are shown against the real Jaeger in test/e2e/tracing-jaeger.test.ts.
import anyTest, { type TestFn } from 'ava';
import fs from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import {
  noopTracer,
  setTracer,
  startTracing,
  tracer,
  tracingSettings,
  type SpanOptions,
  type TraceAttributes,
  type TraceSpan,
  type Tracer,
} from '../../lib/tracing.js';
import { WebhookServer } from '../../control-plane/webhook/server.js';
import { CaClient as AgentCaClient } from '../../sidecar/ca-client.js';
import { startCaControlPlane, type CaControlPlane } from '../helpers/ca-control-plane.js';
import { loadedModules } from '../helpers/loaded-modules.js';
import { makeCsr } from '../ca/ca-helpers.js';
import { servingCertificate } from '../helpers/serving-certificate.js';

const test = anyTest as TestFn;

test('tracing is on with an OTLP endpoint or exporter in OTEL_*, or a collector; OTEL_SDK_DISABLED wins', (t) => {
  const req = (env: NodeJS.ProcessEnv, collector?: string) =>
    tracingSettings({ serviceName: 'trellisd', env, ...(collector ? { collector, samplingPercent: 250 } : {}) });
  t.is(req({}), undefined);
  t.is(req({ OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'always_on' }), undefined, 'no exporter, no endpoint');
  t.deepEqual(req({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://j:4317' }), { source: 'env', serviceName: 'trellisd' });
  t.deepEqual(req({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://j:4318/v1/traces' }), {
    source: 'env',
    serviceName: 'trellisd',
  });
  t.deepEqual(req({ OTEL_TRACES_EXPORTER: 'console' }), { source: 'env', serviceName: 'trellisd' });
  t.is(req({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://j:4317' }), undefined);
  t.is(req({ OTEL_SDK_DISABLED: 'TRUE', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://j:4317' }, 'j:4317'), undefined);
  t.deepEqual(req({}, 'jaeger.observability:4317'), {
    source: 'collector',
    serviceName: 'trellisd',
    endpoint: 'http://jaeger.observability:4317',
    samplingPercent: 100,
  });
  t.deepEqual(req({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://j:4317' }, 'other:4317'), {
    source: 'env',
    serviceName: 'trellisd',
  });
});

test('off: startTracing loads no OpenTelemetry module and leaves the no-op tracer', async (t) => {
  t.is(await startTracing({ serviceName: 'trellisd', env: {} }), noopTracer);
  t.is(tracer(), noopTracer);
  const span = tracer().startSpan('x');
  t.false(span.recording);
  t.deepEqual(span.headers(), {});
});

test('a control plane with tracing off imports nothing of OpenTelemetry; with OTEL_* it does', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-tracing-loads-'));
  const args = [
    'control-plane/main.ts',
    'control-plane',
    '--config-dir',
    dir,
    '--xds-port',
    '0',
    '--monitoring-port',
    '0',
  ];
  try {
    const off = await loadedModules(args, { stopWhenOutput: 'control plane listening' });
    t.true(off.sawStopOutput, off.stderr);
    t.deepEqual(
      off.modules.filter((m) => m.includes('@opentelemetry/') || m === 'lib/tracing-sdk.ts'),
      [],
    );
    const saved = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = 'http://127.0.0.1:9'; // nothing listens: exports fail quietly
    try {
      const on = await loadedModules(args, { stopWhenOutput: 'control plane listening' });
      t.true(on.sawStopOutput, on.stderr);
      t.true(on.modules.includes('lib/tracing-sdk.ts'));
      t.true(on.modules.some((m) => m.startsWith('node_modules/@opentelemetry/sdk-node/')));
    } finally {
      if (saved === undefined) delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
      else process.env.OTEL_EXPORTER_OTLP_ENDPOINT = saved;
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------------
// The CA's spans, recorded through the interface the product calls.

interface Recorded {
  readonly name: string;
  readonly options: SpanOptions | undefined;
  readonly attributes: Record<string, unknown>;
  readonly failed: string | undefined;
  readonly ended: boolean;
  readonly id: string;
}

/** A Tracer that keeps every span; its context travels as `x-test-parent: <id>`. */
function recordingTracer(): { tracer: Tracer; spans: Recorded[] } {
  const spans: Recorded[] = [];
  let next = 0;
  const tracer: Tracer = {
    enabled: true,
    startSpan(name, options) {
      const record = {
        name,
        options,
        attributes: { ...options?.attributes } as Record<string, unknown>,
        failed: undefined as string | undefined,
        ended: false,
        id: `s${++next}`,
      };
      spans.push(record);
      const span: TraceSpan = {
        recording: true,
        setAttributes: (a: TraceAttributes) => Object.assign(record.attributes, a),
        addEvent: () => undefined,
        fail: (message) => (record.failed = message),
        end: () => (record.ended = true),
        headers: () => ({ 'x-test-parent': record.id }),
      };
      return span;
    },
    flush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
  };
  return { tracer, spans };
}

test.serial('ca.sign: identity and decision, child of the agent’s certificate request', async (t) => {
  const TOKEN = 'token-for-shop-cart-0123456789';
  let env: CaControlPlane | undefined;
  const { tracer: recording, spans } = recordingTracer();
  setTracer(recording);
  try {
    env = await startCaControlPlane({
      prefix: 'trellis-tracing-ca-',
      tokens: [{ token: TOKEN, namespace: 'shop', serviceAccount: 'cart' }],
    });
    const dir = env.dir;
    const tokenFile = path.join(dir, 'agent-token');
    await fs.writeFile(tokenFile, TOKEN);
    const agent = new AgentCaClient({
      address: `127.0.0.1:${env.cp.xdsPort}`,
      transport: { kind: 'plaintext' },
      tokenFile,
    });
    try {
      const csr = await makeCsr('spiffe://cluster.local/ns/shop/sa/cart');
      await agent.createCertificate({ csr, validitySeconds: 3600 });
      await fs.writeFile(tokenFile, 'not-a-known-token-0123456789');
      await t.throwsAsync(agent.createCertificate({ csr, validitySeconds: 3600 }));
    } finally {
      agent.close();
    }
  } finally {
    setTracer(noopTracer);
    await env?.cleanup();
  }
  const requests = spans.filter((s) => s.name === 'agent.certificate_request');
  const signs = spans.filter((s) => s.name === 'ca.sign');
  t.is(requests.length, 2);
  t.is(signs.length, 2);
  t.true([...requests, ...signs].every((s) => s.ended));
  t.like(signs[0]!.attributes, {
    'trellis.ca.decision': 'issued',
    'trellis.ca.identity': 'spiffe://cluster.local/ns/shop/sa/cart',
    'trellis.ca.caller': 'shop/cart',
  });
  t.is(signs[0]!.options?.remoteParent?.['x-test-parent'], requests[0]!.id, 'the agent’s span is the parent');
  t.like(signs[1]!.attributes, { 'trellis.ca.decision': 'unauthenticated' });
  t.truthy(signs[1]!.failed);
  t.truthy(requests[1]!.failed);
  t.like(requests[0]!.attributes, { 'trellis.ca.via': 'token', 'rpc.grpc.status_code': 0 });
});

function review(port: number, ca: string, path: string, request: Record<string, unknown>): Promise<unknown> {
  const text = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request });
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, path, method: 'POST', ca, headers: { 'content-type': 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

test.serial('admission: path, object, verdict, and on /inject whether a patch injected the sidecar', async (t) => {
  const { certPem, keyPem } = await servingCertificate();
  const server = new WebhookServer({
    cert: certPem,
    key: keyPem,
    handlers: {
      '/inject': (request) => ({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        response: {
          uid: request.uid,
          allowed: true,
          ...(request.name === 'web-0' ? { patchType: 'JSONPatch', patch: Buffer.from('[]').toString('base64') } : {}),
        } as { uid: string; allowed: boolean },
      }),
    },
  });
  const port = await server.listen('127.0.0.1', 0);
  const { tracer: recording, spans } = recordingTracer();
  setTracer(recording);
  try {
    await review(port, certPem, '/inject', {
      uid: 'a',
      operation: 'CREATE',
      kind: { kind: 'Pod' },
      namespace: 'shop',
      name: 'web-0',
    });
    await review(port, certPem, '/inject', {
      uid: 'b',
      operation: 'CREATE',
      kind: { kind: 'Pod' },
      namespace: 'shop',
      name: 'db-0',
    });
    await review(port, certPem, '/validate', {
      uid: 'c',
      operation: 'CREATE',
      kind: { group: 'networking.trellis.dev', version: 'v1alpha1', kind: 'VirtualService' },
      namespace: 'shop',
      name: 'bad',
      object: {
        apiVersion: 'networking.trellis.dev/v1alpha1',
        kind: 'VirtualService',
        metadata: { name: 'bad', namespace: 'shop' },
        spec: { hosts: [], http: 'not a list' },
      },
    });
  } finally {
    setTracer(noopTracer);
    await server.close();
  }
  t.is(spans.length, 3);
  t.true(spans.every((s) => s.name === 'admission' && s.ended && s.options?.kind === 'server'));
  t.like(spans[0]!.attributes, {
    'trellis.admission.path': '/inject',
    'trellis.admission.object': 'shop/web-0',
    'trellis.admission.verdict': 'allowed',
    'trellis.admission.injected': true,
  });
  t.like(spans[1]!.attributes, { 'trellis.admission.object': 'shop/db-0', 'trellis.admission.injected': false });
  t.like(spans[2]!.attributes, {
    'trellis.admission.path': '/validate',
    'trellis.admission.kind': 'VirtualService',
    'trellis.admission.verdict': 'denied',
  });
  t.false('trellis.admission.injected' in spans[2]!.attributes);
  t.regex(String(spans[2]!.attributes['trellis.admission.message']), /VirtualService shop\/bad/);
});
