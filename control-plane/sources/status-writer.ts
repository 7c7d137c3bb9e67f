// Writes the verdict of the mesh model on every VirtualService, DestinationRule and PeerAuthentication
// into its `status` (issue 4; design.md §5.3 "reported in its status"): one condition `Accepted`
// (True/False, reason, message, observedGeneration, lastTransitionTime) and `status.observedGeneration`,
// through the status subresource.
//
// - **Only when it changes.** The wanted condition (model/routing.ts acceptedCondition) is compared with
//   what the object in the informer cache already has, ignoring lastTransitionTime; equal means no
//   request. lastTransitionTime is kept while `status` stays True (or False) and set to now when it flips
//   or first appears. A control plane that restarts finds the statuses right and writes nothing.
// - **When to look.** Every published snapshot (statuses changed), and every store event for a routing
//   object (someone else changed its status): the keys are queued and handled after `delayMs` (coalescing
//   a burst), by `concurrency` (16) workers, so at most that many requests are in flight and never two for
//   one object. 2,000 statuses take seconds, not minutes.
// - **The live object comes from the informer** (`source.live()`: status and resourceVersion as the API
//   server has them), never from the snapshot, which keeps neither (model/README.md "What the hash
//   covers"): the echo of a write reaches the writer (the key is checked again, found current, not
//   written) but not the model (KubeSource ignores it: no store event, no rebuild, no push).
// - **How.** A JSON merge patch on `/status` with the object's resourceVersion in it, so the write
//   applies to the object it was computed from; other conditions are kept. A 409 Conflict re-reads the
//   object and tries again (5 times). 404: the object is gone, nothing to do. Other errors are logged and
//   the key is retried with backoff; nothing here ever throws into the caller.
import type { KubeConfig } from '@kubernetes/client-node';
import { backoffDelay } from '../../lib/backoff.js';
import { systemClock, type Clock, type ClockTimer } from '../../lib/clock.js';
import type { Condition, RoutingStatus } from '../../crds/types.js';
import { describeKubeError, KubeApiError, kubeRequest } from '../kube/http.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { isPolicyKind, objectKey, type MeshKind } from '../model/objects.js';
import { acceptedCondition } from '../model/routing.js';
import type { MeshSnapshot, ResourceStatus } from '../model/snapshot.js';
import { ROUTING_API_VERSION, SECURITY_API_VERSION, type LiveListener } from './kube-source.js';
import type { KubeModeMetrics } from './metrics.js';

/** What the writer reads: a KubeSource (its snapshots, and its informers for the objects as they are). */
export interface StatusSource {
  current(): MeshSnapshot;
  onChange(listener: () => void): () => void;
  ready(): boolean;
  /** The object as the API server has it: status and resourceVersion. */
  live(kind: MeshKind, namespace: string, name: string): unknown;
  /** Every change of a live object (its status included). */
  onLiveChange(listener: LiveListener): () => void;
}

export interface StatusWriterOptions {
  readonly kubeConfig: KubeConfig;
  readonly source: StatusSource;
  readonly logger?: Logger;
  /** Quiet time before queued keys are handled; 100 ms. */
  readonly delayMs?: number;
  /** Requests in flight at most (one per object); 16. */
  readonly concurrency?: number;
  /** Timers (the quiet period, retries) and lastTransitionTime. */
  readonly clock?: Clock;
  readonly metrics?: KubeModeMetrics;
  /** A condition written beside Accepted (the control plane's `Programmed`, programmed-status.ts). */
  readonly extraCondition?: ExtraCondition;
}

/** A further condition of every object, and when it may have changed. */
export interface ExtraCondition {
  /** The wanted condition (without lastTransitionTime); undefined: none for this object. */
  condition(status: ResourceStatus): Condition | undefined;
  /** Calls `listener` with the object keys (`kind/namespace/name`) whose condition may have changed. */
  onChange(listener: (keys: ReadonlySet<string>) => void): () => void;
}

export interface StatusWriterStats {
  /** Successful PATCHes. */
  readonly writes: number;
  /** 409 Conflicts (each retried). */
  readonly conflicts: number;
  /** Failed writes (logged, retried later). */
  readonly errors: number;
  /** Keys checked and found already right. */
  readonly unchanged: number;
}

const COLLECTIONS: Readonly<Record<ResourceStatus['kind'], { apiVersion: string; plural: string }>> = {
  VirtualService: { apiVersion: ROUTING_API_VERSION, plural: 'virtualservices' },
  DestinationRule: { apiVersion: ROUTING_API_VERSION, plural: 'destinationrules' },
  PeerAuthentication: { apiVersion: SECURITY_API_VERSION, plural: 'peerauthentications' },
  AuthorizationPolicy: { apiVersion: SECURITY_API_VERSION, plural: 'authorizationpolicies' },
  ServiceEntry: { apiVersion: ROUTING_API_VERSION, plural: 'serviceentries' },
  Sidecar: { apiVersion: ROUTING_API_VERSION, plural: 'sidecars' },
};

/** The schema bounds `message` (crds/schema.ts). */
const MAX_MESSAGE = 32_768;

/** RFC 3339 with seconds, as metav1.Time serializes. */
function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

interface LiveObject {
  readonly resourceVersion: string;
  readonly generation?: number;
  readonly status: RoutingStatus;
}

function liveOf(object: unknown): LiveObject | undefined {
  if (!isRecord(object) || !isRecord(object.metadata)) return undefined;
  const rv = object.metadata.resourceVersion;
  if (typeof rv !== 'string') return undefined;
  const generation = object.metadata.generation;
  const status = isRecord(object.status) ? (object.status as RoutingStatus) : {};
  return { resourceVersion: rv, ...(typeof generation === 'number' ? { generation } : {}), status };
}

/** The wanted Accepted condition, without lastTransitionTime. */
export function wantedCondition(status: ResourceStatus): Condition {
  const c = acceptedCondition(status);
  const message = c.message ?? '';
  return {
    ...c,
    message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 1)}…` : message,
  } as Condition;
}

/** True when the object's status already says `wanted` (one condition or several; lastTransitionTime aside). */
export function statusIsCurrent(
  live: RoutingStatus,
  wanted: Condition | readonly Condition[],
  generation: number | undefined,
): boolean {
  if (live.observedGeneration !== generation) return false;
  const conditions = live.conditions ?? [];
  return listOf(wanted).every((w) => {
    const have = conditions.find((c) => c.type === w.type);
    return (
      have !== undefined &&
      have.status === w.status &&
      (have.reason ?? '') === (w.reason ?? '') &&
      (have.message ?? '') === (w.message ?? '') &&
      have.observedGeneration === w.observedGeneration
    );
  });
}

function listOf(wanted: Condition | readonly Condition[]): readonly Condition[] {
  return Array.isArray(wanted) ? wanted : [wanted as Condition];
}

/** The status to write: the wanted condition among the others, lastTransitionTime kept unless it flipped. */
export function nextStatus(
  live: RoutingStatus,
  wanted: Condition | readonly Condition[],
  generation: number | undefined,
  now: Date,
): RoutingStatus {
  const conditions = live.conditions ?? [];
  const next = listOf(wanted).map((w): Condition => {
    const have = conditions.find((c) => c.type === w.type);
    const lastTransitionTime =
      have && have.status === w.status && have.lastTransitionTime ? have.lastTransitionTime : rfc3339(now);
    return { ...w, lastTransitionTime };
  });
  const others = conditions.filter((c) => !next.some((n) => n.type === c.type));
  return {
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    conditions: [...others, ...next],
  };
}

export class StatusWriter {
  private readonly source: StatusSource;
  private readonly kubeConfig: KubeConfig;
  private readonly logger: Logger;
  private readonly delayMs: number;
  private readonly concurrency: number;
  private readonly clock: Clock;
  private readonly metrics: KubeModeMetrics | undefined;
  private readonly extra: ExtraCondition | undefined;
  private readonly dirty = new Set<string>();
  /** Keys a worker is handling now (never two requests for one object). */
  private readonly inFlight = new Set<string>();
  /** Consecutive failed writes by key (the backoff exponent of its retry). */
  private readonly failures = new Map<string, number>();
  private readonly retryTimers = new Set<ClockTimer>();
  /**
   * The last write of a key: what it wrote, and the resourceVersions it wrote over (the cached one and,
   * after a conflict, the one re-read). Until the watch brings the written object, the cache still shows
   * one of those, and that is no reason to write again.
   */
  private readonly written = new Map<string, { overwritten: ReadonlySet<string>; fingerprint: string }>();
  private timer: ClockTimer | undefined;
  private running: Promise<void> | undefined;
  private unsubscribe: (() => void)[] = [];
  private stopped = false;
  private statusIndex: { snapshot: MeshSnapshot; byKey: Map<string, ResourceStatus> } | undefined;
  private idleWaiters: (() => void)[] = [];
  private counters = { writes: 0, conflicts: 0, errors: 0, unchanged: 0 };

  constructor(options: StatusWriterOptions) {
    this.source = options.source;
    this.kubeConfig = options.kubeConfig;
    this.logger = options.logger ?? silentLogger;
    this.delayMs = options.delayMs ?? 100;
    this.concurrency = Math.max(1, options.concurrency ?? 16);
    this.clock = options.clock ?? systemClock;
    this.metrics = options.metrics;
    this.extra = options.extraCondition;
  }

  get stats(): StatusWriterStats {
    return { ...this.counters };
  }

  /** Follows the source: every snapshot and every change of a routing object. */
  start(): void {
    this.unsubscribe.push(
      this.source.onChange(() => this.markAll()),
      this.source.onLiveChange((kind, namespace, name) => {
        if (isPolicyKind(kind)) this.mark(objectKey(kind, namespace, name));
      }),
    );
    if (this.extra) this.unsubscribe.push(this.extra.onChange((keys) => keys.forEach((k) => this.mark(k))));
    if (this.source.ready()) this.markAll();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const u of this.unsubscribe.splice(0)) u();
    this.clock.clearTimeout(this.timer);
    for (const t of this.retryTimers) this.clock.clearTimeout(t);
    this.retryTimers.clear();
    this.failures.clear();
    this.dirty.clear();
    await this.running;
    this.notifyIdle();
  }

  /** Resolves when nothing is queued, scheduled or being written (retries after errors aside). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    return this.dirty.size === 0 && !this.timer && !this.running;
  }

  private notifyIdle(): void {
    if (!this.isIdle() && !this.stopped) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private markAll(): void {
    if (!this.source.ready()) return;
    for (const s of this.source.current().statuses) this.mark(objectKey(s.kind, s.namespace, s.name));
  }

  private mark(key: string): void {
    if (this.stopped || !this.source.ready()) return;
    this.dirty.add(key);
    if (!this.timer && !this.running) this.timer = this.clock.setTimeout(() => this.drain(), this.delayMs);
  }

  private statusOf(key: string): ResourceStatus | undefined {
    const snapshot = this.source.current();
    if (this.statusIndex?.snapshot !== snapshot) {
      this.statusIndex = {
        snapshot,
        byKey: new Map(snapshot.statuses.map((s) => [objectKey(s.kind, s.namespace, s.name), s])),
      };
    }
    return this.statusIndex.byKey.get(key);
  }

  /** The next queued key no worker is handling, taken off the queue. */
  private take(): string | undefined {
    for (const key of this.dirty) {
      if (this.inFlight.has(key)) continue;
      this.dirty.delete(key);
      return key;
    }
    return undefined;
  }

  /** Works the queue with up to `concurrency` workers until nothing is left that they may take. */
  private drain(): void {
    this.timer = undefined;
    const worker = async (): Promise<void> => {
      for (let key = this.take(); key !== undefined && !this.stopped; key = this.take()) {
        this.inFlight.add(key);
        try {
          await this.handle(key);
        } catch (err) {
          this.logger.error({ key, err: describeKubeError(err) }, 'status writer failed');
        } finally {
          this.inFlight.delete(key);
        }
      }
    };
    this.running = Promise.all(Array.from({ length: this.concurrency }, worker)).then(() => {
      this.running = undefined;
      // Keys marked again while they were in flight wait for the next quiet period.
      if (this.dirty.size > 0 && !this.stopped) this.timer = this.clock.setTimeout(() => this.drain(), this.delayMs);
      this.notifyIdle();
    });
  }

  /** Brings one object's status up to date, if it is not. */
  private async handle(key: string): Promise<void> {
    const status = this.statusOf(key);
    if (!status) {
      // Deleted (or not a routing object of this snapshot).
      this.written.delete(key);
      this.failures.delete(key);
      return;
    }
    const live = liveOf(this.source.live(status.kind as MeshKind, status.namespace, status.name));
    if (!live) return;
    const extra = this.extra?.condition(status);
    const wanted = extra ? [wantedCondition(status), extra] : [wantedCondition(status)];
    const fingerprint = JSON.stringify([wanted, status.generation]);
    const last = this.written.get(key);
    // Our own write, not yet echoed by the watch: the cache still shows the object we wrote over.
    if (last && last.fingerprint === fingerprint && last.overwritten.has(live.resourceVersion)) return;
    if (statusIsCurrent(live.status, wanted, status.generation)) {
      this.counters.unchanged += 1;
      this.metrics?.statusWrites.inc({ result: 'unchanged' });
      return;
    }
    const started = process.hrtime.bigint();
    await this.write(key, status, wanted, fingerprint, live);
    this.metrics?.statusWriteDuration.observe(Number(process.hrtime.bigint() - started) / 1e9);
  }

  private async write(
    key: string,
    status: ResourceStatus,
    wanted: readonly Condition[],
    fingerprint: string,
    initial: LiveObject,
  ): Promise<void> {
    const { apiVersion, plural } = COLLECTIONS[status.kind];
    const path = `/apis/${apiVersion}/namespaces/${encodeURIComponent(status.namespace)}/${plural}/${encodeURIComponent(status.name)}/status`;
    let live = initial;
    for (let attempt = 0; attempt < 5 && !this.stopped; attempt++) {
      // The generation judged is the one the condition speaks of; a newer object gets its own snapshot.
      if (statusIsCurrent(live.status, wanted, status.generation)) return;
      try {
        await kubeRequest<unknown>(this.kubeConfig, {
          method: 'PATCH',
          path,
          contentType: 'application/merge-patch+json',
          body: {
            metadata: { resourceVersion: live.resourceVersion },
            status: nextStatus(live.status, wanted, status.generation, new Date(this.clock.now())),
          },
          timeoutMs: 30_000,
        });
        this.counters.writes += 1;
        this.metrics?.statusWrites.inc({ result: 'written' });
        this.written.set(key, { overwritten: new Set([initial.resourceVersion, live.resourceVersion]), fingerprint });
        this.clearFailure(key);
        this.logger.debug(
          {
            object: `${status.kind} ${status.namespace}/${status.name}`,
            conditions: wanted.map((c) => `${c.type}=${c.status} (${c.reason ?? ''})`),
          },
          'status written',
        );
        return;
      } catch (err) {
        if (err instanceof KubeApiError && err.statusCode === 404) {
          this.clearFailure(key);
          return; // deleted meanwhile
        }
        if (err instanceof KubeApiError && err.statusCode === 409) {
          this.counters.conflicts += 1;
          this.metrics?.statusWrites.inc({ result: 'conflict' });
          this.logger.debug(
            {
              object: `${status.kind} ${status.namespace}/${status.name}`,
              resourceVersion: live.resourceVersion,
              err: err.message,
            },
            'status conflict; re-reading the object',
          );
          try {
            const fresh = liveOf(await kubeRequest<unknown>(this.kubeConfig, { path, timeoutMs: 30_000 }));
            if (!fresh) return;
            live = fresh;
            continue;
          } catch (readErr) {
            this.failedWrite(key, status, readErr);
            return;
          }
        }
        this.failedWrite(key, status, err);
        return;
      }
    }
    if (!this.stopped) this.failedWrite(key, status, new Error('still conflicting after 5 attempts'));
  }

  private failedWrite(key: string, status: ResourceStatus, err: unknown): void {
    this.counters.errors += 1;
    this.metrics?.statusWrites.inc({ result: 'error' });
    const attempt = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, attempt);
    const delayMs = backoffDelay(attempt - 1, { initialMs: 1000, maxMs: 60_000 });
    this.logger.warn(
      { object: `${status.kind} ${status.namespace}/${status.name}`, err: describeKubeError(err), retryInMs: delayMs },
      'cannot write the status; retrying',
    );
    const timer = this.clock.setTimeout(() => {
      this.retryTimers.delete(timer);
      this.mark(key);
    }, delayMs);
    this.retryTimers.add(timer);
  }

  private clearFailure(key: string): void {
    this.failures.delete(key);
  }
}
