// lib/tracing.ts: when control-plane and agent tracing is on, that "off" loads nothing of OpenTelemetry, and
// the spans the CA service makes (ca.sign, with the agent's trace context as parent) through the narrow
// interface. The push spans are shown against the real Jaeger in test/e2e/tracing-jaeger.test.ts.
import anyTest, { type TestFn } from 'ava';
import fs from 'node:fs/promises';
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
import { CaClient as AgentCaClient } from '../../sidecar/ca-client.js';
import { startCaControlPlane, type CaControlPlane } from '../helpers/ca-control-plane.js';
import { loadedModules } from '../helpers/loaded-modules.js';
import { makeCsr } from '../ca/ca-helpers.js';

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
