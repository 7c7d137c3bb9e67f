// What one stream knows about one resource type: the client's subscription, what the client holds, and the
// nonce/version/ACK/NACK bookkeeping. Shared by the state-of-the-world and the delta streams.
import type { TraceSpan } from '../../lib/tracing.js';
import { TypeUrl } from '../envoy/protos.js';
import { changedNames, type EncodedResource, type EncodedSet } from './resource-cache.js';

/**
 * Push order on a change touching several types: clusters before their endpoints, both before the
 * listeners and routes that refer to them ("make before break": a proxy never gets a route to a cluster
 * it doesn't have yet). Secrets last. Other types follow in name order.
 */
export const PUSH_ORDER: readonly string[] = [
  TypeUrl.Cluster,
  TypeUrl.ClusterLoadAssignment,
  TypeUrl.Listener,
  TypeUrl.RouteConfiguration,
  TypeUrl.Secret,
];

export function pushOrder(typeUrls: Iterable<string>): string[] {
  const rank = (t: string): number => {
    const i = PUSH_ORDER.indexOf(t);
    return i === -1 ? PUSH_ORDER.length : i;
  };
  return [...typeUrls].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Wildcard subscriptions exist for LDS and CDS only (what Envoy uses; xDS protocol "How the client
 * specifies what resources to return"). For these types a state-of-the-world response carries the full
 * set, and a subscribed name missing from it means deleted.
 */
export function isFullStateType(typeUrl: string): boolean {
  return typeUrl === TypeUrl.Listener || typeUrl === TypeUrl.Cluster;
}

type Pending = { readonly updates: readonly EncodedResource[]; readonly removed: readonly string[] };

/**
 * Per shared subscription Set: its names in order, and per resource set its first response
 * (TypeState.pending). The order is the Set's, whatever the resource set: after a change, the first proxy
 * to connect with those names looks 3,000 of them up in the new set, and does not sort them again.
 */
const firstPendingMemo = new WeakMap<
  ReadonlySet<string>,
  { readonly sorted: readonly string[]; readonly bySet: WeakMap<EncodedSet, { report?: Pending; silent?: Pending }> }
>();

function firstPending(names: Iterable<string>, set: EncodedSet, reportMissing: boolean): Pending {
  const updates: EncodedResource[] = [];
  const removed: string[] = [];
  for (const name of names) {
    const resource = set.byName.get(name);
    if (resource) updates.push(resource);
    else if (reportMissing) removed.push(name);
  }
  return { updates, removed };
}

/** Per resource set: its resources in name order (the first response of every wildcard stream). */
const byNameMemo = new WeakMap<EncodedSet, readonly EncodedResource[]>();

/**
 * The resources of `set` in name order, one array for every stream: a thousand proxies connecting get the
 * same 3,000 clusters, and each sorting and looking them up again cost a millisecond per proxy.
 */
function allByName(set: EncodedSet): readonly EncodedResource[] {
  const known = byNameMemo.get(set);
  if (known) return known;
  const list = [...set.byName.values()];
  for (let i = 1; i < list.length; i++) {
    if (list[i - 1]!.name > list[i]!.name) {
      list.sort((a, b) => (a.name < b.name ? -1 : 1)); // names are unique in a set
      break;
    }
  }
  byNameMemo.set(set, list);
  return list;
}

/** The names in code-unit order; a list already in order (a set's own names, mostly) is not sorted again. */
function sortedNames(names: ReadonlySet<string>): string[] {
  const list = [...names];
  for (let i = 1; i < list.length; i++) if (list[i - 1]! > list[i]!) return list.sort();
  return list;
}

/** Whether `list` holds exactly the names of `set`, in the set's (insertion) order. */
function sameInOrder(set: ReadonlySet<string>, list: readonly string[]): boolean {
  if (set.size !== list.length) return false;
  let i = 0;
  for (const name of set) if (name !== list[i++]) return false;
  return true;
}

/**
 * The string `set` already holds for a resource name, else `name`. Subscribed names arrive freshly decoded
 * from every stream's request; keeping the set's copy instead saves a copy per stream and name.
 */
export function sharedName(set: EncodedSet | undefined, name: string): string {
  return set?.byName.get(name)?.name ?? name;
}

/** Subscriptions smaller than this are kept per stream (sharing them is not worth a lookup). */
export const SHARED_NAMES_MIN = 16;

/**
 * Equal subscriptions of many streams (a thousand sidecars subscribe to the same thousands of EDS names)
 * are one Set: a stream shares the Set of its subscription after a request changed it, and copies it
 * before changing it again (copy on write). Keyed by size and an order-independent hash of the names, each
 * hit checked name by name; held weakly, so a Set no stream uses goes.
 */
const sharedNameSets = new Map<string, WeakRef<Set<string>>[]>();
const sharedNameSetCleanup = new FinalizationRegistry<string>((key) => {
  const list = sharedNameSets.get(key)?.filter((ref) => ref.deref() !== undefined);
  if (!list || list.length === 0) sharedNameSets.delete(key);
  else sharedNameSets.set(key, list);
});

/**
 * A cheap order-independent key: the size and a sum over the names of their length and a few of their
 * characters. Equal sets give equal keys; unequal ones rarely do, and a hit is checked name by name.
 */
function namesKey(names: ReadonlySet<string>): string {
  let sum = 0;
  for (const name of names) {
    const n = name.length;
    sum += n * 31 + name.charCodeAt(n - 1) * 17 + name.charCodeAt(n >> 1) * 7 + name.charCodeAt(n >> 2);
  }
  return `${names.size}:${sum}`;
}

function sameNames(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const name of a) if (!b.has(name)) return false;
  return true;
}

/** The shared Set equal to `names`, registering `names` as that Set when there is none. */
function shareNameSet(names: Set<string>): Set<string> {
  const key = namesKey(names);
  let list = sharedNameSets.get(key);
  for (const ref of list ?? []) {
    const known = ref.deref();
    if (known && sameNames(known, names)) return known;
  }
  if (!list) sharedNameSets.set(key, (list = []));
  list.push(new WeakRef(names));
  sharedNameSetCleanup.register(names, key);
  return names;
}

/**
 * A subscription as a Set every stream with the same names holds (never modified): the names of one
 * resource_names wire, decoded once for all the streams that send it (SotwStream). Registered with the
 * shared Sets of shareNames, so a delta stream with the same names shares it too.
 */
export function sharedSubscription(names: Iterable<string>): ReadonlySet<string> {
  return shareNameSet(new Set(names));
}

/** What changes from one shared subscription Set to another: worked out once per pair, for every stream. */
interface SubscriptionDiff {
  readonly added: readonly string[];
  readonly removed: readonly string[];
}
const subscriptionDiffs = new WeakMap<ReadonlySet<string>, WeakMap<ReadonlySet<string>, SubscriptionDiff>>();

function diffNames(from: ReadonlySet<string>, to: ReadonlySet<string>): SubscriptionDiff {
  const removed: string[] = [];
  const added: string[] = [];
  for (const name of from) if (!to.has(name)) removed.push(name);
  for (const name of to) if (!from.has(name)) added.push(name);
  return { added, removed };
}

function sharedDiff(from: ReadonlySet<string>, to: ReadonlySet<string>): SubscriptionDiff {
  let byTarget = subscriptionDiffs.get(from);
  if (!byTarget) subscriptionDiffs.set(from, (byTarget = new WeakMap()));
  let diff = byTarget.get(to);
  if (!diff) byTarget.set(to, (diff = diffNames(from, to)));
  return diff;
}

export interface NackRecord {
  readonly version: string;
  readonly nonce: string;
  readonly message: string;
  readonly at: string;
}

export interface TypeStatus {
  readonly type: string;
  readonly subscription: '*' | readonly string[];
  readonly sentVersion: string;
  readonly sentNonce: string;
  readonly sentAt: string | undefined;
  readonly responses: number;
  readonly ackedVersion: string;
  readonly ackedAt: string | undefined;
  /** The nonce of the last response the client answered (ACK or NACK); equal to sentNonce when none is awaited. */
  readonly answeredNonce: string;
  readonly lastNack: NackRecord | undefined;
}

export class TypeState {
  wildcard = false;
  /** The subscribed names; possibly a Set other streams share (see shareNames): changed only through mutableNames(). */
  private nameSet = new Set<string>();
  private nameSetShared = false;
  /** False until the first request for this type. */
  requested = false;
  /**
   * What the client holds is kept per type, not per name: `basis` is the set last committed, and the client
   * holds its version of every name of it (bookkeeping per name only where that is not so: `known`). A
   * name's entry in `known` overrides the basis: a version the client holds (delta
   * initial_resource_versions), `null` (it was told the name does not exist, delta), or `undefined` (it
   * holds nothing: subscribed or unsubscribed since the basis). See held().
   */
  private readonly known = new Map<string, string | null | undefined>();
  /** The set the client agrees with (see `known`); lets a push diff two sets instead of scanning. */
  private basis: EncodedSet | undefined;
  /** Names whose subscription changed since `basis` (only kept while there is a basis). */
  private readonly dirty = new Set<string>();
  /**
   * State of the world: the resource_names records of the last request applied, as they were on the wire
   * (a copy); a request with the same bytes has the same subscription (SotwStream.subscribe).
   */
  subscriptionWire: Uint8Array | undefined = undefined;

  nonce = '';
  /** The nonce of the latest response sent (`nonce`), under the name the answer bookkeeping reads (answers.ts). */
  get sentNonce(): string {
    return this.nonce;
  }
  sentVersion = '';
  sentAt: Date | undefined;
  responses = 0;
  ackedVersion = '';
  ackedAt: Date | undefined;
  /** The nonce of the last response answered (ACK or NACK). */
  answeredNonce = '';
  lastNack: NackRecord | undefined;
  /** The span of the response awaiting its ACK or NACK (tracing on, a pushed change: xds-stream.ts). */
  span: TraceSpan | undefined;

  constructor(readonly typeUrl: string) {}

  /** The explicitly subscribed names. */
  get names(): ReadonlySet<string> {
    return this.nameSet;
  }

  private mutableNames(): Set<string> {
    if (this.nameSetShared) {
      this.nameSet = new Set(this.nameSet);
      this.nameSetShared = false;
    }
    return this.nameSet;
  }

  /**
   * After a request changed the subscription: takes the Set of an equal subscription of another stream
   * instead of keeping its own, when there is one (and offers its own otherwise).
   */
  shareNames(): void {
    if (this.nameSetShared || this.nameSet.size < SHARED_NAMES_MIN) return;
    this.nameSet = shareNameSet(this.nameSet);
    this.nameSetShared = true;
  }

  covers(name: string): boolean {
    return this.wildcard || this.names.has(name);
  }

  /** The version of `name` the client holds; `null`: told it does not exist; undefined: nothing. */
  held(name: string): string | null | undefined {
    if (this.known.has(name)) return this.known.get(name);
    return this.covers(name) ? this.basis?.byName.get(name)?.version : undefined;
  }

  /** Records what the client says it holds (delta initial_resource_versions). */
  setHeld(name: string, version: string): void {
    this.known.set(name, version);
  }

  /** Forgets everything the client holds: the next response is complete (a SotW resync). */
  forgetHeld(): void {
    this.known.clear();
    this.basis = undefined;
    this.dirty.clear();
  }

  /** The client holds nothing of `name` (any more). */
  private notHeld(name: string): void {
    if (this.basis?.byName.has(name)) this.known.set(name, undefined);
    else this.known.delete(name);
  }

  /**
   * Turns what the basis implies into entries of `known`, for the names covered now, and drops the basis:
   * before the coverage changes wholesale (a wildcard on or off).
   */
  private materialize(): void {
    const basis = this.basis;
    if (!basis) return;
    for (const [name, entry] of basis.byName) {
      if (!this.known.has(name) && this.covers(name)) this.known.set(name, entry.version);
    }
    for (const [name, version] of [...this.known]) if (version === undefined) this.known.delete(name);
    this.basis = undefined;
    this.dirty.clear();
  }

  subscribe(name: string): void {
    if (name === '*') {
      if (!this.wildcard) this.materialize();
      this.wildcard = true;
      return;
    }
    if (!this.names.has(name)) {
      if (!this.wildcard && !this.known.has(name)) this.notHeld(name);
      this.mutableNames().add(name);
      if (this.basis) this.dirty.add(name);
    }
  }

  unsubscribe(name: string): void {
    if (name === '*') {
      if (this.wildcard) this.materialize();
      this.wildcard = false;
      return;
    }
    if (this.names.has(name)) {
      this.mutableNames().delete(name);
      // Forget what the client held: if it subscribes again it must get the resource again.
      if (!this.wildcard) this.known.delete(name);
      this.dirty.delete(name);
    }
  }

  /**
   * Replaces the whole subscription (state of the world). Returns whether it changed. `shared` maps a newly
   * subscribed name to an equal string that is kept anyway (sharedName), so streams do not each hold a copy.
   */
  replaceSubscription(wildcard: boolean, names: readonly string[], shared?: (name: string) => string): boolean {
    // A SotW client repeats its whole subscription on every ACK, in the same order: then nothing changes,
    // and a Set of (say) 1,000 EDS names need not be built per ACK.
    if (wildcard === this.wildcard && sameInOrder(this.names, names)) return false;
    const next = new Set(names);
    let changed = false;
    for (const name of [...this.names]) {
      if (!next.has(name)) {
        this.unsubscribe(name);
        changed = true;
      }
    }
    for (const name of next) {
      if (!this.names.has(name)) {
        this.subscribe(shared ? shared(name) : name);
        changed = true;
      }
    }
    return this.setWildcard(wildcard) || changed;
  }

  /**
   * replaceSubscription with the names as a shared Set (sharedSubscription; `*` not in it), which the stream
   * then holds as its own subscription. Only the names that differ from the current subscription are worked
   * through, and when that one is shared too (a fleet moving from one subscription to the next) what
   * differs is worked out once per pair of Sets: a thousand streams resubscribing to 1,000 EDS names after a
   * cluster was added each do the work of one name, not of 1,000.
   */
  replaceSubscriptionShared(wildcard: boolean, next: ReadonlySet<string>): boolean {
    if (wildcard === this.wildcard && this.nameSet === next) return false;
    const diff = this.nameSetShared ? sharedDiff(this.nameSet, next) : diffNames(this.nameSet, next);
    // As unsubscribe() and subscribe() do for each name, in the order replaceSubscription takes them.
    for (const name of diff.removed) {
      if (!this.wildcard) this.known.delete(name);
      this.dirty.delete(name);
    }
    for (const name of diff.added) {
      if (!this.wildcard && !this.known.has(name)) this.notHeld(name);
      if (this.basis) this.dirty.add(name);
    }
    this.nameSet = next as Set<string>; // shared: copied by mutableNames() before any change of its own
    this.nameSetShared = true;
    const changed = diff.added.length > 0 || diff.removed.length > 0;
    return this.setWildcard(wildcard) || changed;
  }

  /** The wildcard of a replaced subscription (after its names); whether it changed. */
  private setWildcard(wildcard: boolean): boolean {
    if (wildcard === this.wildcard) return false;
    this.materialize();
    this.wildcard = wildcard;
    if (!wildcard) for (const name of [...this.known.keys()]) if (!this.names.has(name)) this.known.delete(name);
    return true;
  }

  /**
   * What the client must be sent so that it holds `set` for its subscription: resources it lacks or holds
   * in another version, and names it holds that no longer exist (or, with `reportMissing`, explicitly
   * subscribed names it was never told about that do not exist).
   */
  pending(
    set: EncodedSet,
    reportMissing: boolean,
  ): { updates: readonly EncodedResource[]; removed: readonly string[] } {
    // The first response of a wildcard (every CDS and LDS stream on connect): all of the set, by name.
    if (!this.basis && this.wildcard && this.names.size === 0 && this.known.size === 0 && this.dirty.size === 0) {
      return { updates: allByName(set), removed: [] };
    }
    // The first response of an explicit subscription (nothing held, nothing dirty): every subscribed name
    // the set has, and those it lacks when they are to be reported. For a shared subscription (a thousand
    // streams connecting with the same names) it is worked out once per set.
    if (!this.basis && !this.wildcard && this.known.size === 0 && this.dirty.size === 0) {
      if (!this.nameSetShared) return firstPending(sortedNames(this.nameSet), set, reportMissing);
      let memo = firstPendingMemo.get(this.nameSet);
      if (!memo)
        firstPendingMemo.set(this.nameSet, (memo = { sorted: sortedNames(this.nameSet), bySet: new WeakMap() }));
      let entry = memo.bySet.get(set);
      if (!entry) memo.bySet.set(set, (entry = {}));
      const key = reportMissing ? 'report' : 'silent';
      return (entry[key] ??= firstPending(memo.sorted, set, reportMissing));
    }
    const candidates = new Set<string>(this.dirty);
    if (this.basis && this.basis.typeUrl === set.typeUrl) {
      for (const name of changedNames(this.basis, set)) candidates.add(name);
    } else {
      if (this.wildcard) for (const name of set.byName.keys()) candidates.add(name);
      for (const name of this.names) candidates.add(name);
      for (const name of this.known.keys()) candidates.add(name);
    }
    const updates: EncodedResource[] = [];
    const removed: string[] = [];
    for (const name of sortedNames(candidates)) {
      if (!this.covers(name)) continue;
      const resource = set.byName.get(name);
      const held = this.held(name);
      if (resource) {
        if (held !== resource.version) updates.push(resource);
      } else if (typeof held === 'string' || (held === undefined && reportMissing && this.names.has(name))) {
        removed.push(name);
      }
    }
    return { updates, removed };
  }

  /** Records that the client was sent `updates` and `removed` and now agrees with `set`. */
  commit(set: EncodedSet, updates: readonly EncodedResource[], removed: readonly string[], tellAbsent: boolean): void {
    // From now on the client holds `set`'s version of every covered name of it: what the basis implies.
    if (this.known.size > 0) for (const r of updates) this.known.delete(r.name);
    for (const name of removed) {
      if (tellAbsent && this.names.has(name)) this.known.set(name, null);
      else this.known.delete(name);
    }
    // Entries the new basis implies are dropped.
    if (this.known.size > 0) {
      for (const [name, version] of [...this.known]) {
        const implied = this.covers(name) ? set.byName.get(name)?.version : undefined;
        if (version === implied) this.known.delete(name);
      }
    }
    this.basis = set;
    this.dirty.clear();
  }

  recordSent(nonce: string, version: string): void {
    this.nonce = nonce;
    this.sentVersion = version;
    this.sentAt = new Date();
    this.responses++;
  }

  status(shortType: string): TypeStatus {
    return {
      type: shortType,
      subscription: this.wildcard ? '*' : [...this.names].sort(),
      sentVersion: this.sentVersion,
      sentNonce: this.nonce,
      sentAt: this.sentAt?.toISOString(),
      responses: this.responses,
      ackedVersion: this.ackedVersion,
      ackedAt: this.ackedAt?.toISOString(),
      answeredNonce: this.answeredNonce,
      lastNack: this.lastNack,
    };
  }
}
