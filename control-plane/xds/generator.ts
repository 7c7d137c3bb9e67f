// The seam between the protocol engine and everything that decides what a proxy gets (style-anchors.md:
// "the protocol engine knows nothing of the config model"). A generator is pure: the same proxy and
// snapshot give the same resources. The xDS server never sees a snapshot's insides.
import type { TraceSpan } from '../../lib/tracing.js';
import type { Message } from '../envoy/protos.js';
import type { ProxyInfo } from './node.js';

/**
 * Resources by type URL. Return the same array (and message objects) for proxies that get the same
 * content: encoding is memoized on those objects, so sharing them is what makes a push to many proxies
 * cheap.
 */
export type ResourcesByType = ReadonlyMap<string, readonly Message[]>;

export interface Generator<Snapshot> {
  generate(proxy: ProxyInfo, snapshot: Snapshot): ResourcesByType;
}

/** When the input behind a published snapshot changed. */
export interface ChangeTiming {
  /**
   * How long before the snapshot was published the source saw the change (a file's watch event, a watch
   * event's arrival): the model build in between counts toward the push debounce's quiet time.
   */
  readonly observedMsAgo: number;
}

/** Something that holds the current snapshot and says when it changes (a source, in design.md §1). */
export interface SnapshotSource<Snapshot> {
  current(): Snapshot;
  /**
   * Calls `listener` after every change, with the change's span when tracing is on and the span was
   * sampled (lib/tracing.ts: the push that follows is its child), and when the source knows it, when the
   * change was seen; returns a function that unsubscribes.
   */
  onChange(listener: (change?: TraceSpan, timing?: ChangeTiming) => void): () => void;
  /** True once the first complete snapshot is there (drives `/readyz`). */
  ready(): boolean;
}
