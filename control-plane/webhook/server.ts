// The HTTPS server of the control plane's admission webhooks (design.md §4: port 15017). It routes
// AdmissionReview v1 POSTs by path to handlers; `/validate` (validate.ts) is there by default, and the
// injector adds its own. The certificate and its registration (ValidatingWebhookConfiguration with
// caBundle) come from the injector's installation; tests use the cluster CA (test/helpers/cluster.ts).
//
// The API server sends at most a few MiB and waits `timeoutSeconds` (10 s by default): bodies above 8 MiB
// are refused, a request that takes more than 15 s is cut. An idle connection stays open 120 s, longer than
// the API server keeps one (WEBHOOK_IDLE_TIMEOUT_MS). Answers are `application/json`; a body that is
// not an AdmissionReview v1 is a 400 with the reason (the API server then applies failurePolicy).
// With tracing on (lib/tracing.ts) every review is span `admission`: path, operation, kind, object, the
// verdict (allowed or denied, with the message) and, on `/inject`, whether a patch injected the sidecar.
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tracer } from '../../lib/tracing.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { parseAdmissionReview, validateAdmission, type AdmissionRequest, type AdmissionReview } from './validate.js';

export type AdmissionHandler = (request: AdmissionRequest) => AdmissionReview | Promise<AdmissionReview>;

export interface WebhookServerOptions {
  /** PEM certificate chain and key, or the files holding them (`certFile`/`keyFile`). */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly logger?: Logger;
  /** Handlers by path; `/validate` is validateAdmission unless given. */
  readonly handlers?: Readonly<Record<string, AdmissionHandler>>;
  /** How long an idle keep-alive connection stays open; default WEBHOOK_IDLE_TIMEOUT_MS. */
  readonly idleTimeoutMs?: number;
}

/**
 * 120 s: longer than the 90 s after which the API server's webhook client drops an idle connection
 * (k8s.io/apimachinery `SetTransportDefaults`, IdleConnTimeout), so the client always closes first. With
 * Node's default of 5 s the server closed connections the client was about to reuse, and the admission call
 * failed ("failed calling webhook … write: broken pipe"): the API server does not retry a POST.
 */
export const WEBHOOK_IDLE_TIMEOUT_MS = 120_000;

const MAX_BODY = 8 * 1024 * 1024;

export class WebhookServer {
  private readonly server: https.Server;
  private readonly logger: Logger;
  private readonly handlers: Map<string, AdmissionHandler>;
  private readonly certFile?: string;
  private readonly keyFile?: string;
  /** How long an idle keep-alive connection stays open (ms). */
  readonly idleTimeoutMs: number;

  constructor(options: WebhookServerOptions) {
    this.logger = options.logger ?? silentLogger;
    this.handlers = new Map(Object.entries({ '/validate': validateAdmission, ...options.handlers }));
    this.certFile = options.certFile;
    this.keyFile = options.keyFile;
    const cert = options.cert ?? (options.certFile ? fs.readFileSync(options.certFile) : undefined);
    const key = options.key ?? (options.keyFile ? fs.readFileSync(options.keyFile) : undefined);
    if (!cert || !key) throw new Error('the webhook server needs a certificate and a key');
    this.server = https.createServer({ cert, key, minVersion: 'TLSv1.2' }, (req, res) => {
      void this.serve(req, res);
    });
    this.server.requestTimeout = 15_000;
    this.server.headersTimeout = 15_000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? WEBHOOK_IDLE_TIMEOUT_MS;
    this.server.keepAliveTimeout = this.idleTimeoutMs;
  }

  /** Serves with this PEM chain and key from now on (a renewed certificate); new connections use them. */
  setCertificate(cert: string | Buffer, key: string | Buffer): void {
    this.server.setSecureContext({ cert, key, minVersion: 'TLSv1.2' });
  }

  /** Re-reads certFile/keyFile (after a rotation); new connections use them. */
  reloadCertificate(): void {
    if (!this.certFile || !this.keyFile) return;
    this.server.setSecureContext({ cert: fs.readFileSync(this.certFile), key: fs.readFileSync(this.keyFile) });
    this.logger.info({ certFile: this.certFile }, 'webhook certificate reloaded');
  }

  /** Listens; resolves with the port (0 picks a free one). */
  async listen(host: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const bound = (this.server.address() as AddressInfo).port;
    this.logger.info({ host, port: bound, paths: [...this.handlers.keys()] }, 'admission webhooks listening');
    return bound;
  }

  async close(): Promise<void> {
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async serve(
    req: import('node:http').IncomingMessage,
    res: import('node:http').ServerResponse,
  ): Promise<void> {
    const answer = (status: number, body: unknown): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    const path = new URL(req.url ?? '/', 'https://webhook').pathname;
    const handler = this.handlers.get(path);
    if (!handler) return answer(404, { error: `no webhook at ${path}` });
    if (req.method !== 'POST') return answer(405, { error: 'POST an AdmissionReview' });
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of req as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > MAX_BODY) return answer(413, { error: `body larger than ${MAX_BODY} bytes` });
        chunks.push(chunk);
      }
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'webhook: reading the request failed');
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch (err) {
      return answer(400, { error: `not JSON: ${(err as Error).message}` });
    }
    const { request, error } = parseAdmissionReview(body);
    if (!request) return answer(400, { error });
    const span = tracer().enabled
      ? tracer().startSpan('admission', {
          kind: 'server',
          attributes: {
            'trellis.admission.path': path,
            'trellis.admission.uid': request.uid,
            'trellis.admission.operation': request.operation,
            'trellis.admission.kind': request.kind?.kind,
            'trellis.admission.object': `${request.namespace ?? ''}/${request.name ?? ''}`,
            'trellis.admission.dry_run': request.dryRun === true,
          },
        })
      : undefined;
    try {
      const result = await handler(request);
      const response = result.response;
      if (span) {
        const patch = (response as { readonly patch?: unknown } | undefined)?.patch;
        span.setAttributes({
          'trellis.admission.verdict': response?.allowed === false ? 'denied' : 'allowed',
          'trellis.admission.message': response?.status?.message,
          ...(path === '/inject' ? { 'trellis.admission.injected': typeof patch === 'string' && patch !== '' } : {}),
        });
        span.end();
      }
      this.logger[response?.allowed === false ? 'info' : 'debug'](
        {
          path,
          uid: request.uid,
          operation: request.operation,
          kind: request.kind?.kind,
          object: `${request.namespace ?? ''}/${request.name ?? ''}`,
          allowed: response?.allowed,
          ...(response?.status ? { message: response.status.message } : {}),
        },
        'admission review',
      );
      answer(200, result);
    } catch (err) {
      span?.fail((err as Error).message);
      span?.end();
      this.logger.error({ path, uid: request.uid, err: (err as Error).message }, 'webhook handler failed');
      answer(500, { error: 'internal error' });
    }
  }
}
