// Assembles one control plane: a snapshot source, a generator, the push controller, the ADS server and
// the monitoring server. `trellis control-plane` (cli.ts) is a thin layer over startControlPlane().
import type { Logger } from './logger.js';
import { XdsMetrics } from './metrics.js';
import { MonitoringServer } from './monitoring.js';
import { StaticResourcesSource, staticGenerator, type StaticSnapshot } from './static-resources.js';
import { AdsServer } from './xds/ads-server.js';
import type { Generator, SnapshotSource } from './xds/generator.js';
import { PushController } from './xds/push-controller.js';

export interface ControlPlaneOptions {
  readonly logger: Logger;
  /** Address every port binds; 127.0.0.1 by default (a Deployment sets 0.0.0.0). */
  readonly host?: string;
  /** Plaintext xDS (15010); 0 picks a free port. */
  readonly xdsPort?: number;
  /** /healthz, /readyz, /metrics, /debug (15014); 0 picks a free port. */
  readonly monitoringPort?: number;
  /** Serve the raw Envoy resources of this YAML/JSON file (watched). */
  readonly staticResources?: string;
  readonly debounceQuietMs?: number;
  readonly debounceMaxMs?: number;
  readonly maxMessageBytes?: number;
  readonly keepaliveMs?: number;
  readonly maxConnectionAgeMs?: number;
  /** How long streams may continue after the max-age GOAWAY; default 10 s. */
  readonly maxConnectionAgeGraceMs?: number;
  readonly processMetrics?: boolean;
}

export interface RunningControlPlane {
  readonly xdsPort: number;
  readonly monitoringPort: number;
  readonly ads: AdsServer;
  readonly controller: PushController<unknown>;
  readonly metrics: XdsMetrics;
  close(): Promise<void>;
}

/** A source with nothing in it: the control plane runs and serves empty config. */
class EmptySource implements SnapshotSource<StaticSnapshot> {
  current(): StaticSnapshot {
    return { generation: 0, resources: new Map(), errors: [] };
  }
  onChange(): () => void {
    return () => undefined;
  }
  ready(): boolean {
    return true;
  }
}

export async function startControlPlane(options: ControlPlaneOptions): Promise<RunningControlPlane> {
  const logger = options.logger;
  const host = options.host ?? '127.0.0.1';
  const metrics = new XdsMetrics({ processMetrics: options.processMetrics ?? false });
  const staticSource = options.staticResources ? new StaticResourcesSource(options.staticResources, logger) : undefined;
  await staticSource?.start();
  const source: SnapshotSource<StaticSnapshot> = staticSource ?? new EmptySource();
  const generator: Generator<StaticSnapshot> = staticGenerator;
  const controller = new PushController(source, generator, {
    debounce: { quietMs: options.debounceQuietMs ?? 100, maxMs: options.debounceMaxMs ?? 10_000 },
    metrics,
    logger,
  });
  controller.start();
  const erased = controller as unknown as PushController<unknown>;
  const ads = new AdsServer(erased, {
    metrics,
    logger,
    maxMessageBytes: options.maxMessageBytes,
    keepaliveMs: options.keepaliveMs,
    maxConnectionAgeMs: options.maxConnectionAgeMs,
    maxConnectionAgeGraceMs: options.maxConnectionAgeGraceMs,
  });
  const xdsPort = await ads.listen(host, options.xdsPort ?? 15010);
  let listening = true;
  const monitoring = new MonitoringServer({ metrics, ads, controller: erased, logger, ready: () => listening && controller.ready() });
  const monitoringPort = await monitoring.listen(host, options.monitoringPort ?? 15014);
  logger.info({ host, xdsPort, monitoringPort, staticResources: options.staticResources }, 'control plane listening');
  return {
    xdsPort,
    monitoringPort,
    ads,
    controller: erased,
    metrics,
    async close() {
      listening = false;
      controller.stop();
      await ads.close();
      await monitoring.close();
      await staticSource?.stop();
      logger.info('control plane stopped');
    },
  };
}
