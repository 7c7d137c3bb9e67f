// `trellis diff`: what a change to VirtualServices, DestinationRules or PeerAuthentications would do before
// it is applied. Pure. The change's objects are laid over the source's objects (created, or replacing the
// object of the same kind, namespace and name), a snapshot is built from that with the live one as
// `previous` (the model's own validation, precedence, conflicts and last-accepted rules), and every
// connected proxy is translated twice by the same translator (a `meshGenerator` of its own): against the
// live snapshot and against the overlay. Resources are compared by type and name in proto3 JSON; the live
// model is never touched (snapshots are immutable; the overlay is a new one).
import { createHash } from 'node:crypto';
import { encodeMessage, messageToJson, resourceName, shortTypeName, type Message } from '../envoy/protos.js';
import { buildSnapshot, type BuildOptions } from '../model/build-snapshot.js';
import { canonicalJson } from '../model/canonical.js';
import { isPolicyKind, keyOf, type MeshObject, type PolicyKind } from '../model/objects.js';
import type { MeshSnapshot, StatusReason } from '../model/snapshot.js';
import type { MeshConfig } from '../translate/context.js';
import { meshGenerator } from '../translate/generator.js';
import type { ResourcesByType } from '../xds/generator.js';
import { systemClock, type Clock } from '../xds/clock.js';
import type { ProxyInfo } from '../xds/node.js';
import { jsonDiff, type FieldChange, type Json } from './json-diff.js';

export interface ChangeInput {
  /** The live snapshot (the source's current one). */
  readonly live: MeshSnapshot;
  /** The objects it was built from (the source's store). */
  readonly objects: readonly MeshObject[];
  /** The change: VirtualServices, DestinationRules and PeerAuthentications (others are refused). */
  readonly change: readonly MeshObject[];
  readonly validate: BuildOptions['validate'];
  readonly formatIssue?: BuildOptions['formatIssue'];
  readonly mesh: MeshConfig;
  /** The connected proxies. */
  readonly proxies: readonly DiffProxy[];
  /**
   * `creationTimestamp` for objects the change creates (what the API server would stamp), in Kubernetes
   * mode; undefined in local mode, where files carry none. A replaced object keeps its own.
   */
  readonly createdAt?: string;
}

/** A connected proxy and, by type (CDS, EDS, LDS, RDS), the names it subscribed to (`*`: all). */
export interface DiffProxy {
  readonly info: ProxyInfo;
  readonly subscriptions: ReadonlyMap<string, '*' | readonly string[]>;
}

export interface ObjectChange {
  readonly kind: PolicyKind;
  readonly namespace: string;
  readonly name: string;
  /** `created`: no such object yet; `changed`: its spec differs; `unchanged`: the same spec. */
  readonly action: 'created' | 'changed' | 'unchanged';
  /** Its `Accepted` condition once applied (an invalid object changes nothing; see the message). */
  readonly accepted: boolean;
  readonly reason: StatusReason;
  readonly message: string;
}

export type ResourceType = 'CDS' | 'EDS' | 'LDS' | 'RDS';

export interface ResourceChange {
  readonly type: ResourceType;
  readonly name: string;
  readonly change: 'added' | 'removed' | 'changed';
  /** The changed fields (`changed` only). */
  readonly fields: readonly FieldChange[];
  /**
   * Whether the proxy subscribed to the resource, so that the change is pushed to it. A proxyless gRPC
   * client asks for the clusters its routes name and a server for its listener only: a resource of its
   * config it did not ask for changes nothing until it does.
   */
  readonly subscribed: boolean;
}

export interface ProxyDiff {
  readonly proxy: string;
  readonly namespace: string;
  readonly proxyType: string;
  /** By type (CDS, EDS, LDS, RDS), then name. */
  readonly resources: readonly ResourceChange[];
  /** Whether any changed resource is one the proxy subscribed to (it would be pushed now). */
  readonly pushed: boolean;
}

export interface ConfigDiff {
  readonly objects: readonly ObjectChange[];
  /** The proxies whose config would change, by id. */
  readonly proxies: readonly ProxyDiff[];
  /** The ids of the connected proxies whose config would not change. */
  readonly unchanged: readonly string[];
}

export class ChangeError extends Error {}

const TYPE_ORDER: readonly ResourceType[] = ['CDS', 'EDS', 'LDS', 'RDS'];

type Metadata = Record<string, unknown>;

function metadataOf(object: unknown): Metadata {
  const m = (object as { metadata?: unknown } | null)?.metadata;
  return typeof m === 'object' && m !== null && !Array.isArray(m) ? (m as Metadata) : {};
}

function specOf(object: unknown): unknown {
  return (object as { spec?: unknown } | null)?.spec;
}

/**
 * The change object as the source would hold it once applied: a replaced object keeps its uid,
 * creationTimestamp (precedence) and, when the spec is the same, its generation (else generation + 1).
 */
function applied(change: MeshObject, live: MeshObject | undefined, createdAt: string | undefined): MeshObject {
  const metadata = { ...metadataOf(change.object) };
  delete metadata.resourceVersion;
  if (live) {
    const old = metadataOf(live.object);
    for (const key of ['uid', 'creationTimestamp'] as const) {
      if (old[key] === undefined) delete metadata[key];
      else metadata[key] = old[key];
    }
    if (typeof old.generation === 'number') {
      const same = canonicalJson(specOf(live.object) ?? null) === canonicalJson(specOf(change.object) ?? null);
      metadata.generation = same ? old.generation : old.generation + 1;
    }
  } else {
    delete metadata.uid;
    if (createdAt !== undefined) metadata.creationTimestamp = createdAt;
    else delete metadata.creationTimestamp;
    metadata.generation = 1;
  }
  return { ...change, object: { ...(change.object as object), metadata }, origin: live?.origin ?? {} } as MeshObject;
}

/** The overlay snapshot: the change laid over `objects`. Throws ChangeError for a kind it does not take. */
export function overlaySnapshot(input: ChangeInput): {
  snapshot: MeshSnapshot;
  actions: Map<string, ObjectChange['action']>;
} {
  const byKey = new Map(input.objects.map((o) => [keyOf(o), o]));
  const actions = new Map<string, ObjectChange['action']>();
  for (const object of input.change) {
    if (!isPolicyKind(object.kind)) {
      throw new ChangeError(
        `${object.kind} ${object.namespace}/${object.name}: trellis diff takes only the mesh's policy kinds (VirtualService, DestinationRule, PeerAuthentication)`,
      );
    }
    const key = keyOf(object);
    if (actions.has(key)) throw new ChangeError(`${object.kind} ${object.namespace}/${object.name}: given twice`);
    const live = byKey.get(key);
    const next = applied(object, live, input.createdAt);
    actions.set(
      key,
      !live
        ? 'created'
        : canonicalJson(specOf(live.object) ?? null) === canonicalJson(specOf(next.object) ?? null)
          ? 'unchanged'
          : 'changed',
    );
    byKey.set(key, next);
  }
  const snapshot = buildSnapshot([...byKey.values()], {
    validate: input.validate,
    ...(input.formatIssue ? { formatIssue: input.formatIssue } : {}),
    domain: input.live.domain,
    rootNamespace: input.live.rootNamespace,
    previous: input.live,
  });
  return { snapshot, actions };
}

function byName(messages: readonly Message[] | undefined): Map<string, Message> {
  const out = new Map<string, Message>();
  for (const m of messages ?? []) out.set(resourceName(m) ?? '', m);
  return out;
}

function sameBytes(a: Message, b: Message): boolean {
  return a === b || Buffer.from(encodeMessage(a)).equals(encodeMessage(b));
}

type RawChange = Omit<ResourceChange, 'subscribed'>;

/**
 * The resources that differ between two translations of one proxy, without the subscription flag. Equal
 * encodings are skipped without a JSON conversion; the rest are compared field by field (a resource whose
 * bytes differ but whose JSON does not, a map in another order, is no change).
 */
function rawChanges(before: ResourcesByType, after: ResourcesByType): RawChange[] {
  const out: RawChange[] = [];
  const types = [...new Set([...before.keys(), ...after.keys()])]
    .map((typeUrl) => ({ typeUrl, type: shortTypeName(typeUrl) as ResourceType }))
    .sort((a, b) => TYPE_ORDER.indexOf(a.type) - TYPE_ORDER.indexOf(b.type));
  for (const { typeUrl, type } of types) {
    const was = before.get(typeUrl);
    const now = after.get(typeUrl);
    if (was === now) continue; // the same array: the translator reused it, nothing changed
    const old = byName(was);
    const next = byName(now);
    for (const name of [...new Set([...old.keys(), ...next.keys()])].sort()) {
      const a = old.get(name);
      const b = next.get(name);
      if (a === undefined) out.push({ type, name, change: 'added', fields: [] });
      else if (b === undefined) out.push({ type, name, change: 'removed', fields: [] });
      else if (!sameBytes(a, b)) {
        const fields = jsonDiff(redacted(messageToJson(a) as Json), redacted(messageToJson(b) as Json));
        if (fields.length > 0) out.push({ type, name, change: 'changed', fields });
      }
    }
  }
  return out;
}

/**
 * A Secret's proto3 JSON with its private key replaced by `[redacted sha256:<12 hex>]` (a rotation still
 * shows as a change; the key never does). Other resources as they are.
 */
function redacted(json: Json): Json {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return json;
  const tls = json.tlsCertificate;
  if (typeof tls !== 'object' || tls === null || Array.isArray(tls) || !('privateKey' in tls)) return json;
  const digest = createHash('sha256').update(canonicalJson(tls.privateKey)).digest('hex').slice(0, 12);
  return { ...json, tlsCertificate: { ...tls, privateKey: `[redacted sha256:${digest}]` } };
}

function subscribedTo(subscriptions: DiffProxy['subscriptions'], type: string, name: string): boolean {
  const names = subscriptions.get(type);
  return names === '*' || (names !== undefined && names.includes(name));
}

/** The resources that differ between two translations of one proxy. */
export function resourceChanges(
  before: ResourcesByType,
  after: ResourcesByType,
  subscriptions: DiffProxy['subscriptions'],
): ResourceChange[] {
  return rawChanges(before, after).map((r) => ({ ...r, subscribed: subscribedTo(subscriptions, r.type, r.name) }));
}

/**
 * The steps of a diff: it yields after each proxy translated and each shape compared, so a caller on a
 * busy event loop (the control plane) can let xDS traffic through between them.
 */
function* diffSteps(input: ChangeInput): Generator<void, ConfigDiff> {
  const { snapshot, actions } = overlaySnapshot(input);
  const objects: ObjectChange[] = input.change.map((o) => {
    const status = snapshot.statuses.find((s) => s.kind === o.kind && s.namespace === o.namespace && s.name === o.name);
    return {
      kind: o.kind as PolicyKind,
      namespace: o.namespace,
      name: o.name,
      action: actions.get(keyOf(o))!,
      accepted: status?.accepted ?? false,
      reason: status?.reason ?? 'Invalid',
      message: status?.message ?? 'not judged',
    };
  });
  // A generator of its own (never the push controller's): every proxy against the live snapshot, then
  // against the overlay, so parts the change does not touch are the same arrays (skipped below), as in a
  // real push. Its output equals a fresh translation (test/translate/incremental.test.ts).
  const generator = meshGenerator(input.mesh);
  const unique = [...new Map(input.proxies.map((p) => [p.info.id, p])).values()];
  const live = new Map<string, ResourcesByType>();
  for (const p of unique) {
    live.set(p.info.id, generator.generate(p.info, input.live));
    yield;
  }
  const next = new Map<string, ResourcesByType>();
  for (const p of unique) {
    next.set(p.info.id, generator.generate(p.info, snapshot));
    yield;
  }
  const liveOf = (proxy: ProxyInfo): ResourcesByType => live.get(proxy.id)!;
  const nextOf = (proxy: ProxyInfo): ResourcesByType => next.get(proxy.id)!;
  // Proxies of one shape get the very same translations: their differences are computed once.
  const changesOf = new Map<ResourcesByType, Map<ResourcesByType, RawChange[]>>();
  const seen = new Set<string>();
  const proxies: ProxyDiff[] = [];
  const unchanged: string[] = [];
  const sorted = [...input.proxies].sort((a, b) => (a.info.id < b.info.id ? -1 : a.info.id > b.info.id ? 1 : 0));
  for (const { info: proxy, subscriptions } of sorted) {
    if (seen.has(proxy.id)) continue;
    seen.add(proxy.id);
    const before = liveOf(proxy);
    const after = nextOf(proxy);
    let byAfter = changesOf.get(before);
    if (!byAfter) changesOf.set(before, (byAfter = new Map()));
    let raw = byAfter.get(after);
    if (!raw) {
      byAfter.set(after, (raw = rawChanges(before, after)));
      yield;
    }
    const resources = raw.map((r) => ({ ...r, subscribed: subscribedTo(subscriptions, r.type, r.name) }));
    if (resources.length === 0) unchanged.push(proxy.id);
    else {
      const pushed = resources.some((r) => r.subscribed);
      proxies.push({ proxy: proxy.id, namespace: proxy.namespace, proxyType: proxy.proxyType, resources, pushed });
    }
  }
  return { objects, proxies, unchanged };
}

/** What applying `input.change` would do: its objects' statuses, and each connected proxy's config, resource by resource. */
export function diffChange(input: ChangeInput): ConfigDiff {
  const steps = diffSteps(input);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/**
 * diffChange in slices: it yields to the event loop whenever `sliceMs` (default 10) passed on `clock`
 * since the last yield, as a push cycle does (xds/push-controller.ts), so a diff of a large mesh does not
 * hold up the xDS streams of the process it runs in.
 */
export async function diffChangeInSlices(
  input: ChangeInput,
  options: { readonly clock?: Clock; readonly sliceMs?: number } = {},
): Promise<ConfigDiff> {
  const clock = options.clock ?? systemClock;
  const sliceMs = options.sliceMs ?? 10;
  const steps = diffSteps(input);
  let sliceStart = clock.now();
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    if (clock.now() - sliceStart >= sliceMs) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = clock.now();
    }
  }
}
