// The xDS engine alone (PushController + AdsServer on 127.0.0.1) over a snapshot the test replaces, for
// tests that give the engine what the control plane does not expose: a clock, a heap reading.
import { anyFromJson, unpackAny, type Message } from '../../control-plane/envoy/protos.js';
import { silentLogger } from '../../control-plane/logger.js';
import { XdsMetrics } from '../../control-plane/metrics.js';
import { AdsServer, type AdsServerOptions } from '../../control-plane/xds/ads-server.js';
import type { Generator, ResourcesByType, SnapshotSource } from '../../control-plane/xds/generator.js';
import { PushController, type PushControllerOptions } from '../../control-plane/xds/push-controller.js';
import { RawAdsClient } from './ads-client.js';
import { assertServedResourcesValid, type JsonResource } from './control-plane.js';

class MutableSource implements SnapshotSource<ResourcesByType> {
  private readonly listeners = new Set<() => void>();
  constructor(private snapshot: ResourcesByType) {}
  current(): ResourcesByType {
    return this.snapshot;
  }
  ready(): boolean {
    return true;
  }
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  set(next: ResourcesByType): void {
    this.snapshot = next;
    for (const listener of this.listeners) listener();
  }
}

/** Every proxy gets the whole snapshot. */
const everything: Generator<ResourcesByType> = { generate: (_proxy, snapshot) => snapshot };

/** Resources by type from proto3 JSON (checked against Envoy's validation like every resource in tests). */
export async function resourcesByType(json: readonly JsonResource[]): Promise<ResourcesByType> {
  await assertServedResourcesValid(json);
  const out = new Map<string, Message[]>();
  for (const item of json) {
    const message = unpackAny(anyFromJson(item as Parameters<typeof anyFromJson>[0]));
    const typeUrl = item['@type'];
    out.set(typeUrl, [...(out.get(typeUrl) ?? []), message]);
  }
  return out;
}

export interface XdsEngine extends AsyncDisposable {
  readonly metrics: XdsMetrics;
  readonly controller: PushController<ResourcesByType>;
  readonly ads: AdsServer;
  readonly target: string;
  /** A client on its own HTTP/2 connection. */
  client(): RawAdsClient;
  /** Replaces the snapshot and resolves when the push cycle it causes has ended. */
  change(next: ResourcesByType): Promise<void>;
}

export async function startXdsEngine(
  initial: ResourcesByType,
  options: {
    ads?: Omit<AdsServerOptions, 'metrics' | 'logger'>;
    controller?: Omit<PushControllerOptions, 'metrics' | 'logger' | 'debounce'>;
    /** Default: every proxy gets the whole snapshot. */
    generator?: Generator<ResourcesByType>;
    /** Default: 10 ms of quiet, at most 1 s. */
    debounce?: PushControllerOptions['debounce'];
  } = {},
): Promise<XdsEngine> {
  const metrics = new XdsMetrics();
  const source = new MutableSource(initial);
  const controller = new PushController(source, options.generator ?? everything, {
    debounce: options.debounce ?? { quietMs: 10, maxMs: 1_000 },
    metrics,
    logger: silentLogger,
    ...options.controller,
  });
  controller.start();
  const ads = new AdsServer(controller as unknown as PushController<unknown>, {
    metrics,
    logger: silentLogger,
    ...options.ads,
  });
  const port = await ads.listen('127.0.0.1', 0);
  const target = `127.0.0.1:${port}`;
  const clients: RawAdsClient[] = [];
  return {
    metrics,
    controller,
    ads,
    target,
    client() {
      // A distinct connection per client, as distinct proxies have.
      const client = new RawAdsClient(target, undefined, { 'grpc.use_local_subchannel_pool': 1 });
      clients.push(client);
      return client;
    },
    change(next) {
      const pushed = new Promise<void>((resolve) => controller.once('pushed', () => resolve()));
      source.set(next);
      return pushed;
    },
    async [Symbol.asyncDispose]() {
      for (const client of clients) client.close();
      controller.stop();
      await ads.close();
    },
  };
}

/** The sum of a counter's values over all its label sets. */
export async function counterTotal(counter: { get(): Promise<{ values: { value: number }[] }> }): Promise<number> {
  return (await counter.get()).values.reduce((sum, v) => sum + v.value, 0);
}
