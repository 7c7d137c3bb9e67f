// Per-route configuration of the HTTP filters every HCM carries (envoy-translation.md §2.7): a
// VirtualService's `fault` becomes an HTTPFault for `envoy.filters.http.fault`, its `corsPolicy` a
// CorsPolicy for `envoy.filters.http.cors`. Both are keyed by the filter's name in the HCM.
import { create } from '@bufbuild/protobuf';
import type { Any } from '@bufbuild/protobuf/wkt';
import { durationToMs } from '../../crds/duration.js';
import { GRPC_STATUS_NAMES } from '../../crds/schema.js';
import type { CorsPolicy, HTTPFaultInjection } from '../../crds/types.js';
import { CorsPolicySchema } from '../envoy/gen/envoy/extensions/filters/http/cors/v3/cors_pb.js';
import { FaultDelaySchema } from '../envoy/gen/envoy/extensions/filters/common/fault/v3/fault_pb.js';
import {
  FaultAbortSchema,
  HTTPFaultSchema,
  type HTTPFault,
} from '../envoy/gen/envoy/extensions/filters/http/fault/v3/fault_pb.js';
import { packAny } from '../envoy/protos.js';
import { CORS_FILTER, FAULT_FILTER } from './http-connection-manager.js';
import {
  duration,
  HUNDRED_PERCENT,
  isPositive,
  millionths,
  stringMatcher,
  type StringMatcherInit,
} from './route-values.js';

/**
 * The HTTPFault of a VirtualService fault, or undefined when nothing would be injected. The percentage
 * is always written (grpc-js refuses a fault without one); unset means every request, as in Istio.
 * `grpcStatus` is sent as its numeric code. A zero delay is dropped (Envoy requires fixed_delay > 0).
 */
export function faultConfig(fault: HTTPFaultInjection | undefined): HTTPFault | undefined {
  if (fault === undefined) return undefined;
  const message = create(HTTPFaultSchema);
  const delay = duration(fault.delay?.fixedDelay);
  if (fault.delay && isPositive(delay)) {
    message.delay = create(FaultDelaySchema, {
      faultDelaySecifier: { case: 'fixedDelay', value: delay },
      percentage: millionths(fault.delay.percentage?.value),
    });
  }
  const abort = fault.abort;
  if (abort) {
    const code =
      abort.grpcStatus === undefined
        ? -1
        : GRPC_STATUS_NAMES.indexOf(abort.grpcStatus as (typeof GRPC_STATUS_NAMES)[number]);
    const errorType =
      abort.httpStatus !== undefined
        ? ({ case: 'httpStatus', value: abort.httpStatus } as const)
        : code >= 0
          ? ({ case: 'grpcStatus', value: code } as const)
          : undefined;
    if (errorType) {
      message.abort = create(FaultAbortSchema, {
        errorType,
        percentage: millionths(abort.percentage?.value),
      });
    }
  }
  return message.delay || message.abort ? message : undefined;
}

function seconds(value: string | undefined): string | undefined {
  const ms = value === undefined ? undefined : durationToMs(value);
  return ms === undefined ? undefined : String(Math.floor(ms / 1000));
}

/**
 * The CORS filter's per-route policy (Istio's `translateCORSPolicy`): origins as string matchers, lists
 * comma-joined, max age in seconds; enabled for every request, and preflights that match no origin are
 * forwarded to the application (Istio's default `unmatchedPreflights: FORWARD`).
 */
export function corsConfig(cors: CorsPolicy | undefined): Any | undefined {
  if (cors === undefined) return undefined;
  const origins = (cors.allowOrigins ?? [])
    .map((o) => stringMatcher(o))
    .filter((m): m is StringMatcherInit => m !== undefined);
  const maxAge = seconds(cors.maxAge);
  return packAny(
    create(CorsPolicySchema, {
      allowOriginStringMatch: origins,
      allowMethods: (cors.allowMethods ?? []).join(','),
      allowHeaders: (cors.allowHeaders ?? []).join(','),
      exposeHeaders: (cors.exposeHeaders ?? []).join(','),
      ...(maxAge !== undefined ? { maxAge } : {}),
      ...(cors.allowCredentials !== undefined ? { allowCredentials: cors.allowCredentials } : {}),
      filterEnabled: { defaultValue: HUNDRED_PERCENT },
      forwardNotMatchingPreflights: true,
    }),
  );
}

export interface PerFilterOptions {
  /** Proxyless gRPC: no CORS (grpc-js has no such filter and NACKs a config it cannot parse). */
  readonly proxyless: boolean;
}

/** `typed_per_filter_config` of a route: fault and, for sidecars, CORS. */
export function perFilterConfig(
  fault: HTTPFaultInjection | undefined,
  cors: CorsPolicy | undefined,
  options: PerFilterOptions,
): Record<string, Any> {
  const out: Record<string, Any> = {};
  const f = faultConfig(fault);
  if (f) out[FAULT_FILTER] = packAny(f);
  const c = options.proxyless ? undefined : corsConfig(cors);
  if (c) out[CORS_FILTER] = c;
  return out;
}
