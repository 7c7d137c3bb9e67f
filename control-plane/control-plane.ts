// Assembles one control plane: a snapshot source, a generator, the push controller, the ADS server and
// the monitoring server. `trellis control-plane` (cli.ts) is a thin layer over startControlPlane().
// What only some modes need is imported when the mode starts (idle RSS, issue 14): the CA with `ca`, the
// Kubernetes client, sources and status writer in Kubernetes mode, the translator, validator and file source
// in local mode, the static-resources source otherwise, and the webhooks when they are served.
import { certificateServiceDefinition } from '../api/services.js';
import type { CaOptions, StartedCa } from './ca/setup.js';
import type { AuthzChecker } from './authz/checker.js';
import type { MeshInspector } from './inspect/inspector.js';
import type { Logger } from './logger.js';
import { XdsMetrics } from './metrics.js';
import { registerBuildInfo, registerConfigObjects } from './config-metrics.js';
import { convergenceMetrics } from './xds/convergence.js';
import type { ProgrammedTracker } from './xds/programmed.js';
import { MonitoringServer } from './monitoring.js';
import type { StaticSnapshot } from './static-resources.js';
import type { FileSource } from './sources/file-source.js';
import type { MeshConfig } from './translate/context.js';
import * as grpc from '@grpc/grpc-js';
import type { KubeConfig } from '@kubernetes/client-node';
import type { KubeSource } from './sources/kube-source.js';
import type { KubeModeMetrics } from './sources/metrics.js';
import type { ExtraCondition, StatusWriter } from './sources/status-writer.js';
import type { ProxyInfo } from './xds/node.js';
import type { CaBundleWriter } from './webhook/ca-bundle.js';
import type { WebhookServer } from './webhook/server.js';
import { AdsServer } from './xds/ads-server.js';
import type { StreamLimits } from './xds/limits.js';
import { MemoryPressure } from './xds/memory-pressure.js';
import type { Generator, SnapshotSource } from './xds/generator.js';
import { PushController } from './xds/push-controller.js';

export interface ControlPlaneOptions {
  readonly logger: Logger;
  /** Address every port binds; 127.0.0.1 by default (a Deployment sets 0.0.0.0). */
  readonly host?: string;
  /**
   * Plaintext xDS (15010); 0 picks a free port. Unauthenticated, for local mode, where the CA is served on
   * it too. In Kubernetes mode (`kube`) it is off unless given, and the CA is never served on it: a CA call
   * there gets FAILED_PRECONDITION (ca/plaintext-guard.ts); clients use the TLS port.
   */
  readonly xdsPort?: number;
  /**
   * xDS and CA over TLS (15012), on whenever `ca` is given; 0 picks a free port. Default 15012, or 0
   * when `xdsPort` is 0 (so tests and embedders that ask for free ports get free ports throughout).
   * The control plane presents its own SVID (`spiffe://<td>/ns/trellis-system/sa/trellisd`); every ADS
   * stream must present a client SVID and is bound to it (control-plane/ca/README.md).
   */
  readonly secureXdsPort?: number;
  /** /healthz, /readyz, /metrics, /debug (15014); 0 picks a free port. */
  readonly monitoringPort?: number;
  /** Serve the raw Envoy resources of this YAML/JSON file (watched). */
  readonly staticResources?: string;
  /** Local mode: translate the mesh in this directory of Kubernetes YAML (FileSource, watched). */
  readonly configDir?: string;
  /**
   * Kubernetes mode: the mesh from the API server (KubeSource; /readyz waits for its first full sync),
   * and the `Accepted` status of every VirtualService and DestinationRule written back (unless
   * `writeStatus: false`). Excludes `configDir` and `staticResources`.
   */
  readonly kube?: { readonly kubeConfig: KubeConfig; readonly writeStatus?: boolean };
  /**
   * Serve the admission webhooks (`/validate`) over HTTPS (port 15017 by default; a free port when `xdsPort`
   * is 0) with certFile/keyFile. Without them, in Kubernetes mode with the CA, the webhooks are on anyway,
   * with a certificate for trellisd.trellis-system.svc from the mesh CA (plus `ipAddresses`), and the
   * caBundle of both webhook configurations is kept equal to the trust bundle (webhook/ca-bundle.ts).
   */
  readonly webhook?: {
    readonly port?: number;
    readonly certFile?: string;
    readonly keyFile?: string;
    readonly ipAddresses?: readonly string[];
  };
  /** Mesh-wide settings for translation (`--mesh-config`); defaultMeshConfig when unset. */
  readonly meshConfig?: MeshConfig;
  readonly debounceQuietMs?: number;
  readonly debounceMaxMs?: number;
  readonly maxMessageBytes?: number;
  /** Per-stream caps on ADS clients (xds/limits.ts): requests per second, names per type, request size. */
  readonly xdsLimits?: Partial<StreamLimits>;
  /** Unflushed response bytes per stream before its pushes are coalesced (backpressure); default 4 MiB. */
  readonly maxQueuedBytes?: number;
  /**
   * Fraction of the V8 heap limit above which pushes pause and new xDS streams are refused with
   * UNAVAILABLE until the heap shrinks (xds/memory-pressure.ts); default 0.85.
   */
  readonly memoryPressureThreshold?: number;
  readonly keepaliveMs?: number;
  readonly maxConnectionAgeMs?: number;
  /** How long streams may continue after the max-age GOAWAY; default 10 s. */
  readonly maxConnectionAgeGraceMs?: number;
  readonly processMetrics?: boolean;
  /**
   * The CA service (trellis.ca.v1.CertificateService) on both xDS ports, and the TLS port itself: local
   * mode with `stateDir` + `tokensFile`; in Kubernetes mode the Secret trellis-system/trellis-ca and
   * TokenReview. The trust domain defaults to the mesh config's. With `kube` too, ConfigMap
   * `trellis-ca-root-cert` (the trust bundle) is kept in every namespace unless `publishRootCert: false`.
   */
  readonly ca?: CaOptions;
}

export interface RunningControlPlane {
  /** The plaintext xDS port; undefined when it is off (Kubernetes mode without `xdsPort`). */
  readonly xdsPort?: number;
  /** The TLS xDS + CA port, when `ca` was given. */
  readonly secureXdsPort?: number;
  readonly monitoringPort: number;
  /** The admission webhook port, when `webhook` was given (or the CA serves it in Kubernetes mode). */
  readonly webhookPort?: number;
  /** Keeps the webhook configurations' caBundle, when the CA issues the webhook certificate. */
  readonly webhookCaBundle?: CaBundleWriter;
  readonly ads: AdsServer;
  readonly controller: PushController<unknown>;
  readonly metrics: XdsMetrics;
  /** The CA, when `ca` was given. */
  readonly ca?: StartedCa;
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
  if (options.staticResources && options.configDir) {
    throw new Error(
      '--static-resources and --config-dir exclude each other: serve either raw Envoy resources or a mesh',
    );
  }
  if (options.kube && (options.staticResources || options.configDir)) {
    throw new Error('Kubernetes mode excludes --static-resources and --config-dir');
  }
  const ca = options.ca
    ? await (
        await import('./ca/setup.js')
      ).setupCa(
        {
          kubeConfig: options.kube?.kubeConfig,
          ...options.ca,
          trustDomain: options.ca.trustDomain ?? options.meshConfig?.trustDomain,
        },
        metrics.registry,
        logger,
      )
    : undefined;
  const staticResources = options.configDir || options.kube ? undefined : await import('./static-resources.js');
  const staticSource =
    staticResources && options.staticResources
      ? new staticResources.StaticResourcesSource(options.staticResources, logger)
      : undefined;
  await staticSource?.start();
  const kubeMetrics = options.kube
    ? new (await import('./sources/metrics.js')).KubeModeMetrics(metrics.registry)
    : undefined;
  const kubeSource = options.kube ? await startKube(options.kube.kubeConfig, logger, kubeMetrics) : undefined;
  const meshSource = options.configDir ? await startConfigDir(options.configDir, logger) : kubeSource;
  const statusWriter: StatusWriter | undefined =
    kubeSource && options.kube?.kubeConfig && options.kube.writeStatus !== false
      ? new (await import('./sources/status-writer.js')).StatusWriter({
          kubeConfig: options.kube.kubeConfig,
          source: kubeSource,
          logger,
          metrics: kubeMetrics,
          extraCondition: await programmedConditionOf(() => programmed),
        })
      : undefined;
  const source: SnapshotSource<unknown> = meshSource ?? staticSource ?? new EmptySource();
  const generator = (
    meshSource ? await meshGeneratorFor(options.meshConfig) : staticResources!.staticGenerator
  ) as Generator<unknown>;
  registerBuildInfo(metrics.registry, options.kube ? 'kubernetes' : meshSource ? 'local' : 'static');
  if (meshSource) registerConfigObjects(metrics.registry, meshSource);
  const memoryPressure = new MemoryPressure({ metrics, logger, threshold: options.memoryPressureThreshold });
  memoryPressure.start();
  const controller = new PushController(source, generator, {
    debounce: { quietMs: options.debounceQuietMs ?? 100, maxMs: options.debounceMaxMs ?? 10_000 },
    metrics,
    logger,
    memoryPressure,
    convergence: convergenceMetrics(metrics.registry),
    ...(meshSource ? { sources: await meshSourcesFor(options.meshConfig) } : {}),
  });
  controller.start();
  // The Programmed condition beside Accepted (programmed-status.ts), from what the proxies answered.
  const programmed: ProgrammedTracker | undefined = statusWriter
    ? await startProgrammed(controller as PushController<unknown>)
    : undefined;
  statusWriter?.start();
  const erased = controller as unknown as PushController<unknown>;
  const ads = new AdsServer(erased, {
    metrics,
    logger,
    maxMessageBytes: options.maxMessageBytes,
    limits: options.xdsLimits,
    maxQueuedBytes: options.maxQueuedBytes,
    memoryPressure,
    keepaliveMs: options.keepaliveMs,
    maxConnectionAgeMs: options.maxConnectionAgeMs,
    maxConnectionAgeGraceMs: options.maxConnectionAgeGraceMs,
  });
  if (ca) ads.addService(certificateServiceDefinition, ca.service.implementation());
  const secureXdsPort = ca
    ? await ads.listenSecure(
        host,
        options.secureXdsPort ?? (options.xdsPort === 0 ? 0 : 15012),
        ca.serving.provider.serverCredentials(false),
        ca.authority.trustDomain,
      )
    : undefined;
  const xdsPort = await listenPlaintext(ads, host, options, secureXdsPort, ca?.metrics, logger);
  let listening = true;
  const inspector = meshSource ? await meshInspectorFor(meshSource, options, erased, ads) : undefined;
  const monitoring = new MonitoringServer({
    metrics,
    ads,
    controller: erased,
    logger,
    ready: () => listening && controller.ready(),
    ...(inspector ? { inspector } : {}),
    ...(meshSource ? { authz: await authzCheckerFor(meshSource, options, erased) } : {}),
  });
  const monitoringPort = await monitoring.listen(host, options.monitoringPort ?? 15014);
  let webhook: WebhookServer | undefined = undefined; // assigned below; read by onIssued
  const webhookCert =
    ca && options.kube && !options.webhook?.certFile
      ? await (
          await import('./webhook/serving-cert.js')
        ).WebhookServingCert.start({
          authority: ca.authority,
          logger,
          ipAddresses: options.webhook?.ipAddresses,
          onIssued: (c) => webhook?.setCertificate(c.chain.join(''), c.privateKeyPem),
        })
      : undefined;
  const webhookTls =
    options.webhook?.certFile && options.webhook.keyFile
      ? { certFile: options.webhook.certFile, keyFile: options.webhook.keyFile }
      : webhookCert
        ? { cert: webhookCert.current.chain.join(''), key: webhookCert.current.privateKeyPem }
        : undefined;
  // `/inject` (injector/) beside `/validate`, with the mesh config and the mesh's PeerAuthentications.
  webhook = webhookTls
    ? new (await import('./webhook/server.js')).WebhookServer({
        ...webhookTls,
        logger,
        // Counted and timed per path (webhook/metrics.ts).
        handlers: (await import('./webhook/metrics.js')).timedHandlers(metrics.registry, {
          '/validate': (await import('./webhook/validate.js')).validateAdmission,
          '/inject': (await import('../injector/webhook.js')).controlPlaneInjectHandler({
            logger,
            registry: metrics.registry,
            meshConfig: options.meshConfig,
            mesh: meshSource,
            kubeConfig: options.kube?.kubeConfig,
          }),
        }),
      })
    : undefined;
  const webhookPort = webhook
    ? await webhook.listen(host, options.webhook?.port ?? (options.xdsPort === 0 ? 0 : 15017))
    : undefined;
  // Started last: a start that failed before here (a port in use) leaves no publisher behind.
  const kubeConfig = options.ca?.kubeConfig ?? options.kube?.kubeConfig;
  const rootCertPublisher =
    ca && options.kube && kubeConfig && options.ca?.publishRootCert !== false
      ? new (await import('./ca/root-publisher.js')).RootCertPublisher({
          kubeConfig,
          trustBundle: ca.authority.trustBundle(),
          writes: ca.metrics.rootCertWrites,
          logger,
        })
      : undefined;
  rootCertPublisher?.start();
  const webhookCaBundle =
    ca && webhookCert && kubeConfig
      ? new (await import('./webhook/ca-bundle.js')).CaBundleWriter({
          kubeConfig,
          trustBundle: ca.authority.trustBundle(),
          logger,
        })
      : undefined;
  webhookCaBundle?.start();
  logger.info(
    {
      host,
      xdsPort,
      secureXdsPort,
      monitoringPort,
      staticResources: options.staticResources,
      configDir: options.configDir,
    },
    'control plane listening',
  );
  return {
    xdsPort,
    secureXdsPort,
    monitoringPort,
    webhookPort,
    webhookCaBundle,
    ads,
    controller: erased,
    metrics,
    ca,
    async close() {
      listening = false;
      programmed?.stop();
      controller.stop();
      memoryPressure.stop();
      await ads.close();
      ca?.serving.stop();
      await rootCertPublisher?.stop();
      webhookCert?.stop();
      await webhookCaBundle?.stop();
      await monitoring.close();
      await staticSource?.stop();
      await webhook?.close();
      await statusWriter?.stop();
      await meshSource?.stop();
      logger.info('control plane stopped');
    },
  };
}

/**
 * The plaintext xDS port: 15010 by default in local mode; in Kubernetes mode only when `xdsPort` is given,
 * and then without the CA (refused by ca/plaintext-guard.ts) and with a warning.
 */
async function listenPlaintext(
  ads: AdsServer,
  host: string,
  options: ControlPlaneOptions,
  securePort: number | undefined,
  caMetrics: StartedCa['metrics'] | undefined,
  logger: Logger,
): Promise<number | undefined> {
  if (!options.kube) return ads.listen(host, options.xdsPort ?? 15010);
  if (options.xdsPort === undefined) return undefined;
  const { refuseCaOnPlaintext } = await import('./ca/plaintext-guard.js');
  const guard = refuseCaOnPlaintext({ securePort: securePort ?? 15012, logger, metrics: caMetrics });
  const port = await ads.listen(
    host,
    options.xdsPort,
    grpc.experimental.createServerCredentialsWithInterceptors(grpc.ServerCredentials.createInsecure(), [guard]),
  );
  logger.warn(
    { host, xdsPort: port },
    'plaintext xDS port open in Kubernetes mode (asked for): unauthenticated, keep it inside the pod; the CA is not served on it',
  );
  return port;
}

/** `/debug/authz` (authz/): the live model and what each connected proxy was sent. */
async function authzCheckerFor(
  source: FileSource | KubeSource,
  options: ControlPlaneOptions,
  controller: PushController<unknown>,
): Promise<AuthzChecker> {
  const [{ AuthzChecker }, { defaultMeshConfig }] = await Promise.all([
    import('./authz/checker.js'),
    import('./translate/context.js'),
  ]);
  return new AuthzChecker({
    source,
    mesh: options.meshConfig ?? defaultMeshConfig,
    streams: () => controller.streams,
  });
}

/** `/debug/describe` and `/debug/diff` (inspect/): the mesh source's model, translated as for the proxies. */
async function meshInspectorFor(
  source: FileSource | KubeSource,
  options: ControlPlaneOptions,
  controller: PushController<unknown>,
  ads: AdsServer,
): Promise<MeshInspector> {
  const [{ MeshInspector }, { defaultMeshConfig }, { formatIssue, validateRoutingResource }] = await Promise.all([
    import('./inspect/inspector.js'),
    import('./translate/context.js'),
    import('../crds/validator.js'),
  ]);
  return new MeshInspector({
    source,
    mesh: options.meshConfig ?? defaultMeshConfig,
    validate: validateRoutingResource,
    formatIssue,
    proxies: () => [...controller.streams].flatMap((s) => (s.proxy ? [s.proxy] : [])),
    streams: () => ads.status(),
    stampCreated: options.kube !== undefined,
  });
}

/** What each proxy's config is translated from (translate/sources.ts), for the Programmed condition. */
async function meshSourcesFor(
  meshConfig: MeshConfig | undefined,
): Promise<(proxy: ProxyInfo, snapshot: unknown) => readonly string[]> {
  const [{ defaultMeshConfig }, { meshSources }] = await Promise.all([
    import('./translate/context.js'),
    import('./translate/sources.js'),
  ]);
  return meshSources(meshConfig ?? defaultMeshConfig) as (proxy: ProxyInfo, snapshot: unknown) => readonly string[];
}

/** Follows the proxies' answers per object (xds/programmed.ts), recomputed at most every 3 s. */
async function startProgrammed(controller: PushController<unknown>): Promise<ProgrammedTracker> {
  const { ProgrammedTracker } = await import('./xds/programmed.js');
  const tracker = new ProgrammedTracker({ controller });
  tracker.start();
  return tracker;
}

/** The status writer's Programmed condition, read from the tracker once it runs. */
async function programmedConditionOf(tracker: () => ProgrammedTracker | undefined): Promise<ExtraCondition> {
  const [{ programmedCondition }, { objectKey }] = await Promise.all([
    import('./programmed-status.js'),
    import('./model/objects.js'),
  ]);
  return {
    condition: (status) =>
      programmedCondition(status, tracker()?.get(objectKey(status.kind, status.namespace, status.name))),
    onChange: (listener) => tracker()?.onChange(listener) ?? (() => undefined),
  };
}

/** `--config-dir`: the mesh from a directory of Kubernetes YAML, read once before the ports open, then watched. */
/** The translator, for local and Kubernetes mode. */
async function meshGeneratorFor(meshConfig: MeshConfig | undefined): Promise<Generator<unknown>> {
  const [{ defaultMeshConfig }, { meshGenerator }] = await Promise.all([
    import('./translate/context.js'),
    import('./translate/generator.js'),
  ]);
  return meshGenerator(meshConfig ?? defaultMeshConfig) as Generator<unknown>;
}

async function startConfigDir(directory: string, logger: Logger): Promise<FileSource> {
  const [{ FileSource }, { formatIssue, validateRoutingResource }] = await Promise.all([
    import('./sources/file-source.js'),
    import('../crds/validator.js'),
  ]);
  const source = new FileSource({ directory, validate: validateRoutingResource, formatIssue, logger });
  try {
    await source.start();
  } catch (err) {
    await source.stop();
    throw new Error(`--config-dir ${directory}: ${(err as Error).message}`, { cause: err });
  }
  return source;
}

/**
 * Kubernetes mode: informers on the API server. Not awaited: the ports open at once and /readyz turns
 * ready after the first full sync of every kind (errors are retried with backoff and logged).
 */
async function startKube(
  kubeConfig: KubeConfig,
  logger: Logger,
  metrics: KubeModeMetrics | undefined,
): Promise<KubeSource> {
  const [{ KubeSource }, { formatIssue, validateRoutingResource }] = await Promise.all([
    import('./sources/kube-source.js'),
    import('../crds/validator.js'),
  ]);
  const source = new KubeSource({ kubeConfig, validate: validateRoutingResource, formatIssue, logger, metrics });
  source.start().catch(() => undefined); // rejects only when stopped before the first sync
  return source;
}
