// `trellis agent`: the command line of the sidecar agent (agent.ts). Defaults follow what an injected
// pod provides: POD_NAME, POD_NAMESPACE, SERVICE_ACCOUNT and INSTANCE_IP from the downward API, the
// projected token (audience trellis-ca) and the mesh root from the trellis-ca-root-cert ConfigMap.
import { Command, InvalidArgumentError, Option } from 'commander';
import fs from 'node:fs';
import { durationToMs } from '../lib/duration.js';
import { parseAppProbes, type AppProbes } from './app-probes.js';
import type { ProxyType } from './proxy-node.js';

function parseLabels(value: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of value.split(',').filter((p) => p.trim() !== '')) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new InvalidArgumentError(`"${pair}" is not key=value`);
    labels[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
  }
  return labels;
}

function parseList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function parseTtl(value: string): number {
  const ms = durationToMs(value);
  if (ms === undefined || ms < 1_000) throw new InvalidArgumentError(`"${value}" is not a duration of at least 1s`);
  return Math.floor(ms / 1000);
}

function parseProbes(value: string): AppProbes {
  try {
    return parseAppProbes(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError(`"${value}" is not a port`);
  return port;
}

interface AgentCliOptions {
  proxyType: ProxyType;
  controlPlane: string;
  caAddress?: string;
  plaintext: boolean;
  rootCert?: string;
  controlPlaneId?: string;
  tokenFile: string;
  podName?: string;
  namespace?: string;
  serviceAccount?: string;
  trustDomain: string;
  instanceIps: string[];
  labels: Record<string, string>;
  cluster?: string;
  region?: string;
  zone?: string;
  nodeName?: string;
  outputDir: string;
  ttl: number;
  healthHost: string;
  healthPort: number;
  appProbes: AppProbes;
  envoyBinary?: string;
  envoyArg: string[];
  logLevel: string;
}

export function registerAgentCommand(program: Command): void {
  program
    .command('agent')
    .description(
      'run the sidecar agent: workload key and certificate (rotated), SDS for Envoy or certificate files for gRPC, the proxy bootstrap, and the local xDS proxy to the control plane',
    )
    .addOption(new Option('--proxy-type <type>', 'the proxy beside it').choices(['envoy', 'grpc']).default('envoy'))
    .option('--control-plane <host:port>', 'xDS and CA of the control plane (TLS)', 'trellisd.trellis-system.svc:15012')
    .option('--ca-address <host:port>', 'the CA, when it is not the control plane')
    .option('--plaintext', 'local mode only: plaintext to port 15010, identity by token alone', false)
    .option(
      '--root-cert <file>',
      'PEM mesh root(s) the control plane must chain to',
      '/var/run/trellis/root-cert/root-cert.pem',
    )
    .option(
      '--control-plane-id <spiffe-id>',
      'the control plane SPIFFE ID (default spiffe://<trust-domain>/ns/trellis-system/sa/trellisd)',
    )
    .option(
      '--token-file <file>',
      'ServiceAccount token with audience trellis-ca (re-read at each request)',
      '/var/run/secrets/tokens/trellis-ca',
    )
    .addOption(new Option('--pod-name <name>', 'the pod (node id <pod>.<namespace>)').env('POD_NAME'))
    .addOption(new Option('--namespace <ns>', 'the pod namespace').env('POD_NAMESPACE'))
    .addOption(new Option('--service-account <sa>', 'the pod service account').env('SERVICE_ACCOUNT'))
    .option('--trust-domain <domain>', 'SPIFFE trust domain', 'cluster.local')
    .addOption(
      new Option('--instance-ips <ips>', 'comma-separated pod IPs').env('INSTANCE_IP').default([]).argParser(parseList),
    )
    .addOption(new Option('--labels <k=v,...>', 'pod labels').default({}).argParser(parseLabels))
    .option('--cluster <name>', 'node.cluster (default <service-account>.<namespace>)')
    .option('--region <region>', 'locality region')
    .option('--zone <zone>', 'locality zone')
    .addOption(
      new Option(
        '--node-name <name>',
        "the Kubernetes Node of the pod: the control plane takes the proxy's locality from its labels",
      ).env('NODE_NAME'),
    )
    .option('--output-dir <dir>', 'where sockets, certificate files and the bootstrap go', '/var/run/trellis')
    .addOption(
      new Option('--ttl <duration>', 'requested certificate lifetime (CA default 24h, max 7 days)')
        .default(0)
        .argParser(parseTtl),
    )
    .option('--health-host <address>', 'address of /healthz/ready and /metrics', '0.0.0.0')
    .addOption(new Option('--health-port <port>', '/healthz/ready and /metrics').default(15021).argParser(parsePort))
    .addOption(
      new Option('--app-probes <json>', 'application probes to serve at /app-health/... (set by the injector)')
        .env('TRELLIS_APP_PROBES')
        .default(new Map())
        .argParser(parseProbes),
    )
    .option(
      '--envoy-binary <path>',
      'Envoy mode: start this Envoy on the bootstrap and keep it running (restarted with backoff; /healthz/ready says why while it is not running)',
    )
    .addOption(
      new Option('--envoy-arg <arg>', 'an extra Envoy argument (repeatable)')
        .default([])
        .argParser((value: string, previous: string[]) => [...previous, value]),
    )
    .addOption(
      new Option('--log-level <level>', 'log level')
        .choices(['trace', 'debug', 'info', 'warn', 'error'])
        .default('info'),
    )
    .action(async (opts: AgentCliOptions, command: Command) => {
      if (opts.envoyBinary && opts.proxyType !== 'envoy') {
        command.error('error: --envoy-binary needs --proxy-type envoy', { exitCode: 2 });
      }
      for (const [flag, value] of [
        ['--pod-name (or POD_NAME)', opts.podName],
        ['--namespace (or POD_NAMESPACE)', opts.namespace],
        ['--service-account (or SERVICE_ACCOUNT)', opts.serviceAccount],
      ] as const) {
        if (!value) command.error(`error: ${flag} is required`, { exitCode: 2 });
      }
      let rootCertPem: string | undefined;
      if (!opts.plaintext) {
        try {
          rootCertPem = fs.readFileSync(opts.rootCert!, 'utf8');
        } catch (err) {
          command.error(`error: --root-cert ${opts.rootCert}: ${(err as Error).message}`, { exitCode: 2 });
        }
      }
      const [{ createLogger }, { startAgent }] = await Promise.all([
        import('../control-plane/logger.js'),
        import('./agent.js'),
      ]);
      const logger = createLogger({ level: opts.logLevel, name: 'trellis-agent' });
      // The agent's own spans (certificate requests) when OTEL_* asks for them; otherwise nothing is loaded.
      const tracing = await (await import('../lib/tracing.js')).startTracing({ serviceName: 'trellis-agent' });
      if (tracing.enabled) logger.info('agent tracing on (OpenTelemetry, service.name trellis-agent)');
      const agent = await startAgent({
        proxyType: opts.proxyType,
        controlPlane: opts.controlPlane,
        caAddress: opts.caAddress,
        plaintext: opts.plaintext,
        rootCertPem,
        controlPlaneId: opts.controlPlaneId,
        tokenFile: opts.tokenFile,
        node: {
          pod: opts.podName!,
          namespace: opts.namespace!,
          serviceAccount: opts.serviceAccount!,
          trustDomain: opts.trustDomain,
          cluster: opts.cluster,
          labels: opts.labels,
          instanceIps: opts.instanceIps,
          locality: { region: opts.region, zone: opts.zone },
          ...(opts.nodeName ? { nodeName: opts.nodeName } : {}),
        },
        outputDir: opts.outputDir,
        ttlSeconds: opts.ttl,
        healthHost: opts.healthHost,
        healthPort: opts.healthPort,
        appProbes: opts.appProbes,
        envoyBinary: opts.envoyBinary,
        envoyArgs: opts.envoyArg,
        logger,
      });
      let closing = false;
      const stop = (): void => {
        if (closing) process.exit(1);
        closing = true;
        agent
          .close()
          .then(() => tracing.shutdown())
          .then(
            () => process.exit(0),
            (err: unknown) => {
              logger.error({ err }, 'agent shutdown failed');
              process.exit(1);
            },
          );
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
}
