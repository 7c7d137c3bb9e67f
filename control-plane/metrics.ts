// Prometheus metrics of the control plane's xDS server: the engine's own (control-plane/xds/metrics.ts), so
// the agent's SDS server, built on the same engine, can have them too.
export { XdsMetrics, type XdsMetricsOptions } from './xds/metrics.js';
