// frontend: the entry of the example. It has no gRPC server; it is a client of reviews (and details), and
// it serves a plain HTTP admin port (never part of the mesh: the gRPC template captures no traffic) from
// which tests, the walkthrough and the demo drive calls without a mesh identity of their own:
//
//   GET /call?n=1000&concurrency=10&deadlineMs=5000&user=jason&product=p   → LoadSummary (load.ts) as JSON
//   GET /details?deadlineMs=5000                                            → one GetDetails result as JSON
//   GET /healthz                                                            → 200 ok
import * as grpc from '@grpc/grpc-js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../../control-plane/logger.js';
import { detailsService, reviewsService } from './api.js';
import { runLoad, type LoadOptions } from './load.js';
import { channelCredentials, targetFor, unary, type MeshMode } from './mesh.js';

export interface FrontendOptions {
  readonly mode: MeshMode;
  /** reviews and details as `<name>:<port>` (or full target URIs). */
  readonly reviews: string;
  readonly details: string;
  readonly adminHost: string;
  readonly adminPort: number;
  readonly pod: string;
  readonly logger: Logger;
}

export interface RunningFrontend {
  /** The admin port actually bound (adminPort 0 picks a free one). */
  readonly adminPort: number;
  close(): Promise<void>;
}

const ReviewsClient = grpc.makeGenericClientConstructor(reviewsService, 'Reviews');
const DetailsClient = grpc.makeGenericClientConstructor(detailsService, 'Details');

export const LIMITS = { n: 100_000, concurrency: 500, deadlineMs: 600_000 } as const;

class BadRequest extends Error {}

function intParam(params: URLSearchParams, name: keyof typeof LIMITS, fallback: number): number {
  const raw = params.get(name);
  if (raw === null || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > LIMITS[name]) {
    throw new BadRequest(`${name}: must be an integer from 1 to ${LIMITS[name]}, not "${raw}"`);
  }
  return value;
}

/** The load options of a `/call` query string (defaults: 100 calls, 10 at a time, 5 s deadline). */
export function loadOptions(params: URLSearchParams): LoadOptions {
  return {
    n: intParam(params, 'n', 100),
    concurrency: intParam(params, 'concurrency', 10),
    deadlineMs: intParam(params, 'deadlineMs', 5_000),
    user: params.get('user') ?? '',
    product: params.get('product') ?? 'the-book',
    records: params.get('records') === '1',
  };
}

export async function startFrontend(options: FrontendOptions): Promise<RunningFrontend> {
  const credentials = channelCredentials(options.mode);
  const reviews = new ReviewsClient(targetFor(options.reviews, options.mode), credentials);
  const details = new DetailsClient(targetFor(options.details, options.mode), credentials);
  const send = (res: http.ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(`${JSON.stringify(body, null, 2)}\n`);
  };
  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://frontend');
    if (req.method !== 'GET') return send(res, 405, { error: 'only GET' });
    switch (url.pathname) {
      case '/healthz':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ok\n');
        return;
      case '/call':
        return send(res, 200, await runLoad(reviews, loadOptions(url.searchParams)));
      case '/details': {
        const r = await unary(
          details,
          detailsService.GetDetails,
          { product: 'the-book' },
          {
            deadline: Date.now() + intParam(url.searchParams, 'deadlineMs', 5_000),
          },
        );
        return send(res, 200, r.ok ? r : { ok: false, code: grpc.status[r.code], details: r.details });
      }
      case '/':
        return send(res, 200, {
          pod: options.pod,
          mode: options.mode,
          reviews: targetFor(options.reviews, options.mode),
          details: targetFor(options.details, options.mode),
          endpoints: ['/call?n=&concurrency=&deadlineMs=&user=&product=', '/details?deadlineMs=', '/healthz'],
        });
      default:
        return send(res, 404, { error: `no ${url.pathname}` });
    }
  };
  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof BadRequest) send(res, 400, { error: err.message });
      else {
        options.logger.error({ err }, 'admin request failed');
        send(res, 500, { error: String(err) });
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.adminPort, options.adminHost, () => resolve());
  });
  const adminPort = (server.address() as AddressInfo).port;
  options.logger.info(
    {
      admin: `${options.adminHost}:${adminPort}`,
      reviews: targetFor(options.reviews, options.mode),
      mode: options.mode,
    },
    'frontend admin listening',
  );
  return {
    adminPort,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      reviews.close();
      details.close();
    },
  };
}
