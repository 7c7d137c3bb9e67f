// Per source object (an opaque key the push controller's `sources` option gives, e.g.
// `VirtualService/shop/reviews`), how many connected proxies hold it and where they stand (answers.ts):
// programmed (every response of their current config ACKed), pending, or rejected, with the first
// rejection (the earliest NACK among them: proxy, type, message). The xDS side knows nothing of what the
// keys mean; control-plane/programmed-status.ts turns a summary into the `Programmed` condition.
//
// Rate limited: after anything moves (a response answered, a push, a stream that came or went), the
// summary is recomputed at most once per `intervalMs` (3 s), on the injected clock, and never while a
// change waits for its push or a push cycle runs (the proxies' configs are about to move; the cycle's
// end brings another recomputation). Listeners get the keys whose summary changed.
import { systemClock, type Clock, type ClockTimer } from '../../lib/clock.js';
import { answers, isAnswering } from './answers.js';
import type { PushController } from './push-controller.js';

export interface FirstRejection {
  readonly proxy: string;
  /** Short type name (CDS, LDS, …). */
  readonly type: string;
  readonly message: string;
  readonly at: string;
}

export interface SourceProgress {
  /** Connected proxies whose config holds the object. */
  readonly proxies: number;
  readonly programmed: number;
  readonly pending: number;
  readonly rejected: number;
  /** The earliest NACK among the proxies that rejected their current config. */
  readonly firstRejection?: FirstRejection;
}

/** The progress of every source key the connected proxies hold. One proxy id counts once (its newest stream). */
export function summarizeProgress(controller: PushController<unknown>): Map<string, SourceProgress> {
  const byProxy = new Map<string, { sources: readonly string[]; state: ReturnType<typeof answers> }>();
  for (const consumer of controller.streams) {
    if (!consumer.proxy || !consumer.config || !isAnswering(consumer)) continue;
    const sources = controller.sourcesOf(consumer);
    if (!sources) continue;
    byProxy.set(consumer.proxy.id, { sources, state: answers(consumer.answerView()) });
  }
  const out = new Map<
    string,
    { proxies: number; programmed: number; pending: number; rejected: number; firstRejection?: FirstRejection }
  >();
  for (const [proxy, { sources, state }] of byProxy) {
    for (const key of sources) {
      let p = out.get(key);
      if (!p) out.set(key, (p = { proxies: 0, programmed: 0, pending: 0, rejected: 0 }));
      p.proxies++;
      if (state.state === 'programmed') p.programmed++;
      else if (state.state === 'pending') p.pending++;
      else {
        p.rejected++;
        const r = p.firstRejection;
        if (!r || state.at < r.at || (state.at === r.at && proxy < r.proxy)) {
          p.firstRejection = { proxy, type: state.type, message: state.message, at: state.at };
        }
      }
    }
  }
  return out;
}

export interface ProgrammedTrackerOptions {
  readonly controller: PushController<unknown>;
  /** Timers; default the system clock. */
  readonly clock?: Clock;
  /** Least time between two recomputations; default 3,000 ms. */
  readonly intervalMs?: number;
}

export class ProgrammedTracker {
  private readonly controller: PushController<unknown>;
  private readonly clock: Clock;
  private readonly intervalMs: number;
  private current = new Map<string, SourceProgress>();
  private fingerprints = new Map<string, string>();
  private readonly listeners = new Set<(changed: ReadonlySet<string>) => void>();
  private dirty = false;
  private lastRun = Number.NEGATIVE_INFINITY;
  private timer: ClockTimer | undefined;
  private readonly onMove = (): void => this.moved();
  private started = false;

  constructor(options: ProgrammedTrackerOptions) {
    this.controller = options.controller;
    this.clock = options.clock ?? systemClock;
    this.intervalMs = options.intervalMs ?? 3_000;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.controller.on('progress', this.onMove);
    this.controller.on('pushed', this.onMove);
    this.moved();
  }

  stop(): void {
    this.started = false;
    this.controller.off('progress', this.onMove);
    this.controller.off('pushed', this.onMove);
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The last summary of `key`; undefined when no connected proxy holds it. */
  get(key: string): SourceProgress | undefined {
    return this.current.get(key);
  }

  /** Calls `listener` with the keys whose summary changed, after each recomputation; returns an unsubscribe. */
  onChange(listener: (changed: ReadonlySet<string>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private moved(): void {
    if (!this.started) return;
    this.dirty = true;
    if (this.timer) return;
    const wait = Math.max(0, this.lastRun + this.intervalMs - this.clock.now());
    this.timer = this.clock.setTimeout(() => this.tick(), wait);
  }

  private tick(): void {
    this.timer = undefined;
    if (!this.started || !this.dirty) return;
    // A push is coming: its `pushed` event calls moved() again.
    if (this.controller.busy) return;
    this.dirty = false;
    this.lastRun = this.clock.now();
    const next = summarizeProgress(this.controller);
    const fingerprints = new Map<string, string>();
    const changed = new Set<string>();
    for (const [key, progress] of next) {
      const f = JSON.stringify(progress);
      fingerprints.set(key, f);
      if (this.fingerprints.get(key) !== f) changed.add(key);
    }
    for (const key of this.fingerprints.keys()) if (!next.has(key)) changed.add(key);
    this.current = next;
    this.fingerprints = fingerprints;
    if (changed.size > 0) for (const l of this.listeners) l(changed);
  }
}
