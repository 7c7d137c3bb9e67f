// RootCertPublisher: the mesh trust bundle in every namespace, as ConfigMap `trellis-ca-root-cert`
// (Istio's `istio-ca-root-cert`), so that an agent can verify the control plane on 15012 before it holds
// any certificate. The injector mounts it at /var/run/trellis/root-cert (the agent's default --root-cert).
//
// - Two informers (control-plane/kube/informer.ts): Namespaces, and the ConfigMaps named
//   trellis-ca-root-cert in every namespace (field selector on the name, so an edit that drops our label
//   is still seen).
// - Once both are listed, every namespace whose ConfigMap is missing or differs (data not exactly
//   `{root-cert.pem: <bundle>}`, or the label missing) is written, one namespace at a time: POST when
//   missing, PUT with the resourceVersion it was compared with when different; nothing when equal.
// - Namespaces being deleted (deletionTimestamp, phase Terminating) are skipped; the API server refusing a
//   create because the namespace is terminating or gone is a skip, not an error.
// - A failed write is logged, counted and retried for that namespace alone with backoff (a 409 too: the
//   watch brings the newer object, usually sooner); the other namespaces go on. Nothing here throws.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Counter } from 'prom-client';
import { backoffDelay, type BackoffPolicy } from '../../lib/backoff.js';
import { systemClock, type Clock, type ClockTimer } from '../../lib/clock.js';
import { describeKubeError, kubeRequest } from '../kube/http.js';
import { Informer, statusCode, type InformerBatch, type KubeObject } from '../kube/informer.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import type { RootCertWriteResult } from './metrics.js';

export const ROOT_CERT_CONFIGMAP = 'trellis-ca-root-cert';
export const ROOT_CERT_KEY = 'root-cert.pem';
export const ROOT_CERT_LABELS: Readonly<Record<string, string>> = {
  'trellis.dev/config': 'root-cert',
  'app.kubernetes.io/part-of': 'trellis',
};

export interface ConfigMapJson extends KubeObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly data?: Readonly<Record<string, string>>;
  readonly binaryData?: Readonly<Record<string, string>>;
}

interface NamespaceJson extends KubeObject {
  readonly status?: { readonly phase?: string };
}

/**
 * The ConfigMap as it must be: `data` exactly `{root-cert.pem: trustBundle}`, our labels added. From
 * `current` it keeps the rest of the metadata (its resourceVersion, so a PUT applies to what was compared).
 */
export function rootCertConfigMap(namespace: string, trustBundle: string, current?: ConfigMapJson): ConfigMapJson {
  const { managedFields: _dropped, ...metadata } = current?.metadata ?? {};
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      ...metadata,
      name: ROOT_CERT_CONFIGMAP,
      namespace,
      labels: { ...metadata.labels, ...ROOT_CERT_LABELS },
    },
    data: { [ROOT_CERT_KEY]: trustBundle },
  };
}

/** Whether `cm` already is what rootCertConfigMap() makes (metadata other than our labels aside). */
export function isUpToDate(cm: ConfigMapJson, trustBundle: string): boolean {
  const data = cm.data ?? {};
  return (
    Object.keys(data).length === 1 &&
    data[ROOT_CERT_KEY] === trustBundle &&
    Object.keys(cm.binaryData ?? {}).length === 0 &&
    Object.entries(ROOT_CERT_LABELS).every(([k, v]) => cm.metadata?.labels?.[k] === v)
  );
}

function beingDeleted(ns: NamespaceJson): boolean {
  return Boolean(ns.metadata?.deletionTimestamp) || ns.status?.phase === 'Terminating';
}

export interface RootCertPublisherOptions {
  readonly kubeConfig: KubeConfig;
  /** The PEM every namespace gets: `authority.trustBundle()`. */
  readonly trustBundle: string;
  readonly logger?: Logger;
  /** Counts writes by result: `CaMetrics.rootCertWrites`. */
  readonly writes?: Counter<'result'>;
  /** Retries of a namespace's write and of the list/watch loops; 500 ms doubling up to 30 s. */
  readonly backoff?: BackoffPolicy;
  readonly clock?: Clock;
}

export interface RootCertPublisherStatus {
  /** Both loops have listed once. */
  readonly synced: boolean;
  readonly namespaces: number;
  /** Namespaces whose ConfigMap (as last seen) is up to date. */
  readonly upToDate: number;
  /** Namespaces waiting for a retry after a failed write. */
  readonly retrying: number;
}

export class RootCertPublisher {
  private readonly o: RootCertPublisherOptions;
  private readonly logger: Logger;
  /** Namespace name → being deleted. */
  private readonly namespaces = new Map<string, boolean>();
  /** Namespace name → our ConfigMap there, as last seen. */
  private readonly configMaps = new Map<string, ConfigMapJson>();
  private readonly informers: readonly [Informer<NamespaceJson>, Informer<ConfigMapJson>];
  private readonly clock: Clock;
  private readonly queue = new Set<string>();
  private readonly retries = new Map<string, { attempt: number; timer?: ClockTimer }>();
  private readonly abort = new AbortController();
  private busy = false;
  private working: Promise<void> = Promise.resolve();
  private started = false;
  private stopped = false;

  constructor(options: RootCertPublisherOptions) {
    this.o = options;
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? systemClock;
    const common = {
      kubeConfig: options.kubeConfig,
      logger: this.logger,
      clock: this.clock,
      ...(options.backoff ? { backoff: options.backoff } : {}),
      logPrefix: 'root-cert',
    };
    const namespaces = new Informer<NamespaceJson>({ ...common, kind: 'Namespace', path: '/api/v1/namespaces' });
    const configMaps = new Informer<ConfigMapJson>({
      ...common,
      kind: 'ConfigMap',
      path: '/api/v1/configmaps',
      query: { fieldSelector: `metadata.name=${ROOT_CERT_CONFIGMAP}` },
    });
    namespaces.onBatch((batch) => this.namespacesChanged(batch));
    configMaps.onBatch((batch) => this.configMapsChanged(batch));
    this.informers = [namespaces, configMaps];
  }

  private namespacesChanged(batch: InformerBatch<NamespaceJson>): void {
    for (const { current, previous } of batch.changes) {
      const name = (current ?? previous)?.metadata?.name;
      if (!name) continue;
      if (!current) {
        this.namespaces.delete(name);
        this.forget(name);
      } else {
        this.namespaces.set(name, beingDeleted(current));
        this.queue.add(name);
      }
    }
    if (batch.listed) this.enqueueAll();
    else this.kick();
  }

  private configMapsChanged(batch: InformerBatch<ConfigMapJson>): void {
    for (const { current, previous } of batch.changes) {
      const namespace = (current ?? previous)?.metadata?.namespace;
      if (!namespace) continue;
      if (current) this.configMaps.set(namespace, current);
      else this.configMaps.delete(namespace);
      this.queue.add(namespace);
    }
    if (batch.listed) this.enqueueAll();
    else this.kick();
  }

  /** Starts both loops; returns at once (errors are logged and retried, never thrown). */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.logger.info({ configMap: ROOT_CERT_CONFIGMAP }, 'root-cert: publishing the trust bundle to every namespace');
    for (const informer of this.informers) informer.start();
  }

  /** Stops the loops, the retries and the write in flight; no request starts after it resolves. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort();
    for (const name of [...this.retries.keys()]) this.forget(name);
    this.queue.clear();
    await Promise.all(this.informers.map((i) => i.stop()));
    await this.working;
  }

  status(): RootCertPublisherStatus {
    let upToDate = 0;
    for (const [name, deleting] of this.namespaces) {
      const cm = this.configMaps.get(name);
      if (!deleting && cm && isUpToDate(cm, this.o.trustBundle)) upToDate += 1;
    }
    return { synced: this.synced(), namespaces: this.namespaces.size, upToDate, retrying: this.retries.size };
  }

  private synced(): boolean {
    return this.informers.every((i) => i.isSynced());
  }

  private enqueueAll(): void {
    if (!this.synced()) return;
    for (const name of this.namespaces.keys()) this.queue.add(name);
    this.kick();
  }

  private enqueue(namespace: string): void {
    this.queue.add(namespace);
    this.kick();
  }

  /** Works the queue, one namespace at a time, until it is empty. */
  private kick(): void {
    if (this.busy || this.stopped || !this.synced() || this.queue.size === 0) return;
    this.busy = true;
    this.working = (async () => {
      try {
        for (const name of this.queue) {
          if (this.stopped) break;
          this.queue.delete(name);
          await this.reconcile(name).catch((err: unknown) =>
            this.logger.error({ namespace: name, err: describeKubeError(err) }, 'root-cert: unexpected error'),
          );
        }
      } finally {
        this.busy = false;
      }
    })();
  }

  private async reconcile(namespace: string): Promise<void> {
    if (this.namespaces.get(namespace) !== false) return this.forget(namespace); // gone, or being deleted
    const current = this.configMaps.get(namespace);
    if (current && isUpToDate(current, this.o.trustBundle)) return this.forget(namespace);
    const collection = `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps`;
    try {
      const written = await kubeRequest<ConfigMapJson>(this.o.kubeConfig, {
        method: current ? 'PUT' : 'POST',
        path: current ? `${collection}/${ROOT_CERT_CONFIGMAP}` : collection,
        body: rootCertConfigMap(namespace, this.o.trustBundle, current),
        signal: this.abort.signal,
      });
      if (this.stopped) return;
      this.configMaps.set(namespace, written);
      this.count(current ? 'updated' : 'created');
      this.logger[current ? 'info' : 'debug'](
        { namespace, configMap: ROOT_CERT_CONFIGMAP },
        current ? 'root-cert: ConfigMap differed; restored' : 'root-cert: ConfigMap created',
      );
      this.forget(namespace);
    } catch (err) {
      if (this.stopped) return;
      const code = statusCode(err);
      if (!current && (code === 404 || (code === 403 && /being terminated/.test(describeKubeError(err))))) {
        this.logger.debug(
          { namespace, err: describeKubeError(err) },
          'root-cert: namespace gone or terminating; skipped',
        );
        return this.forget(namespace);
      }
      // 409 (or a 404 on update): what was compared is stale; the watch brings the newer object.
      const stale = code === 409 || code === 404;
      this.count(code === 409 ? 'conflict' : 'error');
      this.retry(namespace, err, stale);
    }
  }

  private retry(namespace: string, err: unknown, quiet: boolean): void {
    const entry = this.retries.get(namespace) ?? { attempt: 0 };
    this.clock.clearTimeout(entry.timer);
    const retryInMs = backoffDelay(entry.attempt, this.o.backoff);
    entry.attempt += 1;
    entry.timer = this.clock.setTimeout(() => this.enqueue(namespace), retryInMs);
    this.retries.set(namespace, entry);
    this.logger[!quiet && entry.attempt === 1 ? 'warn' : 'debug'](
      { namespace, err: describeKubeError(err), attempt: entry.attempt, retryInMs },
      'root-cert: writing the ConfigMap failed; retrying',
    );
  }

  private forget(namespace: string): void {
    this.clock.clearTimeout(this.retries.get(namespace)?.timer);
    this.retries.delete(namespace);
  }

  private count(result: RootCertWriteResult): void {
    this.o.writes?.inc({ result });
  }
}
