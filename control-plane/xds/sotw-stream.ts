// StreamAggregatedResources: the state-of-the-world protocol
// (https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol).
//
// - Every request names the full subscription of its type. LDS and CDS accept a wildcard: no names on the
//   first request (legacy wildcard, kept while later requests stay empty) or `*`.
// - `response_nonce` says which response a request answers. A request whose nonce is not the latest one
//   sent for its type is stale and ignored entirely: the client will send its current subscription again
//   with the latest nonce (this is safe only because SotW requests are complete, unlike delta ones).
// - ACK: latest nonce, no error_detail; its version_info becomes the ACKed version.
// - NACK: latest nonce with error_detail; recorded, the ACKed version stays, and the rejected config is not
//   sent again until the config changes (we only send on a change).
// - LDS and CDS responses carry the full subscribed set (an omitted name means deleted). RDS, EDS and SDS
//   responses carry only what the client lacks (an omitted name is left as it is), so a one-endpoint
//   change sends one ClusterLoadAssignment.
import type { DiscoveryRequest } from '../envoy/gen/envoy/service/discovery/v3/discovery_pb.js';
import { emptySet, type EncodedResource, type EncodedSet } from './resource-cache.js';
import { encodeSotwBody, Response, sharedFullSetBody, sharedUpdateBody, type Pieces } from './response.js';
import { checkSubscriptionSize } from './limits.js';
import { decodeNames, keepWire, resourceNamesWire } from './sotw-request.js';
import { isFullStateType, sharedName, sharedSubscription, type TypeState } from './type-state.js';
import { XdsStream } from './xds-stream.js';
import { AbsentListeners } from './absent-listeners.js';

function sortedResources(set: EncodedSet, names?: Iterable<string>): EncodedResource[] {
  const pick = names ? [...names].filter((n) => set.byName.has(n)) : [...set.byName.keys()];
  return pick.sort().map((n) => set.byName.get(n)!);
}

/** The subscription a resource_names wire says, decoded once for every stream that sends those bytes. */
interface WireSubscription {
  /** As in the request, `*` included. */
  readonly names: readonly string[];
  /** Whether `*` is among them. */
  readonly star: boolean;
  /** The other names, as a Set shared by every stream subscribed to them (sharedSubscription). */
  readonly explicit: ReadonlySet<string>;
}

/**
 * Keyed by the kept copy of the wire (keepWire: one copy per distinct byte string), so held as long as a
 * stream holds that copy as its last subscription.
 */
const wireSubscriptions = new WeakMap<Uint8Array, WireSubscription>();

function wireSubscription(kept: Uint8Array): WireSubscription {
  let decoded = wireSubscriptions.get(kept);
  if (!decoded) {
    const names = decodeNames(kept);
    const star = names.includes('*');
    decoded = { names, star, explicit: sharedSubscription(star ? names.filter((n) => n !== '*') : names) };
    wireSubscriptions.set(kept, decoded);
  }
  return decoded;
}

export class SotwStream extends XdsStream<DiscoveryRequest> {
  readonly protocol = 'sotw';
  private readonly absent = new AbsentListeners();
  /** Full-state types: the (set version, subscription) last sent, to skip identical responses. */
  private readonly sentKeys = new Map<string, string>();
  /** Full-state types whose client sent no names so far (legacy wildcard). */
  private readonly legacyWildcard = new Set<string>();

  protected onRequest(request: DiscoveryRequest): void {
    this.identify(request.node);
    const typeUrl = this.requestType(request.typeUrl);
    const state = this.state(typeUrl);

    if (request.responseNonce !== '') {
      if (request.responseNonce !== state.nonce) {
        this.recordStale(state, request.responseNonce);
        return;
      }
      if (request.errorDetail) {
        this.recordNack(state, request.versionInfo, request.responseNonce, request.errorDetail.message);
      } else {
        this.recordAck(state, request.versionInfo);
      }
    }

    const changed = this.subscribe(state, request);
    const first = !state.requested;
    state.requested = true;
    // An empty nonce asks for the current state from scratch (the first request, or a client resync).
    if (first || request.responseNonce === '') this.push(typeUrl, true);
    else if (changed) this.push(typeUrl, false);
  }

  /**
   * Applies the request's subscription; returns whether it changed. A client repeats its subscription on
   * every request: when its resource_names records are the very bytes of the last request applied for the
   * type, the names are not decoded (sotw-request.ts): the same names give the same subscription. Records
   * that differ are decoded once for every stream that sends the same bytes (a fleet of sidecars with the
   * same clusters), into a Set those streams share; a stream then works through only the names that
   * differ from its last subscription (TypeState.replaceSubscriptionShared).
   */
  private subscribe(state: TypeState, request: DiscoveryRequest): boolean {
    const wire = resourceNamesWire(request);
    const last = state.subscriptionWire;
    if (wire && last && wire.byteLength === last.byteLength && Buffer.compare(wire, last) === 0) return false;
    const typeUrl = state.typeUrl;
    const kept = wire ? keepWire(wire) : undefined;
    const decoded = kept ? wireSubscription(kept) : undefined;
    const names = decoded ? decoded.names : request.resourceNames;
    checkSubscriptionSize(this.options.limits, typeUrl, names.length);
    let wildcard = false;
    if (isFullStateType(typeUrl)) {
      if (!state.requested && names.length === 0) this.legacyWildcard.add(typeUrl);
      if (names.length > 0) this.legacyWildcard.delete(typeUrl);
      wildcard = (decoded ? decoded.star : names.includes('*')) || this.legacyWildcard.has(typeUrl);
    }
    const changed = decoded
      ? state.replaceSubscriptionShared(wildcard, decoded.explicit)
      : state.replaceSubscription(
          wildcard,
          names.filter((n) => n !== '*'),
          (n) => sharedName(this.config?.sets.get(typeUrl), n),
        );
    state.subscriptionWire = kept;
    if (changed) {
      if (!decoded) state.shareNames();
      this.reportSubscribed(typeUrl, names);
    }
    return changed;
  }

  protected respond(typeUrl: string, force: boolean): void {
    if (!this.config) return; // sent as soon as the proxy has a config (onConfig)
    const state = this.types.get(typeUrl)!;
    const set = this.config.sets.get(typeUrl) ?? emptySet(typeUrl);
    this.absent.check(this.log, this.proxy?.id, state.names, set);
    if (isFullStateType(typeUrl)) this.respondFullState(state, set, force);
    else this.respondIncremental(state, set, force);
  }

  private respondFullState(state: TypeState, set: EncodedSet, force: boolean): void {
    const key = `${set.version}|${state.wildcard ? '*' : [...state.names].sort().join(',')}`;
    if (!force && this.sentKeys.get(state.typeUrl) === key) return;
    let body: Uint8Array | Pieces;
    let count: number;
    if (state.wildcard) {
      body = this.fullSetBody(set, sortedResources(set));
      count = set.byName.size;
    } else {
      const resources = sortedResources(set, state.names);
      body = encodeSotwBody(set.version, set.typeUrl, resources, this.options.controlPlaneId);
      count = resources.length;
    }
    if (this.send(state, set.version, count, (nonce) => new Response(body, nonce)))
      this.sentKeys.set(state.typeUrl, key);
  }

  /** The body carrying all of `set` (`resources`: its resources in name order), shared by every stream. */
  private fullSetBody(set: EncodedSet, resources: readonly EncodedResource[]): Pieces {
    return sharedFullSetBody('sotw', set, set.version, set.typeUrl, resources, this.options.controlPlaneId);
  }

  private respondIncremental(state: TypeState, set: EncodedSet, force: boolean): void {
    if (force) state.forgetHeld();
    const { updates, removed } = state.pending(set, false);
    if (updates.length === 0) {
      // Nothing to send: SotW cannot say "removed" for these types; just forget what was removed.
      state.commit(set, [], removed, false);
      return;
    }
    // A client that holds nothing of a set it is subscribed to wholly (every stream on connect) gets the
    // same body as every other such stream: built once. So do the streams that get the same few resources
    // of the same set (an endpoint change).
    const body: Uint8Array | Pieces =
      updates.length === set.byName.size
        ? this.fullSetBody(set, updates)
        : sharedUpdateBody('sotw', set, updates, this.options.controlPlaneId);
    if (this.send(state, set.version, updates.length, (nonce) => new Response(body, nonce))) {
      state.commit(set, updates, removed, false);
    }
  }
}
