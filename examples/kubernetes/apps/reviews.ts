// reviews: answers GetReviews with its own pod and version (v1, v2, v3: one Deployment each, the same code),
// the caller's SPIFFE ID, and the rating it fetched from ratings for this call. When the ratings call fails
// (after whatever retries the mesh made), reviews still answers, without stars, and says why in
// `ratingError` (as bookinfo's reviews does): so a ratings failure never turns into a reviews failure that
// the frontend's own retry policy would retry, and the frontend sees exactly what a retry policy or a
// timeout on ratings did. The ratings call inherits the incoming call's deadline.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../../control-plane/logger.js';
import { ratingsService, reviewsService, type ReviewsReply, type ReviewsRequest } from './api.js';
import {
  attemptOf,
  callerIdentity,
  channelCredentials,
  serve,
  targetFor,
  unary,
  type MeshMode,
  type RunningServer,
} from './mesh.js';

export interface ReviewsOptions {
  readonly mode: MeshMode;
  readonly host: string;
  readonly port: number;
  readonly pod: string;
  readonly version: string;
  /** ratings as `<name>:<port>` (or a full target URI). */
  readonly ratings: string;
  readonly logger: Logger;
}

const RatingsClient = grpc.makeGenericClientConstructor(ratingsService, 'Ratings');

export async function startReviews(options: ReviewsOptions): Promise<RunningServer> {
  const ratings = new RatingsClient(targetFor(options.ratings, options.mode), channelCredentials(options.mode));
  const server = await serve(
    options.mode,
    options.host,
    options.port,
    reviewsService,
    {
      GetReviews: (
        call: grpc.ServerUnaryCall<ReviewsRequest, ReviewsReply>,
        callback: grpc.sendUnaryData<ReviewsReply>,
      ) => {
        const deadline = call.getDeadline();
        const started = performance.now();
        void unary(
          ratings,
          ratingsService.GetRating,
          { product: call.request.product ?? '' },
          {
            deadline: deadline === Infinity ? Date.now() + 10_000 : deadline,
          },
        ).then((rating) => {
          const base = {
            pod: options.pod,
            version: options.version,
            caller: callerIdentity(call),
            attempt: attemptOf(call),
            ratingMs: Math.round((performance.now() - started) * 10) / 10,
          };
          callback(
            null,
            rating.ok
              ? { ...base, rating: rating.reply, ratingsServer: rating.server }
              : {
                  ...base,
                  ratingError: {
                    code: grpc.status[rating.code] ?? String(rating.code),
                    details: rating.details,
                    retries: rating.retries,
                  },
                  ratingsServer: '',
                },
          );
        });
      },
    },
    options.logger,
  );
  options.logger.info({ ratings: targetFor(options.ratings, options.mode) }, 'reviews calls ratings');
  return {
    address: server.address,
    close: async () => {
      await server.close();
      ratings.close();
    },
  };
}
