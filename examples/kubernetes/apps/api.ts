// The example application's three gRPC services, defined by hand: `trellis.examples.Ratings/GetRating`,
// `trellis.examples.Reviews/GetReviews` and `trellis.examples.Details/GetDetails`. Messages travel as JSON
// (as examples/demo/echo.ts does), so no .proto file or code generator is needed and every field is typed
// here. Every reply says who answered (`pod`, `version`) and who called (`caller`: the SPIFFE ID of the
// client certificate the server saw, '' without mutual TLS), so a test can see both the subset a call went
// to and the identities of mTLS.
import type * as grpc from '@grpc/grpc-js';

export interface RatingRequest {
  readonly product: string;
}

export interface RatingReply {
  readonly stars: number;
  readonly pod: string;
  readonly version: string;
  /** The caller's SPIFFE ID from its client certificate; '' on a plaintext connection. */
  readonly caller: string;
  /** 1 for a first attempt; n + 1 when the client's retry policy sent `grpc-previous-rpc-attempts: n`. */
  readonly attempt: number;
}

export interface ReviewsRequest {
  readonly product: string;
}

export interface ReviewsReply {
  readonly pod: string;
  readonly version: string;
  readonly caller: string;
  readonly attempt: number;
  /** The rating reviews fetched from ratings for this call; absent when that call failed. */
  readonly rating?: RatingReply;
  /** Why there is no rating: the status of the failed ratings call (reviews still answers, without stars). */
  readonly ratingError?: {
    readonly code: string;
    readonly details: string;
    /** Retries the mesh made before the ratings call failed (grpc-previous-rpc-attempts of its status). */
    readonly retries: number;
  };
  /** How long the ratings call took, as reviews measured it (ms). */
  readonly ratingMs: number;
  /** The SPIFFE ID of the ratings server's certificate, as reviews saw it; '' in plaintext or without a rating. */
  readonly ratingsServer: string;
}

export interface DetailsRequest {
  readonly product: string;
}

export interface DetailsReply {
  readonly pod: string;
  readonly version: string;
  readonly caller: string;
  readonly pages: number;
}

function jsonMethod<Req, Res>(path: string): grpc.MethodDefinition<Req, Res> {
  return {
    path,
    requestStream: false,
    responseStream: false,
    requestSerialize: (value: Req) => Buffer.from(JSON.stringify(value)),
    requestDeserialize: (bytes: Buffer) => JSON.parse(bytes.toString('utf8')) as Req,
    responseSerialize: (value: Res) => Buffer.from(JSON.stringify(value)),
    responseDeserialize: (bytes: Buffer) => JSON.parse(bytes.toString('utf8')) as Res,
  };
}

export const ratingsService = {
  GetRating: jsonMethod<RatingRequest, RatingReply>('/trellis.examples.Ratings/GetRating'),
} satisfies grpc.ServiceDefinition;

export const reviewsService = {
  GetReviews: jsonMethod<ReviewsRequest, ReviewsReply>('/trellis.examples.Reviews/GetReviews'),
} satisfies grpc.ServiceDefinition;

export const detailsService = {
  GetDetails: jsonMethod<DetailsRequest, DetailsReply>('/trellis.examples.Details/GetDetails'),
} satisfies grpc.ServiceDefinition;

/** The ports the example's Services use (each app takes `--port` to change its own). */
export const PORTS = { ratings: 9080, reviews: 9080, details: 9080, frontendAdmin: 8080 } as const;
