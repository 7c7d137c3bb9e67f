// `trellis describe pod|service NAME.NS`: what applies to a Pod or a Service, computed by the control
// plane from its live model (`/debug/describe`, inspect/describe.ts) and printed as text; the ACK state of
// the proxies concerned as `trellis proxy-status` shows it. `-o json|yaml` prints the description with
// the proxies' rows as proxy-status gives them.
import type {
  Description,
  ObjectSummary,
  ScopeSummary,
  ServiceDescription,
  WorkloadMtlsSummary,
} from '../inspect/describe.js';
import { parseDebugProxies } from './debug-proxies.js';
import { getJson } from './http-client.js';
import { renderStatusTable, statusRows, type ProxyStatusRow } from './proxy-status.js';
import { renderData, type OutputFormat } from './render.js';

export type DescribeKind = 'pod' | 'service';

export type DescribeOutput = Description & { readonly proxies: readonly ProxyStatusRow[] };

/** `name.ns` → [name, ns]; a name without a dot is in `default`. */
export function splitName(target: string): { name: string; namespace: string } {
  const dot = target.lastIndexOf('.');
  if (dot <= 0 || dot === target.length - 1) return { name: target, namespace: 'default' };
  return { name: target.slice(0, dot), namespace: target.slice(dot + 1) };
}

function objectLine(o: ObjectSummary): string {
  const state = o.reason === '' ? '' : ` (${o.reason}${o.stale ? ', last accepted version kept' : ''})`;
  return `${o.namespace}/${o.name}${state}`;
}

function labelText(labels: Readonly<Record<string, string>>): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}=${v}`);
  return pairs.length > 0 ? pairs.join(', ') : '(none)';
}

function mtlsLines(m: WorkloadMtlsSummary): string[] {
  return [
    `  Inbound mTLS: ${m.mode} (decided by ${m.decidedBy})`,
    ...m.ports.filter((p) => p.mode !== m.mode).map((p) => `    port ${p.port}: ${p.mode}`),
    ...m.from.map((pa) => `  PeerAuthentication: ${objectLine(pa)}`),
  ];
}

function endpointText(e: { address: string; port: number; ready: boolean; pod?: string }): string {
  return `${e.address}:${e.port}${e.pod ? ` (${e.pod})` : ''}${e.ready ? '' : ' NOT READY'}`;
}

function serviceLines(s: ServiceDescription): string[] {
  const out = [`Service: ${s.host} (as clients in namespace ${s.viewedFrom} see it)`];
  for (const p of s.ports) {
    const endpoints = p.endpoints.length > 0 ? p.endpoints.map(endpointText).join(', ') : 'none';
    out.push(
      `  Port ${p.port}${p.name ? ` (${p.name})` : ''} ${p.protocol} -> ${p.targetPort}, mTLS ${p.mtls}; endpoints: ${endpoints}`,
    );
  }
  if (s.virtualService) {
    out.push(`  VirtualService: ${objectLine(s.virtualService)}`);
    for (const r of s.virtualService.routes) out.push(`    ${r}`);
  } else out.push('  VirtualService: none (default route to the Service)');
  for (const o of s.otherVirtualServices) out.push(`  Not applied: VirtualService ${objectLine(o)}: ${o.why}`);
  const dr = s.destinationRule;
  if (dr) {
    out.push(`  DestinationRule: ${dr.from.map(objectLine).join(' + ')}`);
    if (dr.trafficPolicy !== undefined) out.push(`    Traffic policy: ${JSON.stringify(dr.trafficPolicy)}`);
    for (const subset of dr.subsets) {
      const mark = subset.matchesPod === undefined ? '' : subset.matchesPod ? ' [this pod]' : '';
      out.push(`    Subset ${subset.name} (${labelText(subset.labels)})${mark}`);
      for (const port of subset.endpoints) {
        const list = port.endpoints.length > 0 ? port.endpoints.map(endpointText).join(', ') : 'NO ENDPOINTS';
        out.push(`      ${port.port}: ${list}`);
      }
    }
  } else out.push('  DestinationRule: none');
  return out;
}

/** The scope of the Pod's outbound config: the Sidecar, the scoping mode, and each Service with its reasons. */
function scopeLines(scope: ScopeSummary): string[] {
  const sidecar = scope.sidecar
    ? `Sidecar ${scope.sidecar.namespace}/${scope.sidecar.name} (${scope.level}${scope.sidecar.stale ? ', last accepted version' : ''})`
    : 'no Sidecar';
  const out = [
    `  Scope: ${scope.all ? 'every visible Service' : `${scope.services.length} Service(s)`}; ${sidecar}; scoping ${scope.scoping}; outbound traffic ${scope.outboundTrafficPolicy}`,
  ];
  if (!scope.all) for (const s of scope.services) out.push(`    ${s.fqdn}: ${s.reasons.join('; ')}`);
  return out;
}

/** The human text of a description. */
export function renderDescription(d: DescribeOutput, now: number): string {
  const lines: string[] = [];
  if (d.kind === 'pod') {
    lines.push(`Pod: ${d.name}.${d.namespace}`);
    if (d.labels) lines.push(`  Labels: ${labelText(d.labels)}`);
    if (d.mtls) lines.push(...mtlsLines(d.mtls));
    if (d.scope) lines.push(...scopeLines(d.scope));
    if (d.leftOut && d.leftOut.length > 0) {
      lines.push('  Left out of its config:');
      for (const note of d.leftOut) lines.push(`    ${note}`);
    }
    if (d.services.length === 0) lines.push('  Serves no Service');
    lines.push('');
  }
  for (const s of d.services) lines.push(...serviceLines(s), '');
  if (d.proxies.length === 0) {
    lines.push(d.proxyIds.length > 0 ? `No connected proxy (${d.proxyIds.join(', ')})` : 'No proxies');
  } else lines.push(renderStatusTable(d.proxies, now).trimEnd());
  return lines.join('\n') + '\n';
}

export async function fetchDescription(base: string, kind: DescribeKind, target: string): Promise<DescribeOutput> {
  const { name, namespace } = splitName(target);
  const query = new URLSearchParams({ kind, name, namespace });
  const answer = (await getJson(base, `debug/describe?${query.toString()}`)) as Description & { proxies?: unknown };
  if (typeof answer !== 'object' || answer === null || !Array.isArray(answer.services)) {
    throw new Error('/debug/describe: the answer is not a description');
  }
  return { ...answer, proxies: statusRows(parseDebugProxies(answer.proxies ?? [])) };
}

export async function runDescribe(options: {
  readonly controlPlane: string;
  readonly kind: DescribeKind;
  readonly target: string;
  readonly output: OutputFormat;
  readonly stdout: NodeJS.WritableStream;
}): Promise<void> {
  const d = await fetchDescription(options.controlPlane, options.kind, options.target);
  options.stdout.write(options.output === 'table' ? renderDescription(d, Date.now()) : renderData(d, options.output));
}
