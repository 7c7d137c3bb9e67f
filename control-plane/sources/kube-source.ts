// KubeSource: the mesh from a Kubernetes API server (design.md §1). One informer per kind (Namespace,
// Service, EndpointSlice, Pod, VirtualService, DestinationRule, PeerAuthentication, AuthorizationPolicy, Sidecar; control-plane/kube/
// informer.ts: list, watch, relist on 410 Gone, backoff, batches) feeds the same ObjectStore as
// FileSource, and the same MeshSource turns it into MeshSnapshots: nothing downstream knows which source
// runs.
//
// - **Only what the model reads reaches it** (issue 14). The informers keep every object as the API
//   server has it (the status writer reads status and resourceVersion there: `live()`); the ObjectStore
//   gets the object's model input (model-input.ts), and only when that changed. The echo of a status
//   write, a new resourceVersion, a managedFields or status change, a label on a VirtualService: counted
//   as ignored, no store event, no rebuild.
// - **Batches.** Each informer announces its changes 10 ms after the first of a burst (`batchMs`), and
//   each batch is one store update and so at most one rebuild: a relist of thousands of Pods is one.
// - **Ready** (`ready()`, /readyz) after the first complete list of every kind; MeshSource publishes
//   nothing before.
// - **Fail static.** While the API server is away the informers retry with backoff and keep their
//   objects; the last snapshot stays served.
import type { KubeConfig } from '@kubernetes/client-node';
import type { BackoffPolicy } from '../../lib/backoff.js';
import type { Clock } from '../../lib/clock.js';
import { Informer, type InformerBatch, type InformerStatus, type KubeObject } from '../kube/informer.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { objectKey, type MeshKind, type MeshObject } from '../model/objects.js';
import type { MeshSnapshot } from '../model/snapshot.js';
import type { ChangeTiming, SnapshotSource } from '../xds/generator.js';
import type { TraceSpan } from '../../lib/tracing.js';
import { MeshSource, type MeshSourceOptions, type MeshSourceStats } from './mesh-source.js';
import type { KubeModeMetrics } from './metrics.js';
import { modelDigest, modelInput } from './model-input.js';
import { ObjectStore } from './object-store.js';

export const ROUTING_API_GROUP = 'networking.trellis.dev';
export const ROUTING_API_VERSION = `${ROUTING_API_GROUP}/v1alpha1`;
export const SECURITY_API_GROUP = 'security.trellis.dev';
export const SECURITY_API_VERSION = `${SECURITY_API_GROUP}/v1alpha1`;

/** A kind KubeSource follows: where it is listed and watched (cluster-wide). */
export interface KubeKind {
  readonly kind: MeshKind;
  readonly apiVersion: string;
  /** Collection path, e.g. `/api/v1/pods`. */
  readonly path: string;
  /** Extra query of its list and watch (a field selector). */
  readonly query?: Readonly<Record<string, string>>;
}

export const KUBE_KINDS: readonly KubeKind[] = [
  { kind: 'Namespace', apiVersion: 'v1', path: '/api/v1/namespaces' },
  { kind: 'Service', apiVersion: 'v1', path: '/api/v1/services' },
  { kind: 'EndpointSlice', apiVersion: 'discovery.k8s.io/v1', path: '/apis/discovery.k8s.io/v1/endpointslices' },
  { kind: 'Pod', apiVersion: 'v1', path: '/api/v1/pods' },
  // TLS credentials for DestinationRule `credentialName` (model/secrets.ts). As istiod: never the large
  // or sensitive kinds the mesh cannot use (Helm releases, service account and bootstrap tokens, image
  // pull secrets); and of the rest only the TLS keys are kept (withKind).
  {
    kind: 'Secret',
    apiVersion: 'v1',
    path: '/api/v1/secrets',
    query: {
      fieldSelector: [
        'type!=helm.sh/release.v1',
        'type!=kubernetes.io/service-account-token',
        'type!=bootstrap.kubernetes.io/token',
        'type!=kubernetes.io/dockerconfigjson',
        'type!=kubernetes.io/dockercfg',
      ].join(','),
    },
  },
  { kind: 'Node', apiVersion: 'v1', path: '/api/v1/nodes' },
  { kind: 'VirtualService', apiVersion: ROUTING_API_VERSION, path: `/apis/${ROUTING_API_VERSION}/virtualservices` },
  {
    kind: 'DestinationRule',
    apiVersion: ROUTING_API_VERSION,
    path: `/apis/${ROUTING_API_VERSION}/destinationrules`,
  },
  {
    kind: 'PeerAuthentication',
    apiVersion: SECURITY_API_VERSION,
    path: `/apis/${SECURITY_API_VERSION}/peerauthentications`,
  },
  {
    kind: 'AuthorizationPolicy',
    apiVersion: SECURITY_API_VERSION,
    path: `/apis/${SECURITY_API_VERSION}/authorizationpolicies`,
  },
  { kind: 'ServiceEntry', apiVersion: ROUTING_API_VERSION, path: `/apis/${ROUTING_API_VERSION}/serviceentries` },
  { kind: 'Sidecar', apiVersion: ROUTING_API_VERSION, path: `/apis/${ROUTING_API_VERSION}/sidecars` },
];

export interface KubeSourceOptions extends MeshSourceOptions {
  readonly kubeConfig: KubeConfig;
  /** Retries of failed lists and watches: 500 ms doubling to 30 s, jittered (lib/backoff.ts). */
  readonly backoff?: BackoffPolicy;
  /** Events are applied to the store this long after the first of a burst; 10 ms. */
  readonly batchMs?: number;
  /** Page size of lists; 500. */
  readonly pageSize?: number;
  /** The server ends each watch after this long; 120 s. */
  readonly watchTimeoutSeconds?: number;
  readonly clock?: Clock;
  readonly metrics?: KubeModeMetrics;
}

/** What one informer is doing (for /debug, logs and tests). */
export interface KindStatus extends InformerStatus {
  readonly kind: MeshKind;
}

/** Counts of the Kubernetes path (also on /metrics when `metrics` is given). */
export interface KubeSourceStats extends MeshSourceStats {
  /** Object changes whose model input changed: applied to the store. */
  readonly applied: number;
  /** Object changes the model does not read (status echoes, resourceVersions): no store event, no rebuild. */
  readonly ignored: number;
}

/** A change of a live routing object (any field, status included): what the status writer follows. */
export type LiveListener = (kind: MeshKind, namespace: string, name: string) => void;

export class KubeSource implements SnapshotSource<MeshSnapshot> {
  /** The model's input: what the model reads of each object (model-input.ts). */
  readonly store = new ObjectStore();
  private readonly mesh: MeshSource;
  private readonly logger: Logger;
  private readonly kubeConfig: KubeConfig;
  private readonly metrics: KubeModeMetrics | undefined;
  private readonly informers = new Map<MeshKind, Informer<KubeObject>>();
  /** Store key → digest of the model input in the store. */
  private readonly digests = new Map<string, string>();
  private readonly liveListeners = new Set<LiveListener>();
  private counters = { applied: 0, ignored: 0 };
  private started = false;
  private stopped = false;
  private readyWaiters: { resolve: () => void; reject: (err: Error) => void }[] = [];

  constructor(options: KubeSourceOptions) {
    this.kubeConfig = options.kubeConfig;
    this.logger = options.logger ?? silentLogger;
    this.metrics = options.metrics;
    this.mesh = new MeshSource(this.store, options);
    for (const spec of KUBE_KINDS) {
      const informer = new Informer<KubeObject>({
        kubeConfig: options.kubeConfig,
        kind: spec.kind,
        path: spec.path,
        logger: this.logger,
        ...(options.clock ? { clock: options.clock } : {}),
        ...(options.backoff ? { backoff: options.backoff } : {}),
        ...(options.batchMs !== undefined ? { batchMs: options.batchMs } : {}),
        ...(options.pageSize !== undefined ? { pageSize: options.pageSize } : {}),
        ...(options.watchTimeoutSeconds !== undefined ? { watchTimeoutSeconds: options.watchTimeoutSeconds } : {}),
        ...(spec.query ? { query: spec.query } : {}),
        transform: (object) => withKind(spec, object),
      });
      informer.onBatch((batch) => this.applyBatch(spec, batch));
      this.informers.set(spec.kind, informer);
    }
  }

  current(): MeshSnapshot {
    return this.mesh.current();
  }

  onChange(listener: (change?: TraceSpan, timing?: ChangeTiming) => void): () => void {
    return this.mesh.onChange(listener);
  }

  ready(): boolean {
    return this.mesh.ready();
  }

  /** Snapshots built and published, and the events applied or ignored. */
  get meshStats(): KubeSourceStats {
    return { ...this.mesh.stats, ...this.counters };
  }

  /** The object as the API server has it (status and resourceVersion included; managedFields dropped). */
  live(kind: MeshKind, namespace: string, name: string): KubeObject | undefined {
    return this.informers.get(kind)?.get(kind === 'Namespace' ? undefined : namespace, name);
  }

  /** Calls `listener` for every change of a live object, after the store was updated; returns an unsubscribe. */
  onLiveChange(listener: LiveListener): () => void {
    this.liveListeners.add(listener);
    return () => this.liveListeners.delete(listener);
  }

  /** Per kind: synced, watching, lists, errors. */
  status(): KindStatus[] {
    return KUBE_KINDS.map((spec) => ({ ...this.informers.get(spec.kind)!.status(), kind: spec.kind }));
  }

  /**
   * Starts every informer. Resolves after the first full sync of every kind (then `ready()` is true and
   * the first snapshot is published). API errors never reject it (they are retried with backoff, and
   * logged); it rejects only when stop() comes first. Callers that must not wait (the control plane
   * serves /readyz meanwhile) need not await it.
   */
  start(): Promise<void> {
    if (!this.started) {
      this.started = true;
      const cluster = this.kubeConfig.getCurrentCluster();
      this.logger.info({ server: cluster?.server, kinds: KUBE_KINDS.map((k) => k.kind) }, 'kubernetes: connecting');
      for (const informer of this.informers.values()) informer.start();
    }
    if (this.ready()) return Promise.resolve();
    if (this.stopped) return Promise.reject(new Error('the Kubernetes source was stopped'));
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /** Stops every informer and request; the store and the last snapshot stay readable. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all([...this.informers.values()].map((i) => i.stop()));
    this.mesh.close();
    for (const w of this.readyWaiters.splice(0)) w.reject(new Error('the Kubernetes source was stopped'));
  }

  /** One informer batch: the changes the model reads, as one store update; then readiness and listeners. */
  private applyBatch(spec: KubeKind, batch: InformerBatch<KubeObject>): void {
    if (this.stopped) return;
    const puts: MeshObject[] = [];
    const deletes: { namespace: string; name: string }[] = [];
    let ignored = 0;
    const live: { namespace: string; name: string }[] = [];
    for (const change of batch.changes) {
      const object = change.current ?? change.previous;
      const name = object?.metadata?.name;
      if (!name) continue;
      const namespace = spec.kind === 'Namespace' ? '' : (object.metadata?.namespace ?? '');
      live.push({ namespace, name });
      const key = objectKey(spec.kind, namespace, name);
      if (!change.current) {
        if (this.digests.delete(key)) deletes.push({ namespace, name });
        continue;
      }
      const input = modelInput(spec.kind, spec.apiVersion, change.current);
      if (!input) continue;
      const digest = modelDigest(input);
      if (this.digests.get(key) === digest) {
        ignored += 1;
        continue;
      }
      this.digests.set(key, digest);
      puts.push(input);
    }
    this.counters.ignored += ignored;
    this.counters.applied += puts.length + deletes.length;
    if (ignored > 0) this.metrics?.events.inc({ kind: spec.kind, effect: 'ignored' }, ignored);
    if (puts.length + deletes.length > 0) {
      this.metrics?.events.inc({ kind: spec.kind, effect: 'rebuild' }, puts.length + deletes.length);
      this.timedUpdate(() =>
        this.store.update((b) => {
          for (const o of puts) b.put(o);
          for (const d of deletes) b.delete(spec.kind, d.namespace, d.name);
        }),
      );
    }
    if (batch.listed) this.listed();
    for (const { namespace, name } of live) {
      for (const listener of [...this.liveListeners]) listener(spec.kind, namespace, name);
    }
  }

  /** Runs a store update (MeshSource rebuilds inside it when ready) and records the rebuild it caused. */
  private timedUpdate(update: () => void): void {
    const before = this.mesh.stats;
    const started = process.hrtime.bigint();
    update();
    const after = this.mesh.stats;
    if (after.rebuilds === before.rebuilds) return;
    this.metrics?.rebuildDuration.observe(Number(process.hrtime.bigint() - started) / 1e9);
    this.metrics?.rebuilds.inc({ result: after.published > before.published ? 'published' : 'unchanged' });
  }

  private listed(): void {
    if (this.ready() || ![...this.informers.values()].every((i) => i.isSynced())) return;
    this.timedUpdate(() => this.mesh.markReady());
    this.logger.info(
      { objects: this.store.list().length, version: this.current().version },
      'kubernetes: first full sync of every kind; ready',
    );
    for (const w of this.readyWaiters.splice(0)) w.resolve();
  }
}

/** List items of built-in types carry no kind and apiVersion: set them; drop managedFields (large, never read). */
function withKind(spec: KubeKind, object: KubeObject): KubeObject {
  const metadata = object.metadata;
  if (!metadata) return object;
  const { managedFields: _dropped, ...kept } = metadata;
  if (spec.kind === 'Secret') return tlsSecretOnly(object, kept);
  return { ...object, apiVersion: spec.apiVersion, kind: spec.kind, metadata: kept };
}

/** The `data` keys of a Secret the mesh reads (model/secrets.ts); every other value is dropped on arrival. */
const TLS_SECRET_KEYS = ['tls.crt', 'tls.key', 'ca.crt', 'cert', 'key', 'cacert', 'ca.crl', 'crl'];

/**
 * A Secret reduced to its name and TLS keys: no labels or annotations (`last-applied-configuration`
 * repeats the whole Secret), no other data. Less memory for the Secrets of a cluster, and nothing the
 * mesh does not need is held.
 */
function tlsSecretOnly(object: KubeObject, metadata: NonNullable<KubeObject['metadata']>): KubeObject {
  const { labels: _labels, annotations: _annotations, ...meta } = metadata;
  const data: Record<string, string> = {};
  const raw: unknown = (object as { data?: unknown }).data;
  if (typeof raw === 'object' && raw !== null) {
    for (const key of TLS_SECRET_KEYS) {
      const value = (raw as Record<string, unknown>)[key];
      if (typeof value === 'string') data[key] = value;
    }
  }
  const type: unknown = (object as { type?: unknown }).type;
  const secret: KubeObject & { readonly type?: string; readonly data: Record<string, string> } = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: meta,
    ...(typeof type === 'string' ? { type } : {}),
    data,
  };
  return secret;
}
