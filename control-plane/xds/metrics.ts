// The xDS engine's Prometheus metrics. Each server owns its own (tests run several in one process): the
// control plane's are `trellis_xds_*` in its own registry (`/metrics` on the monitoring port); the agent's
// SDS server registers the same metrics as `trellis_agent_sds_*` in the agent's registry.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface XdsMetricsOptions {
  /** Also collect Node's process metrics (`trellis_process_*`, `trellis_nodejs_*`). */
  readonly processMetrics?: boolean;
  /** Prefix of every name; default `trellis_xds`. */
  readonly prefix?: string;
  /** The registry to register in; default a new one. */
  readonly registry?: Registry;
}

export class XdsMetrics {
  readonly registry: Registry;
  readonly connectedProxies: Gauge<'protocol'>;
  readonly pushes: Counter<'type'>;
  readonly pushDuration: Histogram<'type'>;
  readonly pushCycleDuration: Histogram;
  readonly initialConfig: Histogram<'proxy'>;
  readonly responseBytes: Counter<'type'>;
  readonly acks: Counter<'type'>;
  readonly nacks: Counter<'type'>;
  readonly staleRequests: Counter<'type'>;
  readonly oversizedResponses: Counter<'type'>;
  readonly authnRefusals: Counter<'reason'>;
  readonly generationErrors: Counter;
  readonly configsGenerated: Counter<'when'>;
  readonly coalescedResponses: Counter<'type'>;
  readonly queuedBytes: Gauge;
  readonly limitExceeded: Counter<'limit'>;
  readonly memoryPressure: Gauge;
  readonly shedStreams: Counter;

  constructor(options: XdsMetricsOptions = {}) {
    const prefix = options.prefix ?? 'trellis_xds';
    const registry = (this.registry = options.registry ?? new Registry());
    this.connectedProxies = new Gauge({
      name: `${prefix}_connected_proxies`,
      help: 'xDS streams open now, by protocol (sotw or delta).',
      labelNames: ['protocol'] as const,
      registers: [registry],
    });
    this.pushes = new Counter({
      name: `${prefix}_pushes_total`,
      help: 'Discovery responses sent, by type (CDS, EDS, LDS, RDS, SDS).',
      labelNames: ['type'] as const,
      registers: [registry],
    });
    this.pushDuration = new Histogram({
      name: `${prefix}_push_duration_seconds`,
      help: 'Time to build and write one discovery response, by type.',
      labelNames: ['type'] as const,
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
      registers: [registry],
    });
    this.pushCycleDuration = new Histogram({
      name: `${prefix}_push_cycle_duration_seconds`,
      help: 'Time from a debounced change to every affected stream having been written to.',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
    this.initialConfig = new Histogram({
      name: `${prefix}_initial_config_seconds`,
      help: "Time from a stream's first request to its first ACK of each of CDS, EDS, LDS and RDS: how long a connecting proxy waits for its whole first config, by proxy type (envoy, grpc). A stream that never ACKs all four is not observed.",
      labelNames: ['proxy'],
      buckets: [0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
    this.configsGenerated = new Counter({
      name: `${prefix}_configs_generated_total`,
      help: "Proxy configs generated (translated and encoded, or found shared with a proxy of the same shape), by when: ahead (during a change's debounce quiet time), push (by the push cycle: what was not ready when the debounce ended), connect (a new stream's first config).",
      labelNames: ['when'] as const,
      registers: [registry],
    });
    this.responseBytes = new Counter({
      name: `${prefix}_response_bytes_total`,
      help: 'Bytes of discovery responses sent, by type.',
      labelNames: ['type'] as const,
      registers: [registry],
    });
    this.acks = new Counter({
      name: `${prefix}_acks_total`,
      help: 'ACKs received, by type.',
      labelNames: ['type'] as const,
      registers: [registry],
    });
    this.nacks = new Counter({
      name: `${prefix}_nacks_total`,
      help: 'NACKs received (requests with error_detail), by type.',
      labelNames: ['type'] as const,
      registers: [registry],
    });
    this.staleRequests = new Counter({
      name: `${prefix}_stale_requests_total`,
      help: 'Requests ignored because their response_nonce was not the latest one sent, by type.',
      labelNames: ['type'] as const,
      registers: [registry],
    });
    this.oversizedResponses = new Counter({
      name: `${prefix}_oversized_responses_total`,
      help: 'Responses not sent because they exceeded the message-size cap, by type.',
      labelNames: ['type'] as const,
      registers: [registry],
    });
    this.authnRefusals = new Counter({
      name: `${prefix}_authn_refusals_total`,
      help: 'xDS streams refused on the TLS port, by reason: no-certificate and invalid-certificate (UNAUTHENTICATED), metadata-mismatch (PERMISSION_DENIED: the node claims another namespace, service account or trust domain than its certificate).',
      labelNames: ['reason'] as const,
      registers: [registry],
    });
    this.generationErrors = new Counter({
      name: `${prefix}_generation_errors_total`,
      help: 'Config generations that failed for a proxy (the proxy keeps its last config).',
      registers: [registry],
    });
    this.coalescedResponses = new Counter({
      name: `${prefix}_coalesced_responses_total`,
      help: 'Responses held back because the stream had not drained its earlier writes, by type; the stream gets the latest config once it drains.',
      labelNames: ['type'] as const,
      registers: [registry],
    });
    this.queuedBytes = new Gauge({
      name: `${prefix}_queued_bytes`,
      help: 'Bytes of responses written to xDS streams and not yet flushed to the network, all streams together.',
      registers: [registry],
    });
    this.limitExceeded = new Counter({
      name: `${prefix}_limit_exceeded_total`,
      help: 'xDS streams ended with RESOURCE_EXHAUSTED, by limit: requests-per-second, subscription-names, message-bytes.',
      labelNames: ['limit'] as const,
      registers: [registry],
    });
    this.memoryPressure = new Gauge({
      name: `${prefix}_memory_pressure`,
      help: '1 while the V8 heap is above the memory-pressure threshold (pushes paused, new streams refused), else 0.',
      registers: [registry],
    });
    this.shedStreams = new Counter({
      name: `${prefix}_shed_streams_total`,
      help: 'New xDS streams refused with UNAVAILABLE under memory pressure.',
      registers: [registry],
    });
    if (options.processMetrics) collectDefaultMetrics({ register: registry, prefix: 'trellis_' });
  }
}
