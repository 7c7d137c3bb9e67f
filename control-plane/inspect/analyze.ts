// `trellis analyze`: what is wrong with the mesh as the API server holds it, each finding with the command
// that fixes it. Pure: the caller lists the objects (debug-cli/analyze.ts) and resolves Pod owners. The
// routing findings come from the mesh model built from the same objects (buildSnapshot: the model's own
// validation, precedence, conflicts and lookups); the sidecar findings from the injector's own selection
// (selectPod) and what it injects today (injectPod on a probe Pod, compared with each Pod's status
// annotation and sidecar image).
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import {
  INJECT_ANNOTATION,
  INJECT_ENABLED,
  INJECT_LABEL,
  STATUS_ANNOTATION,
  TEMPLATE_ANNOTATION,
} from '../../injector/annotations.js';
import type { ImageOptions } from '../../injector/images.js';
import { injectPod, type InjectionStatus } from '../../injector/inject.js';
import { PROXY_CONTAINER } from '../../injector/paths.js';
import { selectPod } from '../../injector/selection.js';
import type { Pod } from '../../injector/types.js';
import { buildSnapshot } from '../model/build-snapshot.js';
import { selectEndpoints, wildcardMatches } from '../model/lookup.js';
import type { MeshObject } from '../model/objects.js';
import { selects } from '../model/peer-authentication.js';
import type { MeshSnapshot } from '../model/snapshot.js';
import type { FormatIssue, ValidateRoutingResource } from '../model/validation.js';

export type FindingCode =
  | 'NoSidecar'
  | 'InjectionSkipped'
  | 'OutdatedSidecar'
  | 'NotAccepted'
  | 'HostWithoutService'
  | 'SelectorMatchesNoPod'
  | 'SubsetWithoutEndpoints';

export interface Finding {
  readonly severity: 'error' | 'warning' | 'info';
  readonly code: FindingCode;
  readonly namespace: string;
  /** `deployment/shop`, `pod/lonely`, `virtualservice/reviews`, … (kubectl's spelling). */
  readonly object: string;
  readonly message: string;
  /** The command that fixes it (or, where only an edit can, the command that opens the object). */
  readonly fix: string;
}

/** The controller of a Pod as kubectl names it (`deployment/shop`), resolved through its ReplicaSet. */
export type OwnerOf = (pod: V1Pod) => { readonly kind: string; readonly name: string } | undefined;

export interface AnalyzeInput {
  readonly namespaces: readonly V1Namespace[];
  readonly pods: readonly V1Pod[];
  /** Every object the mesh model reads (Namespaces, Services, EndpointSlices, Pods, policy), as KubeSource keeps them. */
  readonly objects: readonly MeshObject[];
  readonly ownerOf: OwnerOf;
  readonly validate: ValidateRoutingResource;
  readonly formatIssue?: FormatIssue;
  /** What the injector injects today: the sidecar images and the API server's minor version (native sidecars). */
  readonly injector?: { readonly image?: ImageOptions; readonly kubernetesMinor?: number };
  /** Only findings in these namespaces (all when undefined). */
  readonly onlyNamespaces?: readonly string[];
}

const RESTARTABLE = new Set(['deployment', 'statefulset', 'daemonset']);

/**
 * The controller of a Pod from the Pod alone: its controller reference, and for a ReplicaSet named
 * `<deployment>-<pod-template-hash>` (the Deployment controller's naming, the hash also a label of the
 * Pod) the Deployment. For callers that do not list ReplicaSets (the control plane's model).
 */
export const ownerFromPod: OwnerOf = (pod) => {
  const ref = pod.metadata?.ownerReferences?.find((r) => r.controller === true);
  if (!ref) return undefined;
  const hash = pod.metadata?.labels?.['pod-template-hash'];
  if (ref.kind === 'ReplicaSet' && hash && ref.name.endsWith(`-${hash}`)) {
    return { kind: 'deployment', name: ref.name.slice(0, -hash.length - 1) };
  }
  return { kind: ref.kind.toLowerCase(), name: ref.name };
};

/**
 * The command that recreates a Pod's workload (so the webhook sees its Pods again). A bare Pod without a
 * sidecar can be replaced by itself; one with an outdated sidecar must be created again from its own
 * manifest (its current YAML carries the old sidecar, which the webhook leaves alone).
 */
function restartCommand(
  namespace: string,
  pod: string,
  owner: ReturnType<OwnerOf>,
  injected: boolean,
): { object: string; fix: string } {
  if (owner && RESTARTABLE.has(owner.kind)) {
    return {
      object: `${owner.kind}/${owner.name}`,
      fix: `kubectl rollout restart ${owner.kind}/${owner.name} -n ${namespace}`,
    };
  }
  if (owner)
    return {
      object: `pod/${pod}`,
      fix: `kubectl delete pod ${pod} -n ${namespace} (${owner.kind}/${owner.name} recreates it)`,
    };
  if (injected) {
    return {
      object: `pod/${pod}`,
      fix: `kubectl delete pod ${pod} -n ${namespace}, then create it again from its manifest (kubectl apply -f …)`,
    };
  }
  return {
    object: `pod/${pod}`,
    fix: `kubectl get pod ${pod} -n ${namespace} -o yaml > ${pod}.yaml && kubectl replace --force -f ${pod}.yaml`,
  };
}

function podsOfInterest(input: AnalyzeInput): V1Pod[] {
  return input.pods.filter((p) => {
    const phase = p.status?.phase;
    return phase !== 'Succeeded' && phase !== 'Failed' && p.metadata?.deletionTimestamp === undefined;
  });
}

function parseStatus(text: string | undefined): InjectionStatus | undefined {
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as InjectionStatus;
    return typeof v === 'object' && v !== null && typeof v.template === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

function proxyImage(pod: V1Pod): string | undefined {
  const all = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  return all.find((c) => c.name === PROXY_CONTAINER)?.image;
}

const statusKey = (s: InjectionStatus): string =>
  JSON.stringify([s.template, [...s.initContainers], [...s.containers], [...s.volumes]]);

/** The sidecar the injector gives today for a Pod of `template` in `namespace`: its status and image. */
function currentSidecar(
  namespace: string,
  template: string | undefined,
  injector: AnalyzeInput['injector'],
): { status: InjectionStatus; image: string | undefined } | undefined {
  const probe: Pod = {
    metadata: { name: 'probe', ...(template ? { annotations: { [TEMPLATE_ANNOTATION]: template } } : {}) },
    spec: { containers: [{ name: 'app', image: 'app' }] },
  };
  const result = injectPod(
    probe,
    { name: namespace },
    { image: injector?.image, kubernetesMinor: injector?.kubernetesMinor },
  );
  if (result.outcome !== 'injected') return undefined;
  return { status: result.status, image: proxyImage(result.pod as V1Pod) };
}

function sidecarFindings(input: AnalyzeInput): Finding[] {
  const labelled = new Map(
    input.namespaces.map((n) => [n.metadata?.name ?? '', n.metadata?.labels?.[INJECT_LABEL] === INJECT_ENABLED]),
  );
  const nsLabels = new Map(input.namespaces.map((n) => [n.metadata?.name ?? '', n.metadata?.labels ?? {}]));
  const grouped = new Map<string, { finding: Omit<Finding, 'message'>; pods: string[]; why: string }>();
  const add = (key: string, finding: Omit<Finding, 'message'>, pod: string, why: string): void => {
    const entry = grouped.get(key);
    if (entry) entry.pods.push(pod);
    else grouped.set(key, { finding, pods: [pod], why });
  };
  for (const pod of podsOfInterest(input)) {
    const namespace = pod.metadata?.namespace ?? 'default';
    const name = pod.metadata?.name ?? '';
    const annotations = pod.metadata?.annotations ?? {};
    const injected = annotations[STATUS_ANNOTATION] !== undefined;
    const owner = input.ownerOf(pod);
    const { object, fix } = restartCommand(namespace, name, owner, injected);
    if (!injected) {
      if (!labelled.get(namespace)) continue;
      const selection = selectPod(pod as Pod, { name: namespace, labels: nsLabels.get(namespace) ?? {} });
      if (selection.inject === true) {
        add(
          `NoSidecar/${namespace}/${object}`,
          { severity: 'warning', code: 'NoSidecar', namespace, object, fix },
          name,
          `without a sidecar in namespace ${namespace}, labelled ${INJECT_LABEL}=${INJECT_ENABLED}: created before the label, or while the injector was unavailable`,
        );
      } else if (selection.inject === false && selection.why.startsWith('opted out')) {
        add(
          `InjectionSkipped/${namespace}/${object}`,
          {
            severity: 'info',
            code: 'InjectionSkipped',
            namespace,
            object,
            fix: `remove ${INJECT_ANNOTATION} from the pod template, then ${fix}`,
          },
          name,
          `without a sidecar: ${selection.why}`,
        );
      } else if (selection.inject === 'invalid') {
        add(
          `InjectionSkipped/${namespace}/${object}`,
          {
            severity: 'warning',
            code: 'InjectionSkipped',
            namespace,
            object,
            fix: `fix ${selection.field} in the pod template, then ${fix}`,
          },
          name,
          `without a sidecar: ${selection.field} ${selection.why}`,
        );
      }
      continue;
    }
    const status = parseStatus(annotations[STATUS_ANNOTATION]);
    const current = status && currentSidecar(namespace, status.template, input.injector);
    if (!status || !current) continue;
    const image = proxyImage(pod);
    const differences: string[] = [];
    if (image !== current.image)
      differences.push(`sidecar image ${image ?? '(none)'}, the injector now injects ${current.image ?? '(none)'}`);
    if (statusKey(status) !== statusKey(current.status)) {
      differences.push(
        `injected as ${annotations[STATUS_ANNOTATION]}, the template now gives ${JSON.stringify(current.status)}`,
      );
    }
    if (differences.length === 0) continue;
    add(
      `OutdatedSidecar/${namespace}/${object}/${differences.join(';')}`,
      { severity: 'warning', code: 'OutdatedSidecar', namespace, object, fix },
      name,
      `a sidecar older than the injector's template: ${differences.join('; ')}`,
    );
  }
  return [...grouped.values()].map(({ finding, pods, why }) => ({
    ...finding,
    message: finding.object.startsWith('pod/')
      ? `runs ${why}`
      : `${pods.length === 1 ? 'Pod' : 'Pods'} ${pods.sort().join(', ')} ${pods.length === 1 ? 'runs' : 'run'} ${why}`,
  }));
}

function editCommand(kind: string, namespace: string, name: string): string {
  return `kubectl edit ${kind.toLowerCase()}/${name} -n ${namespace}`;
}

function hostMatchesService(snapshot: MeshSnapshot, host: string): boolean {
  if (host.startsWith('*')) return snapshot.services.some((s) => wildcardMatches(host, s.fqdn));
  return snapshot.index.servicesByFqdn.has(host);
}

function routingFindings(snapshot: MeshSnapshot, pods: readonly V1Pod[]): Finding[] {
  const out: Finding[] = [];
  for (const status of snapshot.statuses) {
    if (status.accepted) continue;
    out.push({
      severity: status.reason === 'Invalid' ? 'error' : 'warning',
      code: 'NotAccepted',
      namespace: status.namespace,
      object: `${status.kind.toLowerCase()}/${status.name}`,
      message: `${status.reason}: ${status.message}`,
      fix: editCommand(status.kind, status.namespace, status.name),
    });
  }
  for (const vs of snapshot.virtualServices) {
    if (vs.stale) continue;
    const missing = vs.hosts.filter((h) => !hostMatchesService(snapshot, h));
    if (missing.length === 0) continue;
    out.push({
      severity: 'warning',
      code: 'HostWithoutService',
      namespace: vs.namespace,
      object: `virtualservice/${vs.name}`,
      message:
        missing.length === vs.hosts.length
          ? `matches nothing: no Service for ${missing.join(', ')}`
          : `no Service for ${missing.join(', ')} (routes for it do nothing)`,
      fix: editCommand('VirtualService', vs.namespace, vs.name),
    });
  }
  for (const dr of snapshot.destinationRules) {
    if (dr.stale || hostMatchesService(snapshot, dr.host)) continue;
    out.push({
      severity: 'warning',
      code: 'HostWithoutService',
      namespace: dr.namespace,
      object: `destinationrule/${dr.name}`,
      message: `matches nothing: no Service for ${dr.host}`,
      fix: editCommand('DestinationRule', dr.namespace, dr.name),
    });
  }
  for (const pa of snapshot.peerAuthentications) {
    if (pa.stale || !pa.selector) continue;
    const selected = pods.some(
      (p) => (p.metadata?.namespace ?? 'default') === pa.namespace && selects(pa.selector!, p.metadata?.labels ?? {}),
    );
    if (selected) continue;
    const labels = Object.entries(pa.selector)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    out.push({
      severity: 'warning',
      code: 'SelectorMatchesNoPod',
      namespace: pa.namespace,
      object: `peerauthentication/${pa.name}`,
      message: `matches nothing: no Pod in ${pa.namespace} has labels ${labels}`,
      fix: `${editCommand('PeerAuthentication', pa.namespace, pa.name)} (or label the Pods: kubectl get pods -n ${pa.namespace} --show-labels)`,
    });
  }
  for (const policy of snapshot.hosts) {
    const service = policy.service;
    if (!service) continue;
    for (const rule of policy.destinationRules) {
      for (const subset of rule.subsets) {
        const endpoints = service.ports.flatMap((p) => selectEndpoints(p.endpoints, subset.labels));
        if (endpoints.length > 0) continue;
        const labels = Object.entries(subset.labels ?? {})
          .map(([k, v]) => `${k}=${v}`)
          .join(',');
        const owner = rule.from[0]!;
        out.push({
          severity: 'warning',
          code: 'SubsetWithoutEndpoints',
          namespace: owner.namespace,
          object: `destinationrule/${owner.name}`,
          message: `subset ${subset.name} (${labels || 'no labels'}) of ${service.fqdn} has no endpoints: calls routed to it fail (503)`,
          fix: `${editCommand('DestinationRule', owner.namespace, owner.name)} (or label the Pods: kubectl get pods -n ${service.namespace} --show-labels)`,
        });
      }
    }
  }
  return out;
}

const SEVERITY_ORDER = { error: 0, warning: 1, info: 2 } as const;

/** Every finding, sorted by severity, namespace, object, code. */
export function analyzeMesh(input: AnalyzeInput): Finding[] {
  const snapshot = buildSnapshot(input.objects, {
    validate: input.validate,
    ...(input.formatIssue ? { formatIssue: input.formatIssue } : {}),
  });
  const pods = podsOfInterest(input);
  const only = input.onlyNamespaces ? new Set(input.onlyNamespaces) : undefined;
  return [...sidecarFindings(input), ...routingFindings(snapshot, pods)]
    .filter((f) => !only || only.has(f.namespace))
    .sort(
      (a, b) =>
        SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] ||
        (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0) ||
        (a.object < b.object ? -1 : a.object > b.object ? 1 : 0) ||
        (a.code < b.code ? -1 : a.code > b.code ? 1 : 0),
    );
}
