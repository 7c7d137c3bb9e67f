// The agent's local xDS proxy. Envoy and proxyless gRPC applications in the pod speak plaintext ADS to a
// local server (a Unix socket, optionally 127.0.0.1:port); every downstream stream is carried to the
// control plane on ONE shared upstream gRPC channel: one authenticated connection per pod (TLS with the
// workload certificate in a cluster, port 15012; plaintext in local mode, 15010).
//
// Both ADS methods are relayed as raw bytes (passthrough serializers, nothing decoded on the way), so
// requests and responses are byte-identical to what the peers sent. Each downstream stream gets its own
// upstream stream on the shared channel; flow control is kept end to end (a source is paused while its
// destination's buffer is full). Only the first request of a stream is decoded, for the node id in logs.
//
// Lifecycle: a downstream cancel or half-close is passed upstream; an upstream status ends the
// downstream with the same code and details (the client reconnects with its own backoff and keeps its
// cached config meanwhile); closing the proxy ends every stream with UNAVAILABLE.
//
// An unreachable upstream (the control plane restarting): a new stream is held (its upstream call is
// wait-for-ready) for up to `upstreamHoldMs` (default 30 s) and carried as soon as the channel connects,
// then fails with UNAVAILABLE. Failing it at once made every client's own reconnect backoff grow while the
// control plane was away: grpc-js-xds 1.14.1 never resets its ADS backoff (1 s × 1.6 up to 120 s), so after
// a control plane pod was killed, proxyless applications resynced 10.9–120 s later, long after the agent
// itself had reconnected. Held, the stream the client opens right after the old one ended is the one that
// reaches the new control plane, within the agent's own reconnect backoff (≤ 10 s).
//
// Certificate rotation: with credentials from a MemoryCertificateProvider, every new TLS handshake uses
// the current certificate; an established connection and its streams keep running on the old one until
// they end (the control plane's max connection age, 30 min, bounds that). Istio's pilot-agent xDS proxy
// behaves the same.
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import * as grpc from '@grpc/grpc-js';
import fs from 'node:fs/promises';
import { Counter, Gauge, type Registry } from 'prom-client';
import { ADS_SERVICE_NAME } from '../api/services.js';
import { silentLogger, type Logger } from '../control-plane/logger.js';
import { shutdownServer } from '../control-plane/xds/server-shutdown.js';

const SERVICE = `/${ADS_SERVICE_NAME}`;

/** The two ADS methods; `sotw` is StreamAggregatedResources, `delta` DeltaAggregatedResources. */
export type AdsProtocol = 'sotw' | 'delta';

const METHODS = {
  sotw: 'StreamAggregatedResources',
  delta: 'DeltaAggregatedResources',
} as const satisfies Record<AdsProtocol, string>;

const identity = (bytes: Buffer): Buffer => bytes;

function rawMethod(protocol: AdsProtocol): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path: `${SERVICE}/${METHODS[protocol]}`,
    requestStream: true,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

/** The ADS service with both methods carrying raw bytes. */
export const rawAdsServiceDefinition = {
  StreamAggregatedResources: rawMethod('sotw'),
  DeltaAggregatedResources: rawMethod('delta'),
} satisfies grpc.ServiceDefinition;

export interface XdsProxyListen {
  /** A Unix socket path (a stale socket file there is removed first). */
  readonly socketPath?: string;
  /** TCP host for `port`; default 127.0.0.1. */
  readonly host?: string;
  /** TCP port (0 picks a free one); no TCP listener when unset. */
  readonly port?: number;
}

export interface XdsProxyUpstream {
  /** Any grpc-js target: `trellisd.trellis-system.svc:15012`, `127.0.0.1:15010`, `unix:///…`. */
  readonly target: string;
  /** TLS with the workload certificate (MemoryCertificateProvider.channelCredentials) or insecure (local mode). */
  readonly credentials: grpc.ChannelCredentials;
  /** Merged over the proxy's defaults (keepalive 30 s, unlimited receive size, reconnect backoff ≤ 10 s). */
  readonly channelOptions?: grpc.ChannelOptions;
}

export interface XdsProxyOptions {
  readonly listen: XdsProxyListen;
  readonly upstream: XdsProxyUpstream;
  readonly logger?: Logger;
  /** Where the proxy's metrics are registered (the agent's registry); none when unset. */
  readonly registry?: Registry;
  /** How long close() lets downstream connections go away before forcing them; default 1 s. */
  readonly shutdownGraceMs?: number;
  /**
   * How long a new stream waits for an unreachable upstream before it fails with UNAVAILABLE (see the top of
   * this file); default 30 s. 0: it fails at once (grpc-js's own status, e.g. the TLS refusal).
   */
  readonly upstreamHoldMs?: number;
}

/** Default of XdsProxyOptions.upstreamHoldMs. */
export const DEFAULT_UPSTREAM_HOLD_MS = 30_000;

export interface XdsProxyAddress {
  readonly socketPath?: string;
  readonly port?: number;
}

/** The upstream channel's grpc-js connectivity state, by name. */
export type UpstreamState = 'IDLE' | 'CONNECTING' | 'READY' | 'TRANSIENT_FAILURE' | 'SHUTDOWN';

export interface XdsProxyStreamStatus {
  readonly id: number;
  readonly protocol: AdsProtocol;
  /** From the first request, when it carried one. */
  readonly nodeId: string | undefined;
  readonly openedAt: string;
  readonly requests: number;
  readonly responses: number;
}

export interface XdsProxyStatus {
  readonly upstreamTarget: string;
  readonly upstreamState: UpstreamState;
  /** The upstream channel has been READY at least once. */
  readonly everConnected: boolean;
  readonly openStreams: number;
  /** Streams relayed since start, open ones included. */
  readonly totalStreams: number;
  /** Messages relayed downstream → control plane, all streams since start. */
  readonly requestsRelayed: number;
  /** Messages relayed control plane → downstream, all streams since start. */
  readonly responsesRelayed: number;
  readonly streams: readonly XdsProxyStreamStatus[];
}

const DEFAULT_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
  'grpc.keepalive_permit_without_calls': 1,
  // Responses go to the local client as they came; the client enforces its own limit.
  'grpc.max_receive_message_length': -1,
  'grpc.max_send_message_length': -1,
  // grpc-js defaults to 120 s; a control plane that comes back should be found sooner.
  'grpc.initial_reconnect_backoff_ms': 1_000,
  'grpc.max_reconnect_backoff_ms': 10_000,
};

class ProxyMetrics {
  readonly openStreams: Gauge<'protocol'>;
  readonly streams: Counter<'protocol'>;
  readonly messages: Counter<'direction'>;
  readonly upstreamReady: Gauge;

  constructor(registry: Registry | undefined) {
    const registers = registry ? [registry] : [];
    this.openStreams = new Gauge({
      name: 'trellis_agent_xds_proxy_open_streams',
      help: 'ADS streams relayed by the local xDS proxy now, by protocol (sotw or delta).',
      labelNames: ['protocol'] as const,
      registers,
    });
    this.streams = new Counter({
      name: 'trellis_agent_xds_proxy_streams_total',
      help: 'ADS streams accepted by the local xDS proxy, by protocol.',
      labelNames: ['protocol'] as const,
      registers,
    });
    this.messages = new Counter({
      name: 'trellis_agent_xds_proxy_messages_total',
      help: 'Messages relayed, by direction (upstream: requests to the control plane; downstream: responses).',
      labelNames: ['direction'] as const,
      registers,
    });
    this.upstreamReady = new Gauge({
      name: 'trellis_agent_xds_proxy_upstream_ready',
      help: '1 while the upstream channel to the control plane is READY.',
      registers,
    });
  }
}

let streamCounter = 0;

/** The last occurrence of a length-delimited field (a message or a string) in protobuf bytes. */
function lengthDelimitedField(bytes: Uint8Array, fieldNo: number): Uint8Array | undefined {
  const reader = new BinaryReader(bytes);
  let found: Uint8Array | undefined;
  while (reader.pos < reader.len) {
    const [no, wireType] = reader.tag();
    if (no === fieldNo && wireType === WireType.LengthDelimited) found = reader.bytes();
    else reader.skip(wireType, no);
  }
  return found;
}

/** `node` is field 2 of DiscoveryRequest and field 1 of DeltaDiscoveryRequest; `id` is field 1 of Node. */
const NODE_FIELD: Record<AdsProtocol, number> = { sotw: 2, delta: 1 };
const NODE_ID_FIELD = 1;

/**
 * The node id of a stream's first request, or undefined when it has none or does not decode. Read from the
 * wire format directly: the proxy relays bytes and needs no Envoy message types for one string.
 */
export function nodeIdOf(protocol: AdsProtocol, bytes: Uint8Array): string | undefined {
  try {
    const node = lengthDelimitedField(bytes, NODE_FIELD[protocol]);
    const id = node && lengthDelimitedField(node, NODE_ID_FIELD);
    return id && id.length > 0 ? new TextDecoder('utf-8', { fatal: true }).decode(id) : undefined;
  } catch {
    return undefined;
  }
}

/** One downstream stream and the upstream stream it is carried on. */
class Relay {
  readonly id = ++streamCounter;
  readonly openedAt = new Date();
  nodeId: string | undefined;
  requests = 0;
  responses = 0;
  private upstreamStatus: grpc.StatusObject | undefined;
  private upstreamEnded = false;
  /** While a new stream waits for an unreachable upstream (upstreamHoldMs). */
  private holdTimer: NodeJS.Timeout | undefined;
  private done = false;
  private readonly up: grpc.ClientDuplexStream<Buffer, Buffer>;
  private readonly log: Logger;

  constructor(
    readonly protocol: AdsProtocol,
    private readonly down: grpc.ServerDuplexStream<Buffer, Buffer>,
    client: grpc.Client,
    logger: Logger,
    private readonly counted: (direction: 'upstream' | 'downstream') => void,
    private readonly onClosed: (relay: Relay) => void,
    holdMs: number,
  ) {
    this.log = logger.child({ stream: this.id, protocol });
    // No downstream metadata is forwarded (an `authorization` header meant for us must not travel on);
    // the identity the control plane sees is the channel's certificate. Wait-for-ready while held.
    this.up = client.makeBidiStreamRequest(
      rawAdsServiceDefinition[METHODS[protocol]].path,
      identity,
      identity,
      new grpc.Metadata({ waitForReady: holdMs > 0 }),
      { deadline: down.getDeadline() },
    );
    const channel = client.getChannel();
    if (holdMs > 0 && channel.getConnectivityState(false) !== grpc.connectivityState.READY) {
      this.holdTimer = setTimeout(() => {
        this.holdTimer = undefined;
        if (this.done || channel.getConnectivityState(false) === grpc.connectivityState.READY) return;
        this.up.cancel();
        this.endDownstream(
          grpc.status.UNAVAILABLE,
          `xDS proxy: the control plane was unreachable for ${holdMs} ms (${grpc.connectivityState[channel.getConnectivityState(false)]})`,
          'upstream unreachable',
        );
      }, holdMs);
    }

    down.on('data', (bytes: Buffer) => this.fromDownstream(bytes));
    down.on('end', () => {
      if (!this.done) this.up.end();
    });
    down.on('cancelled', () => this.finish('downstream cancelled'));
    down.on('error', () => undefined); // a failed write shows up as 'cancelled' or in the status we send

    this.up.on('data', (bytes: Buffer) => this.fromUpstream(bytes));
    this.up.on('end', () => {
      this.upstreamEnded = true;
      this.maybeRelayStatus();
    });
    this.up.on('status', (status: grpc.StatusObject) => {
      this.upstreamStatus = status;
      this.maybeRelayStatus();
    });
    this.up.on('error', () => undefined); // the status event carries it
  }

  private fromDownstream(bytes: Buffer): void {
    if (this.done) return;
    if (this.requests++ === 0) {
      this.nodeId = nodeIdOf(this.protocol, bytes);
      this.log.info(
        { node: this.nodeId, peer: this.down.getPeer(), upstream: this.up.getPeer() },
        'xDS proxy stream opened',
      );
    }
    this.counted('upstream');
    if (!this.up.write(bytes)) {
      this.down.pause();
      this.up.once('drain', () => this.down.resume());
    }
  }

  private fromUpstream(bytes: Buffer): void {
    if (this.done) return;
    this.responses++;
    this.counted('downstream');
    if (!this.down.write(bytes)) {
      this.up.pause();
      this.down.once('drain', () => this.up.resume());
    }
  }

  /** Ends the downstream once the upstream status is known and every response before it was relayed. */
  private maybeRelayStatus(): void {
    const status = this.upstreamStatus;
    if (this.done || !status) return;
    // The status may come while responses still sit in the readable (paused while the downstream is full).
    // The 'end' listener calls again once they are through.
    if (!this.upstreamEnded) return;
    // The proxy cancels an upstream stream only after its downstream is gone, so CANCELLED here was not
    // asked for: the control plane reset the stream, or its connection dropped (Node reports a dropped
    // HTTP/2 session as CANCEL). Downstream that is UNAVAILABLE, as for a direct connection to a dead peer.
    if (status.code === grpc.status.CANCELLED) {
      this.endDownstream(
        grpc.status.UNAVAILABLE,
        `xDS proxy: upstream stream cancelled (${status.details})`,
        'upstream cancelled',
      );
      return;
    }
    this.endDownstream(status.code, status.details, `upstream ended: ${grpc.status[status.code]}`);
  }

  private endDownstream(code: grpc.status, details: string, reason: string): void {
    if (this.done) return;
    if (code === grpc.status.OK) this.down.end();
    else this.down.emit('error', { code, details });
    this.finish(reason, code, details);
  }

  /** Ends both sides with UNAVAILABLE (the proxy is closing). */
  abort(details: string): void {
    if (this.done) return;
    this.up.cancel();
    this.endDownstream(grpc.status.UNAVAILABLE, details, 'proxy closing');
  }

  private finish(reason: string, code?: grpc.status, details?: string): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.holdTimer);
    if (this.upstreamStatus === undefined) this.up.cancel();
    this.log.info(
      {
        node: this.nodeId,
        reason,
        code: code === undefined ? undefined : grpc.status[code],
        details,
        requests: this.requests,
        responses: this.responses,
        durationMs: Date.now() - this.openedAt.getTime(),
      },
      'xDS proxy stream closed',
    );
    this.onClosed(this);
  }

  status(): XdsProxyStreamStatus {
    return {
      id: this.id,
      protocol: this.protocol,
      nodeId: this.nodeId,
      openedAt: this.openedAt.toISOString(),
      requests: this.requests,
      responses: this.responses,
    };
  }
}

/**
 * The local ADS server of the agent. `start()` binds; `close()` ends every stream and the upstream channel.
 * Streams opened while the upstream is unreachable wait for it up to `upstreamHoldMs`, then fail with
 * UNAVAILABLE (clients retry).
 */
export class XdsProxy {
  private readonly server: grpc.Server;
  private readonly client: grpc.Client;
  private readonly logger: Logger;
  private readonly metrics: ProxyMetrics;
  private readonly relays = new Set<Relay>();
  private readonly readyWaiters = new Set<{ resolve: () => void; reject: (err: Error) => void }>();
  private totalStreams = 0;
  private requestsRelayed = 0;
  private responsesRelayed = 0;
  private everConnected = false;
  private bound: XdsProxyAddress = {};
  private started = false;
  private closed = false;

  constructor(private readonly options: XdsProxyOptions) {
    if (!options.listen.socketPath && options.listen.port === undefined) {
      throw new Error('xDS proxy: listen needs a socketPath, a port, or both');
    }
    this.logger = (options.logger ?? silentLogger).child({ component: 'xds-proxy' });
    this.metrics = new ProxyMetrics(options.registry);
    this.client = new grpc.Client(options.upstream.target, options.upstream.credentials, {
      ...DEFAULT_CHANNEL_OPTIONS,
      ...options.upstream.channelOptions,
    });
    this.server = new grpc.Server({
      'grpc.max_receive_message_length': -1,
      'grpc.max_send_message_length': -1,
    });
    const accept = (protocol: AdsProtocol) => (call: grpc.ServerDuplexStream<Buffer, Buffer>) =>
      this.accept(protocol, call);
    this.server.addService(rawAdsServiceDefinition, {
      StreamAggregatedResources: accept('sotw'),
      DeltaAggregatedResources: accept('delta'),
    });
  }

  /** Binds the listeners and starts connecting upstream; resolves with what was bound. */
  async start(): Promise<XdsProxyAddress> {
    if (this.started) throw new Error('xDS proxy already started');
    this.started = true;
    const { socketPath, host = '127.0.0.1', port } = this.options.listen;
    let boundPort: number | undefined;
    if (socketPath) {
      await fs.rm(socketPath, { force: true });
      await this.bind(`unix:${socketPath}`);
    }
    if (port !== undefined) boundPort = await this.bind(host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);
    this.watchUpstream();
    this.logger.info({ socketPath, port: boundPort, upstream: this.options.upstream.target }, 'xDS proxy listening');
    this.bound = { socketPath, port: boundPort };
    return this.bound;
  }

  /** What start() bound (empty before). */
  address(): XdsProxyAddress {
    return this.bound;
  }

  private bind(address: string): Promise<number> {
    return new Promise((resolve, reject) =>
      this.server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, bound) =>
        err
          ? reject(new Error(`xDS proxy: cannot listen on ${address}: ${err.message}`, { cause: err }))
          : resolve(bound),
      ),
    );
  }

  /** Follows the upstream channel's state (connecting eagerly), for ready(), status() and logs. */
  private watchUpstream(): void {
    const channel = this.client.getChannel();
    const observe = (): void => {
      if (this.closed) return;
      const state = channel.getConnectivityState(true);
      this.metrics.upstreamReady.set(state === grpc.connectivityState.READY ? 1 : 0);
      if (state === grpc.connectivityState.READY && !this.everConnected) {
        this.everConnected = true;
        for (const waiter of this.readyWaiters) waiter.resolve();
        this.readyWaiters.clear();
      }
      if (state === grpc.connectivityState.SHUTDOWN) return;
      channel.watchConnectivityState(state, Infinity, () => {
        if (this.closed) return;
        const next = channel.getConnectivityState(false);
        const level = next === grpc.connectivityState.TRANSIENT_FAILURE ? 'warn' : 'info';
        this.logger[level](
          {
            upstream: this.options.upstream.target,
            from: grpc.connectivityState[state],
            to: grpc.connectivityState[next],
          },
          'xDS proxy upstream channel state changed',
        );
        observe();
      });
    };
    observe();
  }

  private accept(protocol: AdsProtocol, call: grpc.ServerDuplexStream<Buffer, Buffer>): void {
    if (this.closed) {
      call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'xDS proxy is shutting down' });
      return;
    }
    this.totalStreams++;
    this.metrics.streams.inc({ protocol });
    this.metrics.openStreams.inc({ protocol });
    const relay = new Relay(
      protocol,
      call,
      this.client,
      this.logger,
      (direction) => {
        if (direction === 'upstream') this.requestsRelayed++;
        else this.responsesRelayed++;
        this.metrics.messages.inc({ direction });
      },
      (r) => {
        this.relays.delete(r);
        this.metrics.openStreams.dec({ protocol });
      },
      this.options.upstreamHoldMs ?? DEFAULT_UPSTREAM_HOLD_MS,
    );
    this.relays.add(relay);
  }

  /** The upstream channel has been READY at least once. */
  ready(): boolean {
    return this.everConnected;
  }

  /** Resolves once the upstream channel has been READY (at once if it has been); rejects after `timeoutMs`. */
  whenReady(timeoutMs = 30_000): Promise<void> {
    if (this.everConnected) return Promise.resolve();
    if (this.closed) return Promise.reject(new Error('xDS proxy is closed'));
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err: Error) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        this.readyWaiters.delete(waiter);
        reject(
          new Error(
            `xDS proxy: upstream ${this.options.upstream.target} not ready after ${timeoutMs} ms (${this.upstreamState()})`,
          ),
        );
      }, timeoutMs);
      this.readyWaiters.add(waiter);
    });
  }

  private upstreamState(): UpstreamState {
    if (this.closed) return 'SHUTDOWN';
    return grpc.connectivityState[this.client.getChannel().getConnectivityState(false)] as UpstreamState;
  }

  status(): XdsProxyStatus {
    return {
      upstreamTarget: this.options.upstream.target,
      upstreamState: this.upstreamState(),
      everConnected: this.everConnected,
      openStreams: this.relays.size,
      totalStreams: this.totalStreams,
      requestsRelayed: this.requestsRelayed,
      responsesRelayed: this.responsesRelayed,
      streams: [...this.relays].map((r) => r.status()).sort((a, b) => a.id - b.id),
    };
  }

  /** Ends every stream with UNAVAILABLE, stops listening (forcing after the grace period), closes the channel. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const relay of [...this.relays]) relay.abort('xDS proxy is shutting down');
    for (const waiter of this.readyWaiters) waiter.reject(new Error('xDS proxy closed before the upstream was ready'));
    this.readyWaiters.clear();
    await shutdownServer(this.server, this.options.shutdownGraceMs ?? 1_000);
    this.client.close();
    this.metrics.upstreamReady.set(0);
    this.logger.info('xDS proxy stopped');
  }
}
