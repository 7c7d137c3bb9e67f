// `trellis proxy-config clusters|listeners|routes|endpoints|secrets PROXY`: what one proxy was sent, read
// from `/debug/config_dump?proxy=ID` and summarised like `istioctl proxy-config` (one row per cluster,
// listener, route, endpoint or secret, sorted); `-o json|yaml` prints the resources themselves (secrets as
// the dump has them: name and public certificates, never a key).
import { X509Certificate } from 'node:crypto';
import { getJson } from './http-client.js';
import { at, list, pairs, str } from './json-path.js';
import { renderData, renderTable, type OutputFormat } from './render.js';

export const CONFIG_KINDS = ['clusters', 'listeners', 'routes', 'endpoints', 'secrets'] as const;
export type ConfigKind = (typeof CONFIG_KINDS)[number];

const ADMIN = 'type.googleapis.com/envoy.admin.v3.';

/** Where each kind sits in the dump: the section's type, its list, and the resource inside each entry. */
const SECTIONS: Readonly<Record<ConfigKind, { type: string; list: string; resource: readonly string[] }>> = {
  clusters: { type: 'ClustersConfigDump', list: 'dynamicActiveClusters', resource: ['cluster'] },
  listeners: { type: 'ListenersConfigDump', list: 'dynamicListeners', resource: ['activeState', 'listener'] },
  routes: { type: 'RoutesConfigDump', list: 'dynamicRouteConfigs', resource: ['routeConfig'] },
  endpoints: { type: 'EndpointsConfigDump', list: 'dynamicEndpointConfigs', resource: ['endpointConfig'] },
  secrets: { type: 'SecretsConfigDump', list: 'dynamicActiveSecrets', resource: ['secret'] },
};

/** The resources of one kind in a config dump (`{"configs": [...]}`), in the dump's (name) order. */
export function resourcesOf(dump: unknown, kind: ConfigKind): unknown[] {
  const section = SECTIONS[kind];
  const config = list(at(dump, 'configs')).find((c) => at(c, '@type') === ADMIN + section.type);
  return list(at(config, section.list))
    .map((entry) => at(entry, ...section.resource))
    .filter((r) => r !== undefined);
}

const byFirstColumns = (a: readonly string[], b: readonly string[]): number => {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? '';
    const y = b[i] ?? '';
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
};

function address(addr: unknown): string {
  const socket = at(addr, 'socketAddress');
  if (socket !== undefined) return `${str(at(socket, 'address'))}:${str(at(socket, 'portValue'), '0')}`;
  const pipe = at(addr, 'pipe', 'path');
  return pipe !== undefined ? `unix:${str(pipe)}` : '-';
}

function clusterRow(c: unknown): string[] {
  const name = str(at(c, 'name'));
  const parts = name.split('|');
  const subset = parts.length === 4 && parts[2] ? parts[2] : '-';
  const type =
    at(c, 'clusterType') !== undefined ? str(at(c, 'clusterType', 'name'), 'custom') : str(at(c, 'type'), 'STATIC');
  const outlier = at(c, 'outlierDetection');
  const thresholds = at(c, 'circuitBreakers', 'thresholds', 0);
  return [
    name,
    type,
    subset,
    str(at(c, 'lbPolicy'), 'ROUND_ROBIN'),
    outlier === undefined
      ? '-'
      : pairs(outlier, [
          ['5xx', 'consecutive5xx'],
          ['gatewayErrors', 'consecutiveGatewayFailure'],
          ['interval', 'interval'],
          ['ejection', 'baseEjectionTime'],
          ['maxEjection%', 'maxEjectionPercent'],
        ]) || 'on',
    thresholds === undefined
      ? '-'
      : pairs(thresholds, [
          ['connections', 'maxConnections'],
          ['pending', 'maxPendingRequests'],
          ['requests', 'maxRequests'],
          ['retries', 'maxRetries'],
        ]) || 'defaults',
  ];
}

function filterNames(filters: unknown): string {
  return list(filters)
    .map((f) => str(at(f, 'name')))
    .join(',');
}

function listenerRow(l: unknown): string[] {
  const api = at(l, 'apiListener', 'apiListener');
  const chains = list(at(l, 'filterChains')).map((fc) => {
    const match = pairs(at(fc, 'filterChainMatch'), [
      ['port', 'destinationPort'],
      ['transport', 'transportProtocol'],
      ['alpn', 'applicationProtocols'],
      ['sni', 'serverNames'],
    ]);
    const name = str(at(fc, 'name'));
    return `${name || match || 'all'} -> ${filterNames(at(fc, 'filters'))}`;
  });
  const fallback = at(l, 'defaultFilterChain');
  if (fallback !== undefined) chains.push(`default -> ${filterNames(at(fallback, 'filters'))}`);
  const summary =
    api !== undefined
      ? `api listener: rds=${str(at(api, 'rds', 'routeConfigName'), at(api, 'routeConfig') ? '(inline)' : '-')}`
      : chains.join('; ') || '-';
  return [str(at(l, 'name')), api !== undefined ? 'api' : address(at(l, 'address')), summary];
}

function matchOf(m: unknown): string {
  for (const key of ['prefix', 'path', 'pathSeparatedPrefix']) {
    const v = at(m, key);
    if (v !== undefined) return `${key === 'path' ? 'path' : 'prefix'} ${str(v) || '/'}`;
  }
  const regex = at(m, 'safeRegex', 'regex');
  const headers = list(at(m, 'headers')).map((h) => `header ${str(at(h, 'name'))}`);
  return [regex !== undefined ? `regex ${str(regex)}` : '', ...headers].filter((x) => x !== '').join(' ') || '*';
}

function actionOf(r: unknown): string {
  const route = at(r, 'route');
  if (route !== undefined) {
    const cluster = at(route, 'cluster');
    if (cluster !== undefined) return str(cluster);
    const weighted = list(at(route, 'weightedClusters', 'clusters'));
    if (weighted.length > 0) return weighted.map((w) => `${str(at(w, 'name'))}:${str(at(w, 'weight'), '0')}`).join(',');
    return str(at(route, 'clusterHeader'), '-');
  }
  if (at(r, 'redirect') !== undefined) return 'redirect';
  if (at(r, 'directResponse') !== undefined) return `direct ${str(at(r, 'directResponse', 'status'))}`;
  if (at(r, 'nonForwardingAction') !== undefined) return 'non-forwarding';
  return '-';
}

function routeRows(rc: unknown): string[][] {
  const name = str(at(rc, 'name'));
  return list(at(rc, 'virtualHosts')).flatMap((vh) => {
    const domains = list(at(vh, 'domains')).map((d) => str(d));
    const shown =
      domains.length > 3 ? `${domains.slice(0, 3).join(',')} +${domains.length - 3} more` : domains.join(',');
    return list(at(vh, 'routes')).map((r) => [name, str(at(vh, 'name')), shown, matchOf(at(r, 'match')), actionOf(r)]);
  });
}

function endpointRows(cla: unknown): string[][] {
  const cluster = str(at(cla, 'clusterName'));
  return list(at(cla, 'endpoints')).flatMap((le) => {
    const loc = at(le, 'locality');
    const locality = [str(at(loc, 'region')), str(at(loc, 'zone')), str(at(loc, 'subZone'))]
      .filter((x) => x !== '')
      .join('/');
    const priority = str(at(le, 'priority'), '0');
    return list(at(le, 'lbEndpoints')).map((e) => [
      cluster,
      address(at(e, 'endpoint', 'address')),
      str(at(e, 'healthStatus'), 'UNKNOWN'),
      str(at(e, 'loadBalancingWeight'), '1'),
      locality || '-',
      priority,
    ]);
  });
}

/** The PEM of an Envoy DataSource (inline string or base64 bytes); undefined for a file or nothing. */
function pemOf(source: unknown): string | undefined {
  const s = at(source, 'inlineString');
  if (typeof s === 'string') return s;
  const b = at(source, 'inlineBytes');
  return typeof b === 'string' ? Buffer.from(b, 'base64').toString('utf8') : undefined;
}

/** The first certificate of a PEM bundle: its URI SAN (the SPIFFE ID), serial and expiry. */
function certificateSummary(pem: string | undefined): [string, string, string] {
  const first = pem?.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)?.[0];
  if (!first) return ['-', '-', '-'];
  try {
    const cert = new X509Certificate(first);
    const uri = (cert.subjectAltName ?? '')
      .split(', ')
      .find((san) => san.startsWith('URI:'))
      ?.slice('URI:'.length);
    return [uri ?? cert.subject.replace(/\n/g, ','), cert.serialNumber, new Date(cert.validTo).toISOString()];
  } catch {
    return ['(unparsable certificate)', '-', '-'];
  }
}

function secretRow(s: unknown): string[] {
  const chain = at(s, 'tlsCertificate', 'certificateChain');
  const ca = at(s, 'validationContext', 'trustedCa');
  const kind = chain !== undefined ? 'Cert Chain' : ca !== undefined ? 'CA' : '-';
  return [str(at(s, 'name')), kind, ...certificateSummary(pemOf(chain ?? ca))];
}

const HEADERS: Readonly<Record<ConfigKind, readonly string[]>> = {
  clusters: ['NAME', 'TYPE', 'SUBSET', 'LB', 'OUTLIER DETECTION', 'CIRCUIT BREAKER'],
  listeners: ['NAME', 'ADDRESS:PORT', 'FILTER CHAINS'],
  routes: ['ROUTE CONFIG', 'VIRTUAL HOST', 'DOMAINS', 'MATCH', 'CLUSTER'],
  endpoints: ['CLUSTER', 'ENDPOINT', 'HEALTH', 'WEIGHT', 'LOCALITY', 'PRIORITY'],
  secrets: ['NAME', 'TYPE', 'SPIFFE ID', 'SERIAL', 'NOT AFTER'],
};

/** The summary rows of one kind, sorted. */
export function summaryRows(kind: ConfigKind, resources: readonly unknown[]): string[][] {
  const rows: string[][] =
    kind === 'clusters'
      ? resources.map(clusterRow)
      : kind === 'listeners'
        ? resources.map(listenerRow)
        : kind === 'routes'
          ? resources.flatMap(routeRows)
          : kind === 'endpoints'
            ? resources.flatMap(endpointRows)
            : resources.map(secretRow);
  // Routes keep their order within a virtual host (the first match wins): sort by config and host only.
  return kind === 'routes'
    ? rows
        .map((r, i) => ({ r, i }))
        .sort((a, b) => byFirstColumns(a.r.slice(0, 2), b.r.slice(0, 2)) || a.i - b.i)
        .map((x) => x.r)
    : rows.sort(byFirstColumns);
}

export function renderSummary(kind: ConfigKind, resources: readonly unknown[]): string {
  return renderTable(HEADERS[kind], summaryRows(kind, resources));
}

export async function runProxyConfig(options: {
  readonly controlPlane: string;
  readonly kind: ConfigKind;
  readonly proxy: string;
  readonly output: OutputFormat;
  readonly stdout: NodeJS.WritableStream;
}): Promise<void> {
  const dump = await getJson(options.controlPlane, `debug/config_dump?proxy=${encodeURIComponent(options.proxy)}`);
  const resources = resourcesOf(dump, options.kind);
  options.stdout.write(
    options.output === 'table' ? renderSummary(options.kind, resources) : renderData(resources, options.output),
  );
}
