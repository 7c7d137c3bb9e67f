// Which pods are injected (injector/README.md "Selection"). Pure.
import {
  INJECT_ANNOTATION,
  INJECT_ENABLED,
  INJECT_LABEL,
  NEVER_INJECTED_NAMESPACES,
  STATUS_ANNOTATION,
} from './annotations.js';
import { PROXY_CONTAINER } from './paths.js';
import type { Pod } from './types.js';

/** The namespace of the pod; `labels` undefined when unknown (then the caller has selected the pod). */
export interface NamespaceInfo {
  readonly name: string;
  readonly labels?: Readonly<Record<string, string>>;
}

export type Selection =
  | { readonly inject: true; readonly why: string }
  | { readonly inject: false; readonly why: string }
  | { readonly inject: 'invalid'; readonly field: string; readonly why: string };

/** Already carries our sidecar: the status annotation, or a container named trellis-proxy. */
export function alreadyInjected(pod: Pod): boolean {
  if (pod.metadata?.annotations?.[STATUS_ANNOTATION] !== undefined) return true;
  const named = (list: readonly { name: string }[] | undefined): boolean =>
    (list ?? []).some((c) => c.name === PROXY_CONTAINER);
  return named(pod.spec?.containers) || named(pod.spec?.initContainers);
}

/**
 * In order: never the namespaces kube-system, kube-public and trellis-system; never hostNetwork pods
 * (capture would rewrite the node's rules); never twice; the pod's own choice (label, else annotation,
 * `trellis.dev/inject: "true"|"false"`); then the namespace label `trellis.dev/inject=enabled` when the
 * namespace's labels are known, and yes when they are not (the webhook's selectors or the user chose).
 */
export function selectPod(pod: Pod, namespace: NamespaceInfo): Selection {
  if (NEVER_INJECTED_NAMESPACES.includes(namespace.name)) {
    return { inject: false, why: `namespace ${namespace.name} is never injected` };
  }
  if (pod.spec?.hostNetwork === true) return { inject: false, why: 'hostNetwork pods are never injected' };
  if (alreadyInjected(pod)) return { inject: false, why: 'already injected' };
  const label = pod.metadata?.labels?.[INJECT_LABEL];
  const annotation = pod.metadata?.annotations?.[INJECT_ANNOTATION];
  const [choice, field] =
    label !== undefined
      ? [label, `metadata.labels[${INJECT_LABEL}]`]
      : [annotation, `metadata.annotations[${INJECT_ANNOTATION}]`];
  if (choice !== undefined) {
    if (choice === 'false') return { inject: false, why: `opted out (${field})` };
    if (choice === 'true') return { inject: true, why: `opted in (${field})` };
    return { inject: 'invalid', field, why: `must be "true" or "false", not ${JSON.stringify(choice)}` };
  }
  if (namespace.labels === undefined) return { inject: true, why: 'selected by the caller' };
  if (namespace.labels[INJECT_LABEL] === INJECT_ENABLED) {
    return { inject: true, why: `namespace labelled ${INJECT_LABEL}=${INJECT_ENABLED}` };
  }
  return { inject: false, why: `namespace ${namespace.name} is not labelled ${INJECT_LABEL}=${INJECT_ENABLED}` };
}
