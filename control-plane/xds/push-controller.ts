// Decides when and to whom config is pushed. A snapshot change is debounced; then every connected proxy's
// config is generated and encoded (resource-cache.ts shares the bytes), and only the streams whose
// per-proxy hash changed are handed the new config (design.md §5.5: cost proportional to the change).
// The generation starts early: while the change waits out the debounce's quiet time, the configs of the
// new snapshot are generated ahead (prepare()), so the push that follows mostly only sends.
// A proxy is handed its config as soon as it is generated, and the cycle yields to the event loop every
// `sliceMs`, so writes flush and requests are read while the rest of the fleet is still being generated.
// Under memory pressure (memory-pressure.ts) the cycle pauses before generating the next config.
// Tracing (lib/tracing.ts, when on): a cycle is span `xds.push`, the child of the first change it folds
// (the others are links); each proxy whose config changed gets `xds.push.proxy` (translation + encoding,
// unless `trellis.xds.prepared`: then they ran ahead, during the debounce),
// the parent of the responses the stream sends (xds-stream.ts `xds.response`, ended by the ACK or NACK).
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { tracer, type TraceSpan } from '../../lib/tracing.js';
import type { Logger } from '../logger.js';
import type { XdsMetrics } from './metrics.js';
import type { Clock as TimerClock } from '../../lib/clock.js';
import { systemClock, type Clock } from './clock.js';
import { ConvergenceTracker, type ConvergenceMetrics } from './convergence.js';
import { Debouncer, type DebounceOptions } from './debounce.js';
import type { Generator, ResourcesByType, SnapshotSource } from './generator.js';
import type { MemoryPressure } from './memory-pressure.js';
import type { ProxyInfo } from './node.js';
import { ResourceCache, type EncodedSet } from './resource-cache.js';

/** The encoded config of one proxy: a set per type and a hash over the set versions. */
export interface ProxyConfig {
  readonly sets: ReadonlyMap<string, EncodedSet>;
  readonly hash: string;
  /** The push that handed this config out (tracing on): the parent of the responses that carry it. */
  readonly trace?: TraceSpan;
}

/** A stream as the controller sees it (implemented by the SotW and delta streams). */
export interface ConfigConsumer {
  readonly proxy: ProxyInfo | undefined;
  /** The config last handed to the stream (what it was sent, or is being sent). */
  readonly config: ProxyConfig | undefined;
  readonly configHash: string | undefined;
  onConfig(config: ProxyConfig): void;
}

export interface PushControllerOptions<Snapshot = unknown> {
  readonly debounce: DebounceOptions;
  readonly metrics: XdsMetrics;
  readonly logger: Logger;
  readonly cache?: ResourceCache;
  /** Longest stretch of a push cycle without yielding to the event loop; default 10 ms. */
  readonly sliceMs?: number;
  /** Measures `sliceMs`; default performance.now. */
  readonly clock?: Clock;
  /** The debounce's time and timers (tests); default the system clock. */
  readonly debounceClock?: TimerClock;
  /**
   * Generate the connected proxies' configs during the debounce's quiet time, so the push that follows
   * only sends (default true; see prepare()).
   */
  readonly prepareAhead?: boolean;
  /** When given, a push cycle waits while the heap is under pressure. */
  readonly memoryPressure?: MemoryPressure;
  /** When given, the time from a change to the last answer of the proxies it was pushed to (convergence.ts). */
  readonly convergence?: ConvergenceMetrics;
  /**
   * The objects (opaque keys, e.g. `VirtualService/shop/reviews`) whose translation a proxy's config holds,
   * for the Programmed status (programmed.ts); asked lazily, only by whoever calls sourcesOf().
   */
  readonly sources?: (proxy: ProxyInfo, snapshot: Snapshot) => readonly string[];
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const noop = (): void => undefined;

export class PushController<Snapshot> extends EventEmitter<{
  pushed: [{ streams: number; durationMs: number }];
  /** A stream answered a response (ACK or NACK), or a stream came or went: what proxies hold moved. */
  progress: [];
  /** A push cycle stopped before generating more configs: the heap is under pressure. */
  paused: [{ remaining: number }];
}> {
  readonly cache: ResourceCache;
  private readonly consumers = new Set<ConfigConsumer>();
  private readonly debouncer: Debouncer;
  private unsubscribe: (() => void) | undefined;
  private readonly clock: Clock;
  /** The running push cycle(s), if any. */
  private cycle: Promise<void> | undefined;
  /** A change arrived during the running cycle: run another when it ends. */
  private again = false;
  /** A source change not yet taken by a push cycle (the debouncer holds it). */
  private pendingChange = false;
  private stopped = false;
  /** Spans of the changes the next cycle pushes (tracing on). */
  private changes: TraceSpan[] = [];
  private readonly convergence: ConvergenceTracker | undefined;
  /** The config made of each resources map the generator handed out (it hands one map to a whole shape). */
  private readonly configs = new WeakMap<ResourcesByType, ProxyConfig>();
  /** Configs generated ahead of the push for one snapshot (prepare()); taken by the next push cycle. */
  private prepared:
    { readonly snapshot: Snapshot; readonly configs: Map<ConfigConsumer, ProxyConfig | undefined> } | undefined;
  /** A preparation was started for the change the debouncer holds: at most one per push. */
  private preparedPending = false;

  constructor(
    private readonly source: SnapshotSource<Snapshot>,
    private readonly generator: Generator<Snapshot>,
    private readonly options: PushControllerOptions<Snapshot>,
  ) {
    super();
    this.cache = options.cache ?? new ResourceCache();
    this.clock = options.clock ?? systemClock;
    this.debouncer = new Debouncer(options.debounce, () => void this.pushAll(), options.debounceClock);
    this.convergence = options.convergence ? new ConvergenceTracker(options.convergence, this.clock) : undefined;
  }

  start(): void {
    this.stopped = false;
    this.unsubscribe ??= this.source.onChange((change, timing) => {
      if (change) this.changes.push(change);
      this.pendingChange = true;
      this.convergence?.changed();
      // The quiet time counts from when the source saw the change, so the model build is not added to it.
      const waits = this.debouncer.trigger(timing?.observedMsAgo);
      // Prepared only when there is a quiet time to spend (not with a debounce of 0, or a change seen
      // longer ago than the quiet time): else the push starts at once and generates as it goes.
      if (waits > 0 && this.options.prepareAhead !== false && !this.preparedPending) {
        this.preparedPending = true;
        setImmediate(() => void this.prepare());
      }
    });
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.debouncer.stop();
    this.prepared = undefined;
  }

  ready(): boolean {
    return this.source.ready();
  }

  attach(consumer: ConfigConsumer): void {
    this.consumers.add(consumer);
    this.emit('progress');
  }

  detach(consumer: ConfigConsumer): void {
    this.consumers.delete(consumer);
    this.convergence?.detached(consumer);
    this.emit('progress');
  }

  /** A stream's client answered a response (ACK or NACK). */
  answered(consumer: ConfigConsumer): void {
    this.convergence?.answered(consumer);
    this.emit('progress');
  }

  /** True while a change waits for its push or a push cycle runs: streams' configs are about to move. */
  get busy(): boolean {
    return this.pendingChange || this.cycle !== undefined;
  }

  /**
   * The object keys whose translation `consumer`'s config holds (PushControllerOptions.sources), for the
   * current snapshot; undefined without `sources` or before the stream has a proxy.
   */
  sourcesOf(consumer: ConfigConsumer): readonly string[] | undefined {
    const sources = this.options.sources;
    if (!sources || !consumer.proxy) return undefined;
    return sources(consumer.proxy, this.source.current());
  }

  get streams(): ReadonlySet<ConfigConsumer> {
    return this.consumers;
  }

  /**
   * Generates and encodes the config of one proxy. On failure the error is logged with the proxy and
   * undefined returned: the proxy keeps what it has (fail static, design.md §5.4).
   */
  configFor(proxy: ProxyInfo): ProxyConfig | undefined {
    try {
      const resources = this.generator.generate(proxy, this.source.current());
      // Proxies of one shape get the very same resources map: their config is built once.
      const known = this.configs.get(resources);
      if (known) return known;
      const sets = new Map<string, EncodedSet>();
      const hash = createHash('sha256');
      for (const typeUrl of [...resources.keys()].sort()) {
        const set = this.cache.encodeSet(typeUrl, resources.get(typeUrl)!);
        sets.set(typeUrl, set);
        hash.update(typeUrl).update('\0').update(set.version).update('\0');
      }
      const config = { sets, hash: hash.digest('base64url').slice(0, 16) };
      this.configs.set(resources, config);
      return config;
    } catch (err) {
      this.options.metrics.generationErrors.inc();
      this.options.logger.error({ proxy: proxy.id, err }, 'config generation failed; the proxy keeps its last config');
      return undefined;
    }
  }

  /**
   * Pushes to every proxy whose config changed. Called by the debouncer; callable directly. Resolves when
   * the cycle has ended; called while one runs, it makes that one run again afterwards (against the newest
   * snapshot) and resolves when that has ended too. Each cycle ends with a `pushed` event.
   */
  pushAll(): Promise<void> {
    if (this.cycle) {
      this.again = true;
      return this.cycle;
    }
    const run = async (): Promise<void> => {
      try {
        do {
          this.again = false;
          await this.pushCycle();
        } while (this.again && !this.stopped);
      } finally {
        this.cycle = undefined;
      }
    };
    this.cycle = run();
    return this.cycle;
  }

  /**
   * Generates (and encodes) the config of every connected proxy for the current snapshot while the change
   * waits for its push: the debounce's quiet time is spent anyway, and the push cycle then only sends. Not
   * started when the push does not wait (a quiet time of 0, or a change seen longer ago than it).
   * Waits while a push cycle runs (the change came during it). Stops when the push cycle starts (it goes on
   * from there, using what is ready), when a newer snapshot arrives (the push generates for that one), under
   * memory pressure, or on stop(). One preparation per push: in a burst of changes only the first snapshot
   * is prepared, so a burst costs at most one extra generation per push. Nothing is sent or recorded here.
   */
  private async prepare(): Promise<void> {
    // A change that arrived during a push cycle is prepared once that cycle has ended: its own push comes
    // after the quiet time, which is still running.
    while (this.cycle) await this.cycle.then(noop, noop);
    const snapshot = this.source.current();
    const goOn = (): boolean =>
      !this.stopped &&
      this.cycle === undefined &&
      this.pendingChange &&
      this.source.current() === snapshot &&
      this.options.memoryPressure?.high !== true;
    if (!goOn()) return;
    const configs = new Map<ConfigConsumer, ProxyConfig | undefined>();
    this.prepared = { snapshot, configs };
    const sliceMs = this.options.sliceMs ?? 10;
    let sliceStart = this.clock.now();
    try {
      for (const consumer of [...this.consumers]) {
        if (!goOn()) return;
        if (!consumer.proxy || !this.consumers.has(consumer)) continue;
        configs.set(consumer, this.configFor(consumer.proxy));
        if (this.clock.now() - sliceStart >= sliceMs) {
          await yieldToEventLoop();
          sliceStart = this.clock.now();
        }
      }
    } finally {
      if (configs.size > 0) this.options.metrics.configsGenerated.inc({ when: 'ahead' }, configs.size);
    }
  }

  private async pushCycle(): Promise<void> {
    const started = performance.now();
    this.pendingChange = false;
    this.preparedPending = false;
    const snapshot = this.source.current();
    const prepared = this.prepared?.snapshot === snapshot ? this.prepared.configs : undefined;
    this.prepared = undefined;
    const round = this.convergence?.cycleStarted();
    let pushed = 0;
    let generated = 0;
    let sliceStart = this.clock.now();
    const sliceMs = this.options.sliceMs ?? 10;
    const pressure = this.options.memoryPressure;
    pressure?.check();
    const consumers = [...this.consumers];
    const changes = this.changes;
    this.changes = [];
    const cycleSpan = tracer().enabled
      ? tracer().startSpan('xds.push', {
          attributes: { 'trellis.xds.streams': consumers.length, 'trellis.xds.changes': changes.length },
          ...(changes.length > 0 ? { parent: changes[0], links: changes.slice(1) } : {}),
        })
      : undefined;
    for (let i = 0; i < consumers.length; i++) {
      if (this.stopped) break;
      if (pressure?.high) {
        this.emit('paused', { remaining: consumers.length - i });
        await pressure.relieved();
        sliceStart = this.clock.now();
      }
      const consumer = consumers[i]!;
      if (!consumer.proxy || !this.consumers.has(consumer)) continue; // gone while the cycle yielded
      const began = cycleSpan?.recording ? Date.now() : 0;
      const ahead = prepared?.has(consumer) === true && this.source.current() === snapshot;
      if (!ahead) generated++;
      const config = ahead ? prepared!.get(consumer) : this.configFor(consumer.proxy);
      if (config && config.hash !== consumer.configHash) {
        const proxySpan = cycleSpan?.recording
          ? tracer().startSpan('xds.push.proxy', {
              parent: cycleSpan,
              startTime: began,
              attributes: {
                'trellis.proxy.id': consumer.proxy.id,
                'trellis.proxy.type': consumer.proxy.proxyType,
                'trellis.xds.config_hash': config.hash,
                'trellis.xds.previous_hash': consumer.configHash ?? '',
                'trellis.xds.prepared': ahead,
              },
            })
          : undefined;
        try {
          consumer.onConfig(proxySpan ? { ...config, trace: proxySpan } : config);
          pushed++;
          this.convergence?.pushed(round, consumer);
        } catch (err) {
          proxySpan?.fail((err as Error).message);
          this.options.logger.error({ proxy: consumer.proxy.id, err }, 'push failed; the proxy keeps its last config');
        } finally {
          proxySpan?.end();
        }
      }
      if (this.clock.now() - sliceStart >= sliceMs) {
        await yieldToEventLoop();
        sliceStart = this.clock.now();
      }
    }
    this.convergence?.cycleEnded(round);
    if (generated > 0) this.options.metrics.configsGenerated.inc({ when: 'push' }, generated);
    const durationMs = performance.now() - started;
    this.options.metrics.pushCycleDuration.observe(durationMs / 1000);
    this.options.logger.debug({ streams: pushed, durationMs }, 'push cycle');
    cycleSpan?.setAttributes({ 'trellis.xds.pushed': pushed });
    cycleSpan?.end();
    this.emit('pushed', { streams: pushed, durationMs });
  }
}
