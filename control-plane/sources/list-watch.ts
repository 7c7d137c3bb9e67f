// A list+watch loop on one resource path, for controllers that keep objects of their own in step with
// the cluster (the CA's root-cert publisher): list (paged), then watch from the list's resourceVersion; a
// watch that ends is re-opened from the last resourceVersion; 410 Gone relists at once; any other failure
// relists after a backoff. Lists are plain JSON (kube-http.ts), like the watch events of client-node's
// Watch. (KubeSource has its own loop, tied to the mesh model's store.)
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../logger.js';
import { describeKubeError, KubeApiError, kubeRequest } from './kube-http.js';
import { backoffDelay, type BackoffOptions } from './kube-source.js';

/** The server ends each watch after this long (client-node's Watch gives up on a stream silent for 30 s). */
const WATCH_TIMEOUT_SECONDS = 25;

export interface KubeMeta {
  readonly name?: string;
  readonly namespace?: string;
  readonly resourceVersion?: string;
  readonly deletionTimestamp?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly managedFields?: unknown;
  readonly [field: string]: unknown;
}

export interface KubeObject {
  readonly metadata?: KubeMeta;
}

export function statusCode(err: unknown): number | undefined {
  const code = typeof err === 'object' && err !== null ? (err as { statusCode?: unknown }).statusCode : undefined;
  return typeof code === 'number' ? code : undefined;
}

export interface ListWatchOptions<T extends KubeObject> {
  /** Prefix of the loop's log messages (`<logPrefix>: list/watch failed; retrying`). */
  readonly logPrefix: string;
  readonly kubeConfig: KubeConfig;
  readonly kind: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly logger: Logger;
  readonly backoff: BackoffOptions;
  /** A complete list: the whole state. */
  readonly onList: (items: readonly T[]) => void;
  readonly onEvent: (type: 'ADDED' | 'MODIFIED' | 'DELETED', object: T) => void;
}

/** List, then watch from the list's resourceVersion; see the top of the file. stop() is final. */
export class ListWatchLoop<T extends KubeObject> {
  private readonly watch: Watch;
  private readonly abort = new AbortController();
  private resourceVersion = '';
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private open: AbortController | undefined;
  private stopped = false;

  constructor(private readonly o: ListWatchOptions<T>) {
    this.watch = new Watch(o.kubeConfig);
  }

  start(): void {
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    this.abort.abort();
    this.open?.abort();
    clearTimeout(this.timer);
  }

  private async run(): Promise<void> {
    if (this.stopped) return;
    try {
      if (this.resourceVersion === '') await this.list();
      await this.openWatch();
    } catch (err) {
      this.failed(err);
    }
  }

  private async list(): Promise<void> {
    const items: T[] = [];
    let resourceVersion = '';
    let token: string | undefined;
    do {
      const page = await kubeRequest<{ metadata?: { resourceVersion?: string; continue?: string }; items?: T[] }>(
        this.o.kubeConfig,
        { path: this.o.path, query: { ...this.o.query, limit: '500', continue: token }, signal: this.abort.signal },
      );
      items.push(...(page.items ?? []));
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
      token = page.metadata?.continue || undefined;
    } while (token);
    if (this.stopped) return;
    this.resourceVersion = resourceVersion;
    this.o.onList(items);
  }

  private async openWatch(): Promise<void> {
    const opened = Date.now();
    let events = 0;
    let ended = false;
    let errorEvent: { code?: number; message?: string } | undefined;
    const controller = await this.watch.watch(
      this.o.path,
      {
        ...this.o.query,
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: WATCH_TIMEOUT_SECONDS,
      },
      (type: string, object: unknown) => {
        if (this.stopped) return;
        events += 1;
        if (type === 'ERROR') {
          errorEvent = (object ?? {}) as { code?: number; message?: string };
          return;
        }
        const obj = object as T;
        if (obj.metadata?.resourceVersion) this.resourceVersion = obj.metadata.resourceVersion;
        if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') this.o.onEvent(type, obj);
      },
      (err: unknown) => {
        ended = true;
        this.open = undefined;
        if (this.stopped) return;
        if (errorEvent?.code === 410 || statusCode(err) === 410) {
          this.resourceVersion = ''; // too old: relist
          void this.run();
        } else if (errorEvent) this.failed(new KubeApiError(errorEvent.message ?? 'watch error', errorEvent.code ?? 0));
        else if (err && (err as { name?: unknown }).name !== 'TimeoutError') this.failed(err);
        else if (events === 0 && Date.now() - opened < 1000) this.failed(new Error('the watch ended at once'));
        else void this.run(); // a normal end (timeoutSeconds, or silence): watch on from where it was
      },
    );
    if (this.stopped) controller.abort();
    else if (!ended) {
      this.open = controller;
      if (this.attempt > 0) this.o.logger.info({ kind: this.o.kind }, `${this.o.logPrefix}: watching again`);
      this.attempt = 0;
    }
  }

  private failed(err: unknown): void {
    if (this.stopped) return;
    const retryInMs = backoffDelay(this.attempt, this.o.backoff);
    this.attempt += 1;
    this.resourceVersion = ''; // the next list brings whatever was missed
    this.o.logger[this.attempt === 1 ? 'warn' : 'debug'](
      { kind: this.o.kind, err: describeKubeError(err), attempt: this.attempt, retryInMs },
      `${this.o.logPrefix}: list/watch failed; retrying`,
    );
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.run(), retryInMs);
  }
}
