// The control plane's side of `trellis describe` and `trellis diff` (monitoring.ts serves them under
// /debug/, loopback only): reads the live snapshot and the source's objects, the connected proxies and
// what they ACKed, and hands them to the pure describe.ts and config-diff.ts. Only in mesh mode
// (`--config-dir` or Kubernetes); loaded when that mode starts.
import type { MeshConfig } from '../translate/context.js';
import type { MeshSnapshot } from '../model/snapshot.js';
import type { MeshObject } from '../model/objects.js';
import type { FormatIssue, ValidateRoutingResource } from '../model/validation.js';
import { parseManifests } from '../sources/manifests.js';
import type { ObjectStore } from '../sources/object-store.js';
import type { SnapshotSource } from '../xds/generator.js';
import type { ProxyInfo } from '../xds/node.js';
import type { StreamStatus } from '../xds/xds-stream.js';
import { ChangeError, diffChangeInSlices, type ConfigDiff, type DiffProxy } from './config-diff.js';
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import type { ImageOptions } from '../../injector/images.js';
import { analyzeMesh, ownerFromPod, type Finding } from './analyze.js';
import { describePod, describeServiceByName, DescribeError, type Description } from './describe.js';

export interface InspectorOptions {
  /** The mesh source (FileSource or KubeSource): its snapshot and the objects it was built from. */
  readonly source: SnapshotSource<MeshSnapshot> & { readonly store: ObjectStore };
  readonly mesh: MeshConfig;
  readonly validate: ValidateRoutingResource;
  readonly formatIssue?: FormatIssue;
  /** The connected proxies (the push controller's streams). */
  readonly proxies: () => Iterable<ProxyInfo>;
  /** What each stream was sent and ACKed (AdsServer.status()). */
  readonly streams: () => readonly StreamStatus[];
  /** Kubernetes mode: objects a change creates get a creationTimestamp, as the API server would stamp. */
  readonly stampCreated?: boolean;
  readonly now?: () => Date;
  /** What the injector injects (`trellis analyze` compares injected Pods with it). */
  readonly injector?: { readonly image?: ImageOptions; readonly kubernetesMinor?: () => number | undefined };
}

/** A request the inspector refuses: the status code and a message for the caller. */
export class InspectError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'InspectError';
  }
}

export type DescribeAnswer = Description & { readonly proxies: readonly StreamStatus[] };

function stringLabels(value: unknown): Record<string, string> | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k] = v;
  return out;
}

export class MeshInspector {
  constructor(private readonly options: InspectorOptions) {}

  private ready(): MeshSnapshot {
    if (!this.options.source.ready()) throw new InspectError(503, 'the mesh source has not finished its first read');
    return this.options.source.current();
  }

  /** `kind` pod or service; `name` and `namespace` (default `default`). */
  describe(kind: string | null, name: string | null, namespace: string | null): DescribeAnswer {
    if (kind !== 'pod' && kind !== 'service') throw new InspectError(400, 'kind must be pod or service');
    if (!name) throw new InspectError(400, 'name is required');
    const ns = namespace || 'default';
    const snapshot = this.ready();
    let description: Description;
    try {
      if (kind === 'service') {
        description = describeServiceByName(snapshot, this.options.mesh, ns, name);
      } else {
        const pod = this.options.source.store.get('Pod', ns, name);
        const proxy = [...this.options.proxies()].find((p) => p.id === `${name}.${ns}`);
        const labels = stringLabels((pod?.object as { metadata?: { labels?: unknown } } | undefined)?.metadata?.labels);
        const serviceAccount =
          (pod?.object as { spec?: { serviceAccountName?: unknown } } | undefined)?.spec?.serviceAccountName ??
          proxy?.serviceAccount;
        description = describePod(
          snapshot,
          this.options.mesh,
          ns,
          name,
          labels ?? (proxy ? proxy.labels : undefined),
          typeof serviceAccount === 'string' && serviceAccount !== '' ? serviceAccount : undefined,
          proxy,
        );
      }
    } catch (err) {
      if (err instanceof DescribeError) throw new InspectError(404, err.message);
      throw err;
    }
    const ids = new Set(description.proxyIds);
    const proxies = this.options.streams().filter((s) => s.node !== undefined && ids.has(s.node.id));
    return { ...description, proxies };
  }

  /** `trellis analyze` over the source's objects (namespaces: only findings there; all when empty). */
  analyze(namespaces: readonly string[]): { findings: Finding[]; notes: string[] } {
    this.ready();
    const objects = this.options.source.store.list();
    const minor = this.options.injector?.kubernetesMinor?.();
    const findings = analyzeMesh({
      namespaces: objects.filter((o) => o.kind === 'Namespace').map((o) => o.object as V1Namespace),
      pods: objects.filter((o) => o.kind === 'Pod').map((o) => o.object as V1Pod),
      objects,
      ownerOf: ownerFromPod,
      validate: this.options.validate,
      ...(this.options.formatIssue ? { formatIssue: this.options.formatIssue } : {}),
      injector: {
        ...(this.options.injector?.image ? { image: this.options.injector.image } : {}),
        ...(minor !== undefined ? { kubernetesMinor: minor } : {}),
      },
      ...(namespaces.length > 0 ? { onlyNamespaces: namespaces } : {}),
    });
    return { findings, notes: [] };
  }

  /** Each connected proxy with what its streams subscribed to, by type (the union over its streams). */
  private diffProxies(): DiffProxy[] {
    const subscriptions = new Map<string, Map<string, '*' | Set<string>>>();
    for (const stream of this.options.streams()) {
      if (!stream.node) continue;
      let byType = subscriptions.get(stream.node.id);
      if (!byType) subscriptions.set(stream.node.id, (byType = new Map()));
      for (const t of stream.types) {
        const known = byType.get(t.type);
        if (known === '*' || t.subscription === '*') byType.set(t.type, '*');
        else byType.set(t.type, new Set([...(known ?? []), ...t.subscription]));
      }
    }
    return [...this.options.proxies()].map((info) => {
      const byType = subscriptions.get(info.id) ?? new Map<string, '*' | Set<string>>();
      return {
        info,
        subscriptions: new Map([...byType].map(([type, names]) => [type, names === '*' ? '*' : [...names]])),
      };
    });
  }

  /** `yaml`: the change, multi-document YAML or JSON (as `kubectl apply -f` reads). */
  async diff(yaml: string): Promise<ConfigDiff> {
    const parsed = parseManifests(yaml, 'change');
    const errors = parsed.problems.filter((p) => p.severity !== 'info');
    if (!parsed.ok || errors.length > 0) {
      throw new InspectError(400, errors.map((p) => p.message).join('; ') || 'the change does not parse');
    }
    const skipped = parsed.problems.filter((p) => p.severity === 'info');
    if (skipped.length > 0) throw new InspectError(400, skipped.map((p) => p.message).join('; '));
    if (parsed.objects.length === 0) throw new InspectError(400, 'the change holds no object');
    const live = this.ready();
    try {
      return await diffChangeInSlices({
        live,
        objects: this.options.source.store.list(),
        change: parsed.objects as readonly MeshObject[],
        validate: this.options.validate,
        ...(this.options.formatIssue ? { formatIssue: this.options.formatIssue } : {}),
        mesh: this.options.mesh,
        proxies: this.diffProxies(),
        ...(this.options.stampCreated
          ? { createdAt: (this.options.now?.() ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z') }
          : {}),
      });
    } catch (err) {
      if (err instanceof ChangeError) throw new InspectError(400, err.message);
      throw err;
    }
  }
}
