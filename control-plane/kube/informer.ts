// One informer: the objects of one resource path kept in step with the API server, in a keyed store,
// with batched change notifications and a synced flag. Every Kubernetes loop of the control plane is one
// of these: the mesh source (one per kind), the status writer (through the mesh source), the CA's
// root-cert publisher (Namespaces, ConfigMaps).
//
// The loop, all of it here (no client-node Watch or ListWatch, whose reconnects ran on microtask ordering
// inside the library and whose Watch drops a stream silent for 30 s):
// - **List** (paged, `pageSize`; a `continue` token that expired (410) starts the list over, 3 times),
//   then **watch** from the list's resourceVersion with bookmarks (they keep the resourceVersion fresh on
//   quiet kinds). The server ends each watch after `watchTimeoutSeconds` (120 s); the loop watches on
//   from the last resourceVersion. A stream silent for 30 s longer than that is dead and dropped.
// - **410 Gone** (an HTTP status or an ERROR event: the resourceVersion is too old) relists at once; the
//   relist reports what vanished meanwhile as deletions. A 410 straight after a list (no event between)
//   counts as a failure, so two servers that disagree cannot make it spin.
// - **429 Too Many Requests** (priority and fairness; a CRD whose storage is still initializing) is
//   retried after the same backoff without counting as a failure.
// - **Any other failure** (connection refused while the API server restarts, 403, 404 of a CRD not
//   installed, a watch that ends at once) is retried after the backoff of lib/backoff.ts (500 ms doubling
//   to 30 s, jittered), from the last resourceVersion (a relist if there is none, or the server says
//   410). The backoff restarts once a watch is open again. Nothing is removed from the store while the
//   server is away (fail static, design.md §5.4).
// - **Batches.** Changes are announced `batchMs` (10 ms) after the first of a burst, as one batch; a list
//   is announced at once, as one batch with `listed: true`. The store itself is always current.
// - **Synced** once the first complete list is in the store (set before that list's batch is announced).
// - `stop()` is final and awaits the loop: no request outlives it. Every wait runs on `clock`.
import type { KubeConfig } from '@kubernetes/client-node';
import { Backoff, type BackoffPolicy } from '../../lib/backoff.js';
import { sleep, systemClock, type Clock, type ClockTimer } from '../../lib/clock.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { describeKubeError, KubeApiError, kubeRequest, kubeWatch } from './http.js';

export interface KubeMeta {
  readonly name?: string;
  readonly namespace?: string;
  readonly resourceVersion?: string;
  readonly generation?: number;
  readonly deletionTimestamp?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly managedFields?: unknown;
  readonly [field: string]: unknown;
}

/** What an informer needs of an object: its metadata. Everything else is carried as it came. */
export interface KubeObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: KubeMeta;
}

/** The store key of an object: `namespace/name`, or `name` when cluster-scoped. */
export function informerKey(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

/** The status code of a KubeApiError (or anything carrying `statusCode`), else undefined. */
export function statusCode(err: unknown): number | undefined {
  const code = typeof err === 'object' && err !== null ? (err as { statusCode?: unknown }).statusCode : undefined;
  return typeof code === 'number' ? code : undefined;
}

/** One object that changed within a batch: what it was before the batch, and what it is now. */
export interface InformerChange<T> {
  readonly key: string;
  /** Undefined when it was added in the batch. */
  readonly previous: T | undefined;
  /** Undefined when it was deleted. */
  readonly current: T | undefined;
}

export interface InformerBatch<T> {
  /** Objects whose stored version changed (added, modified, deleted), in order of their first change. */
  readonly changes: readonly InformerChange<T>[];
  /** The batch ends a complete list (the first one, or a relist). */
  readonly listed: boolean;
}

export interface InformerOptions<T extends KubeObject> {
  readonly kubeConfig: KubeConfig;
  /** For logs and status(): `Pod`, `ConfigMap`, … */
  readonly kind: string;
  /** Collection path, e.g. `/api/v1/pods`. */
  readonly path: string;
  /** Extra query of the list and the watch (`fieldSelector`, `labelSelector`). */
  readonly query?: Readonly<Record<string, string>>;
  readonly logger?: Logger;
  /** Prefix of log messages; `kubernetes`. */
  readonly logPrefix?: string;
  readonly clock?: Clock;
  /** Retries of failed lists and watches; 500 ms doubling to 30 s. */
  readonly backoff?: BackoffPolicy;
  /** The jitter's random source (tests fix it). */
  readonly random?: () => number;
  /** Changes are announced this long after the first of a burst; 10 ms (0: each at once). */
  readonly batchMs?: number;
  /** Page size of lists; 500. */
  readonly pageSize?: number;
  /** The server ends each watch after this long; 120 s (a dead connection is noticed 30 s after that at the latest). */
  readonly watchTimeoutSeconds?: number;
  /** Applied to every object before it is stored (drop managedFields, set kind). */
  readonly transform?: (object: T) => T;
}

/** What an informer is doing (for /debug, logs and tests). */
export interface InformerStatus {
  readonly kind: string;
  /** A complete list has been stored at least once. */
  readonly synced: boolean;
  /** A watch is open (false between a failure and the next successful connect). */
  readonly watching: boolean;
  /** Completed lists: 1 after the first sync; each relist adds one. */
  readonly lists: number;
  /** Watch streams opened (the server ends each after `watchTimeoutSeconds`; the next one goes on). */
  readonly watches: number;
  /** Failures (list or watch) since start. */
  readonly errors: number;
  readonly lastError?: string;
  readonly resourceVersion: string;
}

/** The metav1.Status of a watch's ERROR event. */
interface ErrorStatus {
  readonly code?: number;
  readonly message?: string;
  readonly reason?: string;
}

export class Informer<T extends KubeObject> {
  private readonly o: InformerOptions<T>;
  private readonly logger: Logger;
  private readonly prefix: string;
  private readonly clock: Clock;
  private readonly backoff: Backoff;
  private readonly batchMs: number;
  private readonly items = new Map<string, T>();
  /** Keys changed since the last batch, with what they were before it. */
  private pending = new Map<string, T | undefined>();
  private batchTimer: ClockTimer | undefined;
  private readonly listeners = new Set<(batch: InformerBatch<T>) => void>();
  private syncWaiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private resourceVersion = '';
  private stopped = false;
  private synced = false;
  private watching = false;
  private lists = 0;
  private watches = 0;
  private errors = 0;
  private lastError: string | undefined;

  constructor(options: InformerOptions<T>) {
    this.o = options;
    this.logger = options.logger ?? silentLogger;
    this.prefix = options.logPrefix ?? 'kubernetes';
    this.clock = options.clock ?? systemClock;
    this.backoff = new Backoff(options.backoff, options.random);
    this.batchMs = options.batchMs ?? 10;
  }

  get kind(): string {
    return this.o.kind;
  }

  /** Starts the loop (once); errors are retried, never thrown. */
  start(): void {
    if (this.running || this.stopped) return;
    this.running = this.run();
  }

  /** Stops the loop and every request; resolves when none is left. The store stays readable. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort();
    this.clock.clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
    this.pending.clear();
    for (const w of this.syncWaiters.splice(0)) w.reject(new Error(`the ${this.o.kind} informer was stopped`));
    await this.running;
  }

  isSynced(): boolean {
    return this.synced;
  }

  /** Resolves once the first complete list is stored; rejects when stop() comes first. */
  whenSynced(): Promise<void> {
    if (this.synced) return Promise.resolve();
    if (this.stopped) return Promise.reject(new Error(`the ${this.o.kind} informer was stopped`));
    return new Promise((resolve, reject) => this.syncWaiters.push({ resolve, reject }));
  }

  /** The stored object (as last listed or watched, after `transform`). */
  get(namespace: string | undefined, name: string): T | undefined {
    return this.items.get(informerKey(namespace, name));
  }

  getByKey(key: string): T | undefined {
    return this.items.get(key);
  }

  /** Every stored object. */
  list(): T[] {
    return [...this.items.values()];
  }

  get size(): number {
    return this.items.size;
  }

  /** Calls `listener` with every batch; returns a function that unsubscribes. */
  onBatch(listener: (batch: InformerBatch<T>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  status(): InformerStatus {
    return {
      kind: this.o.kind,
      synced: this.synced,
      watching: this.watching,
      lists: this.lists,
      watches: this.watches,
      errors: this.errors,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
      resourceVersion: this.resourceVersion,
    };
  }

  private async run(): Promise<void> {
    // True between a list and the first event after it: a 410 then is a failure, not a reason to relist.
    let freshList = false;
    while (!this.stopped) {
      try {
        if (this.resourceVersion === '') {
          await this.listAll();
          freshList = true;
        }
        if (this.stopped) return;
        const events = await this.watchOnce();
        if (events > 0) freshList = false;
      } catch (err) {
        if (this.stopped) return;
        if (statusCode(err) === 410 && !freshList) {
          this.resourceVersion = ''; // too old: relist at once
          this.logger.info({ kind: this.o.kind }, `${this.prefix}: resourceVersion expired (410 Gone); relisting`);
          continue;
        }
        if (statusCode(err) === 410) this.resourceVersion = '';
        freshList = false;
        if (statusCode(err) === 429) {
          // Too Many Requests (priority and fairness, or a CRD's storage still initializing): the server
          // asks to come back later. Not a failure; the same backoff.
          const retryInMs = this.backoff.next();
          this.logger.debug(
            { kind: this.o.kind, err: describeKubeError(err), retryInMs },
            `${this.prefix}: the API server asks to retry later`,
          );
          await sleep(this.clock, retryInMs, this.abort.signal);
          continue;
        }
        await sleep(this.clock, this.failed(err), this.abort.signal);
      }
    }
  }

  /** Records a failure; returns the delay before the next attempt. */
  private failed(err: unknown): number {
    this.watching = false;
    this.errors += 1;
    this.lastError = describeKubeError(err);
    const retryInMs = this.backoff.next();
    // The first failure of a run is a warning; repeats while the server stays away are quieter.
    this.logger[this.backoff.attempts === 1 ? 'warn' : 'debug'](
      { kind: this.o.kind, err: this.lastError, attempt: this.backoff.attempts, retryInMs },
      `${this.prefix}: list/watch failed; keeping the last objects and retrying`,
    );
    return retryInMs;
  }

  /** One complete list, page by page, stored and announced as one batch. */
  private async listAll(): Promise<void> {
    const pageSize = String(this.o.pageSize ?? 500);
    for (let restart = 0; ; restart++) {
      const items: T[] = [];
      let resourceVersion = '';
      let token: string | undefined;
      try {
        do {
          const page = await kubeRequest<{ metadata?: { resourceVersion?: string; continue?: string }; items?: T[] }>(
            this.o.kubeConfig,
            {
              path: this.o.path,
              query: { ...this.o.query, limit: pageSize, continue: token },
              signal: this.abort.signal,
            },
          );
          items.push(...(page.items ?? []));
          resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
          token = page.metadata?.continue || undefined;
        } while (token);
      } catch (err) {
        if (statusCode(err) === 410 && token !== undefined && restart < 3) continue; // the continue token expired
        throw err;
      }
      if (this.stopped) return;
      this.replaceAll(items);
      this.resourceVersion = resourceVersion;
      this.lists += 1;
      this.logger.info(
        { kind: this.o.kind, objects: items.length, resourceVersion },
        this.lists > 1 ? `${this.prefix}: relisted` : `${this.prefix}: listed`,
      );
      const first = !this.synced;
      this.synced = true;
      this.flush(true);
      if (first) for (const w of this.syncWaiters.splice(0)) w.resolve();
      return;
    }
  }

  /** One watch from the current resourceVersion until the server ends it; returns how many events came. */
  private async watchOnce(): Promise<number> {
    const timeoutSeconds = this.o.watchTimeoutSeconds ?? 120;
    const openedAt = this.clock.now();
    let events = 0;
    let errorEvent: ErrorStatus | undefined;
    const controller = new AbortController();
    const stop = (): void => controller.abort();
    this.abort.signal.addEventListener('abort', stop, { once: true });
    try {
      await kubeWatch(
        this.o.kubeConfig,
        {
          path: this.o.path,
          query: {
            ...this.o.query,
            resourceVersion: this.resourceVersion,
            allowWatchBookmarks: 'true',
            timeoutSeconds: String(timeoutSeconds),
          },
          signal: controller.signal,
          idleTimeoutMs: (timeoutSeconds + 30) * 1000,
          onOpen: () => this.opened(),
        },
        (event) => {
          if (this.stopped || errorEvent) return;
          events += 1;
          if (event.type === 'ERROR') {
            errorEvent = (event.object ?? {}) as ErrorStatus;
            controller.abort(); // the server ends the stream after an ERROR anyway
            return;
          }
          const object = event.object as T;
          const rv = object?.metadata?.resourceVersion;
          if (rv) this.resourceVersion = rv;
          if (event.type === 'ADDED' || event.type === 'MODIFIED') this.put(object);
          else if (event.type === 'DELETED') this.remove(object);
        },
      );
    } catch (err) {
      if (!errorEvent || this.stopped) throw err;
    } finally {
      this.abort.signal.removeEventListener('abort', stop);
    }
    if (errorEvent) {
      throw new KubeApiError(
        `watch ${this.o.path}: ${errorEvent.message ?? 'ERROR event'}`,
        errorEvent.code ?? 0,
        errorEvent.reason,
      );
    }
    if (events === 0 && this.clock.now() - openedAt < 1000) {
      throw new Error(`watch ${this.o.path}: the server ended the stream at once`);
    }
    return events;
  }

  private opened(): void {
    if (this.stopped) return;
    this.watches += 1;
    if (!this.watching) {
      this.watching = true;
      this.logger[this.errors > 0 ? 'info' : 'debug'](
        { kind: this.o.kind, resourceVersion: this.resourceVersion },
        `${this.prefix}: watching`,
      );
    }
    this.backoff.reset();
  }

  private keyOf(object: T): string | undefined {
    const name = object.metadata?.name;
    return name ? informerKey(object.metadata?.namespace, name) : undefined;
  }

  private put(raw: T): void {
    const object = this.o.transform ? this.o.transform(raw) : raw;
    const key = this.keyOf(object);
    if (!key) return;
    this.touch(key);
    this.items.set(key, object);
    this.schedule();
  }

  private remove(object: T): void {
    const key = this.keyOf(object);
    if (!key || !this.items.has(key)) return;
    this.touch(key);
    this.items.delete(key);
    this.schedule();
  }

  /** The store holds exactly `items` (a list): the others are deleted. */
  private replaceAll(items: readonly T[]): void {
    const seen = new Set<string>();
    for (const raw of items) {
      const object = this.o.transform ? this.o.transform(raw) : raw;
      const key = this.keyOf(object);
      if (!key) continue;
      seen.add(key);
      const rv = object.metadata?.resourceVersion;
      if (rv && this.items.get(key)?.metadata?.resourceVersion === rv) continue; // the same object
      this.touch(key);
      this.items.set(key, object);
    }
    for (const key of [...this.items.keys()]) {
      if (seen.has(key)) continue;
      this.touch(key);
      this.items.delete(key);
    }
  }

  private touch(key: string): void {
    if (!this.pending.has(key)) this.pending.set(key, this.items.get(key));
  }

  private schedule(): void {
    if (this.batchMs <= 0) return this.flush(false);
    this.batchTimer ??= this.clock.setTimeout(() => this.flush(false), this.batchMs);
  }

  /** Announces what changed since the last batch. */
  private flush(listed: boolean): void {
    this.clock.clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
    if (this.stopped) return;
    const changes: InformerChange<T>[] = [];
    for (const [key, previous] of this.pending) {
      const current = this.items.get(key);
      if (current !== previous) changes.push({ key, previous, current });
    }
    this.pending = new Map();
    if (changes.length === 0 && !listed) return;
    const batch: InformerBatch<T> = { changes, listed };
    for (const listener of [...this.listeners]) {
      try {
        listener(batch);
      } catch (err) {
        this.logger.error({ kind: this.o.kind, err: describeKubeError(err) }, `${this.prefix}: a listener failed`);
      }
    }
  }
}
