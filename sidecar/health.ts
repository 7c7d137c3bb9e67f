// The agent's health port (15021, design.md §4): `/healthz/ready` answers 200 once the workload has a
// certificate and the local xDS proxy reached the control plane (503 with the reason before that), and
// `/metrics` serves the agent's Prometheus registry (certificate expiry, renewals, relayed streams).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../control-plane/logger.js';
import { runAppProbe, type AppProbes } from './app-probes.js';

export interface HealthTargets {
  /** undefined when ready; otherwise why not (shown in the 503 body). */
  readonly notReadyReason: () => string | undefined;
  readonly registry: Registry;
  readonly logger: Logger;
  /** The application's probes rewritten by the injector (`/app-health/...`, app-probes.ts). */
  readonly appProbes?: AppProbes;
}

export class HealthServer {
  private readonly server: http.Server;

  constructor(private readonly targets: HealthTargets) {
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        targets.logger.error({ err, url: req.url }, 'health request failed');
        if (!res.headersSent) res.writeHead(500).end(String(err));
      });
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/healthz/ready') {
      const reason = this.targets.notReadyReason();
      res
        .writeHead(reason === undefined ? 200 : 503, { 'content-type': 'text/plain' })
        .end(reason === undefined ? 'ready\n' : `not ready: ${reason}\n`);
      return;
    }
    if (url.pathname === '/metrics') {
      const registry = this.targets.registry;
      res.writeHead(200, { 'content-type': registry.contentType }).end(await registry.metrics());
      return;
    }
    const probe = this.targets.appProbes?.get(url.pathname);
    if (probe) {
      const { status, body } = await runAppProbe(probe);
      res.writeHead(status, { 'content-type': 'text/plain' }).end(body);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  }

  /** Binds `host:port` (0: a free port) and returns the bound port. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }
}
