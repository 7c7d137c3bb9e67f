// DeltaAggregatedResources: the incremental protocol
// (https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#incremental-xds).
//
// - Subscriptions change by `resource_names_subscribe` / `resource_names_unsubscribe`; `*` subscribes to
//   the wildcard; a first LDS/CDS request with no names is a (legacy) wildcard subscription.
// - `initial_resource_versions` on the first request of a type says what the client already holds (after a
//   reconnect): only resources whose version differs are sent, and held names that are gone are removed.
// - Every resource carries its own version (a content hash); a response carries only what changed, and
//   deletions in `removed_resources`. An explicitly subscribed name that does not exist is answered in
//   `removed_resources` once, so the client need not wait for its fetch timeout.
// - ACK/NACK as in state of the world. A request with a stale nonce is not counted as an ACK or NACK, but
//   its subscription changes are applied: delta requests carry only changes, so dropping one would lose it.
import type { DeltaDiscoveryRequest } from '../envoy/gen/envoy/service/discovery/v3/discovery_pb.js';
import { emptySet } from './resource-cache.js';
import { checkSubscriptionSize } from './limits.js';
import { encodeDeltaBody, Response, sharedFullSetBody, sharedUpdateBody, type Pieces } from './response.js';
import { isFullStateType, SHARED_NAMES_MIN, sharedName } from './type-state.js';
import { XdsStream } from './xds-stream.js';
import { AbsentListeners } from './absent-listeners.js';

export class DeltaStream extends XdsStream<DeltaDiscoveryRequest> {
  readonly protocol = 'delta';
  private readonly absent = new AbsentListeners();

  protected onRequest(request: DeltaDiscoveryRequest): void {
    this.identify(request.node);
    const typeUrl = this.requestType(request.typeUrl);
    const state = this.state(typeUrl);
    const first = !state.requested;
    state.requested = true;

    if (first) {
      for (const [name, version] of Object.entries(request.initialResourceVersions)) state.setHeld(name, version);
      if (isFullStateType(typeUrl) && request.resourceNamesSubscribe.length === 0) state.subscribe('*');
    }
    if (request.responseNonce !== '') {
      if (request.responseNonce !== state.nonce) this.recordStale(state, request.responseNonce);
      else if (request.errorDetail)
        this.recordNack(state, state.sentVersion, request.responseNonce, request.errorDetail.message);
      else this.recordAck(state, state.sentVersion);
    }
    // A large subscription is shared with the streams that subscribe to the same (shareNames below), so
    // its names are kept once anyway; a small one keeps the config's copy of each name instead of its own.
    const set = request.resourceNamesSubscribe.length < SHARED_NAMES_MIN ? this.config?.sets.get(typeUrl) : undefined;
    for (const name of request.resourceNamesSubscribe) {
      if (name === '*' && !isFullStateType(typeUrl)) continue;
      state.subscribe(sharedName(set, name));
    }
    for (const name of request.resourceNamesUnsubscribe) state.unsubscribe(name);
    const resubscribed = request.resourceNamesSubscribe.length > 0 || request.resourceNamesUnsubscribe.length > 0;
    if (resubscribed) state.shareNames();
    this.reportSubscribed(typeUrl, request.resourceNamesSubscribe);
    checkSubscriptionSize(this.options.limits, typeUrl, state.names.size);
    if (first || resubscribed) {
      this.push(typeUrl, false);
    }
  }

  protected respond(typeUrl: string, _force: boolean): void {
    if (!this.config) return; // sent as soon as the proxy has a config (onConfig)
    const state = this.types.get(typeUrl)!;
    const set = this.config.sets.get(typeUrl) ?? emptySet(typeUrl);
    this.absent.check(this.log, this.proxy?.id, state.names, set);
    const { updates, removed } = state.pending(set, true);
    // A wildcard subscription is always answered once, even when empty: Envoy finishes initializing only
    // after the first LDS/CDS response (go-control-plane does the same).
    if (updates.length === 0 && removed.length === 0 && !(state.wildcard && state.responses === 0)) {
      state.commit(set, [], [], true);
      return;
    }
    const cp = this.options.controlPlaneId;
    // All of a set and nothing removed (every stream on connect): the same body for every stream, built once.
    // A few resources and nothing removed (an endpoint change): the same body for the streams of the set.
    const body: Pieces =
      removed.length === 0 && updates.length === set.byName.size && updates.length > 0
        ? sharedFullSetBody('delta', set, set.version, typeUrl, updates, cp)
        : removed.length === 0
          ? sharedUpdateBody('delta', set, updates, cp)
          : encodeDeltaBody(set.version, typeUrl, updates, removed, cp);
    const sent = this.send(state, set.version, updates.length, (nonce) => new Response(body, nonce));
    if (sent) state.commit(set, updates, removed, true);
  }
}
