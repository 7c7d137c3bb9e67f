// The Aggregated Discovery Service on @grpc/grpc-js: both ADS methods, keepalive, max connection age
// (a GOAWAY makes clients reconnect, so replicas rebalance), a message-size cap, and a clean shutdown.
// One server, two kinds of port: plaintext (listen: 15010, local mode, unauthenticated) and TLS
// (listenSecure: 15012), where every stream must present a verified client certificate and is bound to
// its SPIFFE ID (authn.ts). The same server serves a single-type xDS service instead of ADS when told to
// (`service`): the agent's SDS (sidecar/sds-server.ts) is this server with secretDiscoveryService.
import * as grpc from '@grpc/grpc-js';
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import {
  DeltaDiscoveryRequestSchema,
  DiscoveryRequestSchema,
  type DeltaDiscoveryRequest,
  type DiscoveryRequest,
} from '../envoy/gen/envoy/service/discovery/v3/discovery_pb.js';
import { TypeUrl } from '../envoy/protos.js';
import { keepShapes } from '../../lib/shape-keeper.js';
import type { Logger } from '../logger.js';
import type { XdsMetrics } from './metrics.js';
import { authenticateTlsPeer, StreamRefusal, type StreamPeer } from './authn.js';
import { DeltaStream } from './delta-stream.js';
import type { MemoryPressure } from './memory-pressure.js';
import type { Clock } from './clock.js';
import { defaultStreamLimits, hardRequestCap, measured, type StreamLimits } from './limits.js';
import type { PushController } from './push-controller.js';
import { installFrameWrites } from './frame-writes.js';
import { Response, serializeResponse } from './response.js';
import { decodeSotwRequest } from './sotw-request.js';
import { SotwStream } from './sotw-stream.js';
import { shutdownServer } from './server-shutdown.js';
import type { StreamStatus, SubscribeEvent } from './xds-stream.js';

/** A gRPC service of xDS streams: its state-of-the-world and delta methods, and the type it is for. */
export interface XdsService {
  /** The fully qualified service name. */
  readonly name: string;
  readonly sotwMethod: string;
  readonly deltaMethod: string;
  /** The one type a single-type service serves (requests may leave type_url empty); unset for ADS. */
  readonly typeUrl?: string;
}

export const aggregatedDiscoveryService: XdsService = {
  name: 'envoy.service.discovery.v3.AggregatedDiscoveryService',
  sotwMethod: 'StreamAggregatedResources',
  deltaMethod: 'DeltaAggregatedResources',
};

export const secretDiscoveryService: XdsService = {
  name: 'envoy.service.secret.v3.SecretDiscoveryService',
  sotwMethod: 'StreamSecrets',
  deltaMethod: 'DeltaSecrets',
  typeUrl: TypeUrl.Secret,
};

/** grpc-js's "no max connection age" (its UNLIMITED_CONNECTION_AGE_MS): for a local socket with one client. */
export const UNLIMITED_CONNECTION_AGE_MS = 2_147_483_647;

function method<Desc extends DescMessage>(
  path: string,
  schema: Desc,
  decode: (bytes: Buffer) => MessageShape<Desc>,
): grpc.MethodDefinition<MessageShape<Desc>, Response> {
  return {
    path,
    requestStream: true,
    responseStream: true,
    requestSerialize: (message: MessageShape<Desc>) => Buffer.from(toBinary(schema, message)),
    requestDeserialize: measured(decode),
    // Responses are pieces of cached bytes (response.ts), copied with their nonce into grpc-js's frame here.
    responseSerialize: serializeResponse,
    responseDeserialize: (bytes: Buffer) => new Response(bytes, undefined),
  };
}

/** The definition of an xDS service with pre-encoded responses (requests are decoded into typed messages). */
export function xdsServiceDefinition(service: XdsService): grpc.ServiceDefinition {
  return {
    [service.sotwMethod]: method(`/${service.name}/${service.sotwMethod}`, DiscoveryRequestSchema, decodeSotwRequest),
    [service.deltaMethod]: method(
      `/${service.name}/${service.deltaMethod}`,
      DeltaDiscoveryRequestSchema,
      (bytes: Buffer) => fromBinary(DeltaDiscoveryRequestSchema, bytes),
    ),
  };
}

export interface AdsServerOptions {
  readonly metrics: XdsMetrics;
  readonly logger: Logger;
  /** Largest response written; default 4 MiB (the receive limit of grpc-js clients). */
  readonly maxMessageBytes?: number;
  /** HTTP/2 keepalive ping interval; default 30 s. */
  readonly keepaliveMs?: number;
  /** Age after which a connection gets a GOAWAY; default 30 min (as istiod). */
  readonly maxConnectionAgeMs?: number;
  /** How long streams may continue after that GOAWAY; default 10 s. */
  readonly maxConnectionAgeGraceMs?: number;
  /** `control_plane.identifier` in responses; default `trellis`. */
  readonly controlPlaneId?: string;
  /** Unflushed response bytes per stream before pushes to it are coalesced (backpressure); default 4 MiB. */
  readonly maxQueuedBytes?: number;
  /** Per-stream caps (limits.ts); each field defaults to defaultStreamLimits. */
  readonly limits?: Partial<StreamLimits>;
  /** The clock of the request-rate buckets and the initial-config time (tests). */
  readonly clock?: Clock;
  /** When given, new streams are refused with UNAVAILABLE while the heap is under pressure. */
  readonly memoryPressure?: MemoryPressure;
  /** The service served; default ADS (aggregatedDiscoveryService). */
  readonly service?: XdsService;
  /** Told the names each request subscribes explicitly (StreamOptions.onSubscribe). */
  readonly onSubscribe?: (event: SubscribeEvent) => void;
}

export class AdsServer {
  readonly server: grpc.Server;
  private readonly streams = new Set<SotwStream | DeltaStream>();
  /**
   * The metadata objects of calls that arrived on a TLS port (marked by an interceptor of that port's
   * credentials). grpc-js hides a call's port and shows its TLS state only when a client certificate
   * verified, so this is how a TLS call without one is told from a plaintext call.
   */
  private readonly tlsCalls = new WeakSet<grpc.Metadata>();
  /** The trust domain client certificates on the TLS port must belong to. */
  private trustDomain: string | undefined;

  constructor(
    private readonly controller: PushController<unknown>,
    private readonly options: AdsServerOptions,
  ) {
    const maxMessageBytes = options.maxMessageBytes ?? 4 * 1024 * 1024;
    const limits: StreamLimits = { ...defaultStreamLimits, ...options.limits };
    const service = options.service ?? aggregatedDiscoveryService;
    installFrameWrites(); // large cached bytes go to the HTTP/2 stream by reference, not copied per stream
    this.server = new grpc.Server({
      'grpc.keepalive_time_ms': options.keepaliveMs ?? 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.http2.min_ping_interval_without_data_ms': 5_000,
      'grpc.max_connection_age_ms': options.maxConnectionAgeMs ?? 30 * 60_000,
      'grpc.max_connection_age_grace_ms': options.maxConnectionAgeGraceMs ?? 10_000,
      'grpc.max_send_message_length': maxMessageBytes,
      'grpc.max_receive_message_length': hardRequestCap(limits),
    });
    const streamOptions = {
      metrics: options.metrics,
      logger: options.logger,
      maxMessageBytes,
      controlPlaneId: options.controlPlaneId ?? 'trellis',
      maxQueuedBytes: options.maxQueuedBytes ?? 4 * 1024 * 1024,
      limits,
      clock: options.clock,
      typeUrl: service.typeUrl,
      onSubscribe: options.onSubscribe,
    };
    const open = (
      call: grpc.ServerDuplexStream<unknown, Response>,
      protocol: 'sotw' | 'delta',
      make: (peer: StreamPeer) => SotwStream | DeltaStream,
    ): void => {
      if (options.memoryPressure?.high) {
        this.shed(call, protocol, options.memoryPressure);
        return;
      }
      let peer: StreamPeer;
      try {
        peer = this.authenticate(call);
      } catch (err) {
        if (!(err instanceof StreamRefusal)) throw err;
        this.refuse(call, protocol, err);
        return;
      }
      const stream = make(peer);
      this.streams.add(stream);
      call.on('close', () => this.streams.delete(stream));
    };
    this.server.addService(xdsServiceDefinition(service), {
      [service.sotwMethod]: (call: grpc.ServerDuplexStream<DiscoveryRequest, Response>) =>
        open(call, 'sotw', (peer) => new SotwStream(call, controller, streamOptions, peer)),
      [service.deltaMethod]: (call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, Response>) =>
        open(call, 'delta', (peer) => new DeltaStream(call, controller, streamOptions, peer)),
    });
  }

  /** Plaintext calls are not authenticated; TLS calls by their client certificate (or StreamRefusal). */
  private authenticate(call: grpc.ServerDuplexStream<unknown, Response>): StreamPeer {
    if (!this.tlsCalls.has(call.metadata)) return { transport: 'plaintext' };
    return authenticateTlsPeer(call.getAuthContext(), this.trustDomain!);
  }

  private refuse(
    call: grpc.ServerDuplexStream<unknown, Response>,
    protocol: 'sotw' | 'delta',
    refusal: StreamRefusal,
  ): void {
    this.options.metrics.authnRefusals.inc({ reason: refusal.reason });
    this.options.logger.warn(
      {
        protocol,
        peer: call.getPeer(),
        code: grpc.status[refusal.code],
        reason: refusal.reason,
        details: refusal.message,
      },
      'xds: stream refused',
    );
    call.emit('error', { code: refusal.code, details: refusal.message });
  }

  /** Refuses a new stream under memory pressure: the client backs off and retries (or tries a replica). */
  private shed(
    call: grpc.ServerDuplexStream<unknown, Response>,
    protocol: 'sotw' | 'delta',
    pressure: MemoryPressure,
  ): void {
    this.options.metrics.shedStreams.inc();
    const details = `control plane under memory pressure (${pressure.describe()}); retry later`;
    this.options.logger.warn({ protocol, peer: call.getPeer(), details }, 'xds: new stream refused');
    call.emit('error', { code: grpc.status.UNAVAILABLE, details });
  }

  /** Adds another service (the CA service of a later issue) to the same port. */
  addService(definition: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void {
    this.server.addService(definition, implementation);
  }

  /**
   * Binds a TLS port (15012): `credentials` should request client certificates and verify them against
   * the trust bundle without requiring them at the handshake (the CA service on the same port serves
   * workloads that have no certificate yet; MemoryCertificateProvider.serverCredentials(false)). Every
   * ADS stream on it must present one whose URI SAN is a workload SPIFFE ID of `trustDomain`, or it ends
   * with UNAUTHENTICATED; it is then bound to that identity. Returns the bound port.
   */
  listenSecure(host: string, port: number, credentials: grpc.ServerCredentials, trustDomain: string): Promise<number> {
    if (this.trustDomain !== undefined && this.trustDomain !== trustDomain) {
      throw new Error(`TLS ports of one server must share a trust domain (${this.trustDomain}, not ${trustDomain})`);
    }
    this.trustDomain = trustDomain;
    const markTls: grpc.ServerInterceptor = (_method, call) =>
      new grpc.ServerInterceptingCall(call, {
        start: (next) =>
          next({
            onReceiveMetadata: (metadata, pass) => {
              this.tlsCalls.add(metadata);
              pass(metadata);
            },
          }),
      });
    return this.listen(host, port, grpc.experimental.createServerCredentialsWithInterceptors(credentials, [markTls]));
  }

  /** Binds `host:port` (port 0 picks a free one) and returns the bound port. */
  listen(host: string, port: number, credentials = grpc.ServerCredentials.createInsecure()): Promise<number> {
    const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, credentials, (err, bound) => (err ? reject(err) : resolve(bound)));
    });
  }

  /** What each connected proxy was sent and what it ACKed or NACKed. */
  status(): StreamStatus[] {
    return [...this.streams].map((s) => s.status()).sort((a, b) => a.stream - b.stream);
  }

  /**
   * Ends every stream with OK (clients reconnect elsewhere, keeping their config meanwhile), then shuts
   * the server down, forcing it after `graceMs`.
   */
  async close(graceMs = 5_000): Promise<void> {
    for (const stream of [...this.streams]) stream.end();
    await shutdownServer(this.server, graceMs);
  }
}

// A delta request is decoded per message and dropped once handled; an ACK (no node) and a stream's first
// request (with its node) have hidden classes of their own (lib/shape-keeper.ts).
keepShapes(
  fromBinary(DeltaDiscoveryRequestSchema, new Uint8Array(0)),
  fromBinary(
    DeltaDiscoveryRequestSchema,
    toBinary(
      DeltaDiscoveryRequestSchema,
      create(DeltaDiscoveryRequestSchema, { node: { id: 'sample', metadata: { fields: {} }, locality: {} } }),
    ),
  ),
);
