// KubeSource: the mesh from a Kubernetes API server (design.md §1). One informer per kind (Namespace,
// Service, EndpointSlice, Pod, VirtualService, DestinationRule, PeerAuthentication) feeds the same ObjectStore as FileSource,
// and the same MeshSource turns it into MeshSnapshots: nothing downstream knows which source runs.
//
// Informers are @kubernetes/client-node v2 ListWatches (style-anchors.md: list, then watch from the
// list's resourceVersion; relist on 410 Gone). What their source (dist/cache.js, watch.js) does and what
// this file adds:
// - A watch that ends cleanly is re-opened by the ListWatch itself (from the last resourceVersion; its
//   own 1 s … 30 s delay when streams keep ending without events). A 410 Gone, as an HTTP status or as an
//   ERROR event in the stream, clears the resourceVersion, so the next connect relists; the relist
//   reports objects that vanished meanwhile as deletions.
// - Any other failure (connection refused while the API server restarts, a list that fails, 403, 404 of
//   a CRD not installed) fires `error` and the ListWatch **stops for good**; `start()` resolves anyway.
//   KubeSource restarts it after an exponential backoff with jitter (initial 500 ms, cap 30 s), and
//   resets the backoff once a watch is open again. Nothing is removed from the store meanwhile: the last
//   snapshot stays served (design.md §5.4 fail static) and the next list or watch brings it up to date.
// - ListWatch's own reconnect delay is not cancellable and a watch it is opening when stopped is not
//   aborted; the Watch subclass and delay function below make stop() final (no request outlives it).
// - Lists are plain JSON (kube-http.ts), like the watch events, so one object looks the same whichever
//   way it came. List items carry no kind/apiVersion for built-in types: they are set here.
//
// Events are applied to the store in batches (`batchMs`, 10 ms): a relist of thousands of Pods is one
// store event and one rebuild of the model, not thousands. Ready (`ready()`, /readyz) after the first
// complete list of every kind; MeshSource publishes nothing before.
import { ListWatch, Watch, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { objectKey, type MeshKind, type MeshObject } from '../model/objects.js';
import type { MeshSnapshot } from '../model/snapshot.js';
import type { SnapshotSource } from '../xds/generator.js';
import { describeKubeError, kubeRequest } from './kube-http.js';
import { MeshSource, type MeshSourceOptions, type MeshSourceStats } from './mesh-source.js';
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
}

export const KUBE_KINDS: readonly KubeKind[] = [
  { kind: 'Namespace', apiVersion: 'v1', path: '/api/v1/namespaces' },
  { kind: 'Service', apiVersion: 'v1', path: '/api/v1/services' },
  { kind: 'EndpointSlice', apiVersion: 'discovery.k8s.io/v1', path: '/apis/discovery.k8s.io/v1/endpointslices' },
  { kind: 'Pod', apiVersion: 'v1', path: '/api/v1/pods' },
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
];

export interface BackoffOptions {
  /** First delay after a failure; 500 ms. */
  readonly initialMs?: number;
  /** Longest delay; 30 s. */
  readonly maxMs?: number;
}

export interface KubeSourceOptions extends MeshSourceOptions {
  readonly kubeConfig: KubeConfig;
  readonly backoff?: BackoffOptions;
  /** Events are applied to the store this long after the first of a burst; 10 ms. */
  readonly batchMs?: number;
  /** Page size of lists; 500. */
  readonly pageSize?: number;
}

/** What one informer is doing (for /debug, logs and tests). */
export interface KindStatus {
  readonly kind: MeshKind;
  /** A complete list has been applied at least once. */
  readonly synced: boolean;
  /** A watch is open (false between a failure and the next successful connect). */
  readonly watching: boolean;
  /** Completed lists: 1 after the first sync; each relist (410 Gone, restart without a resourceVersion) adds one. */
  readonly lists: number;
  /** Failures (list or watch) since start. */
  readonly errors: number;
  readonly lastError?: string;
  readonly resourceVersion: string;
}

/** Delay before retry number `attempt` (0-based): exponential, capped, with jitter in [d/2, d]. */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const initial = options.initialMs ?? 500;
  const max = options.maxMs ?? 30_000;
  const d = Math.min(max, initial * 2 ** Math.min(attempt, 30));
  return Math.round(d / 2 + (random() * d) / 2);
}

/**
 * client-node's Watch, made stoppable: a watch whose request was still connecting when the source
 * stopped is aborted as soon as it is open, and an exception while preparing the request (credentials)
 * reaches ListWatch's `done` callback instead of becoming an unhandled rejection. Asks for bookmarks,
 * which keep the resourceVersion fresh on quiet kinds (fewer 410s on reconnect).
 */
class StoppableWatch extends Watch {
  private readonly open = new Set<AbortController>();
  private stopped = false;

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    if (this.stopped) return abortedController();
    let controller: AbortController;
    try {
      controller = await super.watch(path, { ...queryParams, allowWatchBookmarks: true }, callback, (err) => {
        this.open.delete(controller);
        done(err);
      });
    } catch (err) {
      setImmediate(() => done(err));
      return abortedController();
    }
    if (this.stopped) controller.abort();
    else if (!controller.signal.aborted) this.open.add(controller);
    return controller;
  }

  stop(): void {
    this.stopped = true;
    for (const c of this.open) c.abort();
    this.open.clear();
  }
}

function abortedController(): AbortController {
  const c = new AbortController();
  c.abort();
  return c;
}

interface Informer {
  readonly spec: KubeKind;
  readonly listWatch: ListWatch<KubernetesObject>;
  readonly watch: StoppableWatch;
  synced: boolean;
  watching: boolean;
  lists: number;
  errors: number;
  lastError?: string;
  /** Consecutive failures: the backoff exponent. */
  attempt: number;
  /** Set by an error while start() runs (start() resolves even when the list or watch failed). */
  failedDuringStart: boolean;
  retryTimer?: NodeJS.Timeout;
}

export class KubeSource implements SnapshotSource<MeshSnapshot> {
  readonly store = new ObjectStore();
  private readonly mesh: MeshSource;
  private readonly logger: Logger;
  private readonly kubeConfig: KubeConfig;
  private readonly backoff: BackoffOptions;
  private readonly batchMs: number;
  private readonly pageSize: number;
  private readonly informers: Informer[] = [];
  private readonly pending = new Map<string, MeshObject | { kind: MeshKind; namespace: string; name: string }>();
  private readonly pendingDeletes = new Set<string>();
  private batchTimer: NodeJS.Timeout | undefined;
  private readonly abort = new AbortController();
  /** Parked reconnect delays of stopped ListWatches (resolved never: the stopped chain just ends). */
  private readonly delays = new Set<NodeJS.Timeout>();
  private started = false;
  private stopped = false;
  private readyWaiters: { resolve: () => void; reject: (err: Error) => void }[] = [];

  constructor(options: KubeSourceOptions) {
    this.kubeConfig = options.kubeConfig;
    this.logger = options.logger ?? silentLogger;
    this.backoff = options.backoff ?? {};
    this.batchMs = options.batchMs ?? 10;
    this.pageSize = options.pageSize ?? 500;
    this.mesh = new MeshSource(this.store, options);
    for (const spec of KUBE_KINDS) this.informers.push(this.makeInformer(spec));
  }

  current(): MeshSnapshot {
    return this.mesh.current();
  }

  onChange(listener: () => void): () => void {
    return this.mesh.onChange(listener);
  }

  ready(): boolean {
    return this.mesh.ready();
  }

  /** Snapshots built and published (MeshSource): store events that changed no snapshot are the difference. */
  get meshStats(): MeshSourceStats {
    return this.mesh.stats;
  }

  /** Per kind: synced, watching, lists, errors. */
  status(): KindStatus[] {
    return this.informers.map((i) => ({
      kind: i.spec.kind,
      synced: i.synced,
      watching: i.watching,
      lists: i.lists,
      errors: i.errors,
      ...(i.lastError !== undefined ? { lastError: i.lastError } : {}),
      resourceVersion: i.listWatch.latestResourceVersion(),
    }));
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
      for (const informer of this.informers) void this.connect(informer);
    }
    if (this.ready()) return Promise.resolve();
    if (this.stopped) return Promise.reject(new Error('the Kubernetes source was stopped'));
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /** Stops every informer and request; the store and the last snapshot stay readable. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort();
    for (const delay of this.delays) clearTimeout(delay);
    this.delays.clear();
    for (const informer of this.informers) {
      clearTimeout(informer.retryTimer);
      informer.watch.stop();
      await informer.listWatch.stop();
    }
    clearTimeout(this.batchTimer);
    this.flush();
    this.mesh.close();
    for (const w of this.readyWaiters.splice(0)) w.reject(new Error('the Kubernetes source was stopped'));
  }

  private makeInformer(spec: KubeKind): Informer {
    const watch = new StoppableWatch(this.kubeConfig);
    // ListWatch waits with this between streams that end without events; once stopped, the wait never
    // ends (the chain is dropped) instead of opening one more watch.
    const delayFn = (ms: number): Promise<void> =>
      new Promise((resolve) => {
        if (this.stopped) return;
        const timer = setTimeout(() => {
          this.delays.delete(timer);
          resolve();
        }, ms);
        this.delays.add(timer);
      });
    const listWatch = new ListWatch<KubernetesObject>(
      spec.path,
      watch,
      () => this.list(informer),
      false,
      undefined,
      undefined,
      { delayFn },
    );
    const informer: Informer = {
      spec,
      listWatch,
      watch,
      synced: false,
      watching: false,
      lists: 0,
      errors: 0,
      attempt: 0,
      failedDuringStart: false,
    };
    const put = (obj: KubernetesObject): void => this.enqueuePut(spec, obj);
    listWatch.on('add', put);
    listWatch.on('update', put);
    listWatch.on('delete', (obj) => this.enqueueDelete(spec, obj));
    listWatch.on('connect', () => {
      if (!this.stopped) this.logger.debug({ kind: spec.kind }, 'kubernetes: watch (re)connecting');
    });
    listWatch.on('error', (err: unknown) => this.failed(informer, err));
    return informer;
  }

  /** One complete list, page by page (a page's `continue` token that expired starts over). */
  private async list(
    informer: Informer,
  ): Promise<{ metadata: { resourceVersion: string }; items: KubernetesObject[] }> {
    const { spec } = informer;
    const relist = informer.synced;
    for (let attempt = 0; ; attempt++) {
      const items: KubernetesObject[] = [];
      let resourceVersion = '';
      let token: string | undefined;
      try {
        do {
          const page = await kubeRequest<{
            metadata?: { resourceVersion?: string; continue?: string };
            items?: KubernetesObject[];
          }>(this.kubeConfig, {
            path: spec.path,
            query: { limit: String(this.pageSize), continue: token },
            signal: this.abort.signal,
          });
          items.push(...(page.items ?? []));
          resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
          token = page.metadata?.continue || undefined;
        } while (token);
      } catch (err) {
        const gone = (err as { statusCode?: number }).statusCode === 410;
        if (gone && token !== undefined && attempt < 3) continue; // the continue token expired
        throw err;
      }
      informer.lists += 1;
      this.logger.info(
        { kind: spec.kind, objects: items.length, resourceVersion },
        relist ? 'kubernetes: relisted' : 'kubernetes: listed',
      );
      // ListWatch applies the items synchronously after this promise settles (its continuation runs as
      // a microtask); setImmediate runs after that, when the informer's cache holds the whole list.
      setImmediate(() => this.listed(informer));
      return { metadata: { resourceVersion }, items };
    }
  }

  private listed(informer: Informer): void {
    if (this.stopped) return;
    this.flush();
    if (informer.synced) return;
    informer.synced = true;
    if (this.informers.every((i) => i.synced)) {
      this.mesh.markReady();
      this.logger.info(
        { objects: this.store.list().length, version: this.current().version },
        'kubernetes: first full sync of every kind; ready',
      );
      for (const w of this.readyWaiters.splice(0)) w.resolve();
    }
  }

  private async connect(informer: Informer): Promise<void> {
    if (this.stopped) return;
    informer.failedDuringStart = false;
    try {
      // Lists when there is no resourceVersion (first start, after 410), then opens the watch; resolves
      // once the watch answered, or after a failure that `error` reported.
      await informer.listWatch.start();
    } catch (err) {
      this.failed(informer, err);
      return;
    }
    if (this.stopped || informer.failedDuringStart) return;
    if (!informer.watching) {
      informer.watching = true;
      const level = informer.errors > 0 ? 'info' : 'debug';
      this.logger[level](
        { kind: informer.spec.kind, resourceVersion: informer.listWatch.latestResourceVersion() },
        'kubernetes: watching',
      );
    }
    informer.attempt = 0;
  }

  /** The ListWatch stopped after an error: retry with backoff; the store keeps what it has. */
  private failed(informer: Informer, err: unknown): void {
    if (this.stopped) return;
    informer.failedDuringStart = true;
    informer.watching = false;
    informer.errors += 1;
    informer.lastError = describeKubeError(err);
    const delayMs = backoffDelay(informer.attempt, this.backoff);
    informer.attempt += 1;
    // The first failure of a run is a warning; repeats while the server stays away are quieter.
    const level = informer.attempt === 1 ? 'warn' : 'debug';
    this.logger[level](
      { kind: informer.spec.kind, err: informer.lastError, attempt: informer.attempt, retryInMs: delayMs },
      'kubernetes: list/watch failed; keeping the last objects and retrying',
    );
    clearTimeout(informer.retryTimer);
    informer.retryTimer = setTimeout(() => void this.connect(informer), delayMs);
  }

  private enqueuePut(spec: KubeKind, obj: KubernetesObject): void {
    const object = toMeshObject(spec, obj);
    if (!object) return;
    const key = objectKey(object.kind, object.namespace, object.name);
    this.pendingDeletes.delete(key);
    this.pending.set(key, object);
    this.schedule();
  }

  private enqueueDelete(spec: KubeKind, obj: KubernetesObject): void {
    const name = obj.metadata?.name;
    if (!name) return;
    const namespace = spec.kind === 'Namespace' ? '' : (obj.metadata?.namespace ?? '');
    const key = objectKey(spec.kind, namespace, name);
    this.pending.set(key, { kind: spec.kind, namespace, name });
    this.pendingDeletes.add(key);
    this.schedule();
  }

  private schedule(): void {
    if (this.batchTimer || this.stopped) return;
    this.batchTimer = setTimeout(() => this.flush(), this.batchMs);
  }

  /** Applies the queued events as one batch (one store event, one rebuild). */
  private flush(): void {
    clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
    if (this.pending.size === 0) return;
    const entries = [...this.pending];
    const deletes = new Set(this.pendingDeletes);
    this.pending.clear();
    this.pendingDeletes.clear();
    this.store.update((batch) => {
      for (const [key, entry] of entries) {
        if (deletes.has(key)) batch.delete(entry.kind, entry.namespace, entry.name);
        else batch.put(entry as MeshObject);
      }
    });
  }
}

/**
 * An informer's object → an object of the store: kind and apiVersion set (list items lack them),
 * `metadata.managedFields` dropped (large, never read). A new object: the informer's is not touched.
 */
function toMeshObject(spec: KubeKind, obj: KubernetesObject): MeshObject | undefined {
  const metadata = obj.metadata;
  const name = metadata?.name;
  if (!metadata || !name) return undefined;
  const namespace = spec.kind === 'Namespace' ? '' : (metadata.namespace ?? '');
  const { managedFields: _dropped, ...kept } = metadata;
  const object = { ...obj, apiVersion: spec.apiVersion, kind: spec.kind, metadata: kept };
  return {
    kind: spec.kind,
    namespace,
    name,
    object,
    origin: { resourceVersion: metadata.resourceVersion ?? '' },
  } as MeshObject;
}
