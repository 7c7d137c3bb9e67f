// The types of lib/tracing.ts, apart so that the SDK module (tracing-sdk.ts, imported lazily by tracing.ts)
// can name them without importing tracing.ts back.

/** Attribute values a span carries. */
export type TraceAttributes = Readonly<Record<string, string | number | boolean | undefined>>;

/** A span of the running tracer; the no-op span when tracing is off or the span was not sampled. */
export interface TraceSpan {
  /** False for the no-op span and for spans the sampler dropped: then attributes need not be computed. */
  readonly recording: boolean;
  setAttributes(attributes: TraceAttributes): void;
  addEvent(name: string, attributes?: TraceAttributes): void;
  /** Marks the span failed (status ERROR) with `message`. */
  fail(message: string): void;
  end(): void;
  /**
   * The headers that carry this span's context to another process (W3C `traceparent`, plus whatever
   * OTEL_PROPAGATORS adds, such as B3); empty for the no-op span.
   */
  headers(): Record<string, string>;
}

export interface SpanOptions {
  readonly attributes?: TraceAttributes;
  /** The parent span in this process. */
  readonly parent?: TraceSpan;
  /** The parent from another process: the headers it sent (traceparent, b3, ...). Used when no `parent`. */
  readonly remoteParent?: Readonly<Record<string, string | undefined>>;
  /** Other spans this one is caused by (a push cycle that folds several changes). */
  readonly links?: readonly TraceSpan[];
  readonly kind?: 'internal' | 'server' | 'client';
  /** When the work began (ms since the epoch), if before the span is started; default now. */
  readonly startTime?: number;
}

export interface Tracer {
  readonly enabled: boolean;
  startSpan(name: string, options?: SpanOptions): TraceSpan;
  /** Exports what has ended so far. */
  flush(): Promise<void>;
  /** Exports what is left and stops the SDK; tracer() is the no-op tracer afterwards. */
  shutdown(): Promise<void>;
}

/** What the SDK is started with: either the OTEL_* variables alone, or an explicit collector. */
export type TracingSettings =
  | { readonly source: 'env'; readonly serviceName: string }
  | {
      readonly source: 'collector';
      readonly serviceName: string;
      /** `http://host:port` of an OTLP/gRPC receiver. */
      readonly endpoint: string;
      /** 0..100, of root spans; children follow their parent's decision. */
      readonly samplingPercent: number;
    };
