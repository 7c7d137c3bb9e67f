// Where a workload's RBAC configs (rbac.ts) go: HTTP filters before the router of an inbound HCM (sidecar
// and proxyless server), network filters before the tcp_proxy of an inbound TCP chain, and the audit access
// log. Filter order as Istio's (envoy-translation.md §3.5): DENY, then ALLOW, then AUDIT.
//
// - Names are unique per HCM (`envoy.filters.http.rbac.deny|allow|audit`): grpc-js NACKs duplicate filter
//   names, and Envoy looks the extension up by its type URL, not its name.
// - Stats (what the agent's /metrics passes on from Envoy): the HTTP filters share the HCM's
//   `http.<stat_prefix>.rbac.` counters — `denied` counts every request a policy refused (DENY match or no
//   ALLOW match), `allowed` the others per filter; the audit filter counts under `rbac.audit_`
//   (`logged`/`not_logged`). The network filters count under `tcp.rbac.`.
// - AUDIT: Envoy's LOG action allows the request and sets `envoy.common` `access_log_hint`; a stdout access
//   log filtered on that hint writes one line per audited request (unless the mesh logs every request
//   anyway). For TCP the LOG filter sets the hint and counts, and the tcp_proxy's audit log writes the line.
// - Proxyless gRPC servers get DENY and ALLOW only: grpc-js NACKs the LOG action (grpc-js-xds.md §3 RBAC), so
//   AUDIT policies are not enforced there (nothing to enforce) and not logged.
import { create } from '@bufbuild/protobuf';
import { RBACSchema as HttpRbacSchema } from '../envoy/gen/envoy/extensions/filters/http/rbac/v3/rbac_pb.js';
import { RBACSchema as NetworkRbacSchema } from '../envoy/gen/envoy/extensions/filters/network/rbac/v3/rbac_pb.js';
import { StdoutAccessLogSchema } from '../envoy/gen/envoy/extensions/access_loggers/stream/v3/stream_pb.js';
import type { HttpFilterSchema } from '../envoy/gen/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb.js';
import type { RBAC as RbacConfig } from '../envoy/gen/envoy/config/rbac/v3/rbac_pb.js';
import { packAny } from '../envoy/protos.js';
import type { AccessLogSchema } from '../envoy/gen/envoy/config/accesslog/v3/accesslog_pb.js';
import type { FilterSchema } from '../envoy/gen/envoy/config/listener/v3/listener_components_pb.js';
import type { WorkloadRbac } from './rbac.js';
import type { InitOf } from './route-values.js';

type HttpFilterInit = InitOf<typeof HttpFilterSchema>;
type FilterInit = InitOf<typeof FilterSchema>;
type AccessLogInit = InitOf<typeof AccessLogSchema>;

export const RBAC_HTTP_FILTER = 'envoy.filters.http.rbac';
export const RBAC_NETWORK_FILTER = 'envoy.filters.network.rbac';
/** The network RBAC filters' stat prefix (Istio's). */
export const RBAC_TCP_STAT_PREFIX = 'tcp.';
/** The audit filter's counters: `rbac.audit_logged`, `rbac.audit_not_logged`. */
export const RBAC_AUDIT_STAT_PREFIX = 'audit_';

const ORDER = ['deny', 'allow', 'audit'] as const;

function stages(rbac: WorkloadRbac, proxyless: boolean): [(typeof ORDER)[number], RbacConfig][] {
  return ORDER.filter((k) => rbac[k] !== undefined && !(proxyless && k === 'audit')).map((k) => [k, rbac[k]!]);
}

/** The RBAC HTTP filters of an inbound HCM, to go before the router. */
export function rbacHttpFilters(rbac: WorkloadRbac, proxyless: boolean): HttpFilterInit[] {
  return stages(rbac, proxyless).map(([stage, rules]) => ({
    name: `${RBAC_HTTP_FILTER}.${stage}`,
    configType: {
      case: 'typedConfig',
      value: packAny(
        create(HttpRbacSchema, { rules, ...(stage === 'audit' ? { rulesStatPrefix: RBAC_AUDIT_STAT_PREFIX } : {}) }),
      ),
    },
  }));
}

/** The RBAC network filters of an inbound TCP chain, to go before the tcp_proxy. */
export function rbacNetworkFilters(rbac: WorkloadRbac): FilterInit[] {
  return stages(rbac, false).map(([stage, rules]) => ({
    name: `${RBAC_NETWORK_FILTER}.${stage}`,
    configType: {
      case: 'typedConfig',
      value: packAny(
        create(NetworkRbacSchema, {
          rules,
          statPrefix: stage === 'audit' ? `${RBAC_TCP_STAT_PREFIX}${RBAC_AUDIT_STAT_PREFIX}` : RBAC_TCP_STAT_PREFIX,
        }),
      ),
    },
  }));
}

/** A stdout access log of the requests (or connections) an AUDIT policy matched. */
export function auditAccessLog(): AccessLogInit {
  return {
    name: 'envoy.access_loggers.stdout',
    filter: {
      filterSpecifier: {
        case: 'metadataFilter',
        value: {
          matcher: {
            filter: 'envoy.common',
            path: [{ segment: { case: 'key', value: 'access_log_hint' } }],
            value: { matchPattern: { case: 'boolMatch', value: true } },
          },
          matchIfKeyNotFound: false,
        },
      },
    },
    configType: { case: 'typedConfig', value: packAny(create(StdoutAccessLogSchema)) },
  };
}
