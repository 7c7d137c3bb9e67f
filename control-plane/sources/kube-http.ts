// Plain JSON requests to the Kubernetes API server, authenticated from a KubeConfig (token, client
// certificate, exec plugin, in-cluster service account: whatever `applyToHTTPSOptions` applies).
//
// Why not the generated clients of @kubernetes/client-node: they turn lists into class instances (dates
// become Date objects, unknown fields are dropped) while the watch hands over the JSON as it came. The
// mesh model must see one representation whatever path an object took (a relisted object must compare
// equal to the watched one), so KubeSource lists with plain JSON too, and the status writer patches with
// an explicit content type.
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

/** A non-2xx answer. `statusCode` (and `code`) are what client-node's ListWatch reads to spot 410 Gone. */
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

/** Sends one request and parses the JSON answer; rejects with KubeApiError for a non-2xx status. */
export async function kubeRequest<T>(kubeConfig: KubeConfig, req: KubeRequest): Promise<T> {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const url = new URL(cluster.server.replace(/\/+$/, '') + req.path);
  for (const [key, value] of Object.entries(req.query ?? {})) {
    if (value !== undefined) url.searchParams.set(key, value);
  }
  const options: https.RequestOptions = { method: req.method ?? 'GET', headers: { accept: 'application/json' } };
  await kubeConfig.applyToHTTPSOptions(options);
  const payload = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
  options.headers = {
    ...options.headers,
    ...(payload
      ? { 'content-type': req.contentType ?? 'application/json', 'content-length': String(payload.length) }
      : {}),
  };
  if (req.signal) options.signal = req.signal;
  const timeoutMs = req.timeoutMs ?? 60_000;
  const client = url.protocol === 'http:' ? http : https;
  if (url.protocol === 'http:') delete options.agent; // an https.Agent cannot carry plain HTTP

  return new Promise<T>((resolve, reject) => {
    const request = client.request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown;
        try {
          body = text === '' ? undefined : JSON.parse(text);
        } catch {
          body = undefined;
        }
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          resolve(body as T);
          return;
        }
        // A metav1.Status names the reason; anything else (a proxy's page) is quoted briefly.
        const message = isRecord(body) && typeof body.message === 'string' ? body.message : text.slice(0, 200);
        const reason = isRecord(body) && typeof body.reason === 'string' ? body.reason : undefined;
        reject(
          new KubeApiError(
            `${options.method} ${req.path}: ${status} ${http.STATUS_CODES[status] ?? ''}: ${message}`.trim(),
            status,
            reason,
          ),
        );
      });
    });
    request.setTimeout(timeoutMs, () => request.destroy(new Error(`${options.method} ${req.path}: timed out`)));
    request.on('error', reject);
    request.end(payload);
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
