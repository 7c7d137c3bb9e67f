// ratings: answers GetRating with a number of stars, the caller's SPIFFE ID, its own pod and version, and
// the attempt number (so a retry is visible). Failures and delays can be injected for the retry and
// timeout examples: `failEvery: n` fails every n-th call (1st, n+1-th, …) with UNAVAILABLE, counted per
// process, so consecutive calls alternate deterministically; `delayMs` answers late.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../../control-plane/logger.js';
import { ratingsService, type RatingReply, type RatingRequest } from './api.js';
import { attemptOf, callerIdentity, serve, type MeshMode, type RunningServer } from './mesh.js';

export interface RatingsOptions {
  readonly mode: MeshMode;
  readonly host: string;
  readonly port: number;
  readonly pod: string;
  readonly version: string;
  /** Fail every n-th call with UNAVAILABLE (0: never). */
  readonly failEvery: number;
  /** Answer after this many milliseconds (0: at once). */
  readonly delayMs: number;
  readonly logger: Logger;
}

/** Stars per product: a fixed function of the name, so every version agrees. */
export function starsFor(product: string): number {
  let h = 0;
  for (const c of product) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return 1 + (h % 5);
}

export async function startRatings(options: RatingsOptions): Promise<RunningServer> {
  let calls = 0;
  const timers = new Set<NodeJS.Timeout>();
  const server = await serve(
    options.mode,
    options.host,
    options.port,
    ratingsService,
    {
      GetRating: (
        call: grpc.ServerUnaryCall<RatingRequest, RatingReply>,
        callback: grpc.sendUnaryData<RatingReply>,
      ) => {
        calls++;
        if (options.failEvery > 0 && calls % options.failEvery === 1 % options.failEvery) {
          callback({
            code: grpc.status.UNAVAILABLE,
            details: `${options.pod}: injected failure (fail every ${options.failEvery})`,
          });
          return;
        }
        const reply: RatingReply = {
          stars: starsFor(call.request.product ?? ''),
          pod: options.pod,
          version: options.version,
          caller: callerIdentity(call),
          attempt: attemptOf(call),
        };
        if (options.delayMs <= 0) {
          callback(null, reply);
          return;
        }
        const timer = setTimeout(() => {
          timers.delete(timer);
          callback(null, reply);
        }, options.delayMs);
        timers.add(timer);
      },
    },
    options.logger,
  );
  return {
    address: server.address,
    close: async () => {
      for (const t of timers) clearTimeout(t);
      await server.close();
    },
  };
}
