// ObjectStore → MeshSnapshot: rebuilds the model after every batch of changes and tells the listeners
// (the xDS push controller). Shared by FileSource and KubeSource, which only fill the store and say when
// their first full read is done. Nothing is published before that: a proxy that connects early waits
// for a complete snapshot instead of receiving an empty one (design.md §5.4, fail static).
// Tracing on (lib/tracing.ts): every rebuild is span `mesh.change` (the model build, with the snapshot's
// version, hash and counts); a published one is handed to the listeners, whose push becomes its child.
import { tracer, type TraceSpan } from '../../lib/tracing.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { buildSnapshot, type BuildOptions } from '../model/build-snapshot.js';
import type { Problem } from '../model/objects.js';
import type { MeshSnapshot } from '../model/snapshot.js';
import type { ChangeTiming, SnapshotSource } from '../xds/generator.js';
import type { ObjectStore } from './object-store.js';

export interface MeshSourceOptions extends Pick<BuildOptions, 'validate' | 'formatIssue' | 'domain' | 'rootNamespace'> {
  readonly logger?: Logger;
}

/** How often the store changed the model's input, and how often that changed the snapshot. */
export interface MeshSourceStats {
  /** Snapshots built (every store event after ready, and the first). */
  readonly rebuilds: number;
  /** Snapshots published (the hash changed, or the first): each one makes the push controller regenerate. */
  readonly published: number;
}

function problemKey(p: Problem): string {
  return `${p.severity}\0${p.message}`;
}

export class MeshSource implements SnapshotSource<MeshSnapshot> {
  private snapshot: MeshSnapshot;
  private isReady = false;
  private readonly listeners = new Set<(change?: TraceSpan, timing?: ChangeTiming) => void>();
  private readonly logger: Logger;
  private readonly unsubscribe: () => void;
  private counters = { rebuilds: 0, published: 0 };

  constructor(
    readonly store: ObjectStore,
    private readonly options: MeshSourceOptions,
  ) {
    this.logger = options.logger ?? silentLogger;
    this.snapshot = buildSnapshot([], { ...this.buildOptions(), version: 0 });
    this.unsubscribe = store.onChange((event) => {
      if (this.isReady) this.rebuild(false, event.observedAt);
    });
  }

  private buildOptions(): BuildOptions {
    const { validate, formatIssue, domain, rootNamespace } = this.options;
    return {
      validate,
      ...(formatIssue ? { formatIssue } : {}),
      ...(domain ? { domain } : {}),
      ...(rootNamespace ? { rootNamespace } : {}),
    };
  }

  current(): MeshSnapshot {
    return this.snapshot;
  }

  /**
   * Rebuilds and publications so far. `rebuilds - published` is the store events that changed nothing
   * the model keeps (a status write's echo, a label on a VirtualService): no new snapshot, no regeneration.
   */
  get stats(): MeshSourceStats {
    return { ...this.counters };
  }

  ready(): boolean {
    return this.isReady;
  }

  onChange(listener: (change?: TraceSpan, timing?: ChangeTiming) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The first full read is in the store: build and publish the first snapshot. */
  markReady(): void {
    if (this.isReady) return;
    this.isReady = true;
    this.rebuild(true);
  }

  /** Stops following the store. */
  close(): void {
    this.unsubscribe();
  }

  /** `observedAt`: when the source saw the change (epoch ms; StoreEvent.observedAt), told to the listeners. */
  private rebuild(force = false, observedAt?: number): void {
    const previous = this.snapshot;
    const span = tracer().enabled
      ? tracer().startSpan('mesh.change', { attributes: { 'trellis.mesh.previous_version': previous.version } })
      : undefined;
    const next = buildSnapshot(this.store.list(), {
      ...this.buildOptions(),
      previous,
      sourceProblems: this.store.problems(),
    });
    this.counters.rebuilds += 1;
    // The hash covers only what translation and statuses read (model/README.md "What the hash covers"):
    // an object that changed only in its resourceVersion, status or labels of a routing resource gives
    // the same hash, and nothing is published.
    if (!force && next.hash === previous.hash) {
      span?.setAttributes({ 'trellis.mesh.published': false });
      span?.end();
      return;
    }
    this.counters.published += 1;
    this.snapshot = next;
    this.logProblems(previous, next);
    this.logger.info(
      {
        version: next.version,
        hash: next.hash.slice(0, 12),
        services: next.services.length,
        virtualServices: next.virtualServices.length,
        destinationRules: next.destinationRules.length,
        problems: next.problems.length,
      },
      'mesh snapshot',
    );
    const traced = span?.recording ? span : undefined; // an ended span no longer says it records
    if (traced) {
      traced.setAttributes({
        'trellis.mesh.published': true,
        'trellis.mesh.version': next.version,
        'trellis.mesh.hash': next.hash.slice(0, 12),
        'trellis.mesh.services': next.services.length,
        'trellis.mesh.virtual_services': next.virtualServices.length,
        'trellis.mesh.destination_rules': next.destinationRules.length,
        'trellis.mesh.problems': next.problems.length,
      });
    }
    span?.end();
    const timing = observedAt === undefined ? undefined : { observedMsAgo: Math.max(0, Date.now() - observedAt) };
    for (const listener of [...this.listeners]) listener(traced, timing);
  }

  /** Each problem is logged once, when it appears; and once more when it is gone. */
  private logProblems(previous: MeshSnapshot, next: MeshSnapshot): void {
    const before = new Set(previous.problems.map(problemKey));
    const after = new Set(next.problems.map(problemKey));
    for (const p of next.problems) {
      if (before.has(problemKey(p))) continue;
      const fields = { ...(p.object ? { object: p.object } : {}), ...p.origin };
      if (p.severity === 'error') this.logger.error(fields, p.message);
      else if (p.severity === 'warning') this.logger.warn(fields, p.message);
      else this.logger.info(fields, p.message);
    }
    for (const p of previous.problems) {
      if (p.severity !== 'info' && !after.has(problemKey(p))) this.logger.info(`resolved: ${p.message}`);
    }
  }
}
