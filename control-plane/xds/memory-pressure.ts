// Never a heap crash: while the V8 heap is above a threshold of its limit, the control plane slows down and
// says so instead of dying. The push controller pauses generating new configs (connected proxies keep
// what they have) and the ADS server refuses new streams with UNAVAILABLE (clients back off and retry, or
// go to another replica), until the heap is back under the threshold. Each transition is logged and the
// state is the metric trellis_xds_memory_pressure.
import { EventEmitter } from 'node:events';
import { getHeapStatistics } from 'node:v8';
import type { Logger } from '../logger.js';
import type { XdsMetrics } from './metrics.js';

export interface HeapReading {
  /** Bytes of V8 heap in use. */
  readonly used: number;
  /** The heap size V8 will not grow beyond (`--max-old-space-size`). */
  readonly limit: number;
}

export function readHeap(): HeapReading {
  const stats = getHeapStatistics();
  return { used: stats.used_heap_size, limit: stats.heap_size_limit };
}

export interface MemoryPressureOptions {
  readonly metrics: XdsMetrics;
  readonly logger: Logger;
  /** Fraction of the heap limit above which the control plane is under pressure; default 0.85. */
  readonly threshold?: number;
  /** Pressure ends below `threshold - hysteresis` (so it does not flap); default 0.05. */
  readonly hysteresis?: number;
  /** How often the heap is read while started; default 1 s. */
  readonly intervalMs?: number;
  /** The heap reading (tests inject one). */
  readonly read?: () => HeapReading;
}

export class MemoryPressure extends EventEmitter<{ change: [high: boolean] }> {
  private state = false;
  private timer: NodeJS.Timeout | undefined;
  private last: HeapReading = { used: 0, limit: 1 };
  private readonly threshold: number;
  private readonly hysteresis: number;
  private readonly read: () => HeapReading;

  constructor(private readonly options: MemoryPressureOptions) {
    super();
    this.threshold = options.threshold ?? 0.85;
    this.hysteresis = options.hysteresis ?? 0.05;
    this.read = options.read ?? readHeap;
    options.metrics.memoryPressure.set(0);
  }

  /** Under pressure as of the last check. */
  get high(): boolean {
    return this.state;
  }

  /** What the last check read, in MiB, for messages. */
  describe(): string {
    const mib = (n: number): string => (n / 1024 / 1024).toFixed(0);
    return `heap ${mib(this.last.used)} of ${mib(this.last.limit)} MiB, threshold ${Math.round(this.threshold * 100)}%`;
  }

  /** Reads the heap now and updates the state; returns whether under pressure. */
  check(): boolean {
    this.last = this.read();
    const ratio = this.last.used / this.last.limit;
    const next = this.state ? ratio >= this.threshold - this.hysteresis : ratio >= this.threshold;
    if (next !== this.state) {
      this.state = next;
      this.options.metrics.memoryPressure.set(next ? 1 : 0);
      if (next) {
        this.options.logger.warn(
          { heapUsed: this.last.used, heapLimit: this.last.limit, threshold: this.threshold },
          `memory pressure (${this.describe()}): pushes paused, new xDS streams refused with UNAVAILABLE until the heap shrinks`,
        );
      } else {
        this.options.logger.info(
          { heapUsed: this.last.used, heapLimit: this.last.limit },
          `memory pressure over (${this.describe()}): pushes resume, new streams accepted`,
        );
      }
      this.emit('change', next);
    }
    return next;
  }

  /** Resolves once the pressure is over (at once when there is none). */
  relieved(): Promise<void> {
    if (!this.state) return Promise.resolve();
    return new Promise((resolve) => {
      const onChange = (high: boolean): void => {
        if (high) return;
        this.off('change', onChange);
        resolve();
      };
      this.on('change', onChange);
    });
  }

  start(): void {
    this.timer ??= setInterval(() => this.check(), this.options.intervalMs ?? 1_000).unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    // Anyone waiting for relief is released: the control plane is stopping.
    if (this.state) {
      this.state = false;
      this.options.metrics.memoryPressure.set(0);
      this.emit('change', false);
    }
  }
}
