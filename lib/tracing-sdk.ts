// The OpenTelemetry SDK behind lib/tracing.ts, imported only when tracing is on (tracing.ts startTracing):
// NodeSDK with no instrumentations (the spans are the ones Trellis makes), `service.name` from
// OTEL_SERVICE_NAME or the caller (`trellisd`, `trellis-agent`), and
//   - `env`: everything else from the OTEL_* variables, as the SDK reads them (OTEL_TRACES_EXPORTER,
//     OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_TRACES_SAMPLER, OTEL_PROPAGATORS, ...);
//   - `collector`: the OTLP/gRPC exporter to that endpoint, parent-based ratio sampling of root spans.
// Propagation is the SDK's: W3C `traceparent` (and baggage) unless OTEL_PROPAGATORS names others, e.g.
// `tracecontext,baggage,b3` to read and write B3 too.
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Link,
  type Span,
} from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace';
import type { SpanOptions, TraceAttributes, TraceSpan, Tracer, TracingSettings } from './trace-types.js';

const KINDS = { internal: SpanKind.INTERNAL, server: SpanKind.SERVER, client: SpanKind.CLIENT } as const;

function clean(attributes: TraceAttributes | undefined): Record<string, string | number | boolean> | undefined {
  if (!attributes) return undefined;
  const out: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(attributes)) if (value !== undefined) out[key] = value;
  return out;
}

class SdkSpan implements TraceSpan {
  constructor(readonly span: Span) {}

  get recording(): boolean {
    return this.span.isRecording();
  }

  setAttributes(attributes: TraceAttributes): void {
    this.span.setAttributes(clean(attributes)!);
  }

  addEvent(name: string, attributes?: TraceAttributes): void {
    this.span.addEvent(name, clean(attributes));
  }

  fail(message: string): void {
    this.span.setStatus({ code: SpanStatusCode.ERROR, message });
  }

  end(): void {
    this.span.end();
  }

  headers(): Record<string, string> {
    const carrier: Record<string, string> = {};
    propagation.inject(trace.setSpan(ROOT_CONTEXT, this.span), carrier);
    return carrier;
  }
}

function parentContext(options: SpanOptions | undefined): Context {
  if (options?.parent instanceof SdkSpan) return trace.setSpan(ROOT_CONTEXT, options.parent.span);
  if (options?.remoteParent) return propagation.extract(ROOT_CONTEXT, options.remoteParent);
  return ROOT_CONTEXT;
}

/** Starts NodeSDK for `settings`; `onShutdown` runs when the returned tracer is shut down. */
export function startSdkTracer(settings: TracingSettings, env: NodeJS.ProcessEnv, onShutdown: () => void): Tracer {
  const serviceName = env.OTEL_SERVICE_NAME?.trim() ? undefined : settings.serviceName;
  const sdk = new NodeSDK({
    ...(serviceName ? { serviceName } : {}),
    instrumentations: [],
    ...(settings.source === 'collector'
      ? {
          traceExporter: new OTLPTraceExporter({ url: settings.endpoint }),
          sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(settings.samplingPercent / 100) }),
        }
      : {}),
  });
  sdk.start();
  const otel = trace.getTracer('trellis');
  let stopped = false;
  return {
    enabled: true,
    startSpan(name: string, options?: SpanOptions): TraceSpan {
      const links: Link[] = [];
      for (const l of options?.links ?? []) if (l instanceof SdkSpan) links.push({ context: l.span.spanContext() });
      const span = otel.startSpan(
        name,
        {
          kind: KINDS[options?.kind ?? 'internal'],
          ...(options?.attributes ? { attributes: clean(options.attributes) } : {}),
          ...(links.length > 0 ? { links } : {}),
          ...(options?.startTime !== undefined ? { startTime: options.startTime } : {}),
        },
        parentContext(options),
      );
      return new SdkSpan(span);
    },
    async flush(): Promise<void> {
      const provider = trace.getTracerProvider() as { forceFlush?: () => Promise<void> };
      // The global provider is a proxy; its delegate is the SDK's provider.
      const delegate = (provider as { getDelegate?: () => { forceFlush?: () => Promise<void> } }).getDelegate?.();
      // An export that fails (collector away) is the SDK's to report (diag); it never fails the caller.
      await (delegate?.forceFlush ?? provider.forceFlush)?.call(delegate ?? provider).catch(() => undefined);
    },
    async shutdown(): Promise<void> {
      if (stopped) return;
      stopped = true;
      onShutdown();
      await sdk.shutdown().catch(() => undefined); // the last export failed: nothing left to do
      // NodeSDK.shutdown() leaves the globals registered: the next startTracing() registers afresh.
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}
