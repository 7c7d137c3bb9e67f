// Plain JSON requests and watch streams to the Kubernetes API server, authenticated from a KubeConfig
// (token, client certificate, exec plugin, in-cluster service account: whatever `applyToHTTPSOptions`
// applies). Only the KubeConfig *type* comes from @kubernetes/client-node: this module does not load it.
//
// Why not the generated clients of @kubernetes/client-node: they turn lists into class instances (dates
// become Date objects, unknown fields are dropped) while the watch hands over the JSON as it came. The
// mesh model must see one representation whatever path an object took (a relisted object must compare
// equal to the watched one), so lists and watches are both plain JSON here, and the status writer patches
// with an explicit content type. The watch is ours too (not client-node's Watch, which drops a stream
// that is silent for 30 s and whose reconnect ordering is internal): see kubeWatch().
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

/** A non-2xx answer (or a watch's ERROR event): `statusCode` 410 is Gone, 409 Conflict, 404 Not Found. */
export class KubeApiError extends Error {
  readonly code: number;
  constructor(
    message: string,
    readonly statusCode: number,
    /** The Status `reason` (`Conflict`, `NotFound`, `Expired`, …) when the server sent one. */
    readonly reason?: string,
  ) {
    super(message);
    this.name = 'KubeApiError';
    this.code = statusCode;
  }
}

export interface KubeRequest {
  readonly method?: 'GET' | 'PATCH' | 'PUT' | 'POST' | 'DELETE';
  /** `/api/v1/pods`, `/apis/<group>/<version>/namespaces/<ns>/<plural>/<name>/status`, … */
  readonly path: string;
  readonly query?: Readonly<Record<string, string | undefined>>;
  readonly body?: unknown;
  /** Content-Type of the body; `application/json` by default (`application/merge-patch+json` for merge patches). */
  readonly contentType?: string;
  readonly signal?: AbortSignal;
  /** Whole-request deadline; 60 s by default. */
  readonly timeoutMs?: number;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

interface Prepared {
  readonly url: URL;
  readonly options: https.RequestOptions;
  readonly client: typeof http | typeof https;
  readonly payload: Buffer | undefined;
  readonly method: string;
}

async function prepare(kubeConfig: KubeConfig, req: KubeRequest): Promise<Prepared> {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const url = new URL(cluster.server.replace(/\/+$/, '') + req.path);
  for (const [key, value] of Object.entries(req.query ?? {})) {
    if (value !== undefined) url.searchParams.set(key, value);
  }
  const method = req.method ?? 'GET';
  const options: https.RequestOptions = { method, headers: { accept: 'application/json' } };
  await kubeConfig.applyToHTTPSOptions(options);
  const payload = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
  options.headers = {
    ...options.headers,
    ...(payload
      ? { 'content-type': req.contentType ?? 'application/json', 'content-length': String(payload.length) }
      : {}),
  };
  if (req.signal) options.signal = req.signal;
  const client = url.protocol === 'http:' ? http : https;
  if (url.protocol === 'http:') delete options.agent; // an https.Agent cannot carry plain HTTP
  return { url, options, client, payload, method };
}

/** The error of a non-2xx answer: a metav1.Status names the reason; anything else is quoted briefly. */
function apiError(method: string, path: string, status: number, text: string): KubeApiError {
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  const message = isRecord(body) && typeof body.message === 'string' ? body.message : text.slice(0, 200);
  const reason = isRecord(body) && typeof body.reason === 'string' ? body.reason : undefined;
  return new KubeApiError(
    `${method} ${path}: ${status} ${http.STATUS_CODES[status] ?? ''}: ${message}`.trim(),
    status,
    reason,
  );
}

/** Sends one request and parses the JSON answer; rejects with KubeApiError for a non-2xx status. */
export async function kubeRequest<T>(kubeConfig: KubeConfig, req: KubeRequest): Promise<T> {
  const { url, options, client, payload, method } = await prepare(kubeConfig, req);
  const timeoutMs = req.timeoutMs ?? 60_000;
  return new Promise<T>((resolve, reject) => {
    const request = client.request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const status = res.statusCode ?? 0;
        if (status < 200 || status >= 300) {
          reject(apiError(method, req.path, status, text));
          return;
        }
        try {
          resolve((text === '' ? undefined : JSON.parse(text)) as T);
        } catch {
          reject(new Error(`${method} ${req.path}: the answer is not JSON: ${text.slice(0, 200)}`));
        }
      });
    });
    request.setTimeout(timeoutMs, () => request.destroy(new Error(`${method} ${req.path}: timed out`)));
    request.on('error', reject);
    request.end(payload);
  });
}

/** One event of a watch stream (`watch=true`), as the API server sends it. */
export interface WatchEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  /** The object; for ERROR a metav1.Status (`code` 410 when the resourceVersion is too old). */
  readonly object: unknown;
}

export interface KubeWatchRequest {
  /** Collection path, e.g. `/api/v1/pods`. */
  readonly path: string;
  /** `resourceVersion`, `timeoutSeconds`, selectors, …; `watch=true` is added. */
  readonly query?: Readonly<Record<string, string | undefined>>;
  readonly signal?: AbortSignal;
  /** The stream is dropped as dead when no byte arrives for this long; pick it above `timeoutSeconds`. */
  readonly idleTimeoutMs: number;
  /** Called once the server answered 200 (the watch is open). */
  readonly onOpen?: () => void;
}

/**
 * One watch stream: calls `onEvent` for every event, in order. Resolves when the server ends the stream
 * (its `timeoutSeconds`); rejects with KubeApiError for a non-2xx answer, or with the network error, the
 * idle timeout or the abort. An event that is not JSON ends the stream with an error.
 */
export async function kubeWatch(
  kubeConfig: KubeConfig,
  req: KubeWatchRequest,
  onEvent: (event: WatchEvent) => void,
): Promise<void> {
  const prepared = await prepare(kubeConfig, {
    path: req.path,
    query: { ...req.query, watch: 'true' },
    ...(req.signal ? { signal: req.signal } : {}),
  });
  const { url, options, client, method } = prepared;
  return new Promise<void>((resolve, reject) => {
    const request = client.request(url, options, (res) => {
      const status = res.statusCode ?? 0;
      if (status < 200 || status >= 300) {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => reject(apiError(method, req.path, status, Buffer.concat(chunks).toString('utf8'))));
        return;
      }
      req.onOpen?.();
      res.setEncoding('utf8');
      let buffered = '';
      res.on('data', (chunk: string) => {
        buffered += chunk;
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line === '') continue;
          let event: WatchEvent;
          try {
            event = JSON.parse(line) as WatchEvent;
          } catch {
            request.destroy(new Error(`watch ${req.path}: an event is not JSON: ${line.slice(0, 200)}`));
            return;
          }
          onEvent(event);
        }
      });
      res.on('error', reject);
      res.on('end', () => resolve());
      res.on('aborted', () => reject(new Error(`watch ${req.path}: the stream was cut`)));
    });
    request.on('socket', (socket) => socket.setKeepAlive(true, 15_000));
    request.setTimeout(req.idleTimeoutMs, () =>
      request.destroy(new Error(`watch ${req.path}: no data for ${req.idleTimeoutMs} ms`)),
    );
    request.on('error', reject);
    request.end();
  });
}

/** One line for a log or a message: the status code and the server's words, or the error's message. */
export function describeKubeError(err: unknown): string {
  if (err instanceof KubeApiError) return err.message;
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}${code && !err.message.includes(code) ? ` (${code})` : ''}${cause}`;
  }
  if (isRecord(err) && typeof err.message === 'string') return err.message;
  return String(err);
}
