// The monitoring port (15014): `/healthz` (the process is up), `/readyz` (the first full config is loaded
// and the xDS port listens), `/metrics` (Prometheus) and `/debug/*` (what each proxy was sent and what it
// ACKed or NACKed; a proxy's current config as proto3 JSON).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { configDump, publicSecret } from './config-dump.js';
import { anyToJson, decodeAny, shortTypeName, TypeUrl } from './envoy/protos.js';
import type { AuthzChecker } from './authz/checker.js';
import type { InspectError, MeshInspector } from './inspect/inspector.js';
import type { Logger } from './logger.js';
import type { XdsMetrics } from './metrics.js';
import type { AdsServer } from './xds/ads-server.js';
import type { PushController } from './xds/push-controller.js';

export interface MonitoringTargets {
  readonly metrics: XdsMetrics;
  readonly ads: AdsServer;
  readonly controller: PushController<unknown>;
  readonly ready: () => boolean;
  readonly logger: Logger;
  /** Mesh mode: `/debug/describe` and `/debug/diff` (inspect/inspector.ts). */
  readonly inspector?: MeshInspector;
  /** Mesh mode: `/debug/authz` (authz/checker.ts, `trellis authz check`). */
  readonly authz?: AuthzChecker;
}

/** Largest `/debug/diff` body read. */
const MAX_DIFF_BODY = 1 << 20;

/** The body as text, or undefined when it is longer than `limit` (the rest is read and dropped, so a 413 can be sent). */
function readBody(req: http.IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
    });
    req.on('end', () => resolve(size > limit ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function isInspectError(err: unknown): err is InspectError {
  return err instanceof Error && err.name === 'InspectError';
}

/** Whether a peer address is loopback: `/debug/*` reveals proxies' config and answers nobody else (design.md §5.8). */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
  return address === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body, null, 2) + '\n');
}

export class MonitoringServer {
  private readonly server: http.Server;

  constructor(private readonly targets: MonitoringTargets) {
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        targets.logger.error({ err, url: req.url }, 'monitoring request failed');
        if (!res.headersSent) json(res, 500, { error: String(err) });
      });
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname.startsWith('/debug/') && !isLoopback(req.socket.remoteAddress)) {
      json(res, 403, { error: '/debug/* answers on loopback only (kubectl port-forward reaches it)' });
      return;
    }
    switch (url.pathname) {
      case '/healthz':
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        return;
      case '/readyz': {
        const ready = this.targets.ready();
        res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'not ready\n');
        return;
      }
      case '/metrics': {
        const registry = this.targets.metrics.registry;
        res.writeHead(200, { 'content-type': registry.contentType }).end(await registry.metrics());
        return;
      }
      case '/debug/proxies':
        json(res, 200, this.targets.ads.status());
        return;
      case '/debug/config': {
        const id = url.searchParams.get('proxy');
        const stream = [...this.targets.controller.streams].find((s) => s.proxy?.id === id);
        if (!stream?.proxy) {
          json(res, 404, { error: `no connected proxy with id ${JSON.stringify(id)}` });
          return;
        }
        // What the proxy was handed, not a fresh generation: the two differ while a push is pending.
        const config = stream.config;
        const out: Record<string, unknown> = {};
        for (const [typeUrl, set] of config?.sets ?? []) {
          out[shortTypeName(typeUrl)] = {
            version: set.version,
            // Secrets as in config_dump: name and public certificates, never a private key.
            resources: [...set.byName.values()].map((r) => ({
              version: r.version,
              resource: typeUrl === TypeUrl.Secret ? publicSecret(r) : anyToJson(decodeAny(r.any)),
            })),
          };
        }
        json(res, 200, { proxy: stream.proxy.id, hash: config?.hash, config: out });
        return;
      }
      case '/debug/config_dump': {
        const id = url.searchParams.get('proxy');
        const stream = [...this.targets.controller.streams].find((s) => s.proxy?.id === id);
        const statuses = this.targets.ads.status().filter((s) => s.node?.id === id);
        const status = statuses.find((s) => s.configHash === stream?.configHash) ?? statuses[0];
        if (!stream?.proxy || !status) {
          json(res, 404, { error: `no connected proxy with id ${JSON.stringify(id)}` });
          return;
        }
        json(res, 200, configDump(stream.config, status.types));
        return;
      }
      case '/debug/authz': {
        const authz = this.targets.authz;
        if (!authz) {
          json(res, 404, { error: '/debug/authz needs a mesh (--config-dir or Kubernetes mode)' });
          return;
        }
        try {
          json(res, 200, authz.check(url.searchParams));
        } catch (err) {
          if (!(err instanceof Error && err.name === 'AuthzCheckError')) throw err;
          json(res, (err as Error & { status: number }).status, { error: err.message });
        }
        return;
      }
      case '/debug/describe':
      case '/debug/analyze':
      case '/debug/diff': {
        const inspector = this.targets.inspector;
        if (!inspector) {
          json(res, 404, { error: `${url.pathname} needs a mesh (--config-dir or Kubernetes mode)` });
          return;
        }
        try {
          if (url.pathname === '/debug/describe') {
            const q = url.searchParams;
            json(res, 200, inspector.describe(q.get('kind'), q.get('name'), q.get('namespace')));
            return;
          }
          if (url.pathname === '/debug/analyze') {
            json(res, 200, inspector.analyze(url.searchParams.getAll('namespace')));
            return;
          }
          if (req.method !== 'POST') {
            json(res, 405, { error: 'POST the change (YAML) as the body' });
            return;
          }
          const body = await readBody(req, MAX_DIFF_BODY);
          if (body === undefined) {
            json(res, 413, { error: `the change is larger than ${MAX_DIFF_BODY} bytes` });
            return;
          }
          json(res, 200, await inspector.diff(body));
        } catch (err) {
          if (!isInspectError(err)) throw err;
          json(res, err.status, { error: err.message });
        }
        return;
      }
      default:
        json(res, 404, {
          error: 'not found',
          paths: [
            '/healthz',
            '/readyz',
            '/metrics',
            '/debug/proxies',
            '/debug/config?proxy=ID',
            '/debug/config_dump?proxy=ID',
            '/debug/describe?kind=pod|service&name=NAME&namespace=NS',
            '/debug/diff (POST a change)',
            '/debug/analyze[?namespace=NS]',
            '/debug/authz?from=SPIFFE_ID&to=SERVICE[:PORT]&path=PATH',
          ],
        });
    }
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve((this.server.address() as AddressInfo).port));
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }
}
