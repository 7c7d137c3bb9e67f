// VirtualService `retries` → Envoy RetryPolicy (envoy-translation.md §2.5, Istio `core/route/retry/retry.go`).
import type { HTTPRetry } from '../../crds/types.js';
import type { RetryPolicySchema } from '../envoy/gen/envoy/config/route/v3/route_components_pb.js';
import { PreviousHostsPredicateSchema } from '../envoy/gen/envoy/extensions/retry/host/previous_hosts/v3/previous_hosts_pb.js';
import { PreviousPrioritiesConfigSchema } from '../envoy/gen/envoy/extensions/retry/priority/previous_priorities/v3/previous_priorities_config_pb.js';
import { create } from '@bufbuild/protobuf';
import { packAny } from '../envoy/protos.js';
import { duration, isPositive, type InitOf } from './route-values.js';

export type RetryPolicyInit = InitOf<typeof RetryPolicySchema>;

/** Istio's default `retry_on` (503 left `retriable_status_codes` in Istio 1.24). */
export const DEFAULT_RETRY_ON = 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes';
export const DEFAULT_NUM_RETRIES = 2;
/** How often Envoy re-picks a host that the host predicate rejected (Istio's value). */
const HOST_SELECTION_RETRY_MAX_ATTEMPTS = 5n;
const PREVIOUS_HOSTS_PREDICATE = 'envoy.retry_host_predicates.previous_hosts';
const PREVIOUS_PRIORITIES = 'envoy.retry_priorities.previous_priorities';
/** Istio's value: recompute the priority load after every attempt, so each retry may go to another locality. */
const PRIORITY_UPDATE_FREQUENCY = 2;

/** The retry conditions grpc-js acts on (resolver-xds.ts); it ignores every other token. */
export const GRPC_RETRY_ON = new Set([
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
]);

export interface RetryOptions {
  /** Proxyless gRPC: only gRPC conditions, no host predicate (grpc-js has none). */
  readonly proxyless: boolean;
  /** The destination hashes (consistent hash): retrying on another host would defeat it (Istio). */
  readonly consistentHash: boolean;
}

interface ParsedRetryOn {
  readonly conditions: string[];
  readonly statusCodes: number[];
}

/**
 * `retryOn` split on commas and trimmed (Envoy silently ignores tokens with spaces, envoy#10717); HTTP
 * status codes become `retriable_status_codes` plus the `retriable-status-codes` condition (Istio).
 */
export function parseRetryOn(retryOn: string): ParsedRetryOn {
  const conditions: string[] = [];
  const statusCodes: number[] = [];
  for (const raw of retryOn.split(',')) {
    const token = raw.trim();
    if (token === '') continue;
    if (/^[0-9]+$/.test(token)) {
      const code = Number(token);
      if (!statusCodes.includes(code)) statusCodes.push(code);
    } else if (!conditions.includes(token)) {
      conditions.push(token);
    }
  }
  if (statusCodes.length > 0 && !conditions.includes('retriable-status-codes'))
    conditions.push('retriable-status-codes');
  return { conditions, statusCodes };
}

/**
 * The retry policy of a route, or undefined for none. Unset `retries` gets Istio's default policy
 * (2 retries on connection failures and UNAVAILABLE/CANCELLED); `attempts: 0` turns retries off.
 * `retryRemoteLocalities` and the previous-hosts predicate (off with `retryIgnorePreviousHosts: false`) are
 * Envoy's (grpc-js has neither); `backoff` is `retry_back_off.base_interval` for both.
 * For proxyless gRPC, a policy whose conditions are all HTTP ones would make grpc-js retry nothing, so
 * it is left out; grpc-js also NACKs `num_retries: 0`, which `attempts: 0` never produces here.
 */
export function retryPolicy(retries: HTTPRetry | undefined, options: RetryOptions): RetryPolicyInit | undefined {
  if (retries !== undefined && retries.attempts <= 0) return undefined;
  const parsed = parseRetryOn(retries?.retryOn ?? DEFAULT_RETRY_ON);
  let conditions = parsed.conditions;
  let statusCodes = parsed.statusCodes;
  if (options.proxyless) {
    conditions = conditions.filter((c) => GRPC_RETRY_ON.has(c));
    statusCodes = [];
    if (conditions.length === 0) return undefined;
  }
  const policy: RetryPolicyInit = {
    retryOn: conditions.join(','),
    numRetries: retries?.attempts ?? DEFAULT_NUM_RETRIES,
    retriableStatusCodes: statusCodes,
  };
  const perTry = duration(retries?.perTryTimeout);
  if (isPositive(perTry)) policy.perTryTimeout = perTry;
  // Istio's `backoff`: the base interval only; Envoy (and grpc-js) make the maximum 10 × base.
  const backoff = duration(retries?.backoff);
  if (isPositive(backoff)) policy.retryBackOff = { baseInterval: backoff };
  if (options.proxyless) return policy;
  policy.hostSelectionRetryMaxAttempts = HOST_SELECTION_RETRY_MAX_ATTEMPTS;
  if (retries?.retryRemoteLocalities === true) {
    // Retries skip the priorities (localities, with locality failover) already tried (Istio).
    policy.retryPriority = {
      name: PREVIOUS_PRIORITIES,
      configType: {
        case: 'typedConfig',
        value: packAny(create(PreviousPrioritiesConfigSchema, { updateFrequency: PRIORITY_UPDATE_FREQUENCY })),
      },
    };
  }
  // `retryIgnorePreviousHosts: false` keeps retries free to pick a host already tried (Istio).
  if (!options.consistentHash && retries?.retryIgnorePreviousHosts !== false) {
    policy.retryHostPredicate = [
      {
        name: PREVIOUS_HOSTS_PREDICATE,
        configType: { case: 'typedConfig', value: packAny(create(PreviousHostsPredicateSchema)) },
      },
    ];
  }
  return policy;
}
