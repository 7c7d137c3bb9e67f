// `trellis agent`: what runs beside Envoy or a proxyless gRPC application in a pod. It makes the key,
// gets and rotates the workload certificate (certificate-manager.ts), hands it to the proxy (SDS for
// Envoy, certificate files for gRPC), writes the proxy's bootstrap, carries the proxy's xDS stream to the
// control plane over mutual TLS with that certificate (xds-proxy.ts), and answers /healthz/ready.
//
// It loads only what it runs (README "Memory"): certs/ pieces without a certificate library, the shared
// API definitions (api/), and the Envoy protos only in Envoy mode (SDS and the Envoy bootstrap), imported
// when that mode starts.
import * as grpc from '@grpc/grpc-js';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Registry } from 'prom-client';
import { Ports } from '../api/names.js';
import { MemoryCertificateProvider } from '../certs/certificate-provider.js';
import { DEFAULT_TRUST_DOMAIN } from '../certs/spiffe.js';
import type { Logger } from '../control-plane/logger.js';
import { writeGrpcBootstrap } from './bootstrap-grpc.js';
import { CaClient, DEFAULT_CONTROL_PLANE_SERVER_NAME, defaultControlPlaneId } from './ca-client.js';
import { writeCertFiles } from './cert-files.js';
import { CertificateManager, type WorkloadCertificate } from './certificate-manager.js';
import type { AppProbes } from './app-probes.js';
import { HealthServer } from './health.js';
import { bootstrapNode, type ProxyNodeOptions, type ProxyType } from './proxy-node.js';
import type { SdsServer } from './sds-server.js';
import { XdsProxy } from './xds-proxy.js';
import type { EnvoyProcess } from './envoy-process.js';

export interface AgentOptions {
  readonly proxyType: ProxyType;
  /** The control plane's xDS (and CA) address, `host:port`: 15012 (TLS) or, with `plaintext`, 15010. */
  readonly controlPlane: string;
  /** The CA's address when it is not the control plane's. */
  readonly caAddress?: string;
  /** Local mode only: plaintext to port 15010 (identity then rests on the token alone). */
  readonly plaintext?: boolean;
  /** PEM roots the control plane's certificate must chain to (required unless `plaintext`). */
  readonly rootCertPem?: string;
  /** The control plane's SPIFFE ID; default `spiffe://<trust-domain>/ns/trellis-system/sa/trellisd`. */
  readonly controlPlaneId?: string;
  /** The ServiceAccount token (audience `trellis-ca`) or local-mode token, re-read at each request. */
  readonly tokenFile: string;
  readonly node: ProxyNodeOptions;
  /** Where the agent writes its files and sockets (see README). */
  readonly outputDir: string;
  /** Requested certificate lifetime; default 0 (the CA's default, 24 h). */
  readonly ttlSeconds?: number;
  readonly healthHost?: string;
  /** 15021 by default; 0 picks a free port. */
  readonly healthPort?: number;
  /** Application probes served on the health port (TRELLIS_APP_PROBES, set by the injector). */
  readonly appProbes?: AppProbes;
  /** Envoy mode: the Envoy executable to start on the bootstrap and keep running (envoy-process.ts). */
  readonly envoyBinary?: string;
  /** Extra arguments for Envoy. */
  readonly envoyArgs?: readonly string[];
  readonly logger: Logger;
}

/** What the agent made, and where. */
export interface AgentPaths {
  readonly outputDir: string;
  /** The local xDS proxy (the bootstrap's `xds_servers` / `xds-grpc` cluster). */
  readonly xdsSocket: string;
  /** Envoy only: the SDS server. */
  readonly sdsSocket?: string;
  /** gRPC only: cert.pem, key.pem, ca.pem live here. */
  readonly certDir?: string;
  readonly bootstrap: string;
}

export interface RunningAgent {
  readonly paths: AgentPaths;
  readonly healthPort: number;
  readonly spiffeId: string;
  current(): WorkloadCertificate | undefined;
  /** Why the agent is not ready, or undefined when it is. */
  notReadyReason(): string | undefined;
  close(): Promise<void>;
}

export const XDS_SOCKET = 'xds.sock';
export const SDS_SOCKET = 'sds.sock';
export const GRPC_BOOTSTRAP = 'grpc-bootstrap.json';
export const ENVOY_BOOTSTRAP = 'envoy-bootstrap.json';

export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  const { logger, node } = options;
  const trustDomain = node.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  if (!options.plaintext && !options.rootCertPem) {
    throw new Error('the agent needs the mesh root certificate (--root-cert) to verify the control plane');
  }
  // Bad names are refused now, not after the first certificate arrives.
  bootstrapNode(node, options.proxyType);
  const outputDir = path.resolve(options.outputDir);
  await fs.mkdir(outputDir, { recursive: true });
  const registry = new Registry();
  const controlPlaneId = options.controlPlaneId ?? defaultControlPlaneId(trustDomain);
  const caClient = new CaClient({
    address: options.caAddress ?? options.controlPlane,
    transport: options.plaintext
      ? { kind: 'plaintext' }
      : { kind: 'tls', trustBundlePem: options.rootCertPem!, controlPlaneId },
    tokenFile: options.tokenFile,
    trustDomain,
    logger,
  });
  const manager = new CertificateManager({
    issuer: caClient,
    identity: { trustDomain, namespace: node.namespace, serviceAccount: node.serviceAccount },
    ttlSeconds: options.ttlSeconds,
    // gRPC reads cert.pem and key.pem with two opens: one key for the process keeps every pair matching.
    keyRotation: options.proxyType === 'grpc' ? 'per-process' : 'per-renewal',
    extraRootsPem: options.rootCertPem,
    logger,
    registry,
  });
  const provider = new MemoryCertificateProvider();
  const xdsSocket = path.join(outputDir, XDS_SOCKET);
  const sdsSocket = options.proxyType === 'envoy' ? path.join(outputDir, SDS_SOCKET) : undefined;
  // Envoy mode only: SDS and the Envoy bootstrap, with the Envoy protos they need.
  const envoy =
    options.proxyType === 'envoy'
      ? await Promise.all([import('./sds-server.js'), import('./bootstrap-envoy.js')])
      : undefined;
  const sds: SdsServer | undefined =
    envoy && sdsSocket ? new envoy[0].SdsServer({ socketPath: sdsSocket, logger, registry }) : undefined;
  const certDir = options.proxyType === 'grpc' ? outputDir : undefined;

  // Installs are serialised: a slow file write never lets an older certificate land after a newer one.
  // `installing` is the tail of the chain and never rejects, so one failed install does not stop the
  // next ones; the promise install() returns does reject, so the first certificate's failure is fatal.
  let installing: Promise<void> = Promise.resolve();
  /** The certificate the proxy has now (the manager's latest may not have made it: a failed install). */
  let installed: WorkloadCertificate | undefined;
  const install = (certificate: WorkloadCertificate): Promise<void> => {
    const done = installing.then(async () => {
      provider.update(certificate);
      if (certDir) await writeCertFiles(certDir, certificate);
      sds?.update(certificate);
      installed = certificate;
      logger.info(
        {
          spiffeId: certificate.spiffeId,
          serial: certificate.serial,
          notAfter: certificate.notAfter.toISOString(),
        },
        'certificate installed',
      );
    });
    installing = done.catch((err: unknown) => {
      logger.error({ err, serial: certificate.serial }, 'installing the certificate failed');
    });
    return done;
  };
  // `rotated` comes for every certificate, the first included (synchronously, before start() resolves):
  // each is installed exactly once, here.
  let firstInstall: Promise<void> | undefined;
  manager.on('rotated', (certificate) => {
    const done = install(certificate);
    done.catch(() => undefined); // logged by install()
    firstInstall ??= done;
  });

  let proxy: XdsProxy | undefined;
  let envoyProcess: EnvoyProcess | undefined;
  const notReadyReason = (): string | undefined => {
    const c = installed;
    if (!c) return 'no workload certificate yet';
    if (c.notAfter.getTime() <= Date.now()) return `the workload certificate expired at ${c.notAfter.toISOString()}`;
    if (!proxy?.ready()) return 'the xDS proxy has not reached the control plane yet';
    return envoyProcess?.notRunningReason();
  };
  const health = new HealthServer({ notReadyReason, registry, logger, appProbes: options.appProbes });

  // Every part is closed even when another one fails to; an attempt in flight to the CA is awaited last,
  // once its channel is closed (so it ends at once). Idempotent.
  let closing: Promise<void> | undefined;
  const closeAll = (): Promise<void> =>
    (closing ??= (async () => {
      const stopped = manager.stop();
      const failures: unknown[] = [];
      for (const step of [() => envoyProcess?.stop(), () => proxy?.close(), () => sds?.close(), () => health.close()]) {
        try {
          await step();
        } catch (err) {
          failures.push(err);
        }
      }
      caClient.close();
      await stopped;
      if (failures.length > 0) throw new AggregateError(failures, 'the agent did not close cleanly');
    })());
  try {
    const healthPort = await health.listen(options.healthHost ?? '127.0.0.1', options.healthPort ?? Ports.agentHealth);
    logger.info({ spiffeId: manager.spiffeId, controlPlane: options.controlPlane }, 'agent: requesting a certificate');
    await manager.start();
    await firstInstall;
    await sds?.listen();
    proxy = new XdsProxy({
      listen: { socketPath: xdsSocket },
      upstream: {
        target: options.controlPlane,
        credentials: options.plaintext
          ? grpc.credentials.createInsecure()
          : provider.channelCredentials(controlPlaneId),
        channelOptions: options.plaintext ? {} : { 'grpc.ssl_target_name_override': DEFAULT_CONTROL_PLANE_SERVER_NAME },
      },
      logger,
      registry,
    });
    await proxy.start();
    const bootstrap = path.join(outputDir, options.proxyType === 'grpc' ? GRPC_BOOTSTRAP : ENVOY_BOOTSTRAP);
    if (envoy) {
      await envoy[1].writeEnvoyBootstrap(bootstrap, { node, xdsSocketPath: xdsSocket, sdsSocketPath: sdsSocket! });
    } else {
      await writeGrpcBootstrap(bootstrap, { xdsServerUri: `unix://${xdsSocket}`, node, certDir });
    }
    if (envoy && options.envoyBinary) {
      const { EnvoyProcess } = await import('./envoy-process.js');
      envoyProcess = new EnvoyProcess({ binary: options.envoyBinary, bootstrap, extraArgs: options.envoyArgs, logger });
      envoyProcess.start();
    }
    const paths: AgentPaths = { outputDir, xdsSocket, sdsSocket, certDir, bootstrap };
    let stopped: Promise<void> | undefined;
    logger.info({ ...paths, healthPort, spiffeId: manager.spiffeId, proxyType: options.proxyType }, 'agent started');
    return {
      paths,
      healthPort,
      spiffeId: manager.spiffeId,
      current: () => manager.current(),
      notReadyReason,
      close: () => (stopped ??= closeAll().then(() => logger.info('agent stopped'))),
    };
  } catch (err) {
    await closeAll().catch((closeErr: unknown) =>
      logger.error({ err: closeErr }, 'agent: closing after a failed start failed'),
    );
    throw err;
  }
}
