// `trellis control-plane`: the options, checked before anything heavy loads; the action imports what the
// chosen mode needs (the Kubernetes client only in Kubernetes mode, the translator's mesh config only with
// --mesh-config, the CA's token file reader only with --tokens-file) and then the assembly.
import { InvalidArgumentError, Option, type Command } from 'commander';
import fs from 'node:fs';
import type { KubeConfig } from '@kubernetes/client-node';
import { onShutdownSignal, parseDuration, parsePort, parsePositiveInt } from './cli-options.js';
import type { MeshConfig } from './translate/context.js';
import { defaultStreamLimits } from './xds/limits.js';

/** A number in (0, 1]. */
function parseFraction(value: string): number {
  const n = Number(value);
  if (!(n > 0 && n <= 1)) throw new InvalidArgumentError(`expected a fraction in (0, 1], got ${value}`);
  return n;
}

/** Adds `trellis control-plane` to the program. */
export function registerControlPlaneCommand(program: Command): void {
  program
    .command('control-plane')
    .description('serve Envoy xDS v3 (ADS, state of the world and delta) to sidecars and proxyless gRPC apps')
    .addOption(new Option('--host <address>', 'address every port binds').default('127.0.0.1'))
    .addOption(
      new Option(
        '--xds-port <port>',
        'plaintext xDS port, unauthenticated (0: a free port). Local mode: default 15010, the CA is served on it too. Kubernetes mode (--kube, --kubeconfig): off unless given, and never the CA (use --secure-port)',
      ).argParser(parsePort),
    )
    .addOption(
      new Option(
        '--secure-port <port>',
        'xDS and CA over TLS, on with the CA (--state-dir, --plugin-ca-dir): the control plane presents spiffe://<trust-domain>/ns/trellis-system/sa/trellisd, xDS clients must present their SVID and are bound to it (default 15012; a free port when --xds-port is 0; 0: a free port)',
      ).argParser(parsePort),
    )
    .addOption(
      new Option('--monitoring-port <port>', '/healthz, /readyz, /metrics, /debug (0: a free port)')
        .default(15014)
        .argParser(parsePort),
    )
    .option(
      '--static-resources <file>',
      'serve the raw Envoy resources in this YAML/JSON file to every proxy; edits push live',
    )
    .option(
      '--config-dir <dir>',
      'local mode: translate the Kubernetes YAML in this directory (Services, EndpointSlices, Pods, VirtualServices, DestinationRules); edits push live',
    )
    .option(
      '--mesh-config <file>',
      'mesh-wide settings for --config-dir (YAML: trustDomain, mtlsMode, connectTimeout, …)',
    )
    .option(
      '--kubeconfig <file>',
      'Kubernetes mode: the mesh from the API server of this kubeconfig; writes the status of routing resources',
    )
    .option(
      '--kube',
      'Kubernetes mode with the default config: $KUBECONFIG, else ~/.kube/config, else in-cluster (service account)',
    )
    .addOption(
      new Option(
        '--webhook-port <port>',
        'admission webhook HTTPS port (/validate, /inject): with --webhook-cert/--webhook-key, or in Kubernetes mode with the CA (a certificate for trellisd.trellis-system.svc from the mesh CA; the caBundle of the webhook configurations is kept); 0: a free port',
      )
        .default(15017)
        .argParser(parsePort),
    )
    .option('--webhook-cert <file>', 'serve the validating webhook (/validate) with this PEM certificate chain')
    .option('--webhook-key <file>', 'the PEM private key of --webhook-cert')
    .option(
      '--state-dir <dir>',
      'CA (local mode): keep the root CA (root-cert.pem, root-key.pem 0600) here, made on first start; serves trellis.ca.v1.CertificateService on the xDS port and on the TLS port (--secure-port)',
    )
    .option('--tokens-file <file>', 'CA (local mode): YAML/JSON list of {token, namespace, serviceAccount}')
    .option(
      '--plugin-ca-dir <dir>',
      'CA: sign with a plug-in CA from this directory (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem)',
    )
    .addOption(
      new Option('--debounce-after <duration>', 'quiet time before a push').default(100).argParser(parseDuration),
    )
    .addOption(
      new Option('--debounce-max <duration>', 'longest delay of a push under steady changes')
        .default(10_000)
        .argParser(parseDuration),
    )
    .addOption(
      new Option('--max-message-bytes <n>', 'largest response sent; larger ones are logged and not sent')
        .default(4 * 1024 * 1024)
        .argParser(parsePositiveInt),
    )
    .addOption(
      new Option(
        '--xds-max-requests-per-second <n>',
        'requests per second one ADS stream may send (token bucket); over it the stream ends with RESOURCE_EXHAUSTED',
      )
        .default(defaultStreamLimits.requestsPerSecond)
        .argParser(parsePositiveInt),
    )
    .addOption(
      new Option('--xds-request-burst <n>', 'requests one ADS stream may send at once before the rate applies')
        .default(defaultStreamLimits.requestBurst)
        .argParser(parsePositiveInt),
    )
    .addOption(
      new Option(
        '--xds-max-subscription-names <n>',
        'resource names one ADS stream may subscribe to per type; over it the stream ends with RESOURCE_EXHAUSTED',
      )
        .default(defaultStreamLimits.maxSubscriptionNames)
        .argParser(parsePositiveInt),
    )
    .addOption(
      new Option(
        '--xds-max-request-bytes <n>',
        'largest ADS request accepted; a larger one ends its stream with RESOURCE_EXHAUSTED',
      )
        .default(defaultStreamLimits.maxRequestBytes)
        .argParser(parsePositiveInt),
    )
    .addOption(
      new Option(
        '--xds-max-queued-bytes <n>',
        'response bytes one ADS stream may hold unflushed (its client not reading) before its pushes are coalesced to the latest config',
      )
        .default(4 * 1024 * 1024)
        .argParser(parsePositiveInt),
    )
    .addOption(
      new Option(
        '--memory-pressure-threshold <fraction>',
        'share of the V8 heap limit above which pushes pause and new ADS streams get UNAVAILABLE until the heap shrinks',
      )
        .default(0.85)
        .argParser(parseFraction),
    )
    .addOption(
      new Option('--keepalive <duration>', 'HTTP/2 keepalive ping interval').default(30_000).argParser(parseDuration),
    )
    .addOption(
      new Option('--max-connection-age <duration>', 'send GOAWAY to connections older than this (replicas rebalance)')
        .default(30 * 60_000)
        .argParser(parseDuration),
    )
    .addOption(
      new Option('--log-level <level>', 'log level')
        .choices(['trace', 'debug', 'info', 'warn', 'error'])
        .default('info'),
    )
    .action(
      async (
        opts: {
          host: string;
          xdsPort?: number;
          securePort?: number;
          monitoringPort: number;
          staticResources?: string;
          configDir?: string;
          meshConfig?: string;
          kubeconfig?: string;
          kube?: boolean;
          webhookPort: number;
          webhookCert?: string;
          webhookKey?: string;
          stateDir?: string;
          tokensFile?: string;
          pluginCaDir?: string;
          debounceAfter: number;
          debounceMax: number;
          maxMessageBytes: number;
          xdsMaxRequestsPerSecond: number;
          xdsRequestBurst: number;
          xdsMaxSubscriptionNames: number;
          xdsMaxRequestBytes: number;
          xdsMaxQueuedBytes: number;
          memoryPressureThreshold: number;
          keepalive: number;
          maxConnectionAge: number;
          logLevel: string;
        },
        command: Command,
      ) => {
        if (opts.staticResources && opts.configDir) {
          command.error(
            'error: --static-resources and --config-dir exclude each other (raw Envoy resources, or a mesh to translate)',
            { exitCode: 2 },
          );
        }
        if (opts.meshConfig && !opts.configDir && !opts.kubeconfig && !opts.kube) {
          command.error(
            'error: --mesh-config needs --config-dir, --kubeconfig or --kube (it configures the translation of a mesh)',
            {
              exitCode: 2,
            },
          );
        }
        let meshConfig: MeshConfig | undefined;
        if (opts.meshConfig) {
          const { MeshConfigError, readMeshConfigFile } = await import('./translate/mesh-config.js');
          try {
            meshConfig = readMeshConfigFile(opts.meshConfig);
          } catch (err) {
            if (!(err instanceof MeshConfigError)) throw err;
            command.error(`error: --mesh-config is invalid:\n  ${err.errors.join('\n  ')}`, { exitCode: 2 });
          }
        }
        if (opts.configDir && !fs.statSync(opts.configDir, { throwIfNoEntry: false })?.isDirectory()) {
          command.error(`error: --config-dir ${opts.configDir}: not a directory`, { exitCode: 2 });
        }
        if ((opts.kubeconfig || opts.kube) && (opts.staticResources || opts.configDir)) {
          command.error('error: --kubeconfig/--kube exclude --static-resources and --config-dir', { exitCode: 2 });
        }
        if (Boolean(opts.webhookCert) !== Boolean(opts.webhookKey)) {
          command.error('error: --webhook-cert and --webhook-key go together', { exitCode: 2 });
        }
        let kubeConfig: KubeConfig | undefined;
        if (opts.kubeconfig || opts.kube) {
          const { KubeConfig } = await import('@kubernetes/client-node');
          kubeConfig = new KubeConfig();
          try {
            if (opts.kubeconfig) kubeConfig.loadFromFile(opts.kubeconfig);
            else kubeConfig.loadFromDefault();
          } catch (err) {
            command.error(`error: cannot load the Kubernetes config: ${(err as Error).message}`, { exitCode: 2 });
          }
        }
        const caEnabled = Boolean(opts.stateDir || opts.pluginCaDir);
        if (opts.tokensFile && !caEnabled) {
          command.error('error: --tokens-file needs --state-dir or --plugin-ca-dir (it authenticates CA callers)', {
            exitCode: 2,
          });
        }
        if (opts.securePort !== undefined && !caEnabled) {
          command.error(
            'error: --secure-port needs the CA (--state-dir or --plugin-ca-dir): its certificates secure that port',
            { exitCode: 2 },
          );
        }
        if (caEnabled && !opts.tokensFile && !kubeConfig) {
          command.error('error: the CA needs --tokens-file in local mode (or --kube/--kubeconfig for TokenReview)', {
            exitCode: 2,
          });
        }
        if (opts.tokensFile) {
          const { TokensFileAuthenticator } = await import('./ca/auth.js');
          try {
            TokensFileAuthenticator.fromFile(opts.tokensFile);
          } catch (err) {
            command.error(`error: --tokens-file: ${(err as Error).message}`, { exitCode: 2 });
          }
        }
        const [{ createLogger }, { startControlPlane }, { PluginCaError }] = await Promise.all([
          import('./logger.js'),
          import('./control-plane.js'),
          import('../certs/errors.js'),
        ]);
        const logger = createLogger({ level: opts.logLevel, name: 'trellis-control-plane' });
        // Control-plane spans (lib/tracing.ts): on with OTEL_* or the mesh config's tracing.collector.
        const tracing = await (
          await import('../lib/tracing.js')
        ).startTracing({
          serviceName: 'trellisd',
          // The mesh's Zipkin collector takes no OTLP: then only OTEL_* turns control-plane tracing on.
          collector: meshConfig?.tracing.provider === 'zipkin' ? undefined : meshConfig?.tracing.collector,
          samplingPercent: meshConfig?.tracing.samplingPercent,
        });
        if (tracing.enabled) logger.info('control-plane tracing on (OpenTelemetry, service.name trellisd)');
        const cp = await startControlPlane({
          ...(kubeConfig ? { kube: { kubeConfig } } : {}),
          ...(opts.webhookCert && opts.webhookKey
            ? { webhook: { port: opts.webhookPort, certFile: opts.webhookCert, keyFile: opts.webhookKey } }
            : kubeConfig
              ? { webhook: { port: opts.webhookPort } }
              : {}),
          logger,
          host: opts.host,
          xdsPort: opts.xdsPort,
          secureXdsPort: opts.securePort,
          monitoringPort: opts.monitoringPort,
          staticResources: opts.staticResources,
          configDir: opts.configDir,
          meshConfig,
          debounceQuietMs: opts.debounceAfter,
          debounceMaxMs: opts.debounceMax,
          maxMessageBytes: opts.maxMessageBytes,
          xdsLimits: {
            requestsPerSecond: opts.xdsMaxRequestsPerSecond,
            requestBurst: opts.xdsRequestBurst,
            maxSubscriptionNames: opts.xdsMaxSubscriptionNames,
            maxRequestBytes: opts.xdsMaxRequestBytes,
          },
          maxQueuedBytes: opts.xdsMaxQueuedBytes,
          memoryPressureThreshold: opts.memoryPressureThreshold,
          keepaliveMs: opts.keepalive,
          maxConnectionAgeMs: opts.maxConnectionAge,
          processMetrics: true,
          ...(caEnabled
            ? { ca: { stateDir: opts.stateDir, tokensFile: opts.tokensFile, pluginDir: opts.pluginCaDir } }
            : {}),
        }).catch((err: unknown) => {
          // A CA file that is missing or does not fit: the operator's to fix, named in one line.
          if (err instanceof PluginCaError) command.error(`error: CA: ${err.message}`, { exitCode: 2 });
          throw err;
        });
        (await import('./startup-heap.js')).releaseYoungGeneration(); // listening: V8's defaults from here
        onShutdownSignal(async () => {
          await cp.close();
          await tracing.shutdown();
        });
      },
    );
}
