// What the state-of-the-world and the delta streams share: the proxy's identity, its config, the per-type
// state, nonces, the size cap and the metrics of every response.
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { tracer, type TraceSpan } from '../../lib/tracing.js';
import type { Node } from '../envoy/gen/envoy/config/core/v3/base_pb.js';
import { shortTypeName, TypeUrl } from '../envoy/protos.js';
import type { Logger } from '../logger.js';
import type { XdsMetrics } from './metrics.js';
import { bindProxy, StreamRefusal, type StreamPeer } from './authn.js';
import { systemClock, type Clock } from './clock.js';
import { checkRequestSize, LimitExceeded, rateExceeded, TokenBucket, type StreamLimits } from './limits.js';
import { proxyInfoFromNode, type ProxyInfo } from './node.js';
import { Outbound } from './outbound.js';
import type { Response } from './response.js';
import { awaitsAnswer, type AnswerView } from './answers.js';
import type { ConfigConsumer, ProxyConfig, PushController } from './push-controller.js';
import { pushOrder, TypeState, type TypeStatus } from './type-state.js';

export interface StreamOptions {
  readonly metrics: XdsMetrics;
  readonly logger: Logger;
  /** Largest response we write; a larger one is logged and not sent (grpc-js clients refuse > 4 MiB). */
  readonly maxMessageBytes: number;
  /** `control_plane.identifier` in every response. */
  readonly controlPlaneId: string;
  /**
   * Bytes a stream may hold unflushed (written, the client not reading) before further responses are
   * held back and coalesced to the latest config (outbound.ts).
   */
  readonly maxQueuedBytes: number;
  readonly limits: StreamLimits;
  /** For the request-rate bucket and trellis_xds_initial_config_seconds; default performance.now. */
  readonly clock?: Clock;
  /**
   * The one type a single-type service serves (SDS: the Secret type). A request may then leave type_url
   * empty, and one naming another type ends the stream with INVALID_ARGUMENT. Unset: an aggregated stream
   * (ADS), where every request names its type.
   */
  readonly typeUrl?: string;
  /** Told the names each request subscribes explicitly (for a server that reports names it cannot serve). */
  readonly onSubscribe?: (event: SubscribeEvent) => void;
}

/** Names a request subscribed: SotW, its whole new subscription when it changed; delta, resource_names_subscribe. */
export interface SubscribeEvent {
  readonly stream: number;
  readonly proxy: ProxyInfo | undefined;
  readonly typeUrl: string;
  readonly names: readonly string[];
}

export interface StreamStatus {
  readonly stream: number;
  readonly protocol: 'sotw' | 'delta';
  readonly peer: string;
  /** `tls`: the TLS port (15012), the stream bound to `identity`; `plaintext`: port 15010, unauthenticated. */
  readonly transport: 'plaintext' | 'tls';
  /** The SPIFFE ID of the client certificate the stream is bound to (TLS port only). */
  readonly identity: string | undefined;
  readonly connectedAt: string;
  readonly node: ProxyInfo | undefined;
  readonly configHash: string | undefined;
  /** Bytes of responses written and not yet flushed to the network (a client that does not read). */
  readonly queuedBytes: number;
  /** Types whose response waits for the stream to drain (coalesced to the latest config). */
  readonly deferredTypes: readonly string[];
  readonly types: readonly TypeStatus[];
}

// Nonces are unique per process and differ across restarts: a random prefix and a counter.
const noncePrefix = randomBytes(3).toString('hex');
let nonceCounter = 0;
let streamCounter = 0;

/** The grpc-js call of either ADS method: requests in, responses assembled from cached bytes out. */
export type AdsCall<Request> = grpc.ServerDuplexStream<Request, Response>;

/** The types whose first ACKs make a proxy's whole first config (trellis_xds_initial_config_seconds). */
const INITIAL_CONFIG_TYPES = [
  TypeUrl.Cluster,
  TypeUrl.ClusterLoadAssignment,
  TypeUrl.Listener,
  TypeUrl.RouteConfiguration,
];

export abstract class XdsStream<Request> implements ConfigConsumer {
  abstract readonly protocol: 'sotw' | 'delta';
  readonly id = ++streamCounter;
  readonly connectedAt = new Date();
  proxy: ProxyInfo | undefined;
  config: ProxyConfig | undefined;
  configHash: string | undefined;
  protected readonly types = new Map<string, TypeState>();
  protected readonly log: Logger;
  private readonly outbound: Outbound<Response>;
  private readonly requests: TokenBucket;
  private closed = false;
  private readonly clock: Clock;
  /** When the first request arrived (clock ms); undefined before it. */
  private firstRequestAt: number | undefined;
  /** Whether trellis_xds_initial_config_seconds has observed this stream. */
  private initialConfigObserved = false;

  constructor(
    protected readonly call: AdsCall<Request>,
    protected readonly controller: PushController<unknown>,
    protected readonly options: StreamOptions,
    /** Who the peer is proven to be (AdsServer: by the port and the client certificate of the call). */
    readonly authn: StreamPeer = { transport: 'plaintext' },
  ) {
    this.log = options.logger.child({ stream: this.id });
    const queued = options.metrics.queuedBytes;
    this.outbound = new Outbound(
      { write: (response, done) => call.write(response, done) },
      options.maxQueuedBytes,
      () => this.flushDeferred(),
      (delta) => (delta >= 0 ? queued.inc(delta) : queued.dec(-delta)),
    );
    this.clock = options.clock ?? systemClock;
    this.requests = new TokenBucket(options.limits.requestsPerSecond, options.limits.requestBurst, this.clock);
    call.on('data', (request: Request) => {
      if (this.closed) return;
      this.firstRequestAt ??= this.clock.now();
      try {
        if (!this.requests.take()) throw rateExceeded(options.limits);
        checkRequestSize(options.limits, request as object);
        this.onRequest(request);
      } catch (err) {
        if (err instanceof StreamRefusal) this.refuse(err);
        else if (err instanceof LimitExceeded) this.exceeded(err);
        else this.fail(grpc.status.INVALID_ARGUMENT, err instanceof Error ? err.message : String(err));
      }
    });
    // The client half-closed: finish the call with OK (as istiod and go-control-plane do on EOF), or it
    // stays open with no one reading it.
    call.on('end', () => {
      if (!this.closed) call.end();
      this.close('client closed the stream');
    });
    call.on('cancelled', () => this.close('cancelled'));
    call.on('error', (err: Error) => this.close(`error: ${err.message}`));
  }

  protected abstract onRequest(request: Request): void;
  /** Builds and sends the response `typeUrl` needs now, if any (`force`: a complete one). Use push(). */
  protected abstract respond(typeUrl: string, force: boolean): void;

  /**
   * Responds for `typeUrl` now, or, while the stream holds more unflushed bytes than its cap, once it has
   * drained: the response is then built from the config of that moment, so pushes in between coalesce.
   */
  protected push(typeUrl: string, force: boolean): void {
    if (this.closed) return;
    if (this.outbound.blocked || this.outbound.hasDeferred) {
      if (this.outbound.defer(typeUrl, force)) {
        this.options.metrics.coalescedResponses.inc({ type: shortTypeName(typeUrl) });
      }
      if (!this.outbound.blocked) this.flushDeferred();
      return;
    }
    this.respond(typeUrl, force);
  }

  /** Sends the deferred responses, in push order, while the stream stays under its cap. */
  private flushDeferred(): void {
    for (const typeUrl of pushOrder(this.outbound.deferredTypes)) {
      if (this.closed || this.outbound.blocked) return;
      const force = this.outbound.take(typeUrl);
      if (force !== undefined) this.respond(typeUrl, force);
    }
  }

  get peer(): string {
    return this.call.getPeer();
  }

  /**
   * The node arrives on the first request only; it binds the stream to a proxy. On the TLS port the
   * proxy's namespace, service account and trust domain are those of its certificate (authn.ts); a node
   * that claims others is refused (StreamRefusal, PERMISSION_DENIED).
   */
  protected identify(node: Node | undefined): void {
    if (this.proxy) return;
    const announced = proxyInfoFromNode(node);
    this.proxy = this.authn.transport === 'tls' ? bindProxy(node, announced, this.authn.identity) : announced;
    this.log.info(
      {
        proxy: this.proxy.id,
        protocol: this.protocol,
        peer: this.peer,
        userAgent: this.proxy.userAgent,
        transport: this.authn.transport,
        identity: this.identity,
      },
      'proxy connected',
    );
    this.options.metrics.connectedProxies.inc({ protocol: this.protocol });
    this.controller.attach(this);
    const config = this.controller.configFor(this.proxy);
    this.options.metrics.configsGenerated.inc({ when: 'connect' });
    if (config) {
      this.config = config;
      this.configHash = config.hash;
    }
  }

  /** The type a request is for: its type_url, checked against the stream's service (StreamOptions.typeUrl). */
  protected requestType(typeUrl: string): string {
    const only = this.options.typeUrl;
    if (only === undefined) {
      if (typeUrl === '') throw new Error('type_url must be set on every request of an aggregated stream');
      return typeUrl;
    }
    if (typeUrl !== '' && typeUrl !== only) throw new Error(`type_url ${typeUrl} is not served here (only ${only})`);
    return only;
  }

  /** Reports explicitly subscribed names (`*` left out) to StreamOptions.onSubscribe. */
  protected reportSubscribed(typeUrl: string, names: readonly string[]): void {
    const onSubscribe = this.options.onSubscribe;
    if (!onSubscribe) return;
    const explicit = names.filter((n) => n !== '*');
    if (explicit.length > 0) onSubscribe({ stream: this.id, proxy: this.proxy, typeUrl, names: explicit });
  }

  /** The types of `types` in push order (made again when a type is added). */
  private typeOrder: string[] | undefined;

  protected state(typeUrl: string): TypeState {
    let state = this.types.get(typeUrl);
    if (!state) {
      state = new TypeState(typeUrl);
      this.types.set(typeUrl, state);
      this.typeOrder = undefined;
    }
    return state;
  }

  /**
   * A new config: each requested type whose set is not the very set of the previous config is pushed (an
   * unchanged set has nothing to send: the stream's type state already agrees with it, or a response for
   * it waits in the deferred queue, which sends from the current config).
   */
  onConfig(config: ProxyConfig): void {
    const previous = this.config;
    this.config = config;
    this.configHash = config.hash;
    this.typeOrder ??= pushOrder(this.types.keys());
    for (const typeUrl of this.typeOrder) {
      if (!this.types.get(typeUrl)!.requested) continue;
      if (previous && previous.sets.get(typeUrl) === config.sets.get(typeUrl)) continue;
      this.push(typeUrl, false);
    }
  }

  protected recordAck(state: TypeState, version: string): void {
    state.ackedVersion = version;
    state.ackedAt = new Date();
    if (state.span) this.endResponseSpan(state, 'ACK', { 'trellis.xds.version': version });
    state.answeredNonce = state.nonce;
    this.options.metrics.acks.inc({ type: shortTypeName(state.typeUrl) });
    if (!this.initialConfigObserved) this.observeInitialConfig();
    this.controller.answered(this);
  }

  /** Observes trellis_xds_initial_config_seconds once each of CDS, EDS, LDS and RDS has been ACKed. */
  private observeInitialConfig(): void {
    for (const typeUrl of INITIAL_CONFIG_TYPES) if (!this.types.get(typeUrl)?.ackedAt) return;
    this.initialConfigObserved = true;
    if (this.firstRequestAt === undefined) return;
    const seconds = (this.clock.now() - this.firstRequestAt) / 1000;
    this.options.metrics.initialConfig.observe({ proxy: this.proxy?.proxyType ?? 'unknown' }, seconds);
  }

  protected recordNack(state: TypeState, version: string, nonce: string, message: string): void {
    state.lastNack = { version, nonce, message, at: new Date().toISOString() };
    if (state.span) {
      state.span.fail(message);
      this.endResponseSpan(state, 'NACK', { 'trellis.xds.error': message, 'trellis.xds.acked_version': version });
    }
    state.answeredNonce = nonce;
    this.options.metrics.nacks.inc({ type: shortTypeName(state.typeUrl) });
    this.controller.answered(this);
    this.log.warn(
      {
        proxy: this.proxy?.id,
        type: shortTypeName(state.typeUrl),
        rejectedNonce: nonce,
        ackedVersion: state.ackedVersion,
        error: message,
      },
      'proxy rejected config (NACK); it keeps its last accepted version',
    );
  }

  protected recordStale(state: TypeState, nonce: string): void {
    this.options.metrics.staleRequests.inc({ type: shortTypeName(state.typeUrl) });
    this.log.debug(
      { proxy: this.proxy?.id, type: shortTypeName(state.typeUrl), nonce, latest: state.nonce },
      'stale nonce ignored',
    );
  }

  protected newNonce(): string {
    return `${noncePrefix}-${(++nonceCounter).toString(36)}`;
  }

  /**
   * Writes one response built by `build(nonce)`. Returns false (and writes nothing) when the stream is
   * closed or the response exceeds the size cap.
   */
  protected send(
    state: TypeState,
    version: string,
    resourceCount: number,
    build: (nonce: string) => Response,
  ): boolean {
    if (this.closed) return false;
    const type = shortTypeName(state.typeUrl);
    const started = performance.now();
    const nonce = this.newNonce();
    const response = build(nonce);
    if (response.byteLength > this.options.maxMessageBytes) {
      this.options.metrics.oversizedResponses.inc({ type });
      this.log.error(
        {
          proxy: this.proxy?.id,
          type,
          bytes: response.byteLength,
          maxMessageBytes: this.options.maxMessageBytes,
          resources: resourceCount,
        },
        'response exceeds the message-size cap and was not sent; the proxy keeps its last config (raise --max-message-bytes or split the config)',
      );
      return false;
    }
    this.outbound.write(response);
    state.recordSent(nonce, version);
    const parent = this.config?.trace;
    if (parent?.recording || state.span)
      this.startResponseSpan(state, parent, type, version, nonce, response, resourceCount);
    const metrics = this.options.metrics;
    metrics.pushes.inc({ type });
    metrics.responseBytes.inc({ type }, response.byteLength);
    metrics.pushDuration.observe({ type }, (performance.now() - started) / 1000);
    this.log.debug(
      { proxy: this.proxy?.id, type, version, nonce, resources: resourceCount, bytes: response.byteLength },
      'sent',
    );
    return true;
  }

  /**
   * Span `xds.response` of a response that carries a pushed change (tracing on): type, version, nonce,
   * bytes, resources; it ends with event `ACK` or `NACK` (status ERROR, the client's message), `superseded`
   * (a newer response of the type went out first) or `stream closed`.
   */
  private startResponseSpan(
    state: TypeState,
    parent: TraceSpan | undefined,
    type: string,
    version: string,
    nonce: string,
    response: Response,
    resources: number,
  ): void {
    if (state.span) this.endResponseSpan(state, 'superseded', { 'trellis.xds.nonce': nonce });
    if (!parent?.recording) return;
    state.span = tracer().startSpan('xds.response', {
      parent,
      kind: 'server',
      attributes: {
        'trellis.proxy.id': this.proxy?.id,
        'trellis.xds.protocol': this.protocol,
        'trellis.xds.type': type,
        'trellis.xds.version': version,
        'trellis.xds.nonce': nonce,
        'trellis.xds.bytes': response.byteLength,
        'trellis.xds.resources': resources,
      },
    });
  }

  private endResponseSpan(
    state: TypeState,
    event: string,
    attributes: Readonly<Record<string, string | number | boolean | undefined>>,
  ): void {
    state.span?.addEvent(event, attributes);
    state.span?.end();
    state.span = undefined;
  }

  /** Ends the stream with a gRPC status (a protocol error by the client). */
  protected fail(code: grpc.status, details: string): void {
    this.log.warn({ proxy: this.proxy?.id, code, details }, 'closing stream on a bad request');
    this.call.emit('error', { code, details });
    this.close(details);
  }

  /** Ends the stream because the client went over a cap (limits.ts): logged, counted, RESOURCE_EXHAUSTED. */
  private exceeded(err: LimitExceeded): void {
    this.options.metrics.limitExceeded.inc({ limit: err.limit });
    this.log.warn(
      { proxy: this.proxy?.id, peer: this.peer, limit: err.limit, details: err.message },
      'xds: stream ended, over a limit',
    );
    this.call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: err.message });
    this.close(err.message);
  }

  /** Ends the stream because of who the peer is: logged, counted, the refusal's status sent. */
  private refuse(refusal: StreamRefusal): void {
    this.options.metrics.authnRefusals.inc({ reason: refusal.reason });
    this.log.warn(
      {
        protocol: this.protocol,
        peer: this.peer,
        identity: this.identity,
        code: grpc.status[refusal.code],
        reason: refusal.reason,
        details: refusal.message,
      },
      'xds: stream refused',
    );
    this.call.emit('error', { code: refusal.code, details: refusal.message });
    this.close(refusal.message);
  }

  /** The SPIFFE ID the stream is bound to, on the TLS port. */
  get identity(): string | undefined {
    return this.authn.transport === 'tls' ? this.authn.identity.spiffeId : undefined;
  }

  /** Ends the stream with OK (shutdown: the client reconnects, to this or another replica). */
  end(): void {
    if (!this.closed) this.call.end();
    this.close('server shutdown');
  }

  private close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.outbound.close();
    for (const state of this.types.values()) if (state.span) this.endResponseSpan(state, 'stream closed', { reason });
    this.controller.detach(this);
    if (this.proxy) {
      this.options.metrics.connectedProxies.dec({ protocol: this.protocol });
      this.log.info({ proxy: this.proxy.id, reason }, 'proxy disconnected');
    }
  }

  /** answers(answerView()) being `pending`, without building the view (answers.ts). */
  awaitsAnswer(): boolean {
    return awaitsAnswer(this.outbound.deferredCount > 0, this.types.values());
  }

  /**
   * What answers.ts reads (what was sent and answered per type, what is deferred): cheap, without the
   * subscription lists of status(), as it is read on every answer while a change converges.
   */
  answerView(): AnswerView {
    const types = [...this.types.values()].map((s) => ({
      type: shortTypeName(s.typeUrl),
      sentNonce: s.nonce,
      answeredNonce: s.answeredNonce,
      lastNack: s.lastNack,
    }));
    return { deferredTypes: this.outbound.deferredTypes, types };
  }

  status(): StreamStatus {
    return {
      stream: this.id,
      protocol: this.protocol,
      peer: this.peer,
      transport: this.authn.transport,
      identity: this.identity,
      connectedAt: this.connectedAt.toISOString(),
      node: this.proxy,
      configHash: this.configHash,
      queuedBytes: this.outbound.queuedBytes,
      deferredTypes: this.outbound.deferredTypes.map(shortTypeName),
      types: pushOrder(this.types.keys()).map((t) => this.types.get(t)!.status(shortTypeName(t))),
    };
  }
}
