// The Envoy validation checker (tools/peers/envoy-validate): valid xDS resources pass, broken ones fail
// with Envoy's own message naming the field and the rule, also when the broken part sits inside a nested
// google.protobuf.Any.
import { spawnSync } from 'node:child_process';
import test from 'ava';
import { create, toBinary } from '@bufbuild/protobuf';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { anyPack, AnySchema, DurationSchema } from '@bufbuild/protobuf/wkt';
import { ClusterSchema, Cluster_DiscoveryType } from '../control-plane/envoy/gen/envoy/config/cluster/v3/cluster_pb.js';
import type { Cluster } from '../control-plane/envoy/gen/envoy/config/cluster/v3/cluster_pb.js';
import { ApiVersion } from '../control-plane/envoy/gen/envoy/config/core/v3/config_source_pb.js';
import { ClusterLoadAssignmentSchema } from '../control-plane/envoy/gen/envoy/config/endpoint/v3/endpoint_pb.js';
import { ListenerSchema } from '../control-plane/envoy/gen/envoy/config/listener/v3/listener_pb.js';
import { RouteConfigurationSchema } from '../control-plane/envoy/gen/envoy/config/route/v3/route_pb.js';
import { HTTPFaultSchema } from '../control-plane/envoy/gen/envoy/extensions/filters/http/fault/v3/fault_pb.js';
import { RouterSchema } from '../control-plane/envoy/gen/envoy/extensions/filters/http/router/v3/router_pb.js';
import { HttpConnectionManagerSchema } from '../control-plane/envoy/gen/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb.js';
import {
  anyBytes,
  assertEnvoyValid,
  envoyValidateAvailable,
  envoyValidateBinary,
  EnvoyValidateUnavailableError,
  validateEnvoyJson,
  validateEnvoyResources,
} from './helpers/envoy-validate.js';
import type { ValidationResult } from './helpers/envoy-validate.js';

const FQDN = 'reviews.default.svc.cluster.local';
const CLUSTER = `outbound|9080||${FQDN}`;

// Without the binary these tests cannot say anything; outside CI they are skipped with one line, in CI they
// run and fail on EnvoyValidateUnavailableError.
const available = envoyValidateAvailable() || process.env.CI === 'true';
const check = available ? test : test.skip;
if (!available) console.log(`envoy-validate tests skipped: ${new EnvoyValidateUnavailableError().message}`);

const ads = { configSourceSpecifier: { case: 'ads', value: {} }, resourceApiVersion: ApiVersion.V3 } as const;

function cluster(edit: (c: Cluster) => void = () => undefined): Cluster {
  const c = create(ClusterSchema, {
    name: CLUSTER,
    clusterDiscoveryType: { case: 'type', value: Cluster_DiscoveryType.EDS },
    edsClusterConfig: { edsConfig: ads, serviceName: CLUSTER },
    connectTimeout: { seconds: 10n },
  });
  edit(c);
  return c;
}

type HcmInit = MessageInitShape<typeof HttpConnectionManagerSchema>;

function hcm(init: HcmInit = {}) {
  return create(HttpConnectionManagerSchema, {
    statPrefix: 'outbound_0.0.0.0_9080',
    routeSpecifier: { case: 'rds', value: { configSource: ads, routeConfigName: '9080' } },
    httpFilters: [
      {
        name: 'envoy.filters.http.router',
        configType: { case: 'typedConfig', value: anyPack(RouterSchema, create(RouterSchema)) },
      },
    ],
    ...init,
  });
}

function listener(manager = hcm()) {
  return create(ListenerSchema, {
    name: '0.0.0.0_9080',
    address: {
      address: {
        case: 'socketAddress',
        value: { address: '0.0.0.0', portSpecifier: { case: 'portValue', value: 9080 } },
      },
    },
    filterChains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            configType: { case: 'typedConfig', value: anyPack(HttpConnectionManagerSchema, manager) },
          },
        ],
      },
    ],
  });
}

function routeConfiguration(abortStatus = 503) {
  const fault = create(HTTPFaultSchema, {
    abort: {
      errorType: { case: 'httpStatus', value: abortStatus },
      percentage: { numerator: 10 },
    },
  });
  return create(RouteConfigurationSchema, {
    name: '9080',
    virtualHosts: [
      {
        name: `${FQDN}:9080`,
        domains: [FQDN, `${FQDN}:9080`, 'reviews', 'reviews:9080', 'reviews.default', 'reviews.default:9080'],
        routes: [
          {
            match: { pathSpecifier: { case: 'prefix', value: '/' } },
            action: {
              case: 'route',
              value: {
                clusterSpecifier: { case: 'cluster', value: CLUSTER },
                timeout: { seconds: 0n },
                retryPolicy: { retryOn: 'connect-failure,refused-stream,unavailable', numRetries: 2 },
              },
            },
            typedPerFilterConfig: { 'envoy.filters.http.fault': anyPack(HTTPFaultSchema, fault) },
          },
        ],
      },
    ],
  });
}

function loadAssignment() {
  return create(ClusterLoadAssignmentSchema, {
    clusterName: CLUSTER,
    endpoints: [
      {
        locality: { region: 'r1', zone: 'z1' },
        lbEndpoints: [
          {
            hostIdentifier: {
              case: 'endpoint',
              value: {
                address: {
                  address: {
                    case: 'socketAddress',
                    value: { address: '10.1.2.3', portSpecifier: { case: 'portValue', value: 9080 } },
                  },
                },
              },
            },
            loadBalancingWeight: 1,
          },
        ],
      },
    ],
  });
}

async function validateOne(resource: Uint8Array): Promise<ValidationResult> {
  const [result] = await validateEnvoyResources([resource]);
  if (result === undefined) throw new Error('no result');
  return result;
}

check(
  'valid Cluster, Listener (HCM + router in typed_config), RouteConfiguration and ClusterLoadAssignment pass',
  async (t) => {
    const resources = [
      anyBytes(ClusterSchema, cluster()),
      anyBytes(ListenerSchema, listener()),
      anyBytes(RouteConfigurationSchema, routeConfiguration()),
      anyBytes(ClusterLoadAssignmentSchema, loadAssignment()),
    ];
    const results = await validateEnvoyResources(resources);
    t.deepEqual(
      results.map((r) => [r.index, r.typeUrl, r.name, r.errors]),
      [
        [0, 'type.googleapis.com/envoy.config.cluster.v3.Cluster', CLUSTER, []],
        [1, 'type.googleapis.com/envoy.config.listener.v3.Listener', '0.0.0.0_9080', []],
        [2, 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration', '9080', []],
        [3, 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment', CLUSTER, []],
      ],
    );
    t.true(await assertEnvoyValid(t, resources));
  },
);

check('a Cluster without a name fails naming the field and the min_len rule', async (t) => {
  const r = await validateOne(
    anyBytes(
      ClusterSchema,
      cluster((c) => (c.name = '')),
    ),
  );
  t.deepEqual(r.errors, ['name: invalid Cluster.Name: value length must be at least 1 runes']);
});

check('a Cluster with a negative connect_timeout fails naming ConnectTimeout and the gt rule', async (t) => {
  const r = await validateOne(
    anyBytes(
      ClusterSchema,
      cluster((c) => (c.connectTimeout = create(DurationSchema, { seconds: -1n }))),
    ),
  );
  t.deepEqual(r.errors, [
    'connect_timeout: invalid Cluster.ConnectTimeout: value must be greater than 0s',
    'connect_timeout: Expected positive duration: seconds:-1 nanos:0 (Envoy MessageUtil duration check)',
  ]);
});

check('errors inside the HCM nested in a listener filter carry the path through typed_config', async (t) => {
  const broken = hcm({
    statPrefix: '',
    httpFilters: [
      { name: '', configType: { case: 'typedConfig', value: anyPack(RouterSchema, create(RouterSchema)) } },
    ],
  });
  const r = await validateOne(anyBytes(ListenerSchema, listener(broken)));
  const at = 'filter_chains[0].filters[0].typed_config(HttpConnectionManager)';
  t.deepEqual(r.errors, [
    `${at}.stat_prefix: invalid HttpConnectionManager.StatPrefix: value length must be at least 1 runes`,
    `${at}.http_filters[0].name: invalid HttpFilter.Name: value length must be at least 1 runes`,
  ]);
});

check('typed_per_filter_config values are unpacked and validated', async (t) => {
  const r = await validateOne(anyBytes(RouteConfigurationSchema, routeConfiguration(99)));
  t.deepEqual(r.errors, [
    'virtual_hosts[0].routes[0].typed_per_filter_config["envoy.filters.http.fault"](HTTPFault).abort.http_status: ' +
      'invalid FaultAbort.HttpStatus: value must be inside range [200, 600)',
  ]);
});

check('a negative duration without a PGV rule (route timeout) fails by Envoy’s duration check', async (t) => {
  const rc = routeConfiguration();
  const action = rc.virtualHosts[0]?.routes[0]?.action;
  if (action?.case !== 'route') throw new Error('route action expected');
  action.value.timeout = create(DurationSchema, { seconds: -5n });
  const r = await validateOne(anyBytes(RouteConfigurationSchema, rc));
  t.deepEqual(r.errors, [
    'virtual_hosts[0].routes[0].route.timeout: Expected positive duration: seconds:-5 nanos:0 (Envoy MessageUtil duration check)',
  ]);
});

check('an unknown type URL is an error of that resource, the others are still checked', async (t) => {
  const renamed = anyPack(ClusterSchema, cluster());
  renamed.typeUrl = 'type.googleapis.com/trellis.NoSuchThing';
  const results = await validateEnvoyResources([anyBytes(ClusterSchema, cluster()), toBinary(AnySchema, renamed)]);
  t.deepEqual(results[0]?.errors, []);
  t.regex(results[1]?.errors[0] ?? '', /^unknown type URL "type\.googleapis\.com\/trellis\.NoSuchThing"/);
});

check('assertEnvoyValid lists every error with index, type and name', async (t) => {
  const result = await t.try(async (tt) => {
    await assertEnvoyValid(tt, [
      anyBytes(ClusterSchema, cluster()),
      anyBytes(
        ClusterSchema,
        cluster((c) => (c.name = '')),
      ),
    ]);
  });
  const { passed } = result;
  const message = result.errors[0]?.message ?? '';
  result.discard();
  t.false(passed);
  t.true(message.includes('Envoy validation failed for 1 of 2 resources'), message);
  t.true(message.includes('[1] envoy.config.cluster.v3.Cluster'), message);
  t.true(message.includes('name: invalid Cluster.Name: value length must be at least 1 runes'), message);
});

check('--json mode takes proto3-JSON Any objects', async (t) => {
  const results = await validateEnvoyJson([
    {
      '@type': 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
      name: CLUSTER,
      type: 'EDS',
      connectTimeout: '1s',
      edsClusterConfig: { edsConfig: { ads: {}, resourceApiVersion: 'V3' } },
    },
    { '@type': 'type.googleapis.com/envoy.config.cluster.v3.Cluster', connectTimeout: '0s' },
  ]);
  t.deepEqual(results[0]?.errors, []);
  t.deepEqual(results[1]?.errors, [
    'name: invalid Cluster.Name: value length must be at least 1 runes',
    'connect_timeout: invalid Cluster.ConnectTimeout: value must be greater than 0s',
  ]);
});

check('a batch of 1,000 clusters is checked in order', async (t) => {
  const batch = Array.from({ length: 1000 }, (_, i) =>
    anyBytes(
      ClusterSchema,
      cluster((c) => (c.name = i === 700 ? '' : `outbound|${8000 + i}||svc-${i}.default.svc.cluster.local`)),
    ),
  );
  const results = await validateEnvoyResources(batch);
  t.is(results.length, 1000);
  t.deepEqual(
    results.filter((r) => r.errors.length > 0).map((r) => r.index),
    [700],
  );
  t.is(results[999]?.name, 'outbound|8999||svc-999.default.svc.cluster.local');
});

check('malformed framing is rejected by the checker (non-zero exit), not reported as a resource error', (t) => {
  const binary = envoyValidateBinary();
  if (binary === undefined) throw new EnvoyValidateUnavailableError();
  const run = spawnSync(binary, [], { input: Buffer.from([0x05, 0x0a, 0x01]) });
  t.is(run.status, 2);
  t.regex(run.stderr.toString(), /malformed input: resource 0 .*runs past the end of input/);
});
