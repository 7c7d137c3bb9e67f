// Per-stream caps, so that one misbehaving client cannot starve the others (issue 16): a token bucket on
// requests, a cap on the resource names subscribed per type, and (enforced by grpc-js, configured in
// ads-server.ts) a cap on the size of one request. A stream over a cap ends with RESOURCE_EXHAUSTED and a
// message naming the limit and its flag. (No gRPC import: the CLI reads the defaults before loading it.)
import { systemClock, type Clock } from './clock.js';

export interface StreamLimits {
  /** Sustained requests per second per stream (token bucket refill rate). */
  readonly requestsPerSecond: number;
  /** Requests a stream may send at once before the rate applies (bucket size). */
  readonly requestBurst: number;
  /** Resource names one stream may subscribe to per type. */
  readonly maxSubscriptionNames: number;
  /** Largest request accepted, in bytes (grpc max receive message length). */
  readonly maxRequestBytes: number;
}

/**
 * Defaults: an Envoy sends a few requests per push (one ACK per type), so 100/s with a burst of 1,000 (a
 * connect subscribes to every type and may ACK a backlog at once) is far above normal use; 20,000 names per
 * type is above the largest unscoped configs reported for Istio (3,186 clusters); 4 MiB is the grpc default
 * receive limit and istiod's.
 */
export const defaultStreamLimits: StreamLimits = {
  requestsPerSecond: 100,
  requestBurst: 1_000,
  maxSubscriptionNames: 20_000,
  maxRequestBytes: 4 * 1024 * 1024,
};

export type LimitName = 'requests-per-second' | 'subscription-names' | 'message-bytes';

/** A client went over a cap: the stream ends with RESOURCE_EXHAUSTED and this message. */
export class LimitExceeded extends Error {
  constructor(
    readonly limit: LimitName,
    message: string,
  ) {
    super(message);
    this.name = 'LimitExceeded';
  }
}

/** A token bucket: `capacity` tokens, refilled at `ratePerSecond`; `take()` spends one if there is one. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly capacity: number,
    private readonly clock: Clock = systemClock,
  ) {
    this.tokens = capacity;
    this.last = clock.now();
  }

  take(): boolean {
    const now = this.clock.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) * this.ratePerSecond) / 1000);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** Throws LimitExceeded when a stream would hold more than the cap of names for one type. */
export function checkSubscriptionSize(limits: StreamLimits, typeUrl: string, names: number): void {
  if (names <= limits.maxSubscriptionNames) return;
  throw new LimitExceeded(
    'subscription-names',
    `subscription limit exceeded: ${names} resource names for ${typeUrl}, at most ${limits.maxSubscriptionNames} per type (--xds-max-subscription-names)`,
  );
}

export function rateExceeded(limits: StreamLimits): LimitExceeded {
  return new LimitExceeded(
    'requests-per-second',
    `request rate limit exceeded: more than ${limits.requestsPerSecond} requests per second (burst ${limits.requestBurst}) on one stream (--xds-max-requests-per-second)`,
  );
}

/**
 * The size of each request as it arrived, recorded by the ADS deserializers (ads-server.ts): grpc-js
 * refuses a request over its own receive cap before any handler sees it, with a status that names no flag
 * and counts nowhere, so its cap is set above ours (hardRequestCap) and ours is checked here.
 */
const requestSizes = new WeakMap<object, number>();

/** Wraps a deserializer so that the size of each request it decodes is known (checkRequestSize). */
export function measured<T extends object>(deserialize: (bytes: Buffer) => T): (bytes: Buffer) => T {
  return (bytes) => {
    const message = deserialize(bytes);
    requestSizes.set(message, bytes.byteLength);
    return message;
  };
}

/** The receive cap given to grpc-js: requests above it are refused by gRPC itself, unread. */
export function hardRequestCap(limits: StreamLimits): number {
  return Math.min(2 * limits.maxRequestBytes, limits.maxRequestBytes + 4 * 1024 * 1024);
}

/** Throws LimitExceeded when a request decoded by a `measured` deserializer was over the cap. */
export function checkRequestSize(limits: StreamLimits, request: object): void {
  const size = requestSizes.get(request);
  if (size === undefined || size <= limits.maxRequestBytes) return;
  throw new LimitExceeded(
    'message-bytes',
    `message size limit exceeded: a request of ${size} bytes, at most ${limits.maxRequestBytes} (--xds-max-request-bytes)`,
  );
}
