// VirtualServices, DestinationRules, PeerAuthentications and AuthorizationPolicies: validation, the last accepted version,
// precedence, conflicts, the DestinationRule merge, and the Accepted status of each. Pure; the validator is
// a parameter. What PeerAuthentications mean is in peer-authentication.ts.
// The rules (and where they differ from Istio) are in README.md beside this file.
import type {
  AuthorizationPolicy,
  Condition,
  Destination,
  DestinationRule,
  DestinationRuleSpec,
  ObjectMeta,
  PeerAuthentication,
  ServiceEntry,
  Sidecar,
  VirtualService,
  VirtualServiceSpec,
} from '../../crds/types.js';
import { comparePrecedence } from '../../crds/rules/precedence.js';
import { mergeDestinationRules } from './destination-rule-merge.js';
import { qualifyHost } from './hosts.js';
import {
  locationOf,
  located,
  objectKey,
  type Location,
  type MeshObject,
  type PolicyKind,
  type Problem,
} from './objects.js';
import { authorizationFields } from './authorization-policy.js';
import { sidecarConflicts, sidecarFields } from './sidecar-scope.js';
import { peerAuthenticationConflicts, peerFields, type PeerConflict, type PodLabels } from './peer-authentication.js';
import type {
  AcceptedAuthorizationPolicy,
  AcceptedDestinationRule,
  AcceptedPeerAuthentication,
  AcceptedServiceEntry,
  AcceptedSidecar,
  AcceptedVirtualService,
  MergedDestinationRule,
  ObjectRef,
  ResourceStatus,
  StatusIssue,
  StatusReason,
} from './snapshot.js';
import { serviceEntryConflicts, serviceEntryHosts } from './service-entries.js';
import { virtualServicesOfHosts } from './virtual-service-conflicts.js';
import { resolveDelegates, unmergedVirtualService } from './virtual-service-delegates.js';
import type {
  FormatIssue,
  ValidateRoutingResource,
  ValidationIssue,
  ValidationOrigin,
  ValidationResult,
} from './validation.js';
import { normalizeExportTo } from './visibility.js';

export { comparePrecedence };

type RoutingObject = Extract<MeshObject, { kind: PolicyKind }>;
type Accepted =
  | AcceptedVirtualService
  | AcceptedDestinationRule
  | AcceptedPeerAuthentication
  | AcceptedAuthorizationPolicy
  | AcceptedSidecar
  | AcceptedServiceEntry;

export interface RoutingInput {
  readonly objects: readonly RoutingObject[];
  readonly validate: ValidateRoutingResource;
  readonly formatIssue?: FormatIssue;
  readonly domain: string;
  /** Where the mesh-wide PeerAuthentication lives (for messages). */
  readonly rootNamespace: string;
  /** The Pods, for PeerAuthentication selectors that overlap. */
  readonly pods?: readonly PodLabels[];
  /** The accepted resources of the previous snapshot, to keep when their object turns invalid. */
  readonly previous?: {
    readonly virtualServices: readonly AcceptedVirtualService[];
    readonly destinationRules: readonly AcceptedDestinationRule[];
    readonly peerAuthentications: readonly AcceptedPeerAuthentication[];
    readonly authorizationPolicies?: readonly AcceptedAuthorizationPolicy[];
    readonly sidecars?: readonly AcceptedSidecar[];
    readonly serviceEntries?: readonly AcceptedServiceEntry[];
    /** Its statuses: an equal status is kept as that object. */
    readonly statuses?: readonly ResourceStatus[];
  };
}

export interface RoutingModel {
  /** In precedence order. */
  readonly virtualServices: AcceptedVirtualService[];
  readonly destinationRules: AcceptedDestinationRule[];
  readonly peerAuthentications: AcceptedPeerAuthentication[];
  readonly authorizationPolicies: AcceptedAuthorizationPolicy[];
  /** In precedence order. */
  readonly sidecars: AcceptedSidecar[];
  /** In precedence order (the oldest first: it keeps a host two entries name). */
  readonly serviceEntries: AcceptedServiceEntry[];
  /** By host: the VirtualServices naming it, in precedence order. */
  readonly virtualServicesByHost: Map<string, AcceptedVirtualService[]>;
  /** By host: one merged rule per namespace, sorted by namespace. */
  readonly destinationRulesByHost: Map<string, MergedDestinationRule[]>;
  readonly statuses: ResourceStatus[];
  readonly problems: Problem[];
  /** What the Pods made of the Sidecars and PeerAuthentications (podConflicts): all the model read of them. */
  readonly podConflicts: PodConflicts;
}

/** Sidecars and PeerAuthentications that select the same Pods as older ones of their level. */
export interface PodConflicts {
  readonly sidecars: readonly PeerConflict[];
  readonly peerAuthentications: readonly PeerConflict[];
}

/**
 * The conflicts the Pods' labels make between the accepted Sidecars and PeerAuthentications (both in
 * precedence order): the only part of the routing judgement that reads Pods. A build whose policy objects
 * are those of the previous one and whose Pods give equal conflicts has the previous judgement
 * (build-snapshot.ts), so a Pod that comes, goes or is relabelled does not judge every policy again.
 */
export function podConflicts(
  sidecars: readonly AcceptedSidecar[],
  peerAuthentications: readonly AcceptedPeerAuthentication[],
  pods: readonly PodLabels[],
  rootNamespace: string,
): PodConflicts {
  return {
    sidecars: sidecarConflicts(sidecars, pods, rootNamespace),
    peerAuthentications: peerAuthenticationConflicts(peerAuthentications, pods, rootNamespace),
  };
}

// ---------------------------------------------------------------------------------------------------
// Accepting a validated resource

function isoTimestamp(value: unknown): string | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.toISOString();
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * The metadata a routing resource keeps in the model: identity, generation (observedGeneration) and
 * creationTimestamp (precedence). Not resourceVersion, labels or annotations: nothing translates or
 * reports them, and a change to them alone (every status write bumps resourceVersion) must leave the
 * snapshot's hash as it is (README.md "What the hash covers").
 */
function keptMetadata(meta: ObjectMeta, namespace: string): ObjectMeta {
  const creationTimestamp = isoTimestamp(meta.creationTimestamp);
  return {
    name: meta.name,
    namespace,
    ...(meta.uid !== undefined ? { uid: meta.uid } : {}),
    ...(meta.generation !== undefined ? { generation: meta.generation } : {}),
    ...(creationTimestamp !== undefined ? { creationTimestamp } : {}),
  };
}

function qualifyDestination(d: Destination | undefined, namespace: string, domain: string): void {
  if (d && typeof d.host === 'string') d.host = qualifyHost(d.host, namespace, domain);
}

function acceptVirtualService(
  vs: VirtualService,
  namespace: string,
  name: string,
  origin: Location,
  domain: string,
): AcceptedVirtualService {
  const resource: VirtualService = {
    apiVersion: vs.apiVersion,
    kind: 'VirtualService',
    metadata: keptMetadata(vs.metadata, namespace),
    spec: structuredClone(vs.spec),
  };
  const spec: VirtualServiceSpec = structuredClone(vs.spec);
  const qualified = [...new Set((spec.hosts ?? []).map((h) => qualifyHost(h, namespace, domain)))];
  spec.hosts = qualified;
  for (const http of spec.http ?? []) {
    for (const route of http.route ?? []) qualifyDestination(route.destination, namespace, domain);
    if (http.mirror) qualifyDestination(http.mirror, namespace, domain);
    for (const m of http.mirrors ?? []) qualifyDestination(m.destination, namespace, domain);
  }
  for (const tcp of spec.tcp ?? []) {
    for (const route of tcp.route ?? []) qualifyDestination(route.destination, namespace, domain);
  }
  for (const tls of spec.tls ?? []) {
    for (const route of tls.route ?? []) qualifyDestination(route.destination, namespace, domain);
  }
  return {
    ...acceptedHeader(resource.metadata, namespace, name, origin),
    exportTo: normalizeExportTo(vs.spec.exportTo, namespace),
    hosts: [...qualified].sort(),
    spec,
    resource,
  };
}

/** The fields every accepted VirtualService and DestinationRule carries (its identity and precedence). */
function acceptedHeader(
  metadata: { generation?: number; creationTimestamp?: string },
  namespace: string,
  name: string,
  origin: Location,
): {
  namespace: string;
  name: string;
  generation?: number;
  creationTimestamp?: string;
  origin: Location;
  stale: false;
} {
  return {
    namespace,
    name,
    ...(metadata.generation !== undefined ? { generation: metadata.generation } : {}),
    ...(metadata.creationTimestamp !== undefined ? { creationTimestamp: metadata.creationTimestamp } : {}),
    origin,
    stale: false,
  };
}

function acceptDestinationRule(
  dr: DestinationRule,
  namespace: string,
  name: string,
  origin: Location,
  domain: string,
): AcceptedDestinationRule {
  const resource: DestinationRule = {
    apiVersion: dr.apiVersion,
    kind: 'DestinationRule',
    metadata: keptMetadata(dr.metadata, namespace),
    spec: structuredClone(dr.spec),
  };
  const spec: DestinationRuleSpec = structuredClone(dr.spec);
  spec.host = qualifyHost(spec.host, namespace, domain);
  return {
    ...acceptedHeader(resource.metadata, namespace, name, origin),
    exportTo: normalizeExportTo(dr.spec.exportTo, namespace),
    host: spec.host,
    spec,
    resource,
  };
}

function acceptPeerAuthentication(
  pa: PeerAuthentication,
  namespace: string,
  name: string,
  origin: Location,
): AcceptedPeerAuthentication {
  const resource: PeerAuthentication = {
    apiVersion: pa.apiVersion,
    kind: 'PeerAuthentication',
    metadata: keptMetadata(pa.metadata, namespace),
    spec: structuredClone(pa.spec),
  };
  return {
    ...acceptedHeader(resource.metadata, namespace, name, origin),
    ...peerFields(resource.spec),
    resource,
  };
}

function acceptAuthorizationPolicy(
  ap: AuthorizationPolicy,
  namespace: string,
  name: string,
  origin: Location,
): AcceptedAuthorizationPolicy {
  const resource: AuthorizationPolicy = {
    apiVersion: ap.apiVersion,
    kind: 'AuthorizationPolicy',
    metadata: keptMetadata(ap.metadata, namespace),
    spec: structuredClone(ap.spec),
  };
  return {
    ...acceptedHeader(resource.metadata, namespace, name, origin),
    ...authorizationFields(resource.spec),
    resource,
  };
}

function acceptSidecar(sc: Sidecar, namespace: string, name: string, origin: Location): AcceptedSidecar {
  const resource: Sidecar = {
    apiVersion: sc.apiVersion,
    kind: 'Sidecar',
    metadata: keptMetadata(sc.metadata, namespace),
    spec: structuredClone(sc.spec),
  };
  return {
    ...acceptedHeader(resource.metadata, namespace, name, origin),
    ...sidecarFields(resource.spec),
    resource,
  };
}

function acceptServiceEntry(se: ServiceEntry, namespace: string, name: string, origin: Location): AcceptedServiceEntry {
  const resource: ServiceEntry = {
    apiVersion: se.apiVersion,
    kind: 'ServiceEntry',
    metadata: keptMetadata(se.metadata, namespace),
    spec: structuredClone(se.spec),
  };
  return {
    ...acceptedHeader(resource.metadata, namespace, name, origin),
    exportTo: normalizeExportTo(se.spec.exportTo, namespace),
    hosts: serviceEntryHosts(se.spec),
    spec: resource.spec,
    resource,
  };
}

function accept(o: RoutingObject, resource: unknown, domain: string): Accepted {
  const origin = locationOf(o.origin);
  switch (o.kind) {
    case 'VirtualService':
      return acceptVirtualService(resource as VirtualService, o.namespace, o.name, origin, domain);
    case 'DestinationRule':
      return acceptDestinationRule(resource as DestinationRule, o.namespace, o.name, origin, domain);
    case 'PeerAuthentication':
      return acceptPeerAuthentication(resource as PeerAuthentication, o.namespace, o.name, origin);
    case 'AuthorizationPolicy':
      return acceptAuthorizationPolicy(resource as AuthorizationPolicy, o.namespace, o.name, origin);
    case 'ServiceEntry':
      return acceptServiceEntry(resource as ServiceEntry, o.namespace, o.name, origin);
    case 'Sidecar':
      return acceptSidecar(resource as Sidecar, o.namespace, o.name, origin);
  }
}

// ---------------------------------------------------------------------------------------------------
// Status

/** The object an issue is about. */
interface Subject {
  readonly kind: PolicyKind;
  readonly namespace: string;
  readonly name: string;
  readonly origin: Location;
}

interface Judgement {
  readonly kind: PolicyKind;
  readonly namespace: string;
  readonly name: string;
  readonly generation?: number;
  readonly origin: Location;
  readonly errors: StatusIssue[];
  readonly warnings: StatusIssue[];
  /** The version in the model: the new one, a kept older one (stale), or none. */
  accepted?: Accepted;
  /** Hosts of a VirtualService on which it loses to an older one everywhere it is visible. */
  readonly lostHosts: Set<string>;
  /** A PeerAuthentication that an older one overrides entirely. */
  conflicted?: boolean;
}

function issueText(issues: readonly StatusIssue[]): string {
  return issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
}

const statusIndexes = new WeakMap<readonly ResourceStatus[], ReadonlyMap<string, ResourceStatus>>();

/** A snapshot's statuses by object key (memoized on its list). */
function statusIndex(statuses: readonly ResourceStatus[]): ReadonlyMap<string, ResourceStatus> {
  let index = statusIndexes.get(statuses);
  if (!index) {
    index = new Map(statuses.map((s) => [objectKey(s.kind, s.namespace, s.name), s]));
    statusIndexes.set(statuses, index);
  }
  return index;
}

/** Equal statuses (every field: the objects hold nothing else). */
function sameStatus(a: ResourceStatus, b: ResourceStatus): boolean {
  return (
    a.kind === b.kind &&
    a.namespace === b.namespace &&
    a.name === b.name &&
    a.generation === b.generation &&
    a.origin.file === b.origin.file &&
    a.origin.document === b.origin.document &&
    a.accepted === b.accepted &&
    a.reason === b.reason &&
    a.message === b.message &&
    a.issues.length === b.issues.length &&
    a.issues.every(
      (x, i) =>
        x.severity === b.issues[i]!.severity && x.path === b.issues[i]!.path && x.message === b.issues[i]!.message,
    ) &&
    Object.keys(a).length === Object.keys(b).length &&
    Object.keys(a.origin).length === Object.keys(b.origin).length
  );
}

/**
 * Whether `j` is plainly accepted (no error, warning, conflict or lost host) and `old`, its status in the
 * previous snapshot, is exactly what statusOf(j) makes of that: sameStatus(old, statusOf(j)) without
 * building the status. Nearly every object of a large mesh is plainly accepted; making and comparing 2,000
 * statuses per VirtualService edit cost 12 ms of its 46.
 */
function stillPlainlyAccepted(old: ResourceStatus, j: Judgement): boolean {
  if (j.errors.length > 0 || j.warnings.length > 0 || j.conflicted || j.lostHosts.size > 0) return false;
  return (
    old.accepted &&
    old.reason === 'Accepted' &&
    old.message === 'accepted' &&
    old.issues.length === 0 &&
    old.kind === j.kind &&
    old.namespace === j.namespace &&
    old.name === j.name &&
    old.generation === j.generation &&
    'generation' in old === (j.generation !== undefined) &&
    old.origin.file === j.origin.file &&
    old.origin.document === j.origin.document &&
    Object.keys(old.origin).length === Object.keys(j.origin).length &&
    Object.keys(old).length === (j.generation !== undefined ? 9 : 8)
  );
}

function statusOf(j: Judgement): ResourceStatus {
  let accepted: boolean;
  let reason: StatusReason;
  let message: string;
  const base = {
    kind: j.kind,
    namespace: j.namespace,
    name: j.name,
    ...(j.generation !== undefined ? { generation: j.generation } : {}),
    origin: j.origin,
  };
  if (j.errors.length > 0) {
    accepted = false;
    reason = 'Invalid';
    const kept = j.accepted
      ? `the last accepted version${j.accepted.generation !== undefined ? ` (generation ${j.accepted.generation})` : ''} stays in effect`
      : 'not applied';
    message = `${issueText(j.errors)}; ${kept}`;
  } else {
    const hosts = j.accepted && 'hosts' in j.accepted ? j.accepted.hosts : [];
    if (hosts.length > 0 && hosts.every((h) => j.lostHosts.has(h))) {
      accepted = false;
      reason = 'Conflicted';
      message = `${issueText(j.warnings)}; it has no effect until the older VirtualServices are removed`;
    } else if (j.conflicted) {
      accepted = false;
      reason = 'Conflicted';
      message = `${issueText(j.warnings)}; it has no effect until the older ${j.kind} is removed`;
    } else if (j.warnings.length > 0) {
      accepted = true;
      reason = 'AcceptedWithWarnings';
      message = `accepted with warnings: ${issueText(j.warnings)}`;
    } else {
      accepted = true;
      reason = 'Accepted';
      message = 'accepted';
    }
  }
  return { ...base, accepted, reason, message, issues: [...j.errors, ...j.warnings] };
}

/** The `Accepted` condition KubeSource writes into `status.conditions` (without lastTransitionTime). */
export function acceptedCondition(status: ResourceStatus): Condition {
  return {
    type: 'Accepted',
    status: status.accepted ? 'True' : 'False',
    reason: status.reason,
    message: status.message,
    ...(status.generation !== undefined ? { observedGeneration: status.generation } : {}),
  };
}

/** crds/validator.ts formatIssue's format, for callers that pass no formatIssue. */
function defaultFormat(result: ValidationResult, issue: ValidationIssue, origin?: Location): string {
  const field = issue.path === '' ? '' : `${issue.path}: `;
  const warning = issue.severity === 'warning' ? 'warning: ' : '';
  return located(origin, `${warning}${result.kind} ${result.namespace}/${result.name}: ${field}${issue.message}`);
}

function validationOrigin(origin: Location): ValidationOrigin {
  return {
    ...(origin.file !== undefined ? { file: origin.file } : {}),
    ...(origin.document !== undefined ? { document: origin.document } : {}),
  };
}

// Validation results by object. Objects handed to the model are never mutated (object-store.ts), so an
// object validated once need not be validated again on the next rebuild: a change to one VirtualService
// costs one validation, not one per resource in the mesh (design.md §5.5). The validator's answer does not
// depend on the origin.
const validated = new WeakMap<object, { validate: ValidateRoutingResource; result: ValidationResult }>();

function validateOnce(validate: ValidateRoutingResource, object: unknown, origin: ValidationOrigin): ValidationResult {
  if (typeof object !== 'object' || object === null) return validate(object, origin);
  const hit = validated.get(object);
  if (hit && hit.validate === validate) return hit.result;
  const result = validate(object, origin);
  validated.set(object, { validate, result });
  return result;
}

// The accepted form of a validated resource, once per resource object, namespace, name, origin and domain:
// the validator's resource is cached per input object (above), so an object that did not change is accepted
// once and the snapshot holds the very same accepted object from one build to the next (its content keys,
// model/parts.ts, are then memoized, and nothing is cloned again). Accepted objects are never modified.
const acceptedOnce = new WeakMap<object, { key: string; accepted: Accepted }>();

function acceptOnce(o: RoutingObject, resource: unknown, domain: string): Accepted {
  if (typeof resource !== 'object' || resource === null) return accept(o, resource, domain);
  const origin = locationOf(o.origin);
  const key = JSON.stringify([o.kind, o.namespace, o.name, domain, origin.file ?? null, origin.document ?? null]);
  const hit = acceptedOnce.get(resource);
  if (hit && hit.key === key) return hit.accepted;
  const accepted = accept(o, resource, domain);
  acceptedOnce.set(resource, { key, accepted });
  return accepted;
}

// ---------------------------------------------------------------------------------------------------

export function buildRouting(input: RoutingInput): RoutingModel {
  const { domain } = input;
  const format = input.formatIssue ?? defaultFormat;
  const problems: Problem[] = [];
  const previous = new Map<string, Accepted>();
  for (const vs of input.previous?.virtualServices ?? []) {
    // A root as accepted, not with its delegates merged: a kept root merges today's delegates.
    previous.set(objectKey('VirtualService', vs.namespace, vs.name), unmergedVirtualService(vs));
  }
  for (const dr of input.previous?.destinationRules ?? []) {
    previous.set(objectKey('DestinationRule', dr.namespace, dr.name), dr);
  }
  for (const pa of input.previous?.peerAuthentications ?? []) {
    previous.set(objectKey('PeerAuthentication', pa.namespace, pa.name), pa);
  }
  for (const ap of input.previous?.authorizationPolicies ?? []) {
    previous.set(objectKey('AuthorizationPolicy', ap.namespace, ap.name), ap);
  }
  for (const se of input.previous?.serviceEntries ?? []) {
    previous.set(objectKey('ServiceEntry', se.namespace, se.name), se);
  }
  for (const sc of input.previous?.sidecars ?? []) {
    previous.set(objectKey('Sidecar', sc.namespace, sc.name), sc);
  }

  // Every issue goes to its object's judgement (the status) and to the problems (the log), worded by `format`.
  const byKey = new Map<string, Judgement>();
  const report = (subject: Subject, issue: StatusIssue, result?: ValidationResult): void => {
    const j = byKey.get(objectKey(subject.kind, subject.namespace, subject.name));
    const own: StatusIssue = { severity: issue.severity, path: issue.path, message: issue.message };
    if (j) (issue.severity === 'error' ? j.errors : j.warnings).push(own);
    problems.push({
      severity: issue.severity,
      object: { kind: subject.kind, namespace: subject.namespace, name: subject.name },
      origin: subject.origin,
      message: format(
        result ?? { kind: subject.kind, namespace: subject.namespace, name: subject.name, issues: [] },
        issue,
        validationOrigin(subject.origin),
      ),
    });
  };

  const judgements: Judgement[] = [];
  for (const o of input.objects) {
    // The model keeps where an object is, never its resourceVersion (objects.ts Location).
    const origin = locationOf(o.origin);
    const meta = (o.object as { metadata?: { generation?: unknown } } | null)?.metadata;
    const generation = typeof meta?.generation === 'number' ? meta.generation : undefined;
    const judgement: Judgement = {
      kind: o.kind,
      namespace: o.namespace,
      name: o.name,
      ...(generation !== undefined ? { generation } : {}),
      origin,
      errors: [],
      warnings: [],
      lostHosts: new Set(),
    };
    byKey.set(objectKey(o.kind, o.namespace, o.name), judgement);
    judgements.push(judgement);
    const subject: Subject = { kind: o.kind, namespace: o.namespace, name: o.name, origin };
    const result = validateOnce(input.validate, o.object, validationOrigin(origin));
    // The store's key names the object; the validator's result may lack a name when the object does.
    const named: ValidationResult = { ...result, kind: o.kind, namespace: o.namespace, name: o.name };
    for (const issue of result.issues) report(subject, issue, named);
    if (judgement.errors.length === 0 && result.resource === undefined) {
      report(subject, { path: '', message: 'the validator returned no resource', severity: 'error' }, named);
    }
    if (judgement.errors.length === 0 && result.resource !== undefined) {
      try {
        judgement.accepted = acceptOnce(o, result.resource, domain);
      } catch (err) {
        // The validator let through something the model cannot read: a bug, but it hurts only this object.
        const message = `cannot be read by the mesh model: ${err instanceof Error ? err.message : String(err)}`;
        report(subject, { path: '', message, severity: 'error' }, named);
      }
    }
    if (!judgement.accepted) {
      // design.md §5.3: a resource that turns invalid keeps its last accepted version in the model.
      const kept = previous.get(objectKey(o.kind, o.namespace, o.name));
      if (kept) judgement.accepted = kept.stale ? kept : { ...kept, stale: true };
    }
  }

  const judgementOf = (kind: PolicyKind, r: ObjectRef) => byKey.get(objectKey(kind, r.namespace, r.name))!;
  const subjectOf = (kind: PolicyKind, r: ObjectRef): Subject => ({ kind, ...r, origin: judgementOf(kind, r).origin });

  // Roots carry their delegates' routes merged in (virtual-service-delegates.ts).
  const virtualServices = resolveDelegates(
    judgements
      .filter((j) => j.kind === 'VirtualService' && j.accepted)
      .map((j) => j.accepted as AcceptedVirtualService)
      .sort(comparePrecedence),
    {
      warn: (vs, issue) => report(subjectOf('VirtualService', vs), issue),
      exists: (namespace, name) => byKey.has(objectKey('VirtualService', namespace, name)),
    },
  );
  const destinationRules = judgements
    .filter((j) => j.kind === 'DestinationRule' && j.accepted)
    .map((j) => j.accepted as AcceptedDestinationRule)
    .sort(comparePrecedence);
  const peerAuthentications = judgements
    .filter((j) => j.kind === 'PeerAuthentication' && j.accepted)
    .map((j) => j.accepted as AcceptedPeerAuthentication)
    .sort(comparePrecedence);

  // AuthorizationPolicies combine (authorization-policy.ts): no precedence between them, no conflicts.
  const authorizationPolicies = judgements
    .filter((j) => j.kind === 'AuthorizationPolicy' && j.accepted)
    .map((j) => j.accepted as AcceptedAuthorizationPolicy)
    .sort(comparePrecedence);

  // Sidecars: the oldest of a level wins (sidecar-scope.ts), as PeerAuthentications.
  const sidecars = judgements
    .filter((j) => j.kind === 'Sidecar' && j.accepted)
    .map((j) => j.accepted as AcceptedSidecar)
    .sort(comparePrecedence);
  const conflicts = podConflicts(sidecars, peerAuthentications, input.pods ?? [], input.rootNamespace);
  for (const c of conflicts.sidecars) {
    const ref = { namespace: c.policy.namespace, name: c.policy.name };
    report(subjectOf('Sidecar', ref), { severity: 'warning', path: c.path, message: c.message });
    if (c.conflicted) judgementOf('Sidecar', ref).conflicted = true;
  }

  // ServiceEntries: the oldest keeps a host that a later one also names (service-entries.ts).
  const serviceEntries = judgements
    .filter((j) => j.kind === 'ServiceEntry' && j.accepted)
    .map((j) => j.accepted as AcceptedServiceEntry)
    .sort(comparePrecedence);
  for (const c of serviceEntryConflicts(serviceEntries)) {
    report(subjectOf('ServiceEntry', c.entry), { severity: 'warning', path: c.path, message: c.message });
  }

  // PeerAuthentications: several at one level (crds/rules/peer-authentication.ts).
  for (const c of conflicts.peerAuthentications) {
    const policy = { namespace: c.policy.namespace, name: c.policy.name };
    report(subjectOf('PeerAuthentication', policy), { severity: 'warning', path: c.path, message: c.message });
    if (c.conflicted) judgementOf('PeerAuthentication', policy).conflicted = true;
  }

  // VirtualServices by host, and who loses a host to an older one (virtual-service-conflicts.ts).
  const virtualServicesByHost = virtualServicesOfHosts(virtualServices, domain, {
    warn: (vs, issue) => report(subjectOf('VirtualService', vs), issue),
    lose: (vs, host) => judgementOf('VirtualService', vs).lostHosts.add(host),
  });

  // DestinationRules merged per host and namespace (destination-rule-merge.ts).
  const destinationRulesByHost = mergeDestinationRules(destinationRules, (dr, issue) =>
    report(subjectOf('DestinationRule', dr), issue),
  );

  // A status equal to the previous snapshot's is that very object: already frozen and hashed (the snapshot
  // hash and deepFreeze stop at it), so an edit of one VirtualService does not re-hash thousands.
  const before = input.previous?.statuses ? statusIndex(input.previous.statuses) : undefined;
  const statuses = judgements.map((j) => {
    const old = before?.get(objectKey(j.kind, j.namespace, j.name));
    if (old && stillPlainlyAccepted(old, j)) return old;
    const status = statusOf(j);
    return old && sameStatus(old, status) ? old : status;
  });
  return {
    virtualServices,
    destinationRules,
    peerAuthentications,
    authorizationPolicies,
    sidecars,
    serviceEntries,
    virtualServicesByHost,
    destinationRulesByHost,
    statuses,
    problems,
    podConflicts: conflicts,
  };
}
