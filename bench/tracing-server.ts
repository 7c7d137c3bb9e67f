// The control plane under `npm run bench -- tracing`: bench/xds-mesh-server.ts after lib/tracing.ts's
// startTracing() (service.name trellisd), which reads the OTEL_* variables the benchmark sets per mode
// (none: tracing off, nothing of OpenTelemetry loaded).
import { startTracing } from '../lib/tracing.js';

const tracing = await startTracing({ serviceName: 'trellisd' });
process.stderr.write(`tracing ${tracing.enabled ? 'on' : 'off'}\n`);
await import('./xds-mesh-server.js');
