// The agent's Secret Discovery Service for Envoy (envoy.service.secret.v3.SecretDiscoveryService) on a
// Unix socket. The protocol is the control plane's xDS engine (control-plane/xds/): AdsServer serving
// secretDiscoveryService instead of ADS, a PushController, and the SecretGenerator (secret-generator.ts)
// on the certificate the agent installed last. So StreamSecrets and DeltaSecrets follow exactly the rules
// of the control plane's ADS streams (sotw-stream.ts, delta-stream.ts): stale nonces, ACK/NACK, only what
// a client lacks, delta's initial_resource_versions and removed_resources. What is the agent's own:
//   - the names: `default` and `ROOTCA`; `file-cert:<certificate>~<key>` and `file-root:<ca>`, read from
//     those files in the proxy's container and sent again when they change (file-secrets.ts); any other
//     name is logged once and never served (Envoy keeps waiting for it);
//   - a request may leave type_url empty (a single-type service); another type ends the stream with
//     INVALID_ARGUMENT;
//   - `control_plane.identifier` is `trellis-agent`; there is no max connection age (one local client);
//   - the socket is 0600 (only the agent's own user, as which Envoy runs, may fetch the private key);
//   - metrics are the engine's, as `trellis_agent_sds_*` in the agent's registry.
// A rotation (update) is pushed at once (no debounce: one change at a time) to every stream it changes.
import fs from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import type { Registry } from 'prom-client';
import {
  DeltaDiscoveryRequestSchema,
  DeltaDiscoveryResponseSchema,
  DiscoveryRequestSchema,
  DiscoveryResponseSchema,
} from '../control-plane/envoy/gen/envoy/service/discovery/v3/discovery_pb.js';
import { shortTypeName, TypeUrl } from '../control-plane/envoy/protos.js';
import { silentLogger, type Logger } from '../control-plane/logger.js';
import { AdsServer, secretDiscoveryService, UNLIMITED_CONNECTION_AGE_MS } from '../control-plane/xds/ads-server.js';
import { XdsMetrics } from '../control-plane/xds/metrics.js';
import { PushController } from '../control-plane/xds/push-controller.js';
import { ResourceCache } from '../control-plane/xds/resource-cache.js';
import type { SubscribeEvent } from '../control-plane/xds/xds-stream.js';
import type { WorkloadCertificate } from './certificate-manager.js';
import { DEFAULT_FILE_POLL_MS, FileSecrets } from './file-secrets.js';
import { CertificateSource, SecretGenerator, SERVED_SECRETS, type AgentSecrets } from './secret-generator.js';

export { rootSecret, workloadSecret } from './secret-generator.js';

const CONTROL_PLANE_ID = 'trellis-agent';

function clientMethod<Req extends DescMessage, Res extends DescMessage>(
  name: string,
  request: Req,
  response: Res,
): grpc.MethodDefinition<MessageShape<Req>, MessageShape<Res>> {
  return {
    path: `/${secretDiscoveryService.name}/${name}`,
    requestStream: true,
    responseStream: true,
    requestSerialize: (m: MessageShape<Req>) => Buffer.from(toBinary(request, m)),
    requestDeserialize: (b: Buffer) => fromBinary(request, b),
    responseSerialize: (m: MessageShape<Res>) => Buffer.from(toBinary(response, m)),
    responseDeserialize: (b: Buffer) => fromBinary(response, b),
  };
}

/** The SDS service with typed messages both ways, for a client (`new grpc.Client(…).makeBidiStreamRequest`). */
export const sdsServiceDefinition = {
  StreamSecrets: clientMethod(secretDiscoveryService.sotwMethod, DiscoveryRequestSchema, DiscoveryResponseSchema),
  DeltaSecrets: clientMethod(
    secretDiscoveryService.deltaMethod,
    DeltaDiscoveryRequestSchema,
    DeltaDiscoveryResponseSchema,
  ),
};

/** What one stream was sent and what it ACKed or NACKed (debug output, tests). */
export interface SdsStreamStatus {
  readonly stream: number;
  readonly protocol: 'sotw' | 'delta';
  readonly nodeId: string;
  readonly subscribed: readonly string[];
  /** The version of the last response (SotW version_info, delta system_version_info). */
  readonly sent: string;
  /** The version of the last response the client ACKed. */
  readonly acked: string | undefined;
  readonly nack: { readonly nonce: string; readonly message: string } | undefined;
  readonly responses: number;
}

export interface SdsServerOptions {
  /** Path of the Unix socket (Envoy's bootstrap cluster `sds-grpc` pipes to it). */
  readonly socketPath: string;
  readonly logger?: Logger;
  /** The agent's registry, for the `trellis_agent_sds_*` metrics; default a registry of its own. */
  readonly registry?: Registry;
  /** How often certificate files a proxy asked for are checked for a change; default 1 s. */
  readonly filePollMs?: number;
}

export class SdsServer {
  private readonly logger: Logger;
  private readonly source = new CertificateSource();
  private readonly controller: PushController<AgentSecrets>;
  private readonly files: FileSecrets;
  private readonly ads: AdsServer;
  private readonly warnedUnknown = new Set<string>();
  private listening = false;

  constructor(private readonly options: SdsServerOptions) {
    this.logger = (options.logger ?? silentLogger).child({ component: 'sds' });
    this.files = new FileSecrets({
      logger: this.logger,
      pollMs: options.filePollMs ?? DEFAULT_FILE_POLL_MS,
      onChange: () => this.source.setFiles(this.files.current()),
    });
    const metrics = new XdsMetrics({ prefix: 'trellis_agent_sds', registry: options.registry });
    const generator = new SecretGenerator();
    this.controller = new PushController(this.source, generator, {
      debounce: { quietMs: 0, maxMs: 0 },
      metrics,
      logger: this.logger,
      cache: new ResourceCache({ versionOf: generator.versionOf }),
    });
    this.controller.start();
    this.ads = new AdsServer(this.controller as PushController<unknown>, {
      service: secretDiscoveryService,
      metrics,
      logger: this.logger,
      controlPlaneId: CONTROL_PLANE_ID,
      maxConnectionAgeMs: UNLIMITED_CONNECTION_AGE_MS,
      onSubscribe: (event) => this.subscribed(event),
    });
  }

  /**
   * Binds the Unix socket (a stale socket file left by an earlier agent is replaced) and makes it 0600:
   * only the agent's own user (Envoy runs as the same UID 1337) may fetch the private key.
   */
  async listen(): Promise<void> {
    const file = this.options.socketPath;
    try {
      const stat = await fs.lstat(file);
      if (!stat.isSocket()) throw new Error(`SDS socket path ${file} exists and is not a socket`);
      await fs.rm(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    await new Promise<void>((resolve, reject) => {
      this.ads.server.bindAsync(`unix://${file}`, grpc.ServerCredentials.createInsecure(), (err) =>
        err ? reject(err) : resolve(),
      );
    });
    await fs.chmod(file, 0o600);
    this.listening = true;
    this.logger.info({ socket: file }, 'sds: listening');
  }

  /** Serves `certificate` from now on and pushes it to every stream that lacks it. */
  update(certificate: WorkloadCertificate): void {
    this.source.set(certificate);
    this.logger.info({ serial: certificate.serial, streams: this.controller.streams.size }, 'sds: secrets updated');
  }

  /** The certificate being served. */
  current(): WorkloadCertificate | undefined {
    return this.source.current().certificate;
  }

  status(): SdsStreamStatus[] {
    const sds = shortTypeName(TypeUrl.Secret);
    return this.ads.status().map((s) => {
      const secrets = s.types.find((t) => t.type === sds);
      const subscription = secrets?.subscription ?? [];
      return {
        stream: s.stream,
        protocol: s.protocol,
        nodeId: s.node?.id ?? '',
        subscribed: subscription === '*' ? ['*'] : [...subscription].sort(),
        sent: secrets?.sentVersion ?? '',
        acked: secrets?.ackedVersion || undefined,
        nack: secrets?.lastNack && { nonce: secrets.lastNack.nonce, message: secrets.lastNack.message },
        responses: secrets?.responses ?? 0,
      };
    });
  }

  /** Ends every stream, shuts down (forcing it after `graceMs`) and removes the socket file. */
  async close(graceMs = 2_000): Promise<void> {
    this.files.close();
    this.controller.stop();
    await this.ads.close(graceMs);
    if (this.listening) await fs.rm(this.options.socketPath, { force: true });
    this.listening = false;
  }

  /** Watches the certificate files a name asks for; logs each name the agent does not serve, once. */
  private subscribed(event: SubscribeEvent): void {
    for (const name of event.names) {
      if (SERVED_SECRETS.includes(name) || this.files.watch(name) || this.warnedUnknown.has(name)) continue;
      this.warnedUnknown.add(name);
      this.logger.warn(
        { stream: event.stream, node: event.proxy?.id, secret: name },
        'sds: unknown secret requested; not served',
      );
    }
  }
}
