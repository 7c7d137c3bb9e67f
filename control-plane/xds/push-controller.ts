// Decides when and to whom config is pushed. A snapshot change is debounced; then every connected proxy's
// config is generated and encoded (resource-cache.ts shares the bytes), and only the streams whose
// per-proxy hash changed are handed the new config (design.md §5.5: cost proportional to the change).
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from '../logger.js';
import type { XdsMetrics } from '../metrics.js';
import { Debouncer, type DebounceOptions } from './debounce.js';
import type { Generator, SnapshotSource } from './generator.js';
import type { ProxyInfo } from './node.js';
import { ResourceCache, type EncodedSet } from './resource-cache.js';

/** The encoded config of one proxy: a set per type and a hash over the set versions. */
export interface ProxyConfig {
  readonly sets: ReadonlyMap<string, EncodedSet>;
  readonly hash: string;
}

/** A stream as the controller sees it (implemented by the SotW and delta streams). */
export interface ConfigConsumer {
  readonly proxy: ProxyInfo | undefined;
  /** The config last handed to the stream (what it was sent, or is being sent). */
  readonly config: ProxyConfig | undefined;
  readonly configHash: string | undefined;
  onConfig(config: ProxyConfig): void;
}

export interface PushControllerOptions {
  readonly debounce: DebounceOptions;
  readonly metrics: XdsMetrics;
  readonly logger: Logger;
  readonly cache?: ResourceCache;
}

export class PushController<Snapshot> extends EventEmitter<{ pushed: [{ streams: number; durationMs: number }] }> {
  readonly cache: ResourceCache;
  private readonly consumers = new Set<ConfigConsumer>();
  private readonly debouncer: Debouncer;
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly source: SnapshotSource<Snapshot>,
    private readonly generator: Generator<Snapshot>,
    private readonly options: PushControllerOptions,
  ) {
    super();
    this.cache = options.cache ?? new ResourceCache();
    this.debouncer = new Debouncer(options.debounce, () => this.pushAll());
  }

  start(): void {
    this.unsubscribe ??= this.source.onChange(() => this.debouncer.trigger());
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.debouncer.stop();
  }

  ready(): boolean {
    return this.source.ready();
  }

  attach(consumer: ConfigConsumer): void {
    this.consumers.add(consumer);
  }

  detach(consumer: ConfigConsumer): void {
    this.consumers.delete(consumer);
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
      const sets = new Map<string, EncodedSet>();
      const hash = createHash('sha256');
      for (const typeUrl of [...resources.keys()].sort()) {
        const set = this.cache.encodeSet(typeUrl, resources.get(typeUrl)!);
        sets.set(typeUrl, set);
        hash.update(typeUrl).update('\0').update(set.version).update('\0');
      }
      return { sets, hash: hash.digest('base64url').slice(0, 16) };
    } catch (err) {
      this.options.metrics.generationErrors.inc();
      this.options.logger.error({ proxy: proxy.id, err }, 'config generation failed; the proxy keeps its last config');
      return undefined;
    }
  }

  /** Pushes to every proxy whose config changed. Called by the debouncer; callable directly. */
  pushAll(): void {
    const started = performance.now();
    let pushed = 0;
    for (const consumer of [...this.consumers]) {
      if (!consumer.proxy) continue;
      const config = this.configFor(consumer.proxy);
      if (!config || config.hash === consumer.configHash) continue;
      consumer.onConfig(config);
      pushed++;
    }
    const durationMs = performance.now() - started;
    this.options.metrics.pushCycleDuration.observe(durationMs / 1000);
    this.options.logger.debug({ streams: pushed, durationMs }, 'push cycle');
    this.emit('pushed', { streams: pushed, durationMs });
  }
}
