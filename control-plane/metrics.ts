// Prometheus metrics of the control plane. Each control plane owns its own registry (tests run several in
// one process); `/metrics` on the monitoring port serves it.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class XdsMetrics {
  readonly registry = new Registry();
  readonly connectedProxies = new Gauge({
    name: 'trellis_xds_connected_proxies',
    help: 'ADS streams open now, by protocol (sotw or delta).',
    labelNames: ['protocol'] as const,
    registers: [this.registry],
  });
  readonly pushes = new Counter({
    name: 'trellis_xds_pushes_total',
    help: 'Discovery responses sent, by type (CDS, EDS, LDS, RDS, SDS).',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly pushDuration = new Histogram({
    name: 'trellis_xds_push_duration_seconds',
    help: 'Time to build and write one discovery response, by type.',
    labelNames: ['type'] as const,
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
    registers: [this.registry],
  });
  readonly pushCycleDuration = new Histogram({
    name: 'trellis_xds_push_cycle_duration_seconds',
    help: 'Time from a debounced change to every affected stream having been written to.',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly responseBytes = new Counter({
    name: 'trellis_xds_response_bytes_total',
    help: 'Bytes of discovery responses sent, by type.',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly acks = new Counter({
    name: 'trellis_xds_acks_total',
    help: 'ACKs received, by type.',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly nacks = new Counter({
    name: 'trellis_xds_nacks_total',
    help: 'NACKs received (requests with error_detail), by type.',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly staleRequests = new Counter({
    name: 'trellis_xds_stale_requests_total',
    help: 'Requests ignored because their response_nonce was not the latest one sent, by type.',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly oversizedResponses = new Counter({
    name: 'trellis_xds_oversized_responses_total',
    help: 'Responses not sent because they exceeded the message-size cap, by type.',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly authnRefusals = new Counter({
    name: 'trellis_xds_authn_refusals_total',
    help: 'ADS streams refused on the TLS port, by reason: no-certificate and invalid-certificate (UNAUTHENTICATED), metadata-mismatch (PERMISSION_DENIED: the node claims another namespace, service account or trust domain than its certificate).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly generationErrors = new Counter({
    name: 'trellis_xds_generation_errors_total',
    help: 'Config generations that failed for a proxy (the proxy keeps its last config).',
    registers: [this.registry],
  });
  readonly coalescedResponses = new Counter({
    name: 'trellis_xds_coalesced_responses_total',
    help: 'Responses held back because the stream had not drained its earlier writes, by type; the stream gets the latest config once it drains.',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly queuedBytes = new Gauge({
    name: 'trellis_xds_queued_bytes',
    help: 'Bytes of responses written to ADS streams and not yet flushed to the network, all streams together.',
    registers: [this.registry],
  });
  readonly limitExceeded = new Counter({
    name: 'trellis_xds_limit_exceeded_total',
    help: 'ADS streams ended with RESOURCE_EXHAUSTED, by limit: requests-per-second, subscription-names, message-bytes.',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });
  readonly memoryPressure = new Gauge({
    name: 'trellis_xds_memory_pressure',
    help: '1 while the V8 heap is above the memory-pressure threshold (pushes paused, new streams refused), else 0.',
    registers: [this.registry],
  });
  readonly shedStreams = new Counter({
    name: 'trellis_xds_shed_streams_total',
    help: 'New ADS streams refused with UNAVAILABLE under memory pressure.',
    registers: [this.registry],
  });

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'trellis_' });
  }
}
