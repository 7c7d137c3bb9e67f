// `trellis analyze`: lists what the mesh reads from the API server (the kinds KubeSource follows, as
// KubeSource keeps them: sources/model-input.ts), the ReplicaSets that own Pods and the server's version,
// and prints what inspect/analyze.ts finds, each finding with the command that fixes it. With
// `--control-plane URL` the control plane analyses its own model instead (`/debug/analyze`: local mode
// too, where there is no API server).
import type { KubeConfig, V1Namespace, V1OwnerReference, V1Pod } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { Backoff } from '../../lib/backoff.js';
import { formatIssue, validateRoutingResource } from '../../crds/validator.js';
import type { ImageOptions } from '../../injector/images.js';
import { analyzeMesh, ownerFromPod, type Finding, type OwnerOf } from '../inspect/analyze.js';
import { kubeRequest } from '../kube/http.js';
import { getJson } from './http-client.js';
import { statusCode, type KubeObject } from '../kube/informer.js';
import type { MeshObject } from '../model/objects.js';
import { KUBE_KINDS } from '../sources/kube-source.js';
import { modelInput } from '../sources/model-input.js';
import { renderData, type OutputFormat } from './render.js';

export interface AnalyzeResult {
  readonly findings: readonly Finding[];
  /** What could not be read (a CRD that is not installed). */
  readonly notes: readonly string[];
}

interface List<T> {
  readonly items?: readonly T[];
}

/** Tries before a list answered 429 (an API server still initialising a new CRD's storage) is an error. */
const TOO_MANY_REQUESTS_TRIES = 6;

/** GET a list; a 429 is retried with backoff (lib/backoff.ts), as kubectl does. */
async function list<T>(kubeConfig: KubeConfig, path: string): Promise<readonly T[]> {
  const backoff = new Backoff({ initialMs: 200, maxMs: 2_000 });
  for (let attempt = 1; ; attempt++) {
    try {
      return (await kubeRequest<List<T>>(kubeConfig, { path })).items ?? [];
    } catch (err) {
      if (statusCode(err) !== 429 || attempt >= TOO_MANY_REQUESTS_TRIES) throw err;
      await sleep(backoff.next());
    }
  }
}

function controllerOf(refs: readonly V1OwnerReference[] | undefined): V1OwnerReference | undefined {
  return refs?.find((r) => r.controller === true);
}

/** Reads the mesh's objects and analyses them. */
export async function analyzeCluster(
  kubeConfig: KubeConfig,
  options: { readonly image?: ImageOptions; readonly namespaces?: readonly string[] } = {},
): Promise<AnalyzeResult> {
  const notes: string[] = [];
  const objects: MeshObject[] = [];
  let namespaces: V1Namespace[] = [];
  let pods: V1Pod[] = [];
  for (const spec of KUBE_KINDS) {
    let items: readonly KubeObject[];
    try {
      items = await list<KubeObject>(kubeConfig, spec.path);
    } catch (err) {
      if (statusCode(err) !== 404) throw err;
      notes.push(`${spec.kind}: not served by the API server (${spec.apiVersion} not installed); not analysed`);
      continue;
    }
    if (spec.kind === 'Namespace') namespaces = items as V1Namespace[];
    if (spec.kind === 'Pod') pods = items as V1Pod[];
    for (const item of items) {
      const input = modelInput(spec.kind, spec.apiVersion, item);
      if (input) objects.push(input);
    }
  }
  const replicaSets = await list<KubeObject & { metadata?: { ownerReferences?: V1OwnerReference[] } }>(
    kubeConfig,
    '/apis/apps/v1/replicasets',
  );
  const rsOwner = new Map(
    replicaSets.map((rs) => [
      `${rs.metadata?.namespace}/${rs.metadata?.name}`,
      controllerOf(rs.metadata?.ownerReferences),
    ]),
  );
  const ownerOf: OwnerOf = (pod) => {
    const ref = controllerOf(pod.metadata?.ownerReferences);
    if (!ref) return undefined;
    if (ref.kind === 'ReplicaSet') {
      const key = `${pod.metadata?.namespace}/${ref.name}`;
      const up = rsOwner.get(key);
      if (up) return { kind: up.kind.toLowerCase(), name: up.name };
      if (!rsOwner.has(key)) return ownerFromPod(pod); // created since the list
    }
    return { kind: ref.kind.toLowerCase(), name: ref.name };
  };
  const version = await kubeRequest<{ minor?: string }>(kubeConfig, { path: '/version' });
  const minor = Number.parseInt(version.minor ?? '', 10);
  const findings = analyzeMesh({
    namespaces,
    pods,
    objects,
    ownerOf,
    validate: validateRoutingResource,
    formatIssue,
    injector: { image: options.image, ...(Number.isFinite(minor) ? { kubernetesMinor: minor } : {}) },
    ...(options.namespaces && options.namespaces.length > 0 ? { onlyNamespaces: options.namespaces } : {}),
  });
  return { findings, notes };
}

const SEVERITY = { error: 'Error', warning: 'Warning', info: 'Info' } as const;

/** `Warning [NoSidecar] (deployment/shop.ns) message` and the fix under it, like `istioctl analyze`. */
export function renderFindings(result: AnalyzeResult): string {
  const lines = result.findings.flatMap((f) => [
    `${SEVERITY[f.severity]} [${f.code}] (${f.object}.${f.namespace}) ${f.message}`,
    `  fix: ${f.fix}`,
  ]);
  const counts = (['error', 'warning', 'info'] as const)
    .map((s) => [s, result.findings.filter((f) => f.severity === s).length] as const)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s}${n === 1 ? '' : 's'}`);
  lines.push(result.findings.length === 0 ? 'No issues found.' : `${counts.join(', ')}.`);
  for (const note of result.notes) lines.push(`note: ${note}`);
  return lines.join('\n') + '\n';
}

/** `/debug/analyze` of a control plane: its own model. */
export async function analyzeControlPlane(base: string, namespaces: readonly string[] = []): Promise<AnalyzeResult> {
  const query = new URLSearchParams(namespaces.map((n): [string, string] => ['namespace', n]));
  const answer = (await getJson(
    base,
    `debug/analyze${namespaces.length > 0 ? `?${query.toString()}` : ''}`,
  )) as AnalyzeResult;
  if (typeof answer !== 'object' || answer === null || !Array.isArray(answer.findings)) {
    throw new Error('/debug/analyze: the answer is not a list of findings');
  }
  return { findings: answer.findings, notes: Array.isArray(answer.notes) ? answer.notes : [] };
}

/** The exit status of `trellis analyze` when it found issues at or above `--failure-threshold` (istioctl's). */
export const FOUND_ISSUES_EXIT_CODE = 79;

export type FailureThreshold = 'error' | 'warning' | 'info';
const RANK: Readonly<Record<FailureThreshold, number>> = { error: 2, warning: 1, info: 0 };

/** Whether any finding is at least as severe as `threshold` (the command then exits FOUND_ISSUES_EXIT_CODE). */
export function failsThreshold(result: AnalyzeResult, threshold: FailureThreshold): boolean {
  return result.findings.some((f) => RANK[f.severity] >= RANK[threshold]);
}

/** Prints the findings; returns them (the caller decides the exit status: failsThreshold). */
export async function runAnalyze(options: {
  /** Analyse this control plane's model instead of the API server's objects. */
  readonly controlPlane?: string;
  readonly kubeconfig?: string;
  readonly context?: string;
  readonly namespaces?: readonly string[];
  readonly image?: ImageOptions;
  readonly output: OutputFormat;
  readonly stdout: NodeJS.WritableStream;
}): Promise<AnalyzeResult> {
  if (options.controlPlane !== undefined) {
    const result = await analyzeControlPlane(options.controlPlane, options.namespaces);
    options.stdout.write(options.output === 'table' ? renderFindings(result) : renderData(result, options.output));
    return result;
  }
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kubeConfig = new KubeConfig();
  if (options.kubeconfig) kubeConfig.loadFromFile(options.kubeconfig);
  else kubeConfig.loadFromDefault();
  if (options.context) kubeConfig.setCurrentContext(options.context);
  const result = await analyzeCluster(kubeConfig, { image: options.image, namespaces: options.namespaces });
  options.stdout.write(options.output === 'table' ? renderFindings(result) : renderData(result, options.output));
  return result;
}
