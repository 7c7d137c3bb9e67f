// The agent's Secret Discovery Service for Envoy (envoy.service.secret.v3.SecretDiscoveryService) on a
// Unix socket: Secret `default` (the workload certificate chain and key) and `ROOTCA` (the trust bundle),
// the names every cluster and listener refers to (control-plane/translate/cluster-tls.ts). Only the
// names a stream subscribes to are sent; a rotation is pushed to every open stream it changes.
//
// StreamSecrets (state of the world):
//   - a request whose `response_nonce` is not the latest one sent on the stream is stale and ignored (the
//     client sends its whole subscription again with the latest nonce);
//   - with the latest nonce: no `error_detail` is an ACK of `version_info`, an `error_detail` a NACK
//     (logged, recorded; nothing is re-sent until the certificate changes);
//   - a response is sent when the subscription changes or the secrets change, carrying every subscribed
//     secret the agent has (unknown names are logged and never sent: Envoy keeps waiting for them).
// DeltaSecrets (incremental): subscribe/unsubscribe are applied from every request, stale or not;
// `initial_resource_versions` count as sent; a response carries only secrets whose version the client
// lacks. Versions: `default` = the certificate serial, `ROOTCA` = a hash of the bundle.
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import {
  SecretSchema,
  type Secret,
} from '../control-plane/envoy/gen/envoy/extensions/transport_sockets/tls/v3/secret_pb.js';
import {
  DeltaDiscoveryRequestSchema,
  DeltaDiscoveryResponseSchema,
  DiscoveryRequestSchema,
  DiscoveryResponseSchema,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest,
  type DiscoveryResponse,
} from '../control-plane/envoy/gen/envoy/service/discovery/v3/discovery_pb.js';
import { packAny, TypeUrl, type Any } from '../control-plane/envoy/protos.js';
import { silentLogger, type Logger } from '../control-plane/logger.js';
import { shutdownServer } from '../control-plane/xds/server-shutdown.js';
import { SDS_ROOT_SECRET, SDS_WORKLOAD_SECRET } from '../api/names.js';
import type { WorkloadCertificate } from './certificate-manager.js';

const SERVICE = '/envoy.service.secret.v3.SecretDiscoveryService';
const CONTROL_PLANE_ID = 'trellis-agent';

function method<Req extends DescMessage, Res extends DescMessage>(
  name: string,
  request: Req,
  response: Res,
): grpc.MethodDefinition<MessageShape<Req>, MessageShape<Res>> {
  return {
    path: `${SERVICE}/${name}`,
    requestStream: true,
    responseStream: true,
    requestSerialize: (m: MessageShape<Req>) => Buffer.from(toBinary(request, m)),
    requestDeserialize: (b: Buffer) => fromBinary(request, b),
    responseSerialize: (m: MessageShape<Res>) => Buffer.from(toBinary(response, m)),
    responseDeserialize: (b: Buffer) => fromBinary(response, b),
  };
}

/** The SDS service definition (also usable by a client: `new grpc.Client(…).makeBidiStreamRequest`). */
export const sdsServiceDefinition = {
  StreamSecrets: method('StreamSecrets', DiscoveryRequestSchema, DiscoveryResponseSchema),
  DeltaSecrets: method('DeltaSecrets', DeltaDiscoveryRequestSchema, DeltaDiscoveryResponseSchema),
};

/** Secret `default`: the chain (leaf first) and the private key, inline. */
export function workloadSecret(certificate: WorkloadCertificate): Secret {
  return create(SecretSchema, {
    name: SDS_WORKLOAD_SECRET,
    type: {
      case: 'tlsCertificate',
      value: {
        certificateChain: { specifier: { case: 'inlineBytes', value: Buffer.from(certificate.certChainPem) } },
        privateKey: { specifier: { case: 'inlineBytes', value: Buffer.from(certificate.privateKeyPem) } },
      },
    },
  });
}

/** Secret `ROOTCA`: the trust bundle as the validation context's trusted CA. */
export function rootSecret(certificate: WorkloadCertificate): Secret {
  return create(SecretSchema, {
    name: SDS_ROOT_SECRET,
    type: {
      case: 'validationContext',
      value: { trustedCa: { specifier: { case: 'inlineBytes', value: Buffer.from(certificate.trustBundlePem) } } },
    },
  });
}

interface ServedSecret {
  readonly name: string;
  readonly version: string;
  readonly any: Any;
}

function servedSecrets(certificate: WorkloadCertificate): Map<string, ServedSecret> {
  const bundleHash = crypto.createHash('sha256').update(certificate.trustBundlePem).digest('hex').slice(0, 16);
  return new Map([
    [
      SDS_WORKLOAD_SECRET,
      { name: SDS_WORKLOAD_SECRET, version: certificate.serial, any: packAny(workloadSecret(certificate)) },
    ],
    [SDS_ROOT_SECRET, { name: SDS_ROOT_SECRET, version: bundleHash, any: packAny(rootSecret(certificate)) }],
  ]);
}

/** What one stream was sent and what it ACKed or NACKed (debug output, tests). */
export interface SdsStreamStatus {
  readonly stream: number;
  readonly protocol: 'sotw' | 'delta';
  readonly nodeId: string;
  readonly subscribed: readonly string[];
  /** SotW: version_info of the last response; delta: name → version sent. */
  readonly sent: string | Readonly<Record<string, string>>;
  readonly acked: string | undefined;
  readonly nack: { readonly nonce: string; readonly message: string } | undefined;
  readonly responses: number;
}

export interface SdsServerOptions {
  /** Path of the Unix socket (Envoy's bootstrap cluster `sds-grpc` pipes to it). */
  readonly socketPath: string;
  readonly logger?: Logger;
}

let streamIds = 0;

abstract class SdsStream<Req> {
  readonly id = ++streamIds;
  nodeId = '';
  readonly subscribed = new Set<string>();
  nonce = 0;
  responses = 0;
  acked: string | undefined;
  nack: { nonce: string; message: string } | undefined;
  private readonly warnedUnknown = new Set<string>();

  constructor(
    protected readonly server: SdsServer,
    protected readonly logger: Logger,
  ) {}

  abstract onRequest(request: Req): void;
  /** Sends what the client lacks of the current secrets (if anything). */
  abstract push(): void;
  protected abstract readonly protocol: SdsStreamStatus['protocol'];
  /** What was sent: SotW the version of the last response, delta name → version. */
  protected abstract sent(): SdsStreamStatus['sent'];

  status(): SdsStreamStatus {
    return {
      stream: this.id,
      protocol: this.protocol,
      nodeId: this.nodeId,
      subscribed: [...this.subscribed].sort(),
      sent: this.sent(),
      acked: this.acked,
      nack: this.nack,
      responses: this.responses,
    };
  }
  abstract end(): void;

  /**
   * What every request starts with: remember the node, refuse another type (INVALID_ARGUMENT, ending the
   * stream; false), and record the ACK or NACK of `nonce` when it answers our last response.
   */
  protected accept(
    call: { emit(event: 'error', err: Partial<grpc.StatusObject>): boolean },
    request: Pick<DiscoveryRequest, 'node' | 'typeUrl' | 'responseNonce' | 'errorDetail'>,
    lastNonce: string,
    ackedAs: string,
  ): boolean {
    if (this.nodeId === '' && request.node) this.nodeId = request.node.id;
    if (request.typeUrl !== '' && request.typeUrl !== TypeUrl.Secret) {
      call.emit('error', {
        code: grpc.status.INVALID_ARGUMENT,
        details: `type_url ${request.typeUrl} is not a Secret`,
      });
      return false;
    }
    if (request.responseNonce === '' || request.responseNonce !== lastNonce) return true;
    if (request.errorDetail) {
      this.nack = { nonce: request.responseNonce, message: request.errorDetail.message };
      this.logger.warn(
        { stream: this.id, node: this.nodeId, nonce: request.responseNonce, error: request.errorDetail.message },
        'sds: NACK',
      );
    } else {
      this.acked = ackedAs;
      this.nack = undefined;
    }
    return true;
  }

  protected warnUnknown(names: Iterable<string>): void {
    for (const name of names) {
      if (name === SDS_WORKLOAD_SECRET || name === SDS_ROOT_SECRET || this.warnedUnknown.has(name)) continue;
      this.warnedUnknown.add(name);
      this.logger.warn(
        { stream: this.id, node: this.nodeId, secret: name },
        'sds: unknown secret requested; not served',
      );
    }
  }
}

class SotwSdsStream extends SdsStream<DiscoveryRequest> {
  private lastNonce = '';
  private sentVersion = '';

  constructor(
    server: SdsServer,
    logger: Logger,
    private readonly call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>,
  ) {
    super(server, logger);
  }

  onRequest(request: DiscoveryRequest): void {
    if (!this.accept(this.call, request, this.lastNonce, request.versionInfo)) return;
    if (request.responseNonce !== '' && request.responseNonce !== this.lastNonce) return; // stale
    const names = new Set(request.resourceNames);
    const changed = names.size !== this.subscribed.size || [...names].some((n) => !this.subscribed.has(n));
    if (!changed && this.lastNonce !== '') return;
    this.subscribed.clear();
    for (const n of names) this.subscribed.add(n);
    this.warnUnknown(names);
    this.sentVersion = ''; // the subscription changed: answer it even if the secrets did not
    this.push();
  }

  push(): void {
    const secrets = this.server.secrets();
    if (!secrets) return;
    const resources = [...this.subscribed]
      .sort()
      .map((n) => secrets.get(n))
      .filter((s): s is ServedSecret => s !== undefined);
    if (resources.length === 0) return;
    const version = crypto
      .createHash('sha256')
      .update(resources.map((r) => `${r.name}=${r.version}`).join(','))
      .digest('hex')
      .slice(0, 16);
    if (version === this.sentVersion) return;
    this.sentVersion = version;
    this.lastNonce = String(++this.nonce);
    this.responses++;
    this.call.write(
      create(DiscoveryResponseSchema, {
        versionInfo: version,
        resources: resources.map((r) => r.any),
        typeUrl: TypeUrl.Secret,
        nonce: this.lastNonce,
        controlPlane: { identifier: CONTROL_PLANE_ID },
      }),
    );
  }

  protected readonly protocol = 'sotw' as const;

  protected sent(): SdsStreamStatus['sent'] {
    return this.sentVersion;
  }

  end(): void {
    this.call.end();
  }
}

class DeltaSdsStream extends SdsStream<DeltaDiscoveryRequest> {
  private lastNonce = '';
  /** name → version the client has (sent by us, or announced in initial_resource_versions). */
  private readonly has = new Map<string, string>();
  private first = true;

  constructor(
    server: SdsServer,
    logger: Logger,
    private readonly call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>,
  ) {
    super(server, logger);
  }

  onRequest(request: DeltaDiscoveryRequest): void {
    if (!this.accept(this.call, request, this.lastNonce, request.responseNonce)) return;
    if (this.first) {
      for (const [name, version] of Object.entries(request.initialResourceVersions)) this.has.set(name, version);
      this.first = false;
    }
    for (const name of request.resourceNamesUnsubscribe) {
      this.subscribed.delete(name);
      this.has.delete(name);
    }
    for (const name of request.resourceNamesSubscribe) this.subscribed.add(name);
    this.warnUnknown(request.resourceNamesSubscribe);
    this.push();
  }

  push(): void {
    const secrets = this.server.secrets();
    if (!secrets) return;
    const resources = [...this.subscribed]
      .sort()
      .map((n) => secrets.get(n))
      .filter((s): s is ServedSecret => s !== undefined && this.has.get(s.name) !== s.version);
    if (resources.length === 0) return;
    for (const r of resources) this.has.set(r.name, r.version);
    this.lastNonce = String(++this.nonce);
    this.responses++;
    this.call.write(
      create(DeltaDiscoveryResponseSchema, {
        systemVersionInfo: resources.map((r) => `${r.name}=${r.version}`).join(','),
        resources: resources.map((r) => ({ name: r.name, version: r.version, resource: r.any })),
        typeUrl: TypeUrl.Secret,
        nonce: this.lastNonce,
        controlPlane: { identifier: CONTROL_PLANE_ID },
      }),
    );
  }

  protected readonly protocol = 'delta' as const;

  protected sent(): SdsStreamStatus['sent'] {
    return Object.fromEntries([...this.has].sort(([a], [b]) => a.localeCompare(b)));
  }

  end(): void {
    this.call.end();
  }
}

export class SdsServer {
  private readonly server = new grpc.Server();
  private readonly logger: Logger;
  private readonly streams = new Set<SdsStream<unknown>>();
  private served: Map<string, ServedSecret> | undefined;
  private certificate: WorkloadCertificate | undefined;
  private listening = false;

  constructor(private readonly options: SdsServerOptions) {
    this.logger = (options.logger ?? silentLogger).child({ component: 'sds' });
    this.server.addService(sdsServiceDefinition, {
      StreamSecrets: (call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>) =>
        this.track(new SotwSdsStream(this, this.logger, call), call),
      DeltaSecrets: (call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>) =>
        this.track(new DeltaSdsStream(this, this.logger, call), call),
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
      this.server.bindAsync(`unix://${file}`, grpc.ServerCredentials.createInsecure(), (err) =>
        err ? reject(err) : resolve(),
      );
    });
    await fs.chmod(file, 0o600);
    this.listening = true;
    this.logger.info({ socket: file }, 'sds: listening');
  }

  /** Serves `certificate` from now on and pushes it to every stream that lacks it. */
  update(certificate: WorkloadCertificate): void {
    this.certificate = certificate;
    this.served = servedSecrets(certificate);
    for (const stream of this.streams) stream.push();
    this.logger.info({ serial: certificate.serial, streams: this.streams.size }, 'sds: secrets updated');
  }

  /** The certificate being served. */
  current(): WorkloadCertificate | undefined {
    return this.certificate;
  }

  /** @internal the encoded secrets of the current certificate. */
  secrets(): ReadonlyMap<string, ServedSecret> | undefined {
    return this.served;
  }

  status(): SdsStreamStatus[] {
    return [...this.streams].map((s) => s.status()).sort((a, b) => a.stream - b.stream);
  }

  /** Ends every stream, shuts down (forcing it after `graceMs`) and removes the socket file. */
  async close(graceMs = 2_000): Promise<void> {
    for (const stream of [...this.streams]) stream.end();
    await shutdownServer(this.server, graceMs);
    if (this.listening) await fs.rm(this.options.socketPath, { force: true });
    this.listening = false;
  }

  private track<Req, Res>(stream: SdsStream<Req>, call: grpc.ServerDuplexStream<Req, Res>): void {
    this.streams.add(stream as SdsStream<unknown>);
    call.on('data', (request: Req) => {
      try {
        stream.onRequest(request);
      } catch (err) {
        this.logger.error({ stream: stream.id, err: (err as Error).message }, 'sds: request failed');
        call.emit('error', { code: grpc.status.INTERNAL, details: (err as Error).message });
      }
    });
    const done = () => this.streams.delete(stream as SdsStream<unknown>);
    call.on('end', () => {
      done();
      call.end();
    });
    call.on('error', done);
    call.on('close', done);
    call.on('cancelled', done);
  }
}
